"""CRIU options, and how each backend spells them.

One dataclass describes what a dump or restore should do; ``cli_args`` and ``rpc_fields`` map it
to the ``criu`` command line and to pycriu's RPC request, so both backends take the same options.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Literal

from harness.errors import UsageError
from harness.fields import JsonObject

Action = Literal["dump", "restore"]
NETWORK_LOCKS = ("iptables", "nftables", "skip")
# --manage-cgroups modes, by their criu_cg_mode value in rpc.proto.
CGROUP_MODES = {"ignore": 0, "none": 1, "props": 2, "soft": 3, "full": 4, "strict": 5}


@dataclass(frozen=True)
class CriuOptions:
    """What one CRIU action is asked to do; paths are the harness's, never CRIU's defaults."""

    images_dir: Path
    log_file: str = "criu.log"  # relative to images_dir: CRIU's RPC refuses paths with a '/'
    log_level: int = 4  # -v4: the signature of a failure is only in a verbose log
    leave_running: bool = False
    leave_stopped: bool = False
    shell_job: bool = False
    ext_unix_sk: bool = False
    tcp_established: bool = False
    network_lock: str | None = None
    # (key, fd) pairs for --inherit-fd: the restored task gets the harness's fd in place of
    # the file CRIU recorded under key, e.g. ("file[3f:1234]", 7).
    inherit_fds: tuple[tuple[str, int], ...] = field(default_factory=tuple)
    # Any other CRIU option, as on the command line ("--file-locks", "--ghost-limit", "1M").
    extra_args: tuple[str, ...] = ()
    # Seconds the action may take before CRIU is killed (None: the backend's default), and
    # CRIU's fault injection (CRIU_FAULT in its environment; None: no fault).
    timeout: float | None = None
    fault: int | None = None
    # Where CRIU loads its plugins from (--libdir), e.g. the CUDA plugin; None: CRIU's own
    # default, which the harness never relies on (it may not exist, or hold other plugins).
    plugin_dir: Path | None = None
    # A workload in namespaces of its own (harness.isolation): the root its mount namespace is
    # restored onto (--root), and the mounts CRIU must take as given (--external mnt[...]).
    root: Path | None = None
    external: tuple[str, ...] = ()
    # Pages sent over a connection the harness made (harness.transport): a connected socket
    # for --ps-socket (with --page-server on a dump, --lazy-pages for post-copy), and where
    # CRIU says it is ready (--status-fd: a lazy dump serves pages long after it is done).
    ps_socket: int | None = None
    lazy_pages: bool = False
    status_fd: int | None = None
    # The cgroup the restored tree is to live in (the role's: harness.cgroup): the restoring
    # CRIU runs inside it, so the tree it forks is born there. With manage_cgroups "ignore"
    # CRIU leaves cgroups alone (no cgroup yard mounted and unmounted on every restore: tens of
    # ms per cycle here).
    cgroup: Path | None = None
    manage_cgroups: str | None = None  # --manage-cgroups=MODE (None: CRIU's default)

    def __post_init__(self) -> None:
        if self.network_lock is not None and self.network_lock not in NETWORK_LOCKS:
            raise UsageError(
                f"network_lock must be one of {', '.join(NETWORK_LOCKS)}, not {self.network_lock!r}"
            )
        if self.manage_cgroups is not None and self.manage_cgroups not in CGROUP_MODES:
            raise UsageError(f"manage_cgroups must be one of {', '.join(CGROUP_MODES)}, "
                             f"not {self.manage_cgroups!r}")
        if "/" in self.log_file:
            raise UsageError(f"log_file must be a bare file name, not {self.log_file!r}")

    @property
    def log_path(self) -> Path:
        return self.images_dir / self.log_file

    def to_json(self) -> JsonObject:
        """The options as plain data: recorded with each call, so a retry can repeat them."""
        data = asdict(self)
        data["images_dir"] = str(self.images_dir)
        data["inherit_fds"] = [list(pair) for pair in self.inherit_fds]
        data["extra_args"] = list(self.extra_args)
        data["plugin_dir"] = str(self.plugin_dir) if self.plugin_dir is not None else None
        data["root"] = str(self.root) if self.root is not None else None
        data["external"] = list(self.external)
        data["cgroup"] = str(self.cgroup) if self.cgroup is not None else None
        return data

    @classmethod
    def from_json(cls, data: JsonObject) -> CriuOptions:
        known = {f.name for f in dataclass_fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["images_dir"] = Path(values["images_dir"])
        values["inherit_fds"] = tuple((str(k), int(fd)) for k, fd in values.get("inherit_fds", ()))
        values["extra_args"] = tuple(values.get("extra_args", ()))
        for key in ("plugin_dir", "root", "cgroup"):
            if values.get(key) is not None:
                values[key] = Path(values[key])
        values["external"] = tuple(values.get("external", ()))
        return cls(**values)

    def pass_fds(self) -> list[int]:
        """The harness's file descriptors CRIU must inherit for these options."""
        fds = [fd for _, fd in self.inherit_fds]
        return fds + [fd for fd in (self.ps_socket, self.status_fd) if fd is not None]


