"""JD001: the engine's own finding for a file it could not read or parse."""

from jaxdoctor.findings import Severity
from jaxdoctor.static.rule import LintRule


class ParseError(LintRule):
    code = "JD001"
    name = "parse-error"
    severity = Severity.ERROR
    summary = "The file could not be read, decoded or parsed, so nothing in it was checked."
    fix_title = "Fix the syntax error or the file's encoding, or exclude the file"
