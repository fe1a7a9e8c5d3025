"""The GPU counter's continuity, as pure logic over replies and event logs."""

from __future__ import annotations

from typing import Any

from harness.workloads.continuity import (
    Break,
    CounterCheck,
    counter_breaks,
    parse_reply,
)


def replies(*pairs: tuple[int, int]) -> list[dict[str, Any]]:
    return [{"event": "received", "seq": s, "counter": c, "ts": float(s)} for s, c in pairs]


def test_a_continuous_counter_has_no_break() -> None:
    assert counter_breaks(replies(*((s, s + 41) for s in range(1, 100)))) == []


def test_a_reset_after_the_migration() -> None:
    [found] = counter_breaks(replies((56, 56), (57, 57), (58, 1), (59, 2)))
    assert found == Break(seq=58, counter=1, previous_seq=57, previous_counter=57)
    assert found.kind == "reset"
    assert str(found) == "GPU counter reset: 57 at seq 57, then 1 at seq 58"


def test_stale_memory_goes_back_and_a_repeat_is_a_break() -> None:
    back, repeat = counter_breaks(replies((1, 10), (2, 11), (3, 5), (4, 6), (5, 6)))
    assert back.kind == "went back" and (back.previous_counter, back.counter) == (11, 5)
    assert repeat.kind == "went back" and repeat.seq == 5


def test_a_jump() -> None:
    [found] = counter_breaks(replies((1, 1), (2, 2), (3, 40)))
    assert found.kind == "jump" and "2 at seq 2, then 40 at seq 3" in str(found)


def test_requests_missing_in_between_allow_up_to_as_many() -> None:
    # seq 3 and 4 unanswered (timed out): the server may have counted them or not.
    assert counter_breaks(replies((2, 2), (5, 5))) == []
    assert counter_breaks(replies((2, 2), (5, 3))) == []  # 3 and 4 never reached it
    assert [b.kind for b in counter_breaks(replies((2, 2), (5, 6)))] == ["jump"]


def test_late_replies_count_in_arrival_order_and_others_are_ignored() -> None:
    events = [
        {"event": "received", "seq": 1, "counter": 1},
        {"event": "timeout", "seq": 2},
        {"event": "sent", "seq": 3},
        {"event": "late", "seq": 2, "counter": 2},
        {"event": "received", "seq": 3, "counter": 3},
        {"event": "received", "seq": 4},  # a plain echo reply: no counter, nothing to check
        {"event": "received", "seq": 4, "counter": 4},  # the duplicate: accounted elsewhere
        {"event": "received", "seq": 4, "counter": 5},
    ]
    assert counter_breaks(events) == []


def test_the_check_fed_one_reply_at_a_time() -> None:
    check = CounterCheck()
    assert check.see(1, 7) is None  # the first reply: anything goes
    assert check.see(2, 8) is None
    assert check.see(3, 8) == Break(3, 8, 2, 8)
    assert check.see(4, 9) is None  # judged against the reply before it
    assert check.replies == 4 and check.last == (4, 9)


def test_parse_reply() -> None:
    assert parse_reply("OK,I got it! counter=57 ballast=ok") == (57, "ok")
    assert parse_reply("OK,I got it! counter=3 ballast=bad@12") == (3, "bad@12")
    assert parse_reply("OK,I got it! counter=3") == (3, "")
    assert parse_reply("OK,I got it!") is None
