"""One key consumed in either branch of a `cond` (only one branch runs: not a reuse), and a
key split per scan step."""
import jax
import jax.numpy as jnp


@jax.jit
def sample(key, use_normal):
    return jax.lax.cond(use_normal, lambda k: jax.random.normal(k, (3,)),
                        lambda k: jax.random.uniform(k, (3,)), key)


@jax.jit
def walk(key):
    def step(c, _):
        x, k = c
        k, sub = jax.random.split(k)
        return (x + jax.random.normal(sub), k), x

    return jax.lax.scan(step, (0.0, key), None, length=5)[1]


def main():
    k1, k2 = jax.random.split(jax.random.key(0))
    return sample(k1, jnp.array(True)).sum() + walk(k2).sum()
