"""A typical Equinox training loop: eqx.filter_jit + eqx.filter_value_and_grad + optax."""
import equinox as eqx
import jax
import jax.numpy as jnp
import optax


@eqx.filter_value_and_grad
def loss_fn(model, x, y):
    return jnp.mean((jax.vmap(model)(x) - y) ** 2)


@eqx.filter_jit
def step(model, opt_state, x, y, opt):
    loss, grads = loss_fn(model, x, y)
    updates, opt_state = opt.update(grads, opt_state, eqx.filter(model, eqx.is_array))
    return eqx.apply_updates(model, updates), opt_state, loss


def main():
    model = eqx.nn.MLP(3, 1, 16, 2, key=jax.random.key(0))
    opt = optax.adam(1e-2)
    opt_state = opt.init(eqx.filter(model, eqx.is_array))
    x = jax.random.normal(jax.random.key(1), (16, 3))
    y = x[:, :1]
    for _ in range(5):
        model, opt_state, loss = step(model, opt_state, x, y, opt)
    return float(loss)
