"""The nightly HTML report of a real night, loaded in a real headless chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness.matrix import dated_dirs

# Root has no sandbox; everything that would talk to the network or a desktop is off, so the
# only console lines left are the page's own.
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--enable-logging=stderr", "--v=0",
)
CONSOLE = re.compile(r"CONSOLE|Uncaught")


def chromium_path() -> str:
    names = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
    found = next((path for name in names if (path := shutil.which(name))), None)
    if found is None:
        reason = "chromium not installed (scripts/install-test-deps installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)
    return found


@dataclass
class Loaded:
    dom: str
    console: list[str]
    screenshot: Path


def load(page: Path, screenshot: Path) -> Loaded:
    """Load page twice in fresh profiles: once to dump the DOM, once for a screenshot."""
    browser = chromium_path()
    console: list[str] = []
    outputs = []
    for mode in ("--dump-dom", f"--screenshot={screenshot}"):
        with tempfile.TemporaryDirectory(prefix="criu-harness-chromium-") as profile:
            argv = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1400,2000",
                    mode, page.resolve().as_uri()]
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr[-2000:]
        console += [line for line in proc.stderr.splitlines() if CONSOLE.search(line)]
        outputs.append(proc.stdout)
    return Loaded(outputs[0], console, screenshot)


class Elements(HTMLParser):
    """Every element of a DOM dump as (tag, attributes)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, {k: v or "" for k, v in attrs}))

    def all(self, tag: str, cls: str | None = None) -> list[dict[str, str]]:
        return [a for t, a in self.found if t == tag and (cls is None or cls in a.get("class", "").split())]


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Two real nights (so that there is a comparison and a trend); the second's directory."""
    # No CRIU check here: the project's pytest plugin skips (or fails under CI) a `criu` test
    # before its fixtures run.
    out = tmp_path_factory.mktemp("nightly")
    argv = [sys.executable, "-m", "harness.cli", "matrix", "--scenarios", "dgram-echo", "stream-echo",
            "--backends", "rpc", "--out", str(out), "--threshold", "100"]
    for _ in range(2):
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    yield dated_dirs(out)[-1]


@pytest.mark.criu
def test_the_report_renders_without_console_errors(night: Path, tmp_path: Path) -> None:
    page = night / "report.html"
    text = page.read_text()
    # Self-contained: nothing fetched from anywhere (the SVG namespace is a name, not a fetch).
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", text)
    assert "<script" not in text

    loaded = load(page, tmp_path / "report.png")
    assert loaded.console == []
    assert loaded.screenshot.stat().st_size > 10_000
    assert loaded.screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    dom = Elements()
    dom.feed(loaded.dom)
    rows = dom.all("tr")
    assert len(dom.all("table", "summary")) == 1
    # Header, then one row per result: dgram-echo under each of its plans, and stream-echo.
    assert len([r for r in rows if r.get("class") in ("good", "bad", "meh")]) >= 2
    assert len(dom.all("svg", "trend")) == 1
    timelines = dom.all("svg", "timeline")
    # One per cycle that migrated: dgram-echo's, under each of its plans. A failed dump
    # (stream-echo's) records no round trips, and says so instead of drawing one.
    assert len(timelines) >= 2
    assert dom.all("circle", "rtt") and dom.all("rect", "band")


@pytest.mark.criu
def test_the_gap_in_round_trips_lines_up_with_the_phases(night: Path) -> None:
    """In the migrating pair's timeline, the silence starts before the first dump and ends
    after the last restore: the shaded steps explain it."""
    text = (night / "report.html").read_text()
    first = text.index('<svg xmlns="http://www.w3.org/2000/svg" class="timeline"')
    svg = text[first:text.index("</svg>", first)]
    dom = Elements()
    dom.feed(svg)
    [gap] = dom.all("line", "gap")
    bands = dom.all("rect", "band")

    def span(step: str) -> tuple[float, float]:
        xs = [(float(b["x"]), float(b["x"]) + float(b["width"])) for b in bands if b["data-step"] == step]
        assert xs, f"no {step} band"
        return min(x for x, _ in xs), max(x for _, x in xs)

    gap_start, gap_end = float(gap["x1"]), float(gap["x2"])
    assert gap_start <= span("dump")[0]
    assert gap_end >= span("restore")[1] - 1.0  # the first reply comes once both are back
