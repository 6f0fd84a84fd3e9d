"""B: a counter carried as an int32 array while the body adds float confidences
("fori_loop body_fun output and input must have identical types", jax-ml/jax#833)."""
import jax
import jax.numpy as jnp


@jax.jit
def soft_correct(probs, labels):
    def body(i, acc):
        return acc + probs[i, labels[i]]

    return jax.lax.fori_loop(0, probs.shape[0], body, jnp.zeros((), jnp.int32))  # EXPECT JD107


def main():
    probs = jnp.full((4, 3), 1 / 3)
    return soft_correct(probs, jnp.array([0, 1, 2, 0]))
