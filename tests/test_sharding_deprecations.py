"""The sharding entries of the deprecation table agree with the installed jax (0.10.2, the table's
`current`): an entry removed by then is gone from jax, a deprecated one still answers (with a
warning)."""

from __future__ import annotations

import importlib
import warnings

import pytest

from jaxdoctor.rules.api import load_table

SHARDING = ("jax.sharding.", "jax.experimental.pjit", "jax.experimental.shard", "jax.experimental.maps",
            "jax.experimental.layout.", "jax.interpreters.pxla.", "jax.device_put_", "jax.experimental.PartitionSpec")


def _entries():
    table = load_table()
    return [e for e in table.entries.values() if e.package == "jax" and e.symbol.startswith(SHARDING)]


def _exists(symbol: str) -> bool:
    try:
        importlib.import_module(symbol)
        return True
    except ImportError:
        pass
    module, _, attr = symbol.rpartition(".")
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            getattr(mod, attr)
        except AttributeError:
            return False
    return True


def test_the_table_covers_the_sharding_apis():
    symbols = {e.symbol for e in _entries()}
    for needed in ("jax.experimental.pjit.pjit", "jax.sharding.PositionalSharding", "jax.sharding.use_mesh",
                   "jax.sharding.GSPMDSharding", "jax.experimental.shard_map.shard_map", "jax.sharding.PmapSharding"):
        assert needed in symbols


@pytest.mark.parametrize("entry", _entries(), ids=lambda e: e.symbol)
def test_entry_matches_the_installed_jax(entry):
    import jax

    table = load_table()
    assert table.current["jax"] == jax.__version__, "the table's current jax is the installed one"
    status = entry.status(jax.__version__)
    if status == "removed":
        assert not _exists(entry.symbol), f"{entry.symbol} still exists in jax {jax.__version__}"
    else:
        assert status == "deprecated" and _exists(entry.symbol), entry.symbol
