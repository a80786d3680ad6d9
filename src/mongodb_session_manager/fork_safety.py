"""What a forked child must not inherit from its parent: module locks, worker pools, cached clients.

gunicorn ``--preload``, Celery's prefork pool and ``multiprocessing``'s fork start method copy the
parent's memory into each worker, but only the thread that forked. A lock another thread held at
that moment stays locked in the child for ever; a thread pool object arrives without its threads, so
work handed to it waits for ever; a cached boto3 client shares its sockets with the parent. Each
module that keeps such state registers what the child starts afresh with :func:`after_fork_in_child`.
pymongo resets its own client after a fork (and warns that a client opened before one is not fully
fork-safe); the library's clients need nothing here.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any


def after_fork_in_child(reset: Callable[[], None]) -> None:
    """Run ``reset`` in every child forked from now on (nothing on platforms without ``fork``)."""
    if hasattr(os, "register_at_fork"):  # POSIX
        os.register_at_fork(after_in_child=reset)


def renew_in_child(owner: Any, name: str, make: Callable[[], Any]) -> None:
    """In every child forked from now on, ``owner.name`` (a module or a class) is a new ``make()``: a
    fresh lock for one a parent thread may have held at the fork, an empty cache for a shared one."""
    after_fork_in_child(lambda: setattr(owner, name, make()))
