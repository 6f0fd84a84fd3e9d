"""Positions of a few nodes, without resolving libcst's `PositionProvider` for the whole module.

`PositionProvider` runs libcst's code generator over the module and, for *every* node, splits
each token on newlines and stores a `CodeRange` (measured on flax's package: ~2.5x the parse).
A lint run needs the positions of the handful of nodes it reports. `positions()` runs the same
code generator, so the results are libcst's own (same syntactic ranges, same whitespace rules),
but only remembers *token indices* for the target nodes (and the child nodes their ranges are
hoisted from), then turns those into line/column once, at the end (~0.3x the parse).
"""

from __future__ import annotations

import bisect
import itertools
import re
from contextlib import contextmanager
from typing import Iterable, Iterator, Optional

import libcst as cst
from libcst._nodes.internal import CodegenState  # the hook PositionProvider itself uses
from libcst._position import CodePosition, CodeRange

_NEWLINE = re.compile(r"\r\n?|\n")  # libcst's own definition of a line break


class _Recorder(CodegenState):
    """A code generator that notes where the target nodes start and end, as token indices."""

    __slots__ = ("wanted", "spans", "_open")

    def __init__(self, module: cst.Module, wanted: set[int]) -> None:
        super().__init__(default_indent=module.default_indent, default_newline=module.default_newline)
        self.wanted = wanted  # ids of nodes whose range we want
        self.spans: dict[int, tuple[int, int]] = {}  # id → (start token index, end token index)
        self._open: dict[int, list[int]] = {}

    def pop_trailing_newline(self) -> None:
        # keep every token: recorded indices stay valid (PositionProvider counts it too)
        pass

    def before_codegen(self, node: cst.CSTNode) -> None:
        if id(node) in self.wanted:
            self._open.setdefault(id(node), []).append(len(self.tokens))

    def after_codegen(self, node: cst.CSTNode) -> None:
        key = id(node)
        if key in self.wanted:
            start = self._open[key].pop()
            if key not in self.spans:  # a syntactic range recorded inside wins
                self.spans[key] = (start, len(self.tokens))

    @contextmanager
    def record_syntactic_position(
        self,
        node: cst.CSTNode,
        *,
        start_node: Optional[cst.CSTNode] = None,
        end_node: Optional[cst.CSTNode] = None,
    ) -> Iterator[None]:
        key = id(node)
        if key not in self.wanted:
            yield
            return
        for hoisted in (start_node, end_node):
            if hoisted is not None:
                self.wanted.add(id(hoisted))
        start = len(self.tokens)
        try:
            yield
        finally:
            end = len(self.tokens)
            if start_node is not None and id(start_node) in self.spans:
                start = self.spans[id(start_node)][0]
            if end_node is not None and id(end_node) in self.spans:
                end = self.spans[id(end_node)][1]
            self.spans[key] = (start, end)


def positions(module: cst.Module, nodes: Iterable[cst.CSTNode]) -> dict[cst.CSTNode, CodeRange]:
    """node → its `CodeRange`, as `PositionProvider` would give it, for each of `nodes` that is
    in `module` (nodes not in the tree are left out)."""
    targets = {id(n): n for n in nodes}
    if not targets:
        return {}
    state = _Recorder(module, set(targets))
    module._codegen(state)
    tokens = state.tokens
    offsets = [0, *itertools.accumulate(map(len, tokens))]
    text = "".join(tokens)
    line_starts = [0] + [m.end() for m in _NEWLINE.finditer(text)]

    def at(index: int) -> CodePosition:
        offset = offsets[min(index, len(tokens))]
        line = bisect.bisect_right(line_starts, offset)
        return CodePosition(line, offset - line_starts[line - 1])

    return {
        targets[key]: CodeRange(at(start), at(end))
        for key, (start, end) in state.spans.items()
        if key in targets
    }


__all__ = ["positions"]
