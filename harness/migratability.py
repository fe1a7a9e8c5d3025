"""Will ``criu dump`` of this tree be refused, and why? A prediction from /proc and sock_diag,
before any dump (CRIU has no way to ask; a trial dump is its only check).

Each rule is one refusal (or loss) the atlas has shown, with the CRIU log line it leads to
(the *signature*) and the option that would help. A tree is predicted to dump, to be refused
(with the first refusal CRIU would meet, in CRIU's own order: the process tree, then each
task's memory, then its files by fd), or "no opinion" when it holds something no rule knows.
Warnings name what a dump takes along but a restore will not give back.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.dumprules import Look, look_at
from harness.errors import UsageError
from harness.prediction import DumpOptions, Finding, Prediction, Severity, Verdict
from harness.procfs import Task, holders, read_task, tree
from harness.sockdiag import read_sockets

__all__ = ["DumpOptions", "Finding", "Prediction", "Severity", "Verdict", "overall", "predict", "report"]

def _task(pid: int) -> Task | None:
    try:
        return read_task(pid)
    except OSError:  # gone meanwhile (a child that exited): CRIU will not see it either
        return None


def overall(predictions: Sequence[Prediction]) -> tuple[Verdict, Prediction | None]:
    """The verdict on dumping the trees in order: the first refused (or unforeseeable) one
    decides, as the first failing dump stops a migration."""
    for p in predictions:
        if p.verdict is not Verdict.DUMPS:
            return p.verdict, p
    return Verdict.DUMPS, None


def report(predictions: Sequence[Prediction], options: DumpOptions) -> list[str]:
    """The prediction for people: one block per tree, then the verdict."""
    flags = " ".join(options.flags()) or "(none)"
    lines = [f"criu {options.criu_version or 'unknown'} | dump options: {flags}"]
    for p in predictions:
        role = f" [{p.role}]" if p.role else ""
        lines.append(f"pid {p.root} ({p.process}){role}: {p.verdict}")
        lines += [f"  {f.line()}" for f in p.findings]
    verdict, first = overall(predictions)
    if first is not None and first.refusal is not None:
        lines.append(f"verdict: {verdict}: criu dump of pid {first.root} would fail with "
                     f"{first.refusal.signature!r}")
    else:
        lines.append(f"verdict: {verdict}")
    return lines


def predict(
    roots: Sequence[int],
    options: DumpOptions,
    roles: Sequence[str | None] | None = None,
    sequential: bool = True,
) -> list[Prediction]:
    """A prediction for each tree. Sequential: the trees are dumped one after the other in
    this order (as the harness's plans do), each gone once dumped."""
    sockets = read_sockets()
    owners = holders()
    gone: set[int] = set()
    predictions = []
    for i, root in enumerate(roots):
        tasks = [t for pid in tree(root) if (t := _task(pid)) is not None]
        if not tasks or tasks[0].pid != root:
            raise UsageError(f"no such process: {root}")
        look = Look(root, tasks, sockets, owners, set(gone), options)
        role = roles[i] if roles is not None else None
        predictions.append(Prediction(root, tasks[0].name, role, look_at(look)))
        if sequential:
            gone |= look.pids
    return predictions
