"""Two runs side by side: what broke, what got fixed, what got slower.

Results are matched by (scenario, backend, plan) (the plan with a transport and isolation other
than the defaults: ScenarioResult.variant). Each key gets exactly one verdict; the
verdicts in ``REGRESSIONS`` make ``criu-harness compare`` exit 1. "Good" is an outcome that
means as expected (passed, xfailed, skipped); "bad" is failed, error or xpassed:

- new failure: good before, bad now (except xfailed -> xpassed, which has its own verdict);
- expected failure now passes: xfailed -> xpassed;
- fixed: bad before, good now;
- signature changed: CRIU's error message differs, once the run's own details are taken out;
- still failing: bad both times with the same message;
- outcome changed: good both times but different (skipped -> passed, passed -> xfailed);
- downtime regression: good both times, median downtime up by more than the threshold;
- atlas cell changed: a result that names an IPC mechanism, whose kind (harness.behaviour:
  migrates, refused at dump, fails at restore, breaks, ...) differs; the line names the
  mechanism, the plan and the CRIU version. Not when both are as expected with the same
  expectation: that is a scenario's [expect.or], CRIU doing one of two things it does.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from harness.behaviour import describe, kind
from harness.criu.log import message
from harness.errors import UsageError
from harness.fields import JsonObject
from harness.report import RunReport
from harness.result import Outcome, ScenarioResult
from harness.rundir import PREFIX

__all__ = [
    "DEFAULT_THRESHOLD",
    "KINDS",
    "REGRESSIONS",
    "Comparison",
    "Key",
    "Verdict",
    "classify",
    "compare",
    "compare_paths",
    "load_results",
    "normalized_signature",
]

DEFAULT_THRESHOLD = 0.2

# Every verdict, in the order a report lists them (worst first).
KINDS = (
    "atlas cell changed",
    "new failure",
    "expected failure now passes",
    "signature changed",
    "downtime regression",
    "still failing",
    "fixed",
    "outcome changed",
    "new scenario",
    "removed scenario",
    "unchanged",
)
REGRESSIONS = frozenset(
    {"atlas cell changed", "new failure", "expected failure now passes", "signature changed",
     "downtime regression"}
)

Key = tuple[str, str, str]  # (scenario, backend, plan)

# A run directory anywhere (TMPDIR may move it), up to its last component: its random suffix
# changes every run, so it must not count as a change of CRIU's message.
_RUN_DIR = re.compile(r"(?:/[^\s/;:'\",]+)*/" + re.escape(PREFIX) + r"[^\s/;:'\",]+")


@dataclass(frozen=True)
class Verdict:
    kind: str
    key: Key
    old: ScenarioResult | None = field(default=None, repr=False, compare=False)
    new: ScenarioResult | None = field(default=None, repr=False, compare=False)
    detail: str = ""

    @property
    def regression(self) -> bool:
        return self.kind in REGRESSIONS

    def line(self) -> str:
        name, backend, plan = self.key
        either = self.new or self.old
        if self.kind == "atlas cell changed" and either is not None and either.mechanism:
            # An atlas cell: the mechanism, the plan and the CRIU version, whatever the key.
            version = f"criu {either.criu_version}" if either.criu_version else ""
            where = ", ".join(x for x in (plan or "-", version, backend.split(",")[0]) if x)
            return f"{self.kind}: {either.mechanism} [{where}]" + (
                f" ({name})" if name != either.mechanism else "") + (
                f": {self.detail}" if self.detail else "")
        return f"{self.kind}: {name} [{backend}, {plan or '-'}]" + (
            f": {self.detail}" if self.detail else ""
        )

    def to_json(self) -> JsonObject:
        name, backend, plan = self.key
        return {
            "kind": self.kind,
            "scenario": name,
            "backend": backend,
            "plan": plan,
            "regression": self.regression,
            "detail": self.detail,
            "old_outcome": str(self.old.outcome) if self.old else None,
            "new_outcome": str(self.new.outcome) if self.new else None,
        }


@dataclass
class Comparison:
    old: str
    new: str
    threshold: float
    verdicts: list[Verdict]

    @property
    def regressions(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.regression]

    def by_key(self) -> dict[Key, Verdict]:
        return {v.key: v for v in self.verdicts}

    def counts(self) -> dict[str, int]:
        return dict(Counter(v.kind for v in self.verdicts))  # in order of first appearance

    def lines(self) -> list[str]:
        return [v.line() for v in self.verdicts]

    def summary(self) -> str:
        n = len(self.regressions)
        parts = ", ".join(f"{count} {kind}" for kind, count in self.counts().items())
        return f"{n} regression(s) in {len(self.verdicts)} result(s): {parts or 'nothing to compare'}"

    def to_json(self) -> JsonObject:
        return {
            "old": self.old,
            "new": self.new,
            "threshold": self.threshold,
            "regressions": len(self.regressions),
            "verdicts": [v.to_json() for v in self.verdicts],
        }


# --- reading results --------------------------------------------------------------------------


def load_results(path: Path) -> RunReport:
    """A results.json, or the directory holding one; anything else is a usage error."""
    return RunReport.load(path)


def key_of(entry: ScenarioResult, run: RunReport) -> Key:
    """(scenario, backend, variant: the plan, with a transport and isolation other than the
    defaults); in a run on several CRIU versions, the backend part names
    the version too ("cli, criu 4.1.1"), so each version's result is a key of its own."""
    backend = run.backend_of(entry)
    versions = {s.criu_version for s in run.scenarios if s.criu_version}
    if len(versions) > 1 and entry.criu_version:
        backend = f"{backend}, criu {entry.criu_version}"
    return (entry.name, backend, entry.variant)


