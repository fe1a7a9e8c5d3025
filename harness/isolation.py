"""How isolated a run's workloads are, and what CRIU must be told about it.

- ``none``: bare host processes, each in a session of its own (the harness's first way);
- ``ns``: each workload the init of its own PID namespace, with a session of its own inside,
  and a mount namespace of its own whose /tmp is the run's (harness.namespace). A restore
  gives the tree a new PID namespace, so it never collides with a pid in use: not with the
  dumped task still being there (lazy pages, a safe hand-over), nor with anything else;
- ``ns+net``: ``ns`` and a network namespace of its own (loopback only; CRIU saves and
  restores it, and needs a network lock for it: nftables here, as there is no iptables).
"""

from __future__ import annotations

from dataclasses import replace
from enum import StrEnum
from pathlib import Path

from harness.criu.options import CriuOptions
from harness.errors import UsageError
from harness.namespace import MOUNTS, Namespaces, hidden_by_tmp

__all__ = ["DEFAULT_ISOLATION", "Isolation", "criu_options", "get_isolation", "namespaces",
           "tmp_dir"]


class Isolation(StrEnum):
    NONE = "none"
    NS = "ns"
    NS_NET = "ns+net"

    @property
    def namespaced(self) -> bool:
        return self is not Isolation.NONE


# Measured, and why: README, "Isolation".
DEFAULT_ISOLATION = Isolation.NONE


def get_isolation(name: str | Isolation | None) -> Isolation:
    """The isolation named name (None: the default); an unknown name is a usage error."""
    if name is None:
        return DEFAULT_ISOLATION
    try:
        return Isolation(name)
    except ValueError:
        raise UsageError(
            f"unknown isolation {name!r}: choose one of {', '.join(Isolation)}"
        ) from None


def tmp_dir(run_dir: Path) -> Path:
    """The run's /tmp, as the host sees it."""
    return run_dir / "tmp"


def namespaces(isolation: Isolation, run_dir: Path) -> Namespaces | None:
    """What each workload of a run gets (None: started as a plain process)."""
    if not isolation.namespaced:
        return None
    tmp = tmp_dir(run_dir)
    tmp.mkdir(mode=0o1777, exist_ok=True)
    tmp.chmod(0o1777)  # mkdir's mode passes through the umask
    return Namespaces(mount=True, net=isolation is Isolation.NS_NET, run_dir=str(run_dir),
                      tmp=str(tmp))


def criu_options(isolation: Isolation, opts: CriuOptions, action: str, run_dir: Path) -> CriuOptions:
    """opts with what CRIU needs to dump or restore a workload isolated so: its bind mounts
    named as external on the dump and bound again on the restore, the root the mount
    namespace is restored onto, and a network lock for a network namespace."""
    if not isolation.namespaced:
        return opts
    inside = {key: where or str(run_dir) for key, where in MOUNTS.items()}
    host = {"dev": "/dev", "tmp": str(tmp_dir(run_dir)), "run": str(run_dir)}
    for i, path in enumerate(hidden_by_tmp()):  # the harness's own files, under /tmp
        inside[f"host{i}"] = host[f"host{i}"] = path
    if action == "dump":
        external = tuple(f"mnt[{inside[key]}]:{key}" for key in inside)
        root = opts.root
    else:
        external = tuple(f"mnt[{key}]:{host[key]}" for key in host)
        root = opts.root or Path("/")
    lock = opts.network_lock
    if isolation is Isolation.NS_NET and lock is None:
        lock = "nftables"
    return replace(opts, root=root, external=(*opts.external, *external), network_lock=lock)
