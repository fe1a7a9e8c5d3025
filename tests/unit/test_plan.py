"""Plans as data: every role of a scenario is migrated, none silently left out."""

from __future__ import annotations

import pytest

from harness.errors import UsageError
from harness.plan import get_plan


def test_roles_the_plan_does_not_name_are_migrated_after_the_named_ones() -> None:
    plan = get_plan("server-first").for_roles(["server", "client", "x1", "x2", "x3"])
    assert plan.freeze == ("server", "client", "x1", "x2", "x3")
    assert plan.dump == ("server", "client", "x1", "x2", "x3")
    assert plan.restore == ("server", "client", "x1", "x2", "x3")
    assert plan.quiesce == ("server",)


def test_a_plan_that_names_none_of_the_roles_takes_them_in_start_order() -> None:
    assert get_plan("server-first").for_roles(["tree"]).dump == ("tree",)
    no_freeze = get_plan("no-freeze").for_roles(["b", "a"])
    assert (no_freeze.freeze, no_freeze.dump, no_freeze.restore) == ((), ("b", "a"), ("b", "a"))


def test_a_plan_naming_a_role_the_scenario_lacks_is_refused() -> None:
    plan = get_plan("server-first").for_roles(["server", "extra"])
    with pytest.raises(UsageError, match="client"):
        plan.check(["server", "extra"])


def test_server_running_freezes_only_the_client() -> None:
    plan = get_plan("server-running").for_roles(["server", "client", "extra"])
    assert plan.freeze == ("client", "extra")
    assert plan.quiesce == ("server",)
    assert plan.dump == plan.restore == ("server", "client", "extra")


def test_the_overlapped_plan_keeps_server_firsts_order_and_overlaps() -> None:
    seq, over = get_plan("server-first"), get_plan("server-first-overlapped")
    assert over.overlap and not seq.overlap
    assert (over.freeze, over.quiesce, over.dump, over.restore) == (
        seq.freeze, seq.quiesce, seq.dump, seq.restore)
    assert over.for_roles(["server", "client", "extra"]).overlap
    assert get_plan("server-first-overlapped").for_roles(["tree"]).overlap
