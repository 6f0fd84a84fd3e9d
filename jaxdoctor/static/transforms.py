"""What each JAX / Flax / Equinox transform does to the functions it is given.

Data, not code: a transform names where its function arguments are and which of their
parameters receive tracers. `traced.py` applies these specs; rules read them through it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Params(enum.Enum):
    """Which parameters of a transformed function receive tracers."""

    #: every parameter except `static_argnums` / `static_argnames` (jit, checkpoint, ...)
    JIT = "jit"
    #: parameters whose `in_axes` entry is not None (vmap, pmap)
    IN_AXES = "in_axes"
    #: the `argnums` parameters, default the first (grad, value_and_grad, jacobians)
    ARGNUMS = "argnums"
    #: array-like parameters; annotated Python scalars/flags stay static (eqx.filter_jit/vmap)
    FILTER = "filter"
    #: only the first parameter (eqx.filter_grad / filter_value_and_grad)
    FIRST = "first"
    #: every parameter without a default: loop bodies, cond branches, custom rules
    OPERANDS = "operands"


class Flow(enum.Enum):
    """What a control-flow primitive does with the functions it is given."""

    #: calls its body again and again (scan, fori_loop, while_loop, map)
    LOOP = "loop"
    #: calls one of its branches (cond, switch)
    BRANCH = "branch"


@dataclass(frozen=True, slots=True)
class Transform:
    qualname: str
    params: Params
    #: positional indices of the arguments that are functions
    fn_positions: tuple[int, ...] = (0,)
    #: keyword names of the arguments that are functions
    fn_keywords: tuple[str, ...] = ("fun", "f")
    #: positional index of `in_axes` / `argnums`, when the transform takes it positionally
    axes_position: int | None = None
    #: a control-flow primitive (a loop or a branch) rather than a function transform
    flow: Flow | None = None
    #: a loop whose body maps a carry to a carry (after the index for `fori_loop`; `(carry, x)`
    #: to `(carry, y)` for `scan`): the position and keyword of the initial carry
    carry: tuple[int, str] | None = None
    #: maps its function over an axis of its arguments (vmap, pmap)
    maps: bool = False
    #: the family: "jax", "nnx", "linen" or "equinox"
    family: str = "jax"
    #: the keyword naming positions that stay Python values (`nondiff_argnums`)
    static_keyword: str | None = None
    #: False when the function runs on whatever its callers pass: `custom_jvp`/`custom_vjp`
    #: functions run on concrete values eagerly and under `grad`, `named_call` is transparent
    traces: bool = True
    #: False for differentiation alone (`grad`, `vjp`, `jvp`, `linearize`, `eqx.filter_grad`):
    #: its tracers keep their concrete primal values, so a Python `if` on one still works
    stages: bool = True

    @property
    def control_flow(self) -> bool:
        return self.flow is not None


def _specs() -> dict[str, Transform]:
    out: dict[str, Transform] = {}

    def add(names, params, **kw):
        for name in names:
            family = (
                "nnx" if name.startswith("flax.nnx")
                else "linen" if name.startswith("flax.linen")
                else "equinox" if name.startswith("equinox")
                else "jax"
            )
            out[name] = Transform(name, params, family=family, **kw)

    add(
        [
            "jax.jit", "jax.pjit", "jax.experimental.pjit.pjit", "flax.nnx.jit", "flax.linen.jit",
            "jax.checkpoint", "jax.remat", "flax.nnx.remat", "flax.linen.remat",
            "flax.linen.checkpoint", "jax.make_jaxpr", "jax.eval_shape",
            "flax.nnx.eval_shape", "equinox.filter_eval_shape",
            "jax.shard_map", "jax.experimental.shard_map.shard_map", "flax.nnx.shard_map",
        ],
        Params.JIT,
    )
    add(["jax.named_call"], Params.JIT, traces=False)
    add(["jax.linearize", "jax.vjp", "jax.jvp"], Params.JIT, stages=False)
    add(["jax.vmap", "flax.nnx.vmap", "jax.pmap", "flax.nnx.pmap"], Params.IN_AXES, axes_position=1,
        maps=True)
    add(
        [
            "jax.grad", "jax.value_and_grad", "jax.jacfwd", "jax.jacrev", "jax.hessian",
            "flax.nnx.grad", "flax.nnx.value_and_grad",
        ],
        Params.ARGNUMS,
        axes_position=1,
        stages=False,
    )
    add(["equinox.filter_jit", "equinox.filter_checkpoint"], Params.FILTER)
    add(["equinox.filter_vmap", "equinox.filter_pmap"], Params.FILTER, maps=True)
    add(["equinox.filter_grad", "equinox.filter_value_and_grad", "equinox.filter_jvp",
         "equinox.filter_vjp"], Params.FIRST, stages=False)
    # `nondiff_argnums` are Python values: custom_vjp rejects tracers there
    add(["jax.custom_jvp", "jax.custom_vjp", "flax.nnx.custom_vjp"], Params.OPERANDS,
        static_keyword="nondiff_argnums", traces=False)
    add(["jax.custom_gradient", "jax.lax.associative_scan", "jax.lax.reduce", "jax.lax.custom_root",
         "jax.lax.custom_linear_solve"], Params.OPERANDS)
    add(["jax.lax.scan", "equinox.internal.scan"], Params.OPERANDS, fn_keywords=("f",),
        flow=Flow.LOOP, carry=(1, "init"))
    # (`flax.nnx.map` is not a loop: it maps a function over a graph's state on the host)
    add(["flax.nnx.scan", "jax.lax.map"], Params.OPERANDS, fn_keywords=("f",),
        flow=Flow.LOOP)
    add(["jax.lax.fori_loop", "flax.nnx.fori_loop"], Params.OPERANDS, fn_positions=(2,),
        fn_keywords=("body_fun",), flow=Flow.LOOP, carry=(3, "init_val"))
    add(["jax.lax.while_loop", "flax.nnx.while_loop", "equinox.internal.while_loop"], Params.OPERANDS,
        fn_positions=(0, 1),
        fn_keywords=("cond_fun", "body_fun"), flow=Flow.LOOP, carry=(2, "init_val"))
    add(["jax.lax.cond", "flax.nnx.cond", "flax.linen.cond"], Params.OPERANDS, fn_positions=(1, 2),
        fn_keywords=("true_fun", "false_fun"), flow=Flow.BRANCH)
    add(["jax.lax.switch", "flax.nnx.switch", "flax.linen.switch"], Params.OPERANDS,
        fn_positions=(1,), fn_keywords=("branches",), flow=Flow.BRANCH)
    # Linen's lifted loops take (module, carry, ...) bodies.
    add(["flax.linen.while_loop"], Params.OPERANDS, fn_positions=(0, 1),
        fn_keywords=("cond_fn", "body_fn"), flow=Flow.LOOP)
    add(["flax.linen.scan", "flax.linen.map_variables"], Params.OPERANDS, fn_keywords=("target", "fn"))
    add(["flax.linen.vmap"], Params.OPERANDS, fn_keywords=("target", "fn"), maps=True)
    return out


TRANSFORMS: dict[str, Transform] = _specs()

#: Calls whose function argument runs on the host with concrete NumPy values, never tracers.
HOST_CALLBACKS = frozenset(
    {
        "jax.pure_callback", "jax.experimental.io_callback", "jax.debug.callback",
        "jax.experimental.host_callback.call", "jax.experimental.host_callback.id_tap",
        "jax.ffi.ffi_call",
        # the same callbacks as jax's own sources spell them (found by the sweep of jax itself)
        "jax.experimental.pure_callback", "jax._src.callback.pure_callback",
        "jax._src.callback.io_callback", "jax._src.debugging.debug_callback",
    }
)

#: Calls that apply their first argument leaf by leaf: `f(leaf_of_tree1, leaf_of_tree2, ...)`
#: (after a key path for `*_with_path`).
TREE_MAPS = frozenset(
    {"jax.tree.map", "jax.tree_util.tree_map", "jax.tree.map_with_path",
     "jax.tree_util.tree_map_with_path", "flax.nnx.map", "flax.nnx.map_state"}
)
#: tree maps whose function receives a key path first
PATH_MAPS = frozenset({"jax.tree.map_with_path", "jax.tree_util.tree_map_with_path", "flax.nnx.map",
                       "flax.nnx.map_state"})

#: Calls that run their function argument as a Pallas kernel: a program of its own on refs,
#: whose `lax.cond` stays a branch however the `pallas_call` is batched (vmap adds a grid axis).
PALLAS_KERNELS = frozenset(
    {"jax.experimental.pallas.pallas_call", "jax._src.pallas.pallas_call.pallas_call",
     "jax.experimental.pallas.kernel", "jax._src.pallas.helpers.kernel",
     "jax.experimental.pallas.mosaic_gpu.kernel", "jax._src.pallas.mosaic_gpu.core.kernel",
     "jax.experimental.pallas.core_map", "jax._src.pallas.core.core_map"}
)

#: `functools.partial` spellings.
PARTIALS = frozenset({"functools.partial", "jax.tree_util.Partial"})

#: Module base classes and their family.
MODULE_BASES = {
    "flax.nnx.Module": "nnx",
    "flax.nnx.Object": "nnx",
    "flax.nnx.Pytree": "nnx",
    "flax.linen.Module": "linen",
    "equinox.Module": "equinox",
}
