"""The lease renewer: one thread for every open turn, renewals in the I/O pool, nothing for a short turn."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from mongodb_session_manager.lease_renewal import LeaseRenewer

INTERVAL = 0.02


@pytest.fixture
def renewer() -> Iterator[LeaseRenewer]:
    pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="test-renewals")
    yield LeaseRenewer(executor=lambda: pool)
    pool.shutdown(wait=True)


def wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


class Counter:
    def __init__(self, *results: bool | Exception) -> None:
        self.results = list(results)
        self.calls = 0
        self.lost = 0

    def renew(self) -> bool:
        self.calls += 1
        result = self.results.pop(0) if self.results else True
        if isinstance(result, Exception):
            raise result
        return result

    def on_lost(self) -> None:
        self.lost += 1


def test_a_live_turn_is_renewed_every_interval_until_it_ends(renewer: LeaseRenewer) -> None:
    counter = Counter()
    renewal = renewer.schedule(INTERVAL, counter.renew, counter.on_lost)
    assert wait_for(lambda: counter.calls >= 3)
    renewal.cancel()
    at_cancel = counter.calls
    time.sleep(INTERVAL * 10)
    assert counter.calls <= at_cancel + 1, "at most the renewal already running when it ended"
    assert counter.lost == 0


def test_a_turn_that_ends_before_its_first_interval_is_never_renewed(renewer: LeaseRenewer) -> None:
    counter = Counter()
    renewer.schedule(0.1, counter.renew, counter.on_lost).cancel()
    time.sleep(0.3)
    assert counter.calls == 0
    assert wait_for(lambda: renewer.pending() == 0), "the ended turn's entry is dropped"


def test_a_refused_renewal_marks_the_turn_lost_once_and_stops(renewer: LeaseRenewer) -> None:
    counter = Counter(False)
    renewer.schedule(INTERVAL, counter.renew, counter.on_lost)
    assert wait_for(lambda: counter.lost == 1)
    time.sleep(INTERVAL * 10)
    assert (counter.calls, counter.lost) == (1, 1)


def test_a_renewal_that_fails_on_the_network_is_logged_and_retried(
    renewer: LeaseRenewer, caplog: pytest.LogCaptureFixture
) -> None:
    counter = Counter(ConnectionError("no route"), ConnectionError("no route"))
    with caplog.at_level(logging.WARNING, logger="mongodb_session_manager.lease_renewal"):
        renewal = renewer.schedule(INTERVAL, counter.renew, counter.on_lost, label="session_id=<s> | agent_id=<a>")
        assert wait_for(lambda: counter.calls >= 3), "it kept renewing after the failures"
        renewal.cancel()
    failures = [r.getMessage() for r in caplog.records if "will retry" in r.getMessage()]
    assert len(failures) == 2 and failures[0].startswith("session_id=<s> | agent_id=<a>") and "no route" in failures[0]
    assert counter.lost == 0


def test_every_turn_shares_one_scheduler_thread(renewer: LeaseRenewer) -> None:
    def scheduler_threads() -> int:
        return sum(t.name == "msm-lease-renewer" and t.is_alive() for t in threading.enumerate())

    before = scheduler_threads()
    renewals = [renewer.schedule(60, lambda: True, lambda: None) for _ in range(200)]
    assert scheduler_threads() == before + 1
    assert renewer.pending() == 200
    for renewal in renewals:
        renewal.cancel()


def test_renewals_run_in_the_pool_so_a_hung_one_delays_no_other(renewer: LeaseRenewer) -> None:
    release = threading.Event()
    hung = renewer.schedule(INTERVAL, lambda: release.wait(30), lambda: None)
    counter = Counter()
    other = renewer.schedule(INTERVAL, counter.renew, counter.on_lost)
    try:
        assert wait_for(lambda: counter.calls >= 3), "the other turn kept being renewed"
    finally:
        for renewal in (hung, other):
            renewal.cancel()
        release.set()


@pytest.mark.parametrize("interval", [0, -1.0])
def test_an_interval_must_be_positive(renewer: LeaseRenewer, interval: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        renewer.schedule(interval, lambda: True, lambda: None)
