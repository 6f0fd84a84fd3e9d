"""Renderers: findings in, text out. They never see a libcst node, a jaxpr equation or the disk
(what they quote of the source travels in `Finding.quote`)."""

from __future__ import annotations

from typing import Callable, TextIO

from jaxdoctor.findings import Finding

FORMATS = ("text", "concise", "json", "sarif", "github")


def render(fmt: str, findings: list[Finding], out: TextIO, **options) -> None:
    renderer = _renderer(fmt)
    renderer(findings, out, **options)


def _renderer(fmt: str) -> Callable[..., None]:
    if fmt == "text":
        from jaxdoctor.render.text import render_text

        return render_text
    if fmt == "concise":
        from jaxdoctor.render.concise import render_concise

        return render_concise
    if fmt == "json":
        from jaxdoctor.render.json import render_json

        return render_json
    if fmt == "sarif":
        from jaxdoctor.render.sarif import render_sarif

        return render_sarif
    if fmt == "github":
        from jaxdoctor.render.github import render_github

        return render_github
    raise ValueError(f"unknown format {fmt!r}")
