"""Deadline loops (tenacity): poll until a condition holds, never a bare sleep."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

T = TypeVar("T")


class DeadlinePassed(Exception):
    """The condition did not hold in time; ``last`` is the last value seen."""

    def __init__(self, last: object, timeout: float) -> None:
        super().__init__(f"not within {timeout:g} s (last seen: {last!r})")
        self.last = last
        self.timeout = timeout


def wait_for(
    probe: Callable[[], T],
    done: Callable[[T], bool] = bool,
    timeout: float = 5.0,
    interval: float = 0.01,
) -> T:
    """Call probe until done(value); return that value, or raise DeadlinePassed."""
    retryer = Retrying(
        stop=stop_after_delay(timeout),
        wait=wait_fixed(interval),
        retry=retry_if_result(lambda value: not done(value)),
    )
    try:
        return retryer(probe)
    except RetryError as exc:
        raise DeadlinePassed(exc.last_attempt.result(), timeout) from None
