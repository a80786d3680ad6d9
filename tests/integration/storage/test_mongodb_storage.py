"""What MongoDBStorage guarantees beyond the protocol: where keys live, fidelity, indexed reads, loops, errors."""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from pymongo import AsyncMongoClient, MongoClient, monitoring
from strands._async import run_async
from strands.types.exceptions import StorageError

from mongodb_session_manager.errors import (
    DatabaseUnavailableError,
    DocumentTooLargeError,
    InvalidIdentifierError,
    InvalidInputError,
    StorageBackendError,
    StorageKeyError,
)
from mongodb_session_manager.storage import MongoDBStorage

from .suite import GRAPH, HISTORY, LATEST, SID, STASH

SNAPSHOT = json.dumps(
    {"scope": "agent", "schema_version": "1.0", "data": {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}},
    ensure_ascii=False,
).encode()


class Commands(monitoring.CommandListener):
    """Every command sent (name, filter, documents returned), for round-trip and no-scan checks."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.returned: list[int] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:  # type: ignore[override]
        if event.command_name in ("find", "update", "delete", "aggregate"):
            self.sent.append((event.command_name, dict(event.command)))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        if event.command_name == "find":
            self.returned.append(len(event.reply["cursor"]["firstBatch"]))

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.fixture
def listener() -> Commands:
    return Commands()


@pytest_asyncio.fixture(loop_scope="function")
async def storage(mongo_uri: str, db_name: str, listener: Commands) -> AsyncIterator[MongoDBStorage]:
    client: MongoClient[Any] = MongoClient(mongo_uri, event_listeners=[listener])
    storage = MongoDBStorage(database_name=db_name, collection_name="sessions", client=client)
    yield storage
    await storage.aclose()  # on the test's loop, where its async client lives
    client.close()


async def test_latest_snapshot_is_a_readable_field_of_the_session_document(
    storage: MongoDBStorage, mongo_client: MongoClient[Any], db_name: str
) -> None:
    await storage.write(LATEST, SNAPSHOT)
    await storage.write(GRAPH, b'{"scope": "multiAgent"}')
    doc = mongo_client[db_name]["sessions"].find_one({"_id": SID})
    entry = doc["snapshots"]["agent"]["main"]
    assert entry["data"] == json.loads(SNAPSHOT) and entry["raw"] is None
    assert entry["message_count"] == 1 and entry["key"] == LATEST
    assert doc["snapshots"]["multiAgent"]["graph-1"]["data"] == {"scope": "multiAgent"}
    assert sorted(doc["snapshot_keys"]) == sorted([LATEST, GRAPH])
    # A complete session document: the viewer and the features find what they expect.
    assert doc["session_id"] == SID and len(doc["session_viewer_password"]) == 32
    assert doc["metadata"] == {} and doc["feedbacks"] == [] and doc["snapshot_format"] == "strands-snapshot-1.0"
    assert "agents" not in doc


async def test_history_and_other_keys_go_to_side_collections(
    storage: MongoDBStorage, mongo_client: MongoClient[Any], db_name: str
) -> None:
    await storage.write(HISTORY, SNAPSHOT)
    await storage.write(STASH, b"\x00raw")
    history = mongo_client[db_name]["sessions_snapshot_history"].find_one({"_id": HISTORY})
    assert history["session_id"] == SID and history["owner_id"] == "main" and history["data"] == json.loads(SNAPSHOT)
    kv = mongo_client[db_name]["sessions_storage"].find_one({"_id": STASH})
    assert kv["raw"] == b"\x00raw" and kv["data"] is None
    assert mongo_client[db_name]["sessions"].count_documents({}) == 0


async def test_non_canonical_json_keeps_its_exact_bytes(
    storage: MongoDBStorage, mongo_client: MongoClient[Any], db_name: str
) -> None:
    spaced = b'{"scope":  "agent", "n": 1e400}'
    await storage.write(LATEST, spaced)
    entry = mongo_client[db_name]["sessions"].find_one({"_id": SID})["snapshots"]["agent"]["main"]
    assert entry["raw"] == spaced and entry["data"] is None
    assert await storage.read(LATEST) == spaced


async def test_overwriting_a_snapshot_leaves_no_stale_search_tokens(
    storage: MongoDBStorage, mongo_client: MongoClient[Any], db_name: str
) -> None:
    # A guardrail redaction overwrites the latest snapshot: the redacted words must not stay at rest.
    await storage.write(LATEST, b'{"text": "my password is hunter2"}')
    await storage.write(LATEST, b'{"text": "[redacted]"}')
    doc = mongo_client[db_name]["sessions"].find_one({"_id": SID})
    assert "hunter2" not in doc["snapshot_tokens"] and "redacted" in doc["snapshot_tokens"]
    assert await storage.search("hunter2") == []
    await storage.delete(LATEST)
    doc = mongo_client[db_name]["sessions"].find_one({"_id": SID})
    assert doc["snapshot_keys"] == [] and doc["snapshot_tokens"] == [] and doc["snapshots"]["agent"] == {}


async def test_listing_history_is_one_indexed_query(storage: MongoDBStorage, listener: Commands) -> None:
    await storage.write(HISTORY, SNAPSHOT)
    await storage.write(LATEST, SNAPSHOT)
    listener.sent.clear()
    prefix = f"session/{SID}/scopes/agent/main/snapshots/immutable_history/"
    assert await storage.list(prefix) == [HISTORY]
    assert [name for name, _ in listener.sent] == ["find"]
    assert listener.sent[0][1]["filter"] == {"_id": {"$gte": prefix, "$lt": prefix[:-1] + "0"}}
    listener.sent.clear()
    assert await storage.list("context/") == []
    assert len(listener.sent) == 1  # only the key/value collection can hold context/ keys


async def test_search_reads_only_entries_sharing_a_token(storage: MongoDBStorage, listener: Commands) -> None:
    for i in range(30):
        await storage.write(f"notes/n{i}.txt", f"unrelated words number {i}".encode())
    await storage.write("notes/match.txt", b"the zebra crossing")
    listener.returned.clear()
    results = await storage.search("zebra")
    assert [(r.key, r.score) for r in results] == [("notes/match.txt", 1)]
    assert sum(listener.returned) == 1  # the 30 other entries were never sent back


def test_native_async_client_on_its_loop_and_thread_fallback_elsewhere(mongo_uri: str, db_name: str) -> None:
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_uri)
    storage = MongoDBStorage(database_name=db_name, collection_name="sessions", client=client)

    async def app() -> bytes | None:
        await storage.write(LATEST, SNAPSHOT)  # native: binds the client to this loop
        assert client._loop is asyncio.get_running_loop()
        # Strands' sync bridge (a fresh loop in a worker thread) must not touch the bound client.
        run_async(lambda: storage.write(STASH, b"from the bridge"))
        return await storage.read(STASH)

    assert asyncio.run(app()) == b"from the bridge"
    # The application loop is gone; a later asyncio.run still works (borrowed client: thread path).
    assert asyncio.run(storage.read(LATEST)) == SNAPSHOT
    storage.close()


async def test_concurrent_first_writes_of_one_session_both_land(storage: MongoDBStorage) -> None:
    keys = [f"session/race/scopes/agent/a{i}/snapshots/snapshot_latest.json" for i in range(8)]
    await asyncio.gather(*(storage.write(k, b'{"i": 1}') for k in keys))
    assert await storage.list("session/race/") == sorted(keys)


async def test_ids_that_are_not_field_names_still_work(storage: MongoDBStorage) -> None:
    key = "session/s.1/scopes/agent/a.b$c%d/snapshots/snapshot_latest.json"
    await storage.write(key, SNAPSHOT)
    assert await storage.read(key) == SNAPSHOT
    assert await storage.list("session/s.1/") == [key]


async def test_invalid_key_is_both_a_storage_and_an_input_error(storage: MongoDBStorage) -> None:
    with pytest.raises(StorageError) as caught:
        await storage.write("a/../b", b"x")
    assert isinstance(caught.value, InvalidInputError)


@pytest.mark.parametrize("call", ["delete_session_keys", "update_session_document", "delete_session_document"])
@pytest.mark.parametrize("hostile", [{"$ne": None}, {"$exists": True}, None, ""])
async def test_maintenance_calls_refuse_a_session_id_that_would_match_other_sessions(
    storage: MongoDBStorage, mongo_client: MongoClient[Any], db_name: str, call: str, hostile: Any
) -> None:
    await storage.write(LATEST, SNAPSHOT)
    await storage.write(HISTORY, SNAPSHOT)
    await storage.write(STASH, b"kept")
    args = (hostile, {"$set": {"x": 1}}) if call == "update_session_document" else (hostile,)
    with pytest.raises(InvalidIdentifierError):
        await getattr(storage, call)(*args)
    db = mongo_client[db_name]
    assert [db[name].count_documents({}) for name in ("sessions", "sessions_snapshot_history", "sessions_storage")] == [
        1,
        1,
        1,
    ], "nothing of another session was touched"


async def test_data_that_is_not_bytes_and_keys_that_are_not_utf8_are_refused(storage: MongoDBStorage) -> None:
    with pytest.raises(TypeError, match="must be bytes"):
        await storage.write(STASH, 5)  # type: ignore[arg-type]  # bytes(5) would store five zero bytes
    with pytest.raises(StorageKeyError, match="UTF-8"):
        await storage.write("kv/\ud800", b"x")
    with pytest.raises(StorageKeyError, match="UTF-8"):
        await storage.list("kv/\ud800")
    with pytest.raises(TypeError, match="must be a string"):
        await storage.search(5)  # type: ignore[arg-type]
    assert await storage.list("kv/\U0010ffff") == []  # the last code point is a valid prefix
    assert await storage.read(STASH) is None


async def test_unreachable_server_is_a_typed_storage_error(db_name: str) -> None:
    storage = MongoDBStorage(
        "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=200&directConnection=true", db_name, "sessions"
    )
    with pytest.raises(StorageBackendError) as caught:
        await storage.read(LATEST)
    assert isinstance(caught.value, StorageError)
    assert isinstance(caught.value.__cause__, DatabaseUnavailableError)
    await storage.aclose()


async def test_a_snapshot_past_16_mb_is_refused_and_the_stored_one_kept(storage: MongoDBStorage) -> None:
    await storage.write(LATEST, SNAPSHOT)
    huge = json.dumps({"data": {"messages": [{"text": "word " * 3_500_000}]}}).encode()  # ~17.5 MB
    with pytest.raises(StorageBackendError) as caught:
        await storage.write(LATEST, huge)
    assert isinstance(caught.value.__cause__, DocumentTooLargeError)
    assert await storage.read(LATEST) == SNAPSHOT


def test_an_owned_async_client_follows_a_new_loop_a_bounded_number_of_times(mongo_uri: str, db_name: str) -> None:
    storage = MongoDBStorage(mongo_uri, db_name, "sessions")
    native: list[AsyncMongoClient[Any] | None] = []

    async def one_call() -> None:
        await storage.write(STASH, b"x")
        native.append(storage._shared._async)

    for _ in range(6):
        asyncio.run(one_call())
    # The first loop and three more got a native client (each closed when its loop ended); later
    # loops use the pooled sync client.
    assert len({id(c) for c in native if c is not None}) == 4
    assert native[4:] == [None, None]
    assert asyncio.run(storage.read(STASH)) == b"x"
    storage.close()


class Pools(monitoring.ConnectionPoolListener):
    """How many connection pools were opened and closed (a client closes its pools when it closes)."""

    def __init__(self) -> None:
        self.created = 0
        self.closed = 0

    def pool_created(self, event: monitoring.PoolCreatedEvent) -> None:
        self.created += 1

    def pool_closed(self, event: monitoring.PoolClosedEvent) -> None:
        self.closed += 1

    def pool_ready(self, event: monitoring.PoolReadyEvent) -> None:
        pass

    def pool_cleared(self, event: monitoring.PoolClearedEvent) -> None:
        pass

    def connection_created(self, event: monitoring.ConnectionCreatedEvent) -> None:
        pass

    def connection_ready(self, event: monitoring.ConnectionReadyEvent) -> None:
        pass

    def connection_closed(self, event: monitoring.ConnectionClosedEvent) -> None:
        pass

    def connection_check_out_started(self, event: monitoring.ConnectionCheckOutStartedEvent) -> None:
        pass

    def connection_check_out_failed(self, event: monitoring.ConnectionCheckOutFailedEvent) -> None:
        pass

    def connection_checked_out(self, event: monitoring.ConnectionCheckedOutEvent) -> None:
        pass

    def connection_checked_in(self, event: monitoring.ConnectionCheckedInEvent) -> None:
        pass


def _storage_with_pools(mongo_uri: str, db_name: str) -> tuple[MongoDBStorage, MongoClient[Any], Pools]:
    # The owned async client is built from the borrowed sync client's settings, listeners included.
    pools = Pools()
    client: MongoClient[Any] = MongoClient(mongo_uri, event_listeners=[pools])
    client.admin.command("ping")
    opened = pools.created  # the sync client's own pool
    storage = MongoDBStorage(database_name=db_name, collection_name="sessions", client=client)
    pools.created -= opened
    return storage, client, pools


def test_an_owned_async_client_is_closed_when_its_loop_ends(mongo_uri: str, db_name: str) -> None:
    storage, client, pools = _storage_with_pools(mongo_uri, db_name)
    for run in range(1, 3):  # a start-up check, then the application: neither closes the storage
        asyncio.run(storage.write(STASH, b"x"))
        gc.collect()
        # Closed on its own loop as asyncio.run shut the loop down, not left to the garbage collector.
        assert (pools.created, pools.closed) == (run, run)
    storage.close()
    client.close()


def test_close_closes_the_async_client_on_its_idle_loop(mongo_uri: str, db_name: str) -> None:
    storage, client, pools = _storage_with_pools(mongo_uri, db_name)
    loop = asyncio.new_event_loop()  # an application's loop it keeps between calls
    try:
        loop.run_until_complete(storage.write(STASH, b"x"))
        assert (pools.created, pools.closed) == (1, 0)
        storage.close()
        assert pools.closed == 1
        # Closed means closed for that loop too: the next call there binds a new client.
        assert loop.run_until_complete(storage.read(STASH)) == b"x"
        loop.run_until_complete(storage.aclose())
        assert (pools.created, pools.closed) == (2, 2)
    finally:
        loop.close()
        client.close()


async def test_close_from_inside_the_running_loop_closes_the_async_client(mongo_uri: str, db_name: str) -> None:
    storage, client, pools = _storage_with_pools(mongo_uri, db_name)
    await storage.write(STASH, b"x")
    storage.close()  # a synchronous shutdown hook running on the loop: scheduled there, not awaited
    for _ in range(100):
        if pools.closed:
            break
        await asyncio.sleep(0.01)
    assert pools.closed == 1
    client.close()
