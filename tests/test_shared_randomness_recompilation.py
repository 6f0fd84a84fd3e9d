"""JD112, JD126 (and JD120's dataclass case): what the rules describe really happens on the
installed jax/flax/equinox — identical draws across a `vmap`, a compile per loop iteration, a
`ValueError` for an unhashable static dataclass — and the rules flag exactly those programs."""

from __future__ import annotations

import dataclasses
import functools
import textwrap

import equinox as eqx
import jax
import jax.numpy as jnp
import pytest
from flax import nnx
from markers import actual


def codes(src: str) -> set[str]:
    return {c for _, c in actual(textwrap.dedent(src))}


def test_broadcast_key_draws_the_same_numbers_and_is_flagged():
    key = jax.random.key(0)
    out = jax.vmap(lambda k, x: x + jax.random.normal(k, x.shape), in_axes=(None, 0))(key, jnp.zeros((3, 2)))
    assert bool(jnp.all(out == out[0]))
    src = """
    import jax
    def f(key, xs):
        return jax.vmap(lambda k, x: x + jax.random.normal(k, x.shape), in_axes=(None, 0))(key, xs)
    """
    assert codes(src) == {"JD112"}
    assert codes(src.replace("in_axes=(None, 0)", "in_axes=(0, 0)")) == set()


def test_broadcast_nnx_dropout_shares_its_mask_and_is_flagged():
    class M(nnx.Module):
        def __init__(self, rngs):
            self.drop = nnx.Dropout(0.5, rngs=rngs)

        def __call__(self, x):
            return self.drop(x)

    out = nnx.vmap(lambda m, x: m(x), in_axes=(None, 0))(M(nnx.Rngs(0)), jnp.ones((4, 8)))
    assert bool(jnp.all((out != 0) == (out[0] != 0)))
    src = """
    import jax.numpy as jnp
    from flax import nnx
    class M(nnx.Module):
        def __init__(self, rngs):
            self.drop = nnx.Dropout(0.5, rngs=rngs)
        def __call__(self, x):
            return self.drop(x)
    out = nnx.vmap(lambda m, x: m(x), in_axes=(None, 0))(M(nnx.Rngs(0)), jnp.ones((4, 8)))
    """
    assert codes(src) == {"JD112"}
    assert codes(src.replace("nnx.Dropout(0.5, rngs=rngs)", "nnx.Linear(8, 8, rngs=rngs)")) == set()


def _traces(fn, calls) -> int:
    count = 0

    def listener(name, *args, **kwargs):
        nonlocal count
        if name == "/jax/core/compile/jaxpr_trace_duration":
            count += 1

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        for args in calls:
            fn(*args)
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    return count


def test_filter_jit_python_int_compiles_per_value_and_is_flagged():
    @eqx.filter_jit
    def step_fn(x, step):
        return x * step

    x = jnp.ones(3)
    assert _traces(step_fn, [(x, i) for i in range(4)]) == 4
    assert _traces(step_fn, [(x, jnp.asarray(i)) for i in range(4)]) <= 1
    src = """
    import equinox as eqx
    import jax.numpy as jnp
    @eqx.filter_jit
    def step_fn(x, step):
        return x * step
    def train(x, n):
        for step in range(n):
            x = step_fn(x, step)
    """
    assert codes(src) == {"JD126"}
    assert codes(src.replace("x = step_fn(x, step)", "x = step_fn(x, jnp.asarray(step))")) == set()


def test_identity_hashed_static_argument_compiles_per_call_and_is_flagged():
    class Options:
        def __init__(self, scale):
            self.scale = scale

    f = jax.jit(lambda x, o: x * o.scale, static_argnums=1)
    x = jnp.ones(3)
    assert _traces(f, [(x, Options(2.0)) for _ in range(3)]) == 3
    src = """
    import jax
    class Options:
        def __init__(self, scale):
            self.scale = scale
    def scale(x, o):
        return x * o.scale
    f = jax.jit(scale, static_argnums=1)
    def run(x, n):
        for _ in range(n):
            x = f(x, Options(2.0))
    """
    assert codes(src) == {"JD126"}


def test_unhashable_dataclass_static_argument_raises_and_is_flagged():
    @dataclasses.dataclass
    class Config:
        n: int

    @functools.partial(jax.jit, static_argnums=1)
    def g(x, config):
        return x * config.n

    with pytest.raises(ValueError, match="Non-hashable static arguments"):
        g(jnp.ones(3), Config(2))
    src = """
    import dataclasses, functools
    import jax
    @dataclasses.dataclass
    class Config:
        n: int
    @functools.partial(jax.jit, static_argnums=1)
    def g(x, config):
        return x * config.n
    g(1.0, Config(2))
    """
    assert codes(src) == {"JD120"}
    assert codes(src.replace("@dataclasses.dataclass\n", "@dataclasses.dataclass(frozen=True)\n")) == set()
