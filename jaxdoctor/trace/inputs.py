"""Abstract inputs for `jaxdoctor trace`: `--inputs` specs and `jaxdoctor_inputs_<fn>()` companions.

`parse_inputs` is jax-free (it runs in the parent to validate the option early) and returns a
small tree of `Spec` / literal nodes; `materialize` (child side, imports jax) turns that tree into
`jax.ShapeDtypeStruct`s. `prepare_call` then splits any `(args, kwargs)` — parsed or returned by a
companion — into the dynamic leaves that are traced and the static leaves that are closed over.

Grammar (a Python call's argument list, so keyword arguments work too)::

    f32[8,3]   bf16[4]   i32[]   bool[]   u8[4]   f32        arrays (a bare dtype is a scalar)
    key[]   key[4]                                          typed PRNG keys
    3   2.5   True   None   'text'                          static Python literals (closed over)
    {'w': f32[3]}   (f32[2], u8[4])   [f32[2], 3]           containers, nested freely
    lr=0.1   x=f32[3]                                       keyword arguments
    f32[1024,1024]@P('data', None)   bf16[8]@P()            sharded over `--mesh` (P: PartitionSpec)
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Any

from jaxdoctor.errors import UsageError

#: Short dtype names accepted in specs → numpy/jax dtype names.
DTYPES: dict[str, str] = {
    "f16": "float16", "bf16": "bfloat16", "f32": "float32", "f64": "float64",
    "i8": "int8", "i16": "int16", "i32": "int32", "i64": "int64",
    "u8": "uint8", "u16": "uint16", "u32": "uint32", "u64": "uint64",
    "c64": "complex64", "c128": "complex128", "bool": "bool",
    "f8e4m3": "float8_e4m3fn", "f8e5m2": "float8_e5m2",
    "float16": "float16", "bfloat16": "bfloat16", "float32": "float32", "float64": "float64",
    "int8": "int8", "int16": "int16", "int32": "int32", "int64": "int64",
    "uint8": "uint8", "uint32": "uint32", "complex64": "complex64",
}
KEY = "key"

_EMPTY_BRACKETS = re.compile(r"\b(" + "|".join(sorted([*DTYPES, KEY], key=len, reverse=True)) + r")\[\s*\]")


@dataclass(frozen=True)
class Spec:
    """An abstract array: dtype name (or `key` for a typed PRNG key), shape, and optionally the
    PartitionSpec it is sharded by over `--mesh` (its entries: None, an axis, a tuple of axes)."""

    dtype: str
    shape: tuple[int, ...]
    partition: tuple | None = None

    def __str__(self) -> str:
        short = {v: k for k, v in DTYPES.items() if len(k) <= 5}
        name = KEY if self.dtype == KEY else short.get(self.dtype, self.dtype)
        text = f"{name}[{','.join(map(str, self.shape))}]"
        if self.partition is not None:
            text += "@P(" + ", ".join(repr(e) for e in self.partition) + ")"
        return text


def parse_inputs(text: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """`"f32[8,3], 3, lr=0.1"` → `((Spec('float32', (8, 3)), 3), {'lr': 0.1})`."""
    text = (text or "").strip()
    if not text:
        return (), {}
    problem = _bracket_problem(text)
    if problem is not None:
        raise UsageError(_parse_error(text, *problem))
    inserted: list[int] = []  # positions in `text` after which "()" was inserted

    def fill(m: re.Match) -> str:
        inserted.append(m.end(1) + 1)
        return m.group(1) + "[()]"

    body = _EMPTY_BRACKETS.sub(fill, text)
    source = _PREFIX + body + ")"
    try:
        call = ast.parse(source, mode="eval").body
    except SyntaxError as exc:
        offset = (exc.offset or 1) - 1 - len(_PREFIX)
        shift = 0
        for pos in inserted:
            if pos + shift + 2 <= offset:
                shift += 2
        at = min(max(offset - shift, 0), len(text))
        msg = exc.msg.replace("'__inputs__'", "the argument list")
        raise UsageError(_parse_error(text, at, msg)) from None
    assert isinstance(call, ast.Call)
    args = []
    for node in call.args:
        if isinstance(node, ast.Starred):
            raise UsageError(f"--inputs: `*` is not supported in {text!r}")
        args.append(_node(node, text))
    kwargs = {}
    for kw in call.keywords:
        if kw.arg is None:
            raise UsageError(f"--inputs: `**` is not supported in {text!r}")
        kwargs[kw.arg] = _node(kw.value, text)
    return tuple(args), kwargs


_PREFIX = "__inputs__("
_PAIRS = {")": "(", "]": "[", "}": "{"}


def _bracket_problem(text: str) -> tuple[int, str] | None:
    """(0-based position, message) of the first unbalanced bracket outside string literals."""
    stack: list[tuple[str, int]] = []
    quote: str | None = None
    i = 0
    while i < len(text):
        ch = text[i]
        if quote is not None:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            stack.append((ch, i))
        elif ch in _PAIRS:
            if not stack:
                return i, f"`{ch}` at column {i + 1} closes nothing"
            opener, at = stack.pop()
            if opener != _PAIRS[ch]:
                return i, f"`{ch}` at column {i + 1} does not close the `{opener}` at column {at + 1}"
        i += 1
    if quote is not None:
        return len(text), "a string literal is never closed"
    if stack:
        opener, at = stack[-1]
        return at, f"`{opener}` at column {at + 1} is never closed"
    return None


def _parse_error(text: str, at: int, why: str) -> str:
    """The usage message for text that does not parse, with a caret under position `at`."""
    return f"--inputs: cannot parse {text!r}: {why}\n    {text}\n    {' ' * at}^"


def _node(node: ast.AST, text: str) -> Any:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
        spec = _node(node.left, text)
        if not isinstance(spec, Spec) or spec.dtype == KEY:
            what = str(spec) if isinstance(spec, Spec) else ast.unparse(node.left)
            raise UsageError(f"--inputs: only arrays take a sharding (`f32[8,4]@P('data')`), not "
                             f"{what!r} in {text!r}")
        return _with_partition(spec, node.right, text)
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
        return _spec(node.value.id, node.slice, text)
    if isinstance(node, ast.Name):
        if node.id in DTYPES or node.id == KEY:
            return _spec(node.id, ast.Tuple(elts=[]), text)
        raise UsageError(
            f"--inputs: unknown name {node.id!r} in {text!r}; expected a dtype such as "
            "f32[8,3], i32[], bool[], key[] or a Python literal"
        )
    if isinstance(node, ast.Tuple):
        return tuple(_node(e, text) for e in node.elts)
    if isinstance(node, ast.List):
        return [_node(e, text) for e in node.elts]
    if isinstance(node, ast.Dict):
        out = {}
        for k, v in zip(node.keys, node.values):
            if k is None:
                raise UsageError(f"--inputs: `**` is not supported in {text!r}")
            out[_literal(k, text)] = _node(v, text)
        return out
    return _literal(node, text)


def _literal(node: ast.AST, text: str) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, SyntaxError):
        raise UsageError(f"--inputs: {ast.unparse(node)!r} is neither an array spec nor a literal") from None


def _spec(name: str, index: ast.AST, text: str) -> Spec:
    if name != KEY and name not in DTYPES:
        raise UsageError(
            f"--inputs: unknown dtype {name!r} in {text!r}; known: "
            + ", ".join(k for k in DTYPES if len(k) <= 5) + ", key"
        )
    dims = index.elts if isinstance(index, ast.Tuple) else [index]
    shape = []
    for d in dims:
        value = _literal(d, text)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise UsageError(f"--inputs: dimension {ast.unparse(d)!r} of {name}[...] must be a non-negative int")
        shape.append(value)
    return Spec(KEY if name == KEY else DTYPES[name], tuple(shape))


def _with_partition(spec: Spec, node: ast.AST, text: str) -> Spec:
    """`@P('data', None)` / `@PartitionSpec(...)` after an array spec."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id in ("P", "PartitionSpec") and not node.keywords):
        raise UsageError(f"--inputs: expected a PartitionSpec after `@`, such as @P('data', None), got "
                         f"{ast.unparse(node)!r} in {text!r}")
    entries: list = []
    for arg in node.args:
        value = _literal(arg, text)
        ok = value is None or isinstance(value, str) or (
            isinstance(value, tuple) and value and all(isinstance(a, str) for a in value))
        if not ok:
            raise UsageError(f"--inputs: PartitionSpec entries are None, an axis name or a tuple of axis "
                             f"names; got {ast.unparse(arg)!r} in {text!r}")
        entries.append(value)
    if len(entries) > len(spec.shape):
        raise UsageError(f"--inputs: {ast.unparse(node)} has {len(entries)} entries but {spec} has rank "
                         f"{len(spec.shape)}")
    return Spec(spec.dtype, spec.shape, tuple(entries))


