"""Run under the doctor: capture every function JAX traces while the user's program runs.

Installed in the child process before the user's code is imported:

- every `jit` trace (jax.jit, nnx.jit, eqx.filter_jit, make_jaxpr, eval_shape) — a cache miss,
  so once per new signature — hands its ClosedJaxpr to the analyzers and is logged for JD510;
- loop/cond bodies traced outside any jit (an eager `lax.scan`, Linen `init` around a raw
  `lax.scan`) are captured the same way;
- `jax.vmap` (and so nnx.vmap, eqx.filter_vmap, Linen lifted vmap) called eagerly or directly
  inside a jit is traced once with `make_jaxpr` and its jaxpr *evaluated*, so the user's Python
  runs exactly once, and the batched jaxpr reaches the analyzers with the batch axis of every
  input;
- Flax Linen `init`/`init_with_output`/`apply` outputs are checked for leaked tracers (JD504).

Only traces that ran user code are analysed (a `jax.random.split` called eagerly is jitted
inside JAX; its jaxpr is not the user's). Nothing here changes what the program computes.
"""

from __future__ import annotations

import functools
import sys
import threading
from typing import Any, Callable

from jaxdoctor.trace.frames import is_user_file

_local = threading.local()


def _depth() -> int:
    return getattr(_local, "depth", 0)


class _Deeper:
    def __enter__(self) -> None:
        _local.depth = _depth() + 1

    def __exit__(self, *exc: Any) -> None:
        _local.depth = _depth() - 1


def _stack_user_frames(skip: int = 2) -> list[tuple[str, str, int]]:
    """(file, qualname, line) of the user's frames now on the Python stack, innermost first."""
    out = []
    f = sys._getframe(skip)
    while f is not None:
        code = f.f_code
        if is_user_file(code.co_filename):
            out.append((code.co_filename, getattr(code, "co_qualname", code.co_name), f.f_lineno))
        f = f.f_back
    return out


