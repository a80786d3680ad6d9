"""``MongoDBConnectionPool``: one ``MongoClient`` per process, safe under threads, no leaked secrets.

``MongoClient`` connects lazily, so configuration and stats are tested without a server; the
tests that need one use the session's real mongod.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.errors import InvalidOperation

from mongodb_session_manager import MongoDBConnectionPool
from mongodb_session_manager.mongodb_connection_pool import DEFAULT_CLIENT_OPTIONS

SECRET_URI = "mongodb://alice:s3cr3t-pa55@db1.internal:27017,db2.internal:27018/app?replicaSet=rs0&authSource=admin"
#: A URI whose server is never contacted (clients connect lazily, and these tests never query it).
LAZY_URI = "mongodb://127.0.0.1:9/?connect=false"


def test_initialize_returns_one_shared_client_with_the_documented_defaults() -> None:
    client = MongoDBConnectionPool.initialize(LAZY_URI)
    assert isinstance(client, MongoClient)
    assert MongoDBConnectionPool.get_client() is client
    assert MongoDBConnectionPool.initialize(LAZY_URI) is client, "same URI and options: same client"
    pool = client.options.pool_options
    assert pool.max_pool_size == 100 == DEFAULT_CLIENT_OPTIONS["maxPoolSize"]
    assert pool.min_pool_size == 10
    assert client.options.server_selection_timeout == 10
    assert client.options.retry_writes and client.options.retry_reads


def test_options_override_the_defaults() -> None:
    client = MongoDBConnectionPool.initialize(LAZY_URI, maxPoolSize=5, minPoolSize=0)
    assert client.options.pool_options.max_pool_size == 5
    assert client.options.pool_options.min_pool_size == 0


def test_new_configuration_replaces_and_closes_the_old_client() -> None:
    first = MongoDBConnectionPool.initialize(LAZY_URI, appname="first")
    second = MongoDBConnectionPool.initialize(LAZY_URI, appname="second")
    assert second is not first
    assert MongoDBConnectionPool.get_client() is second
    with pytest.raises(InvalidOperation):
        first.admin.command("ping")


def test_get_client_before_initialize_is_a_clear_error() -> None:
    assert not MongoDBConnectionPool.is_initialized()
    with pytest.raises(RuntimeError, match="initialize"):
        MongoDBConnectionPool.get_client()
    with pytest.raises(ValueError):
        MongoDBConnectionPool.initialize("")


def test_instantiating_returns_the_singleton_whose_methods_are_the_class_methods() -> None:
    """The original library's ``MongoDBConnectionPool()`` returned its singleton; so does this one."""
    pool = MongoDBConnectionPool()
    assert pool is MongoDBConnectionPool()
    client = pool.initialize(LAZY_URI)
    assert pool.get_client() is client is MongoDBConnectionPool.get_client()
    pool.close()
    assert not MongoDBConnectionPool.is_initialized()


def test_close_closes_and_forgets_the_client() -> None:
    client = MongoDBConnectionPool.initialize(LAZY_URI)
    MongoDBConnectionPool.close()
    MongoDBConnectionPool.close()  # idempotent
    assert not MongoDBConnectionPool.is_initialized()
    with pytest.raises(InvalidOperation):
        client.admin.command("ping")
    assert MongoDBConnectionPool.initialize(LAZY_URI) is not client