def partitions(tree: Any) -> list[Spec]:
    """The array specs of a parsed `--inputs` tree that carry a PartitionSpec."""
    out: list[Spec] = []
    if isinstance(tree, Spec):
        return [tree] if tree.partition is not None else []
    if isinstance(tree, (tuple, list)):
        for e in tree:
            out.extend(partitions(e))
    elif isinstance(tree, dict):
        for e in tree.values():
            out.extend(partitions(e))
    return out


def parse_vmap(text: str | None) -> tuple[int | None, ...] | None:
    """`"None,0,0"` → `(None, 0, 0)`: `in_axes` per positional argument."""
    if text is None or not text.strip():
        return None
    out: list[int | None] = []
    for part in text.split(","):
        part = part.strip()
        if part.lower() == "none":
            out.append(None)
            continue
        try:
            out.append(int(part))
        except ValueError:
            raise UsageError(f"--vmap: expected comma-separated ints or None, got {part!r} in {text!r}") from None
    return tuple(out)


def describe(value: Any) -> str:
    """Readable one-line form of a parsed or materialized input (for messages)."""
    if isinstance(value, Spec):
        return str(value)
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is not None and dtype is not None:
        return f"{dtype}[{','.join(map(str, shape))}]"
    return repr(value)


# ---------------------------------------------------------------- child side (imports jax)


