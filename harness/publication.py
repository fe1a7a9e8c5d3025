"""Publishing a night: its dated directory, results.json, junit.xml, the comparison with the
previous night, the history line and report.html; for a matrix, or for the shards of one
night merged (``criu-harness merge``)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from harness import history, html, junit, report
from harness.compare import DEFAULT_THRESHOLD, Comparison, compare, load_results
from harness.errors import HarnessError
from harness.report import RunReport
from harness.rundir import private_dir
from harness.shards import merge

__all__ = ["DEFAULT_OUT", "NightResult", "dated_dirs", "merge_night", "new_dated_dir", "publish"]

DEFAULT_OUT = Path("reports/nightly")
# Seconds in the name: two runs in one minute (a retry, a test) still get their own directory.
STAMP_FORMAT = "%Y-%m-%dT%H%M%SZ"
_STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{6}Z(?:-\d+)?$")


def dated_dirs(base: Path) -> list[Path]:
    """The nights under base that hold results, oldest first."""
    if not base.is_dir():
        return []

    def order(p: Path) -> tuple[str, int]:
        stamp, _, n = p.name.partition("Z-")
        return (stamp, int(n) if n else 0)

    found = [p for p in base.iterdir() if _STAMP.match(p.name) and (p / report.RESULTS).is_file()]
    return sorted(found, key=order)


def new_dated_dir(base: Path, now: datetime) -> Path:
    private_dir(base)  # nights hold bundles of memory images: 0700, like everything made here
    stamp = now.strftime(STAMP_FORMAT)
    for n in range(100):
        path = base / (stamp if n == 0 else f"{stamp}-{n}")
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:
            continue
        return path
    raise HarnessError(f"{base}: cannot make a directory for {stamp}: 100 already exist")


@dataclass
class NightResult:
    directory: Path
    run: RunReport
    comparison: Comparison | None
    previous: Path | None

    @property
    def ok(self) -> bool:
        return self.run.ok and not (self.comparison and self.comparison.regressions)


def publish(
    directory: Path,
    run: RunReport,
    previous: Path | None,
    threshold: float,
    out: Path,
    echo: Callable[[str], None] = print,
) -> NightResult:
    """Write a night's results into its directory: results.json, junit.xml, the comparison
    with the previous night, the history line, report.html (a matrix's, or merged shards')."""
    run.write(directory / report.RESULTS)
    junit.write(run, directory, suite="criu-harness nightly")

    comparison = None
    if previous is not None:
        comparison = compare(load_results(previous), run, threshold,
                             str(previous), str(directory))
        text = "\n".join([*comparison.lines(), comparison.summary()]) + "\n"
        (directory / "compare.txt").write_text(text)
        (directory / "compare.json").write_text(json.dumps(comparison.to_json(), indent=2) + "\n")
        echo(f"compared with {previous}:")
        for line in text.splitlines():
            echo(f"  {line}")
    else:
        echo("no previous night to compare with")

    history_path = out / history.HISTORY
    history.append(history_path, history.entry(directory.name, run, comparison))
    page = html.render(run, comparison, history.read(history_path), directory)
    (directory / html.REPORT).write_text(page)
    good = sum(1 for s in run.scenarios if s.ok)
    if injected := [s for s in run.scenarios if s.fault is not None]:
        met = sum(1 for s in injected if s.ok)
        echo(f"fault matrix: {met} of {len(injected)} expectation(s) met")
    echo(f"{good} of {len(run.scenarios)} result(s) as expected")
    echo(f"report: {directory / html.REPORT}")
    return NightResult(directory, run, comparison, previous)


def merge_night(
    parts: Sequence[Path],
    out: Path = DEFAULT_OUT,
    previous: Path | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    echo: Callable[[str], None] = print,
) -> NightResult:
    """The shards of one night (``matrix --shard I/N`` each) as one night: merged into a new
    dated directory under out, then published like a matrix (compared with the previous night,
    recorded in the history)."""
    run = merge([load_results(p) for p in parts])  # bad files are usage errors, before writing
    if previous is not None:
        load_results(previous)
    directory = new_dated_dir(out, datetime.now(timezone.utc))
    run.stamp = directory.name
    previous = previous or next((p for p in reversed(dated_dirs(out)) if p != directory), None)
    echo(f"merged {len(parts)} shard(s): {len(run.scenarios)} result(s) into {directory}")
    return publish(directory, run, previous, threshold, out, echo)
