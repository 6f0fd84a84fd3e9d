"""Every rule module; importing this package registers all rule classes with the registry.

Static rules are grouped by JAX concept. `jaxpr` and `trace_runtime` hold the metadata of the
trace-only rules (JD5xx); no module here imports jax.
"""

from jaxdoctor.rules import parse  # noqa: F401
from jaxdoctor.rules import tracing  # noqa: F401
from jaxdoctor.rules import api  # noqa: F401
from jaxdoctor.rules import numpy_on_tracer  # noqa: F401
from jaxdoctor.rules import timing  # noqa: F401
from jaxdoctor.rules import gradients  # noqa: F401
from jaxdoctor.rules import dtypes  # noqa: F401
from jaxdoctor.rules import jaxpr  # noqa: F401
from jaxdoctor.rules import trace_runtime  # noqa: F401
from jaxdoctor.rules import control_flow  # noqa: F401
from jaxdoctor.rules import arrays  # noqa: F401
from jaxdoctor.rules import linen, equinox  # noqa: F401
from jaxdoctor.rules import vmap  # noqa: F401
from jaxdoctor.rules import nnx  # noqa: F401
from jaxdoctor.rules import side_effects  # noqa: F401
from jaxdoctor.rules import random  # noqa: F401
from jaxdoctor.rules import compilation  # noqa: F401
