"""The value of an expression inside an analysed function (see `values.py` for the lattice).

`Evaluator` is the expression half of the flow pass: it asks its subclass for the value of a
name (`lookup`), tells it about bindings made inside expressions (walrus, comprehension targets),
and hands every call to `call_value`, which the flow pass answers from the functions of the file
(a local function's return value) before the generic rules here apply. Every value computed is
recorded per node, so rules read what the flow pass saw (`record`).

What returns what is data: `jnp`/`lax`/`jax.nn`/`jax.random` ops return arrays (inside a traced
function even `jnp.ones(3)` is a tracer), a few return containers (`jnp.split`) or Python values
(`jnp.shape`, `jnp.finfo`); `.shape`, `.dtype`, `len()`, `isinstance()` are static.
"""

from __future__ import annotations

from typing import Iterable

import libcst as cst

from jaxdoctor.static.names import ImportTable
from jaxdoctor.static.values import ARRAY, CONTAINER, STATIC, TRACED, UNKNOWN, element, holds_tracers, join, operand

#: attributes that are Python data on any array or pytree
STATIC_ATTRS = frozenset(
    {"shape", "ndim", "dtype", "size", "itemsize", "nbytes", "aval", "sharding", "weak_type",
     "devices", "device", "is_fully_replicated", "committed", "format", "_fields", "__class__",
     "__name__", "named_shape"}
)
#: attributes of an array that are arrays
_ARRAY_ATTRS = frozenset({"T", "mT", "real", "imag", "at", "flat"})
#: methods of an array (and of `x.at[i]`) that return arrays
ARRAY_METHODS = frozenset(
    {
        "sum", "mean", "max", "min", "any", "all", "astype", "reshape", "dot", "squeeze",
        "argmax", "argmin", "transpose", "ravel", "flatten", "clip", "round", "std", "var",
        "prod", "cumsum", "cumprod", "sort", "argsort", "take", "conj", "conjugate", "swapaxes",
        "repeat", "set", "add", "subtract", "multiply", "divide", "power", "apply", "ptp",
        "trace", "diagonal", "view", "block_until_ready", "__getitem__", "__array__", "copy",
        "nonzero", "searchsorted", "choose", "compress", "cumlogsumexp", "addressable_data",
        "item_set", "get", "mul", "argpartition", "fill", "real", "imag",
    }
)
#: methods whose result is Python data whatever the receiver holds
_STATIC_METHODS = frozenset(
    {"item", "tolist", "__bool__", "__int__", "__float__", "__index__", "keys", "lower",
     "compile", "cost_analysis", "memory_analysis", "as_text", "index", "count", "startswith",
     "endswith", "format", "join", "split", "strip", "replace", "append", "extend", "insert",
     "update", "setdefault", "clear", "remove", "is_fully_addressable", "is_deleted",
     "__len__", "__repr__", "__str__", "__hash__"}
)
_CONTAINER_METHODS = frozenset({"items", "values"})

