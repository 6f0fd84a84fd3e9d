"""Rule documentation: `rules/JDxxx.md`, shipped inside the wheel as `jaxdoctor/rule_docs/`."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def docs_dir() -> Path:
    """The installed copy of the docs, or the repository's `rules/` in a source checkout."""
    installed = _PACKAGE / "rule_docs"
    if installed.is_dir():
        return installed
    return _PACKAGE.parent / "rules"


def doc_path(code: str) -> Path:
    return docs_dir() / f"{code.upper()}.md"


def read_doc(code: str) -> str | None:
    try:
        return doc_path(code).read_text(encoding="utf-8")
    except OSError:
        return None
