"""Where a service benchmark's processes run: the service on a CPU of its own, or sharing them all.

On a small machine the service under test, mongod and the load generator compete for the same
cores; a production service has its CPU to itself (its database and its clients are elsewhere).
``own_core`` reproduces that on one machine (Linux): the server gets the last CPU, and everything
else (this process, which generates the load, and mongod with all its threads) is moved to the
others for the duration, then put back. Without CPU affinity (another platform, a single CPU) it
changes nothing and says so.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

from pymongo import MongoClient


@dataclass
class Layout:
    """CPUs for the server (None: anywhere), and what was moved off them."""

    server: set[int] | None
    moved: list[str] = field(default_factory=list)

    def describe(self) -> str:
        if self.server is None:
            return "every process on every CPU (shared)"
        return f"the service alone on CPU {sorted(self.server)}; {', '.join(self.moved)} on the others"


def _threads(pid: int) -> list[int]:
    try:
        return [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return [pid]


def _pin(pid: int, cpus: set[int], saved: dict[int, set[int]]) -> None:
    """Every thread of ``pid`` onto ``cpus`` (a thread's affinity is its own; new ones inherit it)."""
    for tid in _threads(pid):
        with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile
            saved.setdefault(tid, os.sched_getaffinity(tid))
            os.sched_setaffinity(tid, cpus)


def shared() -> Layout:
    return Layout(server=None)


@contextlib.contextmanager
def own_core(uri: str) -> Iterator[Layout]:
    """The server on the last CPU, this process and mongod on the rest; restored on exit."""
    if not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2:
        yield Layout(server=None, moved=["(no CPU affinity here: shared)"])
        return
    cpus = sorted(os.sched_getaffinity(0))
    server, rest = {cpus[-1]}, set(cpus[:-1])
    layout = Layout(server=server)
    saved: dict[int, set[int]] = {}
    try:
        _pin(os.getpid(), rest, saved)
        layout.moved.append("the load generator")
        with MongoClient(uri, serverSelectionTimeoutMS=10_000) as client:
            mongod = int(client.admin.command("serverStatus")["pid"])
        try:
            _pin(mongod, rest, saved)
            layout.moved.append("mongod")
        except PermissionError:
            layout.moved.append("(mongod not movable: it shares the service's CPU)")
        yield layout
    finally:
        for tid, cpus_before in saved.items():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.sched_setaffinity(tid, cpus_before)
