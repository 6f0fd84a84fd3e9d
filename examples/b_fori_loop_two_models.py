"""Failure mode B: a loop whose body returns a carry with a different structure.

A distillation loop carries a teacher, a student and the running loss through
`nnx.fori_loop`. Carrying two different modules together used to fail with a reference /
pytree structure mismatch (fixed in flax 0.10.3), but the mistake users still make is in the
carry itself: here the body unpacks four values (teacher, student, optimizer, running loss) and
returns only three, so the output carry no longer matches `init_val`.

What happens today: tracing fails with `ValueError: pytree structure error: different lengths
of tuple at key path`, raised from inside flax's `fori_loop` machinery, far from the `return`
that dropped the loss.

The fix: return exactly the structure you received — `(teacher, student, optimizer, total +
loss)` — and keep loop-invariant modules out of the carry (close over the teacher instead).
"""

import jax.numpy as jnp
import optax
from flax import nnx


class MLP(nnx.Module):
    def __init__(self, din: int, dout: int, rngs: nnx.Rngs):
        self.fc1 = nnx.Linear(din, 64, rngs=rngs)
        self.fc2 = nnx.Linear(64, dout, rngs=rngs)

    def __call__(self, x):
        return self.fc2(nnx.relu(self.fc1(x)))


def distill_loss(student, teacher, x):
    target = nnx.softmax(teacher(x))
    return optax.softmax_cross_entropy(student(x), target).mean()


@nnx.jit
def distill(teacher: MLP, student: MLP, optimizer: nnx.Optimizer, batches):
    def body(i, carry):
        teacher, student, optimizer, total = carry
        loss, grads = nnx.value_and_grad(distill_loss)(student, teacher, batches[i])
        optimizer.update(student, grads)
        return teacher, student, optimizer

    _, _, _, total = nnx.fori_loop(
        0, batches.shape[0], body, (teacher, student, optimizer, jnp.zeros(()))
    )
    return total / batches.shape[0]


def main():
    teacher = MLP(16, 4, nnx.Rngs(0))
    student = MLP(16, 4, nnx.Rngs(1))
    optimizer = nnx.Optimizer(student, optax.adam(1e-3), wrt=nnx.Param)
    batches = jnp.ones((10, 32, 16))
    print(distill(teacher, student, optimizer, batches))


if __name__ == "__main__":
    main()
