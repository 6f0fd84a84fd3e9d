"""What the sharding analyzers see of one compiled jitted function: plain records, built by
`sharding.build` from JAX's executable, XLA's optimized module and the jaxpr.

Sizes are bytes. `spec` strings are `PartitionSpec`s as the user writes them (`P('data', None)`).
Frames are `jax_internals.SrcFrame`s, innermost first (user and library frames alike; the
analyzers pick the user's).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Placement:
    """Where the program put an argument's array with `jax.device_put`, and how."""

    path: str
    line: int
    spec: str  # "P()", "P('data')", or "one device"


@dataclass
class Arg:
    index: int  # flat position among the jitted function's arguments
    name: str  # as the user spells it: "params['embed']", "batch"
    shape: tuple[int, ...]
    dtype: str
    nbytes: int  # the whole array
    device_nbytes: int  # the largest piece one device holds
    spec: str | None  # None: not a NamedSharding (a single device, or XLA's own choice)
    replicated: bool  # every device holds all of it
    sharded_axes: tuple[str, ...]  # mesh axes the array is split over
    donated: bool = False
    aliased: bool = False  # an output reuses its buffer
    kept: bool = True  # False: unused, dropped from the compiled program
    host_array: bool = False  # a NumPy array: copied from the host on every call
    placed: Placement | None = None


@dataclass
class Out:
    index: int
    shape: tuple[int, ...]
    dtype: str
    device_nbytes: int
    spec: str | None


@dataclass
class Op:
    """An instruction of the optimized module, with the Python stack XLA recorded for it."""

    opcode: str
    shape: str  # per device, e.g. "f32[16,128]"
    device_nbytes: int
    frames: tuple  # SrcFrame, innermost first
    op_name: str = ""


@dataclass
class LoopCollective(Op):
    trip_count: int | None = None  # iterations of the enclosing `while` (None: not static)
    loop_frames: tuple = ()  # where the loop (scan, fori_loop, while_loop) is
    of_loop_invariant: bool = False  # gathers something the loop does not change (weights)
    backward: bool = False  # part of the gradient computation (`transpose(...)` in its name)


@dataclass
class Reshard:
    """XLA's SPMD partitioner replicated a whole tensor to change its sharding."""

    source: str  # PartitionSpec (or XLA's sharding text when it has none on this mesh)
    target: str
    shape: str  # the whole tensor
    nbytes: int
    frames: tuple
    op: str  # the HLO operation XLA named


@dataclass
class Constraint:
    """A `with_sharding_constraint` in the jaxpr, and the user lines next to it."""

    frames: tuple  # the constraint's own stack
    spec: str
    shape: tuple[int, ...]
    dtype: str
    #: (file, line) of the equations that produce its operand or use its result: XLA blames the
    #: collectives the constraint causes on these
    neighbours: frozenset[tuple[str, int]] = frozenset()
    #: (dim, size, axes, parts) for each dimension the mesh axes do not divide evenly
    uneven: tuple[tuple[int, int, tuple[str, ...], int], ...] = ()


@dataclass
class Program:
    name: str
    num_devices: int
    mesh: dict[str, int]  # axis name → size (empty when no mesh is known)
    args: list[Arg] = field(default_factory=list)
    outs: list[Out] = field(default_factory=list)
    memory: dict[str, int] | None = None  # per device: argument, output, temp, alias
    collectives: list[LoopCollective] = field(default_factory=list)
    reshards: list[Reshard] = field(default_factory=list)
    buffers: list[Op] = field(default_factory=list)  # the largest values, largest first
    constraints: list[Constraint] = field(default_factory=list)
    #: (file, line, function) of the user's call that compiled it; of its definition
    call_site: tuple[str, int, str] | None = None
    def_site: tuple[str, int] | None = None
    simulated: str | None = None  # "data=4,model=2" when compiled on the doctor's mesh
    #: JAX itself chooses which donated buffers to alias (one device) and warns about the rest;
    #: with shardings it hands them all to XLA and says nothing
    jax_warns_donation: bool = False
    compile_seconds: float = 0.0
    options: dict[str, Any] = field(default_factory=dict)  # thresholds, device memory
