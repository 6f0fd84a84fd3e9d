"""NaN and infinity, run under the doctor: JD124 where-nan-gradient and JD520 non-finite-value.

JAX's `jax_debug_nans` checks the outputs of every executed jit call and stops the program at
the first NaN, even a harmless one, and under `jit(grad(...))` it names the `grad` call, not the
operation. The doctor uses the same hook (`jax_internals.install_call_hooks`) without stopping
anything, and attributes the NaN itself:

- a jitted call whose inputs are finite and whose outputs hold a NaN (or a scalar infinity: a
  loss) is re-run equation by equation (`jax_internals.nonfinite_origin`) to find the equation
  that made it from finite values, and the user's line of that equation. A NaN made in the
  backward pass from a `jnp.where`-masked `sqrt`/`log`/division (the classic NaN gradient) is
  JD124 with its explanation; any other is JD520. A NaN from a NaN literal or input is left alone.
- an eager operation that makes a NaN is reported at once inside a backward pass (an eager
  `grad`: JAX runs the transposed equations with their source lines), else when the NaN goes on
  into another operation's result (a NaN `jnp.where` masks away is not a finding).

Each function and each line is reported once; once a function produced a NaN its later calls
are not checked again (their inputs are NaN by then). Nothing here changes a value.
"""

from __future__ import annotations

import collections
import threading
from typing import Any

from jaxdoctor.findings import Origin
from jaxdoctor.trace import jax_internals as ji
from jaxdoctor.trace.frames import innermost_user_line, is_user_file, line_span, source_line, user_call_site

#: stop checking after this many findings (a diverged run makes NaNs everywhere)
MAX_FINDINGS = 5
#: eager operations outside a backward pass are checked only when this small (a loss, a norm):
#: checking every eager result would copy it to the host and wait for it
EAGER_MAX_SIZE = 16
_local = threading.local()


def _busy() -> bool:
    return getattr(_local, "busy", False)


def _float_leaves(tree: Any) -> list:
    import jax
    import numpy as np

    out = []
    for x in jax.tree_util.tree_leaves(tree):
        dtype = getattr(x, "dtype", None)
        try:
            if dtype is not None and np.issubdtype(np.dtype(dtype), np.inexact) and not ji.is_tracer(x):
                out.append(x)
        except TypeError:  # extended dtypes (PRNG keys)
            continue
    return out


