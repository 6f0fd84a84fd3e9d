"""Classic: a global PRNG key split inside a jitted function (jax-ml/jax#4312): the global now
holds a tracer, and the next eager use fails with UnexpectedTracerError."""
import jax
from jax import random

key = random.key(0)


def init():
    global key
    key, subkey = random.split(key)  # EXPECT JD517
    return random.normal(subkey, ())


def main():
    fast_init = jax.jit(init)
    a = fast_init()
    b = random.normal(key, ())
    return a + b
