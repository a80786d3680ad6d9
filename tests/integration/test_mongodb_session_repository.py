"""``MongoDBSessionRepository`` on the real mongod: what MongoDB adds beyond the shared contract.

The Strands ``SessionRepository`` semantics are proven in ``tests/integration/contract``. Here:
the stored document shape, guarded appends (stricter than Strands' file store), atomic writes and
projected reads (observed with pymongo command monitoring), id validation before any command is
sent, the 16 MB limit, driver-error translation, index creation and client ownership.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import bson
import pytest
from pymongo import MongoClient, monitoring
from pymongo.errors import InvalidOperation, PyMongoError, WriteError
from strands.types.exceptions import SessionException
from strands.types.session import Session, SessionAgent, SessionMessage, SessionType

from mongodb_session_manager import documents as d
from mongodb_session_manager import documents_indexes as dx
from mongodb_session_manager import documents_values as dv
from mongodb_session_manager.embedded import free_port
from mongodb_session_manager.errors import (
    AgentAlreadyExistsError,
    AgentNotFoundError,
    ConcurrentModificationError,
    DatabaseError,
    DatabaseUnavailableError,
    DocumentTooLargeError,
    InvalidIdentifierError,
    InvalidInputError,
    MessageConflictError,
    MessageNotFoundError,
    MultiAgentAlreadyExistsError,
    SessionNotFoundError,
)
from mongodb_session_manager.mongodb_session_repository import MongoDBSessionRepository, forget_indexes

SID, AID = "repo-session", "assistant"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
MB = 1024 * 1024


class CommandRecorder(monitoring.CommandListener):
    """Every command a client sent (handshakes aside), and the BSON size of each reply."""

    IGNORED = frozenset({"hello", "ismaster", "ping", "endsessions"})

    def __init__(self) -> None:
        self.commands: list[monitoring.CommandStartedEvent] = []
        self.replies: list[tuple[str, int]] = []
        self.lock = threading.Lock()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name.lower() not in self.IGNORED:
            with self.lock:
                self.commands.append(event)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        if event.command_name.lower() not in self.IGNORED:
            with self.lock:
                self.replies.append((event.command_name, len(bson.encode(event.reply))))

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        return None

    def names(self) -> list[str]:
        with self.lock:
            return [e.command_name for e in self.commands]

    def clear(self) -> None:
        with self.lock:
            self.commands.clear()
            self.replies.clear()


@pytest.fixture
def recorder() -> CommandRecorder:
    return CommandRecorder()


@pytest.fixture
def monitored(mongo_uri: str, recorder: CommandRecorder) -> Iterator[MongoClient[Any]]:
    client: MongoClient[Any] = MongoClient(mongo_uri, event_listeners=[recorder])
    yield client
    client.close()


@pytest.fixture
def mrepo(monitored: MongoClient[Any], db_name: str, recorder: CommandRecorder) -> MongoDBSessionRepository:
    """A repository on the monitored client, with a session and an agent; the recorder starts empty."""
    repo = MongoDBSessionRepository(client=monitored, database_name=db_name, collection_name="sessions")
    repo.create_session(session())
    repo.create_agent(SID, agent())
    recorder.clear()
    return repo


def session(session_id: str = SID) -> Session:
    return Session(session_id=session_id, session_type=SessionType.AGENT)


def agent(agent_id: str = AID, **state: Any) -> SessionAgent:
    return SessionAgent(agent_id=agent_id, state=state, conversation_manager_state={})


def msg(message_id: int, text: str | None = None) -> SessionMessage:
    return SessionMessage(
        message={"role": "user", "content": [{"text": text or f"m{message_id}"}]}, message_id=message_id
    )


def stored(collection: Any, session_id: str = SID) -> dict[str, Any]:
    doc = collection.find_one({"_id": session_id})
    assert doc is not None
    return doc


def stored_ids(collection: Any, agent_id: str = AID) -> list[int]:
    return [m["message_id"] for m in stored(collection)["agents"][agent_id]["messages"]]


@pytest.fixture
def ready(repo: MongoDBSessionRepository) -> MongoDBSessionRepository:
    repo.create_session(session())
    repo.create_agent(SID, agent())
    return repo


# ---- the stored document -------------------------------------------------------------------------------


def test_one_document_per_session_with_the_documented_shape(ready: MongoDBSessionRepository, collection) -> None:
    image = {"role": "user", "content": [{"text": "see"}, {"image": {"format": "png", "source": {"bytes": PNG}}}]}
    ready.create_message(SID, AID, SessionMessage(message=image, message_id=0))
    ready.create_agent(SID, agent("reviewer"))
    doc = stored(collection)
    assert collection.count_documents({}) == 1
    assert doc["_id"] == doc["session_id"] == SID
    assert doc["session_type"] == "AGENT"
    assert len(doc["session_viewer_password"]) == 32
    assert doc["metadata"] == {} and doc["feedbacks"] == [] and doc["multi_agents"] == {}
    assert set(doc["agents"]) == {AID, "reviewer"}
    entry = doc["agents"][AID]
    assert set(entry) == {"agent_data", "messages", "next_message_id", "created_at", "updated_at"}
    assert entry["next_message_id"] == 1
    assert set(entry["agent_data"]) >= {"agent_id", "state", "conversation_manager_state", "_internal_state"}
    assert set(entry["messages"][0]) == {"message_id", "message", "redact_message", "created_at", "updated_at"}
    # dates are BSON dates, bytes are BSON binary (not base64), checked by the server itself
    typed = {
        "_id": SID,
        "created_at": {"$type": "date"},
        "updated_at": {"$type": "date"},
        f"agents.{AID}.agent_data.created_at": {"$type": "date"},
        f"agents.{AID}.messages.created_at": {"$type": "date"},
        f"agents.{AID}.messages.message.content.image.source.bytes": {"$type": "binData"},
    }
    assert collection.count_documents(typed) == 1
    assert entry["messages"][0]["message"]["content"][1]["image"]["source"]["bytes"] == PNG


def test_timestamps_are_returned_as_iso_strings_with_millisecond_precision(ready: MongoDBSessionRepository) -> None:
    ready.create_message(SID, AID, msg(0))
    for value in (
        ready.read_session(SID).created_at,  # type: ignore[union-attr]
        ready.read_agent(SID, AID).updated_at,  # type: ignore[union-attr]
        ready.read_message(SID, AID, 0).created_at,  # type: ignore[union-attr]
    ):
        parsed = datetime.fromisoformat(value)
        assert parsed.tzinfo is not None
        assert parsed.microsecond % 1000 == 0


def test_every_write_advances_the_session_updated_at(ready: MongoDBSessionRepository, collection) -> None:
    first = stored(collection)["updated_at"]
    ready.create_message(SID, AID, msg(0))
    second = stored(collection)["updated_at"]
    ready.update_message(SID, AID, msg(0, "edited"))
    third = stored(collection)["updated_at"]
    assert first <= second <= third


def test_legacy_base64_bytes_in_stored_documents_still_decode(repo: MongoDBSessionRepository, collection) -> None:
    legacy = {"__bytes_encoded__": True, "data": base64.b64encode(PNG).decode()}
    doc = d.new_session_document(session())
    doc["agents"] = {
        AID: {
            "agent_data": d.agent_data_document(agent()),
            "messages": [
                {
                    "message_id": 0,
                    "message": {"role": "user", "content": [{"image": {"format": "png", "source": {"bytes": legacy}}}]},
                    "redact_message": None,
                    "created_at": d.now(),
                    "updated_at": d.now(),
                }
            ],
        }
    }
    collection.insert_one(doc)
    [message] = repo.list_messages(SID, AID)
    assert message.message["content"][0]["image"]["source"]["bytes"] == PNG
    assert repo.read_message(SID, AID, 0).message["content"][0]["image"]["source"]["bytes"] == PNG  # type: ignore[union-attr]


def test_documents_without_the_counter_still_refuse_duplicate_ids(repo: MongoDBSessionRepository, collection) -> None:
    """Sessions written before ``next_message_id`` existed keep working and stay guarded."""
    doc = d.new_session_document(session())
    doc["agents"] = {
        AID: {"agent_data": d.agent_data_document(agent()), "messages": [d.message_document(msg(i)) for i in (0, 1)]}
    }
    collection.insert_one(doc)
    with pytest.raises(MessageConflictError):
        repo.create_message(SID, AID, msg(1, "duplicate"))
    repo.create_message(SID, AID, msg(2))
    assert stored_ids(collection) == [0, 1, 2]
    with pytest.raises(MessageConflictError):
        repo.create_message(SID, AID, msg(0, "stale"))


# ---- guarded appends ----------------------------------------------------------------------------------


def test_duplicate_message_id_is_refused_and_nothing_is_written(ready: MongoDBSessionRepository, collection) -> None:
    ready.create_message(SID, AID, msg(0, "original"))
    before = stored(collection)
    with pytest.raises(MessageConflictError) as info:
        ready.create_message(SID, AID, msg(0, "intruder"))
    exc = info.value
    assert isinstance(exc, ConcurrentModificationError) and isinstance(exc, SessionException)
    assert exc.session_id == SID and exc.agent_id == AID
    assert f"session_id=<{SID}>" in str(exc) and f"agent_id=<{AID}>" in str(exc)
    assert stored(collection) == before


def test_stale_writer_with_an_older_id_is_refused(ready: MongoDBSessionRepository, collection) -> None:
    for i in range(3):
        ready.create_message(SID, AID, msg(i))
    ready.create_message(SID, AID, msg(7))  # gaps are allowed, going back is not
    with pytest.raises(MessageConflictError):
        ready.create_message(SID, AID, msg(5))
    assert stored_ids(collection) == [0, 1, 2, 7]
    assert stored(collection)["agents"][AID]["next_message_id"] == 8


def test_append_to_a_missing_agent_or_session_says_which(ready: MongoDBSessionRepository, collection) -> None:
    with pytest.raises(AgentNotFoundError) as info:
        ready.create_message(SID, "ghost", msg(0))
    assert info.value.agent_id == "ghost"
    with pytest.raises(SessionNotFoundError):
        ready.create_message("no-such-session", AID, msg(0))
    assert "ghost" not in stored(collection)["agents"]
    assert collection.count_documents({"_id": "no-such-session"}) == 0


def test_create_agent_never_overwrites_an_existing_agent(ready: MongoDBSessionRepository, collection) -> None:
    ready.update_agent(SID, agent(step=1))
    ready.create_message(SID, AID, msg(0))
    with pytest.raises(AgentAlreadyExistsError) as info:
        ready.create_agent(SID, agent(step=999))
    assert info.value.agent_id == AID
    assert stored_ids(collection) == [0]
    assert ready.read_agent(SID, AID).state == {"step": 1}  # type: ignore[union-attr]
    with pytest.raises(SessionNotFoundError):
        ready.create_agent("no-such-session", agent())


def test_concurrent_create_agent_one_wins_and_nothing_is_wiped(
    mongo_client: MongoClient[Any], db_name: str, collection
) -> None:
    repos = [
        MongoDBSessionRepository(client=mongo_client, database_name=db_name, collection_name="sessions")
        for _ in range(2)
    ]
    repos[0].create_session(session())
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def create(repo: MongoDBSessionRepository, n: int) -> None:
        barrier.wait()
        try:
            repo.create_agent(SID, agent(writer=n))
            repo.create_message(SID, AID, msg(0, f"from {n}"))
            outcomes.append("created")
        except AgentAlreadyExistsError:
            outcomes.append("exists")

    threads = [threading.Thread(target=create, args=(r, n)) for n, r in enumerate(repos)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["created", "exists"]
    doc = stored(collection)
    winner = doc["agents"][AID]["agent_data"]["state"]["writer"]
    assert [m["message"]["content"][0]["text"] for m in doc["agents"][AID]["messages"]] == [f"from {winner}"]


def test_create_multi_agent_twice_raises_and_keeps_the_first(ready: MongoDBSessionRepository) -> None:
    class Swarm:
        id = "swarm"

        def __init__(self, state: dict[str, Any]) -> None:
            self.state = state

        def serialize_state(self) -> dict[str, Any]:
            return self.state

    ready.create_multi_agent(SID, Swarm({"status": "first"}))  # type: ignore[arg-type]
    with pytest.raises(MultiAgentAlreadyExistsError):
        ready.create_multi_agent(SID, Swarm({"status": "second"}))  # type: ignore[arg-type]
    assert ready.read_multi_agent(SID, "swarm") == {"status": "first"}


def test_update_agent_keeps_library_fields(ready: MongoDBSessionRepository, collection) -> None:
    collection.update_one(
        {"_id": SID}, {"$set": {f"agents.{AID}.agent_data.model": "m-1", f"agents.{AID}.agent_data.system_prompt": "p"}}
    )
    created = stored(collection)["agents"][AID]["agent_data"]["created_at"]
    ready.update_agent(SID, agent(step=3))
    data = stored(collection)["agents"][AID]["agent_data"]
    assert data["model"] == "m-1" and data["system_prompt"] == "p"
    assert data["created_at"] == created and data["state"] == {"step": 3}


def test_update_of_missing_records_names_what_is_missing(ready: MongoDBSessionRepository) -> None:
    with pytest.raises(SessionNotFoundError):
        ready.update_agent("no-such-session", agent())
    with pytest.raises(AgentNotFoundError):
        ready.update_message(SID, "ghost", msg(0))
    with pytest.raises(MessageNotFoundError):
        ready.update_message(SID, AID, msg(3))


# ---- atomic writes, projected reads -----------------------------------------------------------------------


def _is_operator_update(update: Any) -> bool:
    """An update document of operators only, or a pipeline: never a whole-document replacement."""
    return isinstance(update, list) or (bool(update) and all(key.startswith("$") for key in update))


def test_each_write_is_one_atomic_update_without_reading_first(mrepo: MongoDBSessionRepository, recorder) -> None:
    writes: list[tuple[Callable[[], Any], str]] = [
        (lambda: mrepo.create_message(SID, AID, msg(0)), "update"),
        # A rewrite of a message's body also looks for out-of-line blocks of its previous version, so
        # that a redaction leaves no copy behind (an indexed find; nothing is read before the update).
        (lambda: mrepo.update_message(SID, AID, msg(0, "final")), "update+find"),
        (lambda: mrepo.update_agent(SID, agent(x=1)), "update"),
        (lambda: mrepo.create_agent(SID, agent("second")), "update"),
    ]
    for write, command in writes:
        recorder.clear()
        write()
        assert recorder.names() == command.split("+"), "one update per write, no read-modify-write"
        cmd = recorder.commands[0].command
        update = cmd["update"] if command == "findAndModify" else cmd["updates"][0]["u"]
        assert _is_operator_update(update), update
    update_cmd = recorder.commands[0].command
    assert update_cmd["updates"][0]["q"]["agents.second"] == {"$exists": False}


def test_update_message_targets_the_element_by_array_filter(mrepo: MongoDBSessionRepository, recorder) -> None:
    for i in range(3):
        mrepo.create_message(SID, AID, msg(i))
    recorder.clear()
    mrepo.update_message(SID, AID, msg(1, "rewritten"))
    statement = recorder.commands[0].command["updates"][0]
    assert statement["arrayFilters"] == [{"m.message_id": 1}]
    assert [m.message["content"][0]["text"] for m in mrepo.list_messages(SID, AID)] == ["m0", "rewritten", "m2"]


def test_listing_a_page_of_a_huge_session_does_not_transfer_the_session(
    mrepo: MongoDBSessionRepository, recorder, collection
) -> None:
    collection.update_one(
        {"_id": SID},
        {
            "$set": {
                f"agents.{AID}.messages": [
                    d.message_document(msg(i, f"message {i} " + "x" * 200)) for i in range(10_000)
                ],
                f"agents.{AID}.next_message_id": 10_000,
            }
        },
    )
    recorder.clear()
    page = mrepo.list_messages(SID, AID, limit=20, offset=5_000)
    assert [m.message_id for m in page] == list(range(5_000, 5_020))
    [(name, page_reply)] = recorder.replies
    assert name == "aggregate"

    recorder.clear()
    whole = mrepo.collection.find_one({"_id": SID})
    assert whole is not None
    [(_, whole_reply)] = recorder.replies
    assert whole_reply > 2 * MB
    assert page_reply * 100 < whole_reply, (page_reply, whole_reply)

    recorder.clear()
    assert mrepo.read_session(SID) is not None
    assert mrepo.read_agent(SID, AID) is not None
    assert mrepo.read_message(SID, AID, 9_999) is not None
    assert mrepo.read_last_message(SID, AID).message_id == 9_999  # type: ignore[union-attr]
    assert mrepo.count_messages(SID, AID) == 10_000
    assert all(size < 16 * 1024 for _, size in recorder.replies), recorder.replies


# ---- pagination and reading helpers ---------------------------------------------------------------------


def test_list_messages_rejects_bad_paging_arguments(ready: MongoDBSessionRepository) -> None:
    ready.create_message(SID, AID, msg(0))
    for bad in ({"offset": -1}, {"offset": "1"}, {"limit": -5}, {"limit": True}, {"offset": 1.5}):
        with pytest.raises(InvalidInputError):
            ready.list_messages(SID, AID, **bad)  # type: ignore[arg-type]
    assert ready.list_messages(SID, AID, limit=0) == []
    with pytest.raises(AgentNotFoundError):
        ready.list_messages(SID, "ghost", limit=0)
    with pytest.raises(SessionNotFoundError):
        ready.list_messages("no-such-session", AID)


def test_counts_and_last_message(ready: MongoDBSessionRepository) -> None:
    ready.create_agent(SID, agent("reviewer"))
    assert ready.read_last_message(SID, AID) is None
    for i in range(4):
        ready.create_message(SID, AID, msg(i))
    ready.create_message(SID, "reviewer", msg(0))
    assert ready.count_messages(SID, AID) == 4
    assert ready.count_messages(SID, "reviewer") == 1
    assert ready.count_messages(SID) == 5
    assert ready.read_last_message(SID, AID).message_id == 3  # type: ignore[union-attr]
    with pytest.raises(SessionNotFoundError):
        ready.count_messages("no-such-session")


def test_delete_session_removes_the_whole_document(ready: MongoDBSessionRepository, collection) -> None:
    ready.create_message(SID, AID, msg(0))
    ready.create_session(session("other"))
    ready.delete_session(SID)
    assert collection.count_documents({"_id": SID}) == 0
    assert collection.count_documents({"_id": "other"}) == 1
    with pytest.raises(SessionNotFoundError):
        ready.delete_session(SID)


# ---- id validation: refused before any command is sent -----------------------------------------------------

BAD_IDS = ["", "$where", "a.b", "nul\x00", "x" * 513, 17]


class _MultiAgent:
    def __init__(self, multi_agent_id: Any) -> None:
        self.id = multi_agent_id

    def serialize_state(self) -> dict[str, Any]:
        return {"status": "x"}


def _calls(bad: Any) -> dict[str, Callable[[MongoDBSessionRepository], Any]]:
    return {
        "create_session": lambda r: r.create_session(Session(session_id=bad, session_type=SessionType.AGENT)),
        "read_session": lambda r: r.read_session(bad),
        "delete_session": lambda r: r.delete_session(bad),
        "create_agent(session)": lambda r: r.create_agent(bad, agent()),
        "create_agent(agent)": lambda r: r.create_agent(SID, agent(bad)),
        "read_agent": lambda r: r.read_agent(SID, bad),
        "update_agent": lambda r: r.update_agent(SID, agent(bad)),
        "create_message": lambda r: r.create_message(SID, bad, msg(0)),
        "read_message": lambda r: r.read_message(bad, AID, 0),
        "update_message": lambda r: r.update_message(SID, bad, msg(0)),
        "list_messages": lambda r: r.list_messages(SID, bad),
        "create_multi_agent": lambda r: r.create_multi_agent(SID, _MultiAgent(bad)),
        "read_multi_agent": lambda r: r.read_multi_agent(SID, bad),
        "update_multi_agent": lambda r: r.update_multi_agent(SID, _MultiAgent(bad)),
    }


@pytest.mark.parametrize("bad", BAD_IDS, ids=["empty", "dollar", "dot", "nul", "too-long", "not-str"])
def test_bad_ids_are_refused_before_anything_reaches_mongodb(
    mrepo: MongoDBSessionRepository, recorder, collection, bad: Any
) -> None:
    before = stored(collection)
    for name, call in _calls(bad).items():
        with pytest.raises(InvalidIdentifierError) as info:
            call(mrepo)
        assert isinstance(info.value, ValueError), name
        assert recorder.names() == [], f"{name} sent {recorder.names()}"
    assert stored(collection) == before
    assert collection.count_documents({}) == 1


@pytest.mark.parametrize("bad_message_id", [-1, "3", None, True])
def test_bad_message_ids_are_refused_before_anything_is_sent(
    mrepo: MongoDBSessionRepository, recorder, bad_message_id: Any
) -> None:
    message = SessionMessage(message={"role": "user", "content": []}, message_id=bad_message_id)
    for call in (
        lambda: mrepo.create_message(SID, AID, message),
        lambda: mrepo.update_message(SID, AID, message),
        lambda: mrepo.read_message(SID, AID, bad_message_id),
    ):
        with pytest.raises(InvalidIdentifierError):
            call()
    assert recorder.names() == []


def test_unencodable_message_is_a_typed_input_error_and_nothing_is_written(
    ready: MongoDBSessionRepository, collection
) -> None:
    before = stored(collection)
    bad = SessionMessage(message={"role": "user", "content": [{"text": {"a", "set"}}]}, message_id=0)  # type: ignore[dict-item]
    with pytest.raises(InvalidInputError) as info:
        ready.create_message(SID, AID, bad)
    assert info.value.session_id == SID
    assert stored(collection) == before


def test_dbref_shaped_values_read_back_as_the_plain_dicts_that_were_stored(ready: MongoDBSessionRepository) -> None:
    """``{"$ref": ..., "$id": ...}`` is JSON Schema in tool arguments; the driver would decode it as a DBRef."""
    schema = {"$ref": "#/definitions/user", "$id": "schema-1"}
    tool_use = {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "lookup", "input": schema}}]}
    ready.create_message(SID, AID, SessionMessage(message=tool_use, message_id=0))
    ready.update_agent(SID, agent(schema=schema))
    assert ready.list_messages(SID, AID)[0].message == tool_use
    assert ready.read_message(SID, AID, 0).message == tool_use  # type: ignore[union-attr]
    assert type(ready.list_message_documents(SID, AID)[0]["message"]["content"][0]["toolUse"]["input"]) is dict
    assert ready.read_agent(SID, AID).state == {"schema": schema}  # type: ignore[union-attr]


def test_values_bson_cannot_hold_are_stored_as_json_and_read_back_exactly(
    ready: MongoDBSessionRepository, collection
) -> None:
    """Integers past 64 bits, NUL or ``$`` keys, lone surrogates, deep nesting: what a model may emit."""
    deep: Any = "bottom"
    for _ in range(500):
        deep = {"d": deep}
    value = {"n": 2**70, "k\x00": 1, "$op": 2, "s": "\ud800", "deep": deep, "ok": [1, "two"]}
    odd = {"role": "user", "content": [{"toolResult": {"toolUseId": "t", "content": [{"json": value}]}}]}
    ready.create_message(SID, AID, SessionMessage(message=odd, message_id=0))  # type: ignore[arg-type]
    assert ready.read_message(SID, AID, 0).message == odd  # type: ignore[union-attr]
    raw = stored(collection)["agents"][AID]["messages"][0]["message"]["content"][0]["toolResult"]["content"][0]
    assert dv.JSON_MARKER in raw["json"], "the odd subtree is JSON text, the rest stays queryable"


def test_a_value_even_json_cannot_hold_is_a_typed_input_error(ready: MongoDBSessionRepository, collection) -> None:
    before = stored(collection)
    bad = {"role": "user", "content": [{"toolResult": {"toolUseId": "t", "content": [{"json": {"x": object()}}]}}]}
    with pytest.raises(InvalidInputError) as info:
        ready.create_message(SID, AID, SessionMessage(message=bad, message_id=0))  # type: ignore[arg-type]
    assert info.value.session_id == SID
    assert stored(collection) == before


# ---- the 16 MB limit -------------------------------------------------------------------------------------------


def _doc_size(collection: Any) -> int:
    return next(collection.aggregate([{"$match": {"_id": SID}}, {"$project": {"s": {"$bsonSize": "$$ROOT"}}}]))["s"]


def test_writes_past_16_mb_fail_typed_nothing_partial_and_the_session_stays_usable(
    mongo_client: MongoClient[Any], db_name: str, collection, caplog: pytest.LogCaptureFixture
) -> None:
    # Without an archive policy the session is one document, and MongoDB's limit is the session's.
    repo = MongoDBSessionRepository(
        client=mongo_client,
        database_name=db_name,
        collection_name="sessions",
        size_warning_bytes=6 * MB,
        archive_policy=None,
    )
    repo.create_session(session())
    repo.create_agent(SID, agent())
    caplog.set_level(logging.WARNING, logger="mongodb_session_manager.mongodb_session_repository")
    for i in range(3):  # ~4 MB each: 4, 8, 12 MB
        repo.create_message(SID, AID, msg(i, f"{i}" + "x" * (4 * MB)))
    size_before = _doc_size(collection)
    assert 12 * MB < size_before < 16 * MB

    with pytest.raises(DocumentTooLargeError) as info:  # 16+ MB: refused by the server
        repo.create_message(SID, AID, msg(3, "y" * (4 * MB + MB // 2)))
    assert info.value.session_id == SID and info.value.agent_id == AID
    assert "16 MB" in str(info.value)
    assert isinstance(info.value.__cause__, PyMongoError)

    with pytest.raises(DocumentTooLargeError):  # a single message over 16 MB: refused by the driver
        repo.create_message(SID, AID, msg(3, "z" * (17 * MB)))
    with pytest.raises(DocumentTooLargeError):  # growing an existing message past the limit
        repo.update_message(SID, AID, msg(0, "w" * (8 * MB)))

    assert _doc_size(collection) == size_before
    assert stored(collection)["agents"][AID]["next_message_id"] == 3
    listed = repo.list_messages(SID, AID)
    assert [m.message_id for m in listed] == [0, 1, 2]
    assert listed[0].message["content"][0]["text"].startswith("0x")
    repo.create_message(SID, AID, msg(3, "small follow-up"))  # the next id is still free
    assert repo.read_last_message(SID, AID).message_id == 3  # type: ignore[union-attr]

    warnings = [r for r in caplog.records if "approaching" in r.getMessage()]
    assert len(warnings) == 1, "warn once per session, not on every write"
    assert f"session_id=<{SID}>" in warnings[0].getMessage()


# ---- driver errors -----------------------------------------------------------------------------------------------


def test_unreachable_server_raises_database_unavailable_with_session_id() -> None:
    uri = f"mongodb://127.0.0.1:{free_port()}/?directConnection=true"
    repo = MongoDBSessionRepository(uri, "db", "sessions", serverSelectionTimeoutMS=300, connectTimeoutMS=300)
    try:
        for call in (
            lambda: repo.read_session("down-session"),
            lambda: repo.create_session(session("down-session")),
            lambda: repo.create_message("down-session", AID, msg(0)),
        ):
            with pytest.raises(DatabaseUnavailableError) as info:
                call()
            exc = info.value
            assert isinstance(exc, DatabaseError) and isinstance(exc, SessionException)
            assert exc.session_id == "down-session"
            assert "session_id=<down-session>" in str(exc)
            assert isinstance(exc.__cause__, PyMongoError)
    finally:
        repo.close()


def test_server_refusals_are_wrapped_with_their_cause(mongo_client: MongoClient[Any], db_name: str) -> None:
    mongo_client[db_name].create_collection(
        "guarded", validator={"$jsonSchema": {"required": ["field_this_library_never_writes"]}}
    )
    repo = MongoDBSessionRepository(client=mongo_client, database_name=db_name, collection_name="guarded")
    with pytest.raises(DatabaseError) as info:
        repo.create_session(session())
    assert not isinstance(info.value, DocumentTooLargeError | DatabaseUnavailableError)
    assert info.value.session_id == SID
    assert isinstance(info.value.__cause__, WriteError)


# ---- indexes and client ownership ---------------------------------------------------------------------------------


def test_indexes_are_ensured_once_per_collection_per_process(
    monitored: MongoClient[Any], db_name: str, recorder, collection
) -> None:
    forget_indexes()
    repos = [
        MongoDBSessionRepository(client=monitored, database_name=db_name, collection_name="sessions") for _ in range(5)
    ]
    assert recorder.names() == [], "constructing a repository sends nothing"
    repos[0].create_session(session())
    for n, repo in enumerate(repos):
        repo.read_session(SID)
        repo.create_session(session(f"s{n}"))
    assert recorder.names().count("createIndexes") == 1, "all missing indexes go in one command"
    keys = {tuple(spec["key"]) for spec in collection.index_information().values()}
    assert set(dx.BASE_INDEX_KEYS) <= keys
    assert {(("created_at", -1), ("_id", 1)), (("updated_at", -1), ("_id", 1)), (("session_id", 1),)} <= keys

    other = MongoDBSessionRepository(
        client=monitored, database_name=db_name, collection_name="sessions", metadata_fields=["priority"]
    )
    recorder.clear()
    other.read_session(SID)
    assert recorder.names() == ["createIndexes", "find"], "only the new metadata index is created"
    created = {tuple(s["key"]) for s in collection.index_information().values()}
    assert set(dx.filter_index_keys("metadata.priority")) <= created


def test_borrowed_client_is_never_closed(mongo_client: MongoClient[Any], db_name: str) -> None:
    repo = MongoDBSessionRepository(client=mongo_client, database_name=db_name, collection_name="sessions")
    assert not repo.owns_client
    repo.create_session(session())
    repo.close()
    repo.close()
    assert mongo_client.admin.command("ping")["ok"] == 1
    assert mongo_client[db_name]["sessions"].count_documents({"_id": SID}) == 1


def test_owned_client_is_closed_by_close(mongo_uri: str, db_name: str) -> None:
    repo = MongoDBSessionRepository(mongo_uri, db_name, "sessions")
    assert repo.owns_client
    repo.create_session(session())
    repo.close()
    with pytest.raises(InvalidOperation):
        repo.client.admin.command("ping")
    with pytest.raises(DatabaseError) as info:
        repo.read_session(SID)
    assert info.value.session_id == SID


def test_repository_needs_a_connection_string_or_a_client() -> None:
    with pytest.raises(ValueError, match="connection_string or a client"):
        MongoDBSessionRepository()


def test_an_invalid_database_name_is_a_typed_input_error(mongo_client: MongoClient[Any]) -> None:
    with pytest.raises(InvalidInputError, match="invalid database"):
        MongoDBSessionRepository(client=mongo_client, database_name="chat.with.dots")


def test_indexes_are_ensured_again_for_a_new_client_to_another_server(mongo_uri: str, db_name: str) -> None:
    from mongodb_session_manager.indexes import _indexes_done, ensure_indexes

    client: MongoClient[Any] = MongoClient(mongo_uri)
    try:
        ensure_indexes(client[db_name]["sessions"])
        assert client in _indexes_done
        other: MongoClient[Any] = MongoClient("mongodb://127.0.0.1:9/?connect=false")
        assert other not in _indexes_done  # a different server is never taken as already indexed
        other.close()
    finally:
        client.close()
    del client
    import gc

    gc.collect()
    assert not any(c.address == ("127.0.0.1", 9) for c in _indexes_done)


def test_the_size_warning_is_logged_once_per_session_per_process(
    mongo_client: MongoClient[Any], db_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="mongodb_session_manager")
    for _ in range(3):  # a new repository per request, as a service would do
        repository = MongoDBSessionRepository(client=mongo_client, database_name=db_name, size_warning_bytes=10)
        if repository.read_session("big") is None:
            repository.create_session(session("big"))
            repository.create_agent("big", agent())
        next_id = len(repository.list_messages("big", AID))
        repository.create_message("big", AID, msg(next_id, "x" * 70_000))  # large: measured after the write
    warnings = [r for r in caplog.records if "approaching MongoDB's 16 MB limit" in r.getMessage()]
    assert len(warnings) == 1
