"""B: a `while_loop` whose body appends to the carried array (shape changes every iteration),
as in "collect the trajectory in a while loop" questions."""
import jax
import jax.numpy as jnp


def rollout(x0):
    def cond(c):
        traj, i = c
        return i < 5

    def body(c):
        traj, i = c
        nxt = traj[-1] * 0.5
        return jnp.append(traj, nxt[None], axis=0), i + 1

    return jax.lax.while_loop(cond, body, (x0[None], 0))  # EXPECT JD107


def main():
    return rollout(jnp.ones(3))
