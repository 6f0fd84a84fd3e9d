"""A typical optax training loop: jitted step, value_and_grad, adam, a few epochs."""
import jax
import jax.numpy as jnp
import optax


def init(key):
    k1, k2 = jax.random.split(key)
    return {"w1": jax.random.normal(k1, (3, 16)) * 0.3, "b1": jnp.zeros(16),
            "w2": jax.random.normal(k2, (16, 1)) * 0.3, "b2": jnp.zeros(1)}


def loss_fn(p, x, y):
    h = jax.nn.relu(x @ p["w1"] + p["b1"])
    return jnp.mean((h @ p["w2"] + p["b2"] - y) ** 2)


opt = optax.adam(1e-2)


@jax.jit
def step(p, s, x, y):
    loss, g = jax.value_and_grad(loss_fn)(p, x, y)
    updates, s = opt.update(g, s, p)
    return optax.apply_updates(p, updates), s, loss


def main():
    key = jax.random.key(0)
    p = init(key)
    s = opt.init(p)
    x = jax.random.normal(jax.random.key(1), (32, 3))
    y = x.sum(1, keepdims=True)
    for _ in range(10):
        p, s, loss = step(p, s, x, y)
    return float(loss)
