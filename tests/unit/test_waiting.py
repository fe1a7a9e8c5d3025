"""Deadline loops: what wait_for raises when the deadline passes, and poll, which never raises."""

from __future__ import annotations

import itertools

import pytest

from harness.errors import HarnessError, WorkloadError
from harness.waiting import DeadlinePassed, poll, wait_for


def test_wait_for_returns_the_value_that_is_done() -> None:
    counter = itertools.count(1)
    assert wait_for(lambda: next(counter), lambda n: n >= 3, timeout=5, interval=0) == 3


def test_past_the_deadline_wait_for_raises_the_callers_error_with_the_last_value() -> None:
    with pytest.raises(WorkloadError, match="^server: saw 7 of 10$") as caught:
        wait_for(lambda: 7, lambda n: n >= 10, timeout=0.05, interval=0.01,
                 error=lambda last: WorkloadError(f"server: saw {last} of 10"))
    assert caught.value.__suppress_context__  # tenacity's RetryError is no part of the story


def test_without_an_error_wait_for_raises_deadline_passed() -> None:
    with pytest.raises(DeadlinePassed, match=r"not within 0.05 s \(last seen: False\)") as caught:
        wait_for(lambda: False, timeout=0.05, interval=0.01)
    assert isinstance(caught.value, HarnessError)
    assert (caught.value.last, caught.value.timeout) == (False, 0.05)


def test_an_exception_of_the_probe_is_not_retried() -> None:
    def probe() -> bool:
        raise WorkloadError("exited at start")

    with pytest.raises(WorkloadError, match="exited at start"):
        wait_for(probe, timeout=5, error=lambda _: AssertionError("not a timeout"))


def test_poll_returns_the_last_value_whether_or_not_it_is_done() -> None:
    assert poll(lambda: 7, lambda n: n >= 10, timeout=0.05, interval=0.01) == 7
    counter = itertools.count(1)
    assert poll(lambda: next(counter), lambda n: n >= 2, timeout=5, interval=0) == 2
