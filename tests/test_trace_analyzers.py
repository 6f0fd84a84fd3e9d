"""The jaxpr analyzers on real jax / flax / equinox programs (CPU): failure modes A and C, each
analyzer's bad case, and ordinary correct programs that must stay silent."""

from __future__ import annotations

import inspect
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdoctor.findings import Origin
from jaxdoctor.trace.analyzers import ANALYZERS, analyze_jaxpr

ALL = {cls.code for cls in ANALYZERS}
HERE = __file__


def line_of(fn, text: str) -> int:
    """Line number in this file of the first line of `fn`'s source that contains `text`."""
    src, start = inspect.getsourcelines(fn)
    for i, line in enumerate(src):
        if text in line:
            return start + i
    raise AssertionError(f"{text!r} not in {fn.__name__}")


def codes(findings):
    return sorted((f.code, f.line) for f in findings)


# --- seed A: fori_loop inside a cond branch, under vmap with the weights broadcast -------------


def step_bad(W, x, flag):
    def body(i, h):
        return jnp.tanh(W @ h)

    def loop(h):
        return jax.lax.fori_loop(0, 10, body, h)

    return jax.lax.cond(flag > 0, loop, lambda h: h, x)


def step_hoisted(W, x, flag):
    def body(i, h):
        return jnp.tanh(W @ h)

    y = jax.lax.fori_loop(0, 10, body, x)
    return jnp.where(flag > 0, y, x)


SPECS_A = (
    jax.ShapeDtypeStruct((1024, 1024), jnp.float32),
    jax.ShapeDtypeStruct((64, 1024), jnp.float32),
    jax.ShapeDtypeStruct((64,), jnp.int32),
)


def test_seed_a_reported_at_cond_line_with_256_mib_copy():
    closed = jax.make_jaxpr(jax.vmap(step_bad, in_axes=(None, 0, 0)))(*SPECS_A)
    (f,) = analyze_jaxpr(
        closed,
        batch_axes=[None, 0, 0],
        batch_size=64,
        entry_name="step_bad",
        arg_names=["W", "x", "flag"],
    )
    assert (f.code, f.path, f.line) == (
        "JD501",
        HERE,
        line_of(step_bad, "jax.lax.cond"),
    )
    assert f.origin is Origin.TRACE and f.name == "batched-broadcast"
    assert f.details["bytes_before"] == 4 << 20
    assert f.details["bytes_after"] == 256 << 20
    assert f.details["loop_in_branch"] is True and f.details["batch_size"] == 64
    assert (
        "`W`" in f.message
        and "256.0 MiB" in f.message
        and "f32[64,1024,1024]" in f.message
    )
    assert "jnp.where" in f.fix_title


def test_seed_a_hoisted_is_silent():
    closed = jax.make_jaxpr(jax.vmap(step_hoisted, in_axes=(None, 0, 0)))(*SPECS_A)
    assert analyze_jaxpr(closed, batch_axes=[None, 0, 0], select=ALL) == []


@pytest.mark.parametrize("wrap", ["jit_of_vmap", "vmap_of_jit"])
def test_seed_a_found_without_batch_axes(wrap):
    vf = jax.vmap(step_bad, in_axes=(None, 0, 0)) if wrap == "jit_of_vmap" else None
    fn = (
        jax.jit(vf)
        if vf is not None
        else jax.vmap(jax.jit(step_bad), in_axes=(None, 0, 0))
    )
    found = analyze_jaxpr(jax.make_jaxpr(fn)(*SPECS_A))
    assert codes(found) == [("JD501", line_of(step_bad, "jax.lax.cond"))]


def test_small_batched_cond_without_loop_is_silent():
    W = jnp.ones((3, 3))

    def f(x):
        return jax.lax.cond(x.sum() > 0, lambda v: v @ W, lambda v: -v, x)

    assert (
        analyze_jaxpr(
            jax.make_jaxpr(jax.vmap(f))(jnp.ones((8, 3))), batch_axes=[0], select=ALL
        )
        == []
    )