PIDFILE = "restore.pid"


def cli_args(action: Action, opts: CriuOptions, pid: int | None = None) -> list[str]:
    """The ``criu`` argv (without the binary) for an action."""
    args = [action, "--images-dir", str(opts.images_dir), "--log-file", opts.log_file]
    args.append(f"-v{opts.log_level}")
    if action == "dump":
        if pid is None:
            raise UsageError("dump needs a pid")
        args += ["--tree", str(pid)]
    else:
        # Detached, so criu returns once the tree runs; the harness, a child subreaper,
        # inherits the restored task. The pidfile (relative to the images dir) names it.
        args += ["--restore-detached", "--pidfile", PIDFILE]
    flags = {
        "--leave-running": opts.leave_running,
        "--leave-stopped": opts.leave_stopped,
        "--shell-job": opts.shell_job,
        "--ext-unix-sk": opts.ext_unix_sk,
        "--tcp-established": opts.tcp_established,
    }
    args += [flag for flag, on in flags.items() if on]
    if opts.network_lock:
        args += ["--network-lock", opts.network_lock]
    for key, fd in opts.inherit_fds:
        args += ["--inherit-fd", f"fd[{fd}]:{key}"]
    if opts.plugin_dir is not None:
        args += ["--libdir", str(opts.plugin_dir)]
    if opts.root is not None:
        args += ["--root", str(opts.root)]
    for ext in opts.external:
        args += ["--external", ext]
    if opts.lazy_pages:
        args.append("--lazy-pages")
    if opts.ps_socket is not None:
        # A plain dump sends its pages to a page server; a lazy one serves them itself.
        args += [] if opts.lazy_pages else ["--page-server"]
        args += ["--ps-socket", str(opts.ps_socket)]
    if opts.status_fd is not None:
        args += ["--status-fd", str(opts.status_fd)]
    if opts.manage_cgroups is not None:
        args.append(f"--manage-cgroups={opts.manage_cgroups}")  # an optional argument: one word
    return args + list(opts.extra_args)


def rpc_fields(action: Action, opts: CriuOptions, pid: int | None = None) -> JsonObject:
    """The scalar fields of pycriu's ``criu_opts`` for an action (the images dir fd aside)."""
    fields: JsonObject = {"log_file": opts.log_file, "log_level": opts.log_level}
    if action == "dump":
        if pid is None:
            raise UsageError("dump needs a pid")
        fields["pid"] = pid
    flags = {
        "leave_running": opts.leave_running,
        "leave_stopped": opts.leave_stopped,
        "shell_job": opts.shell_job,
        "ext_unix_sk": opts.ext_unix_sk,
        "tcp_established": opts.tcp_established,
    }
    fields.update({name: True for name, on in flags.items() if on})
    if opts.network_lock:
        # Enum values of criu_network_lock_method in rpc.proto.
        fields["network_lock"] = {"iptables": 1, "nftables": 2, "skip": 3}[opts.network_lock]
    if opts.root is not None:
        fields["root"] = str(opts.root)
    if opts.lazy_pages:
        fields["lazy_pages"] = True
    if opts.status_fd is not None:
        # CRIU reopens it through /proc/<caller>/fd: the harness's own descriptor.
        fields["status_fd"] = opts.status_fd
    if opts.manage_cgroups is not None:
        fields["manage_cgroups_mode"] = CGROUP_MODES[opts.manage_cgroups]
    if rpc_config_args(opts):
        # RPC has no field for arbitrary options, but it reads a CRIU configuration file.
        fields["config_file"] = str(opts.images_dir / RPC_CONFIG)
    return fields


RPC_CONFIG = "rpc-extra.conf"


def rpc_config_args(opts: CriuOptions) -> tuple[str, ...]:
    """The options RPC can only take from the configuration file: extra_args, the plugin
    directory (rpc.proto has no libdir field), and the page-server socket of a lazy dump
    (CRIU ignores the request's page-server fd when lazy_pages is set)."""
    libdir = ("--libdir", str(opts.plugin_dir)) if opts.plugin_dir is not None else ()
    lazy = ("--ps-socket", str(opts.ps_socket)) if opts.lazy_pages and opts.ps_socket else ()
    return (*libdir, *lazy, *opts.extra_args)


def config_lines(args: tuple[str, ...]) -> list[str]:
    """Command-line options as CRIU configuration-file lines: "--ghost-limit 1M" becomes
    "ghost-limit 1M", one option per line."""
    lines: list[str] = []
    for arg in args:
        if arg.startswith("--"):
            lines.append(arg[2:])
        elif arg.startswith("-") or not lines:
            raise UsageError(f"extra argument {arg!r}: use long options (--name [value])")
        else:
            lines[-1] += f" {arg}"
    return lines
