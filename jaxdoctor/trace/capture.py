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
- Flax Linen `init`/`init_with_output`/`apply` outputs are checked for leaked tracers (JD504,
  `trace.leaks`).

Each jit trace is also logged for JD510 (`trace.retrace`). Every hook goes through
`jax_internals`; Equinox's argument names come from `eqx_internals`. Only traces that ran user
code are analysed (a `jax.random.split` called eagerly is jitted
inside JAX; its jaxpr is not the user's). Nothing here changes what the program computes.
"""

from __future__ import annotations

import functools
import sys
import threading
from typing import Any, Callable

from jaxdoctor.findings import Severity
from jaxdoctor.trace import eqx_internals as eqx
from jaxdoctor.trace.frames import (
    innermost_user_line,
    is_jaxdoctor_file,
    is_user_file,
    user_call_site,
    user_frames_on_stack,
)
from jaxdoctor.trace.leaks import leaked_tracers
from jaxdoctor.trace.retrace import jit_signature

_local = threading.local()


def _depth() -> int:
    return getattr(_local, "depth", 0)


class _Deeper:
    def __enter__(self) -> None:
        _local.depth = _depth() + 1

    def __exit__(self, *exc: Any) -> None:
        _local.depth = _depth() - 1


class Capture:
    def __init__(self, session: Any, retrace_log: Any) -> None:
        self.session = session
        self.retrace = retrace_log
        self._uninstall: list[Callable[[], None]] = []
        self._seen: set = set()
        self._state_lines: set = set()
        #: debug info of each trace → the user's expression that started it (for leaked tracers):
        #: (file, line, column, end_line, end_column)
        self._callsites: list[tuple[Any, tuple[str, int, int, int, int]]] = []
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
                        found = leaked_tracers(out, f"{type(self_mod).__name__}.{__meth}", self._callsites)
                    except Exception as exc:  # noqa: BLE001 - never break the program
                        self.session.note(f"leaked-tracer check failed: {exc!r}")
                    else:
                        if found is not None:
                            self.session.emit(found)
                return out

            functools.update_wrapper(wrapper, original)
            setattr(Module, meth, wrapper)
            self._uninstall.append(lambda m=meth, o=original: setattr(Module, m, o))

    # ------------------------------------------------------------------ jit traces
    def _on_jit_trace(self, call: Callable, fun: Any, args: tuple, kwargs: dict,
                      static_argnums: tuple, static_argnames: tuple, dbg: Any) -> Any:
        from jaxdoctor.trace import jax_internals as ji

        outer = _depth() == 0 and not _internal_jit(fun)
        stack = user_frames_on_stack() if outer else []
        with _Deeper():
            params = self._checking_leaks(call) if outer else call()
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

    def _checking_leaks(self, call: Callable) -> Any:
        """Trace under `jax.checking_leaks()` (JAX's leak checker; it changes no cache key): a
        tracer saved outside the function being traced (a global, a list, `self`) is JD504 at
        once, not an `UnexpectedTracerError` later or never. After a leak the function is traced
        again without the checker, so the program goes on as it would have."""
        import jax

        try:
            with jax.checking_leaks():
                return call()
        except Exception as exc:  # noqa: BLE001
            if not str(exc).startswith(("Leaked trace", "Leaked sublevel")):
                raise
            from jaxdoctor.trace.explain import explain, leak_is_users

            if leak_is_users(exc):
                self.session.emit(explain(exc))
        return call()

    def _record_retrace(self, fun, args, kwargs, static_argnums, static_argnames, dbg, name,
                        arg_names, in_avals, stack) -> None:
        from jaxdoctor.trace import jax_internals as ji

        src = ji.debug_info_source(dbg)
        if src is None:
            return
        eqx_names = eqx.names_for_call(fun, args)
        signature = jit_signature(fun, args, kwargs, static_argnums, static_argnames, arg_names, in_avals,
                                  eqx_names)
        user_callsite = stack[0] if stack else None
        code_key = ji.function_code_key(fun)
        self.retrace.record(
            src + (f"#{name}" if eqx_names else ""), name, signature, src_info=src,
            callsite=(user_callsite[0], user_callsite[2], 1) if user_callsite else None,
            identity=id(fun), code_key=code_key,
        )
        _local.just_traced = code_key  # the call that traced is not also a cache hit

    def on_call(self, fun: Any) -> None:
        """An executed jit call (from `trace.checks`): a cache hit for JD510, unless it traced."""
        from jaxdoctor.trace import jax_internals as ji

        key = ji.function_code_key(fun)
        if key is None or key not in self.retrace.code_keys:
            return
        if getattr(_local, "just_traced", None) == key:
            _local.just_traced = None
            return
        site = innermost_user_line()
        if site is not None:
            self.retrace.record_call(key, site)

    def _readable_names(self, arg_names: Any, fun: Any, args: tuple) -> Any:
        if arg_names is None:
            return None
        mapping = eqx.names_for_call(fun, args)
        return [mapping.get(n, n) for n in arg_names]

    # ------------------------------------------------------------------ other traces
    def _on_trace_to_jaxpr(self, call: Callable, fun: Any, dbg: Any) -> Any:
        stack = user_frames_on_stack()
        if stack:
            site = user_call_site()
            if site is not None:
                self._callsites.append((dbg, site))
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
        from jaxdoctor.trace import jax_internals as ji

        capture = self

        def make_vmap(original: Callable) -> Callable:
            @functools.wraps(original)
            def vmap(fun: Callable, in_axes: Any = 0, out_axes: Any = 0, axis_name: Any = None,
                     axis_size: Any = None, spmd_axis_name: Any = None, **extra: Any) -> Callable:
                real = original(fun, in_axes=in_axes, out_axes=out_axes, axis_name=axis_name,
                                axis_size=axis_size, spmd_axis_name=spmd_axis_name, **extra)

                @functools.wraps(real)
                def vmapped(*args: Any, **kwargs: Any) -> Any:
                    return capture._call_vmapped(real, fun, in_axes, axis_size, args, kwargs)

                return vmapped

            return vmap

        self._uninstall.append(ji.install_vmap_hook(make_vmap))

    def _call_vmapped(self, real: Callable, fun: Callable, in_axes: Any, axis_size: Any,
                      args: tuple, kwargs: dict) -> Any:
        import jax

        from jaxdoctor.trace import jax_internals as ji

        if _depth() > 1 or not (ji.trace_state_clean() or ji.current_trace_is_staging()):
            return real(*args, **kwargs)
        stack = user_frames_on_stack()
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
            self._check_state(args, kwargs, out, size)
        except Exception as exc:  # noqa: BLE001
            self.session.note(f"capture of a vmap failed: {exc!r}")
        return out

    def _check_state(self, args: tuple, kwargs: dict, out: Any, size: Any) -> None:
        """JD522: an Equinox `State` that this `vmap` returned batched (`trace.eqx_state`)."""
        from jaxdoctor.trace.eqx_state import batched_state

        found = batched_state((args, kwargs), out, size)
        site = user_call_site(skip=3)
        if found is None or site is None or site[:2] in self._state_lines:
            return
        self._state_lines.add(site[:2])
        from jaxdoctor.registry import all_rules

        leaf, before, after = found
        shown = f"{leaf}: " if "flat index" not in leaf else ""
        message = (f"this `vmap` returns the `eqx.nn.State` batched ({shown}{before} → {after}): `out_axes` maps "
                   "it, so every example keeps its own copy of the layer's statistics; give the state "
                   "`out_axes=None`, and the next call that passes it with `in_axes=None` works")
        self.session.emit(all_rules()["JD522"].finding(message, *site, severity=Severity.WARNING,
                                                       details={"leaf": leaf, "before": before, "after": after}))

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


def _internal_jit(fun: Any) -> bool:
    """An eager primitive's jit, or one of jaxdoctor's own checks: never the user's function."""
    from jaxdoctor.trace import jax_internals as ji

    if ji.is_eager_primitive(fun):
        return True
    key = ji.function_code_key(fun)
    return key is not None and is_jaxdoctor_file(key[0])


def _is_user_function(dbg: Any) -> bool:
    """Is the jitted function itself defined in the user's code (`"f at /path:12"`)?"""
    from jaxdoctor.trace import jax_internals as ji

    src = ji.debug_info_source(dbg) or ""
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