def test_small_model_loop_in_batched_cond_is_reported():
    """Failure mode A at toy sizes (as in the flax report): the loop in the branch is what counts."""
    from flax import nnx

    def apply(model, x, flag):
        def body(i, h):
            return model(h)

        return jax.lax.cond(
            flag, lambda h: nnx.fori_loop(0, 3, body, h), lambda h: h, x
        )

    def main():
        model = nnx.Linear(4, 4, rngs=nnx.Rngs(0))
        return nnx.vmap(apply, in_axes=(None, 0, 0))(
            model, jnp.ones((8, 4)), jnp.arange(8) % 2 == 0
        )

    found = analyze_jaxpr(jax.make_jaxpr(main)())
    assert codes(found) == [("JD501", line_of(apply, "jax.lax.cond"))]


# --- seed C: identical ensemble ------------------------------------------------------------------


def ensemble_decorated():
    from flax import nnx

    @nnx.vmap(in_axes=None, out_axes=0, axis_size=5)
    def create(rngs):
        return nnx.Linear(4, 3, rngs=rngs)

    return nnx.state(create(nnx.Rngs(0)))


def ensemble_inline():
    from flax import nnx

    return nnx.state(
        nnx.vmap(lambda r: nnx.Linear(4, 3, rngs=r), in_axes=None, axis_size=5)(
            nnx.Rngs(0)
        )
    )


def ensemble_split():
    from flax import nnx

    @nnx.split_rngs(splits=5)
    @nnx.vmap(in_axes=0, out_axes=0, axis_size=5)
    def create(rngs):
        return nnx.Linear(4, 3, rngs=rngs)

    return nnx.state(create(nnx.Rngs(0)))


def ensemble_jax():
    def init(key):
        return {"w": jax.random.normal(key, (4, 3)), "b": jnp.zeros(3)}

    return jax.vmap(init, in_axes=None, axis_size=5)(jax.random.key(0))


def ensemble_jax_split():
    def init(key):
        return {"w": jax.random.normal(key, (4, 3)), "b": jnp.zeros(3)}

    return jax.vmap(init)(jax.random.split(jax.random.key(0), 5))


@pytest.mark.parametrize("fn", [ensemble_decorated, ensemble_inline, ensemble_jax])
def test_identical_ensemble_reported_at_vmap_line(fn):
    found = analyze_jaxpr(jax.make_jaxpr(fn)())
    assert codes(found) == [("JD501", line_of(fn, "vmap("))]
    assert found[0].details["members"] == 5 and "split" in found[0].fix_title


@pytest.mark.parametrize("fn", [ensemble_split, ensemble_jax_split])
def test_split_ensemble_is_silent(fn):
    assert analyze_jaxpr(jax.make_jaxpr(fn)(), select=ALL) == []


# --- the other analyzers: bad cases ----------------------------------------------------------------


def reuse_raw(key):
    a = jax.random.normal(key, (3,))
    b = jax.random.uniform(key, (3,))
    return a + b


def reuse_in_loop(key):
    def body(i, acc):
        return acc + jax.random.normal(key, ())

    return jax.lax.fori_loop(0, 10, body, 0.0)


def split_ok(key):
    k1, k2 = jax.random.split(key)
    return jax.random.normal(k1, (3,)) + jax.random.uniform(k2, (3,))


def keys_in_scan_ok(key):
    def body(carry, _):
        key, acc = carry
        key, sub = jax.random.split(key)
        return (key, acc + jax.random.normal(sub, ())), None

    return jax.lax.scan(body, (key, 0.0), None, length=10)[0][1]


def fold_in_ok(key):
    return sum(jax.random.normal(jax.random.fold_in(key, i)) for i in range(3))


