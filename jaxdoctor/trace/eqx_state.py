"""JD522 stateful-layer-under-vmap: an Equinox `State` (the statistics of `eqx.nn.BatchNorm`)
under `vmap`, explained at the user's line.

Three ways it goes wrong (equinox#707, equinox#935, equinox#49):

- the state comes back batched: `out_axes` maps it (`out_axes=0`, the default) instead of
  `None`, so every example gets its own copy of the statistics. Silent at that call; the next
  call that passes the state with `in_axes=None` fails inside `State.set`. Found by comparing
  the `State` the `vmap` got with the one it returned (`batched_state`, called by the capture);
- `BatchNorm(axis_name="batch")` under a `vmap` that does not name its axis: JAX's "unbound
  axis name" error, raised in Equinox;
- nested vmaps with the layer naming only the inner axis: the statistics differ along the
  outer axis, and JAX's "got axis spec None but output was batched" names a flat index.

The two errors are classified by `trace.explain` (through `classify` below).
"""

from __future__ import annotations

import re
from typing import Any

from jaxdoctor.trace import eqx_internals as eqx

_UNBOUND = re.compile(r"unbound axis name: (?P<name>[^.\s]+)")


def batched_state(args: Any, out: Any, size: int | None) -> tuple[str, str, str] | None:
    """(leaf, its shape going in, its shape coming out) of the first leaf of an `eqx.nn.State`
    that a `vmap` returned with a new leading batch axis, or None."""
    state_cls = eqx.state_class()
    if state_cls is None:
        return None
    import jax

    is_state = lambda x: isinstance(x, state_cls)  # noqa: E731
    ins = [x for x in jax.tree_util.tree_leaves(args, is_leaf=is_state) if is_state(x)]
    outs = [x for x in jax.tree_util.tree_leaves(out, is_leaf=is_state) if is_state(x)]
    for s_in, s_out in zip(ins, outs):
        a = jax.tree_util.tree_flatten_with_path(s_in)[0]
        b = jax.tree_util.tree_flatten_with_path(s_out)[0]
        if len(a) != len(b):
            continue
        for (path, x), (_, y) in zip(a, b):
            xs, ys = getattr(x, "shape", None), getattr(y, "shape", None)
            if xs is None or ys is None or len(ys) != len(xs) + 1 or tuple(ys[1:]) != tuple(xs):
                continue
            if size is not None and ys[0] != size:
                continue
            return jax.tree_util.keystr(path), _shape(x), _shape(y)
    return None


def _shape(x: Any) -> str:
    return f"{x.dtype}[{','.join(map(str, x.shape))}]"


def classify(exc: BaseException) -> str | None:
    """"JD522" when `exc` is one of the stateful-layer-under-vmap errors, else None."""
    text = str(exc)
    if isinstance(exc, NameError) and "unbound axis name" in text and eqx.raised_in_batch_norm(exc):
        return "JD522"
    if eqx.is_state_shape_error(exc):
        return "JD522"
    if isinstance(exc, ValueError) and "output was batched" in text and eqx.state_in_frames(exc):
        return "JD522"
    return None


def message(exc: BaseException, snippet: str) -> str:
    """The JD522 message for an error `classify` accepted."""
    text = str(exc)
    m = _UNBOUND.search(text)
    if m is not None:
        name = m.group("name")
        return (f"{snippet}: `BatchNorm(axis_name={name!r})` runs under this `vmap`, which does not name its "
                f"axis: pass `axis_name={name!r}` to the `vmap` that maps the batch")
    if "Old and new values" in text:
        shapes = re.search(r"old value is (\S+) and the new value is (\S+?)\.?$", text.splitlines()[0])
        got = f" ({shapes.group(1)} instead of {shapes.group(2)})" if shapes else ""
        return (f"{snippet}: the `State` passed in was batched by an earlier `vmap`{got}: that `vmap` returned "
                "the state with `out_axes=0`; give the state `out_axes=None` there")
    return (f"{snippet}: the `BatchNorm` statistics in the `State` differ along this `vmap`'s axis, which the "
            "layer's `axis_name` does not include (nested vmaps): name both axes, "
            "`BatchNorm(axis_name=(\"outer\", \"inner\"))` with `axis_name=` on each `vmap`, or return the "
            "state batched")
