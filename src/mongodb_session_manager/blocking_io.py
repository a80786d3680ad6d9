"""The library's bounded thread pool for blocking MongoDB calls made on behalf of an event loop.

pymongo's synchronous client blocks its caller; called from an ``async def`` service it would stall
every other request on the loop. Everything async in this library (the turn hooks, ``acreate``,
the ``a*`` feature twins) hands its blocking call to this pool instead. The pool is shared and
bounded, so a burst of requests queues here rather than starting a thread per request; nothing in
it is bound to an event loop, so it serves Strands' synchronous ``agent()`` (which runs its own
loop in another thread) just the same.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from .fork_safety import after_fork_in_child

T = TypeVar("T")

#: Threads for blocking MongoDB calls; the driver's own pool (maxPoolSize) bounds connections.
#: ``MSM_IO_THREADS`` overrides it (read when the pool is first used).
MAX_WORKERS = 32
ENV_THREADS = "MSM_IO_THREADS"

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None


def io_executor() -> ThreadPoolExecutor:
    """The shared pool, created on first use."""
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=pool_size(), thread_name_prefix="msm-io")
        return _executor


def _forget_in_child() -> None:
    """A forked child (gunicorn ``--preload``, multiprocessing's fork) inherits the pool object but
    none of its threads: work submitted there would wait forever. The child starts a pool of its own."""
    global _executor, _lock
    _executor = None
    _lock = threading.Lock()  # it may have been held by a parent thread at the fork


after_fork_in_child(_forget_in_child)


def pool_size() -> int:
    """``MSM_IO_THREADS`` if set to a positive integer, else :data:`MAX_WORKERS`; anything else is refused."""
    value = os.environ.get(ENV_THREADS, "").strip()
    if not value:
        return MAX_WORKERS
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{ENV_THREADS} must be a positive integer, got {value!r}")
    return int(value)


async def run_blocking(fn: Callable[..., T], *args: Any) -> T:
    """Run a blocking call off the event loop; its exception reaches the awaiting caller unchanged."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(io_executor(), functools.partial(fn, *args))
