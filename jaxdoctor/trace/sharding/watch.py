"""The sharding doctor in the trace child: hooks installed while the user's code runs (or while
`--inputs` are compiled on a mesh), programs built and analysed as JAX compiles them.

- Every compilation of a jitted function that runs the user's code goes through
  `build.build` and `analyze_program`: all rules when it spans more than one device, the
  donation rule (and the memory rule, with `--device-memory`) when it does not.
- With `--mesh`, a function the program compiles for one device is compiled once more on the
  doctor's mesh (inputs replicated, as JAX places arrays that carry no sharding), and analysed
  as it would run there.
- `jax.device_put` calls are remembered (where each array was placed, and how); device-to-host
  fetches are counted by line (JD537).
- The seconds spent compiling and analysing each function are reported (`make bench`).
"""

from __future__ import annotations

import contextlib
import threading
import time
import weakref
from typing import Any

from jaxdoctor.trace import xla_internals as xi
from jaxdoctor.trace.frames import is_user_file, user_frames_on_stack
from jaxdoctor.trace.sharding import analyze_program, placements
from jaxdoctor.trace.sharding.build import build, fmt_spec
from jaxdoctor.trace.sharding.host_transfer import FetchLog
from jaxdoctor.trace.sharding.program import Placement

_local = threading.local()


