"""The failed-login lockout, kept in MongoDB so every worker process and instance shares it.

Why not the ``limits`` package's MongoDB storage (which the issue suggested): its asyncio storage
needs Motor, which MongoDB deprecated in favour of PyMongo's own async API that this viewer uses,
and its synchronous storage would block the event loop and open a second, unconfigured client
(no ``maxTimeMS``, no pool limits). The lockout needs two operations, so it is this small module:
one document per failed attempt, ``{key, at, expires_at}``, removed by a TTL index once it can no
longer count, and a sliding window read as "the newest ``max_failures`` attempts of this client".

Query shapes are built by the pure functions below (unit-tested without a database), in the
style of :mod:`mongodb_session_manager.documents`; :class:`LoginLockout` only runs them.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection

logger = logging.getLogger(__name__)

KEY = "key"
AT = "at"
EXPIRES_AT = "expires_at"
#: The sliding-window read: newest attempts of one client first.
WINDOW_INDEX = [(KEY, ASCENDING), (AT, DESCENDING)]
WINDOW_INDEX_NAME = "key_1_at_-1"
TTL_INDEX_NAME = "expires_at_ttl"


def failure_document(key: str, at: datetime, window_seconds: float) -> dict[str, Any]:
    """One failed attempt; it stops counting (and the TTL monitor deletes it) after the window."""
    return {KEY: key, AT: at, EXPIRES_AT: at + timedelta(seconds=window_seconds)}


def recent_failures_filter(key: str, now: datetime, window_seconds: float) -> dict[str, Any]:
    """Attempts of ``key`` still inside the window (the TTL monitor only runs once a minute)."""
    return {KEY: key, AT: {"$gt": now - timedelta(seconds=window_seconds)}}


RECENT_FAILURES_SORT = [(AT, DESCENDING)]
RECENT_FAILURES_PROJECTION = {"_id": 0, AT: 1}


def retry_after(newest_first: list[datetime], max_failures: int, window_seconds: float, now: datetime) -> int | None:
    """Seconds until the client may try again, or None: the window frees when its oldest counting attempt ages out."""
    if len(newest_first) < max_failures:
        return None
    oldest_counting = newest_first[max_failures - 1]
    if oldest_counting.tzinfo is None:
        oldest_counting = oldest_counting.replace(tzinfo=UTC)
    remaining = (oldest_counting + timedelta(seconds=window_seconds) - now).total_seconds()
    return max(1, math.ceil(remaining))


class LoginLockout:
    """``retry_after(key)`` before checking a password, ``record_failure(key)`` after a wrong one.

    A locked-out client gets 429 for right and wrong passwords alike, so guessing cannot go on at
    speed; other clients are unaffected because the count is per client key.
    """

    def __init__(self, collection: AsyncCollection[dict[str, Any]], max_failures: int, window_seconds: float) -> None:
        self.collection = collection
        self.max_failures = max_failures
        self.window_seconds = window_seconds
        self._indexed = False

    async def ensure_indexes(self) -> None:
        if self._indexed:
            return
        await self.collection.create_index(WINDOW_INDEX, name=WINDOW_INDEX_NAME)
        await self.collection.create_index(EXPIRES_AT, name=TTL_INDEX_NAME, expireAfterSeconds=0)
        self._indexed = True

    async def _recent(self, key: str, now: datetime) -> list[datetime]:
        cursor = (
            self.collection.find(
                recent_failures_filter(key, now, self.window_seconds), projection=RECENT_FAILURES_PROJECTION
            )
            .sort(RECENT_FAILURES_SORT)
            .limit(self.max_failures)
        )
        return [row[AT] for row in await cursor.to_list()]

    async def retry_after(self, key: str) -> int | None:
        now = datetime.now(UTC)
        return retry_after(await self._recent(key, now), self.max_failures, self.window_seconds, now)

    async def record_failure(self, *keys: str) -> None:
        """One failed attempt, counted against each of ``keys`` (a device and its address)."""
        await self.ensure_indexes()
        now = datetime.now(UTC)
        await self.collection.insert_many([failure_document(key, now, self.window_seconds) for key in keys])

    async def failures(self, key: str) -> int:
        return len(await self._recent(key, datetime.now(UTC)))
