"""`--device`: the platform is chosen before jax is imported (`PLATFORMS` → `JAX_PLATFORMS`);
once it is, check that JAX can use it, and otherwise say which devices exist."""

from __future__ import annotations

import os
import sys

from jaxdoctor.trace.protocol import Session

#: `--device` → the JAX platform name
PLATFORMS = {"cpu": "cpu", "gpu": "cuda", "tpu": "tpu"}


def select_device(device: str | None, session: Session) -> bool:
    """Check the requested platform (already in JAX_PLATFORMS); on failure name the devices that exist."""
    if not device:
        return True
    import jax

    try:
        jax.devices()
        return True
    except Exception as exc:  # noqa: BLE001 - jax 0.10 raises AssertionError for a missing plugin
        reason = (str(exc).splitlines()[0] if str(exc).strip()
                  else f"no {device} backend is installed; jax raised a bare {type(exc).__name__}")
        session.fatal(
            f"--device {device}: JAX cannot use a {device} device here ({reason}); "
            f"devices that exist: {_existing_devices()}"
        )
        return False


def _existing_devices() -> str:
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "JAX_PLATFORMS"}
    code = "import jax; print(', '.join(f'{d.platform}:{d.id} ({d.device_kind})' for d in jax.devices()))"
    try:
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
        return out.stdout.strip() or "none found"
    except Exception:  # noqa: BLE001
        return "unknown"
