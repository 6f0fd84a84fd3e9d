"""Every rule has a doc in rules/, and every static rule's doc examples are tests: the bad
block is flagged exactly on its `# JDxxx` lines, the good block not at all (by any rule).
(The trace rules' examples run in test_trace_docs.py and test_trace_analyzers_docs.py.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from markers import actual, expected

from jaxdoctor import registry
from jaxdoctor.findings import Origin

DOCS = Path(__file__).resolve().parent.parent / "rules"
HEADINGS = ("## What it does", "## Why is this bad?", "## Example")
_BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def _blocks(text: str) -> tuple[str, str]:
    example = text.split("## Example", 1)[1]
    bad_part, _, good_part = example.partition("Use instead:")
    bad = _BLOCK.search(bad_part)
    good = _BLOCK.search(good_part)
    assert bad and good, "## Example needs a ```python bad block, then `Use instead:` and a good block"
    return bad.group(1), good.group(1)


ALL = sorted(registry.all_rules())
STATIC = [c for c in ALL if registry.all_rules()[c].origin is Origin.STATIC and c != "JD001"]


@pytest.mark.parametrize("code", ALL)
def test_doc_exists_with_ruff_headings(code):
    path = DOCS / f"{code}.md"
    assert path.is_file(), f"rules/{code}.md is missing"
    text = path.read_text()
    rule = registry.all_rules()[code]
    assert text.startswith(f"# {rule.name} ({code})\n"), f"first line must be '# {rule.name} ({code})'"
    for heading in HEADINGS:
        assert heading in text, f"rules/{code}.md lacks {heading!r}"


@pytest.mark.parametrize("code", STATIC)
def test_doc_bad_example_is_flagged_on_marked_lines(code):
    bad, _ = _blocks((DOCS / f"{code}.md").read_text())
    want = expected(bad)
    assert any(c == code for _, c in want), f"the bad example marks no `# {code}` line"
    assert actual(bad) == want


@pytest.mark.parametrize("code", STATIC)
def test_doc_good_example_is_clean(code):
    _, good = _blocks((DOCS / f"{code}.md").read_text())
    assert actual(good) == set()


def test_parse_error_doc_examples():
    """JD001's bad example is not Python, so it can't carry a `# JD001` marker: it is flagged
    once, on the line Python's own parser rejects. Neither example mentions jax, which the text
    gate wants before it parses a file, so both are linted after an `import jax` line."""
    bad, good = _blocks((DOCS / "JD001.md").read_text())
    with pytest.raises(SyntaxError) as rejected:
        compile(bad, "JD001.md", "exec")
    assert actual("import jax\n" + bad) == {(rejected.value.lineno + 1, "JD001")}
    assert actual("import jax\n" + good) == set()


def test_rule_codes_and_names_are_unique_and_well_formed():
    rules = registry.all_rules()
    names = [r.name for r in rules.values()]
    assert len(set(names)) == len(names)
    for code, rule in rules.items():
        assert registry.CODE_RE.match(code)
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", rule.name), rule.name
        assert rule.summary and not rule.summary.endswith(" ")


def test_rule_class_names_are_unique_and_spell_the_rule_name():
    """`PrngKeyReuse` → `prng-key-reuse` (STYLE.md: names line up)."""
    rules = registry.all_rules()
    classes = [r.__name__ for r in rules.values()]
    assert len(set(classes)) == len(classes), sorted(c for c in classes if classes.count(c) > 1)
    for code, rule in rules.items():
        assert re.sub(r"(?<!^)(?=[A-Z])", "-", rule.__name__).lower() == rule.name, (code, rule.__name__)
