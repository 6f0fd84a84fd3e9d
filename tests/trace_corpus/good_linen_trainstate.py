"""A typical Linen training loop: TrainState, jitted step, BatchNorm-free CNN-ish MLP."""
import jax
import jax.numpy as jnp
import optax
import flax.linen as nn
from flax.training import train_state


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Dense(16)(x))
        return nn.Dense(3)(x)


@jax.jit
def train_step(state, x, y):
    def loss_fn(params):
        logits = state.apply_fn({"params": params}, x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    loss, grads = jax.value_and_grad(loss_fn)(state.params)
    return state.apply_gradients(grads=grads), loss


def main():
    model = MLP()
    x = jnp.ones((8, 5))
    y = jnp.arange(8) % 3
    params = model.init(jax.random.key(0), x)["params"]
    state = train_state.TrainState.create(apply_fn=model.apply, params=params, tx=optax.adam(1e-3))
    for _ in range(4):
        state, loss = train_step(state, x, y)
    return float(loss)
