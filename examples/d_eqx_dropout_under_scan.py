"""Failure mode D: an Equinox `Dropout` under `jax.lax.scan` with a traced `inference` flag.

A policy network with dropout is rolled out over a trajectory with `jax.lax.scan`. Whether to
use dropout is stored per step in the scanned inputs (`xs`), so inside the body `inference` is a
traced boolean — but `eqx.nn.Dropout.__call__` decides with a Python `if inference:`.

What happens today: `TracerBoolConversionError: Attempted boolean conversion of traced array
with shape bool[]`, raised at `if inference:` inside `equinox/nn/_dropout.py`. The message names
the scanned slot (`inputs[1]`) — or, when the flag is a `filter_jit` argument, an internal name
such as `dynamic_nodonate['rest'][2]` — never the call that passed the flag.

The fix: make the mode a Python decision taken outside the scan — `eqx.nn.inference_mode(model)`
(or `eqx.tree_at`) before scanning, one scan per mode — or, if it really varies per step, select
with `jax.lax.cond(inference, eval_step, train_step, ...)` on the traced flag.
"""

import equinox as eqx
import jax
import jax.numpy as jnp


class Policy(eqx.Module):
    layers: list
    dropout: eqx.nn.Dropout

    def __init__(self, obs_dim: int, n_actions: int, key):
        k1, k2 = jax.random.split(key)
        self.layers = [eqx.nn.Linear(obs_dim, 64, key=k1), eqx.nn.Linear(64, n_actions, key=k2)]
        self.dropout = eqx.nn.Dropout(p=0.1)

    def __call__(self, obs, *, key, inference):
        h = jax.nn.relu(self.layers[0](obs))
        h = self.dropout(h, key=key, inference=inference)
        return self.layers[1](h)


@eqx.filter_jit
def rollout(policy: Policy, observations, eval_mask, key):
    keys = jax.random.split(key, observations.shape[0])

    def step(total, inputs):
        obs, inference, k = inputs
        logits = policy(obs, key=k, inference=inference)
        return total + logits.max(), jnp.argmax(logits)

    return jax.lax.scan(step, 0.0, (observations, eval_mask, keys))


def main():
    policy = Policy(8, 4, jax.random.key(0))
    observations = jnp.ones((32, 8))
    eval_mask = jnp.arange(32) % 2 == 0
    print(rollout(policy, observations, eval_mask, jax.random.key(1)))


if __name__ == "__main__":
    main()
