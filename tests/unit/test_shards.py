"""The matrix split into shards: deterministic, and together they cover it exactly once."""

from __future__ import annotations

import pytest

from harness import matrix, scenario
from harness.errors import UsageError
from harness.report import RunReport
from harness.result import ScenarioResult
from harness.shards import Shard, merge, parse_shard


def test_parse() -> None:
    assert parse_shard("2/4") == Shard(2, 4)
    for bad in ("0/2", "3/2", "1/0", "a/b", "1", "1/2/3"):
        with pytest.raises(UsageError):
            parse_shard(bad)


@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_the_shards_cover_the_matrix_once(count: int) -> None:
    scenarios = [scenario.load(p) for p in scenario.builtin_paths()]
    every = matrix.cells(scenarios, ["rpc", "cli"], ["/a/criu", "/b/criu"])
    parts = [Shard(i, count).take(every) for i in range(1, count + 1)]
    flat = [c for part in parts for c in part]
    assert sorted(map(id, flat)) == sorted(map(id, every))  # each cell once, none twice
    assert max(map(len, parts)) - min(map(len, parts)) <= 1  # and about as many each
    # Deterministic: the same matrix listed again splits the same way.
    again = matrix.cells(scenarios, ["rpc", "cli"], ["/a/criu", "/b/criu"])
    assert [(c.scenario.name, c.backend, c.plan, c.criu) for c in Shard(1, count).take(again)] == \
        [(c.scenario.name, c.backend, c.plan, c.criu) for c in parts[0]]


def test_merging_overlapping_shards_is_refused() -> None:
    one = RunReport("4.2.1", "matrix", scenarios=[ScenarioResult("a", "migrates", backend="cli")])
    two = RunReport("4.2.1", "matrix", scenarios=[ScenarioResult("a", "migrates", backend="cli")])
    with pytest.raises(UsageError, match="overlap"):
        merge([one, two])
    three = RunReport("4.2.1", "matrix", scenarios=[ScenarioResult("b", "migrates", backend="cli")])
    assert [r.name for r in merge([one, three]).scenarios] == ["a", "b"]
