"""Property: no generated Python program crashes the static engine (any exception fails).

hypothesmith generates programs from Python's grammar; `lint_source` runs every static rule on
each (the text gate is passed by prepending `import jax`), and the fixed output of every program
must parse again.
"""

from __future__ import annotations

import hypothesmith
import libcst as cst
from hypothesis import HealthCheck, given, settings

from jaxdoctor import registry
from jaxdoctor.static import fixes
from jaxdoctor.static.engine import lint_source, static_rules

RULES = static_rules(registry.all_rules())  # every static rule, opt-in ones included
FUZZ = settings(max_examples=40, deadline=None, derandomize=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                       HealthCheck.data_too_large])


@FUZZ
@given(hypothesmith.from_grammar())
def test_grammar_programs_do_not_crash(source: str) -> None:
    lint_source("import jax\n" + source, "fuzz.py", RULES)


@FUZZ
@given(hypothesmith.from_node())
def test_libcst_programs_do_not_crash(source: str) -> None:
    lint_source("import jax\nimport jax.numpy as jnp\nfrom flax import nnx\n" + source, "fuzz.py", RULES)


@FUZZ
@given(hypothesmith.from_node())
def test_fixed_output_parses(source: str) -> None:
    text = "import jax\nimport jax.numpy as jnp\n" + source
    result = fixes.fix_source(text, "fuzz.py", RULES, unsafe=True)
    cst.parse_module(result.source)
