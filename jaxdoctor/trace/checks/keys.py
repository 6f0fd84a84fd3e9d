"""JD110 prng-key-reuse, run under the doctor: one key consumed twice by `jax.random` calls in
the user's own code, outside any trace (where JD503 reads the jaxpr instead).

Every public `jax.random` function receives its key through one JAX function; the doctor sees
each key there (`jax_internals.install_prng_key_hook`), typed keys (`jax.random.key`) and raw
ones (`jax.random.PRNGKey`, which JAX's own `jax_debug_key_reuse` cannot follow) alike, and
remembers which key objects were consumed (drawn from or split; `fold_in` does not consume).
Only calls made directly from the user's code count: a key handed to a library that splits it
(`eqx.nn.Linear(..., key=key)`) and then used by the user is a different, milder habit, and
JAX's own checker stopping the program there would be wrong for a doctor. The program runs on.
"""

from __future__ import annotations

import collections
import sys
from typing import Any

from jaxdoctor.findings import Origin
from jaxdoctor.trace import jax_internals as ji
from jaxdoctor.trace.frames import is_user_file, source_line, user_call_site

#: `jax.random` functions that read a key without consuming it
NOT_CONSUMING = frozenset({"fold_in", "key_data", "key_impl", "clone", "wrap_key_data"})


class KeyLedger:
    def __init__(self, session: Any) -> None:
        self.session = session
        #: id(key) -> (key, (file, line, ...), function): keys consumed by the user's code
        self.consumed: collections.OrderedDict = collections.OrderedDict()
        self.lines: set = set()

    def on_key(self, name: str, key: Any) -> None:
        if name in NOT_CONSUMING or ji.is_tracer(key) or not _called_by_user():
            return
        site = user_call_site(skip=3)
        if site is None:
            return
        prev = self.consumed.get(id(key))
        if prev is not None and prev[0] is key:
            self._report(name, site, prev)
            return
        self.consumed[id(key)] = (key, site, name)
        while len(self.consumed) > 4096:
            self.consumed.popitem(last=False)

    def _report(self, name: str, site: tuple, prev: tuple) -> None:
        from jaxdoctor.registry import all_rules

        path, line, col, end_line, end_col = site
        if (path, line) in self.lines:
            return
        self.lines.add((path, line))
        _, (ppath, pline, *_), pname = prev
        src = source_line(path, line)
        where = f"line {pline}" if ppath == path else f"{ppath}:{pline}"
        same = "the same call, on an earlier pass of the loop" if (ppath, pline) == (path, line) else where
        kind = "raw `uint32[2]` key (`jax.random.PRNGKey`)" if _is_raw(prev[0]) else "key"
        message = (
            f"`{src}` consumes a {kind} that `jax.random.{pname}` already consumed ({same}): "
            f"`jax.random.{name}` gets the same random bits again"
        )
        rule = all_rules()["JD110"]
        self.session.emit(rule.finding(message, path, line, col, end_line, end_col,
                                       fix_title=rule.trace_fix_title or rule.fix_title,
                                       details={"function": name, "first_use_line": pline,
                                                "first_use_function": pname}, origin=Origin.TRACE))


def _is_raw(key: Any) -> bool:
    return not ji.is_key_dtype(getattr(key, "dtype", None))


def _called_by_user() -> bool:
    """Is the first frame outside JAX itself (below the hook) the user's?"""
    f = sys._getframe(3)
    while f is not None and ji.is_jax_source(f.f_code.co_filename):
        f = f.f_back
    return f is not None and is_user_file(f.f_code.co_filename)
