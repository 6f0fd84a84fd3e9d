"""What a value is, as far as the static pass can prove (DESIGN §3).

Five abstract values, ordered so that joining two is taking the larger:

- `STATIC`: a Python value known at trace time (a number, string, shape, dtype, module, function,
  configuration object) or a concrete array closed over from untraced code.
- `UNKNOWN`: no evidence either way (a module method's parameter, an attribute of a pytree, what an
  unresolved call returns when nothing traced went in).
- `CONTAINER`: certainly a Python container (tuple, list, dict) holding tracers: its truthiness and
  length are static, its elements are traced.
- `TRACED`: holds tracers, but may be a pytree rather than one array: a parameter a transform traces,
  an element of a traced pytree. `x > 0` or `x + 1` on it can only be an array operation.
- `ARRAY`: certainly a traced JAX array: what `jnp`/`lax` ops, arithmetic and comparisons on traced
  values return, an array-annotated traced parameter.

Error-severity rules report only on `ARRAY`; `UNKNOWN` never yields an error.

Two ways to combine values:
- `join`, where control flow meets (branches, loop iterations, several `return`s): the least
  value above both in STATIC < {CONTAINER, ARRAY} < TRACED < UNKNOWN. A name that is an array on
  one path and a Python default on the other (`acc = 0.0` then `acc += jnp.sum(x)`) is an array;
  an array on one path and a list on another is only known to hold tracers, since the paths may
  be chosen by conditions the two uses share.
- `may_join`, where call sites meet: a parameter that any traced caller passes an array for is
  an array — that call fails, whatever the others pass.
"""

from __future__ import annotations

STATIC, UNKNOWN, CONTAINER, TRACED, ARRAY = 0, 1, 2, 3, 4

NAMES = {STATIC: "static", UNKNOWN: "unknown", CONTAINER: "container", TRACED: "traced", ARRAY: "array"}


def join(a: int, b: int) -> int:
    if a == b or b == STATIC:
        return a
    if a == STATIC:
        return b
    if a == UNKNOWN or b == UNKNOWN:
        return UNKNOWN
    return TRACED  # two of CONTAINER / TRACED / ARRAY


def may_join(a: int, b: int) -> int:
    return a if a >= b else b


def holds_tracers(value: int) -> bool:
    """A container, pytree or array that certainly holds tracers."""
    return value >= CONTAINER


def operand(value: int) -> int:
    """The value of an arithmetic or comparison result with one operand of `value` (and the
    others static): a traced pytree or array can only take part as an array; a Python container
    of tracers (`(a, b) + (c,)`) stays a container."""
    if value >= TRACED:
        return ARRAY
    return value


def element(value: int) -> int:
    """An element (item, row, field) of a value of this kind."""
    if value == CONTAINER:
        return TRACED
    return value
