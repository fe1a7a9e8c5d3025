"""How a dump's pages reach the restore: ``--transport local|page-server|lazy``.

- ``local`` (harness.transport.local): CRIU writes the images to the run's directory and
  restores from there; what every transport shares is there too.
- ``page-server`` (harness.transport.pageserver): the pages go straight to a ``criu
  page-server`` on the destination; the other images follow; the restore reads the
  destination's directory only.
- ``lazy`` (harness.transport.postcopy): post-copy; the restore needs no memory, the pages
  follow as the restored task touches them.

The two sides are a :class:`harness.netns.Host` each: on one machine two network namespaces
joined by a veth pair (harness.netns), so the pages cross a real link; between two machines
(the Vagrantfile's two-machine mode) the same code with the machines' own addresses.
The destination's directory is ``dst/`` in the run directory, mirroring ``images/``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from harness.cgroup import RunCgroup
from harness.netns import VethPair
from harness.sysctl import raised_pipe_max_size
from harness.transport.local import (
    DESTINATION_DIR,
    TRANSPORTS,
    Transport,
    check_transport,
    ship,
)
from harness.transport.pageserver import PageServer
from harness.transport.postcopy import Lazy

__all__ = ["DESTINATION_DIR", "TRANSPORTS", "Lazy", "PageServer", "Transport", "check_transport",
           "opened", "ship"]


@contextmanager
def opened(
    name: str,
    criu: str,
    run_dir: Path,
    cgroup: RunCgroup | None = None,
    timeout: float | None = None,
    say: Callable[[str], None] = print,
) -> Iterator[Transport]:
    """The transport called name for one run, with what it needs: for page-server and lazy a
    second host (a veth pair between two network namespaces in the run's cgroup), for lazy
    fs.pipe-max-size raised (harness.sysctl). Everything ends with the block."""
    check_transport(name)
    if name == "local":
        yield Transport()
        return
    with ExitStack() as stack:
        if name == "lazy":
            stack.enter_context(raised_pipe_max_size(say=say))
        pair = stack.enter_context(VethPair(cgroup))
        kind = Lazy if name == "lazy" else PageServer
        transport = kind(criu, pair.source, pair.destination, run_dir, timeout)
        stack.callback(transport.close)
        yield transport
