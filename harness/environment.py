"""What a run ran on: CRIU, the kernel, the distribution, and the CRIU features that matter.

A nightly report must say what changed underneath it; the features come from preflight's
probes (``criu check --feature X``), so the report and ``criu-harness check`` agree.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys

from harness import preflight
from harness.criu import CriuBinary
from harness.fields import JsonObject

__all__ = ["describe", "distribution", "versions"]


def distribution() -> str | None:
    """The distribution's PRETTY_NAME from os-release, if the system has one."""
    try:
        return platform.freedesktop_os_release().get("PRETTY_NAME")
    except OSError:
        return None


def versions(criu_path: str | None = None, criu_version: str | None = None) -> JsonObject:
    """What ran: CRIU, the kernel, the harness, Python and pycriu (a restore elsewhere may
    fail only because one of these differs). Kept runs hold it as versions.json."""
    try:
        harness_version = importlib.metadata.version("criu-harness")
    except importlib.metadata.PackageNotFoundError:
        from harness import __version__ as harness_version
    try:
        from pycriu.version import __version__ as pycriu_version
    except ImportError:
        pycriu_version = None
    uname = os.uname()
    return {
        "criu": {"path": criu_path, "version": criu_version},
        "kernel": {"release": uname.release, "version": uname.version, "machine": uname.machine},
        "os": distribution(),
        "harness": harness_version,
        "python": {"version": platform.python_version(), "executable": sys.executable},
        "pycriu": pycriu_version,
    }


def describe(criu: CriuBinary) -> JsonObject:
    """The environment object of a nightly results.json: the versions, flat, and features."""
    ran = versions(criu.path, criu.version())
    return {
        "criu_version": ran["criu"]["version"],
        "criu_binary": criu.path,
        "kernel": ran["kernel"]["release"],
        "machine": ran["kernel"]["machine"],
        "distribution": ran["os"] or "unknown",
        "python": ran["python"]["version"],
        "harness": ran["harness"],
        "features": {name: preflight.probe(criu.path, name).available for name in preflight.FEATURES},
    }