class ShardingWatch:
    def __init__(self, session: Any, options: dict | None = None, *, watch_fetches: bool = True) -> None:
        self.session = session
        self.options = dict(options or {})
        self.fetches = FetchLog() if watch_fetches else None
        self._placed: dict[int, tuple[Any, Placement]] = {}
        self._uninstall: list = []
        self.compiled = 0

    # ------------------------------------------------------------------ installation
    def install(self) -> None:
        placements.ACTIVE.append(self)
        self._uninstall.append(lambda: placements.ACTIVE.remove(self))
        self._uninstall.append(xi.install_compile_hook(self._on_compiled))
        self._uninstall.append(xi.install_device_put_hook(self._on_put))
        if self.fetches is not None:
            self._uninstall.append(xi.install_fetch_hook(self.fetches.on_fetch))

    def uninstall(self) -> None:
        while self._uninstall:
            self._uninstall.pop()()

    def finish(self) -> None:
        """Report what only the whole run shows (host transfers per step)."""
        if self.fetches is not None:
            for f in self.fetches.findings():
                self.session.emit(f)

    # ------------------------------------------------------------------ placements
    def _on_put(self, out: Any, device: Any) -> None:
        if device is None:
            return
        stack = user_frames_on_stack(skip=3)
        if not stack:
            return
        import jax

        path, _, line = stack[0]
        leaves = jax.tree_util.tree_leaves(out)
        targets = jax.tree_util.tree_leaves(device) if not _is_target(device) else [device] * len(leaves)
        if len(targets) != len(leaves):
            targets = [targets[0]] * len(leaves) if targets else [device] * len(leaves)
        for leaf, target in zip(leaves, targets):
            if isinstance(target, jax.sharding.PartitionSpec):  # under `jax.set_mesh`
                how = fmt_spec(target)
            elif getattr(target, "spec", None) is not None:
                how = fmt_spec(target.spec)
            elif isinstance(target, (jax.Device, jax.sharding.SingleDeviceSharding)):
                how = "one device"
            else:
                continue
            try:
                self._placed[id(leaf)] = (weakref.ref(leaf), Placement(path, line, how))
            except TypeError:
                continue
        if len(self._placed) > 100_000:
            self._placed = {k: v for k, v in self._placed.items() if v[0]() is not None}

    def placement_of_shape(self, shape: str, how: str) -> tuple[str, int] | None:
        """Where the latest live array of this `dtype[dims]` was placed `how` ("one device")."""
        for ref, placed in reversed(list(self._placed.values())):
            value = ref()
            if value is None or placed.spec != how:
                continue
            try:
                text = f"{value.dtype}[{','.join(map(str, value.shape))}]"
            except Exception:  # noqa: BLE001
                continue
            if text == shape:
                return placed.path, placed.line
        return None

    def _placement(self, value: Any) -> Placement | None:
        got = self._placed.get(id(value))
        if got is None or got[0]() is not value:
            return None
        return got[1]

    # ------------------------------------------------------------------ compilations
    def _on_compiled(self, rec: xi.CompileRecord) -> None:
        override = getattr(_local, "override", None)
        simulated = override.get("simulated") if override else None
        devices = rec.num_devices
        if devices <= 1 and not any(rec.donated) and not self.options.get("device_memory") \
                and not self.options.get("mesh"):
            return  # one device, nothing donated, nothing asked: nothing to check (and no cost)
        stack = override.get("stack", []) if override else user_frames_on_stack(skip=3)
        if override is None and not _runs_user_code(rec, stack or []):
            return
        t0 = time.perf_counter()
        call_site = (stack[0][0], stack[0][2], stack[0][1]) if stack else None
        prog = build(rec, placements=self._placement, call_site=call_site, options=self.options,
                     simulated=simulated)
        if any(a.name.startswith("dynamic_") for a in prog.args):
            _equinox_names(prog)
        if override is not None:
            names = override.get("names") or [a.name for a in prog.args]
            for a, n in zip(prog.args, names):
                a.name = n
            prog.name = override.get("function") or prog.name
            if override.get("def_site"):
                prog.def_site = override["def_site"]
        findings = analyze_program(prog) if prog.num_devices > 1 or devices <= 1 else []
        seconds = time.perf_counter() - t0
        self.compiled += 1
        for f in findings:
            self.session.emit(f)
        self.session.write({"event": "sharding", "function": prog.name, "devices": prog.num_devices,
                            "compile_seconds": round(rec.seconds, 6), "analysis_seconds": round(seconds, 6),
                            "simulated": simulated, "findings": len(findings)})
        mesh = self.options.get("mesh")
        if mesh and override is None and devices <= 1:
            self._simulate(rec, mesh, stack or [])

    def _simulate(self, rec: xi.CompileRecord, mesh_text: str, stack: list) -> None:
        """Compile the same function once more on the doctor's mesh, inputs replicated."""
        import jax

        from jaxdoctor.trace import jax_internals as ji

        try:
            mesh = make_mesh(mesh_text)
            closed = rec.jaxpr
            replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
            specs = [jax.ShapeDtypeStruct(ji.aval_shape(a) or (), a.dtype, sharding=replicated)
                     for a in closed.in_avals]
            donate = tuple(i for i, d in enumerate(rec.donated) if d)
            fn = jax.jit(ji.jaxpr_as_fun(closed), donate_argnums=donate)
            with _overriding(simulated=mesh_text, stack=stack, names=rec.arg_names, function=rec.name,
                             def_site=_def_site_of(rec)):
                fn.lower(*specs).compile()
        except Exception as exc:  # noqa: BLE001 - a program that runs may not fit the mesh
            self.session.note(f"`{rec.name}` could not be compiled on the mesh {mesh_text}: "
                              f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")


@contextlib.contextmanager
def _overriding(**what: Any):
    """What the next compilation in this thread is (the doctor's own compile of the user's function)."""
    _local.override = what
    try:
        yield
    finally:
        _local.override = None


def _def_site_of(rec: xi.CompileRecord) -> tuple[str, int] | None:
    from jaxdoctor.trace.sharding.build import _def_site

    return _def_site(rec.function_source)


def _equinox_names(prog: Any) -> None:
    """`eqx.filter_jit` names the arguments `dynamic_donate['rest'][0]`: the user's names, and the
    user's function as the definition, from equinox's call on the stack."""
    import inspect

    from jaxdoctor.trace import eqx_internals

    found = eqx_internals.call_on_stack()
    if found is None:
        return
    names, fun = found
    for a in prog.args:
        a.name = names.get(a.name, a.name)
    try:
        path, line = inspect.getsourcefile(fun), inspect.getsourcelines(fun)[1]
    except (TypeError, OSError):
        return
    if path and is_user_file(path):
        prog.def_site = (path, line)
        prog.name = getattr(fun, "__name__", prog.name)


def make_mesh(text: str) -> Any:
    """The doctor's mesh for `--mesh data=4,model=2`, over the first devices JAX has."""
    import jax
    import numpy as np

    from jaxdoctor.trace.mesh import parse_mesh

    spec = parse_mesh(text)
    devices = jax.devices()
    if len(devices) < spec.size:
        raise ValueError(f"--mesh {text} needs {spec.size} devices; JAX has {len(devices)}")
    grid = np.array(devices[: spec.size]).reshape(tuple(s for _, s in spec.axes))
    return jax.sharding.Mesh(grid, tuple(a for a, _ in spec.axes))


def _is_target(x: Any) -> bool:
    import jax

    return isinstance(x, (jax.sharding.Sharding, jax.Device, jax.sharding.PartitionSpec))


def _runs_user_code(rec: xi.CompileRecord, stack: list) -> bool:
    """A function the user wrote, or one that runs the user's code (nnx.jit, eqx.filter_jit);
    not JAX's own helpers, nor an eager operation on a sharded array."""
    src = rec.function_source or ""
    _, sep, where = src.rpartition(" at ")
    if sep and is_user_file(where.rsplit(":", 1)[0]):
        return True
    from jaxdoctor.trace.capture import _ran_user_code

    return _ran_user_code(rec.jaxpr, stack)


# ---------------------------------------------------------------------- options and entry points


def options_from_job(job: dict) -> dict:
    """The sharding doctor's options of one trace job (validated again; the parent did first)."""
    from jaxdoctor.trace.mesh import parse_device_memory, parse_mesh, parse_size

    opts: dict = {}
    if job.get("mesh"):
        opts["mesh"] = str(parse_mesh(job["mesh"]))
    if job.get("device_memory"):
        opts["device_memory"], opts["device_name"] = parse_device_memory(job["device_memory"])
    if job.get("replicated_threshold"):
        opts["replicated_threshold"] = parse_size(job["replicated_threshold"], option="--replicated-threshold")
    return opts


def cpu_device_count(request: dict) -> int | None:
    """How many CPU devices the program gets: the `--mesh`'s size, else `DEFAULT_CPU_DEVICES`
    when a target's source builds a mesh; None (JAX's default) otherwise or off the CPU."""
    from jaxdoctor.trace.mesh import DEFAULT_CPU_DEVICES, builds_a_mesh, parse_mesh

    if request.get("device") not in (None, "cpu"):
        return None
    jobs = request.get("jobs") or []
    for job in jobs:
        if job.get("mesh"):
            return parse_mesh(job["mesh"]).size
    for job in jobs:
        if builds_a_mesh(_target_source(job.get("target") or {})):
            return DEFAULT_CPU_DEVICES
    return None


def _target_source(target: dict) -> str:
    path = target.get("spec") if target.get("kind") in ("file", "script") else None
    if path is None and target.get("spec"):
        try:
            import importlib.util

            spec = importlib.util.find_spec(target["spec"])
            path = spec.origin if spec else None
        except Exception:  # noqa: BLE001 - a module that cannot be found: the job will say so
            path = None
    try:
        with open(path or "", encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def compile_abstract(fn: Any, specs: list, session: Any, options: dict, *, name: str,
                     names: list[str], def_site: tuple[str, int] | None) -> None:
    """`--inputs` on a mesh: lower and compile `fn` for the abstract inputs (nothing runs, nothing
    is allocated) and analyse the compiled program."""
    import jax

    watch = ShardingWatch(session, options, watch_fetches=False)
    watch.install()
    try:
        with _overriding(simulated=None, stack=[], names=names, function=name, def_site=def_site):
            jax.jit(fn).lower(*specs).compile()
    finally:
        watch.uninstall()