@pytest.mark.parametrize(
    "make_key", [jax.random.PRNGKey, jax.random.key], ids=["raw", "typed"]
)
def test_key_reuse(make_key):
    key = make_key(0)
    assert codes(analyze_jaxpr(jax.make_jaxpr(reuse_raw)(key))) == [
        ("JD503", line_of(reuse_raw, "uniform"))
    ]
    assert codes(analyze_jaxpr(jax.make_jaxpr(reuse_in_loop)(key))) == [
        ("JD503", line_of(reuse_in_loop, "random.normal"))
    ]
    for ok in (split_ok, keys_in_scan_ok, fold_in_ok):
        assert analyze_jaxpr(jax.make_jaxpr(ok)(key), select=ALL) == [], ok.__name__


def invariant_carry(x, W):
    def body(i, c):
        h, W = c
        return jnp.tanh(W @ h), W * 1.0

    return jax.lax.fori_loop(0, 5, body, (x, W))[0]


def small_invariant_carry(x, W):
    def body(i, c):
        h, W = c
        return jnp.tanh(W @ h), jax.lax.stop_gradient(W)

    return jax.lax.fori_loop(0, 5, body, (x, W))[0]


def test_loop_invariant_carry():
    big = jax.make_jaxpr(invariant_carry)(jnp.ones(1024), jnp.ones((1024, 1024)))
    (f,) = analyze_jaxpr(big)
    assert (f.code, f.line) == ("JD502", line_of(invariant_carry, "fori_loop"))
    assert f.details["bytes"] == 4 << 20 and f.details["trip_count"] == 5
    small = jax.make_jaxpr(small_invariant_carry)(jnp.ones(8), jnp.ones((8, 8)))
    assert analyze_jaxpr(small, select=ALL) == []


def unrolled(x):
    for _ in range(100):
        x = x + 0.01 * jnp.sin(x)
    return x


def layers(x, Ws):
    for W in Ws:
        x = jnp.tanh(x @ W)
    return x


def rnn_unrolled(W, xs):
    h = jnp.zeros(4)
    for t in range(60):
        h = jnp.tanh(W @ h + xs[t])
    return h


def test_unrolled_time_loop_reported_but_deep_layer_loop_is_not():
    (f,) = analyze_jaxpr(
        jax.make_jaxpr(rnn_unrolled)(jnp.ones((4, 4)), jnp.ones((60, 4)))
    )
    assert (f.code, f.line) == ("JD505", line_of(rnn_unrolled, "for t in"))
    # 48 layers, each with its own weights, under grad: unrolling over layers is the point
    deep = jax.make_jaxpr(jax.grad(lambda ps, x: layers(x, ps).sum()))(
        [jnp.ones((4, 4))] * 48, jnp.ones(4)
    )
    assert analyze_jaxpr(deep, select=ALL) == []


def test_unrolled_python_loop():
    (f,) = analyze_jaxpr(jax.make_jaxpr(unrolled)(jnp.ones(3)))
    assert (f.code, f.line) == ("JD505", line_of(unrolled, "for _ in"))
    assert f.details["chain"] >= 100
    assert (
        analyze_jaxpr(
            jax.make_jaxpr(layers)(jnp.ones(16), [jnp.ones((16, 16))] * 12), select=ALL
        )
        == []
    )
    # a tree_map over many leaves repeats equations side by side, not in a chain
    tree = {f"w{i}": jnp.ones(4) for i in range(64)}
    assert (
        analyze_jaxpr(
            jax.make_jaxpr(lambda t: jax.tree.map(lambda p: p - 0.1 * p, t))(tree),
            select=ALL,
        )
        == []
    )


W_BIG = np.ones((1024, 1024), np.float32)
W_SMALL = np.ones((16, 16), np.float32)


def predict_big(x):
    return x @ W_BIG


def test_large_captured_constant():
    (f,) = analyze_jaxpr(jax.make_jaxpr(jax.jit(predict_big))(jnp.ones(1024)))
    assert (f.code, f.line) == ("JD506", line_of(predict_big, "W_BIG"))
    assert f.details["bytes"] == 4 << 20
    assert (
        analyze_jaxpr(
            jax.make_jaxpr(jax.jit(lambda x: x @ W_SMALL))(jnp.ones(16)), select=ALL
        )
        == []
    )


