"""A restore reads archived messages by position: no id and no redaction per message where the
buckets say it may, and still every id and every redaction exactly as stored.

A bucket's entry records, when it is written, that its ids run on from its first
(``sequential_ids``); the bucket records whether any of its messages has a redaction (``redacted``). A
rewrite of an archived message removes that record in its own update and computes it again on the
server; a bucket that does not say ``redacted: false`` is read again with its redactions.
"""

from __future__ import annotations

from typing import Any

import pytest
from pymongo import MongoClient, monitoring
from strands.types.session import Session, SessionAgent, SessionMessage, SessionType

from mongodb_session_manager import ArchivePolicy, MongoDBSessionRepository
from mongodb_session_manager import documents_archive as da
from mongodb_session_manager.errors import MessageNotFoundError

SMALL = ArchivePolicy(max_messages=6, keep_messages=3, max_bytes=1024 * 1024, keep_bytes=512 * 1024, bucket_messages=2)
REDACTED = {"role": "user", "content": [{"text": "[redacted]"}]}


class BucketFinds(monitoring.CommandListener):
    """The projection of every ``find`` on the bucket collection."""

    def __init__(self) -> None:
        self.projections: list[dict[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "find" and event.command["find"].endswith(da.BUCKETS_SUFFIX):
            self.projections.append(dict(event.command.get("projection") or {}))

    def succeeded(self, event: Any) -> None: ...

    def failed(self, event: Any) -> None: ...


@pytest.fixture
def watched(mongo_uri: str, db_name: str) -> Any:
    finds = BucketFinds()
    client: MongoClient[Any] = MongoClient(mongo_uri, event_listeners=[finds])
    repository = MongoDBSessionRepository(
        client=client, database_name=db_name, collection_name="sessions", archive_policy=SMALL
    )
    yield repository, finds
    repository.close()
    client.close()


def message(i: int) -> SessionMessage:
    return SessionMessage(
        message={"role": "user" if i % 2 == 0 else "assistant", "content": [{"text": f"m{i}"}]}, message_id=i
    )


def session_with(repo: MongoDBSessionRepository, ids: list[int], sid: str = "s") -> None:
    repo.create_session(Session(session_id=sid, session_type=SessionType.AGENT))
    repo.create_agent(sid, SessionAgent(agent_id="a", state={}, conversation_manager_state={}))
    for i in ids:
        repo.create_message(sid, "a", message(i))


def listing(collection: Any, sid: str = "s") -> list[dict[str, Any]]:
    return collection.find_one({"_id": sid})["agents"]["a"]["archive"]["buckets"]


def ids_and_texts(messages: Any) -> list[tuple[int, str]]:
    return [(record.message_id, record.to_message()["content"][0]["text"]) for record in messages]


def test_archived_messages_are_read_without_their_ids_and_numbered_by_position(watched, collection) -> None:
    repo, finds = watched
    session_with(repo, list(range(20)))
    assert all(entry[da.SEQUENTIAL_IDS] is True for entry in listing(collection))

    finds.projections.clear()
    restored = repo.restore_agent("s", "a")
    _, agents = repo.restore_agents("s")

    expected = [(i, f"m{i}") for i in range(20)]
    assert ids_and_texts(restored.messages) == expected
    assert ids_and_texts(agents["a"].messages) == expected
    assert len(finds.projections) == 2, "one bucket find per restore"
    for projection in finds.projections:
        assert "messages.message_id" not in projection and "messages.redact_message" not in projection
        assert projection["messages.message"] == 1


def test_a_redaction_written_into_the_archive_reaches_the_restore(watched, collection) -> None:
    repo, finds = watched
    session_with(repo, list(range(20)))
    repo.update_message("s", "a", SessionMessage(message=message(1).message, message_id=1, redact_message=REDACTED))
    assert collection.database["sessions_messages"].count_documents({"redacted": True}) == 1

    finds.projections.clear()
    restored = repo.restore_agent("s", "a")

    assert restored.messages[1].redact_message == REDACTED
    assert restored.messages.messages()[1] == REDACTED, "what the agent gets"
    assert [(r.message_id) for r in restored.messages] == list(range(20))
    first, again = finds.projections
    assert "messages.redact_message" not in first and again["messages.redact_message"] == 1
    assert again["messages.message"] == 1 and "messages.message_id" not in again


def test_a_guardrail_redaction_archived_later_is_read_with_one_bucket_find(watched, collection) -> None:
    # Strands redacts the newest message (a guardrail); the split archives it later with the others. Its
    # bucket's entry says so, so the restore reads every bucket with the redactions at once, not twice.
    repo, finds = watched
    session_with(repo, list(range(4)))
    repo.update_message("s", "a", SessionMessage(message=message(3).message, message_id=3, redact_message=REDACTED))
    for i in range(4, 20):
        repo.create_message("s", "a", message(i))
    entries = listing(collection)
    assert [e.get(da.REDACTED) for e in entries].count(True) == 1, entries

    finds.projections.clear()
    restored = repo.restore_agent("s", "a")
    _, agents = repo.restore_agents("s")

    for messages in (restored.messages, agents["a"].messages):
        assert messages.messages()[3] == REDACTED, "what the agent gets"
        assert messages[3].redact_message == REDACTED and messages[3].message == message(3).message
        assert [r.message_id for r in messages] == list(range(20))
        assert messages.messages()[4] == message(4).message
    assert len(finds.projections) == 2, "one bucket find per restore"
    for projection in finds.projections:
        assert projection["messages.redact_message"] == 1 and "messages.message_id" not in projection


def test_a_rewrite_that_leaves_no_redaction_keeps_the_bucket_read_once(watched, collection) -> None:
    # The library's own redaction rewrites the message itself: the bucket holds no redact_message after it.
    repo, finds = watched
    session_with(repo, list(range(20)))
    blocked = {"role": "assistant", "content": [{"text": "[removed]"}]}
    repo.update_message("s", "a", SessionMessage(message=blocked, message_id=3))
    bucket = collection.database["sessions_messages"].find_one({"messages.message_id": 3})
    assert bucket["redacted"] is False and "holds" not in bucket, "computed again on the server; holds stays gone"

    finds.projections.clear()
    restored = repo.restore_agent("s", "a")

    assert restored.messages.messages()[3] == blocked
    assert [r.message_id for r in restored.messages] == list(range(20))
    assert len(finds.projections) == 1 and "messages.redact_message" not in finds.projections[0]


def test_buckets_listed_without_the_record_are_read_with_their_ids(watched, collection) -> None:
    # A session archived before buckets recorded it (or by another writer): read as before.
    repo, finds = watched
    session_with(repo, list(range(20)))
    collection.update_one({"_id": "s"}, {"$unset": {f"agents.a.archive.buckets.$[].{da.SEQUENTIAL_IDS}": ""}})

    finds.projections.clear()
    restored = repo.restore_agent("s", "a")

    assert ids_and_texts(restored.messages) == [(i, f"m{i}") for i in range(20)]
    assert [p.get("messages.message_id") for p in finds.projections] == [1]


def test_ids_that_do_not_run_on_by_position_are_read_as_stored(watched, collection) -> None:
    repo, finds = watched
    ids = [0, 1, 5, 6, 7, 10, 11, 12, 13, 20, 21, 22, 23, 24, 30]  # gaps, in whole buckets and across them
    session_with(repo, ids)
    flags = [entry.get(da.SEQUENTIAL_IDS) for entry in listing(collection)]
    assert True in flags and None in flags, flags

    finds.projections.clear()
    restored = repo.restore_agent("s", "a")

    assert ids_and_texts(restored.messages) == [(i, f"m{i}") for i in ids]
    assert restored.next_message_id == 31
    assert [p.get("messages.message_id") for p in finds.projections] == [1], "one bucket without: all with ids"


def test_a_rewritten_bucket_that_vanishes_before_it_is_read_again_is_a_typed_error(watched, collection) -> None:
    repo, _ = watched
    session_with(repo, list(range(20)))
    repo.update_message("s", "a", SessionMessage(message=message(1).message, message_id=1, redact_message=REDACTED))
    buckets = collection.database["sessions_messages"]
    rewritten = buckets.find_one({"holds": {"$exists": False}}, {"_id": 1})["_id"]
    real = repo._restore_buckets()

    class DeletesBeforeTheSecondRead:
        """The bucket collection, but the rewritten bucket is purged right after each first read."""

        def find(self, query: Any, projection: Any) -> Any:
            found = list(real.find(query, projection))
            if "messages.redact_message" not in projection:
                buckets.delete_one({"_id": rewritten})
            return found

    repo.__dict__["_restore_buckets_coll"] = DeletesBeforeTheSecondRead()
    with pytest.raises(MessageNotFoundError, match="archived messages the session lists are missing"):
        repo.restore_agent("s", "a")
