"""How CriuOptions map to each backend: the same options for both."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.criu.options import (
    CriuOptions,
    cli_args,
    config_lines,
    rpc_config_args,
    rpc_fields,
)
from harness.errors import UsageError

IMAGES = Path("/run/images")


def test_dump_cli_args() -> None:
    opts = CriuOptions(IMAGES, log_file="dump.log", ext_unix_sk=True, shell_job=True)
    args = cli_args("dump", opts, pid=42)
    assert args[:5] == ["dump", "--images-dir", "/run/images", "--log-file", "dump.log"]
    assert "-v4" in args and args[args.index("--tree") + 1] == "42"
    assert "--ext-unix-sk" in args and "--shell-job" in args
    assert "--tcp-established" not in args and "--leave-running" not in args


def test_restore_cli_args_detach_and_pidfile() -> None:
    args = cli_args("restore", CriuOptions(IMAGES, tcp_established=True, network_lock="nftables"))
    assert "--restore-detached" in args and "--pidfile" in args
    assert "--tcp-established" in args
    assert args[args.index("--network-lock") + 1] == "nftables"
    assert "--tree" not in args


def test_rpc_fields_match_cli_flags() -> None:
    opts = CriuOptions(
        IMAGES, log_file="dump.log", leave_running=True, leave_stopped=True, shell_job=True,
        ext_unix_sk=True, tcp_established=True, network_lock="nftables",
    )
    fields = rpc_fields("dump", opts, pid=7)
    assert fields == {
        "log_file": "dump.log", "log_level": 4, "pid": 7, "leave_running": True,
        "leave_stopped": True, "shell_job": True, "ext_unix_sk": True, "tcp_established": True,
        "network_lock": 2,
    }
    cli = cli_args("dump", opts, pid=7)
    for flag in ("--leave-running", "--leave-stopped", "--shell-job", "--ext-unix-sk",
                 "--tcp-established"):
        assert flag in cli


def test_rpc_fields_are_accepted_by_pycriu() -> None:
    rpc = pytest.importorskip("pycriu.rpc_pb2")
    opts = rpc.criu_opts(images_dir_fd=-1)
    for name, value in rpc_fields("dump", CriuOptions(IMAGES, ext_unix_sk=True,
                                                       network_lock="skip"), pid=1).items():
        setattr(opts, name, value)
    assert opts.network_lock == rpc.SKIP and opts.ext_unix_sk


def test_extra_args_cli_and_rpc_config() -> None:
    opts = CriuOptions(IMAGES, extra_args=("--file-locks", "--ghost-limit", "1M"))
    assert cli_args("dump", opts, pid=1)[-3:] == ["--file-locks", "--ghost-limit", "1M"]
    assert rpc_fields("dump", opts, pid=1)["config_file"] == "/run/images/rpc-extra.conf"
    assert config_lines(opts.extra_args) == ["file-locks", "ghost-limit 1M"]
    with pytest.raises(UsageError):
        config_lines(("-v",))


def test_bad_options_are_refused() -> None:
    with pytest.raises(UsageError, match="network_lock"):
        CriuOptions(IMAGES, network_lock="pf")
    with pytest.raises(UsageError, match="bare file name"):
        CriuOptions(IMAGES, log_file="../x.log")
    with pytest.raises(UsageError, match="pid"):
        cli_args("dump", CriuOptions(IMAGES))


def test_options_survive_json() -> None:
    opts = CriuOptions(
        IMAGES, log_file="dump.log", ext_unix_sk=True, network_lock="skip",
        inherit_fds=(("file[1:2]", 7),), extra_args=("--file-locks",),
    )
    data = json.loads(json.dumps(opts.to_json()))
    assert CriuOptions.from_json(data) == opts
    with pytest.raises(UsageError, match="manage_cgroups"):
        CriuOptions(IMAGES, manage_cgroups="some")


def test_plugin_dir_cli_and_rpc_config() -> None:
    opts = CriuOptions(IMAGES, plugin_dir=Path("/opt/criu/plugins"), extra_args=("--file-locks",))
    args = cli_args("restore", opts)
    assert args[args.index("--libdir") + 1] == "/opt/criu/plugins"
    # rpc.proto has no libdir field: the plugin directory goes through the configuration file.
    assert rpc_fields("restore", opts)["config_file"] == "/run/images/rpc-extra.conf"
    assert config_lines(rpc_config_args(opts)) == ["libdir /opt/criu/plugins", "file-locks"]
    assert "config_file" not in rpc_fields("dump", CriuOptions(IMAGES), pid=1)
    assert "--libdir" not in cli_args("dump", CriuOptions(IMAGES), pid=1)


def test_plugin_dir_survives_json() -> None:
    opts = CriuOptions(IMAGES, plugin_dir=Path("/usr/local/lib/criu"))
    data = json.loads(json.dumps(opts.to_json()))
    assert data["plugin_dir"] == "/usr/local/lib/criu"
    assert CriuOptions.from_json(data) == opts
    # Calls recorded before the option existed read back without it.
    del data["plugin_dir"]
    assert CriuOptions.from_json(data).plugin_dir is None


def test_mounts_and_root_both_backends() -> None:
    opts = CriuOptions(IMAGES, root=Path("/"), external=("mnt[dev]:/dev", "mnt[tmp]:/x/tmp"))
    args = cli_args("restore", opts)
    assert args[args.index("--root") + 1] == "/"
    assert args.count("--external") == 2 and "mnt[tmp]:/x/tmp" in args
    assert rpc_fields("restore", opts)["root"] == "/"
    data = json.loads(json.dumps(opts.to_json()))
    assert CriuOptions.from_json(data) == opts


def test_page_server_socket_both_backends() -> None:
    sent = CriuOptions(IMAGES, ps_socket=9)
    args = cli_args("dump", sent, pid=1)
    assert args[args.index("--ps-socket") + 1] == "9" and "--page-server" in args
    assert "config_file" not in rpc_fields("dump", sent, pid=1)  # the request's ps.fd
    assert sent.pass_fds() == [9]
    lazy = CriuOptions(IMAGES, ps_socket=9, lazy_pages=True, status_fd=11)
    args = cli_args("dump", lazy, pid=1)
    assert "--lazy-pages" in args and "--page-server" not in args
    assert args[args.index("--status-fd") + 1] == "11"
    fields = rpc_fields("dump", lazy, pid=1)
    assert fields["lazy_pages"] is True and fields["status_fd"] == 11
    # CRIU ignores a lazy dump's ps.fd in the request: the socket goes through the config file.
    assert config_lines(rpc_config_args(lazy)) == ["ps-socket 9"]
    assert sorted(lazy.pass_fds()) == [9, 11]


def test_a_restore_into_a_cgroup_leaves_cgroups_to_the_harness() -> None:
    opts = CriuOptions(IMAGES, cgroup=Path("/sys/fs/cgroup/unified/criu-harness/1.run/server"),
                       manage_cgroups="ignore")
    # One word: CRIU's --manage-cgroups takes its argument only after "=".
    assert "--manage-cgroups=ignore" in cli_args("restore", opts)
    assert rpc_fields("restore", opts)["manage_cgroups_mode"] == 0
    data = json.loads(json.dumps(opts.to_json()))
    assert CriuOptions.from_json(data) == opts
