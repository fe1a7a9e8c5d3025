"""What CRIU did with a scenario's workload, in a few words: an atlas cell's content.

``kind`` is coarse and stable (migrates, refused at dump, fails at restore, breaks, criu
unusable, or the outcome that was not expected): a change of kind between two nights is a
change of the atlas. ``describe`` adds what varies from run to run (messages lost, repeated).
"""

from __future__ import annotations

from harness.result import Outcome, ScenarioResult

__all__ = ["CRIU_UNUSABLE", "describe", "failed_action", "kind"]

# The reason of the results of a CRIU whose `criu check` fails here (harness.survey).
CRIU_UNUSABLE = "criu check fails here: "
# How the runner words an expected "breaks" (harness.runner): the client's error follows.
_BROKE = "the IPC did not come back, as expected: client: "


def failed_action(result: ScenarioResult) -> str | None:
    """The CRIU action whose failure ended the first migration: dump or restore."""
    for cycle in result.cycles[:1]:
        for call in cycle.calls:
            if call.error:
                return call.action
    return None


def kind(result: ScenarioResult) -> str:
    if result.outcome is Outcome.SKIPPED and result.reason.startswith(CRIU_UNUSABLE):
        return "criu unusable"
    if result.outcome is Outcome.XFAILED:
        if result.criu_error is None:
            return "breaks"
        return "refused at dump" if failed_action(result) == "dump" else "fails at restore"
    if result.outcome is Outcome.PASSED:
        return "migrates"
    return str(result.outcome)


def describe(result: ScenarioResult) -> str:
    text = kind(result)
    if text == "migrates":
        extra = [f"{result.messages_lost} lost"] if result.messages_lost else []
        extra += [f"{result.duplicates} repeated"] if result.duplicates else []
        return f"{text} ({', '.join(extra)})" if extra else text
    return text


def client_error(result: ScenarioResult) -> str | None:
    """The client's error that showed a "breaks" (its signature), if this is one."""
    head, sep, tail = result.reason.partition(_BROKE)
    return tail if sep else None