def print_in_loop(x):
    def body(i, x):
        jax.debug.print("x {}", x)
        return x + 1

    return jax.lax.fori_loop(0, 100, body, x)


def guarded_print(x):
    def body(i, x):
        jax.lax.cond(i % 10 == 0, lambda: jax.debug.print("i={i}", i=i), lambda: None)
        return x + 1

    return jax.lax.fori_loop(0, 100, body, x)


def test_host_callback_in_loop():
    (f,) = analyze_jaxpr(jax.make_jaxpr(print_in_loop)(1.0))
    assert (f.code, f.line) == ("JD507", line_of(print_in_loop, "debug.print"))
    assert f.details["calls"] == 100
    assert analyze_jaxpr(jax.make_jaxpr(guarded_print)(1.0), select=ALL) == []
    assert (
        analyze_jaxpr(
            jax.make_jaxpr(lambda x: (jax.debug.print("{}", x), x)[1])(1.0), select=ALL
        )
        == []
    )


def test_float64_upcast_only_when_implicit_and_unintended():
    x64 = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:

        def bad(x):
            return jnp.sin(x) * np.float64(0.5)

        def explicit(x):
            return x.astype(jnp.float64).sum()

        def all_f64(x):
            return x * 2.0 + np.ones(3)

        (f,) = analyze_jaxpr(jax.make_jaxpr(bad)(jnp.ones(3, jnp.float32)))
        assert (f.code, f.line) == ("JD508", line_of(bad, "np.float64"))
        assert (
            analyze_jaxpr(
                jax.make_jaxpr(explicit)(jnp.ones(3, jnp.float32)), select=ALL
            )
            == []
        )
        assert (
            analyze_jaxpr(jax.make_jaxpr(all_f64)(jnp.ones(3, jnp.float64)), select=ALL)
            == []
        )
    finally:
        jax.config.update("jax_enable_x64", x64)


def unused_b(x, W, b, key, flag):
    return x @ W


def test_unused_input_is_opt_in_and_skips_keys_and_flags():
    closed = jax.make_jaxpr(unused_b)(
        jnp.ones(4), jnp.ones((4, 4)), jnp.ones(4), jax.random.key(0), True
    )
    assert analyze_jaxpr(closed) == []  # off by default
    (f,) = analyze_jaxpr(
        closed,
        select={"JD509"},
        entry_name="unused_b",
        arg_names=["x", "W", "b", "key", "flag"],
    )
    assert (f.code, f.line, f.severity.value) == (
        "JD509",
        line_of(unused_b, "def unused_b"),
        "info",
    )
    assert "`b`" in f.message


# --- ordinary correct programs: silence --------------------------------------------------------------


def _mlp_params(sizes=(784, 512, 256, 10)):
    ks = jax.random.split(jax.random.PRNGKey(0), len(sizes))
    return [
        (jax.random.normal(k, (a, b)) * 0.01, jnp.zeros(b))
        for k, a, b in zip(ks, sizes[:-1], sizes[1:])
    ]


def _mlp(params, x):
    for W, b in params[:-1]:
        x = jax.nn.relu(x @ W + b)
    W, b = params[-1]
    return x @ W + b


def prog_mlp_optax():
    import optax

    tx = optax.adam(1e-3)
    params = _mlp_params()

    def train_step(params, opt_state, x, y):
        def loss_fn(p):
            return optax.softmax_cross_entropy_with_integer_labels(_mlp(p, x), y).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return jax.make_jaxpr(jax.jit(train_step))(
        params, tx.init(params), jnp.ones((32, 784)), jnp.zeros(32, jnp.int32)
    )


