"""Fixtures of the data-lifecycle tests: a TTL monitor that runs every second.

MongoDB's TTL monitor deletes expired documents once a minute by default; a test that observes a
real expiry sets ``ttlMonitorSleepSecs`` at runtime (an admin command, nothing shared is changed
on disk) and puts the previous value back afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pymongo import MongoClient


@pytest.fixture
def fast_ttl_monitor(mongo_client: MongoClient[Any]) -> Iterator[None]:
    previous = mongo_client.admin.command({"getParameter": 1, "ttlMonitorSleepSecs": 1})["ttlMonitorSleepSecs"]
    mongo_client.admin.command({"setParameter": 1, "ttlMonitorSleepSecs": 1})
    yield
    mongo_client.admin.command({"setParameter": 1, "ttlMonitorSleepSecs": previous})


@pytest.fixture
def default_session_id() -> str:
    return "lifecycle-session"
