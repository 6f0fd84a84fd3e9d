"""Every rule module: importing this package defines every rule class, which is how
`jaxdoctor.registry` collects them (it imports this package by name on first use).

Static rules are grouped by JAX concept. `jaxpr` and `trace_runtime` hold the metadata of the
trace-only rules (JD5xx); no module here imports jax.
"""

from jaxdoctor.rules import (  # noqa: F401
    api,  # noqa: F401
    arrays,  # noqa: F401
    compilation,  # noqa: F401
    control_flow,  # noqa: F401
    dtypes,  # noqa: F401
    equinox,
    gradients,  # noqa: F401
    jaxpr,  # noqa: F401
    linen,
    nnx,  # noqa: F401
    numpy_on_tracer,  # noqa: F401
    parse,  # noqa: F401
    random,  # noqa: F401
    side_effects,  # noqa: F401
    timing,  # noqa: F401
    trace_runtime,  # noqa: F401
    tracing,  # noqa: F401
    vmap,  # noqa: F401
)
