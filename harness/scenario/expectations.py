"""A scenario file's ``[expect]`` table: what must happen, per plan (``[expect.plan.NAME]``),
per CRIU version (``[expect.criu."SPEC"]``) and, where CRIU is not deterministic, what is as
expected too (``[expect.or]``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.criu.version import VersionSpecError, check_spec
from harness.plan import PLANS
from harness.problems import Keys, type_name
from harness.scenario.checker import Checker
from harness.scenario.model import Expectation

__all__ = ["OUTCOMES", "Expectations", "read"]

OUTCOMES = ("migrates", "fails", "breaks")
_EXPECT = {
    "outcome": str, "action": str, "signature": str, "max_lost": int, "max_client_errors": int,
    "max_duplicates": int, "allowed_differences": list, "plan": dict, "criu": dict, "or": dict,
}
_NESTED = ("plan", "criu", "or")


@dataclass
class Expectations:
    base: Expectation | None
    per_plan: dict[str, Expectation] = field(default_factory=dict)
    per_criu: tuple[tuple[str, dict[str, Any]], ...] = ()
    alternative: Expectation | None = None


def read(check: Checker, raw: Any) -> Expectations:
    """Every expectation of an ``[expect]`` table; its problems go to check."""
    found = Expectations(_expectation(check, raw, ("expect",), None))
    tables = raw if isinstance(raw, dict) else {}
    plans = tables.get("plan", {})
    if not isinstance(plans, dict):
        check.add(("expect", "plan"), f"must be a table, not {type_name(plans)}")
        plans = {}
    for name, sub in plans.items():
        if name not in PLANS:
            check.add(("expect", "plan", name), f"unknown plan (expected one of: {', '.join(PLANS)})")
            continue
        if found.base is not None and (e := _expectation(check, sub, ("expect", "plan", name),
                                                         found.base)):
            found.per_plan[name] = e
    found.per_criu = _per_criu(check, tables.get("criu", {}), found.base)
    if isinstance(raw_or := tables.get("or"), dict) and found.base is not None:
        alternative = _expectation(check, raw_or, ("expect", "or"), found.base)
        if alternative is not None and (
            (alternative.outcome == "fails") == (found.base.outcome == "fails")
        ):
            check.add(("expect", "or", "outcome"),
                      "must differ from expect.outcome in whether CRIU fails")
        found.alternative = alternative
    return found


def _expectation(
    check: Checker, raw: Any, where: Keys, base: Expectation | None
) -> Expectation | None:
    allowed = {k: v for k, v in _EXPECT.items() if base is None or k not in _NESTED}
    e = check.table(raw, where, allowed, required=("outcome",) if base is None else ())
    for nested in _NESTED:
        e.pop(nested, None)
    outcome = e.get("outcome", base.outcome if base else "migrates")
    if outcome not in OUTCOMES:
        check.add((*where, "outcome"),
                  f"must be 'migrates', 'fails' or 'breaks', not {outcome!r}")
    if "action" in e and e["action"] not in ("dump", "restore"):
        check.add((*where, "action"), f"must be 'dump' or 'restore', not {e['action']!r}")
    for key in {"fails": ("action", "signature"), "breaks": ("signature",)}.get(outcome, ()):
        if key not in e and (base is None or getattr(base, key) is None):
            check.add((*where, key), f"missing (required when outcome is {outcome!r})")
    for key in ("max_lost", "max_client_errors", "max_duplicates"):
        if key in e:
            check.at(*where).positive(e[key], key, zero_ok=True)
    if "allowed_differences" in e:
        patterns = check.strings(e["allowed_differences"], (*where, "allowed_differences"))
        e["allowed_differences"] = tuple(patterns)
    if base is not None:
        return Expectation(**{**base.__dict__, **e})
    return Expectation(**e) if "outcome" in e else None


def _per_criu(
    check: Checker, versions: Any, base: Expectation | None
) -> tuple[tuple[str, dict[str, Any]], ...]:
    """[expect.criu."SPEC"] tables: what changes on the CRIU versions SPEC matches."""
    if not isinstance(versions, dict):
        check.add(("expect", "criu"), f"must be a table, not {type_name(versions)}")
        return ()
    found = []
    for spec, sub in versions.items():
        try:
            check_spec(spec)
        except VersionSpecError as exc:
            check.add(("expect", "criu", spec), str(exc))
            continue
        if base is not None and (e := _expectation(check, sub, ("expect", "criu", spec), base)):
            found.append((spec, {k: getattr(e, k) for k in sub if k in _EXPECT}))
    return tuple(found)
