"""An agent's oldest messages move into buckets, and every reader sees one history, in order, each
message exactly once.

A small :class:`ArchivePolicy` makes sessions split after a few messages, so the same code paths
that a 50,000-message session takes run here in milliseconds.
"""

from __future__ import annotations

import base64
from typing import Any

import bson
import pytest
from bson import ObjectId
from pymongo import MongoClient, monitoring
from strands import Agent
from strands.agent.conversation_manager import SlidingWindowConversationManager
from strands.types.session import Session, SessionAgent, SessionMessage, SessionType

from mongodb_session_manager import ArchivePolicy, MongoDBSessionRepository
from mongodb_session_manager.errors import MessageNotFoundError, SessionNotFoundError
from mongodb_session_manager.testing import ScriptedModel, converse_violation

SMALL = ArchivePolicy(max_messages=6, keep_messages=3, max_bytes=1024 * 1024, keep_bytes=512 * 1024, bucket_messages=2)


@pytest.fixture
def small_repo(mongo_client: MongoClient[Any], db_name: str) -> Any:
    repository = MongoDBSessionRepository(
        client=mongo_client, database_name=db_name, collection_name="sessions", archive_policy=SMALL
    )
    yield repository
    repository.close()


class Commands(monitoring.CommandListener):
    """The names of the commands sent, and the bytes of their replies."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.bytes = 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.names.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self.bytes += len(bson.encode(event.reply))

    def failed(self, event: Any) -> None: ...


def text_message(i: int) -> SessionMessage:
    role = "user" if i % 2 == 0 else "assistant"
    return SessionMessage(message={"role": role, "content": [{"text": f"message {i}"}]}, message_id=i)


def new_session(repo: MongoDBSessionRepository, sid: str, aid: str = "assistant") -> None:
    repo.create_session(Session(session_id=sid, session_type=SessionType.AGENT))
    repo.create_agent(sid, SessionAgent(agent_id=aid, state={}, conversation_manager_state={}))


def texts(messages: list[SessionMessage]) -> list[str]:
    return [m.message["content"][0]["text"] for m in messages]


def stored_doc(collection: Any, sid: str, aid: str = "assistant") -> dict[str, Any]:
    return collection.find_one({"_id": sid})["agents"][aid]


def test_appends_past_the_policy_move_the_oldest_messages_into_listed_buckets(small_repo, collection) -> None:
    new_session(small_repo, "s")
    for i in range(20):
        small_repo.create_message("s", "assistant", text_message(i))

    agent = stored_doc(collection, "s")
    archive = agent["archive"]
    assert 1 <= len(agent["messages"]) <= SMALL.max_messages, "the document keeps only recent messages"
    assert archive["count"] + len(agent["messages"]) == 20
    buckets = list(collection.database["sessions_messages"].find({"session_id": "s"}).sort("start", 1))
    assert [b["_id"] for b in buckets] == [e["id"] for e in archive["buckets"]], "the document lists every bucket"
    assert all(b["count"] <= SMALL.bucket_messages for b in buckets)
    positions = [b["start"] for b in buckets]
    assert positions == sorted(positions) and positions[0] == 0
    assert sum(b["count"] for b in buckets) == archive["count"]


def test_every_reader_sees_the_whole_history_across_the_split(small_repo) -> None:
    new_session(small_repo, "s")
    for i in range(20):
        small_repo.create_message("s", "assistant", text_message(i))

    expected = [f"message {i}" for i in range(20)]
    assert texts(small_repo.list_messages("s", "assistant")) == expected
    assert texts(small_repo.list_messages("s", "assistant", limit=5, offset=0)) == expected[:5]
    for offset in range(0, 21):  # every page boundary, including pages that straddle the split
        page = small_repo.list_messages("s", "assistant", limit=4, offset=offset)
        assert texts(page) == expected[offset : offset + 4], offset
    assert [m.message_id for m in small_repo.list_messages("s", "assistant")] == list(range(20))
    assert small_repo.count_messages("s", "assistant") == 20
    assert small_repo.count_messages("s") == 20
    assert small_repo.read_message("s", "assistant", 1).message["content"][0]["text"] == "message 1"
    assert small_repo.read_message("s", "assistant", 19).message["content"][0]["text"] == "message 19"
    assert small_repo.read_message("s", "assistant", 99) is None
    assert small_repo.read_last_message("s", "assistant").message_id == 19
    agents = {a["agent_id"]: a for a in small_repo.list_agents("s")}
    assert agents["assistant"]["message_count"] == 20


def test_an_archived_message_can_be_rewritten_and_a_missing_one_is_a_typed_error(small_repo) -> None:
    new_session(small_repo, "s")
    for i in range(20):
        small_repo.create_message("s", "assistant", text_message(i))

    redacted = SessionMessage(message={"role": "assistant", "content": [{"text": "[redacted]"}]}, message_id=3)
    small_repo.update_message("s", "assistant", redacted)
    assert small_repo.read_message("s", "assistant", 3).message["content"][0]["text"] == "[redacted]"
    assert texts(small_repo.list_messages("s", "assistant", limit=1, offset=3)) == ["[redacted]"]
    with pytest.raises(MessageNotFoundError):
        small_repo.update_message("s", "assistant", SessionMessage(message=redacted.message, message_id=500))


def test_restore_brings_archived_messages_in_one_round_trip(small_repo) -> None:
    new_session(small_repo, "s")
    for i in range(20):
        small_repo.create_message("s", "assistant", text_message(i))

    restored = small_repo.restore_agent("s", "assistant")
    assert texts(restored.messages) == [f"message {i}" for i in range(20)]
    assert restored.next_message_id == 20
    ok, agents = small_repo.restore_agents("s")
    assert ok and texts(agents["assistant"].messages) == [f"message {i}" for i in range(20)]


def test_restoring_every_agent_reads_the_document_once_and_all_their_buckets_once(
    small_repo, mongo_uri, db_name
) -> None:
    new_session(small_repo, "s", "first")
    small_repo.create_agent("s", SessionAgent(agent_id="second", state={}, conversation_manager_state={}))
    for i in range(20):
        small_repo.create_message("s", "first", text_message(i))
        small_repo.create_message("s", "second", text_message(100 + i))
    commands = Commands()
    client: MongoClient[Any] = MongoClient(mongo_uri, event_listeners=[commands])
    try:
        reader = MongoDBSessionRepository(
            client=client, database_name=db_name, collection_name="sessions", archive_policy=SMALL
        )
        commands.names.clear()
        exists, agents = reader.restore_agents("s")
        names = list(commands.names)
    finally:
        client.close()
    assert exists and names == ["find", "find"], "the document, then both agents' buckets together"
    assert texts(agents["first"].messages) == [f"message {i}" for i in range(20)]
    assert texts(agents["second"].messages) == [f"message {100 + i}" for i in range(20)]


def test_a_bucket_without_its_record_is_searched_and_its_legacy_values_repaired(small_repo, collection) -> None:
    # A bucket records what its messages hold; a rewrite of a message in it drops the record. A restore
    # reads only part of each archived message, so for such a bucket it must still find what to repair.
    new_session(small_repo, "s")
    for i in range(20):
        small_repo.create_message("s", "assistant", text_message(i))
    legacy = {"__bytes_encoded__": True, "data": base64.b64encode(b"\x89PNG-bytes").decode()}
    image = {"image": {"format": "png", "source": {"bytes": legacy}}}
    buckets = collection.database["sessions_messages"]
    changed = buckets.update_one(
        {"session_id": "s", "start": 0}, {"$set": {"messages.0.message.content": [image]}, "$unset": {"holds": ""}}
    )
    assert changed.modified_count == 1

    def first_image(messages: list[SessionMessage]) -> Any:
        return messages[0].message["content"][0]["image"]["source"]["bytes"]

    assert first_image(small_repo.restore_agent("s", "assistant").messages) == b"\x89PNG-bytes"
    _, agents = small_repo.restore_agents("s")  # the one-aggregation path (async managers)
    assert first_image(agents["assistant"].messages) == b"\x89PNG-bytes"


def test_a_bucket_the_document_does_not_list_is_never_read_and_is_removed_by_the_next_split(
    small_repo, collection
) -> None:
    new_session(small_repo, "s")
    for i in range(8):
        small_repo.create_message("s", "assistant", text_message(i))
    archived = stored_doc(collection, "s")["archive"]["count"]
    orphan = {
        "_id": ObjectId(),
        "session_id": "s",
        "agent_id": "assistant",
        "start": archived,
        "count": 1,
        "first_message_id": 1000,
        "last_message_id": 1000,
        "bytes": 10,
        "messages": [{"message_id": 1000, "message": {"role": "user", "content": [{"text": "ghost"}]}}],
    }
    buckets = collection.database["sessions_messages"]
    buckets.insert_one(orphan)  # what a split that crashed after inserting its bucket leaves behind

    assert "ghost" not in texts(small_repo.list_messages("s", "assistant"))
    assert small_repo.count_messages("s", "assistant") == 8
    for i in range(8, 20):
        small_repo.create_message("s", "assistant", text_message(i))
    assert buckets.count_documents({"_id": orphan["_id"]}) == 0
    assert texts(small_repo.list_messages("s", "assistant")) == [f"message {i}" for i in range(20)]


def test_delete_session_removes_every_bucket(small_repo, collection) -> None:
    new_session(small_repo, "s")
    new_session(small_repo, "other")
    for i in range(20):
        small_repo.create_message("s", "assistant", text_message(i))
        small_repo.create_message("other", "assistant", text_message(i))
    buckets = collection.database["sessions_messages"]
    assert buckets.count_documents({"session_id": "s"}) > 0

    small_repo.delete_session("s")
    assert buckets.count_documents({"session_id": "s"}) == 0
    assert buckets.count_documents({"session_id": "other"}) > 0, "other sessions keep their archive"
    with pytest.raises(SessionNotFoundError):
        small_repo.delete_session("s")


def test_without_a_policy_nothing_moves(mongo_client, db_name, collection) -> None:
    repo = MongoDBSessionRepository(
        client=mongo_client, database_name=db_name, collection_name="sessions", archive_policy=None
    )
    new_session(repo, "s")
    for i in range(30):
        repo.create_message("s", "assistant", text_message(i))
    assert "archive" not in stored_doc(collection, "s")
    assert len(stored_doc(collection, "s")["messages"]) == 30


def test_the_policy_is_checked() -> None:
    with pytest.raises(ValueError, match="keep_messages"):
        ArchivePolicy(max_messages=5, keep_messages=10)
    with pytest.raises(ValueError, match="positive"):
        ArchivePolicy(bucket_messages=0)


# ---- agents ------------------------------------------------------------------------------------------------


def test_agent_turns_split_and_a_fresh_agent_restores_and_answers(make_manager, collection) -> None:
    agent = Agent(
        agent_id="assistant",
        model=ScriptedModel([f"answer {i}" for i in range(15)]),
        session_manager=make_manager("turns", archive_policy=SMALL),
        conversation_manager=SlidingWindowConversationManager(window_size=1000),
        callback_handler=None,
    )
    for i in range(15):
        agent(f"question {i}")
    assert stored_doc(collection, "turns")["archive"]["count"] > 0, "the session split"

    fresh = Agent(
        agent_id="assistant",
        model=ScriptedModel(["restored fine"]),  # strict: the restored history must be valid Converse
        session_manager=make_manager("turns", archive_policy=SMALL),
        conversation_manager=SlidingWindowConversationManager(window_size=1000),
        callback_handler=None,
    )
    assert fresh.messages == agent.messages, "the whole history comes back, in order"
    assert converse_violation([*fresh.messages, {"role": "user", "content": [{"text": "x"}]}]) is None
    assert str(fresh("and now?")).strip() == "restored fine"


def test_a_sliding_window_agent_restores_its_window_from_the_document(make_manager, collection) -> None:
    window = SlidingWindowConversationManager(window_size=4)
    agent = Agent(
        agent_id="assistant",
        model=ScriptedModel([f"answer {i}" for i in range(12)]),
        session_manager=make_manager("window", archive_policy=SMALL),
        conversation_manager=window,
        callback_handler=None,
    )
    for i in range(12):
        agent(f"question {i}")
    fresh = Agent(
        agent_id="assistant",
        model=ScriptedModel(["ok"]),
        session_manager=make_manager("window", archive_policy=SMALL),
        conversation_manager=SlidingWindowConversationManager(window_size=4),
        callback_handler=None,
    )
    assert fresh.messages == agent.messages
    fresh("next")


def test_with_the_default_policy_sessions_and_large_blocks_pass_16_mb(mongo_client, db_name, collection) -> None:
    """Only a message whose *inline* part passes 16 MB is refused: many blocks each under
    ``blob_bytes`` (out-of-line blocks do not count)."""
    from mongodb_session_manager.errors import DocumentTooLargeError

    repo = MongoDBSessionRepository(client=mongo_client, database_name=db_name, collection_name="sessions")
    new_session(repo, "big")
    mb = 1024 * 1024

    def message(i: int, content: list[dict[str, Any]]) -> SessionMessage:
        return SessionMessage(message={"role": "user" if i % 2 == 0 else "assistant", "content": content}, message_id=i)

    for i in range(6):  # 24 MB of messages: past the one-document limit
        repo.create_message("big", "assistant", message(i, [{"text": f"{i}" + "x" * (4 * mb)}]))
    repo.create_message("big", "assistant", message(6, [{"text": "z" * (17 * mb)}]))  # one block over 16 MB
    many_small = [{"text": "s" * (200 * 1024)} for _ in range(90)]  # 18 MB inline: no block is large
    with pytest.raises(DocumentTooLargeError):
        repo.create_message("big", "assistant", message(7, many_small))
    listed = repo.list_messages("big", "assistant")
    assert [m.message_id for m in listed] == list(range(7))
    assert [m.message["content"][0]["text"][0] for m in listed] == [*[str(i) for i in range(6)], "z"]
    assert len(listed[6].message["content"][0]["text"]) == 17 * mb
    assert collection.find_one({"_id": "big"}) is not None
    size = collection.aggregate([{"$match": {"_id": "big"}}, {"$project": {"s": {"$bsonSize": "$$ROOT"}}}]).next()
    assert size["s"] < 64 * 1024, "large blocks live in GridFS, the document keeps markers"
    repo.create_message("big", "assistant", text_message(7))
    assert repo.read_last_message("big", "assistant").message_id == 7
    repo.close()


def test_a_window_reaching_into_the_archive_is_plain_finds_and_exact(mongo_uri, db_name, collection) -> None:

    listener = Commands()
    client: MongoClient[Any] = MongoClient(mongo_uri, event_listeners=[listener])
    repo = MongoDBSessionRepository(
        client=client, database_name=db_name, collection_name="sessions", archive_policy=SMALL
    )
    new_session(repo, "w")
    for i in range(100):  # buckets of 2: more than the newest entries the tail read brings
        repo.create_message("w", "assistant", text_message(i))
    archived = stored_doc(collection, "w")["archive"]["count"]
    assert len(stored_doc(collection, "w")["archive"]["buckets"]) > 32
    expected = [f"message {i}" for i in range(100)]
    path = "agents.assistant.agent_data.conversation_manager_state.removed_message_count"
    # In the document: one find of the agent as stored. Into the newest buckets: they follow by _id.
    # Further back than the entries read: the server computes the window, then the buckets. Never
    # an aggregation.
    cases = ((archived + 1, ["find"]), (archived - 1, ["find", "find"]), (0, ["find", "find", "find"]))
    for offset, commands in cases:
        collection.update_one({"_id": "w"}, {"$set": {path: offset}})
        listener.names.clear()
        restored = repo.restore_agent("w", "assistant")
        assert texts(restored.messages) == expected[offset:], offset
        assert listener.names == commands, (offset, listener.names)
    repo.close()
    client.close()


def test_a_long_one_document_array_restores_exactly_its_window_with_one_find(mongo_uri, db_name, collection):
    """No policy, or a session from the original library before its first write: thousands of
    messages in the document. The server cuts the window, so a sliding-window agent transfers only
    its window, and any window is one find."""

    listener = Commands()
    client: MongoClient[Any] = MongoClient(mongo_uri, event_listeners=[listener])
    flat = MongoDBSessionRepository(
        client=client, database_name=db_name, collection_name="sessions", archive_policy=None
    )
    new_session(flat, "long")
    total = 2_000
    flat.append_messages("long", "assistant", [text_message(i) for i in range(total)])
    expected = [f"message {i}" for i in range(total)]
    path = "agents.assistant.agent_data.conversation_manager_state.removed_message_count"
    replies: dict[int, int] = {}
    for offset in (total - 40, 100, 0):
        collection.update_one({"_id": "long"}, {"$set": {path: offset}})
        listener.names.clear()
        listener.bytes = 0
        restored = flat.restore_agent("long", "assistant")
        assert texts(restored.messages) == expected[offset:], offset
        assert [m.message_id for m in restored.messages][:1] == [offset]
        assert listener.names == ["find"], (offset, listener.names)
        assert restored.next_message_id == total
        replies[offset] = listener.bytes
    assert replies[total - 40] * 20 < replies[0], "a sliding window transfers its window, not the array"

    # Under a policy the same unsplit document (a session from the original library, before its first
    # write): the agent as stored is read up to a limit, cannot be placed, and the server computes it.
    ported = MongoDBSessionRepository(client=client, database_name=db_name, collection_name="sessions")
    collection.update_one({"_id": "long"}, {"$set": {path: total - 40}})
    listener.names.clear()
    assert texts(ported.restore_agent("long", "assistant").messages) == expected[total - 40 :]
    assert listener.names == ["find", "find"]
    ported.close()

    # Listed buckets that are gone (a purge racing the restore, or a damaged archive): read again, and
    # if they are still missing, a typed error rather than a history with a silent hole.
    repo = MongoDBSessionRepository(
        client=client, database_name=db_name, collection_name="sessions", archive_policy=SMALL
    )
    new_session(repo, "holed")
    for i in range(20):
        repo.create_message("holed", "assistant", text_message(i))
    bucket = stored_doc(collection, "holed")["archive"]["buckets"][0]["id"]
    client[db_name]["sessions_messages"].delete_one({"_id": bucket})
    with pytest.raises(MessageNotFoundError, match="the session lists are missing"):
        repo.restore_agent("holed", "assistant")
    for closing in (repo, flat):
        closing.close()
    client.close()
