"""`--inputs` grammar, companions, NNX/Linen/Equinox models built abstractly, `--vmap`, and the
abstract trace itself (nothing executed or allocated)."""

from __future__ import annotations

import time

import pytest
from trace_support import FIXTURES, run_in_process

from jaxdoctor.errors import UsageError
from jaxdoctor.trace.inputs import Spec, describe, materialize, parse_inputs, parse_vmap

TARGETS = FIXTURES / "abstract_targets.py"


def test_parse_full_grammar():
    args, kwargs = parse_inputs(
        "f32[8,3], bf16[4], i32[], bool[], key[], 3, True, {'w': f32[3]}, (f32[2], u8[4]), f32, lr=0.1"
    )
    assert args == (
        Spec("float32", (8, 3)), Spec("bfloat16", (4,)), Spec("int32", ()), Spec("bool", ()), Spec("key", ()),
        3, True, {"w": Spec("float32", (3,))}, (Spec("float32", (2,)), Spec("uint8", (4,))), Spec("float32", ()),
    )
    assert kwargs == {"lr": 0.1}
    assert str(args[0]) == "f32[8,3]" and describe(args[4]) == "key[]"


@pytest.mark.parametrize("bad", ["f32[8,", "q32[3]", "f32[-1]", "f32[2.5]", "foo", "*x", "f32[3] + 1"])
def test_bad_inputs_are_usage_errors(bad):
    with pytest.raises(UsageError, match="--inputs"):
        parse_inputs(bad)


def test_parse_vmap():
    assert parse_vmap("None,0, 1") == (None, 0, 1)
    assert parse_vmap(None) is None
    with pytest.raises(UsageError):
        parse_vmap("0,x")


def test_materialize_gives_specs_and_typed_keys():
    import jax

    args, _ = parse_inputs("f32[2,3], key[4], 3")
    a, k, n = materialize(args)
    assert a == jax.ShapeDtypeStruct((2, 3), "float32")
    assert jax.dtypes.issubdtype(k.dtype, jax.dtypes.prng_key) and k.shape == (4,)
    assert n == 3


def test_huge_input_traces_in_milliseconds_without_allocating():
    t = time.perf_counter()
    findings = run_in_process(TARGETS, "big", inputs="f32[100000,100000]")
    elapsed = time.perf_counter() - t
    assert findings == []
    traced = [r for r in run_in_process.last_session.records if r.get("event") == "traced"]
    assert traced and traced[0]["seconds"] < 0.5  # 40 GB of input: nothing is allocated
    assert elapsed < 5


def test_static_literals_are_closed_over_and_scalars_weak_typed():
    findings = run_in_process(TARGETS, "flagged", inputs="f32[3], 2.0, True, {'b': f32[3], 'key': key[]}")
    assert [f for f in findings if f["code"] != "JD509"] == []
    recs = run_in_process.last_session.records
    assert any(r.get("event") == "traced" for r in recs)


def test_mlp_with_nested_params():
    inputs = "[{'w': f32[3,16], 'b': f32[16]}, {'w': f32[16,16], 'b': f32[16]}, {'w': f32[16,2], 'b': f32[2]}], f32[8,3]"
    assert run_in_process(TARGETS, "mlp", inputs=inputs) == []


def test_seed_a_abstract_vmap_reports_cond_with_256_mib():
    findings = run_in_process(TARGETS, "step", inputs="f32[1024,1024], f32[1024], bool[]", vmap="None,0,0", batch=64)
    (f,) = findings
    assert f["code"] == "JD501" and f["line"] == 31
    assert f["details"]["bytes_after"] == 256 * 2**20
    assert f["details"]["operands"][0]["name"] == "W"


def test_hoisted_variant_is_silent():
    assert run_in_process(TARGETS, "hoisted", inputs="f32[1024,1024], f32[1024], bool[]", vmap="None,0,0", batch=64) == []


@pytest.mark.parametrize("fn", ["nnx_forward", "eqx_forward", "linen_forward"])
def test_companions_with_abstract_models(fn):
    findings = run_in_process(TARGETS, fn)
    assert findings == [], findings
    recs = run_in_process.last_session.records
    assert any(r.get("event") == "traced" for r in recs), recs


def test_missing_inputs_is_a_usage_error():
    run_in_process(TARGETS, "mlp")
    fatal = [r for r in run_in_process.last_session.records if "fatal" in r]
    assert fatal and "--inputs" in fatal[0]["fatal"] and "jaxdoctor_inputs_mlp" in fatal[0]["fatal"]


def test_vmap_without_batch_and_static_axis_are_usage_errors():
    run_in_process(TARGETS, "step", inputs="f32[4,4], f32[4], bool[]", vmap="None,0,0")
    assert any("--batch" in r.get("fatal", "") for r in run_in_process.last_session.records)
    run_in_process(TARGETS, "flagged", inputs="f32[3], 2.0, True, {'b': f32[3], 'key': key[]}", vmap="0,0,None,None", batch=2)
    assert any("static literal" in r.get("fatal", "") for r in run_in_process.last_session.records)


def test_error_during_abstract_trace_is_explained_at_user_line():
    (f,) = run_in_process(TARGETS, "raises", inputs="f32[20]")
    assert f["line"] == 83 and f["path"].endswith("abstract_targets.py")


def test_sys_exit_during_abstract_trace_is_a_clear_error():
    assert run_in_process(TARGETS, "exits", inputs="f32[2]") == []
    fatal = [r["fatal"] for r in run_in_process.last_session.records if "fatal" in r]
    assert fatal and "sys.exit(3)" in fatal[0]


def test_cost_report_for_abstract_mlp():
    inputs = "[{'w': f32[3,16], 'b': f32[16]}, {'w': f32[16,16], 'b': f32[16]}, {'w': f32[16,2], 'b': f32[2]}], f32[8,3]"
    (f,) = run_in_process(TARGETS, "mlp", inputs=inputs, cost=True)
    # the figures travel as an info finding (so `--format json` carries them), each one explained
    assert (f["code"], f["severity"]) == ("JD524", "info")
    assert "kFLOP per call" in f["message"] and "KiB of arguments" in f["message"]
    assert {"flops", "xla_flops", "temp_bytes"} <= set(f["details"]["explained"])
    cost = f["details"]
    assert cost["flops"] >= 2 * 8 * (3 * 16 + 16 * 16 + 16 * 2)
    assert cost["argument_bytes"] == 4 * (3 * 16 + 16 + 16 * 16 + 16 + 16 * 2 + 2 + 8 * 3)
