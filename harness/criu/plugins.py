"""CRIU's plugins (``cuda_plugin.so``, ...): where the harness finds the ones a scenario needs.

The harness never relies on CRIU's compiled-in plugin directory: it names the directory on every
call of a scenario that needs a plugin (``CriuOptions.plugin_dir``), so no other scenario loads
one. ``scripts/install-criu`` builds the CUDA plugin into /usr/local/lib/criu;
``$CRIU_HARNESS_PLUGIN_DIR`` names another directory (a bundle carried to a GPU machine).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from harness.errors import UsageError

__all__ = ["DIRS", "ENV", "PluginMissing", "plugin_dir", "plugin_file", "search_dirs"]

ENV = "CRIU_HARNESS_PLUGIN_DIR"
# install-criu's directory first, then CRIU's own default (where distributions put them).
DIRS = (Path("/usr/local/lib/criu"), Path("/usr/lib/criu"))
_NAME = re.compile(r"^[a-z0-9_]+$")


class PluginMissing(UsageError):
    """No directory searched holds every plugin asked for."""

    def __init__(self, names: list[str], searched: list[Path]) -> None:
        files = ", ".join(plugin_file(n) for n in names)
        where = ", ".join(str(d) for d in searched)
        super().__init__(
            f"no {files} in {where} (scripts/install-criu builds the CUDA plugin; "
            f"${ENV} names another directory)"
        )
        self.names, self.searched = names, searched


def plugin_file(name: str) -> str:
    """The file of plugin name: ``cuda`` -> ``cuda_plugin.so``."""
    if not _NAME.match(name):
        raise UsageError(f"bad CRIU plugin name {name!r}: lower-case letters, digits and _ only")
    return f"{name}_plugin.so"


def search_dirs() -> list[Path]:
    """Where to look, in order: ``$CRIU_HARNESS_PLUGIN_DIR`` alone when it is set."""
    chosen = os.environ.get(ENV)
    return [Path(chosen)] if chosen else list(DIRS)


def plugin_dir(names: Iterable[str]) -> Path:
    """The first directory holding every plugin named; PluginMissing when none does."""
    wanted = list(names)
    files = [plugin_file(n) for n in wanted]
    searched = search_dirs()
    for directory in searched:
        if all((directory / f).is_file() for f in files):
            return directory
    raise PluginMissing(wanted, searched)