def prog_nnx_train_step():
    import optax
    from flax import nnx

    class Model(nnx.Module):
        def __init__(self, rngs):
            self.l1 = nnx.Linear(16, 32, rngs=rngs)
            self.bn = nnx.BatchNorm(32, rngs=rngs)
            self.drop = nnx.Dropout(0.1, rngs=rngs)
            self.l2 = nnx.Linear(32, 4, rngs=rngs)

        def __call__(self, x):
            return self.l2(self.drop(nnx.relu(self.bn(self.l1(x)))))

    model = Model(nnx.Rngs(0, dropout=1))
    opt = nnx.Optimizer(model, optax.adamw(1e-3), wrt=nnx.Param)
    graphdef, state = nnx.split((model, opt))

    def step(state, x, y):
        model, opt = nnx.merge(graphdef, state)
        loss, grads = nnx.value_and_grad(lambda m: ((m(x) - y) ** 2).mean())(model)
        opt.update(model, grads)
        return loss, nnx.state((model, opt))

    return jax.make_jaxpr(step)(state, jnp.ones((8, 16)), jnp.ones((8, 4)))


def prog_eqx_filter_jit():
    import equinox as eqx

    model = eqx.nn.MLP(8, 2, 32, 3, key=jax.random.PRNGKey(1))

    @eqx.filter_jit
    def step(m, x, y):
        loss, grads = eqx.filter_value_and_grad(
            lambda m: jnp.mean((jax.vmap(m)(x) - y) ** 2)
        )(m)
        return eqx.apply_updates(m, jax.tree.map(lambda g: -0.1 * g, grads)), loss

    return jax.make_jaxpr(lambda x, y: eqx.filter(step(model, x, y), eqx.is_array))(
        jnp.ones((4, 8)), jnp.ones((4, 2))
    )


def prog_scan_rnn_grad():
    def rnn(params, xs):
        Wh, Wx = params

        def cell(h, x):
            h = jnp.tanh(h @ Wh + x @ Wx)
            return h, h

        return jax.lax.scan(cell, jnp.zeros(Wh.shape[0]), xs)[1].sum()

    params = (jnp.ones((64, 64)), jnp.ones((8, 64)))
    return jax.make_jaxpr(jax.jit(jax.grad(rnn)))(params, jnp.ones((50, 8)))


def prog_vmapped_per_example_grads():
    def loss(params, x, y):
        return ((_mlp(params, x) - y) ** 2).sum()

    return jax.make_jaxpr(jax.vmap(jax.grad(loss), in_axes=(None, 0, 0)))(
        _mlp_params(), jnp.ones((8, 784)), jnp.ones((8, 10))
    )


def prog_linen_dropout():
    import flax.linen as nn

    class M(nn.Module):
        @nn.compact
        def __call__(self, x, train: bool):
            x = nn.Dense(32)(x)
            x = nn.Dropout(0.5, deterministic=not train)(x)
            return nn.Dense(2)(x)

    m = M()

    def main():
        variables = m.init(jax.random.PRNGKey(0), jnp.ones((2, 4)), False)
        return jax.jit(lambda v, x, k: m.apply(v, x, True, rngs={"dropout": k}))(
            variables, jnp.ones((2, 4)), jax.random.PRNGKey(1)
        )

    return jax.make_jaxpr(main)()


def prog_nnx_scan_over_layers():
    from flax import nnx

    class Block(nnx.Module):
        def __init__(self, rngs):
            self.lin = nnx.Linear(8, 8, rngs=rngs)
            self.drop = nnx.Dropout(0.1, rngs=rngs)

        def __call__(self, x):
            return self.drop(nnx.relu(self.lin(x)))

    @nnx.split_rngs(splits=4)
    @nnx.vmap(in_axes=0, out_axes=0)
    def make(rngs):
        return Block(rngs)

    def main():
        blocks = make(nnx.Rngs(0, dropout=1))

        @nnx.scan(in_axes=(0, nnx.Carry), out_axes=nnx.Carry)
        def forward(block, x):
            return block(x)

        return forward(blocks, jnp.ones((2, 8)))

    return jax.make_jaxpr(main)()


def prog_vmap_cond_piecewise():
    def f(x):
        return jax.lax.cond(x > 0, jnp.sin, jnp.cos, x)

    return jax.make_jaxpr(jax.vmap(f))(jnp.linspace(-1, 1, 16))


