"""Every use of XLA's compiled-program internals, and of the private JAX hooks the sharding doctor
needs, lives in this file (the sharding counterpart of `jax_internals.py`).

- The optimized HLO module of a compiled executable, read from its text (`HloModule.to_string`)
  into plain records (`Hlo`, `Computation`, `Instr`), and its stack-frame index (`FileNames`,
  `FunctionNames`, `FileLocations`, `StackFrames`) decoded from the module's serialized proto:
  on jax 0.10 an op's metadata carries only `stack_frame_id=N`, valid against the tables of
  the same module. (The text printer writes each frame's `parent_frame_id` one too high; the
  proto is the ground truth.)
- XLA's `HloSharding` text (`{devices=[2,1,4]<=[4,2]T(1,0)}`) turned into a `PartitionSpec`
  of a mesh.
- Hooks into JAX's jit path: `_resolve_and_lower` (the jaxpr and the donated arguments of each
  lowering), `_pjit_call_impl_python` (the arguments of a call that misses the executable cache),
  `MeshComputation.compile` (the compiled executable, the compile time and what XLA logged
  while compiling, read from file descriptor 2 and passed on to the real stderr).
- The device-to-host fetch of a `jax.Array` (`ArrayImpl._value`, and `.item()`/`.tolist()`), the
  Python chokepoint under `float(x)`, `np.asarray(x)`, `x.item()` and `print(x)` — visible even
  on CPU, where the copy is zero-copy and JAX's transfer guard sees nothing (jax-ml/jax#16602);
  except `np.asarray` of an array on one CPU device, which NumPy reads through the buffer
  protocol in C++.
- The CPU device count default (`jax_num_cpu_devices`), applied at backend start unless the
  program chose its own (`XLA_FLAGS=--xla_force_host_platform_device_count`).
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from jaxdoctor.trace.jax_internals import SrcFrame

# ---------------------------------------------------------------------------------------------
# Section: the optimized HLO module as records
# ---------------------------------------------------------------------------------------------

#: bytes per element of XLA's primitive types (sub-byte types rounded up)
_ITEMSIZE = {
    "pred": 1, "s2": 1, "u2": 1, "s4": 1, "u4": 1, "s8": 1, "u8": 1, "s16": 2, "u16": 2, "f16": 2,
    "bf16": 2, "s32": 4, "u32": 4, "f32": 4, "s64": 8, "u64": 8, "f64": 8, "c64": 8, "c128": 16,
    "f8e4m3fn": 1, "f8e5m2": 1, "f8e4m3": 1, "f8e4m3b11fnuz": 1, "f8e4m3fnuz": 1,
    "f8e5m2fnuz": 1, "f8e3m4": 1, "f8e8m0fnu": 1, "f4e2m1fn": 1, "token": 0, "opaque": 0,
}
_ARRAY = re.compile(r"([a-z][a-z0-9]*)\[([0-9,]*)\]")
_COMP_HEAD = re.compile(r"^(ENTRY\s+)?%?([\w.\-]+)\s+\(.*\)\s+->\s+.*\{\s*$")
_INSTR_HEAD = re.compile(r"^\s*(ROOT\s+)?%?([\w.\-]+)\s+=\s+")
_OPNAME = re.compile(r'op_name="((?:[^"\\]|\\.)*)"')
_FRAME_ID = re.compile(r"stack_frame_id=(\d+)")
_TRIP = re.compile(r'"known_trip_count":\{"n":"(\d+)"\}')
_CALLEE = re.compile(r"\b(condition|body|to_apply|calls)=%([\w.\-]+)")
_BRANCHES = re.compile(r"branch_computations=\{([^}]*)\}")
_OPERAND = re.compile(r"%([\w.\-]+)")
_ALIAS = re.compile(r"\{[0-9,\s]*\}:\s*\((\d+),")
_DONOR = re.compile(r"\((\d+),\s*\{")
_PARTITIONS = re.compile(r"num_partitions=(\d+)")

#: the collectives the SPMD partitioner inserts (async `-start` forms included)
COLLECTIVES = ("all-gather", "all-to-all", "collective-permute", "reduce-scatter", "all-reduce",
               "ragged-all-to-all", "collective-broadcast")


@dataclass(frozen=True)
class Shape:
    dtype: str
    dims: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        n = _ITEMSIZE.get(self.dtype, 4)
        for d in self.dims:
            n *= d
        return n

    def __str__(self) -> str:
        return f"{self.dtype}[{','.join(map(str, self.dims))}]"


@dataclass
class Instr:
    name: str
    opcode: str
    shapes: tuple[Shape, ...]  # one per array in the result (a tuple result has several)
    operands: tuple[str, ...]
    attrs: str
    is_root: bool = False
    op_name: str = ""
    frame_id: int = 0
    callees: tuple[str, ...] = ()
    condition: str | None = None
    body: str | None = None
    trip_count: int | None = None
    index: int | None = None  # get-tuple-element's index
    parameter: int | None = None  # parameter(N)

    @property
    def nbytes(self) -> int:
        return sum(s.nbytes for s in self.shapes)

    @property
    def collective(self) -> str | None:
        """all-gather, all-to-all, ... for a collective (its async `-start` too), else None."""
        op = self.opcode.removesuffix("-start")
        return op if op in COLLECTIVES else None

    @property
    def sharding(self) -> str | None:
        return _braced(self.attrs, "sharding=")


@dataclass
class Computation:
    name: str
    instrs: list[Instr] = field(default_factory=list)
    is_entry: bool = False

    @functools.cached_property
    def by_name(self) -> dict[str, Instr]:
        return {i.name: i for i in self.instrs}

    @property
    def root(self) -> Instr | None:
        return next((i for i in self.instrs if i.is_root), self.instrs[-1] if self.instrs else None)


@dataclass
class Hlo:
    """One optimized HLO module: its computations, header facts and stack-frame index."""

    name: str
    computations: dict[str, Computation]
    entry: Computation
    num_partitions: int
    aliased_params: frozenset[int]  # parameters whose buffer an output reuses
    donor_params: frozenset[int]  # parameters donated for XLA to use (`buffer_donor`)
    frames: dict[int, tuple[SrcFrame, ...]]  # stack_frame_id → frames, innermost first

    def frames_of(self, instr: Instr) -> tuple[SrcFrame, ...]:
        return self.frames.get(instr.frame_id, ())

    def while_loops(self) -> Iterator[tuple[Instr, Computation]]:
        """Every `while` and its computation, in every computation of the module."""
        for comp in self.computations.values():
            for ins in comp.instrs:
                if ins.opcode == "while":
                    yield ins, comp

    def called(self, name: str) -> list[Computation]:
        """The computation `name` and every computation it calls (fusions, nested loops)."""
        out, todo, seen = [], [name], set()
        while todo:
            n = todo.pop()
            if n in seen or n not in self.computations:
                continue
            seen.add(n)
            comp = self.computations[n]
            out.append(comp)
            for ins in comp.instrs:
                todo.extend(ins.callees)
        return out


def _braced(text: str, key: str) -> str | None:
    """The `{...}` value of `key=` in an attribute list (nested braces kept)."""
    at = text.find(key)
    if at < 0:
        return None
    i = at + len(key)
    if i >= len(text) or text[i] != "{":
        return None
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i : j + 1]
    return None


def _matching(text: str, i: int, open_: str = "(", close: str = ")") -> int:
    """Index just past the bracket that closes the one at `text[i]`."""
    depth = 0
    for j in range(i, len(text)):
        c = text[j]
        if c == open_:
            depth += 1
        elif c == close:
            depth -= 1
            if depth == 0:
                return j + 1
    return len(text)


def _shapes(text: str) -> tuple[Shape, ...]:
    out = []
    for dtype, dims in _ARRAY.findall(text):
        out.append(Shape(dtype, tuple(int(d) for d in dims.split(",") if d)))
    return tuple(out)


def _instr(line: str) -> Instr | None:
    m = _INSTR_HEAD.match(line)
    if not m:
        return None
    rest = line[m.end():]
    if rest.startswith("("):  # a tuple shape
        end = _matching(rest, 0)
        shape_text, rest = rest[:end], rest[end:].lstrip()
    else:
        sp = rest.find(" ")
        if sp < 0:
            return None
        shape_text, rest = rest[:sp], rest[sp + 1 :]
    paren = rest.find("(")
    if paren < 0:
        return None
    opcode = rest[:paren].strip()
    close = _matching(rest, paren)
    operand_text, attrs = rest[paren + 1 : close - 1], rest[close:]
    ins = Instr(
        name=m.group(2), opcode=opcode, shapes=_shapes(shape_text),
        operands=tuple(_OPERAND.findall(operand_text)) if opcode != "constant" else (),
        attrs=attrs, is_root=bool(m.group(1)),
    )
    meta = _braced(attrs, "metadata=")
    if meta:
        om = _OPNAME.search(meta)
        ins.op_name = om.group(1) if om else ""
        fm = _FRAME_ID.search(meta)
        ins.frame_id = int(fm.group(1)) if fm else 0
    callees = []
    for key, name in _CALLEE.findall(attrs):
        callees.append(name)
        if key == "condition":
            ins.condition = name
        elif key == "body":
            ins.body = name
    for group in _BRANCHES.findall(attrs):
        callees.extend(_OPERAND.findall(group))
    ins.callees = tuple(callees)
    tm = _TRIP.search(attrs)
    ins.trip_count = int(tm.group(1)) if tm else None
    if opcode == "get-tuple-element":
        im = re.search(r"\bindex=(\d+)", attrs)
        ins.index = int(im.group(1)) if im else None
    elif opcode == "parameter":
        try:
            ins.parameter = int(operand_text.strip())
        except ValueError:
            ins.parameter = None
    return ins


def parse_hlo(text: str, proto: bytes | None = None) -> Hlo:
    """The records of one HLO module's text (and its frame index, from the serialized proto)."""
    lines = text.splitlines()
    header = lines[0] if lines else ""
    comps: dict[str, Computation] = {}
    entry: Computation | None = None
    current: Computation | None = None
    for raw in lines[1:]:
        if current is None:
            m = _COMP_HEAD.match(raw)
            if m:
                current = Computation(m.group(2), is_entry=bool(m.group(1)))
                comps[current.name] = current
                if current.is_entry:
                    entry = current
            continue
        if raw.strip() == "}":
            current = None
            continue
        ins = _instr(raw)
        if ins is not None:
            current.instrs.append(ins)
    if entry is None:
        entry = next(iter(comps.values()), Computation("main", is_entry=True))
    alias_text = _braced(header, "input_output_alias=") or ""
    donor_text = _braced(header, "buffer_donor=") or ""
    pm = _PARTITIONS.search(header)
    name = header.split()[1].rstrip(",") if header.startswith("HloModule") and len(header.split()) > 1 else "module"
    return Hlo(
        name=name, computations=comps, entry=entry, num_partitions=int(pm.group(1)) if pm else 1,
        aliased_params=frozenset(int(p) for p in _ALIAS.findall(alias_text)),
        donor_params=frozenset(int(p) for p in _DONOR.findall(donor_text)),
        frames=frame_index(proto) if proto else {},
    )


