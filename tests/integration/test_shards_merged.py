"""The nightly matrix in two shards, as two CI jobs run it, merged into one night: together
the shards cover the matrix exactly once (with --criu, once per CRIU binary)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness import scenario
from harness.criu.binaries import installed
from harness.matrix import dated_dirs, plans_for

pytestmark = pytest.mark.criu

SCENARIOS = ("dgram-echo", "stream-echo", "unix-seqpacket")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True,
                          text=True, timeout=300, check=False)


def test_two_shards_merged_cover_the_matrix_once(tmp_path: Path) -> None:
    crius = installed()[:3]  # the default CRIU, and those side by side (a broken one too)
    common = ["--scenarios", *SCENARIOS, "--backends", "cli", "--criu", *crius,
              "--threshold", "100", "--transports", "local"]
    parts = []
    for shard in ("1/2", "2/2"):
        out = tmp_path / f"shard-{shard[0]}"
        done = cli("matrix", *common, "--shard", shard, "--out", str(out))
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"(shard {shard})" in done.stdout
        [night] = dated_dirs(out)
        parts.append(night)
    merged = cli("merge", *map(str, parts), "--out", str(tmp_path / "nightly"))
    assert merged.returncode == 0, merged.stdout + merged.stderr
    [night] = dated_dirs(tmp_path / "nightly")
    results = json.loads((night / "results.json").read_text())["scenarios"]
    keys = [(r["name"], r["plan"], r["criu_version"]) for r in results]
    assert len(keys) == len(set(keys))  # nothing twice
    versions = {r["criu_version"] for r in results}
    plans = {name: len(plans_for(scenario.find(name))) for name in SCENARIOS}
    assert len(keys) == sum(plans.values()) * len(versions) == sum(plans.values()) * len(crius)
    shard_keys = [{(r["name"], r["plan"], r["criu_version"])
                   for r in json.loads((p / "results.json").read_text())["scenarios"]} for p in parts]
    assert shard_keys[0].isdisjoint(shard_keys[1]) and shard_keys[0] | shard_keys[1] == set(keys)
    assert (night / "report.html").exists() and (night / "junit.xml").exists()
    # Merging the same shard twice is refused: the parts would overlap.
    again = cli("merge", str(parts[0]), str(parts[0]), "--out", str(tmp_path / "again"))
    assert again.returncode == 2 and "overlap" in again.stderr
