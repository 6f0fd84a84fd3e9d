"""Every use of Equinox's private call layout in jaxdoctor lives in this file.

The contract, as of equinox 0.13 (re-check it here, and only here, on an Equinox upgrade):

- `eqx.filter_jit` jits an internal function defined in `equinox._jit`, called as
  `fun(dynamic_donate, dynamic_nodonate, static)`; jit sees `static` (argument 2) as a static
  argument and names the array leaves `dynamic_nodonate['first'][i]` / `['rest'][i]` (or
  `dynamic_donate[...]`).
- `static` is `(static_fun, static_first, static_rest)`, each a `(leaves, treedef)` pair:
  the user's function, its first argument and the `(args[1:], kwargs)` tree; the leaves that
  are not arrays (`None` where an array is).
- Under `eqx.filter_jit`, the frame of equinox's `_call` has locals `info`, `args`, `kwargs`
  and the module global `_preprocess(info, args, kwargs, return_static=True)`, which rebuilds
  `static` from them.

Everything here maps those internal names back to the user's own argument names, and fails
soft: a layout that no longer matches gives no names, never an error.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

#: The position of `static` among the arguments of the function `eqx.filter_jit` jits.
STATIC_ARGNUM = 2


def is_filter_jit_call(fun: Any) -> bool:
    """Is `fun` the internal function `eqx.filter_jit` hands to `jax.jit`?"""
    return getattr(fun, "__module__", "") == "equinox._jit" or "equinox" in getattr(
        getattr(fun, "__code__", None), "co_filename", ""
    )


def names_for_call(fun: Any, args: tuple) -> dict[str, str]:
    """For a jit trace of `fun(*args)`: Equinox's internal argument names → the user's names
    (empty when `fun` is not `eqx.filter_jit`'s)."""
    if not is_filter_jit_call(fun) or len(args) != 3:
        return {}
    try:
        return argument_names(args[STATIC_ARGNUM])
    except Exception:  # noqa: BLE001 - another layout: no names
        return {}


def static_signature(args: tuple, names: dict[str, str], describe: Callable[[Any], str]) -> dict[str, str]:
    """The non-array leaves of a `filter_jit` call (its static half), by the user's names:
    `{"flag": describe(True), ...}`."""
    static_fun, static_first, static_rest = args[STATIC_ARGNUM]
    out = {}
    for prefix, (leaves, _treedef) in (("first", static_first), ("rest", static_rest)):
        for i, leaf in enumerate(leaves):
            if leaf is not None:
                name = names.get(f"dynamic_nodonate['{prefix}'][{i}]", f"{prefix}[{i}]")
                out[name] = describe(leaf)
    return out


def argument_names(static: Any) -> dict[str, str]:
    """From `static = (static_fun, static_first, static_rest)` build
    `{"dynamic_nodonate['rest'][2]": "x", ...}` for both the donate and nodonate spellings."""
    import jax

    static_fun, static_first, static_rest = static
    fun_leaves, fun_tree = static_fun
    fun = jax.tree_util.tree_unflatten(fun_tree, list(fun_leaves))
    try:
        params = list(inspect.signature(fun).parameters)
    except (TypeError, ValueError):
        params = []
    out: dict[str, str] = {}

    def add(prefix: str, i: int, name: str) -> None:
        for kind in ("dynamic_nodonate", "dynamic_donate"):
            out[f"{kind}['{prefix}'][{i}]"] = name

    first_leaves, first_tree = static_first
    first_name = params[0] if params else "args[0]"
    paths = jax.tree_util.tree_flatten_with_path(jax.tree_util.tree_unflatten(first_tree, list(range(len(first_leaves)))))[0]
    for path, i in paths:
        add("first", i, first_name + jax.tree_util.keystr(path))
    rest_leaves, rest_tree = static_rest
    paths = jax.tree_util.tree_flatten_with_path(jax.tree_util.tree_unflatten(rest_tree, list(range(len(rest_leaves)))))[0]
    for path, i in paths:
        top, rest = path[0].idx, path[1:]
        if top == 0:
            k = rest[0].idx + 1
            base = params[k] if k < len(params) else f"args[{k}]"
        else:
            base = str(rest[0].key)
        add("rest", i, base + jax.tree_util.keystr(tuple(rest[1:])))
    return out


def names_from_traceback(exc: BaseException) -> dict[str, str]:
    """Equinox's internal argument names → the user's, read from the `filter_jit` call in the
    traceback of `exc` (empty when there is none, or its layout is another)."""
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_name == "_call" and "equinox" in frame.f_code.co_filename:
            try:
                loc = frame.f_locals
                preprocess = frame.f_globals["_preprocess"]
                _, _, static = preprocess(loc["info"], loc["args"], loc["kwargs"], return_static=True)
                return argument_names(static)
            except Exception:  # noqa: BLE001 - best effort
                return {}
        tb = tb.tb_next
    return {}


# --- stateful layers (`eqx.nn.State`, `BatchNorm`) under vmap -----------------------------------
# As of equinox 0.13: `BatchNorm.__call__` (equinox/nn/_batch_norm.py) calls `lax.pmean` over its
# `axis_name`, and `State.set` (equinox/nn/_stateful.py) raises ValueError("Old and new values
# have different structures/shapes/dtypes...") when the new value's shape is not the old one's.


def raised_in_batch_norm(exc: BaseException) -> bool:
    """Was `exc` raised while an Equinox `BatchNorm` was running?"""
    return _in_files(exc, ("/equinox/nn/_batch_norm.py",))


def is_state_shape_error(exc: BaseException) -> bool:
    """`State.set` refusing a value of another shape (the state was batched by a `vmap`)."""
    return (isinstance(exc, ValueError) and "Old and new values have different" in str(exc)
            and _in_files(exc, ("/equinox/nn/_stateful.py",)))


def _in_files(exc: BaseException, suffixes: tuple[str, ...]) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename.replace("\\", "/")
        if name.endswith(suffixes):
            return True
        tb = tb.tb_next
    return False


def state_in_frames(exc: BaseException) -> bool:
    """Did a frame of `exc`'s traceback hold an `eqx.nn.State` among its arguments?"""
    state_cls = state_class()
    if state_cls is None:
        return False
    import jax

    tb = exc.__traceback__
    while tb is not None:
        loc = tb.tb_frame.f_locals
        for key in ("args", "kwargs", "args_flat", "in_tree"):
            val = loc.get(key)
            try:
                leaves = jax.tree_util.tree_leaves(val, is_leaf=lambda x: isinstance(x, state_cls))
            except Exception:  # noqa: BLE001
                continue
            if any(isinstance(x, state_cls) for x in leaves):
                return True
        tb = tb.tb_next
    return False


def state_class() -> type | None:
    """`eqx.nn.State`, if the program imported Equinox (never imported here otherwise)."""
    import sys

    eqx = sys.modules.get("equinox")
    nn = getattr(eqx, "nn", None) if eqx is not None else None
    return getattr(nn, "State", None)


def call_on_stack() -> tuple[dict[str, str], Any] | None:
    """While an `eqx.filter_jit` call runs (compiles): its internal argument names → the user's,
    and the user's function, read from equinox's `_call` frame on the live stack; None outside
    such a call (or with another layout)."""
    import sys

    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "_call" and "equinox" in frame.f_code.co_filename:
            try:
                loc = frame.f_locals
                preprocess = frame.f_globals["_preprocess"]
                _, _, static = preprocess(loc["info"], loc["args"], loc["kwargs"], return_static=True)
                import jax

                fun_leaves, fun_tree = static[0]
                return argument_names(static), jax.tree_util.tree_unflatten(fun_tree, list(fun_leaves))
            except Exception:  # noqa: BLE001 - best effort
                return None
        frame = frame.f_back
    return None
