"""JD002: the engine's own finding for a suppression comment that suppresses nothing."""

from jaxdoctor.findings import Applicability, Severity
from jaxdoctor.static.rule import LintRule


class UnusedSuppression(LintRule):
    code = "JD002"
    name = "unused-suppression"
    severity = Severity.WARNING
    summary = ("A `# jaxdoctor: ignore[...]` or `# noqa: JD...` comment suppresses nothing on its line, "
               "or names a rule code that does not exist.")
    fix_title = "Remove the unused suppression"
    fix_applicability = Applicability.SAFE