class Capture:
    def __init__(self, session: Any, retrace_log: Any) -> None:
        self.session = session
        self.retrace = retrace_log
        self._uninstall: list[Callable[[], None]] = []
        self._seen: set = set()
        #: debug info of each trace → the user's line that started it (for leaked tracers)
        self._callsites: list[tuple[Any, tuple[str, int, int]]] = []
        self.captured = 0

    # ------------------------------------------------------------------ installation
    def install(self) -> None:
        from jaxdoctor.trace import jax_internals as ji

        self._uninstall.append(ji.install_jit_trace_hook(self._on_jit_trace))
        self._uninstall.append(ji.install_trace_to_jaxpr_hook(self._on_trace_to_jaxpr))
        self._patch_vmap()

    def uninstall(self) -> None:
        while self._uninstall:
            self._uninstall.pop()()

    def patch_flax_linen(self) -> None:
        """Check Linen `init`/`apply` outputs for leaked tracers (call once flax.linen is imported)."""
        if getattr(self, "_linen_patched", False) or "flax.linen" not in sys.modules:
            return
        self._linen_patched = True
        from flax.linen import Module

        for meth in ("init", "init_with_output", "apply"):
            original = getattr(Module, meth)

            def wrapper(self_mod: Any, *args: Any, __orig: Any = original, __meth: str = meth, **kwargs: Any) -> Any:
                outer = not getattr(_local, "in_linen", False)
                _local.in_linen = True
                try:
                    out = __orig(self_mod, *args, **kwargs)
                finally:
                    if outer:
                        _local.in_linen = False
                if outer and _depth() == 0:
                    try:
                        self._check_leaked(out, f"{type(self_mod).__name__}.{__meth}")
                    except Exception as exc:  # noqa: BLE001 - never break the program
                        self.session.note(f"leaked-tracer check failed: {exc!r}")
                return out

            functools.update_wrapper(wrapper, original)
            setattr(Module, meth, wrapper)
            self._uninstall.append(lambda m=meth, o=original: setattr(Module, m, o))

    # ------------------------------------------------------------------ jit traces
    def _on_jit_trace(self, call: Callable, fun: Any, args: tuple, kwargs: dict,
                      static_argnums: tuple, static_argnames: tuple, dbg: Any) -> Any:
        from jaxdoctor.trace import jax_internals as ji

        outer = _depth() == 0
        stack = _stack_user_frames() if outer else []
        with _Deeper():
            params = call()
        if not outer:
            return params
        try:
            closed, arg_names, in_avals = ji.jit_trace_result(params)
            name, _ = ji.debug_info_parts(dbg)
            if _is_user_function(dbg) or _ran_user_code(closed, stack):
                self._record_retrace(fun, args, kwargs, static_argnums, static_argnames, dbg,
                                     name or "fn", arg_names, in_avals, stack)
            key = ("jit", id(closed.jaxpr))
            self._analyze(closed, key, stack, entry_name=name or "fn",
                          arg_names=self._readable_names(arg_names, fun, args))
        except Exception as exc:  # noqa: BLE001
            self.session.note(f"capture of a jit trace failed: {exc!r}")
        return params

    def _record_retrace(self, fun, args, kwargs, static_argnums, static_argnames, dbg, name,
                        arg_names, in_avals, stack) -> None:
        from jaxdoctor.trace import jax_internals as ji

        src = getattr(dbg, "func_src_info", None)
        if src is None:
            return
        signature: dict[str, str] = {}
        dyn_names = list(arg_names or ())[-len(in_avals):] if in_avals else []
        eqx_names = _eqx_names(fun, args)
        for i, aval in enumerate(in_avals):
            raw = dyn_names[i] if i < len(dyn_names) else f"arg{i}"
            signature[eqx_names.get(raw, raw)] = ji.aval_signature(aval)
        for i in static_argnums:
            if i < len(args):
                if eqx_names and i == 2:  # equinox's static half: the non-array leaves
                    signature.update(_eqx_static_signature(args, eqx_names))
                    continue
                signature[_param_name(fun, i)] = "static " + _short_repr(args[i])
        for k in static_argnames:
            if k in kwargs:
                signature[k] = "static " + _short_repr(kwargs[k])
        user_callsite = stack[0] if stack else None
        self.retrace.record(
            src + (f"#{name}" if eqx_names else ""), name, signature, src_info=src,
            callsite=(user_callsite[0], user_callsite[2], 1) if user_callsite else None,
            identity=id(fun),
        )

    def _readable_names(self, arg_names: Any, fun: Any, args: tuple) -> Any:
        if arg_names is None:
            return None
        mapping = _eqx_names(fun, args)
        return [mapping.get(n, n) for n in arg_names]

    # ------------------------------------------------------------------ other traces
    def _on_trace_to_jaxpr(self, call: Callable, fun: Any, dbg: Any) -> Any:
        stack = _stack_user_frames()
        if stack:
            self._callsites.append((dbg, (stack[0][0], stack[0][2], 1)))
            del self._callsites[:-2000]
        if _depth() != 0:
            return call()
        with _Deeper():
            result = call()
        try:
            closed = result[0]
            from jaxdoctor.trace import jax_internals as ji

            name, names = ji.debug_info_parts(dbg)
            self._analyze(closed, ("body", id(closed.jaxpr)), stack, entry_name=name or "fn",
                          arg_names=list(names) if names else None)
        except Exception as exc:  # noqa: BLE001
            self.session.note(f"capture of a traced body failed: {exc!r}")
        return result

    # ------------------------------------------------------------------ vmap
    def _patch_vmap(self) -> None:
        import jax
        from jax._src import api as _api

        original = jax.vmap
        capture = self

        @functools.wraps(original)
        def vmap(fun: Callable, in_axes: Any = 0, out_axes: Any = 0, axis_name: Any = None,
                 axis_size: Any = None, spmd_axis_name: Any = None, **extra: Any) -> Callable:
            real = original(fun, in_axes=in_axes, out_axes=out_axes, axis_name=axis_name,
                            axis_size=axis_size, spmd_axis_name=spmd_axis_name, **extra)

            @functools.wraps(real)
            def vmapped(*args: Any, **kwargs: Any) -> Any:
                return capture._call_vmapped(real, fun, in_axes, axis_size, args, kwargs)

            return vmapped

        jax.vmap = vmap
        _api.vmap = vmap
        self._uninstall.append(lambda: (setattr(jax, "vmap", original), setattr(_api, "vmap", original)))

    def _call_vmapped(self, real: Callable, fun: Callable, in_axes: Any, axis_size: Any,
                      args: tuple, kwargs: dict) -> Any:
        import jax

        from jaxdoctor.trace import jax_internals as ji

        if _depth() > 1 or not (ji.trace_state_clean() or ji.current_trace_is_staging()):
            return real(*args, **kwargs)
        stack = _stack_user_frames()
        try:
            with _Deeper():
                closed, out_shape = jax.make_jaxpr(real, return_shape=True)(*args, **kwargs)
        except Exception:
            # Let the real vmap run (and raise, if the program is wrong) exactly as without us.
            return real(*args, **kwargs)
        leaves = jax.tree_util.tree_leaves((args, kwargs))
        if len(leaves) != len(closed.in_avals):
            return real(*args, **kwargs)
        with _Deeper():
            out_flat = ji.jaxpr_as_fun(closed)(*leaves)
        out = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(out_shape), out_flat)
        try:
            axes = ji.vmap_in_axes_flat(in_axes, args, kwargs)
            if axes is not None and len(axes) != len(leaves):
                axes = None
            size = axis_size
            if size is None and axes is not None:
                for leaf, ax in zip(leaves, axes):
                    if ax is not None and getattr(leaf, "ndim", 0):
                        size = int(leaf.shape[ax])
                        break
            name = getattr(fun, "__name__", None) or type(fun).__name__
            self._analyze(closed, ("vmap", id(closed.jaxpr)), stack, entry_name=name,
                          arg_names=_leaf_names(fun, args, kwargs), batch_axes=axes, batch_size=size,
                          vmapped=True)
        except Exception as exc:  # noqa: BLE001
            self.session.note(f"capture of a vmap failed: {exc!r}")
        return out

    # ------------------------------------------------------------------ analysis
    def _analyze(self, closed: Any, key: Any, stack: list, *, entry_name: str, arg_names: Any,
                 batch_axes: Any = None, batch_size: Any = None, vmapped: bool = False) -> None:
        sig = (entry_name, str(closed.in_avals), str(batch_axes), len(closed.jaxpr.eqns))
        if sig in self._seen:
            return
        self._seen.add(sig)
        if not _ran_user_code(closed, stack):
            return
        self.captured += 1
        self.session.analyze(closed, batch_axes=batch_axes, batch_size=batch_size,
                             entry_name=entry_name, arg_names=arg_names)

    # ------------------------------------------------------------------ leaked tracers (JD504)
    def _check_leaked(self, out: Any, where: str) -> None:
        import jax

        from jaxdoctor.trace import jax_internals as ji

        leaked = [(path, leaf) for path, leaf in jax.tree_util.tree_flatten_with_path(out)[0]
                  if isinstance(leaf, jax.core.Tracer)]
        if not leaked:
            return
        path, tracer = leaked[0]
        dbg = ji.tracer_debug_info(tracer)
        site = None
        for d, s in reversed(self._callsites):
            if d is dbg:
                site = s
                break
        func, _ = ji.debug_info_parts(dbg)
        if site is None:
            stack = _stack_user_frames()
            if not stack:
                return
            site = (stack[0][0], stack[0][2], 1)
        from jaxdoctor.rules.jaxpr import LeakedTracer

        names = [jax.tree_util.keystr(p) for p, _ in leaked]
        shown = ", ".join(f"`{n}`" for n in names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        message = (
            f"`{where}` returned {len(leaked)} leaked tracer(s) ({shown}) created inside the JAX "
            f"transform traced here (`{func or 'fn'}`): a raw `jax.lax`/`jax.vmap` transform "
            "around Flax submodule calls; using these values later raises `UnexpectedTracerError`"
        )
        self.session.emit(LeakedTracer.finding(
            message, site[0], site[1], site[2], site[1], 1,
            fix_title="Use Flax's lifted transforms (`nn.scan`, `nn.cond`, `nn.vmap`, `nn.jit`) inside Linen modules",
            details={"outputs": names[:20], "transform_function": func},
        ))


def _is_user_function(dbg: Any) -> bool:
    """Is the jitted function itself defined in the user's code (`"f at /path:12"`)?"""
    src = getattr(dbg, "func_src_info", None) or ""
    _, sep, where = src.rpartition(" at ")
    return bool(sep) and is_user_file(where.rsplit(":", 1)[0])


def _ran_user_code(closed: Any, stack: list) -> bool:
    """True when some equation was traced from a user frame that was not already on the stack
    when the trace started (i.e. the traced function itself is, or calls, user code)."""
    from jaxdoctor.trace import jax_internals as ji

    on_stack = {(f, q) for f, q, _ in stack}
    todo = [closed.jaxpr]
    seen = 0
    while todo and seen < 20000:
        jaxpr = todo.pop()
        for eqn in jaxpr.eqns:
            seen += 1
            for fr in ji.eqn_frames(eqn):
                if is_user_file(fr.file) and (fr.file, fr.function) not in on_stack:
                    return True
            todo.extend(sub.jaxpr for sub in ji.sub_jaxprs(eqn))
    return False


def _param_name(fun: Any, i: int) -> str:
    import inspect

    try:
        params = list(inspect.signature(fun).parameters)
        return params[i] if i < len(params) else f"args[{i}]"
    except (TypeError, ValueError):
        return f"args[{i}]"


def _leaf_names(fun: Any, args: tuple, kwargs: dict) -> list[str] | None:
    import inspect

    import jax

    try:
        params = list(inspect.signature(fun).parameters)
    except (TypeError, ValueError):
        params = []
    out = []
    for path, _ in jax.tree_util.tree_flatten_with_path((args, kwargs))[0]:
        top, rest = path[0].idx, path[1:]
        if top == 0:
            i = rest[0].idx
            base = params[i] if i < len(params) else f"args[{i}]"
        else:
            base = str(rest[0].key)
        out.append(base + jax.tree_util.keystr(tuple(rest[1:])))
    return out


def _short_repr(x: Any) -> str:
    try:
        r = repr(x)
    except Exception:  # noqa: BLE001
        r = f"<{type(x).__name__}>"
    return r if len(r) <= 60 else r[:57] + "..."


# ---------------------------------------------------------------- equinox's filter_jit names


def _is_eqx_wrapped(fun: Any) -> bool:
    return getattr(fun, "__module__", "") == "equinox._jit" or "equinox" in getattr(
        getattr(fun, "__code__", None), "co_filename", ""
    )


def _eqx_names(fun: Any, args: tuple) -> dict[str, str]:
    """Equinox's internal argument names (`dynamic_nodonate['rest'][2]`) → the user's names."""
    if not _is_eqx_wrapped(fun) or len(args) != 3:
        return {}
    try:
        return eqx_argument_names(args[2])
    except Exception:  # noqa: BLE001
        return {}


def _eqx_static_signature(args: tuple, names: dict[str, str]) -> dict[str, str]:
    static_fun, static_first, static_rest = args[2]
    out = {}
    for prefix, (leaves, _treedef) in (("first", static_first), ("rest", static_rest)):
        for i, leaf in enumerate(leaves):
            if leaf is not None:
                name = names.get(f"dynamic_nodonate['{prefix}'][{i}]", f"{prefix}[{i}]")
                out[name] = "static " + _short_repr(leaf)
    return out


def eqx_argument_names(static: Any) -> dict[str, str]:
    """From equinox's `static = (static_fun, static_first, static_rest)` build
    `{"dynamic_nodonate['rest'][2]": "x", ...}` for both the donate and nodonate spellings."""
    import inspect

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
