"""Deadline loops (tenacity): poll until a condition holds, never a bare sleep."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

from harness.errors import HarnessError

__all__ = ["DeadlinePassed", "poll", "wait_for"]

T = TypeVar("T")


class DeadlinePassed(HarnessError):
    """The condition did not hold in time; ``last`` is the last value seen."""

    def __init__(self, last: object, timeout: float) -> None:
        super().__init__(f"not within {timeout:g} s (last seen: {last!r})")
        self.last = last
        self.timeout = timeout


def _poll(
    probe: Callable[[], T], done: Callable[[T], bool], timeout: float, interval: float
) -> tuple[T, bool]:
    retryer = Retrying(
        stop=stop_after_delay(timeout),
        wait=wait_fixed(interval),
        retry=retry_if_result(lambda value: not done(value)),
    )
    try:
        return retryer(probe), True
    except RetryError as exc:
        return exc.last_attempt.result(), False


def wait_for(
    probe: Callable[[], T],
    done: Callable[[T], bool] = bool,
    timeout: float = 5.0,
    interval: float = 0.01,
    error: Callable[[T], BaseException] | None = None,
) -> T:
    """Call probe until done(value) and return that value. Past the deadline, raise
    ``error(last value)``: the caller's own exception, or DeadlinePassed if it gives none."""
    value, ok = _poll(probe, done, timeout, interval)
    if ok:
        return value
    raise (error(value) if error is not None else DeadlinePassed(value, timeout)) from None


def poll(
    probe: Callable[[], T],
    done: Callable[[T], bool] = bool,
    timeout: float = 5.0,
    interval: float = 0.01,
) -> T:
    """Call probe until done(value) or the deadline; return the last value either way (for a
    wait whose lateness is no error: the caller looks at the value)."""
    return _poll(probe, done, timeout, interval)[0]
