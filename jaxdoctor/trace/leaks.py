"""JD504 leaked-tracer: what a Flax Linen `init`/`init_with_output`/`apply` returned holds
tracers, created inside a raw JAX transform around submodule calls (failure mode E).

`trace.capture` wraps those Linen methods and hands their output here, with the user's line
where each recent trace started (`callsites`), to point at the transform that leaked.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jaxdoctor.findings import Finding
from jaxdoctor.rules.jaxpr import LeakedTracer
from jaxdoctor.trace.frames import user_call_site

FIX_TITLE = "Use Flax's lifted transforms (`nn.scan`, `nn.cond`, `nn.vmap`, `nn.jit`) inside Linen modules"


def leaked_tracers(out: Any, where: str,
                   callsites: Sequence[tuple[Any, tuple[str, int, int, int, int]]]) -> Finding | None:
    """The JD504 finding for `out`, returned by `where` (e.g. `Model.init`), or None when it
    holds no tracer. `callsites`: (trace debug info, (file, line, column, end line, end column))
    of recent traces."""
    import jax

    from jaxdoctor.trace import jax_internals as ji

    leaked = [(path, leaf) for path, leaf in jax.tree_util.tree_flatten_with_path(out)[0] if ji.is_tracer(leaf)]
    if not leaked:
        return None
    _, tracer = leaked[0]
    dbg = ji.tracer_debug_info(tracer)
    site = next((s for d, s in reversed(callsites) if d is dbg), None)
    func, _ = ji.debug_info_parts(dbg)
    if site is None:
        site = user_call_site()
        if site is None:
            return None
    names = [jax.tree_util.keystr(p) for p, _ in leaked]
    shown = ", ".join(f"`{n}`" for n in names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    message = (
        f"`{where}` returned {len(leaked)} leaked tracer(s) ({shown}) created inside the JAX "
        f"transform traced here (`{func or 'fn'}`): a raw `jax.lax`/`jax.vmap` transform "
        "around Flax submodule calls; using these values later raises `UnexpectedTracerError`"
    )
    return LeakedTracer.finding(message, *site, fix_title=FIX_TITLE,
                                details={"outputs": names[:20], "transform_function": func})
