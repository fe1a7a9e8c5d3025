"""Migration plans as data: in which order processes are frozen, dumped and restored."""

from __future__ import annotations

from dataclasses import dataclass, replace

from harness.errors import UsageError


@dataclass(frozen=True)
class Plan:
    """The order of a migration's steps, by process role.

    ``freeze`` roles are stopped (SIGSTOP) before the first dump, so none of them runs while
    another is already gone; ``dump`` and ``restore`` list every role to migrate.
    """

    name: str
    freeze: tuple[str, ...]
    dump: tuple[str, ...]
    restore: tuple[str, ...]
    description: str = ""
    # Roles brought to rest after freezing, before any dump: stopped while waiting in a system
    # call, with nothing queued on their sockets. A server frozen between taking a request and
    # answering it would answer right after its restore, before the client is back, and the
    # reply would be refused; a datagram still queued at dump comes back without its sender's
    # address (CRIU does not save it) and cannot be answered at all.
    quiesce: tuple[str, ...] = ()
    # Dump every role at once, then restore every role at once, each left stopped, and only
    # then resume them in ``restore`` order: the order matters only for when each side runs
    # again, so the migration takes about as long as its slowest role, not their sum.
    overlap: bool = False

    def departing(self) -> Plan:
        """The source's half of a migration to another host: freeze, quiesce, dump."""
        return replace(self, restore=())

    def arriving(self) -> Plan:
        """The destination's half: restore and resume, in this plan's order."""
        return replace(self, freeze=(), quiesce=(), dump=())

    def roles(self) -> set[str]:
        return set(self.dump) | set(self.restore) | set(self.freeze) | set(self.quiesce)

    def for_roles(self, roles: list[str]) -> Plan:
        """This plan for a scenario whose processes have these roles (in start order).

        Roles the plan does not name (a single tree, a third process) are migrated too, never
        skipped: frozen if the plan freezes, dumped and restored after the named ones, in
        start order. A plan that names none of the roles applies its kind of order (frozen or
        not) to all of them in start order."""
        extra = tuple(r for r in roles if r not in self.roles())
        if not extra:
            return self
        if len(extra) == len(roles):  # a plan for other roles: its order, by start order
            return Plan(self.name, extra if self.freeze else (), extra, extra, self.description,
                        overlap=self.overlap)
        return Plan(
            self.name,
            freeze=(*self.freeze, *extra) if self.freeze else (),
            dump=(*self.dump, *extra),
            restore=(*self.restore, *extra),
            description=self.description,
            quiesce=self.quiesce,
            overlap=self.overlap,
        )

    def check(self, roles: list[str]) -> None:
        missing = self.roles() - set(roles)
        if missing:
            raise UsageError(
                f"plan {self.name!r} names roles {sorted(missing)} that the scenario does not have"
            )


PLANS: dict[str, Plan] = {
    p.name: p
    for p in (
        Plan(
            "server-first",
            freeze=("server", "client"),
            dump=("server", "client"),
            restore=("server", "client"),
            description="freeze server then client, server at rest; dump and restore server first",
            quiesce=("server",),
        ),
        Plan(
            "server-first-overlapped",
            freeze=("server", "client"),
            dump=("server", "client"),
            restore=("server", "client"),
            description="freeze and quiesce as server-first; dump both at once, restore both "
            "at once, left stopped; resume the server, then the client",
            quiesce=("server",),
            overlap=True,
        ),
        Plan(
            "client-first",
            freeze=("server", "client"),
            dump=("server", "client"),
            restore=("client", "server"),
            description="freeze and dump as server-first, but restore the client first",
            quiesce=("server",),
        ),
        Plan(
            "server-running",
            freeze=("client",),
            dump=("server", "client"),
            restore=("server", "client"),
            description="freeze the client only; the server, at rest, is dumped running (CRIU "
            "seizes it) and restored first",
            # For servers that must run when CRIU comes: CRIU's CUDA plugin locks a process
            # through cuda-checkpoint, which needs the process's own threads to answer.
            quiesce=("server",),
        ),
        Plan(
            "no-freeze",
            freeze=(),
            dump=("server", "client"),
            restore=("server", "client"),
            description="dump each process in turn while the other still runs",
        ),
    )
}
DEFAULT_PLAN = "server-first"


def get_plan(name: str) -> Plan:
    try:
        return PLANS[name]
    except KeyError:
        raise UsageError(f"unknown plan {name!r}: choose one of {', '.join(PLANS)}") from None