def test_concurrent_initialize_creates_exactly_one_client() -> None:
    threads_count = 16
    barrier = threading.Barrier(threads_count)
    results: list[MongoClient[Any]] = []
    lock = threading.Lock()

    def init() -> None:
        barrier.wait()
        client = MongoDBConnectionPool.initialize(LAZY_URI, appname="threads")
        with lock:
            results.append(client)

    threads = [threading.Thread(target=init) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == threads_count
    assert len({id(client) for client in results}) == 1
    assert results[0] is MongoDBConnectionPool.get_client()


def test_initialize_can_be_reentered_from_the_thread_holding_the_lock() -> None:
    """Code running under the pool's lock (a callback, a nested factory) may call it again."""
    outcome: list[Any] = []

    def nested() -> None:
        with MongoDBConnectionPool._lock:
            outer = MongoDBConnectionPool.initialize(LAZY_URI)
            inner = MongoDBConnectionPool.initialize(LAZY_URI)
            outcome.append((outer, inner, MongoDBConnectionPool.get_pool_stats()))

    worker = threading.Thread(target=nested, daemon=True)
    worker.start()
    worker.join(60)  # a deadlock guard, not a timing assertion
    assert not worker.is_alive(), "re-entering initialize deadlocked"
    outer, inner, stats = outcome[0]
    assert outer is inner and stats["initialized"]


def test_pool_stats_never_contain_credentials() -> None:
    assert MongoDBConnectionPool.get_pool_stats() == {"status": "not_initialized", "initialized": False}
    MongoDBConnectionPool.initialize(
        SECRET_URI,
        connect=False,
        username="bob",
        password="kw-pa55word",
        authMechanismProperties={"AWS_SESSION_TOKEN": "tok-123"},
    )
    stats = MongoDBConnectionPool.get_pool_stats()
    rendered = repr(stats)
    for secret in ("s3cr3t-pa55", "alice", "bob", "kw-pa55word", "tok-123"):
        assert secret not in rendered, secret
    assert stats["hosts"] == ["db1.internal:27017", "db2.internal:27018"]
    assert stats["initialized"] and stats["max_pool_size"] == 100 and stats["min_pool_size"] == 10


def test_pool_stats_of_an_srv_uri_need_no_dns() -> None:
    """An SRV URI is only resolved when the client connects; stats report it as given."""
    MongoDBConnectionPool.initialize(LAZY_URI)
    # Swap in an SRV string without building a client for it (constructing one would resolve DNS).
    with MongoDBConnectionPool._lock:
        MongoDBConnectionPool._connection_string = "mongodb+srv://carol:hunter2@cluster0.invalid/?retryWrites=true"
        stats = MongoDBConnectionPool.get_pool_stats()
    assert stats["hosts"] == ["cluster0.invalid"]
    assert "hunter2" not in repr(stats) and "carol" not in repr(stats)


def test_the_pooled_client_talks_to_the_real_server(mongo_uri: str, db_name: str) -> None:
    client = MongoDBConnectionPool.initialize(mongo_uri, minPoolSize=0)
    client[db_name]["c"].insert_one({"_id": 1})
    assert MongoDBConnectionPool.get_client()[db_name]["c"].count_documents({}) == 1
    client.drop_database(db_name)


def test_a_small_max_pool_size_lowers_the_default_minimum() -> None:
    client = MongoDBConnectionPool.initialize(LAZY_URI, maxPoolSize=5)
    assert client.options.pool_options.max_pool_size == 5
    assert client.options.pool_options.min_pool_size == 5


def test_a_failed_reinitialisation_keeps_the_working_client() -> None:
    first = MongoDBConnectionPool.initialize(LAZY_URI)
    with pytest.raises(ValueError):
        MongoDBConnectionPool.initialize(LAZY_URI, maxPoolSize=-1)
    assert MongoDBConnectionPool.get_client() is first
    first.admin  # noqa: B018 - still usable (a closed client would raise InvalidOperation on use)


# ---- the pool owns the client's lifetime (issue 12) and tells the truth (issue 15) -------------------


def test_acquire_counts_users_and_the_last_release_closes_the_client() -> None:
    first = MongoDBConnectionPool.acquire(LAZY_URI)
    second = MongoDBConnectionPool.acquire(LAZY_URI)
    assert first is second and MongoDBConnectionPool.user_count() == 2
    MongoDBConnectionPool.release(first)
    assert MongoDBConnectionPool.is_initialized() and MongoDBConnectionPool.user_count() == 1
    MongoDBConnectionPool.release(first)
    assert not MongoDBConnectionPool.is_initialized()
    with pytest.raises(InvalidOperation):
        first.admin.command("ping")
    MongoDBConnectionPool.release(first)  # an extra release of a client the pool forgot does nothing


def test_release_of_a_replaced_client_never_closes_its_successor() -> None:
    old = MongoDBConnectionPool.acquire(LAZY_URI, appname="old")
    new = MongoDBConnectionPool.acquire(LAZY_URI, appname="new")  # re-initialised: the old one is closed
    MongoDBConnectionPool.release(old)
    assert MongoDBConnectionPool.get_client() is new
    assert MongoDBConnectionPool.user_count(new) == 1


def test_stats_say_connected_only_for_a_server_that_answers(mongo_uri: str) -> None:
    MongoDBConnectionPool.initialize(LAZY_URI)  # nothing listens on port 9
    stats = MongoDBConnectionPool.get_pool_stats(ping_timeout=0.5)
    assert stats["status"] == "unreachable" and stats["reachable"] is False
    assert stats["error"] in {"ServerSelectionTimeoutError", "NetworkTimeout", "ExecutionTimeout", "AutoReconnect"}
    MongoDBConnectionPool.initialize(mongo_uri)
    stats = MongoDBConnectionPool.get_pool_stats()
    assert stats["status"] == "connected" and stats["reachable"] is True


def test_unknown_options_are_a_type_error_naming_them() -> None:
    with pytest.raises(TypeError, match="application_name"):
        MongoDBConnectionPool.initialize(LAZY_URI, application_name="x")
    assert not MongoDBConnectionPool.is_initialized()


def test_the_handshake_names_this_library(mongo_uri: str) -> None:
    """The server sees ``mongodb-session-manager`` in the client metadata of the pool's connections."""
    client = MongoDBConnectionPool.initialize(mongo_uri, appname="driver-info-test")
    client.admin.command("ping")
    ops = client.admin.aggregate(
        [
            {"$currentOp": {"allUsers": True, "idleConnections": True, "localOps": True}},
            {"$match": {"clientMetadata.application.name": "driver-info-test"}},
            {"$project": {"driver": "$clientMetadata.driver.name"}},
        ]
    )
    names = {op.get("driver") for op in ops}
    assert names and all("mongodb-session-manager" in str(name) for name in names), names
