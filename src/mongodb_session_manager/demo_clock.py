"""A virtual clock for the demo: sessions that look like they happened over the past days.

Real agent loops run in milliseconds, so demo sessions seeded in one go would all share one second.
While :func:`virtual_time` is active, every timestamp the stack takes (Strands' session, agent and
message dataclasses, and :func:`mongodb_session_manager.documents.now` for ``updated_at`` and
feedback) comes from a :class:`DemoClock` that the seeder moves to "three days ago, 14:05" and
forward by a realistic pause between turns. Only the demo seeder uses this; it restores the real
clock when the block ends and is not meant for concurrent use.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, tzinfo

from strands.types import session as strands_session

from . import documents

#: How far each timestamp read moves the clock: the steps of one turn stay ordered and close together.
TICK = timedelta(milliseconds=850)


class DemoClock:
    """A monotonic UTC clock the caller sets and advances explicitly."""

    def __init__(self, start: datetime) -> None:
        self.current = start.astimezone(UTC)

    def set(self, moment: datetime) -> None:
        self.current = moment.astimezone(UTC)

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)

    def now(self, tz: tzinfo | None = None) -> datetime:
        self.current += TICK
        return self.current.astimezone(tz) if tz else self.current


@contextlib.contextmanager
def virtual_time(clock: DemoClock) -> Iterator[DemoClock]:
    """Route the timestamps of Strands' session types and of :mod:`documents` through ``clock``."""

    class ClockDatetime(datetime):
        """``datetime`` whose ``now`` reads the demo clock (Strands calls ``datetime.now(timezone.utc)``)."""

        @classmethod
        def now(cls, tz: tzinfo | None = None) -> datetime:  # type: ignore[override]
            return clock.now(tz)

    saved_datetime = strands_session.datetime
    saved_now = documents.now
    strands_session.datetime = ClockDatetime  # type: ignore[misc]
    documents.now = lambda: clock.now(UTC)  # type: ignore[assignment]
    try:
        yield clock
    finally:
        strands_session.datetime = saved_datetime  # type: ignore[misc]
        documents.now = saved_now  # type: ignore[assignment]
