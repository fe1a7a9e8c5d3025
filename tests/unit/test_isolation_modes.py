"""Isolation: what each mode starts workloads in, and what CRIU is told about it."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness import scenario
from harness.criu.options import CriuOptions, cli_args, rpc_fields
from harness.errors import UsageError
from harness.isolation import (
    DEFAULT_ISOLATION,
    Isolation,
    criu_options,
    get_isolation,
    namespaces,
    tmp_dir,
)
from harness.namespace import hidden_by_tmp

RUN = Path("/tmp/criu-harness-x")


def test_names() -> None:
    assert get_isolation(None) is DEFAULT_ISOLATION
    assert get_isolation("ns") is Isolation.NS and get_isolation("ns+net") is Isolation.NS_NET
    with pytest.raises(UsageError, match="unknown isolation 'vm': choose one of none, ns, ns"):
        get_isolation("vm")


def test_none_changes_nothing(tmp_path: Path) -> None:
    opts = CriuOptions(tmp_path)
    assert criu_options(Isolation.NONE, opts, "dump", RUN) is opts
    assert namespaces(Isolation.NONE, tmp_path) is None


def test_ns_names_its_bind_mounts_external_and_restores_onto_root() -> None:
    # A checkout under /tmp (a CI clone, say) is bound again, and named too (host0, ...).
    hosts = hidden_by_tmp()
    dump = criu_options(Isolation.NS, CriuOptions(RUN / "images"), "dump", RUN)
    assert dump.external == ("mnt[/dev]:dev", "mnt[/tmp]:tmp", f"mnt[{RUN}]:run",
                             *(f"mnt[{p}]:host{i}" for i, p in enumerate(hosts)))
    assert dump.root is None and dump.network_lock is None
    restore = criu_options(Isolation.NS, CriuOptions(RUN / "images"), "restore", RUN)
    assert restore.root == Path("/")
    assert restore.external == ("mnt[dev]:/dev", f"mnt[tmp]:{RUN}/tmp", f"mnt[run]:{RUN}",
                                *(f"mnt[host{i}]:{p}" for i, p in enumerate(hosts)))
    args = cli_args("restore", restore)
    assert args[args.index("--root") + 1] == "/"
    assert [args[i + 1] for i, a in enumerate(args) if a == "--external"] == list(restore.external)
    assert rpc_fields("restore", restore)["root"] == "/"


def test_ns_net_takes_the_nftables_lock_unless_told_otherwise() -> None:
    opts = criu_options(Isolation.NS_NET, CriuOptions(RUN), "dump", RUN)
    assert opts.network_lock == "nftables"
    told = criu_options(Isolation.NS_NET, CriuOptions(RUN, network_lock="skip"), "dump", RUN)
    assert told.network_lock == "skip"


def test_namespaces_share_the_runs_tmp(tmp_path: Path) -> None:
    ns = namespaces(Isolation.NS, tmp_path)
    assert ns is not None and ns.mount and not ns.net
    assert ns.tmp == str(tmp_dir(tmp_path)) and tmp_dir(tmp_path).stat().st_mode & 0o7777 == 0o1777
    net = namespaces(Isolation.NS_NET, tmp_path)
    assert net is not None and net.net


def test_scenario_isolation_is_checked(tmp_path: Path) -> None:
    text = textwrap.dedent(
        """\
        name = "mine"
        isolation = "{}"
        [[process]]
        role = "server"
        argv = ["./server"]
        [expect]
        outcome = "migrates"
        [verify]
        log = "{{run_dir}}/server.stdout"
        pattern = "x"
        """
    )
    path = tmp_path / "mine.toml"
    path.write_text(text.format("ns"))
    assert scenario.load(path).isolation == "ns"
    path.write_text(text.format("jail"))
    with pytest.raises(scenario.ScenarioError) as info:
        scenario.load(path)
    assert info.value.problems == [
        f"{path}:2: isolation: must be one of none, ns, ns+net, not 'jail'"
    ]
