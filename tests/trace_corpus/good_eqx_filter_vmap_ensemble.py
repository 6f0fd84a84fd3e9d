"""Equinox ensemble: `eqx.filter_vmap` over split keys to build, and over members to apply."""
import equinox as eqx
import jax
import jax.numpy as jnp


def main():
    keys = jax.random.split(jax.random.key(0), 4)
    make = eqx.filter_vmap(lambda k: eqx.nn.MLP(3, 1, 8, 1, key=k))
    ensemble = make(keys)

    @eqx.filter_vmap(in_axes=(eqx.if_array(0), None))
    def predict(model, x):
        return model(x)

    return predict(ensemble, jnp.ones(3)).std()
