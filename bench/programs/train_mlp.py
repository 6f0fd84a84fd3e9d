"""A plain training script for `make bench`: an MLP classifier on synthetic data, optax Adam,
one jitted step per batch, the loss logged every 100 steps (as real scripts do).

    python bench/programs/train_mlp.py [STEPS]

Runs about 20-30 s on one idle CPU core with the default 1500 steps.
"""
import sys
import time

import jax
import jax.numpy as jnp
import optax

STEPS = int(sys.argv[1]) if len(sys.argv) > 1 else 1500
BATCH, DIM, HIDDEN, CLASSES = 128, 256, 512, 10


def init(key):
    k1, k2, k3 = jax.random.split(key, 3)
    scale = lambda n: 1.0 / jnp.sqrt(n)  # noqa: E731
    return {
        "w1": jax.random.normal(k1, (DIM, HIDDEN)) * scale(DIM), "b1": jnp.zeros(HIDDEN),
        "w2": jax.random.normal(k2, (HIDDEN, HIDDEN)) * scale(HIDDEN), "b2": jnp.zeros(HIDDEN),
        "w3": jax.random.normal(k3, (HIDDEN, CLASSES)) * scale(HIDDEN), "b3": jnp.zeros(CLASSES),
    }


def forward(params, x):
    h = jax.nn.relu(x @ params["w1"] + params["b1"])
    h = jax.nn.relu(h @ params["w2"] + params["b2"])
    return h @ params["w3"] + params["b3"]


def loss_fn(params, x, y):
    logits = forward(params, x)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


optimizer = optax.adam(1e-3)


@jax.jit
def train_step(params, opt_state, x, y):
    loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss


def batches(key, n):
    teacher = jax.random.normal(jax.random.key(1), (DIM, CLASSES))
    for _ in range(n):
        key, sub = jax.random.split(key)
        x = jax.random.normal(sub, (BATCH, DIM))
        yield x, jnp.argmax(x @ teacher, axis=-1)


def main():
    params = init(jax.random.key(0))
    opt_state = optimizer.init(params)
    start = time.perf_counter()
    for step, (x, y) in enumerate(batches(jax.random.key(2), STEPS)):
        params, opt_state, loss = train_step(params, opt_state, x, y)
        if step % 100 == 0:
            print(f"step {step:5d}  loss {float(loss):.4f}", flush=True)
    print(f"final loss {float(loss):.4f} after {STEPS} steps in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