#: calls whose result is static whatever their arguments (they look at shapes or types, or
#: convert: the conversion itself is JD102's business)
STATIC_CALLS = frozenset(
    {
        "builtins.len", "builtins.isinstance", "builtins.issubclass", "builtins.type",
        "builtins.id", "builtins.hasattr", "builtins.callable", "builtins.repr", "builtins.str",
        "builtins.print", "builtins.format", "builtins.float", "builtins.int", "builtins.bool",
        "builtins.complex", "builtins.range", "builtins.any", "builtins.all", "builtins.hash",
        "builtins.vars", "builtins.dir", "builtins.locals", "builtins.globals", "builtins.super",
        "builtins.object", "builtins.slice", "builtins.open", "builtins.chr", "builtins.ord",
        "builtins.bytes",
        "jax.numpy.shape", "jax.numpy.ndim", "jax.numpy.size", "jax.numpy.result_type",
        "jax.numpy.issubdtype", "jax.numpy.dtype", "jax.numpy.iscomplexobj", "jax.numpy.isrealobj",
        "jax.numpy.isscalar", "jax.numpy.finfo", "jax.numpy.iinfo", "jax.numpy.promote_types",
        "jax.numpy.can_cast", "jax.numpy.issctype", "jax.numpy.isdtype",
        "numpy.shape", "numpy.ndim", "numpy.size", "numpy.issubdtype", "numpy.result_type",
        "numpy.dtype", "numpy.finfo", "numpy.iinfo", "numpy.prod",
        "jax.eval_shape", "flax.nnx.eval_shape", "equinox.filter_eval_shape",
        "jax.tree_util.tree_structure", "jax.tree.structure", "jax.ShapeDtypeStruct",
        "jax.typeof", "jax.core.get_aval", "equinox.is_array", "equinox.is_inexact_array",
        "equinox.is_array_like", "jax.dtypes.issubdtype", "jax.dtypes.canonicalize_dtype",
        "jax.dtypes.result_type", "jax.lax.axis_size", "jax.debug.print", "jax.debug.callback",
        "jax.debug.breakpoint", "jax.device_get", "jax.devices", "jax.local_devices",
        "jax.device_count", "jax.local_device_count", "jax.process_index", "jax.process_count",
        "jax.default_backend", "jax.lax.broadcast_shapes", "jax.numpy.broadcast_shapes",
        "jax.tree_util.tree_all", "jax.tree.all", "jax.named_scope", "jax.ensure_compile_time_eval",
        "jax.sharding.NamedSharding", "jax.sharding.PartitionSpec", "jax.P", "jax.NamedSharding",
        "jax.sharding.Mesh", "jax.make_mesh", "functools.partial", "jax.tree_util.Partial",
        "jax.random.key_impl", "jax.dtypes.prng_key", "jax.numpy.dtypes",
    }
)
#: NumPy functions that hand a non-NumPy array to its own method (`np.sum(x)` calls `x.sum()`):
#: they work on a tracer and return one (checked with numpy 2.4 under `jax.jit`)
NUMPY_DELEGATING = frozenset(
    {"sum", "mean", "max", "min", "prod", "any", "all", "argmax", "argmin", "std", "var", "repeat",
     "reshape", "transpose", "squeeze", "round", "around", "cumsum", "cumprod", "searchsorted",
     "swapaxes", "amax", "amin", "flip", "moveaxis", "split", "array_equal"}
)
#: `jax.numpy` functions that return a Python container of arrays
_JNP_CONTAINERS = frozenset(
    {"split", "array_split", "hsplit", "vsplit", "dsplit", "meshgrid", "unravel_index",
     "nonzero", "histogram", "histogram2d", "histogramdd", "broadcast_arrays", "indices",
     "tril_indices", "triu_indices", "diag_indices", "mask_indices", "tril_indices_from",
     "triu_indices_from", "diag_indices_from", "divmod", "frexp", "modf", "linalg.eigh",
     "linalg.svd", "linalg.qr", "linalg.slogdet", "linalg.eig", "linalg.lstsq", "unique_all",
     "unique_counts", "unique_inverse", "lexsort_indices"}
)
#: `jax.lax` functions that return a pytree (what they are given back, or a tuple)
_LAX_TREES = frozenset(
    {"fori_loop", "while_loop", "cond", "switch", "map", "associative_scan", "psum", "pmean",
     "pmax", "pmin", "all_gather", "ppermute", "all_to_all", "psum_scatter", "stop_gradient",
     "custom_root", "custom_linear_solve", "reduce", "optimization_barrier",
     "with_sharding_constraint", "pshuffle", "pbroadcast", "pcast", "reduce_precision"}
)
_LAX_CONTAINERS = frozenset({"scan", "top_k", "sort_key_val", "linalg.eigh", "linalg.qr", "linalg.svd"})
#: modules whose functions return arrays (data, not code: the exceptions are the tables above)
ARRAY_MODULES = ("jax.numpy.", "jax.lax.", "jax.nn.", "jax.random.", "jax.scipy.", "jax.image.",
                 "jax.ops.")
