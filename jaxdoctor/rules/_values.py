"""Small, shared judgements about what an expression evaluates to, without running it.

Used by rules that must tell a JAX array from a Python list/dict or a NumPy array: they only
act on evidence (`jnp.zeros(...)` is an array, `[]`/`dict()`/`np.zeros(...)` are not).
"""

from __future__ import annotations

import libcst as cst

from jaxdoctor.static.names import ImportTable

#: `jax.numpy` functions that do not return one array (tuples, lists, dtypes, shapes, infos).
_JNP_NOT_ARRAY = frozenset(
    {
        "shape", "ndim", "size", "dtype", "result_type", "issubdtype", "iinfo", "finfo",
        "split", "array_split", "hsplit", "vsplit", "dsplit", "meshgrid", "unravel_index",
        "nonzero", "where", "histogram", "unique", "broadcast_arrays", "atleast_1d",
        "atleast_2d", "atleast_3d", "indices", "tril_indices", "triu_indices", "diag_indices",
        "mask_indices", "promote_types", "can_cast", "isscalar", "iscomplexobj", "isrealobj",
        "load", "save", "savez", "printoptions", "set_printoptions", "frompyfunc", "vectorize",
        "divmod", "frexp", "modf", "linalg", "fft", "ufunc",
    }
)
_ARRAY_METHODS_AT = frozenset({"set", "add", "subtract", "multiply", "divide", "power", "min",
                               "max", "apply", "mul"})


def is_jax_array(expr: cst.BaseExpression | None, names: ImportTable) -> bool:
    """True when `expr` certainly evaluates to a JAX array (by its constructor)."""
    if expr is None:
        return False
    if isinstance(expr, cst.BinaryOperation):
        return is_jax_array(expr.left, names) or is_jax_array(expr.right, names)
    if not isinstance(expr, cst.Call):
        return False
    func = expr.func
    q = names.qualname(func)
    if q is not None:
        if q.startswith("jax.numpy."):
            rest = q[len("jax.numpy."):]
            return "." not in rest and rest not in _JNP_NOT_ARRAY and not rest[:1].isupper()
        if q.startswith("jax.random."):
            rest = q[len("jax.random."):]
            return rest not in ("key_impl", "key_data") and not rest[:1].isupper() or rest == "PRNGKey"
        return q in ("jax.device_put", "jax.nn.one_hot", "jax.nn.softmax", "jax.nn.relu")
    # x.at[i].set(v)
    if isinstance(func, cst.Attribute) and func.attr.value in _ARRAY_METHODS_AT:
        sub = func.value
        return (isinstance(sub, cst.Subscript) and isinstance(sub.value, cst.Attribute)
                and sub.value.attr.value == "at")
    return False


_CONTAINER_CALLS = frozenset(
    {"builtins.list", "builtins.dict", "builtins.set", "builtins.bytearray", "builtins.tuple",
     "collections.defaultdict", "collections.OrderedDict", "collections.deque",
     "collections.Counter", "copy.copy", "copy.deepcopy", "builtins.vars", "builtins.globals",
     "builtins.locals"}
)


def is_not_jax_array(expr: cst.BaseExpression | None, names: ImportTable) -> bool:
    """True when `expr` certainly evaluates to something other than a JAX array: a Python
    container, a NumPy array, a copy, a literal."""
    if expr is None:
        return False
    if isinstance(expr, (cst.List, cst.Dict, cst.Set, cst.ListComp, cst.DictComp, cst.SetComp,
                         cst.Tuple, cst.SimpleString, cst.ConcatenatedString, cst.Integer,
                         cst.Float, cst.FormattedString)):
        return True
    if isinstance(expr, cst.BinaryOperation):  # [0] * n, {**a} | b
        return is_not_jax_array(expr.left, names) and not is_jax_array(expr.right, names)
    if isinstance(expr, cst.Call):
        q = names.qualname(expr.func)
        if q is None:
            # d.copy(), x.tolist(), np_arr.copy(): a copy of something we judge separately
            if isinstance(expr.func, cst.Attribute) and expr.func.attr.value in ("tolist", "to_dict", "keys", "items", "values"):
                return True
            return False
        if q in _CONTAINER_CALLS:
            return True
        root = q.split(".", 1)[0]
        if root in ("numpy", "torch", "pandas", "collections", "scipy", "tensorflow"):
            return True
        if q.startswith("jax.device_get"):
            return True
    return False


def is_string_index(sub: cst.Subscript) -> bool:
    """`d["key"]`: a mapping lookup, never an array index."""
    return any(
        isinstance(el.slice, cst.Index)
        and isinstance(el.slice.value, (cst.SimpleString, cst.ConcatenatedString, cst.FormattedString))
        for el in sub.slice
    )


def array_like_index(sub: cst.Subscript) -> bool:
    """An index only arrays take: a slice, `...`, `None`, or several indices (`x[i, j]`)."""
    if len(sub.slice) > 1:
        return True
    for el in sub.slice:
        if isinstance(el.slice, cst.Slice):
            return True
        v = el.slice.value
        if isinstance(v, cst.Ellipsis) or (isinstance(v, cst.Name) and v.value == "None"):
            return True
        if isinstance(v, cst.Tuple) and len(v.elements) > 1:
            return True
    return False
