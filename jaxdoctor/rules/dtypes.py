"""JD125: float64 requested from JAX while 64-bit mode is off."""

from __future__ import annotations

import re

import libcst as cst

from jaxdoctor.findings import Severity
from jaxdoctor.static.rule import LintRule
from jaxdoctor.static.values import TRACED
from jaxdoctor.static.walker import iter_tree

_X64 = re.compile(r"jax_enable_x64|JAX_ENABLE_X64|enable_x64")
_WIDE_NAMES = frozenset(
    {"jax.numpy.float64", "numpy.float64", "jax.numpy.complex128", "numpy.complex128",
     "numpy.double", "jax.numpy.double", "builtins.float"}
)
_WIDE_STRINGS = frozenset({"float64", "f8", "double", "complex128", "c16", "<f8"})
#: jax.numpy constructors that take the dtype as their second positional argument
_DTYPE_POSITION = {"jax.numpy.array": 1, "jax.numpy.asarray": 1, "jax.numpy.zeros": 1,
                   "jax.numpy.ones": 1, "jax.numpy.empty": 1, "jax.numpy.full": 2,
                   "jax.numpy.zeros_like": 1, "jax.numpy.ones_like": 1, "jax.numpy.full_like": 2}


class Float64WithoutX64(LintRule):
    code = "JD125"
    name = "float64-without-x64"
    severity = Severity.WARNING
    summary = "`float64` requested from JAX while x64 is off: JAX silently gives float32"
    fix_title = (
        'Use `jnp.float32`, or enable 64-bit mode at start-up with '
        '`jax.config.update("jax_enable_x64", True)`'
    )

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        # enabled in this file, or for the whole test suite by a conftest.py above it
        self.x64 = _X64.search(ctx.source) is not None or "x64-enabled-by" in ctx.options

    def _wide(self, expr: cst.BaseExpression) -> str | None:
        if isinstance(expr, cst.SimpleString):
            value = expr.evaluated_value
            return value if isinstance(value, str) and value in _WIDE_STRINGS else None
        q = self.ctx.qualname(expr)
        if q in _WIDE_NAMES and q != "builtins.float":
            return q.rsplit(".", 1)[1]
        return None

    def _is_jax(self, expr: cst.BaseExpression) -> bool:
        """A JAX array for sure: a jax.* call result, or a traced value."""
        if isinstance(expr, cst.Call):
            q = self.ctx.qualname(expr.func)
            if q is not None and q.split(".")[0] in ("jax", "flax", "equinox"):
                return True
        return self.ctx.traced_function() is not None and self.ctx.semantic.value(expr) >= TRACED

    def _x64_branch(self) -> bool:
        """Inside `if x.dtype == jnp.float64:` (or any test naming a 64-bit dtype): code that
        runs only when 64-bit values already exist, so x64 is on."""
        for node in self.ctx.ancestors:
            test = node.test if isinstance(node, (cst.If, cst.IfExp, cst.While)) else None
            if test is not None and any(self._wide(n) or (isinstance(n, cst.Attribute) and n.attr.value in (
                    "float64", "complex128", "double")) for n in iter_tree(test)
                    if isinstance(n, (cst.SimpleString, cst.Attribute, cst.Name))):
                return True
        return False

    def visit_Call(self, node: cst.Call) -> None:
        if self.x64:
            return
        func = node.func
        q = self.ctx.qualname(func)
        if not ((q is not None and q.startswith("jax.")) or (
                q is None and isinstance(func, cst.Attribute) and func.attr.value == "astype")):
            return  # the cheap test first: the enclosing `if`s are read only for candidates
        if self._x64_branch():
            return
        if q in ("jax.numpy.float64", "jax.numpy.complex128") and node.args:
            self._report(node, q.rsplit(".", 1)[1], f"`{self.ctx.code(func)}(...)`")
            return
        if q is not None and q.startswith("jax."):
            dtype = None
            for arg in node.args:
                if arg.keyword is not None and arg.keyword.value == "dtype":
                    dtype = arg.value
            pos = _DTYPE_POSITION.get(q)
            positional = [a for a in node.args if a.keyword is None and not a.star]
            if dtype is None and pos is not None and pos < len(positional):
                dtype = positional[pos].value
            if q == "jax.lax.convert_element_type" and len(positional) > 1:
                dtype = positional[1].value
            wide = self._wide(dtype) if dtype is not None else None
            if wide:
                self._report(node, wide, f"`{q.replace('jax.numpy.', 'jnp.')}`")
            return
        if (q is None and isinstance(func, cst.Attribute) and func.attr.value == "astype"
                and node.args and self._is_jax(func.value)):
            wide = self._wide(node.args[0].value)
            if wide:
                self._report(node, wide, "`.astype`")

    def _report(self, node: cst.Call, wide: str, where: str) -> None:
        narrow = "complex64" if "complex" in wide or wide == "c16" else "float32"
        self.report(
            node,
            f"{where} asks for `{wide}`, but 64-bit mode is not enabled in this file: JAX "
            f"silently returns `{narrow}` (with a `UserWarning`)",
        )
