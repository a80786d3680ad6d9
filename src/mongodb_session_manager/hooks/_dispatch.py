"""Background dispatch shared by the AWS hooks: one bounded worker pool, one ordered lane per session.

A metadata or feedback hook runs inside the agent's request, so its AWS call must neither delay nor
break it. Every hook therefore hands the call to a single module-level pool (a burst of feedback
must not become a burst of threads). Calls of one hook for one session run in the order they were
made (a consumer must not see "done" before "thinking"); different sessions and hooks run in
parallel. ``flush``/``close`` let short-lived processes (Lambda, scripts, tests) wait for sends.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections import Counter, deque
from collections.abc import Callable, Hashable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from ..fork_safety import after_fork_in_child
from ._aws import clear_clients
from .contract import ACTION_ARGUMENT, OriginalFunc, call_original

__all__ = ["ACTION_ARGUMENT", "DispatchingHook", "call_original", "close", "flush", "submit"]

logger = logging.getLogger(__name__)

#: Sends in flight at once across every hook of the process.
MAX_WORKERS = 4

_LOCK = threading.Lock()  # guards _pool, _pending and _lanes
_pool: ThreadPoolExecutor | None = None
_pending: set[Future[Any]] = set()


@dataclass
class _Task:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    future: Future[Any] = field(default_factory=Future)


_lanes: dict[Hashable, deque[_Task]] = {}
#: Every hook built so far (weakly): a forked child resets their locks and in-flight sends.
_hooks: weakref.WeakSet[DispatchingHook] = weakref.WeakSet()


def _forget_in_child() -> None:
    """A forked child inherits the pool without its threads and the parent's queued sends, which the
    parent still makes: the child starts with a pool, lanes and locks of its own (see fork_safety)."""
    global _LOCK, _pool, _pending, _lanes
    _LOCK = threading.Lock()
    _pool, _pending, _lanes = None, set(), {}
    for hook in list(_hooks):
        hook._lock = threading.Lock()
        hook._pending = set()


after_fork_in_child(_forget_in_child)


def _get_pool() -> ThreadPoolExecutor:
    global _pool
    with _LOCK:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="msm-aws-hook")
        return _pool


def submit(key: Hashable, fn: Callable[..., Any], *args: Any) -> Future[Any]:
    """Queue ``fn(*args)`` behind earlier work with the same ``key``; the future settles when it ran."""
    task = _Task(fn, args)
    with _LOCK:
        _pending.add(task.future)
        lane = _lanes.get(key)
        start = lane is None
        if lane is None:
            lane = _lanes[key] = deque()
        lane.append(task)
    task.future.add_done_callback(_forget)
    if start:
        _start(key, lane)
    return task.future


def _start(key: Hashable, lane: deque[_Task]) -> None:
    while True:
        pool = _get_pool()
        try:
            pool.submit(_drain, key, lane)
            return
        except RuntimeError as exc:
            with _LOCK:
                replaced = _pool is not pool
            if replaced:
                continue  # close() retired this pool meanwhile; the next call builds a new one
            _abandon(key, lane, exc)  # the interpreter is shutting down: no thread will run it
            return


def _drain(key: Hashable, lane: deque[_Task]) -> None:
    while True:
        with _LOCK:
            if not lane:
                if _lanes.get(key) is lane:
                    del _lanes[key]
                return
            task = lane.popleft()
        if not task.future.set_running_or_notify_cancel():
            continue
        try:
            result = task.fn(*task.args)
        except BaseException as exc:
            task.future.set_exception(exc)
        else:
            task.future.set_result(result)


def _abandon(key: Hashable, lane: deque[_Task], exc: BaseException) -> None:
    with _LOCK:
        tasks = list(lane)
        lane.clear()
        if _lanes.get(key) is lane:
            del _lanes[key]
    for task in tasks:
        if task.future.set_running_or_notify_cancel():
            task.future.set_exception(exc)
    logger.error("hook dispatch stopped, %d queued send(s) dropped: %s", len(tasks), exc)


def _forget(future: Future[Any]) -> None:
    with _LOCK:
        _pending.discard(future)


def flush(timeout: float | None = None) -> bool:
    """Wait until every send queued so far (by any hook) has finished; False if ``timeout`` expired."""
    with _LOCK:
        pending = set(_pending)
    if not pending:
        return True
    _, not_done = wait(pending, timeout=timeout)
    return not not_done


def close(timeout: float | None = None) -> bool:
    """Flush, stop the pool, drop the cached clients (both come back on next use).

    Returns False when ``timeout`` expired: sends still queued are then cancelled (and logged).
    """
    global _pool
    done = flush(timeout)
    with _LOCK:
        pool, _pool = _pool, None
        cancelled = [task for lane in _lanes.values() for task in lane] if not done else []
        if not done:
            for lane in _lanes.values():
                lane.clear()
            _lanes.clear()
    for task in cancelled:
        task.future.cancel()
    if cancelled:
        logger.warning("close timed out: %d queued hook send(s) cancelled", len(cancelled))
    if pool is not None:
        pool.shutdown(wait=done, cancel_futures=not done)
    clear_clients()
    return done


class DispatchingHook:
    """Base of the AWS hooks: runs the original operation, then queues the AWS work for it.

    Subclasses implement :meth:`_schedule` (in the caller's thread, cheap: decide what to send and
    snapshot it) and pass the part that talks to AWS or MongoDB to :meth:`_dispatch` (in the pool).
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._pending: set[Future[Any]] = set()
        self._counts: Counter[str] = Counter()
        self._closed = False
        _hooks.add(self)

    def __call__(self, original_func: OriginalFunc, action: str, session_id: str, /, **kwargs: Any) -> Any:
        """The hook contract (:mod:`.contract`): run the operation, then queue the AWS work for it."""
        result = call_original(original_func, action, kwargs)
        try:
            self._schedule(action, session_id, kwargs)
        except Exception:
            # The operation succeeded: its result must reach the caller whatever went wrong here.
            self._count("failed")
            logger.exception(
                "session_id=<%s> | hook=<%s> | action=<%s> | could not queue the send", session_id, self._name, action
            )
        return result

    def _schedule(self, action: str, session_id: str, kwargs: Mapping[str, Any]) -> None:
        raise NotImplementedError

    def _dispatch(self, session_id: str, operation: str, fn: Callable[..., None], *args: Any) -> None:
        if self._closed:
            self._count("skipped")
            logger.warning(
                "session_id=<%s> | hook=<%s> | hook is closed, %s not sent", session_id, self._name, operation
            )
            return
        future = submit((id(self), session_id), self._run, session_id, operation, fn, *args)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._forget)

    def _run(self, session_id: str, operation: str, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:
            self._count("failed")
            if _is_aws_error(exc):
                # An answer from AWS (or no answer): the message says it all, a traceback adds noise.
                logger.error(
                    "session_id=<%s> | hook=<%s> | operation=<%s> | AWS call failed: %s: %s",
                    session_id,
                    self._name,
                    operation,
                    type(exc).__name__,
                    exc,
                )
            else:
                logger.exception(
                    "session_id=<%s> | hook=<%s> | operation=<%s> | AWS call failed", session_id, self._name, operation
                )

    def _forget(self, future: Future[Any]) -> None:
        with self._lock:
            self._pending.discard(future)

    def _count(self, outcome: str) -> None:
        with self._lock:
            self._counts[outcome] += 1

    @property
    def stats(self) -> dict[str, int]:
        """Outcomes so far: ``sent``, ``failed``, ``skipped`` (nothing to send), ``gone`` (WebSocket)."""
        with self._lock:
            return dict(self._counts)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait for this hook's queued sends; False if ``timeout`` (seconds) expired first."""
        with self._lock:
            pending = set(self._pending)
        if not pending:
            return True
        _, not_done = wait(pending, timeout=timeout)
        return not not_done

    def close(self, timeout: float | None = None) -> bool:
        """Flush, then stop sending: later operations still run, their sends are skipped and logged."""
        done = self.flush(timeout)
        self._closed = True
        return done


def _is_aws_error(exc: Exception) -> bool:
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        return False
    return isinstance(exc, BotoCoreError | ClientError)