#: `jax.*` functions that return their argument (or a tree like it)
_PASS_THROUGH = frozenset(
    {"jax.device_put", "jax.block_until_ready", "jax.tree.map", "jax.tree_util.tree_map",
     "jax.tree.map_with_path", "jax.tree_util.tree_map_with_path", "jax.tree.unflatten",
     "jax.tree_util.tree_unflatten", "jax.lax.with_sharding_constraint", "jax.pure_callback",
     "flax.linen.with_logical_constraint", "jax.tree.reduce", "jax.tree_util.tree_reduce",
     "flax.nnx.state", "flax.nnx.split", "flax.nnx.merge", "flax.nnx.pure"}
)
_LEAF_CONTAINERS = frozenset(
    {"jax.tree.leaves", "jax.tree_util.tree_leaves", "jax.tree.flatten", "jax.tree_util.tree_flatten",
     "jax.tree_util.tree_flatten_with_path", "jax.tree.flatten_with_path", "jax.tree.leaves_with_path",
     "jax.tree_util.tree_leaves_with_path", "builtins.list", "builtins.tuple", "builtins.dict",
     "builtins.set", "builtins.zip", "builtins.enumerate", "builtins.map", "builtins.filter",
     "builtins.reversed", "builtins.sorted", "builtins.iter", "builtins.frozenset", "builtins.divmod",
     "collections.OrderedDict", "collections.namedtuple"}
)
#: builtins that compute with their arguments' values: arrays in, array out
_ARITHMETIC_BUILTINS = frozenset({"builtins.sum", "builtins.max", "builtins.min", "builtins.abs",
                                  "builtins.round", "builtins.pow"})

#: `isinstance(x, T)`: in the true branch `x` is at most this value
NARROWING_TYPES = {
    "builtins.int": STATIC, "builtins.float": STATIC, "builtins.bool": STATIC,
    "builtins.str": STATIC, "builtins.bytes": STATIC, "builtins.complex": STATIC,
    "numpy.ndarray": STATIC, "numpy.generic": STATIC, "numbers.Number": STATIC,
    "builtins.tuple": CONTAINER, "builtins.list": CONTAINER, "builtins.dict": CONTAINER,
    "jax.Array": ARRAY, "jax.numpy.ndarray": ARRAY, "jax.core.Tracer": ARRAY,
}


def jnp_value(q: str) -> int | None:
    """The value a call of `q` returns inside a traced function, when `q` is one of JAX's array
    functions; None when the tables say nothing."""
    if q in STATIC_CALLS:
        return STATIC
    if q.startswith("jax.numpy."):
        rest = q[10:]
        if rest in _JNP_CONTAINERS:
            return CONTAINER
        if rest == "where":
            return None  # one argument: indices (a tuple); three: an array — decided by the caller
        if rest[:1].isupper() or rest.startswith(("dtypes", "printoptions", "set_printoptions")):
            return STATIC  # classes, dtype objects
        return ARRAY
    if q.startswith("jax.lax."):
        rest = q[8:]
        if rest in _LAX_CONTAINERS:
            return CONTAINER
        if rest in _LAX_TREES:
            return TRACED
        return ARRAY
    if q == "jax.random.PRNGKey":
        return ARRAY
    if q.startswith("jax.nn.initializers.") or q.startswith("jax.random.") and q[11:12].isupper():
        return STATIC
    for m in ARRAY_MODULES:
        if q.startswith(m):
            return ARRAY
    return None


#: attributes and methods only arrays (JAX or NumPy) have: a value used so is an array
STRONG_ATTRS = frozenset({"shape", "ndim", "dtype", "T", "mT", "at"})
STRONG_METHODS = frozenset(
    {"astype", "reshape", "sum", "mean", "std", "var", "max", "min", "argmax", "argmin",
     "transpose", "squeeze", "ravel", "flatten", "clip", "cumsum", "cumprod", "prod", "any",
     "all", "conj", "swapaxes", "dot", "block_until_ready", "item", "tolist", "argsort",
     "nonzero", "ptp", "round"}
)


#: `jnp`/`lax` functions whose arguments are sequences of arrays (lists are fine there)
_TAKE_SEQUENCES = frozenset(
    {"concatenate", "concat", "stack", "hstack", "vstack", "dstack", "column_stack", "row_stack",
     "block", "array", "asarray", "einsum", "broadcast_arrays", "meshgrid", "ix_", "select",
     "piecewise"}
)


_NUMERIC_OPERATORS = (cst.Subtract, cst.Divide, cst.FloorDivide, cst.Power, cst.MatrixMultiply)


