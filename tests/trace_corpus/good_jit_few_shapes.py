"""Normal retracing: a jitted step sees a full batch shape, the last partial batch, and the eval
batch: three compilations, expected."""
import jax
import jax.numpy as jnp


@jax.jit
def predict(w, x):
    return jax.nn.sigmoid(x @ w)


def main():
    w = jnp.ones(3)
    data = jnp.ones((20, 3))
    outs = []
    for i in range(0, 20, 8):
        outs.append(predict(w, data[i:i + 8]))
    outs.append(predict(w, jnp.ones((5, 3))))
    return sum(o.sum() for o in outs)
