"""Accounting of the client's event log: lost, duplicated, out of order, downtime."""

from __future__ import annotations

from typing import Any

from harness.verification import Accounting, largest_gap_ms, losses_between, lost_seqs


def ev(event: str, seq: int, ts: float, **kw: Any) -> dict[str, Any]:
    return {"event": event, "seq": seq, "ts": ts, **kw}


def round_trips(seqs: range, start: float = 0.0, step: float = 0.01) -> list[dict[str, Any]]:
    out = []
    for i, seq in enumerate(seqs):
        out += [ev("sent", seq, start + i * step), ev("received", seq, start + i * step + 0.001)]
    return out


def test_clean_log() -> None:
    acc = Accounting.from_events(round_trips(range(1, 11)))
    assert (acc.sent, acc.answered, acc.messages_lost, acc.duplicates) == (10, 10, 0, 0)
    assert acc.client_errors == 0 and acc.out_of_order == 0
    assert acc.downtime_ms is not None and abs(acc.downtime_ms - 10.0) < 0.01


def test_lost_message_and_timeout() -> None:
    events = round_trips(range(1, 4)) + [ev("sent", 4, 0.05), ev("timeout", 4, 1.05)]
    events += round_trips(range(5, 7), start=1.1)
    acc = Accounting.from_events(events)
    assert acc.messages_lost == 1 and acc.timeouts == 1
    assert lost_seqs(events) == {4}


def test_late_reply_is_not_lost() -> None:
    events = [ev("sent", 1, 0.0), ev("timeout", 1, 1.0), ev("sent", 2, 1.01), ev("late", 1, 1.02),
              ev("received", 2, 1.03)]
    acc = Accounting.from_events(events)
    assert acc.messages_lost == 0 and acc.timeouts == 1 and acc.answered == 2


def test_in_flight_message_at_the_end_is_not_lost() -> None:
    events = round_trips(range(1, 4)) + [ev("sent", 4, 0.5)]
    assert Accounting.from_events(events).messages_lost == 0


def test_duplicates_out_of_order_and_errors() -> None:
    events = round_trips(range(1, 3)) + [
        ev("received", 2, 0.03), ev("received", 1, 0.04),
        ev("error", 3, 0.05, error="send: [Errno 111] Connection refused"),
    ]
    acc = Accounting.from_events(events)
    assert acc.duplicates == 2 and acc.out_of_order == 1
    assert acc.client_errors == 1 and "Connection refused" in acc.error_samples[0]


def test_downtime_is_the_gap_across_the_migration_window() -> None:
    times = [0.0, 0.01, 0.02, 0.5, 0.51, 2.0]  # 480 ms gap at the migration, 1490 ms later
    assert largest_gap_ms(times, window=(0.03, 0.4)) == 480.0
    assert largest_gap_ms(times) == 1490.0
    assert largest_gap_ms([1.0]) is None


def test_losses_are_counted_once_per_cycle() -> None:
    # Two migrations, each losing its in-flight message: each cycle counts only its own.
    events = round_trips(range(1, 3)) + [ev("sent", 3, 0.05), ev("timeout", 3, 1.05)]
    events += round_trips(range(4, 6), start=1.1)
    events += [ev("sent", 6, 1.2), ev("error", 6, 1.2, error="refused"), ev("timeout", 6, 2.2)]
    events += round_trips(range(7, 9), start=2.3)
    assert losses_between(events, 0.0, 1.15) == (1, 0)
    assert losses_between(events, 1.15, 3.0) == (1, 1)
    assert losses_between(events, 0.0, 3.0) == (2, 1)
