"""The sharding doctor's options, parsed without jax (the parent validates them before starting
the child): `--mesh data=4,model=2`, `--device-memory 16GiB` (or a device's name), sizes such
as `64MiB`, and the CPU device count a program gets."""

from __future__ import annotations

import re
from dataclasses import dataclass

from jaxdoctor.errors import UsageError

#: memory per device (chip, or GPU) of devices people train on, in bytes
NAMED_DEVICES: dict[str, int] = {
    "v2": 8 << 30, "v3": 16 << 30, "v4": 32 << 30, "v5e": 16 << 30, "v5litepod": 16 << 30,
    "v5p": 95 << 30, "v6e": 32 << 30, "trillium": 32 << 30, "v7x": 192 << 30,
    "t4": 16 << 30, "v100": 16 << 30, "v100-32gb": 32 << 30, "a10g": 24 << 30, "l4": 24 << 30,
    "a100": 40 << 30, "a100-40gb": 40 << 30, "a100-80gb": 80 << 30, "l40s": 48 << 30,
    "h100": 80 << 30, "h200": 141 << 30, "b200": 192 << 30, "gh200": 96 << 30,
    "mi250x": 64 << 30, "mi300x": 192 << 30,
}
_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1 << 10, "m": 1000**2, "mb": 1000**2,
          "mib": 1 << 20, "g": 1000**3, "gb": 1000**3, "gib": 1 << 30, "t": 1000**4, "tb": 1000**4,
          "tib": 1 << 40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
_AXIS = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: devices a program that builds a mesh gets on CPU when it does not choose a number itself
DEFAULT_CPU_DEVICES = 8


@dataclass(frozen=True)
class MeshSpec:
    axes: tuple[tuple[str, int], ...]

    @property
    def size(self) -> int:
        n = 1
        for _, s in self.axes:
            n *= s
        return n

    def __str__(self) -> str:
        return ",".join(f"{a}={s}" for a, s in self.axes)


def parse_mesh(text: str, *, option: str = "--mesh") -> MeshSpec:
    """`"data=4,model=2"` → MeshSpec((("data", 4), ("model", 2)))."""
    axes: list[tuple[str, int]] = []
    parts = [p.strip() for p in (text or "").split(",") if p.strip()]
    if not parts:
        raise UsageError(f"{option}: expected axis=size pairs such as data=4,model=2, got {text!r}")
    for part in parts:
        name, sep, size = part.partition("=")
        name, size = name.strip(), size.strip()
        if not sep or not _AXIS.match(name) or not size.isdigit() or int(size) < 1:
            raise UsageError(f"{option}: {part!r} is not axis=size (a Python name and a positive int), "
                             f"e.g. data=4,model=2")
        if name in (a for a, _ in axes):
            raise UsageError(f"{option}: the axis {name!r} is given twice in {text!r}")
        axes.append((name, int(size)))
    spec = MeshSpec(tuple(axes))
    if spec.size > 4096:
        raise UsageError(f"{option}: {text!r} asks for {spec.size} simulated devices; at most 4096")
    return spec


def parse_size(text: str | int, *, option: str) -> int:
    """`"16GiB"`, `"512MB"`, `"1e9"`-free plain bytes → bytes."""
    if isinstance(text, int) and not isinstance(text, bool):
        if text <= 0:
            raise UsageError(f"{option}: must be a positive number of bytes, got {text}")
        return text
    m = _SIZE.match(str(text))
    unit = m.group(2).lower() if m else None
    if not m or unit not in _UNITS:
        raise UsageError(f"{option}: expected a size such as 16GiB, 512MiB or 80GB, got {text!r}")
    value = int(float(m.group(1)) * _UNITS[unit])
    if value <= 0:
        raise UsageError(f"{option}: must be positive, got {text!r}")
    return value


def parse_device_memory(text: str | int) -> tuple[int, str | None]:
    """`--device-memory`: a size, or a device's name → (bytes, the name for messages)."""
    if isinstance(text, str) and text.strip().lower() in NAMED_DEVICES:
        name = text.strip().lower()
        return NAMED_DEVICES[name], name
    m = _SIZE.match(text) if isinstance(text, str) else None
    if isinstance(text, str) and (m is None or m.group(2).lower() not in _UNITS):
        known = ", ".join(sorted(NAMED_DEVICES))
        raise UsageError(f"--device-memory: {text!r} is neither a size (16GiB, 80GB) nor a known device ({known})")
    return parse_size(text, option="--device-memory"), None


_MESH_WORDS = re.compile(r"\b(Mesh|make_mesh|NamedSharding|PartitionSpec|shard_map|set_mesh|use_mesh|"
                         r"with_sharding_constraint|mesh_utils|create_device_mesh)\b")


def builds_a_mesh(source: str) -> bool:
    """Does a program's text use multi-device sharding (so it should get simulated devices)?"""
    return bool(_MESH_WORDS.search(source))