def prog_while_per_example():
    def newton(a):
        def cond(c):
            x, i = c
            return (jnp.abs(x * x - a) > 1e-5) & (i < 50)

        def body(c):
            x, i = c
            return 0.5 * (x + a / x), i + 1

        return jax.lax.while_loop(cond, body, (a, 0))[0]

    return jax.make_jaxpr(jax.vmap(newton))(jnp.arange(1.0, 9.0))


CORRECT = [
    prog_mlp_optax,
    prog_nnx_train_step,
    prog_eqx_filter_jit,
    prog_scan_rnn_grad,
    prog_vmapped_per_example_grads,
    prog_linen_dropout,
    prog_nnx_scan_over_layers,
    prog_vmap_cond_piecewise,
    prog_while_per_example,
]


@pytest.mark.parametrize("prog", CORRECT, ids=lambda p: p.__name__)
def test_correct_program_is_silent(prog):
    closed = prog()
    default = analyze_jaxpr(closed)
    assert default == [], [(f.code, f.line, f.message) for f in default]
    # and every analyzer but the opt-in JD509 (which may legitimately see unused inputs)
    assert analyze_jaxpr(closed, select=ALL - {"JD509"}) == []


def test_select_limits_analyzers():
    closed = jax.make_jaxpr(jax.vmap(step_bad, in_axes=(None, 0, 0)))(*SPECS_A)
    assert analyze_jaxpr(closed, select={"JD503"}) == []
    assert analyze_jaxpr(closed, select=set()) == []


def test_analyzers_are_fast_on_an_mlp_training_step():
    closed = prog_mlp_optax()
    t0 = time.perf_counter()
    analyze_jaxpr(closed, select=ALL)
    assert time.perf_counter() - t0 < 1.0


# --- cost --------------------------------------------------------------------------------------------


def test_cost_is_loop_aware_and_reports_compiled_memory():
    from jaxdoctor.trace.cost import cost_report

    def mm(a, b):
        return jax.lax.fori_loop(0, 10, lambda i, a: a @ b, a)

    spec = jax.ShapeDtypeStruct((64, 64), jnp.float32)
    report = cost_report(jax.make_jaxpr(mm)(spec, spec))
    assert report["flops"] == 10 * (
        2 * 64**3 + 1
    )  # the matmul and the counter, 10 times
    assert report["unknown_trip_loops"] == 0
    assert report["argument_bytes"] == 2 * 64 * 64 * 4
    assert report["output_bytes"] == 64 * 64 * 4
    assert report["total_bytes"] >= report["argument_bytes"] + report["output_bytes"]


def test_cost_shows_the_seed_a_scratch():
    from jaxdoctor.trace.cost import cost_report

    small = (
        jax.ShapeDtypeStruct((256, 256), jnp.float32),
        jax.ShapeDtypeStruct((16, 256), jnp.float32),
        jax.ShapeDtypeStruct((16,), jnp.int32),
    )
    bad = jax.vmap(step_bad, in_axes=(None, 0, 0))
    good = jax.vmap(step_hoisted, in_axes=(None, 0, 0))
    tb = cost_report(jax.make_jaxpr(bad)(*small), bad, small)["temp_bytes"]
    tg = cost_report(jax.make_jaxpr(good)(*small), good, small)["temp_bytes"]
    assert tb >= 16 * 256 * 256 * 4 > 4 * tg


A_SMALL = np.eye(3, dtype=np.float32)


def prog_vmap_ode_small_constant():
    """A per-example branch with a loop over a small closed-over matrix: tiny copies, not reported."""

    def solve(y0, stiff):
        def euler(y):
            return jax.lax.fori_loop(0, 10, lambda i, y: y + 0.01 * (A_SMALL @ y), y)

        return jax.lax.cond(stiff, euler, lambda y: y, y0)

    return jax.make_jaxpr(jax.vmap(solve))(jnp.ones((8, 3)), jnp.arange(8) % 2 == 0)


CORRECT.append(prog_vmap_ode_small_constant)
