"""Edge cases in tests/fixtures/*.py: flagged exactly on their `# JDxxx` lines, nowhere else.

Fixtures hold the false-positive traps (a Python `if` on a static flag or a shape, `is None`,
`isinstance`, `import numpy as jnp`, ...) next to the cases that must be found.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from markers import actual, expected

_DIR = Path(__file__).resolve().parent / "fixtures"
# fixtures/*.py: edge cases by topic; fixtures/reports/*.py: whole small programs modelled on
# user reports (bad) and look-alike correct programs (good)
FIXTURES = sorted([*_DIR.glob("*.py"), *(_DIR / "reports").glob("*.py")])


@pytest.mark.parametrize("path", FIXTURES, ids=[p.relative_to(_DIR).as_posix() for p in FIXTURES])
def test_fixture(path):
    source = path.read_text()
    assert actual(source, str(path)) == expected(source)
