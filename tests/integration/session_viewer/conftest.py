"""Fixtures for the viewer API: a database seeded once per module by real agent loops, and apps on it.

The seeded database is read-only for the tests that use it, so it is shared within a module;
tests that need special documents use the per-test ``db_name`` database instead.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pymongo import MongoClient

from session_viewer.backend.config import Settings
from session_viewer.backend.main import create_app

from .seed import bulk_sessions, rich_sessions, seed

BACKEND_PASSWORD = "correct horse battery staple"
BULK_COUNT = 22
ENUM_FIELDS = "status,metadata.priority,metadata.channel,metadata.customer_name,metadata.vip"


@dataclass
class SeededDatabase:
    name: str
    passwords: dict[str, str]

    @property
    def total(self) -> int:
        return len(self.passwords)


def viewer_settings(mongo_uri: str, database: str, **overrides: Any) -> Settings:
    """Settings for a test app; nothing is read from a ``.env`` file."""
    values: dict[str, Any] = {
        "mongodb_connection_string": mongo_uri,
        "database_name": database,
        "collection_name": "sessions",
        "backend_password": BACKEND_PASSWORD,
        "allowed_origins_str": "http://localhost:8883",
        "min_pool_size": 0,
        "max_pool_size": 10,
        "enum_fields_str": ENUM_FIELDS,
        "enum_max_values": 5,
        "default_page_size": 20,
        "max_page_size": 100,
        "auth_max_failures": 5,
        "auth_window_seconds": 300,
        "serve_frontend": False,
        "log_level": "INFO",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture(scope="module")
def seeded(mongo_client: MongoClient[Any]) -> Iterator[SeededDatabase]:
    name = f"sv_{uuid.uuid4().hex[:12]}"
    passwords = seed(mongo_client, name, rich_sessions() + bulk_sessions(BULK_COUNT))
    yield SeededDatabase(name, passwords)
    mongo_client.drop_database(name)


AppFactory = Callable[..., AbstractContextManager[TestClient]]


@pytest.fixture
def make_api(mongo_uri: str) -> AppFactory:
    """``with make_api(database, **settings) as api:`` a started app (lifespan run) on ``database``."""

    def build(database: str, *, client: tuple[str, int] = ("203.0.113.7", 50000), **overrides: Any) -> TestClient:
        # The lockout lives in MongoDB: a collection of its own per app keeps tests independent.
        overrides.setdefault("lockout_collection_name", f"lockout_{uuid.uuid4().hex[:8]}")
        app = create_app(viewer_settings(mongo_uri, database, **overrides))
        return TestClient(app, client=client)

    return build


@pytest.fixture
def api(make_api: AppFactory, seeded: SeededDatabase) -> Iterator[TestClient]:
    with make_api(seeded.name) as client:
        yield client


GLOBAL = {"X-Backend-Password": BACKEND_PASSWORD}
