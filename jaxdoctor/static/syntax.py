"""Syntax-level questions about libcst nodes that the semantic model and rules share:
literals, annotations, call arguments. No scopes, no tracedness: see `traced.py` for those."""

from __future__ import annotations

import libcst as cst

_ARRAY_ANNOTATIONS = ("Array", "ArrayLike", "ndarray", "Float", "Int", "Bool", "Shaped",
                      "Num", "Real", "Inexact", "Integer", "Complex", "UInt", "Key", "PRNGKeyArray")
_STATIC_ANNOTATIONS = frozenset(
    {"bool", "int", "str", "float", "Callable", "type", "Literal", "Sequence", "tuple", "Tuple",
     "Hashable", "Shape", "bytes", "None", "Optional"}
)
#: annotations a tracer never satisfies (unlike `int`/`float`, often written for traced scalars)
_NEVER_TRACED_ANNOTATIONS = frozenset({"str", "bytes", "Literal", "Callable", "type", "None", "Optional"})


def is_literal(expr: cst.BaseExpression | None) -> bool:
    """A Python literal usable as a static flag default: True/False/None, numbers, strings."""
    if expr is None:
        return False
    if isinstance(expr, cst.Name):
        return expr.value in ("True", "False", "None")
    if isinstance(expr, (cst.Integer, cst.Float, cst.Imaginary, cst.SimpleString,
                         cst.ConcatenatedString)):
        return True
    if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, cst.Minus):
        return is_literal(expr.expression)
    if isinstance(expr, (cst.Tuple, cst.List)):
        return all(is_literal(e.value) for e in expr.elements)
    return False


def literal_ints(expr: cst.BaseExpression | None) -> set[int] | None:
    """`1` → {1}; `(0, 2)` → {0, 2}; `range(5, 9)` → {5, ..., 8}; anything not literal → None."""
    if expr is None:
        return set()
    if isinstance(expr, cst.Integer):
        return {int(expr.value, 0)}
    if (isinstance(expr, cst.Call) and isinstance(expr.func, cst.Name) and expr.func.value == "range"
            and 1 <= len(expr.args) <= 3
            and all(isinstance(a.value, cst.Integer) and a.keyword is None for a in expr.args)):
        return set(range(*(int(a.value.value, 0) for a in expr.args)))  # type: ignore[union-attr]
    if isinstance(expr, (cst.Tuple, cst.List)):
        out: set[int] = set()
        for el in expr.elements:
            if not isinstance(el.value, cst.Integer):
                return None
            out.add(int(el.value.value, 0))
        return out
    return None


def literal_strs(expr: cst.BaseExpression | None) -> set[str]:
    if expr is None:
        return set()
    if isinstance(expr, cst.SimpleString):
        return {expr.evaluated_value} if isinstance(expr.evaluated_value, str) else set()
    if isinstance(expr, (cst.Tuple, cst.List)):
        return {s for el in expr.elements for s in literal_strs(el.value)}
    return set()


def annotation_names(param: cst.Param | cst.AnnAssign) -> set[str]:
    """The names in a parameter's (or an annotated assignment's) annotation."""
    if param.annotation is None:
        return set()
    names: set[str] = set()
    stack: list[cst.CSTNode] = [param.annotation.annotation]
    while stack:
        node = stack.pop()
        if isinstance(node, cst.Name):
            names.add(node.value)
        elif isinstance(node, cst.Attribute):
            names.add(node.attr.value)
            stack.append(node.value)
        elif isinstance(node, cst.Subscript):
            stack.append(node.value)
            stack.extend(e.slice.value for e in node.slice if isinstance(e.slice, cst.Index))
        elif isinstance(node, cst.BinaryOperation):
            stack.extend((node.left, node.right))
        elif isinstance(node, (cst.SimpleString, cst.ConcatenatedString)):
            return {"?"}  # string annotations: don't guess
    return names


def annotated_array(param: cst.Param | cst.AnnAssign) -> bool:
    return any(n in _ARRAY_ANNOTATIONS for n in annotation_names(param))


def annotated_static(param: cst.Param) -> bool:
    names = annotation_names(param)
    return bool(names) and names <= _STATIC_ANNOTATIONS and not annotated_array(param)


def scalar_annotation(param: cst.Param | cst.AnnAssign) -> bool:
    """`int`, `float`, `bool` (alone): a Python scalar, or a traced scalar when traced."""
    names = annotation_names(param)
    return bool(names) and names <= {"int", "float", "bool", "complex"}


def never_traced(param: cst.Param | cst.AnnAssign) -> bool:
    names = annotation_names(param)
    return bool(names) and names <= _NEVER_TRACED_ANNOTATIONS


def call_args(call: cst.Call) -> tuple[list[cst.Arg], dict[str, cst.Arg]]:
    positional = [a for a in call.args if a.keyword is None and not a.star]
    keywords = {a.keyword.value: a for a in call.args if a.keyword is not None}
    return positional, keywords


def call_arg(call: cst.Call, position: int | None, keyword: str) -> cst.BaseExpression | None:
    """The argument given at `position` or as `keyword=`, if any."""
    positional, keywords = call_args(call)
    if keyword in keywords:
        return keywords[keyword].value
    if position is not None and position < len(positional):
        return positional[position].value
    return None


def self_attr(expr: cst.BaseExpression, self_name: str = "self") -> str | None:
    """`self.x` → "x"."""
    if (isinstance(expr, cst.Attribute) and isinstance(expr.value, cst.Name)
            and expr.value.value == self_name):
        return expr.attr.value
    return None


def annotation_expr(param: cst.Param) -> cst.BaseExpression | None:
    """The annotation of a parameter, without `Optional[...]`/`X | None` around it."""
    if param.annotation is None:
        return None
    ann = param.annotation.annotation
    if isinstance(ann, cst.Subscript) and isinstance(ann.value, (cst.Name, cst.Attribute)) and len(ann.slice) == 1:
        head = ann.value.attr.value if isinstance(ann.value, cst.Attribute) else ann.value.value
        if head == "Optional" and isinstance(ann.slice[0].slice, cst.Index):
            return ann.slice[0].slice.value
    if isinstance(ann, cst.BinaryOperation) and isinstance(ann.operator, cst.BitOr):
        for side, other in ((ann.left, ann.right), (ann.right, ann.left)):
            if isinstance(other, cst.Name) and other.value == "None":
                return side
    return ann
