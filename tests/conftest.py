"""Shared fixtures: a real mongod (started once per test session) and a fresh database per test.

With ``MONGODB_CONNECTION_STRING`` set, tests use that server instead of starting one.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pymongo import MongoClient

from mongodb_session_manager import MongoDBSessionManager
from mongodb_session_manager.embedded import MongoReplicaSet
from mongodb_session_manager.mongodb_connection_pool import MongoDBConnectionPool
from mongodb_session_manager.mongodb_session_factory import close_global_factory
from mongodb_session_manager.mongodb_session_repository import MongoDBSessionRepository, forget_indexes


@pytest.fixture(scope="session")
def mongo_uri() -> Iterator[str]:
    external = os.environ.get("MONGODB_CONNECTION_STRING")
    if external:
        yield external
        return
    rs = MongoReplicaSet(members=1, die_with_parent=True)  # gone even if pytest itself is killed
    rs.start()
    try:
        yield rs.connection_string
    finally:
        rs.stop()


@pytest.fixture(scope="session")
def mongo_client(mongo_uri: str) -> Iterator[MongoClient[Any]]:
    client: MongoClient[Any] = MongoClient(mongo_uri, serverSelectionTimeoutMS=10_000)
    yield client
    client.close()


@pytest.fixture
def db_name(mongo_client: MongoClient[Any]) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    yield name
    mongo_client.drop_database(name)


@pytest.fixture
def collection(mongo_client: MongoClient[Any], db_name: str) -> Any:
    return mongo_client[db_name]["sessions"]


@pytest.fixture
def repo(mongo_client: MongoClient[Any], db_name: str) -> Iterator[MongoDBSessionRepository]:
    repository = MongoDBSessionRepository(client=mongo_client, database_name=db_name, collection_name="sessions")
    yield repository
    repository.close()


@pytest.fixture
def default_session_id() -> str:
    """The session id ``make_manager`` uses when none is given (test folders override it)."""
    return "test-session"


@pytest.fixture
def make_manager(
    mongo_client: MongoClient[Any], db_name: str, default_session_id: str
) -> Iterator[Callable[..., MongoDBSessionManager]]:
    """Build managers on the shared client and the test's database; all are closed afterwards."""
    managers: list[MongoDBSessionManager] = []

    def make(session_id: str | None = None, **kwargs: Any) -> MongoDBSessionManager:
        kwargs.setdefault("client", mongo_client)
        manager = MongoDBSessionManager(
            session_id or default_session_id, database_name=db_name, collection_name="sessions", **kwargs
        )
        managers.append(manager)
        return manager

    yield make
    for manager in managers:
        manager.close()


@pytest.fixture(autouse=True)
def _reset_process_state() -> Iterator[None]:
    yield
    close_global_factory()
    MongoDBConnectionPool.close()
    forget_indexes()
