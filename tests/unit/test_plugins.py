"""Finding CRIU's plugins where the harness looks for them."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.criu import plugins
from harness.errors import UsageError


@pytest.fixture
def plugin_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "lib" / "criu"
    home.mkdir(parents=True)
    monkeypatch.setenv(plugins.ENV, str(home))
    return home


def test_the_directory_holding_the_plugin(plugin_home: Path) -> None:
    (plugin_home / "cuda_plugin.so").write_bytes(b"")
    assert plugins.plugin_dir(["cuda"]) == plugin_home
    assert plugins.search_dirs() == [plugin_home]  # the variable alone, when set


def test_a_missing_plugin_names_the_file_and_where_it_looked(plugin_home: Path) -> None:
    with pytest.raises(plugins.PluginMissing) as caught:
        plugins.plugin_dir(["cuda"])
    assert str(caught.value).startswith(f"no cuda_plugin.so in {plugin_home} (scripts/install-criu")
    assert isinstance(caught.value, UsageError)


def test_default_search_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(plugins.ENV, raising=False)
    assert plugins.search_dirs() == [Path("/usr/local/lib/criu"), Path("/usr/lib/criu")]
    with pytest.raises(UsageError, match="bad CRIU plugin name"):
        plugins.plugin_file("../evil")
