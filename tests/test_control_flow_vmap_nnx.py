"""JD105-JD108, JD210, JD211: the failures the rules describe really happen on the installed
jax/flax, and the rules flag exactly those programs."""

from __future__ import annotations

import textwrap

import jax
import jax.numpy as jnp
import pytest
from flax import nnx
from markers import actual


def codes(src: str) -> set[str]:
    return {c for _, c in actual(textwrap.dedent(src))}


def test_vmap_over_shape_tuple_raises_and_is_flagged():
    src = """
    import jax
    import jax.numpy as jnp
    def f(xs):
        return jax.vmap(lambda x, s: x.reshape(s))(xs, (2, 2))
    """
    with pytest.raises(ValueError, match="rank should be at least 1"):
        jax.vmap(lambda x, s: x.reshape(s))(jnp.ones((3, 4)), (2, 2))
    assert codes(src) == {"JD108"}
    # mapping an array is fine for vmap; using its row as a shape is JD109's business
    assert "JD108" not in codes(src.replace("(xs, (2, 2))", "(xs, xs)"))


def test_carry_arity_mismatch_raises_and_is_flagged():
    src = """
    import jax
    def f(x):
        return jax.lax.fori_loop(0, 3, lambda i, c: (c[0], c[1], c[1]), (x, x))
    """
    with pytest.raises(TypeError):
        jax.lax.fori_loop(0, 3, lambda i, c: (c[0], c[1], c[1]), (jnp.ones(2), jnp.ones(2)))
    assert codes(src) == {"JD107"}


def test_identical_ensemble_is_real_and_flagged():
    @nnx.vmap(in_axes=None, out_axes=0, axis_size=3)
    def create(rngs):
        return nnx.Linear(2, 2, rngs=rngs)

    members = create(nnx.Rngs(0))
    kernel = members.kernel[...]
    assert bool(jnp.all(kernel[0] == kernel[1]))  # silently identical
    src = """
    from flax import nnx
    @nnx.vmap(in_axes=None, out_axes=0, axis_size=3)
    def create(rngs):
        return nnx.Linear(2, 2, rngs=rngs)
    """
    assert codes(src) == {"JD210"}
    good = """
    from flax import nnx
    @nnx.split_rngs(splits=3)
    @nnx.vmap(in_axes=0, out_axes=0)
    def create(rngs):
        return nnx.Linear(2, 2, rngs=rngs)
    """
    assert codes(good) == set()


def test_loop_in_cond_needs_vmap_evidence():
    body = """
    import jax
    def loop(x):
        return jax.lax.fori_loop(0, 3, lambda i, x: x * 2, x)
    def f(p, x):
        return jax.lax.cond(p, loop, lambda x: x, x)
    """
    assert codes(body) == set()
    assert codes(body + "g = jax.vmap(f)\n") == {"JD105"}
    assert codes(body + "g = jax.jit(f)\n") == set()


def test_raw_jit_drops_nnx_state_updates_and_is_flagged():
    class Net(nnx.Module):
        def __init__(self, rngs):
            self.bn = nnx.BatchNorm(2, rngs=rngs)

        def __call__(self, x):
            return self.bn(x)

    net = Net(nnx.Rngs(0))
    before = net.bn.mean[...]
    jax.jit(lambda m, x: m(x))(net, jnp.ones((4, 2)) * 3)
    assert bool(jnp.all(net.bn.mean[...] == before))  # the update was lost
    nnx.jit(lambda m, x: m(x))(net, jnp.ones((4, 2)) * 3)
    assert not bool(jnp.all(net.bn.mean[...] == before))
    src = """
    import jax
    from flax import nnx
    class Net(nnx.Module):
        def __init__(self, rngs):
            self.bn = nnx.BatchNorm(2, rngs=rngs)
        def __call__(self, x):
            return self.bn(x)
    @jax.jit
    def f(model: Net, x):
        return model(x)
    """
    assert codes(src) == {"JD211"}
    assert codes(src.replace("@jax.jit", "@nnx.jit")) == set()
    # a module whose call changes no state loses nothing; one of unknown class: no evidence
    assert codes(src.replace("nnx.BatchNorm(2, rngs=rngs)", "nnx.Linear(2, 2, rngs=rngs)")) == set()
    assert codes(src.replace("model: Net", "model: nnx.Module")) == set()
