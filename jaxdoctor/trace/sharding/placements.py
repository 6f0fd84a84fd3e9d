"""Where the program put its arrays: the sharding watch installed in this process answers, for
the error explainer (which sees an exception, not the arrays), where the latest array of a shape
was placed on one device."""

from __future__ import annotations

from typing import Any

#: the installed `watch.ShardingWatch`es, innermost last
ACTIVE: list[Any] = []


def placement_of_shape(shape: str, how: str) -> tuple[str, int] | None:
    """(path, line) of the latest live array of `dtype[dims]` placed `how` ("one device")."""
    return ACTIVE[-1].placement_of_shape(shape, how) if ACTIVE else None