def normalized_signature(entry: ScenarioResult) -> str | None:
    """CRIU's error message without what changes every run: the source location (file:line),
    the run directory's path and the pids of the processes involved."""
    if not entry.criu_error:
        return None
    text = _RUN_DIR.sub("<run_dir>", message(entry.criu_error))
    pids = {
        p
        for cycle in entry.cycles
        for call in cycle.calls
        for p in (call.pid, call.restored_pid)
        if p is not None and p > 1
    }
    for pid in sorted(pids, reverse=True):
        text = re.sub(rf"\b{pid}\b", "<pid>", text)
    return text


# --- comparing --------------------------------------------------------------------------------


def _bad(outcome: Outcome) -> bool:
    return not outcome.as_expected


def _ms(value: float | None) -> str:
    return f"{value:.1f} ms" if value is not None else "-"


def _why(entry: ScenarioResult) -> str:
    return entry.reason or normalized_signature(entry) or ""


def classify(
    key: Key, old: ScenarioResult | None, new: ScenarioResult | None, threshold: float
) -> Verdict:
    """The one verdict for a key; the first rule that applies wins."""
    if old is None:
        assert new is not None
        return Verdict("new scenario", key, None, new, str(new.outcome))
    if new is None:
        return Verdict("removed scenario", key, old, None, f"was {old.outcome}")
    was, now = old.outcome, new.outcome
    transition = f"{was} -> {now}"
    if old.mechanism and new.mechanism and kind(old) != kind(new):
        # Both as expected, expecting the same: the scenario's [expect.or]. A CRIU that became
        # unusable (skipped) is a change all the same.
        alternative = (old.ok and new.ok and old.expected == new.expected
                       and Outcome.SKIPPED not in (old.outcome, new.outcome))
        if not alternative:
            why = normalized_signature(new) or new.reason
            return Verdict("atlas cell changed", key, old, new,
                           f"{describe(old)} -> {describe(new)} ({transition})"
                           + (f": {why}" if why and not new.ok else ""))
    if was is Outcome.XFAILED and now is Outcome.XPASSED:
        return Verdict(
            "expected failure now passes", key, old, new,
            f"{transition}: CRIU learned something new, update the scenario",
        )
    if not _bad(was) and _bad(now):
        why = _why(new)
        return Verdict("new failure", key, old, new, transition + (f": {why}" if why else ""))
    if _bad(was) and not _bad(now):
        return Verdict("fixed", key, old, new, transition)
    old_sig, new_sig = normalized_signature(old), normalized_signature(new)
    if old_sig and new_sig and old_sig != new_sig:
        return Verdict("signature changed", key, old, new, f"{old_sig!r} -> {new_sig!r}")
    if _bad(was):
        why = _why(new)
        return Verdict("still failing", key, old, new, transition + (f": {why}" if why else ""))
    if was != now:
        return Verdict("outcome changed", key, old, new, transition)
    before, after = old.median_downtime(), new.median_downtime()
    if before is None and after is None:
        return Verdict("unchanged", key, old, new, str(now))
    trend = f"{now}, median downtime {_ms(before)} -> {_ms(after)}"
    if before is not None and after is not None and before > 0:
        change = after / before - 1
        trend += f" ({change:+.0%})"
        if change > threshold:
            return Verdict("downtime regression", key, old, new, f"{trend}, threshold +{threshold:.0%}")
    return Verdict("unchanged", key, old, new, trend)


def compare(
    old: RunReport,
    new: RunReport,
    threshold: float = DEFAULT_THRESHOLD,
    old_name: str = "old",
    new_name: str = "new",
) -> Comparison:
    """Compare two results (as loaded by load_results), key by key."""
    # NaN compares false with everything: it would switch regression detection off silently.
    if not (0 <= threshold < math.inf):
        raise UsageError(f"threshold must be a finite number at least 0, not {threshold}")
    olds = {key_of(e, old): e for e in old.scenarios}
    news = {key_of(e, new): e for e in new.scenarios}
    keys = list(news) + [k for k in olds if k not in news]
    verdicts = [classify(k, olds.get(k), news.get(k), threshold) for k in keys]
    order = {kind: i for i, kind in enumerate(KINDS)}
    verdicts.sort(key=lambda v: order[v.kind])  # stable: within a kind, the new run's order
    return Comparison(old_name, new_name, threshold, verdicts)


def compare_paths(old: Path, new: Path, threshold: float = DEFAULT_THRESHOLD) -> Comparison:
    return compare(load_results(old), load_results(new), threshold, str(old), str(new))
