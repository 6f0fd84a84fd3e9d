"""Errors that end a run with exit status 2 and a one-line message (never a traceback)."""


class UsageError(Exception):
    """Bad command line, bad configuration, unknown rule code: the user must change something."""
