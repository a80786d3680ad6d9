"""One scheduler thread that keeps every open turn's lease alive.

A turn holds its (session, agent) lease for ``turn_lease_seconds`` and renews it every third of
that while it runs, so a turn that waits minutes for a tool keeps it and a process that died
stops renewing. Most turns end long before their first renewal is due, so scheduling one must cost
next to nothing: a heap entry, not a thread per turn (a thread start hands the GIL over twice and,
with 50 turns in flight, 50 more threads compete for it). The renewals themselves, database round
trips, run in the library's I/O pool (:mod:`.blocking_io`), so one slow or hung call never delays
another turn's renewal.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor

from .blocking_io import io_executor
from .fork_safety import after_fork_in_child

logger = logging.getLogger(__name__)


class Renewal:
    """One turn's renewals: every ``interval`` seconds ``renew()`` until cancelled or refused.

    ``renew`` returns False when the lease is no longer the turn's; then ``on_lost`` runs once and
    the renewals stop. An exception (the network) is logged and retried at the next interval: the
    commit is the real check.
    """

    __slots__ = ("_cancelled", "interval", "label", "on_lost", "renew")

    def __init__(self, interval: float, renew: Callable[[], bool], on_lost: Callable[[], None], label: str) -> None:
        if interval <= 0:
            raise ValueError(f"a renewal interval must be positive, got {interval!r}")
        self.interval = interval
        self.renew = renew
        self.on_lost = on_lost
        self.label = label
        self._cancelled = False

    def cancel(self) -> None:
        """No renewal starts after this returns (one already running finishes and is not rescheduled)."""
        self._cancelled = True

    @property
    def cancelled(self) -> bool:
        return self._cancelled


class LeaseRenewer:
    """A heap of due renewals and the one daemon thread that hands them to ``executor`` when due."""

    def __init__(self, executor: Callable[[], Executor] = io_executor, clock: Callable[[], float] = time.monotonic):
        self._executor = executor
        self._clock = clock
        self._due: list[tuple[float, int, Renewal]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def forget_in_child(self) -> None:
        """After a fork: no thread, a condition nobody holds, and none of the parent's renewals (its
        turns' leases are the parent's to keep; renewing them from here would outlive the parent)."""
        self._due = []
        self._wake = threading.Condition()
        self._thread = None

    def schedule(
        self, interval: float, renew: Callable[[], bool], on_lost: Callable[[], None], *, label: str = ""
    ) -> Renewal:
        """Start renewing every ``interval`` seconds; the first renewal is one interval from now."""
        renewal = Renewal(interval, renew, on_lost, label)
        self._push(renewal)
        return renewal

    def pending(self) -> int:
        """Renewals waiting for their time, cancelled ones not yet dropped included (for tests)."""
        with self._wake:
            return len(self._due)

    def _push(self, renewal: Renewal) -> None:
        with self._wake:
            heapq.heappush(self._due, (self._clock() + renewal.interval, next(self._order), renewal))
            if self._thread is None or not self._thread.is_alive():  # first use, or a forked child
                self._thread = threading.Thread(target=self._run, name="msm-lease-renewer", daemon=True)
                self._thread.start()
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                renewal = self._next_due()
            try:
                self._executor().submit(self._renew_once, renewal)
            except RuntimeError as exc:  # the pool is shut down: the interpreter is exiting
                logger.warning("%s | lease renewal not started: %s", renewal.label, exc)

    def _next_due(self) -> Renewal:
        """Wait (holding the condition) for the earliest live renewal to come due; pop it."""
        while True:
            while self._due and self._due[0][2].cancelled:  # ended turns leave without a wake-up
                heapq.heappop(self._due)
            if not self._due:
                self._wake.wait()
                continue
            wait = self._due[0][0] - self._clock()
            if wait <= 0:
                return heapq.heappop(self._due)[2]
            self._wake.wait(wait)

    def _renew_once(self, renewal: Renewal) -> None:
        if renewal.cancelled:
            return
        try:
            alive = renewal.renew()
        except Exception as exc:  # the commit is the real check; keep trying until then
            logger.warning("%s | lease renewal failed, will retry: %s", renewal.label, exc)
            alive = True
        if renewal.cancelled:
            return
        if not alive:
            logger.warning("%s | lease taken over while the turn ran; its commit will be refused", renewal.label)
            renewal.on_lost()
            return
        self._push(renewal)


#: The process's renewer, shared by every manager.
RENEWER = LeaseRenewer()
after_fork_in_child(RENEWER.forget_in_child)