# --- the stack-frame index, from the module's serialized proto (protobuf wire format) ----------

#: HloModuleProto.stack_frame_index; StackFrameIndexProto's repeated fields
_STACK_FRAME_INDEX = 17
_FILE_NAMES, _FUNCTION_NAMES, _FILE_LOCATIONS, _STACK_FRAMES = 1, 2, 3, 4


def _varint(b: bytes, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        c = b[i]
        i += 1
        result |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return result, i


def _fields(b: bytes) -> Iterator[tuple[int, Any]]:
    i, n = 0, len(b)
    while i < n:
        key, i = _varint(b, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            val, i = _varint(b, i)
        elif wire == 2:
            size, i = _varint(b, i)
            val, i = b[i : i + size], i + size
        elif wire == 1:
            val, i = b[i : i + 8], i + 8
        elif wire == 5:
            val, i = b[i : i + 4], i + 4
        else:  # groups: not used by HloModuleProto
            return
        yield num, val


def frame_index(proto: bytes) -> dict[int, tuple[SrcFrame, ...]]:
    """stack_frame_id (1-based) → the frames of that stack, innermost first."""
    index = next((v for k, v in _fields(proto) if k == _STACK_FRAME_INDEX), None)
    if index is None:
        return {}
    files, functions, locations, frames = [], [], [], []
    for k, v in _fields(index):
        if k == _FILE_NAMES:
            files.append(v.decode("utf-8", "replace"))
        elif k == _FUNCTION_NAMES:
            functions.append(v.decode("utf-8", "replace"))
        elif k == _FILE_LOCATIONS:
            locations.append(dict(_fields(v)))
        elif k == _STACK_FRAMES:
            frames.append(dict(_fields(v)))

    def src(loc_id: int) -> SrcFrame | None:
        if not 1 <= loc_id <= len(locations):
            return None
        loc = locations[loc_id - 1]
        fi, fn = loc.get(1, 0), loc.get(2, 0)
        line = loc.get(3, 0)
        col = loc.get(4, 0)
        end_line = loc.get(5, 0) or line
        end_col = loc.get(6, 0)
        return SrcFrame(
            file=files[fi - 1] if 1 <= fi <= len(files) else "",
            function=functions[fn - 1] if 1 <= fn <= len(functions) else "",
            line=line, column=col + 1, end_line=end_line,
            end_column=(end_col + 1) if end_col > col or end_line > line else col + 1, first_line=line,
        )

    out: dict[int, tuple[SrcFrame, ...]] = {}
    for fid in range(1, len(frames) + 1):
        chain, cur, seen = [], fid, set()
        while 1 <= cur <= len(frames) and cur not in seen:
            seen.add(cur)
            fr = src(frames[cur - 1].get(1, 0))
            if fr is not None:
                chain.append(fr)
            cur = frames[cur - 1].get(2, 0)
        out[fid] = tuple(chain)
    return out


# ---------------------------------------------------------------------------------------------
# Section: shardings
# ---------------------------------------------------------------------------------------------


def spec_of_hlo_sharding(text: str, mesh: Any) -> Any | None:
    """`{devices=[2,1,4]<=[4,2]T(1,0)}` on `mesh` → `PartitionSpec('y', None, 'x')` (None when
    XLA's sharding is not expressible on this mesh)."""
    from jax._src import sharding_impls
    from jax._src.lib import xla_client as xc

    try:
        hs = xc.HloSharding.from_string(text)
        if hs.tuple_elements():
            return None
        if hs.is_replicated():
            return sharding_impls.PartitionSpec()
        if hs.is_maximal():  # all on one device: no PartitionSpec says that
            return None
        return sharding_impls.parse_flatten_op_sharding(hs, mesh)[0]
    except Exception:  # noqa: BLE001 - an unusual sharding: say nothing rather than guess
        return None


def sharding_param(eqn: Any) -> Any:
    """The sharding a `sharding_constraint` equation asks for."""
    return eqn.params.get("sharding")


def global_dims(local: tuple[int, ...], sharding_text: str) -> tuple[int, ...]:
    """The whole tensor's dimensions, from one device's piece and the sharding it was cut by."""
    from jax._src.lib import xla_client as xc

    try:
        hs = xc.HloSharding.from_string(sharding_text)
        if not hs.is_tiled():
            return tuple(local)
        tiles = list(hs.tile_assignment_dimensions())
    except Exception:  # noqa: BLE001
        return tuple(local)
    return tuple(d * (tiles[i] if i < len(tiles) else 1) for i, d in enumerate(local))


def parse_instruction(text: str) -> Instr | None:
    """One instruction's text (`%add.2 = f32[8,16,4]{2,1,0} add(...), metadata={...}`)."""
    return _instr(text.strip())


_REMAT_FROM = re.compile(r"from sharding (\{)")
_REMAT_OP = re.compile(r"for HLO operation:?\s+(%\S.*?)(?:\. (?:As the last resort|You probably want)|$)")


def parse_remat_warning(line: str) -> tuple[str, str, str] | None:
    """XLA's "[SPMD] Involuntary full rematerialization ..." log line → (source sharding, target
    sharding, the HLO operation's text or "") — both wordings: "cannot go from sharding A to B
    efficiently for HLO operation %op" (jax 0.10) and "was not able to go from sharding A to B
    without doing a full rematerialization of the tensor for HLO operation: %op" (older)."""
    m = _REMAT_FROM.search(line)
    if not m:
        return None
    start = m.start(1)
    end = _matching(line, start, "{", "}")
    source = line[start:end]
    rest = line[end:]
    at = rest.find(" to {")
    if at < 0:
        return None
    t0 = at + len(" to ")
    t1 = _matching(rest, t0, "{", "}")
    target = rest[t0:t1]
    om = _REMAT_OP.search(rest[t1:])
    return source, target, (om.group(1) if om else "")


# ---------------------------------------------------------------------------------------------
# Section: hooks into JAX's jit path (lowering, calls that miss the cache, compiling)
# ---------------------------------------------------------------------------------------------


@dataclass
class CompileRecord:
    """What one compilation of a jitted function gives the doctor."""

    name: str
    executable: Any  # pxla.MeshExecutable
    jaxpr: Any  # the ClosedJaxpr that was lowered (before dead-code elimination)
    donated: tuple[bool, ...]  # per flat argument, before dead-code elimination
    arg_types: tuple  # per flat argument: (is_np_array, committed, sharding) or None (AOT)
    args: tuple | None  # the call's flat argument values, when it was a call (not `.lower`)
    log: str  # what XLA wrote to stderr while compiling
    seconds: float

    def hlo_text(self) -> str:
        return self.executable.xla_executable.hlo_modules()[0].to_string()

    def hlo_proto(self) -> bytes:
        return self.executable.xla_executable.hlo_modules()[0].as_serialized_hlo_module_proto()

    def memory(self) -> dict[str, int] | None:
        try:
            ma = self.executable.xla_executable.get_compiled_memory_stats()
        except Exception:  # noqa: BLE001 - some backends have none
            return None
        return {k: int(getattr(ma, f"{k}_size_in_bytes", 0)) for k in ("argument", "output", "temp", "alias")}

    @property
    def num_devices(self) -> int:
        try:
            return len(self.executable.xla_executable.local_devices())
        except Exception:  # noqa: BLE001
            return 1

    @property
    def in_shardings(self) -> tuple:
        return tuple(self.executable._in_shardings)

    @property
    def out_shardings(self) -> tuple:
        return tuple(self.executable._out_shardings)

    @property
    def in_avals(self) -> tuple:
        return tuple(self.executable.in_avals)

    @property
    def out_avals(self) -> tuple:
        return tuple(self.executable.out_avals)

    @property
    def kept(self) -> tuple[int, ...]:
        """Flat argument indices the compiled program takes (unused ones are dropped)."""
        return tuple(sorted(self.executable._kept_var_idx))

    @property
    def arg_names(self) -> tuple[str, ...]:
        dbg = getattr(self.jaxpr.jaxpr, "_debug_info", None) or getattr(self.jaxpr.jaxpr, "debug_info", None)
        n = len(self.jaxpr.in_avals)
        try:
            names = tuple(dbg.safe_arg_names(n))
        except Exception:  # noqa: BLE001
            names = tuple(f"args[{i}]" for i in range(n))
        return names

    @property
    def function_source(self) -> str | None:
        """`"f at /path/x.py:12"`: where the jitted function is defined."""
        dbg = getattr(self.jaxpr.jaxpr, "_debug_info", None) or getattr(self.jaxpr.jaxpr, "debug_info", None)
        return getattr(dbg, "func_src_info", None)


_call_local = threading.local()
_capture_lock = threading.Lock()


def install_compile_hook(on_compiled: Callable[[CompileRecord], None]) -> Callable[[], None]:
    """Call `on_compiled(record)` after every compilation of a jitted function (a call that misses
    JAX's caches, or an explicit `.lower(...).compile()`); XLA's log of that compilation is passed
    on to the real stderr as well. Returns an uninstall callable."""
    from jax._src import pjit as _pjit
    from jax._src.interpreters import pxla as _pxla

    orig_lower = _pjit._resolve_and_lower
    orig_call = _pjit._pjit_call_impl_python
    orig_compile = _pxla.MeshComputation.compile

    @functools.wraps(orig_lower)
    def _resolve_and_lower(args, jaxpr, *a, **k):
        computation = orig_lower(args, jaxpr, *a, **k)
        try:
            donated = k.get("donated_invars", a[4] if len(a) > 4 else ())
            name = k.get("name", a[6] if len(a) > 6 else "fn")
            computation._jaxdoctor = {
                "jaxpr": jaxpr, "donated": tuple(bool(d) for d in donated), "name": name,
                "arg_types": tuple((getattr(t, "is_np_array", False), getattr(t, "committed", True),
                                    getattr(t, "sharding", None)) for t in args),
            }
        except Exception:  # noqa: BLE001 - never break the user's program
            pass
        return computation

    @functools.wraps(orig_call)
    def _pjit_call_impl_python(*args, **params):
        stack = getattr(_call_local, "args", None)
        if stack is None:
            stack = _call_local.args = []
        stack.append(args)
        try:
            return orig_call(*args, **params)
        finally:
            stack.pop()

    @functools.wraps(orig_compile)
    def compile(self, *a, **k):
        info = getattr(self, "_jaxdoctor", None)
        if info is None or getattr(self, "_executable", None) is not None:
            return orig_compile(self, *a, **k)
        stack = getattr(_call_local, "args", None)
        call_args = stack[-1] if stack else None
        try:
            multi = len(self._device_list or ()) > 1
        except Exception:  # noqa: BLE001
            multi = True
        t0 = time.perf_counter()
        with (_stderr_captured() if multi else contextlib.nullcontext(_Log())) as log:
            executable = orig_compile(self, *a, **k)
        seconds = time.perf_counter() - t0
        try:
            on_compiled(CompileRecord(
                name=str(info["name"]), executable=executable, jaxpr=info["jaxpr"],
                donated=info["donated"], arg_types=info["arg_types"],
                args=tuple(call_args) if call_args is not None and len(call_args) == len(info["donated"]) else None,
                log=log.text, seconds=seconds,
            ))
        except Exception as exc:  # noqa: BLE001 - the doctor never breaks the program
            print(f"jaxdoctor: sharding analysis failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return executable

    _pjit._resolve_and_lower = _resolve_and_lower
    _pjit._pjit_call_impl_python = _pjit_call_impl_python
    _pxla.MeshComputation.compile = compile

    def uninstall() -> None:
        _pjit._resolve_and_lower = orig_lower
        _pjit._pjit_call_impl_python = orig_call
        _pxla.MeshComputation.compile = orig_compile

    return uninstall


class _Log:
    text = ""


@contextlib.contextmanager
def _stderr_captured() -> Iterator[_Log]:
    """Capture what is written to file descriptor 2 (XLA's C++ log), then pass it on unchanged."""
    log = _Log()
    if not _capture_lock.acquire(blocking=False):  # another thread is capturing: don't interleave
        yield log
        return
    try:
        try:
            sys.stderr.flush()
        except Exception:  # noqa: BLE001
            pass
        try:
            saved = os.dup(2)
        except OSError:
            yield log
            return
        with tempfile.TemporaryFile() as tmp:
            os.dup2(tmp.fileno(), 2)
            try:
                yield log
            finally:
                try:
                    sys.stderr.flush()
                except Exception:  # noqa: BLE001
                    pass
                os.dup2(saved, 2)
                os.close(saved)
                tmp.seek(0)
                data = tmp.read()
                if data:
                    os.write(2, data)
                log.text = data.decode("utf-8", "replace")
    finally:
        _capture_lock.release()


# ---------------------------------------------------------------------------------------------
# Section: device-to-host fetches, placements, and the simulated device count
# ---------------------------------------------------------------------------------------------


def install_fetch_hook(on_fetch: Callable[[Any], None]) -> Callable[[], None]:
    """Call `on_fetch(array)` each time a `jax.Array`'s value is first copied to the host
    (`float(x)`, `np.asarray(x)`, `x.item()`, `print(x)`, `jax.device_get(x)`)."""
    from jax._src import array as _array  # the class itself: making an array would start the backend

    cls = _array.ArrayImpl
    original = cls.__dict__.get("_value")
    if not isinstance(original, property):
        return lambda: None
    getter = original.fget

    def _value(self):
        if self._npy_value is None:
            try:
                on_fetch(self)
            except Exception:  # noqa: BLE001 - never break the program
                pass
        return getter(self)

    setattr(cls, "_value", property(_value))
    restore = [lambda: setattr(cls, "_value", original)]
    # `x.item()` and `x.tolist()` read through `np.asarray(x)`, which for an array on one CPU
    # device takes NumPy's buffer protocol (zero-copy, in C++) and never reaches `_value`
    for name in ("item", "tolist"):
        method = cls.__dict__.get(name)
        if method is None:
            continue

        def wrapped(self, *a, __method=method, **k):
            try:
                on_fetch(self)
            except Exception:  # noqa: BLE001 - never break the program
                pass
            return __method(self, *a, **k)

        functools.update_wrapper(wrapped, method)
        setattr(cls, name, wrapped)
        restore.append(lambda n=name, m=method: setattr(cls, n, m))
    return lambda: [r() for r in restore]


def install_device_put_hook(on_put: Callable[[Any, Any], None]) -> Callable[[], None]:
    """Call `on_put(result, device)` after each `jax.device_put(x, device_or_sharding)`."""
    import jax
    from jax._src import api as _api

    original = jax.device_put

    @functools.wraps(original)
    def device_put(x, device=None, *a, **k):
        out = original(x, device, *a, **k)
        try:
            on_put(out, device)
        except Exception:  # noqa: BLE001
            pass
        return out

    jax.device_put = device_put
    _api.device_put = device_put
    return lambda: (setattr(jax, "device_put", original), setattr(_api, "device_put", original))


def default_cpu_devices(count: int) -> None:
    """Give the CPU backend `count` devices unless the program asks for its own number (its own
    `jax.config.update('jax_num_cpu_devices', n)` or `XLA_FLAGS` with
    `--xla_force_host_platform_device_count`), decided when the backend starts."""
    import jax
    from jax._src import xla_bridge as _xb

    jax.config.update("jax_num_cpu_devices", int(count))
    original = _xb.backends

    @functools.wraps(original)
    def backends():
        if not _xb.backends_are_initialized():
            own_flag = "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", "")
            if own_flag and _xb.num_cpu_devices.value == int(count):
                jax.config.update("jax_num_cpu_devices", -1)
            _xb.backends = original
        return original()

    _xb.backends = backends


def sharding_argument_of_error(exc: BaseException) -> tuple[Any, str] | None:
    """For a sharding error jit raised while checking its `in_shardings`/`out_shardings`: (the
    jitted function, "in_shardings" or "out_shardings"), read from JAX's frames in the traceback;
    None for any other error."""
    which = None
    fun = None
    tb = exc.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_code.co_name
        if name == "_check_and_canonicalize_out_shardings":
            which = "out_shardings"
        elif name in ("_resolve_in_shardings", "_check_and_canonicalize_in_shardings"):
            which = "in_shardings"
        elif name == "_trace_for_jit" and fun is None:
            fun = tb.tb_frame.f_locals.get("fun")
        tb = tb.tb_next
    if which is None or fun is None:
        return None
    return getattr(fun, "f", fun), which
