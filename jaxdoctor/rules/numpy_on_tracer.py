"""JD122: NumPy functions applied to traced values inside a traced function."""

from __future__ import annotations

import functools
from pathlib import Path

import libcst as cst

from jaxdoctor.findings import Applicability, Severity
from jaxdoctor.rules.tracing import where
from jaxdoctor.static.evaluate import NUMPY_DELEGATING
from jaxdoctor.static.rule import LintRule
from jaxdoctor.static.values import TRACED

NAMES_PATH = Path(__file__).resolve().parent.parent / "data" / "jnp_names.txt"

#: JD102 reports these (conversion to a host array); results about types/shapes are static.
_NOT_HERE = frozenset(
    {"asarray", "array", "asanyarray", "ascontiguousarray", "shape", "ndim", "size", "dtype",
     "result_type", "issubdtype", "finfo", "iinfo", "promote_types", "can_cast", "isscalar",
     "broadcast_shapes", "testing"}
)


@functools.cache
def jnp_names() -> frozenset[str]:
    """numpy names that `jax.numpy` has too (`sum`, `linalg.norm`, ...): a static list."""
    lines = NAMES_PATH.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


class NumpyOnTracer(LintRule):
    code = "JD122"
    name = "numpy-on-tracer"
    severity = Severity.ERROR
    summary = "A NumPy function (`np.sum`, `np.exp`, `np.where`, ...) applied to a traced value"
    fix_title = "Use the `jax.numpy` function of the same name"
    fix_applicability = Applicability.UNSAFE

    def _numpy_branch(self) -> bool:
        """Inside `if isinstance(v, np.ndarray):` — a branch traced code never takes (a traced
        value is not a NumPy array), kept for callers that pass host data."""
        anc = self.ctx.ancestors
        for i, node in enumerate(anc[:-1]):
            if isinstance(node, cst.If) and anc[i + 1] is node.body:
                test = node.test
                if isinstance(test, cst.Call) and self.ctx.qualname(test.func) == "builtins.isinstance" \
                        and len(test.args) == 2:
                    types = test.args[1].value
                    names = [el.value for el in types.elements] if isinstance(types, cst.Tuple) else [types]
                    if any((self.ctx.qualname(t) or "").startswith("numpy.") for t in names):
                        return True
        return False

    def visit_Call(self, node: cst.Call) -> None:
        q = self.ctx.qualname(node.func)
        if q is None or not q.startswith("numpy."):
            return
        name = q[len("numpy."):]
        if name.split(".")[0] in _NOT_HERE or name in NUMPY_DELEGATING:
            return
        info = self.ctx.traced_function()
        if info is None or self._numpy_branch():
            return
        semantic = self.ctx.semantic
        traced = next((a.value for a in node.args if semantic.value(a.value) >= TRACED), None)
        if traced is None:
            return
        fix = None
        if name in jnp_names():
            alias = next((local for local, target in self.ctx.names.aliases.items()
                          if target == "jax.numpy"), None)
            if alias is not None:
                fix = self.fix((node.func, f"{alias}.{name}"), title=f"Use `{alias}.{name}`")
        self.report(
            node,
            f"NumPy `np.{name}()` on traced value `{self.ctx.code(traced)}`{where(info)}: NumPy "
            "needs concrete values and raises `TracerArrayConversionError`",
            fix=fix,
        )
