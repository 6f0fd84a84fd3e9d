"""What the sharding doctor reads from XLA, checked against real compilations on 8 simulated CPU
devices: the stack-frame index of the optimized module (a frame's parent chain, read from the
proto: the text printer writes each parent one too high), the SPMD partitioner's warning in both
of its wordings, XLA's sharding notation as PartitionSpecs, and the compiler log passed on."""

from __future__ import annotations

import textwrap

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxdoctor.trace import xla_internals as xi


def _compile(tmp_path, source: str, fn: str, *args):
    import importlib.util

    path = tmp_path / "mod.py"
    path.write_text(textwrap.dedent(source))
    spec = importlib.util.spec_from_file_location(f"mod_{id(tmp_path)}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    records = []
    uninstall = xi.install_compile_hook(records.append)
    try:
        jax.jit(getattr(mod, fn)).lower(*args).compile()
    finally:
        uninstall()
    return path, records[-1]


def test_frame_chain_of_an_instruction(tmp_path):
    path, rec = _compile(tmp_path, """\
        import jax.numpy as jnp
        def c(x):
            return jnp.sin(x)
        def b(x):
            return c(x) * 2
        def a(x):
            return b(x) + 1
        """, "a", jax.ShapeDtypeStruct((3,), jnp.float32))
    hlo = xi.parse_hlo(rec.hlo_text(), rec.hlo_proto())
    sine = next(i for c in hlo.computations.values() for i in c.instrs if i.opcode == "sine")
    frames = [(f.function, f.line) for f in hlo.frames_of(sine) if f.file == str(path)]
    assert frames == [("c", 3), ("b", 5), ("a", 7)]
    text_header = rec.hlo_text()
    assert "StackFrames" in text_header  # the tables exist in the text as well


def test_loops_collectives_and_trip_counts(tmp_path):
    mesh = Mesh(np.array(jax.devices()).reshape(4, 2), ("data", "model"))
    _, rec = _compile(tmp_path, """\
        import jax, jax.numpy as jnp
        def f(x, ws):
            def body(c, w):
                return jnp.tanh(c @ w), None
            return jax.lax.scan(body, x, ws)[0].sum()
        """, "f", jax.ShapeDtypeStruct((64, 128), jnp.float32, sharding=NamedSharding(mesh, P("data", None))),
        jax.ShapeDtypeStruct((6, 128, 128), jnp.float32, sharding=NamedSharding(mesh, P(None, None, "model"))))
    hlo = xi.parse_hlo(rec.hlo_text(), rec.hlo_proto())
    assert hlo.num_partitions == 8
    (loop, _), = list(hlo.while_loops())
    assert loop.trip_count == 6
    kinds = {i.collective for c in hlo.called(loop.body) for i in c.instrs if i.collective}
    assert "all-gather" in kinds


def test_sharding_notation_as_partition_specs():
    mesh = Mesh(np.asarray(jax.devices()).reshape((4, 2)), ("x", "y"))
    assert tuple(xi.spec_of_hlo_sharding("{devices=[2,1,4]<=[4,2]T(1,0)}", mesh)) == ("y", None, "x")
    assert tuple(xi.spec_of_hlo_sharding("{replicated}", mesh)) == ()
    assert xi.global_dims((8, 16, 4), "{devices=[2,1,4]<=[4,2]T(1,0)}") == (16, 16, 16)


def test_both_wordings_of_the_rematerialization_warning():
    new = ("W1201 23:34:26.538874   32313 spmd_partitioner.cc:656] [SPMD] Involuntary full rematerialization. "
           "The compiler cannot go from sharding {devices=[2,1,4]<=[4,2]T(1,0)} to {devices=[1,8,1]<=[8]} "
           "efficiently for HLO operation %add.2 = f32[8,16,4]{2,1,0} add(%param, %param), "
           "sharding={devices=[2,1,4]<=[4,2]T(1,0)}, metadata={op_name=\"jit(f)/add\" stack_frame_id=2}. "
           "As the last resort, SPMD will replicate the tensor and then partition it.")
    source, target, op = xi.parse_remat_warning(new)
    assert (source, target) == ("{devices=[2,1,4]<=[4,2]T(1,0)}", "{devices=[1,8,1]<=[8]}")
    ins = xi.parse_instruction(op)
    assert (ins.opcode, ins.frame_id, str(ins.shapes[0])) == ("add", 2, "f32[8,16,4]")
    old = ("E0531 10:54:04.832741 2609008 spmd_partitioner.cc:569] [spmd] Involuntary full rematerialization. "
           "The compiler was not able to go from sharding {devices=[2,1,4]<=[4,2]T(1,0)} to {devices=[1,8,1]<=[8]} "
           "without doing a full rematerialization of the tensor. You probably want to enrich the sharding "
           "annotations to prevent this from happening.")
    assert xi.parse_remat_warning(old) == ("{devices=[2,1,4]<=[4,2]T(1,0)}", "{devices=[1,8,1]<=[8]}", "")


def test_compiler_log_is_captured_and_passed_on(tmp_path, capfd):
    mesh = Mesh(np.asarray(jax.devices()).reshape((4, 2)), ("x", "y"))
    s_in = NamedSharding(mesh, P("y", None, "x"))
    s_out = NamedSharding(mesh, P(None, ("x", "y"), None))
    records = []
    uninstall = xi.install_compile_hook(records.append)
    try:
        jax.jit(lambda a, b: jax.lax.with_sharding_constraint(a + b, s_out) + 0.5).lower(
            jax.ShapeDtypeStruct((16, 16, 16), jnp.float32, sharding=s_in),
            jax.ShapeDtypeStruct((16, 16, 16), jnp.float32, sharding=s_in)).compile()
    finally:
        uninstall()
    assert "Involuntary full rematerialization" in records[-1].log
    assert "Involuntary full rematerialization" in capfd.readouterr().err  # the user still sees it