def _number(x: cst.BaseExpression) -> bool:
    if isinstance(x, cst.UnaryOperation) and isinstance(x.operator, cst.Minus):
        x = x.expression
    return isinstance(x, (cst.Integer, cst.Float, cst.Imaginary))


def array_uses(body: cst.CSTNode, names: ImportTable) -> tuple[set[str], set[str]]:
    """Names a function's own code uses as arrays: (strong, weak). Strong: an attribute or
    method only arrays have (`x.shape`, `x.sum()`). Weak: an operand of arithmetic or a
    comparison, a positional argument of a `jnp`/`lax` function, a multi-axis or slice index
    (`x[:, 0]`) — a traced pytree used so must be an array leaf, but a Python number could
    be used so too."""
    from jaxdoctor.static.walker import children

    strong: set[str] = set()
    weak: set[str] = set()
    stack: list[cst.CSTNode] = [body]
    while stack:
        node = stack.pop()
        if isinstance(node, (cst.FunctionDef, cst.Lambda, cst.ClassDef)) and node is not body:
            continue
        if isinstance(node, cst.Attribute) and isinstance(node.value, cst.Name):
            if node.attr.value in STRONG_ATTRS:
                strong.add(node.value.value)
        elif isinstance(node, cst.Call):
            func = node.func
            if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) \
                    and func.attr.value in STRONG_METHODS and names.qualname(func) is None:
                strong.add(func.value.value)
            q = names.qualname(func)
            if q is not None and q.startswith(("jax.numpy.", "jax.lax.", "jax.nn.", "jax.scipy.")) \
                    and q.rsplit(".", 1)[1] not in _LAX_TREES and q.rsplit(".", 1)[1] not in _TAKE_SEQUENCES \
                    and q not in STATIC_CALLS:
                weak.update(a.value.value for a in node.args
                            if a.keyword is None and not a.star and isinstance(a.value, cst.Name))
        elif isinstance(node, cst.BinaryOperation):
            # `x - 1`, `x @ w`, `x / n`: numbers and arrays only (tuples, lists and strings take
            # `+` and `*`; objects may define `==`)
            sides = (node.left, node.right)
            if isinstance(node.operator, _NUMERIC_OPERATORS) or any(_number(x) for x in sides):
                weak.update(x.value for x in sides if isinstance(x, cst.Name))
        elif isinstance(node, cst.Comparison):
            operands = (node.left, *(c.comparator for c in node.comparisons))
            if not any(isinstance(c.operator, (cst.Is, cst.IsNot, cst.In, cst.NotIn)) for c in node.comparisons) \
                    and any(_number(x) for x in operands):
                weak.update(x.value for x in operands if isinstance(x, cst.Name))
        elif isinstance(node, cst.Subscript) and isinstance(node.value, cst.Name):
            if len(node.slice) > 1:  # `x[:, 0]`, `x[..., i]`: only arrays take several indices
                weak.add(node.value.value)
        stack.extend(children(node))
    return strong, weak


