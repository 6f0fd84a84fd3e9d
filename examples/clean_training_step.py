"""A correct program that must stay clean: the same ingredients as the failure modes above,
written the way the fixes recommend.

- Equinox: `eqx.filter_jit`/`eqx.filter_value_and_grad` over an `eqx.nn.MLP` (activation
  functions are non-array leaves: the filtered transforms keep them static); dropout mode chosen
  with a Python bool and `eqx.nn.inference_mode` outside the `scan`.
- Flax Linen: a recurrent cell under the lifted `nn.scan`, and `nn.cond` whose branches take
  the module and call the same submodule; `jax.jit` applied to `model.apply`, outside the module.
- Plain JAX: the loop hoisted out of the `cond`, the choice made with `jnp.where` under `vmap`.
"""

import equinox as eqx
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax


# ---------------------------------------------------------------------------- Equinox
class Regressor(eqx.Module):
    mlp: eqx.nn.MLP
    dropout: eqx.nn.Dropout

    def __init__(self, key):
        self.mlp = eqx.nn.MLP(8, 1, 32, 2, key=key)
        self.dropout = eqx.nn.Dropout(p=0.1)

    def __call__(self, x, *, key=None):
        return self.mlp(self.dropout(x, key=key))


def loss_fn(model: Regressor, x, y, key):
    keys = jax.random.split(key, x.shape[0])
    pred = jax.vmap(lambda xi, ki: model(xi, key=ki))(x, keys)
    return jnp.mean((pred[:, 0] - y) ** 2)


@eqx.filter_jit
def train_step(model: Regressor, opt_state, x, y, key, optimizer: optax.GradientTransformation):
    loss, grads = eqx.filter_value_and_grad(loss_fn)(model, x, y, key)
    updates, opt_state = optimizer.update(grads, opt_state, eqx.filter(model, eqx.is_array))
    return eqx.apply_updates(model, updates), opt_state, loss


@eqx.filter_jit
def evaluate(model: Regressor, xs):
    model = eqx.nn.inference_mode(model)

    def step(total, x):
        return total + model(x)[0], None

    total, _ = jax.lax.scan(step, 0.0, xs)
    return total / xs.shape[0]


# ---------------------------------------------------------------------------- Flax Linen
class Cell(nn.Module):
    hidden: int

    @nn.compact
    def __call__(self, h, x):
        h = nn.tanh(nn.Dense(self.hidden)(jnp.concatenate([h, x])))
        return h, h


class Encoder(nn.Module):
    hidden: int

    def setup(self):
        self.head = nn.Dense(self.hidden)

    @nn.compact
    def __call__(self, xs, use_head):
        scan = nn.scan(Cell, variable_broadcast="params", split_rngs={"params": False})
        _, hs = scan(self.hidden)(jnp.zeros(self.hidden), xs)

        def with_head(mdl, h):
            return mdl.head(h)

        def scaled_head(mdl, h):
            return mdl.head(h) * 0.5

        return nn.cond(use_head, with_head, scaled_head, self, hs[-1])


def encode(model: Encoder, variables, xs):
    return jax.jit(model.apply, static_argnums=2)(variables, xs, True)


# ---------------------------------------------------------------------------- plain JAX
def refine(W, x, threshold):
    refined = jax.lax.fori_loop(0, 8, lambda i, h: jnp.tanh(W @ h), x)  # loop hoisted out
    return jnp.where(jnp.linalg.norm(x) > threshold, refined, x)


refine_batch = jax.jit(jax.vmap(refine, in_axes=(None, 0, 0)))


def main():
    key = jax.random.key(0)
    model = Regressor(key)
    optimizer = optax.adam(1e-3)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_array))
    x, y = jnp.ones((16, 8)), jnp.zeros((16,))
    model, opt_state, loss = train_step(model, opt_state, x, y, key, optimizer)
    print(loss, evaluate(model, x))
    enc = Encoder(4)
    xs = jnp.ones((5, 3))
    variables = enc.init(key, xs, True)
    print(encode(enc, variables, xs))
    print(refine_batch(jnp.eye(4), jnp.ones((3, 4)), jnp.ones(3)).shape)


if __name__ == "__main__":
    main()
