"""D: Equinox `Dropout` called inside `jax.lax.scan` (an RL rollout) with `inference` passed
as a traced array (patrick-kidger/equinox issue on Dropout + scan, the seed report)."""
import equinox as eqx
import jax
import jax.numpy as jnp


class Policy(eqx.Module):
    l1: eqx.nn.Linear
    drop: eqx.nn.Dropout
    l2: eqx.nn.Linear

    def __init__(self, key):
        k1, k2 = jax.random.split(key)
        self.l1 = eqx.nn.Linear(4, 16, key=k1)
        self.drop = eqx.nn.Dropout(0.1)
        self.l2 = eqx.nn.Linear(16, 2, key=k2)

    def __call__(self, obs, key, inference):
        h = jax.nn.relu(self.l1(obs))
        h = self.drop(h, key=key, inference=inference)  # EXPECT JD301
        return self.l2(h)


@eqx.filter_jit
def rollout(policy, obs0, key, inference):
    def step(carry, _):
        obs, key = carry
        key, sub = jax.random.split(key)
        logits = policy(obs, sub, inference)
        obs = obs + 0.1 * logits.sum()
        return (obs, key), logits

    return jax.lax.scan(step, (obs0, key), None, length=6)


def main():
    policy = Policy(jax.random.key(0))
    return rollout(policy, jnp.ones(4), jax.random.key(1), jnp.array(False))
