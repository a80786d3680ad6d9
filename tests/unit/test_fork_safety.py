"""A worker forked from a parent (gunicorn ``--preload``, Celery prefork) must not hang on what the
parent's other threads held at the fork: module locks, the hook pool and its in-flight sends."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from mongodb_session_manager import blocking_io, indexes, lease_renewal, mongodb_session_factory, storage
from mongodb_session_manager.hooks import _aws, _dispatch
from mongodb_session_manager.mongodb_connection_pool import MongoDBConnectionPool

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX only")

#: Every module lock the library keeps: how to reach it now (a child may have replaced it).
LOCKS: dict[str, Callable[[], Any]] = {
    "hook dispatch": lambda: _dispatch._LOCK,
    "boto3 clients": lambda: _aws._CLIENTS_LOCK,
    "indexes": lambda: indexes._indexes_lock,
    "storage indexes": lambda: storage._indexes_lock,
    "global factory": lambda: mongodb_session_factory._global_lock,
    "connection pool": lambda: MongoDBConnectionPool._lock,
    "blocking io": lambda: blocking_io._lock,
    "lease renewer": lambda: lease_renewal.RENEWER._wake,
}


def in_child(check: Callable[[], bool], deadline: float = 20.0) -> int:
    """Fork, run ``check`` in the child; its exit code: 0 passed, 1 failed, 2 raised, 3 hung."""
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 2
        try:
            signal.signal(signal.SIGALRM, signal.SIG_DFL)  # not pytest-timeout's handler, inherited
            signal.alarm(int(deadline))  # a deadlock kills the child instead of the suite
            code = 0 if check() else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return 3
    return os.WEXITSTATUS(status)


@contextmanager
def held_by_another_thread(locks: list[Any]) -> Iterator[None]:
    """The parent's state at the fork: another thread is inside each lock."""
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        for lock in locks:
            lock.acquire()
        taken.set()
        release.wait(30)
        for lock in reversed(locks):
            lock.release()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert taken.wait(10)
    try:
        yield
    finally:
        release.set()
        thread.join(10)


def test_a_child_forked_while_another_thread_holds_every_module_lock_can_take_them() -> None:
    with held_by_another_thread([reach() for reach in LOCKS.values()]):

        def every_lock_free() -> bool:
            return all(reach().acquire(timeout=2) for reach in LOCKS.values())

        assert in_child(every_lock_free) == 0


def test_a_child_runs_hook_sends_although_the_parents_pool_and_a_send_in_flight_came_with_the_fork() -> None:
    started, finish = threading.Event(), threading.Event()

    def slow_send() -> None:
        started.set()
        finish.wait(30)

    hook = _dispatch.DispatchingHook("test")
    # A send of the parent is running in its pool (and holds a lane) when the worker is forked.
    in_flight = _dispatch.submit((id(hook), "s"), slow_send)
    hook._pending.add(in_flight)
    assert started.wait(10)
    try:

        def child_sends() -> bool:
            sent = _dispatch.submit((id(hook), "s"), lambda: "sent")  # the same lane as the parent's send
            return sent.result(timeout=5) == "sent" and hook.flush(timeout=5) and _dispatch.flush(timeout=5)

        assert in_child(child_sends) == 0
    finally:
        finish.set()
        in_flight.result(timeout=10)
    assert _dispatch.flush(timeout=10), "the parent's own send still finishes in the parent"


def test_a_child_renews_its_own_leases_and_none_of_its_parents() -> None:
    renewed: list[str] = []
    parents = lease_renewal.RENEWER.schedule(0.05, lambda: renewed.append("parent") or True, lambda: None)
    try:

        def child_renews() -> bool:
            inherited = len(renewed)
            done = threading.Event()
            mine = lease_renewal.RENEWER.schedule(
                0.05, lambda: renewed.append("child") or done.set() or True, lambda: None
            )
            ok = done.wait(5)
            mine.cancel()
            time.sleep(0.2)  # the parent's renewal, had it come along, would be due several times by now
            return ok and "parent" not in renewed[inherited:]

        assert in_child(child_renews) == 0
    finally:
        parents.cancel()


def test_a_split_lease_names_the_process_that_takes_it() -> None:
    from mongodb_session_manager import repository_archive

    parent = repository_archive._owner()
    read, write = os.pipe()

    def name_in_child() -> bool:
        os.write(write, repository_archive._owner().encode())
        return True

    assert in_child(name_in_child) == 0
    child = os.read(read, 200).decode()
    os.close(read)
    os.close(write)
    assert parent.endswith(f":{os.getpid()}:archive") and child != parent


def test_a_check_that_hangs_is_reported_not_waited_for() -> None:
    # The harness itself: without it, a deadlocked child would hang the suite.
    started = time.monotonic()
    assert in_child(lambda: False, 1) == 1
    never = threading.Lock()
    never.acquire()
    assert in_child(lambda: never.acquire(), 1) == 3
    never.release()
    assert time.monotonic() - started < 15