class Evaluator:
    """Values of expressions. Subclasses supply `lookup`, `bind`, `narrow`/`restore` and
    `call_value` (see `flow.Flow`)."""

    def __init__(self, names: ImportTable, record: dict[cst.CSTNode, int]) -> None:
        self.names = names
        self.record = record
        #: the largest value this function's expressions can have: in a function that is only
        #: maybe traced (a module method no traced caller reaches), nothing is known to be traced
        self.cap = ARRAY

    # -------------------------------------------------------------- hooks
    def lookup(self, name: cst.Name) -> int:  # pragma: no cover - overridden
        return STATIC

    def bind(self, target: cst.BaseExpression, value: int, rhs: cst.BaseExpression | None = None) -> None:
        pass

    def narrow(self, caps: dict[str, int]) -> dict[str, int | None]:
        return {}

    def restore(self, saved: dict[str, int | None]) -> None:
        pass

    def call_value(self, call: cst.Call, func: int, args: list[tuple[cst.Arg, int]]) -> int | None:
        """The value of a call the file can answer (a local function's return), else None."""
        return None

    def closure(self, fn: cst.Lambda) -> None:
        pass

    def attribute(self, e: cst.Attribute, base: int) -> int | None:
        """The value of `e` when something is known about the object's fields (a pytree
        argument's fields are traced, a Linen attribute is static); None otherwise."""
        return None

    def enter_comprehension(self) -> object:
        return None

    def leave_comprehension(self, saved: object) -> None:
        pass

    # -------------------------------------------------------------- values
    def value(self, e: cst.BaseExpression) -> int:
        method = getattr(self, "_" + type(e).__name__, None)
        v = method(e) if method is not None else STATIC
        if v > self.cap:
            v = self.cap
        self.record[e] = v
        return v

    def _Name(self, e: cst.Name) -> int:
        return self.lookup(e)

    def _Attribute(self, e: cst.Attribute) -> int:
        base = self.value(e.value)
        attr = e.attr.value
        if base == STATIC or attr in STATIC_ATTRS:
            return STATIC
        if attr in _ARRAY_ATTRS and base >= TRACED:
            return ARRAY
        if base == ARRAY and attr in ARRAY_METHODS:
            return ARRAY  # `x.sum` (called next)
        known = self.attribute(e, base)
        if known is not None:
            return known
        return UNKNOWN  # a field of a pytree or module: a leaf, a subtree or a static field

    def _Subscript(self, e: cst.Subscript) -> int:
        base = self.value(e.value)
        index = STATIC
        for el in e.slice:
            if isinstance(el.slice, cst.Index):
                index = max(index, self.value(el.slice.value))
            else:
                for part in (el.slice.lower, el.slice.upper, el.slice.step):
                    if part is not None:
                        index = max(index, self.value(part))
        if base == STATIC:
            # a Python list or a concrete array indexed by a tracer
            return ARRAY if index >= TRACED else (UNKNOWN if index == UNKNOWN else STATIC)
        return element(base)

    def _Call(self, e: cst.Call) -> int:
        func = self.value(e.func)
        args = [(a, self.value(a.value)) for a in e.args]
        found = self.call_value(e, func, args)
        if found is not None:
            return found
        return self.generic_call(e, func, args)

    def generic_call(self, e: cst.Call, func: int, args: list[tuple[cst.Arg, int]]) -> int:
        q = self.names.qualname(e.func)
        arg_max = max((v for _a, v in args), default=STATIC)
        if q is not None:
            if q in STATIC_CALLS:
                return STATIC
            if q in _ARITHMETIC_BUILTINS:
                return operand(arg_max) if arg_max != CONTAINER else ARRAY
            if q == "builtins.map" and args:
                # `map(f, xs)` holds what `f` returns: arrays for a JAX function, anything for
                # another (`sum(map(nbytes, arrays))` adds Python ints)
                fq = self.names.qualname(args[0][0].value)
                rest = max((v for _a, v in args[1:]), default=STATIC)
                if fq is not None and fq.startswith(ARRAY_MODULES) and holds_tracers(rest):
                    return CONTAINER
                return STATIC if rest == STATIC and args[0][1] == STATIC else UNKNOWN
            if q in _LEAF_CONTAINERS:
                return CONTAINER if holds_tracers(arg_max) else arg_max
            if q in _PASS_THROUGH:
                return arg_max
            if q == "builtins.next":
                return element(arg_max)
            if q == "builtins.getattr":
                return UNKNOWN if args and args[0][1] != STATIC else STATIC
            if q == "jax.numpy.where":
                positional = [a for a in e.args if a.keyword is None]
                return CONTAINER if len(positional) == 1 else ARRAY
            if q.startswith("jax.numpy.unique"):
                return CONTAINER if any(a.keyword is not None and a.keyword.value.startswith("return_")
                                        for a in e.args) else ARRAY
            if q == "jax.lax.psum" and args and args[0][1] == STATIC:
                return STATIC  # `psum(1, axis)`: the axis size, a Python int
            found = jnp_value(q)
            if found is not None:
                return found
            if q.startswith("numpy.") and q[6:] in NUMPY_DELEGATING and holds_tracers(arg_max):
                return ARRAY  # `np.sum(x)` calls `x.sum()`: a traced array
            if q.startswith("numpy.") or q.startswith("math."):
                return STATIC  # NumPy on a tracer is JD122's finding; the result is host data
        if isinstance(e.func, cst.Attribute) and q is None:
            method = e.func.attr.value
            base = self.record.get(e.func.value, STATIC)
            if method in _STATIC_METHODS:
                return STATIC
            if base >= TRACED:
                # an array's own methods return arrays; another method of a traced object (a
                # NamedArray's `resolve_axis`, a pytree class's helper) may return anything
                if method in ARRAY_METHODS:
                    return ARRAY
                return TRACED if holds_tracers(arg_max) else UNKNOWN
            if base == CONTAINER:
                if method in _CONTAINER_METHODS or method == "copy":
                    return CONTAINER
                return TRACED if method in ("pop", "get", "popitem", "__getitem__") else UNKNOWN
        if holds_tracers(arg_max):
            return TRACED  # a function given tracers returns values computed from them
        if func >= UNKNOWN or arg_max == UNKNOWN:
            return UNKNOWN
        return STATIC

    def _BinaryOperation(self, e: cst.BinaryOperation) -> int:
        left, right = self.value(e.left), self.value(e.right)
        if isinstance(e.operator, cst.Modulo) and isinstance(e.left, (cst.SimpleString, cst.ConcatenatedString,
                                                                        cst.FormattedString)):
            return STATIC  # "%s" % x: a string
        if left >= TRACED or right >= TRACED:
            return ARRAY
        if left == CONTAINER or right == CONTAINER:
            return CONTAINER  # (a, b) + (c,), [x] * n
        return join(left, right)

    def _Comparison(self, e: cst.Comparison) -> int:
        values = [self.value(e.left)] + [self.value(c.comparator) for c in e.comparisons]
        ops = [c.operator for c in e.comparisons]
        if all(isinstance(o, (cst.Is, cst.IsNot, cst.In, cst.NotIn)) for o in ops):
            return STATIC  # identity and membership give Python bools (or raise)
        operands = [e.left] + [c.comparator for c in e.comparisons]
        if any(isinstance(x, (cst.SimpleString, cst.ConcatenatedString, cst.FormattedString)) for x in operands):
            return STATIC if max(values) < TRACED else UNKNOWN  # `mode == "train"`: a string
        if ARRAY not in values and any(self._python_object(x) for x in operands):
            # `spec == PartitionSpec("in", "out")`, `axes == ("batch",)`: a traced pytree compared
            # with a Python object is metadata, not an array
            return STATIC if max(values) < TRACED else UNKNOWN
        if ARRAY in values:
            return ARRAY
        if TRACED in values:
            # a traced pytree compared with a Python value can only be an array leaf; compared
            # with something unknown (an axis object, an attribute) it may be metadata
            return UNKNOWN if UNKNOWN in values or CONTAINER in values else ARRAY
        if UNKNOWN in values:
            return UNKNOWN
        return STATIC

    def _python_object(self, x: cst.BaseExpression) -> bool:
        """A tuple/list display, or an instance built by calling a class (not a JAX function)."""
        if isinstance(x, (cst.Tuple, cst.List)):
            return True
        if isinstance(x, cst.Call):
            func = x.func
            last = func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else ""
            q = self.names.qualname(func) or ""
            return last[:1].isupper() and not q.startswith(("jax.numpy.", "jax.random."))
        return False

    def _UnaryOperation(self, e: cst.UnaryOperation) -> int:
        v = self.value(e.expression)
        if isinstance(e.operator, cst.Not):
            return STATIC if v != UNKNOWN else UNKNOWN
        return operand(v)

    def _BooleanOperation(self, e: cst.BooleanOperation) -> int:
        left = self.value(e.left)
        # `isinstance(g, int) and g == 1`: the right operand runs only once `g` is an int
        if isinstance(e.operator, cst.And):
            caps = self.narrowing(e.left)
        else:
            caps = self.narrowing(e.left, negated=True)
        return join(left, self._narrowed(caps, e.right))

    def _IfExp(self, e: cst.IfExp) -> int:
        self.value(e.test)
        body = self._narrowed(self.narrowing(e.test), e.body)
        return join(body, self._narrowed(self.narrowing(e.test, negated=True), e.orelse))

    def _narrowed(self, caps: dict[str, int], e: cst.BaseExpression) -> int:
        if not caps:
            return self.value(e)
        saved = self.narrow(caps)
        try:
            return self.value(e)
        finally:
            self.restore(saved)

    def narrowing(self, test: cst.BaseExpression, negated: bool = False) -> dict[str, int]:
        """Names that `test` (or, `negated`, its falsity) proves to be at most some value:
        `isinstance(x, int)` → {"x": STATIC}; `x is None` → {"x": STATIC}; `and`-chains of
        such tests; `not` flips."""
        if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
            return self.narrowing(test.expression, not negated)
        if isinstance(test, cst.BooleanOperation):
            both = isinstance(test.operator, cst.And) != negated
            if not both:
                return {}
            out = self.narrowing(test.left, negated)
            for name, cap in self.narrowing(test.right, negated).items():
                out[name] = min(out.get(name, cap), cap)
            return out
        if isinstance(test, cst.Comparison) and len(test.comparisons) == 1 and isinstance(test.left, cst.Name):
            op = test.comparisons[0].operator
            right = test.comparisons[0].comparator
            is_none = isinstance(right, cst.Name) and right.value == "None"
            if is_none and ((isinstance(op, cst.Is) and not negated) or (isinstance(op, cst.IsNot) and negated)):
                return {test.left.value: STATIC}
            return {}
        if negated:
            return {}
        if not (isinstance(test, cst.Call) and self.names.qualname(test.func) == "builtins.isinstance"
                and len(test.args) == 2 and isinstance(test.args[0].value, cst.Name)):
            return {}
        types = test.args[1].value
        elements = [el.value for el in types.elements] if isinstance(types, cst.Tuple) else [types]
        caps = [NARROWING_TYPES.get(self.names.qualname(t) or "", None) for t in elements]
        if not caps or any(c is None for c in caps):
            return {}
        return {test.args[0].value.value: max(caps)}  # type: ignore[type-var]

    def _NamedExpr(self, e: cst.NamedExpr) -> int:
        v = self.value(e.value)
        self.bind(e.target, v, e.value)
        return v

    def _container(self, values: Iterable[int]) -> int:
        v = max(values, default=STATIC)
        if holds_tracers(v):
            return CONTAINER
        return v

    def _Tuple(self, e: cst.Tuple) -> int:
        return self._container(self.value(el.value) for el in e.elements)

    _List = _Tuple
    _Set = _Tuple

    def _Dict(self, e: cst.Dict) -> int:
        out = []
        for el in e.elements:
            if isinstance(el, cst.DictElement):
                self.value(el.key)
            out.append(self.value(el.value))
        return self._container(out)

    def _StarredElement(self, e: cst.StarredElement) -> int:
        return self.value(e.value)

    def _FormattedString(self, e: cst.FormattedString) -> int:
        for part in e.parts:
            if isinstance(part, cst.FormattedStringExpression):
                self.value(part.expression)
        return STATIC

    def _Await(self, e: cst.Await) -> int:
        return self.value(e.expression)

    def _Yield(self, e: cst.Yield) -> int:
        if isinstance(e.value, cst.BaseExpression):
            self.value(e.value)
        return UNKNOWN

    def _Lambda(self, e: cst.Lambda) -> int:
        self.closure(e)
        return STATIC

    def _comprehension(self, e, elts: list[cst.BaseExpression]) -> int:
        saved = self.enter_comprehension()
        comp = e.for_in
        while comp is not None:
            it = self.value(comp.iter)
            self.bind_iter(comp.target, comp.iter, it)
            for cond in comp.ifs:
                self.value(cond.test)
            comp = comp.inner_for_in
        v = max((self.value(x) for x in elts), default=STATIC)
        self.leave_comprehension(saved)
        return self._container([v])

    def _ListComp(self, e) -> int:
        return self._comprehension(e, [e.elt])

    _SetComp = _ListComp
    _GeneratorExp = _ListComp

    def _DictComp(self, e) -> int:
        return self._comprehension(e, [e.key, e.value])

    def bind_iter(self, target: cst.BaseExpression, it: cst.BaseExpression, value: int) -> None:
        self.bind(target, element(value) if value != STATIC else STATIC)
