"""``MongoDBSessionManagerFactory`` and the global-factory helpers on the real mongod.

The point of the factory is a manager per request at no connection cost: every manager borrows
the one pooled client, opens no connection and creates no index after warm-up. Observed with
pymongo's connection-pool and command monitoring, never with timings.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from pymongo import MongoClient, monitoring
from pymongo.errors import InvalidOperation
from strands import Agent

import mongodb_session_manager
from mongodb_session_manager import (
    MongoDBConnectionPool,
    MongoDBSessionManager,
    MongoDBSessionManagerFactory,
    close_global_factory,
    get_global_factory,
    initialize_global_factory,
)
from mongodb_session_manager.errors import DatabaseUnavailableError, FactoryNotInitializedError
from mongodb_session_manager.mongodb_session_repository import MongoDBSessionRepository
from mongodb_session_manager.testing import ScriptedModel

SECRET_URI_USER, SECRET_URI_PASSWORD = "factory-user", "factory-pa55word"


class ConnectionCounter(monitoring.ConnectionPoolListener):
    """Counts pooled connections the client opens."""

    def __init__(self) -> None:
        self.created = 0
        self.lock = threading.Lock()

    def connection_created(self, event: monitoring.ConnectionCreatedEvent) -> None:
        with self.lock:
            self.created += 1

    # The remaining pool events are not needed here.
    def pool_created(self, event: Any) -> None: ...
    def pool_ready(self, event: Any) -> None: ...
    def pool_cleared(self, event: Any) -> None: ...
    def pool_closed(self, event: Any) -> None: ...
    def connection_ready(self, event: Any) -> None: ...
    def connection_closed(self, event: Any) -> None: ...
    def connection_check_out_started(self, event: Any) -> None: ...
    def connection_check_out_failed(self, event: Any) -> None: ...
    def connection_checked_out(self, event: Any) -> None: ...
    def connection_checked_in(self, event: Any) -> None: ...


class CommandNames(monitoring.CommandListener):
    def __init__(self) -> None:
        self.names: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.names.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None: ...
    def failed(self, event: monitoring.CommandFailedEvent) -> None: ...


def test_managers_share_the_pooled_client_and_open_no_connections(mongo_uri: str, db_name: str) -> None:
    connections, commands = ConnectionCounter(), CommandNames()
    factory = MongoDBSessionManagerFactory(
        mongo_uri,
        database_name=db_name,
        collection_name="sessions",
        minPoolSize=0,  # no background pool filling, so every connection counted is on demand
        event_listeners=[connections, commands],
    )
    try:
        assert factory.client is MongoDBConnectionPool.get_client()
        factory.create_session_manager("warm-up").close()  # first use: a connection, the indexes
        assert connections.created >= 1 and "createIndexes" in commands.names
        opened, commands.names = connections.created, []

        managers = [factory.create_session_manager(f"request-{n}") for n in range(50)]
        assert all(m.repository.client is factory.client for m in managers)
        assert connections.created == opened, "a manager per request opens no connection"
        assert set(commands.names) <= {"find", "insert"}, "and sends no index or handshake work"
        for manager in managers:
            manager.close()
        assert factory.client.admin.command("ping")["ok"] == 1, "closing managers leaves the shared client open"
    finally:
        factory.close()


def test_managers_use_the_factory_defaults_and_per_call_overrides(mongo_client: MongoClient[Any], db_name: str) -> None:
    factory = MongoDBSessionManagerFactory(
        client=mongo_client, database_name=db_name, collection_name="default", metadata_fields=["priority"]
    )
    default = factory.create_session_manager("s-default")
    other = factory.create_session_manager("s-other", collection_name="other")
    assert isinstance(default, MongoDBSessionManager)
    assert other.repository.collection.name == "other" and default.repository.collection.name == "default"
    agent = Agent(agent_id="a", model=ScriptedModel(["hi"]), session_manager=default, callback_handler=None)
    agent("hello")
    assert mongo_client[db_name]["default"].count_documents({"_id": "s-default"}) == 1
    assert mongo_client[db_name]["other"].count_documents({"_id": "s-other"}) == 1
    indexed = [tuple(spec["key"]) for spec in mongo_client[db_name]["default"].index_information().values()]
    assert (("metadata.priority", 1), ("created_at", -1), ("_id", 1)) in indexed, (
        "manager defaults from the factory apply to every manager"
    )


def test_overriding_the_client_per_call_is_refused(mongo_client: MongoClient[Any], db_name: str) -> None:
    factory = MongoDBSessionManagerFactory(client=mongo_client, database_name=db_name)
    for override in ({"client": mongo_client}, {"connection_string": "mongodb://elsewhere"}):
        with pytest.raises(ValueError, match="shares the factory's client"):
            factory.create_session_manager("s", **override)


def test_factory_needs_a_connection_string_or_a_client() -> None:
    with pytest.raises(ValueError, match="connection_string or a client"):
        MongoDBSessionManagerFactory()


def test_ensure_indexes_at_start_up(mongo_client: MongoClient[Any], db_name: str) -> None:
    MongoDBSessionManagerFactory(
        client=mongo_client, database_name=db_name, collection_name="sessions"
    ).ensure_indexes()
    keys = {tuple(spec["key"]) for spec in mongo_client[db_name]["sessions"].index_information().values()}
    assert {(("created_at", -1), ("_id", 1)), (("updated_at", -1), ("_id", 1))} <= keys


# ---- close: owned vs borrowed -------------------------------------------------------------------------


def test_a_factory_never_closes_a_borrowed_client(mongo_client: MongoClient[Any], db_name: str) -> None:
    factory = MongoDBSessionManagerFactory(client=mongo_client, database_name=db_name)
    factory.create_session_manager("s").close()
    factory.close()
    factory.close()
    assert mongo_client.admin.command("ping")["ok"] == 1
    with pytest.raises(RuntimeError, match="closed"):
        factory.create_session_manager("s")


def test_a_factory_closes_the_pooled_client_it_created(mongo_uri: str, db_name: str) -> None:
    factory = MongoDBSessionManagerFactory(mongo_uri, database_name=db_name, minPoolSize=0)
    client = factory.client
    factory.create_session_manager("s")
    factory.close()
    assert not MongoDBConnectionPool.is_initialized()
    with pytest.raises(InvalidOperation):
        client.admin.command("ping")


def test_closing_one_factory_leaves_the_shared_pool_open_for_another(mongo_uri: str, db_name: str) -> None:
    first = MongoDBSessionManagerFactory(mongo_uri, database_name=db_name, minPoolSize=0)
    second = MongoDBSessionManagerFactory(mongo_uri, database_name=db_name, minPoolSize=0)
    assert first.client is second.client
    first.close()
    second.create_session_manager("still-works").close()
    assert second.client.admin.command("ping")["ok"] == 1
    second.close()
    with pytest.raises(InvalidOperation):
        second.client.admin.command("ping")


def test_closing_a_stale_factory_never_closes_the_client_that_replaced_it(mongo_uri: str, db_name: str) -> None:
    stale = MongoDBSessionManagerFactory(mongo_uri, database_name=db_name, minPoolSize=0, appname="old")
    current = MongoDBSessionManagerFactory(mongo_uri, database_name=db_name, minPoolSize=0, appname="new")
    assert current.client is not stale.client  # new configuration: the pool replaced its client
    stale.close()
    current.create_session_manager("alive").close()
    assert MongoDBConnectionPool.get_client() is current.client
    current.close()


# ---- global factory ---------------------------------------------------------------------------------------


def test_global_factory_lifecycle(mongo_uri: str, db_name: str) -> None:
    with pytest.raises(FactoryNotInitializedError, match="initialize_global_factory"):
        get_global_factory()
    first = initialize_global_factory(mongo_uri, database_name=db_name, collection_name="sessions", minPoolSize=0)
    assert get_global_factory() is first
    manager = get_global_factory().create_session_manager("global")
    assert manager.repository.client is first.client

    second = initialize_global_factory(mongo_uri, database_name=db_name, collection_name="sessions", minPoolSize=0)
    assert get_global_factory() is second and second is not first
    with pytest.raises(RuntimeError, match="closed"):
        first.create_session_manager("x")
    second.create_session_manager("global").close()

    close_global_factory()
    close_global_factory()
    with pytest.raises(FactoryNotInitializedError):
        get_global_factory()


def test_connection_stats_never_contain_credentials(mongo_client: MongoClient[Any]) -> None:
    uri = f"mongodb://{SECRET_URI_USER}:{SECRET_URI_PASSWORD}@127.0.0.1:9/?connect=false"
    factory = MongoDBSessionManagerFactory(uri, database_name="d", collection_name="c")
    stats = factory.get_connection_stats()
    assert stats["database_name"] == "d" and stats["collection_name"] == "c"
    assert stats["max_pool_size"] == 100 and stats["hosts"] == ["127.0.0.1:9"]
    assert SECRET_URI_PASSWORD not in repr(stats) and SECRET_URI_USER not in repr(stats)
    assert stats["status"] == "unreachable" and stats["reachable"] is False  # nothing listens on port 9
    factory.close()
    borrowed = MongoDBSessionManagerFactory(client=mongo_client, database_name="d", collection_name="c")
    assert borrowed.get_connection_stats() == {
        "borrowed_client": True,
        "status": "connected",
        "reachable": True,
        "database_name": "d",
        "collection_name": "c",
    }


def test_package_root_exports_the_factory_api() -> None:
    for name in (
        "MongoDBSessionManagerFactory",
        "initialize_global_factory",
        "get_global_factory",
        "close_global_factory",
        "create_mongodb_session_manager",
        "MongoDBConnectionPool",
        "MongoDBSessionRepository",
        "MongoDBSessionManager",
    ):
        assert hasattr(mongodb_session_manager, name), name


@pytest.mark.parametrize("build", ["factory", "manager", "repository"])
def test_a_single_metadata_key_given_as_a_string_is_refused_not_split_into_letters(
    build: str, mongo_client: MongoClient[Any], db_name: str, collection: Any
) -> None:
    with pytest.raises(TypeError, match=r"metadata_fields must be a list .*\['customer'\]"):
        if build == "factory":
            MongoDBSessionManagerFactory(client=mongo_client, database_name=db_name, metadata_fields="customer")
        elif build == "manager":
            MongoDBSessionManager("s", client=mongo_client, database_name=db_name, metadata_fields="customer")
        else:
            MongoDBSessionRepository(client=mongo_client, database_name=db_name, metadata_fields="customer")
    assert not [name for name in collection.index_information() if name.startswith("metadata.")]


def test_ensure_indexes_on_a_dead_server_is_a_typed_error() -> None:
    factory = MongoDBSessionManagerFactory(
        "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=200", database_name="d", collection_name="c"
    )
    try:
        with pytest.raises(DatabaseUnavailableError):
            factory.ensure_indexes()
    finally:
        factory.close()


def test_options_in_the_connection_string_win_over_the_pools_defaults() -> None:
    factory = MongoDBSessionManagerFactory(
        "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=250&maxPoolSize=5&connect=false",
        database_name="d",
        collection_name="c",
    )
    try:
        assert factory.client.options.server_selection_timeout == 0.25  # not the pool's 10 s
        stats = factory.get_connection_stats()
        assert stats["max_pool_size"] == 5 and stats["min_pool_size"] == 0  # the default minimum of 10 dropped
    finally:
        factory.close()