def materialize(tree: Any, mesh: Any = None) -> Any:
    """Replace every `Spec` in a parsed tree by a `jax.ShapeDtypeStruct` (typed keys for `key`);
    with a `mesh`, arrays carry a `NamedSharding` (their `@P(...)`, else replicated)."""
    import jax

    def conv(x: Any) -> Any:
        if isinstance(x, Spec):
            if x.dtype == KEY:
                key = jax.eval_shape(jax.random.key, 0)
                return jax.ShapeDtypeStruct(x.shape, key.dtype)
            if mesh is None:
                if x.partition is not None:
                    raise UsageError(f"--inputs: {x} is sharded, which needs a mesh: give --mesh "
                                     f"(e.g. --mesh data=4,model=2)")
                return jax.ShapeDtypeStruct(x.shape, x.dtype)
            sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(*(x.partition or ())))
            return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding)
        if isinstance(x, tuple):
            return tuple(conv(e) for e in x)
        if isinstance(x, list):
            return [conv(e) for e in x]
        if isinstance(x, dict):
            return {k: conv(v) for k, v in x.items()}
        return x

    return conv(tree)


def is_array_like(x: Any) -> bool:
    """An array or an abstract array (traced); everything else is a static leaf."""
    import jax
    import numpy as np

    return isinstance(x, (jax.Array, jax.ShapeDtypeStruct, np.ndarray, np.generic))


