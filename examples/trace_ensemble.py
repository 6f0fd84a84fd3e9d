"""Failure mode C (silent): `nnx.vmap(in_axes=None, axis_size=5)` without `nnx.split_rngs`
builds 5 identical ensemble members.

    jaxdoctor trace examples/trace_ensemble.py:main
"""
import jax.numpy as jnp
from flax import nnx


def make_ensemble():
    @nnx.vmap(in_axes=None, axis_size=5)  # JD501
    def create(rngs):
        return nnx.Linear(4, 4, rngs=rngs)

    return create(nnx.Rngs(0))


def main():
    models = make_ensemble()
    return models.kernel[...].shape