class NonFiniteWatch:
    def __init__(self, session: Any, user_jits: Any = None) -> None:
        self.session = session
        #: code keys (`jax_internals.function_code_key`) of the jitted functions that run the
        #: user's code: their every call is checked; other jits (a `jnp` function called
        #: eagerly) are checked like eager operations
        self.user_jits = user_jits if user_jits is not None else set()
        self.done_functions: set = set()
        self.lines: set = set()
        self.found = 0
        #: jitted calls whose flags are not read yet: (fun, args, kwargs, flags, traced)
        self.waiting: list = []
        #: eager NaNs not reported yet: id(array) -> (array, location, primitive)
        self.pending: collections.OrderedDict = collections.OrderedDict()
        #: id → weakref of the non-finite outputs of backward-pass operations seen so far
        self.nonfinite_out: dict = {}

    # ------------------------------------------------------------------ per executed call
    def on_output(self, fun: Any, args: tuple, kwargs: dict, output: Any, traced: Any) -> None:
        if _busy() or self.found >= MAX_FINDINGS:
            return
        _local.busy = True
        try:
            key = ji.function_code_key(fun)
            if key not in self.user_jits or ji.is_eager_primitive(fun):
                self._eager(fun, args, kwargs, output)
                return
            if key in self.done_functions:
                return
            leaves = _float_leaves(output)
            if leaves:
                # flags computed next to the data; read one call later, so the program never waits
                site = innermost_user_line(skip=3)
                self.waiting.append((fun, args, kwargs, ji.nonfinite_flags(leaves), traced, key, site))
            self.drain(block=len(self.waiting) > 2)
        except Exception as exc:  # noqa: BLE001 - a check must never break the program
            self.session.note(f"NaN check failed: {type(exc).__name__}: {exc}")
        finally:
            _local.busy = False

    def drain(self, block: bool = True) -> None:
        """Read the flags of finished calls (all of them when `block`) and attribute any NaN."""
        keep = []
        for item in self.waiting:
            fun, args, kwargs, flags, traced, key, site = item
            if not block and not ji.flags_ready(flags):
                keep.append(item)
                continue
            nan, inf = bool(flags[0]), bool(flags[1])
            if (nan or inf) and key not in self.done_functions and self.found < MAX_FINDINGS:
                self.done_functions.add(key)
                self._jitted(fun, args, kwargs, "nan" if nan else "inf", traced,
                             line_span(*site) if site is not None else None)
        self.waiting = keep

    def finish(self) -> None:
        """At the end of the run: the calls whose flags were not read yet."""
        _local.busy = True
        try:
            self.drain(block=True)
        except Exception as exc:  # noqa: BLE001
            self.session.note(f"NaN check failed: {type(exc).__name__}: {exc}")
        finally:
            _local.busy = False

    # ------------------------------------------------------------------ eager operations
    def _eager(self, fun: Any, args: tuple, kwargs: dict, output: Any) -> None:
        in_backward = ji.in_transform_context()
        if not in_backward:
            import jax

            small = [x for x in jax.tree_util.tree_leaves(output) if getattr(x, "size", EAGER_MAX_SIZE + 1) <= EAGER_MAX_SIZE]
            if not small:
                return
            leaves = _float_leaves(small)
        else:
            leaves = _float_leaves(output)
        if in_backward:
            self._backward(fun, args, kwargs, leaves)
            return
        kind = None
        for x in leaves:
            k = ji.nonfinite_kind(x, inf=getattr(x, "size", 0) == 1)
            if k == "nan" or (k == "inf" and kind is None):
                kind = k
        if kind is None:
            return
        prim = ji.jit_function_name(fun)
        if self._carried(kind, _float_leaves((args, kwargs))):
            return
        if kind != "nan":
            return
        site = user_call_site(skip=3)
        if site is None:
            return
        for x in leaves:
            if ji.nonfinite_kind(x) == "nan":
                self.pending[id(x)] = (x, site, prim)
        while len(self.pending) > 64:
            self.pending.popitem(last=False)

    def _backward(self, fun: Any, args: tuple, kwargs: dict, leaves: list) -> None:
        """An equation of a traced program run eagerly (the backward pass of `grad`) that made a
        NaN: reported at its user line, unless the NaN came in from an equation already seen. An
        infinity made here is remembered with its line: a NaN made from it says where it came from."""
        kinds = [ji.nonfinite_kind(x) for x in leaves]
        if not any(kinds):
            return
        frames, name_stack = ji.current_transform_frames()
        user = [fr for fr in frames if is_user_file(fr.file)]
        loc = (user[0].file, user[0].line, user[0].column, user[0].end_line, user[0].end_column) if user else None
        came_in = [self._seen(x) for x in _float_leaves((args, kwargs))]
        came_in = [c for c in came_in if c is not None]
        self._remember(leaves, kinds, loc)
        if loc is None:
            return
        if "nan" not in kinds:  # an infinite scalar (a loss's gradient) made from finite values
            if not came_in and any(k == "inf" and getattr(x, "size", 0) == 1 for x, k in zip(leaves, kinds)):
                self._emit("inf", ji.jit_function_name(fun), loc, backward="transpose" in name_stack,
                           masked=False, where_fn=None)
            return
        if any(kind == "nan" for kind, _ in came_in):
            return  # a NaN carried on from an equation already seen (reported there)
        inf_from = next((where for kind, where in came_in if kind == "inf" and where is not None), None)
        # a non-finite input nobody saw made: a residual JAX computed in the forward pass (inside
        # one of its own jitted functions, such as `jnp.linalg.norm`)
        received = inf_from is None and any(
            ji.nonfinite_kind(x) is not None for x in _float_leaves((args, kwargs)))
        self._emit("nan", ji.jit_function_name(fun), loc, backward="transpose" in name_stack, masked=False,
                   where_fn=None, inf_line=inf_from[:2] if inf_from is not None else None, received=received)

    def _remember(self, outputs: list, kinds: list, loc: tuple | None) -> None:
        """Note the non-finite outputs of a backward-pass operation (by identity, weakly), with
        their kind and line: an operation they go into did not make them."""
        import weakref

        for x, kind in zip(outputs, kinds):
            if kind is None:
                continue
            try:
                self.nonfinite_out[id(x)] = (weakref.ref(x), kind, loc)
            except TypeError:
                pass
        while len(self.nonfinite_out) > 256:
            self.nonfinite_out.pop(next(iter(self.nonfinite_out)))

    def _seen(self, x: Any) -> tuple[str, tuple | None] | None:
        """(kind, line) of a non-finite backward output `x` seen before, else None."""
        hit = self.nonfinite_out.get(id(x))
        if hit is None or hit[0]() is not x:
            return None
        return hit[1], hit[2]

    def _carried(self, kind: str, ins: list) -> bool:
        """Did the NaN (infinity) come in through an input? Then an earlier operation made it:
        the eager one that made it and was waiting for its NaN to go on is reported now."""
        came_in = [x for x in ins if ji.nonfinite_kind(x) == kind]
        for x in came_in:
            hit = self.pending.pop(id(x), None)
            if hit is not None and hit[0] is x:
                self._emit("nan", hit[2], hit[1], backward=False, masked=False, where_fn=None)
                break
        return bool(came_in)

    # ------------------------------------------------------------------ jitted functions
    def _jitted(self, fun: Any, args: tuple, kwargs: dict, kind: str, traced: Any, site: tuple | None) -> None:
        name = ji.jit_function_name(fun)
        if any(ji.nonfinite_kind(x) == kind for x in _float_leaves((args, kwargs))):
            return  # it came in: made by an earlier call (reported there, or from the data)
        if traced is None:
            traced = ji.jit_call_jaxpr(fun, args, kwargs)
        origin = ji.nonfinite_origin(*traced) if traced is not None else None
        if origin is not None and origin.literal:
            return  # a NaN/inf literal or constant put there on purpose
        loc = None
        if origin is not None:
            for frames in (origin.frames, *origin.parents):
                user = [fr for fr in frames if is_user_file(fr.file)]
                if user:
                    fr = user[0]
                    loc = (fr.file, fr.line, fr.column, fr.end_line, fr.end_column)
                    break
            source = ji.jit_function_source(fun)
            if loc is None or (source is not None and not is_user_file(source)):
                loc = site or loc  # a library's jit: the user's call of it
        if loc is None:
            loc = site
            if loc is None:
                return
            self._emit(kind, None, loc, backward=False, masked=False, where_fn=name, replayed=False)
            return
        inf_loc = None
        if origin.inf_from is not None and not origin.inf_from.literal:
            user = [fr for fr in origin.inf_from.frames if is_user_file(fr.file)]
            if user:
                inf_loc = (user[0].file, user[0].line)
        self._emit(origin.kind, origin.primitive, loc, backward=origin.backward, masked=origin.masked,
                   where_fn=name, inf_line=inf_loc)

    # ------------------------------------------------------------------ findings
    def _emit(self, kind: str, prim: str | None, loc: tuple, *, backward: bool, masked: bool,
              where_fn: str | None, inf_line: tuple | None = None, replayed: bool = True,
              received: bool = False) -> None:
        from jaxdoctor.registry import all_rules

        path, line = loc[0], loc[1]
        if (path, line) in self.lines:
            return
        self.lines.add((path, line))
        self.found += 1
        src = source_line(path, line)
        code_text = f"`{src}`" if src and len(src) <= 80 else "this line"
        what = "NaN" if kind == "nan" else "an infinite value"
        op = f"`{prim}`" if prim else "an operation"
        in_fn = f" of `{where_fn}`" if where_fn else ""
        where_masked = "where(" in src
        details = {"value": kind, "primitive": prim, "backward_pass": backward, "function": where_fn}
        if kind == "nan" and (masked or (backward and where_masked)):
            message = (
                f"{code_text}: the gradient is NaN. In the backward pass {op} made {what} from finite values: "
                "`jnp.where` picks the other branch in the forward pass, but the gradient of the masked "
                "branch is still computed (an infinite slope of `sqrt`/`log`/`1/x` at the masked inputs, "
                "times 0, is NaN) and reaches the result"
            )
            rule = all_rules()["JD124"]
            fix = rule.fix_title
        else:
            stage = "in the backward pass (the gradient) " if backward else ""
            message = f"{code_text}: {op} made {what} {stage}from finite values"
            if received:
                message = (f"{code_text}: {what} appears {stage or 'in the gradient '}at {op}, from a value "
                           "computed for this line in the forward pass (a derivative that is infinite or "
                           "undefined at these inputs, such as that of `sqrt` or `norm` at 0)")
            if inf_line is not None and inf_line != (path, line):
                message += f" (an infinity made at line {inf_line[1]}, times 0 or minus itself)"
                details["infinity_line"] = inf_line[1]
            if where_fn and replayed:
                message += f", and it reached the result{in_fn}"
            elif where_fn:
                message += f"{in_fn}: it appeared in the compiled result only (re-run equation by equation, the values stay finite)"
            rule = all_rules()["JD520"]
            fix = rule.fix_title
        col, end_line, end_col = loc[2], loc[3], loc[4]
        self.session.emit(rule.finding(message, path, line, col, end_line, max(end_col, col) if end_line == line else end_col,
                                       fix_title=fix, details=details, origin=Origin.TRACE))
