"""`positions()` gives exactly libcst's `PositionProvider` ranges, for any subset of nodes."""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest
from libcst.metadata import MetadataWrapper, PositionProvider

from jaxdoctor.static.positions import positions
from jaxdoctor.static.walker import iter_tree

FIXTURES = sorted(Path(__file__).parent.joinpath("fixtures").rglob("*.py"))
SNIPPETS = [
    "", "\n", "x = 1", "x = 1\r\ny = (\r\n  2,\r\n)\r\n", "if a:\n    pass\n# trailing\n",
    "@dec\n@dec2(x)\nclass A(B, metaclass=M):\n    '''doc'''\n    def f(self, *a, b=1, **k) -> int:\n"
    "        return [i async for i in y if i] or {k: v for k, v in z}\n",
    "s = f'{x!r:>{w}}' + 'a' 'b'\nwith a as b, c:\n    try:\n        pass\n    except E as e:\n        raise\n",
    "x = lambda: (yield)\nmatch p:\n    case [1, *r] if r:\n        pass\n    case {'k': v, **kw}:\n        pass\n",
]


@pytest.mark.parametrize("source", SNIPPETS + [p.read_text(encoding="utf-8") for p in FIXTURES[:40]])
def test_same_ranges_as_position_provider(source: str) -> None:
    module = cst.parse_module(source)
    expected = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    nodes = list(iter_tree(module))
    got = positions(module, nodes)
    for node in nodes:
        assert got.get(node) == expected.get(node), (type(node).__name__, module.code_for_node(node)[:40])
    # a sparse subset (what the engine asks for) gives the same answers
    few = nodes[::7]
    assert positions(module, few) == {n: expected[n] for n in few}


def test_nodes_outside_the_module_are_left_out() -> None:
    module = cst.parse_module("x = 1\n")
    assert positions(module, [cst.Name("y")]) == {}


def test_guarded_parse_gives_the_same_tree_and_keeps_validation_on() -> None:
    from libcst._nodes.base import CSTNode

    from jaxdoctor.static.guard import parse_module

    for path in FIXTURES[:20]:
        source = path.read_text(encoding="utf-8")
        mine, theirs = parse_module(source), cst.parse_module(source)
        assert mine.deep_equals(theirs) and mine.code == source
    hook = CSTNode.__dict__["__post_init__"]
    with pytest.raises(cst.CSTValidationError):  # nodes built later are still validated
        cst.Name("not a name")
    assert CSTNode.__dict__["__post_init__"] is hook