def to_spec(x: Any) -> Any:
    """A concrete array → its `jax.ShapeDtypeStruct` (weak type kept); specs pass through."""
    import jax

    if isinstance(x, jax.ShapeDtypeStruct):
        return x
    weak = bool(getattr(getattr(x, "aval", None), "weak_type", False))
    sharding = getattr(x, "sharding", None)
    if sharding is not None and len(getattr(sharding, "device_set", ())) > 1:  # keep a multi-device placement
        return jax.ShapeDtypeStruct(x.shape, x.dtype, weak_type=weak, sharding=sharding)
    return jax.ShapeDtypeStruct(x.shape, x.dtype, weak_type=weak)


@dataclass
class PreparedCall:
    """`fn(*args, **kwargs)` as a function of its dynamic (traced) leaves only."""

    flat_fn: Any  # callable(*dynamic_leaves) -> fn's output
    dynamic: list  # ShapeDtypeStruct per dynamic leaf
    names: list[str]  # readable name per dynamic leaf, e.g. "params['w']"
    arg_index: list  # top-level positional index (int) or kwarg name (str) of each dynamic leaf


def prepare_call(fn: Any, args: tuple, kwargs: dict, param_names: list[str]) -> PreparedCall:
    """Split `(args, kwargs)` into traced leaves (arrays/specs) and closed-over static leaves.

    An `nnx.Module` (any NNX graph node) argument is split with `nnx.split` into a static graphdef
    and a traced state, and merged back inside the traced function.
    """
    import jax

    args = tuple(args)
    kwargs = dict(kwargs)
    graphdefs: dict[Any, Any] = {}
    nnx = _maybe_nnx()
    if nnx is not None:
        for i, a in enumerate(args):
            if _is_graph_node(nnx, a):
                graphdefs[i], state = nnx.split(a)
                args = args[:i] + (state,) + args[i + 1 :]
        for k, a in list(kwargs.items()):
            if _is_graph_node(nnx, a):
                graphdefs[k], kwargs[k] = nnx.split(a)

    path_leaves, treedef = jax.tree_util.tree_flatten_with_path((args, kwargs))
    leaves = [leaf for _, leaf in path_leaves]
    dyn_pos = [i for i, leaf in enumerate(leaves) if is_array_like(leaf)]
    dynamic = [to_spec(leaves[i]) for i in dyn_pos]
    names, arg_index = [], []
    for i in dyn_pos:
        path = path_leaves[i][0]
        top, rest = path[0].idx, path[1:]  # 0 = args, 1 = kwargs
        if top == 0:
            pos = rest[0].idx
            base = param_names[pos] if pos < len(param_names) else f"args[{pos}]"
            arg_index.append(pos)
        else:
            pos = rest[0].key
            base = str(pos)
            arg_index.append(pos)
        names.append(base + _keystr(rest[1:], graph=pos in graphdefs))

    def flat_fn(*dyn: Any) -> Any:
        full = list(leaves)
        for i, v in zip(dyn_pos, dyn):
            full[i] = v
        a, kw = jax.tree_util.tree_unflatten(treedef, full)
        if graphdefs:
            a = list(a)
            for key, gdef in graphdefs.items():
                if isinstance(key, int):
                    a[key] = nnx.merge(gdef, a[key])
                else:
                    kw[key] = nnx.merge(gdef, kw[key])
            a = tuple(a)
        return fn(*a, **kw)

    return PreparedCall(flat_fn, dynamic, names, arg_index)


def _keystr(path: tuple, graph: bool = False) -> str:
    import jax

    if graph:  # NNX state paths read best as attribute chains: model.linear.kernel
        parts = []
        for k in path:
            name = getattr(k, "key", getattr(k, "name", getattr(k, "idx", None)))
            if name == "value" and k is path[-1]:
                continue
            parts.append(f"[{name}]" if isinstance(name, int) else f".{name}")
        return "".join(parts)
    return jax.tree_util.keystr(tuple(path))


def _maybe_nnx() -> Any:
    import sys

    if "flax.nnx" not in sys.modules and "flax" not in sys.modules:
        return None
    try:
        from flax import nnx
    except Exception:  # noqa: BLE001 - flax is optional
        return None
    return nnx


def _is_graph_node(nnx: Any, x: Any) -> bool:
    return isinstance(x, nnx.Module)
