"""Results as JUnit XML, for CI systems that draw test tables from it.

Written here with xml.etree rather than by running the matrix under pytest's --junitxml: the
matrix already holds every result as data, so a second front (a parametrized pytest module that
rebuilds the matrix at collection time and smuggles results.json out of the session) would add
a pytest dependency to the core and a second place where the matrix is defined, for a file
that is a dozen elements. The mapping follows pytest's own: an expected failure is a
``skipped`` element of type ``pytest.xfail``, an unexpected success a ``failure``.
"""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

from harness.criu.log import message
from harness.report import RunReport
from harness.result import Outcome, ScenarioResult

__all__ = ["JUNIT", "to_xml", "write"]

JUNIT = "junit.xml"


def _case(result: ScenarioResult) -> ET.Element:
    case = ET.Element(
        "testcase",
        classname=f"criu-harness.{result.backend or 'default'}.{result.variant or 'default'}",
        name=result.name,
        time=f"{result.duration_s:.3f}",
    )
    why = result.reason or ""
    match result.outcome:
        case Outcome.FAILED:
            ET.SubElement(case, "failure", message=why, type="failed").text = why
        case Outcome.XPASSED:
            ET.SubElement(case, "failure", message=f"[XPASS(strict)] {why}", type="xpassed").text = why
        case Outcome.ERROR:
            ET.SubElement(case, "error", message=why, type="error").text = why
        case Outcome.XFAILED:
            ET.SubElement(case, "skipped", message=f"expected failure: {why}", type="pytest.xfail")
        case Outcome.SKIPPED:
            ET.SubElement(case, "skipped", message=why, type="pytest.skip")
    out = [f"outcome: {result.outcome}", f"messages lost: {result.messages_lost}",
           f"client errors: {result.client_errors}"]
    if result.downtime_ms is not None:
        out.append(f"downtime: {result.downtime_ms:.1f} ms")
    if result.criu_error:
        out.append(f"criu: {message(result.criu_error)}")
    if result.artifacts:
        out.append(f"artifacts: {result.artifacts}")
    ET.SubElement(case, "system-out").text = "\n".join(out)
    return case


def to_xml(report: RunReport, suite: str = "criu-harness", timestamp: datetime | None = None) -> str:
    results = report.scenarios
    when = (timestamp or datetime.now(timezone.utc)).isoformat(timespec="seconds")
    root = ET.Element("testsuites")
    testsuite = ET.SubElement(
        root,
        "testsuite",
        name=suite,
        tests=str(len(results)),
        failures=str(sum(r.outcome in (Outcome.FAILED, Outcome.XPASSED) for r in results)),
        errors=str(sum(r.outcome is Outcome.ERROR for r in results)),
        skipped=str(sum(r.outcome in (Outcome.XFAILED, Outcome.SKIPPED) for r in results)),
        time=f"{sum(r.duration_s for r in results):.3f}",
        timestamp=when,
        hostname=socket.gethostname(),
    )
    props = ET.SubElement(testsuite, "properties")
    for name, value in (("criu_version", report.criu_version), ("kernel", report.kernel),
                        ("backend", report.backend)):
        ET.SubElement(props, "property", name=name, value=str(value))
    for result in results:
        testsuite.append(_case(result))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write(report: RunReport, directory: Path, suite: str = "criu-harness") -> Path:
    path = directory / JUNIT
    path.write_text(to_xml(report, suite))
    return path
