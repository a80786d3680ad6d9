"""The data lifecycle of sessions whose oldest messages live in buckets (``sessions_messages``).

A small :class:`ArchivePolicy` makes real agent sessions split after a few messages. Each test
compares with the same session *unsplit*, built here independently (the buckets' messages put
back in front of the document's, by hand), so "the same as before the split" is checked against
an oracle that does not use the code under test.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from bson import ObjectId
from pymongo import MongoClient
from strands import Agent
from strands.agent.conversation_manager import SlidingWindowConversationManager
from strands.session import SnapshotSessionManager
from strands.types.session import SessionMessage

from mongodb_session_manager import ArchivePolicy, MongoDBSessionManager, MongoDBSessionRepository, MongoDBStorage
from mongodb_session_manager.cli import main
from mongodb_session_manager.documents_snapshot import SNAPSHOT_AGENTS
from mongodb_session_manager.errors import (
    ConcurrentModificationError,
    DocumentTooLargeError,
    SessionAlreadyExistsError,
)
from mongodb_session_manager.migrations import migrate
from mongodb_session_manager.redaction import PIIRedactor
from mongodb_session_manager.snapshot_migration import migrate_session
from mongodb_session_manager.testing import ScriptedModel

Make = Callable[..., MongoDBSessionManager]
SMALL = ArchivePolicy(max_messages=6, keep_messages=3, max_bytes=1024 * 1024, keep_bytes=512 * 1024, bucket_messages=2)
PNG = b"\x89PNG\r\n\x1a\n\x00\x01binary\xff"
TURNS = 6


def _agent(manager: MongoDBSessionManager, replies: list[str], agent_id: str = "assistant") -> Agent:
    return Agent(
        agent_id=agent_id,
        model=ScriptedModel(replies),
        session_manager=manager,
        conversation_manager=SlidingWindowConversationManager(window_size=1000),
        callback_handler=None,
    )


def _split_session(make_manager: Make, sid: str, **kwargs: Any) -> Agent:
    """Real turns (one with an image), metadata and feedback; the agent splits into several buckets."""
    manager = make_manager(sid, archive_policy=SMALL, **kwargs)
    agent = _agent(manager, [f"answer {i}" for i in range(TURNS)])
    agent([{"text": "what is in this picture?"}, {"image": {"format": "png", "source": {"bytes": PNG}}}])
    for i in range(1, TURNS):
        agent(f"question {i}")
    manager.update_metadata({"status": "open"})
    manager.add_feedback({"rating": "up", "comment": "helpful"})
    return agent


def _texts(messages: list[Any]) -> list[str]:
    return [b["text"] for m in messages for b in m["content"] if "text" in b]


def _buckets(collection: Any) -> Any:
    return collection.database["sessions_messages"]


def _assert_split(collection: Any, sid: str, aid: str = "assistant") -> dict[str, Any]:
    archive = collection.find_one({"_id": sid})["agents"][aid]["archive"]
    assert archive["count"] > 0 and len(archive["buckets"]) > 1, "the session really split"
    return archive


def _unsplit_copy(mongo_client: MongoClient[Any], source_db: str, target_db: str, sid: str) -> None:
    """The oracle: the session as one document, every bucket's messages back in front of the document's."""
    doc = mongo_client[source_db]["sessions"].find_one({"_id": sid})
    buckets = mongo_client[source_db]["sessions_messages"]
    for entry in doc["agents"].values():
        archive = entry.pop("archive", None)
        if archive:
            listed = [b["id"] for b in archive["buckets"]]
            found = {b["_id"]: b for b in buckets.find({"_id": {"$in": listed}})}
            entry["messages"] = [m for bid in listed for m in found[bid]["messages"]] + entry["messages"]
    mongo_client[target_db]["sessions"].insert_one(doc)


@pytest.fixture
def other_db(mongo_client: MongoClient[Any], db_name: str) -> Iterator[str]:
    name = f"{db_name}_other"
    yield name
    mongo_client.drop_database(name)


def _repo(mongo_client: MongoClient[Any], db: str, policy: ArchivePolicy | None) -> MongoDBSessionRepository:
    return MongoDBSessionRepository(
        client=mongo_client, database_name=db, collection_name="sessions", archive_policy=policy
    )


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return {**a, "exported_at": None} == {**b, "exported_at": None}


def _orphan(sid: str, aid: str = "assistant", **extra: Any) -> dict[str, Any]:
    return {
        "_id": ObjectId(),
        "session_id": sid,
        "agent_id": aid,
        "start": 0,
        "count": 1,
        "first_message_id": 0,
        "last_message_id": 0,
        "bytes": 10,
        "messages": [{"message_id": 0, "message": {"role": "user", "content": [{"text": "ghost"}]}}],
        **extra,
    }


# ---- export --------------------------------------------------------------------------------------------------


def test_the_export_of_a_split_session_equals_its_export_unsplit(
    make_manager: Make, collection: Any, mongo_client: MongoClient[Any], db_name: str, other_db: str
) -> None:
    original = _split_session(make_manager, "e")
    _assert_split(collection, "e")
    _buckets(collection).insert_one(_orphan("e"))  # a crashed split's bucket: never exported
    _unsplit_copy(mongo_client, db_name, other_db, "e")

    exported = make_manager("e", archive_policy=SMALL).export_session()
    unsplit = _repo(mongo_client, other_db, None).export_session("e")
    assert _same(exported, unsplit)
    messages = exported["session"]["agents"]["assistant"]["messages"]
    assert [m["message_id"] for m in messages] == list(range(2 * TURNS))
    assert _texts([m["message"] for m in messages]) == _texts(original.messages)
    assert "ghost" not in json.dumps(exported)
    assert "archive" not in exported["session"]["agents"]["assistant"], "bucket ids of this database stay here"
    image = messages[0]["message"]["content"][1]["image"]["source"]["bytes"]
    assert image["__bytes_encoded__"] is True, "archived messages are converted like the others"
    assert any("event_loop_metrics" in m for m in messages[: len(messages) - 3]), "archived metrics are exported"


def test_an_export_missing_a_listed_bucket_is_a_typed_error_never_a_shorter_history(
    make_manager: Make, collection: Any
) -> None:
    _split_session(make_manager, "e")
    listed = _assert_split(collection, "e")["buckets"]
    _buckets(collection).delete_one({"_id": listed[0]["id"]})  # what only a purge racing the read would do
    with pytest.raises(ConcurrentModificationError, match="missing"):
        make_manager("e", archive_policy=SMALL).export_session()


def test_the_cli_export_of_a_split_session_is_the_whole_history(
    make_manager: Make, collection: Any, mongo_uri: str, db_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _split_session(make_manager, "cli")
    _assert_split(collection, "cli")
    where = ["--connection-string", mongo_uri, "--database", db_name, "--collection", "sessions"]
    assert main(["export", "cli", *where]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert [m["message_id"] for m in exported["session"]["agents"]["assistant"]["messages"]] == list(range(2 * TURNS))


# ---- import ----------------------------------------------------------------------------------------------------


def test_a_split_export_imports_split_and_round_trips(
    make_manager: Make, collection: Any, mongo_client: MongoClient[Any], other_db: str
) -> None:
    original = _split_session(make_manager, "e")
    data = json.loads(json.dumps(make_manager("e", archive_policy=SMALL).export_session()))

    target = _repo(mongo_client, other_db, SMALL)
    assert target.import_session(data) == "e"
    copy_doc = mongo_client[other_db]["sessions"].find_one({"_id": "e"})
    entry = copy_doc["agents"]["assistant"]
    # As a live split: the newest keep_messages stay, plus what does not fill a whole bucket.
    kept = SMALL.keep_messages + SMALL.bucket_messages - 1
    assert len(entry["messages"]) <= kept, "the import wrote the history as the split would"
    listed = [b["id"] for b in entry["archive"]["buckets"]]
    stored = list(mongo_client[other_db]["sessions_messages"].find({"session_id": "e"}).sort("start", 1))
    assert [b["_id"] for b in stored] == listed and all(b["count"] <= SMALL.bucket_messages for b in stored)
    assert entry["archive"]["count"] + len(entry["messages"]) == 2 * TURNS
    assert _same(target.export_session("e"), data), "export -> import -> export changes nothing"

    resumed = MongoDBSessionManager(
        "e", client=mongo_client, database_name=other_db, collection_name="sessions", archive_policy=SMALL
    )
    agent = _agent(resumed, ["carried on"])  # strict model: the restored history is valid Converse
    assert agent.messages == original.messages
    agent("one more")
    assert resumed.get_message_count("assistant") == 2 * TURNS + 2
    resumed.close()
    target.close()


def test_an_import_without_a_policy_or_within_it_is_one_document(
    make_manager: Make, mongo_client: MongoClient[Any], other_db: str
) -> None:
    _split_session(make_manager, "e")
    data = make_manager("e", archive_policy=SMALL).export_session()
    _repo(mongo_client, other_db, None).import_session(data)
    _repo(mongo_client, other_db, ArchivePolicy()).import_session(data, session_id="e2")
    for sid in ("e", "e2"):
        entry = mongo_client[other_db]["sessions"].find_one({"_id": sid})["agents"]["assistant"]
        assert "archive" not in entry and len(entry["messages"]) == 2 * TURNS
    assert mongo_client[other_db]["sessions_messages"].count_documents({}) == 0


def _big_export(data: dict[str, Any], messages: int, text_bytes: int) -> dict[str, Any]:
    """A real export whose one agent holds ``messages`` messages of ``text_bytes`` of text each."""
    big = copy.deepcopy(data)
    entry = big["session"]["agents"]["assistant"]
    template = entry["messages"][0]
    history = []
    for i in range(messages):
        role = "user" if i % 2 == 0 else "assistant"
        text = f"{i:06d} " + "x" * text_bytes
        history.append({**template, "message_id": i, "message": {"role": role, "content": [{"text": text}]}})
    entry["messages"] = history
    entry["next_message_id"] = messages
    entry.setdefault("agent_data", {}).setdefault("conversation_manager_state", {})["removed_message_count"] = 0
    return big


def test_a_20_mb_export_imports_under_the_default_policy(
    make_manager: Make, mongo_client: MongoClient[Any], other_db: str
) -> None:
    manager = make_manager("big", archive_policy=None)
    _agent(manager, ["hi"])("hello")
    data = _big_export(manager.export_session(), messages=400, text_bytes=50_000)
    assert len(json.dumps(data)) > 20_000_000

    with pytest.raises(DocumentTooLargeError):  # one document cannot hold it ...
        _repo(mongo_client, other_db, None).import_session(data)
    target = _repo(mongo_client, other_db, ArchivePolicy())
    assert target.import_session(data) == "big"  # ... the default policy splits it on the way in
    sessions = mongo_client[other_db]["sessions"]
    size = next(sessions.aggregate([{"$project": {"size": {"$bsonSize": "$$ROOT"}}}]))["size"]
    assert size <= ArchivePolicy().max_bytes
    assert target.count_messages("big", "assistant") == 400
    listed = [m for page in range(0, 400, 50) for m in target.list_message_documents("big", "assistant", 50, page)]
    assert [m["message_id"] for m in listed] == list(range(400))
    assert listed[123]["message"]["content"][0]["text"].startswith("000123 ")
    assert _same(target.export_session("big"), data)
    target.close()


def test_import_overwrite_replaces_the_archive_and_a_refused_import_leaves_no_bucket(
    make_manager: Make, collection: Any
) -> None:
    _split_session(make_manager, "e")
    manager = make_manager("e", archive_policy=SMALL)
    data = manager.export_session()
    buckets = _buckets(collection)
    before = {b["_id"] for b in buckets.find({"session_id": "e"})}

    with pytest.raises(SessionAlreadyExistsError):
        manager.import_session(data)
    assert {b["_id"] for b in buckets.find({"session_id": "e"})} == before, "the refused import's buckets are gone"

    manager.import_session(data, overwrite=True)
    listed = [b["id"] for b in collection.find_one({"_id": "e"})["agents"]["assistant"]["archive"]["buckets"]]
    now = [b["_id"] for b in buckets.find({"session_id": "e"}).sort("start", 1)]
    assert now == listed and not set(now) & before, "only the new session's buckets remain"
    assert _same(manager.export_session(), data)


# ---- purge, expiry, orphans ----------------------------------------------------------------------------------


def test_purge_removes_archived_messages_and_the_agent_continues(make_manager: Make, collection: Any) -> None:
    _split_session(make_manager, "p")
    _assert_split(collection, "p")
    make_manager("p", archive_policy=SMALL).purge_messages()

    entry = collection.find_one({"_id": "p"})["agents"]["assistant"]
    assert "archive" not in entry and entry["messages"] == []
    assert entry["next_message_id"] == 2 * TURNS
    assert _buckets(collection).count_documents({"session_id": "p"}) == 0
    fresh = make_manager("p", archive_policy=SMALL)
    agent = _agent(fresh, ["a new start"])
    assert agent.messages == []
    agent("again")
    assert [m.message_id for m in fresh.repository.list_messages("p", "assistant")] == [2 * TURNS, 2 * TURNS + 1]
    assert fresh.export_session()["session"]["agents"]["assistant"]["messages"][0]["message_id"] == 2 * TURNS


def test_buckets_of_an_expired_session_are_removed_by_purge_orphans(
    make_manager: Make,
    collection: Any,
    fast_ttl_monitor: None,
    mongo_uri: str,
    db_name: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _split_session(make_manager, "expiring")
    _split_session(make_manager, "held")
    _split_session(make_manager, "live")
    held = make_manager("held", archive_policy=SMALL)
    held.set_legal_hold()
    held.set_retention(0)
    make_manager("expiring", archive_policy=SMALL).set_retention(0)
    deadline = time.monotonic() + 180  # the monitor may finish the 60 s sleep it began before
    while collection.count_documents({"_id": "expiring"}) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert collection.count_documents({"_id": "expiring"}) == 0, "the TTL monitor deleted the expired session"
    buckets = _buckets(collection)
    orphans = buckets.count_documents({"session_id": "expiring"})
    assert orphans > 0, "the TTL index deletes the document only"
    kept = {sid: buckets.count_documents({"session_id": sid}) for sid in ("held", "live")}

    repo = make_manager("live", archive_policy=SMALL).repository
    assert repo.purge_orphan_buckets() == 0, "fresh buckets are left alone (a split lists them a moment later)"
    assert repo.purge_orphan_buckets(older_than=timedelta(0), dry_run=True) == orphans
    assert buckets.count_documents({"session_id": "expiring"}) == orphans
    where = ["--connection-string", mongo_uri, "--database", db_name, "--collection", "sessions"]
    assert main(["purge-orphans", "--older-than-minutes", "0", *where]) == 0
    assert f"{orphans} archived bucket(s)" in capsys.readouterr().out
    assert buckets.count_documents({"session_id": "expiring"}) == 0
    assert {sid: buckets.count_documents({"session_id": sid}) for sid in kept} == kept, "listed buckets stay"
    assert [m.message_id for m in repo.list_messages("held", "assistant")] == list(range(2 * TURNS))


def test_purge_orphans_removes_unlisted_buckets_of_a_live_session_only(make_manager: Make, collection: Any) -> None:
    _split_session(make_manager, "s")
    buckets = _buckets(collection)
    listed = {b["id"] for b in _assert_split(collection, "s")["buckets"]}
    crashed = _orphan("s", start=999)  # a split that crashed before listing its bucket (no created_at: old)
    recent = _orphan("s", start=1000, created_at=collection.find_one({"_id": "s"})["updated_at"] + timedelta(days=1))
    buckets.insert_many([crashed, recent])
    repo = make_manager("s", archive_policy=SMALL).repository
    assert repo.purge_orphan_buckets() == 1
    assert {b["_id"] for b in buckets.find({"session_id": "s"})} == listed | {recent["_id"]}
    assert repo.count_messages("s", "assistant") == 2 * TURNS


# ---- redaction ------------------------------------------------------------------------------------------------


def test_redaction_reaches_archived_messages_and_counts_them(make_manager: Make, collection: Any) -> None:
    manager = make_manager("r", archive_policy=SMALL, redactor=PIIRedactor())
    agent = _agent(manager, [f"I wrote to ops{i}@example.com" for i in range(TURNS)])
    for i in range(TURNS):
        agent(f"mail me at user{i}@example.com")
    archive = _assert_split(collection, "r")
    assert manager.get_redactions() == {"email": 2 * TURNS}, "every message was counted, archived ones included"
    stored = json.dumps(manager.export_session(), default=str)
    assert "@example.com" not in stored and stored.count("[REDACTED:email]") == 2 * TURNS
    archived_text = json.dumps(list(_buckets(collection).find({"session_id": "r"})), default=str)
    assert "@example.com" not in archived_text and "[REDACTED:email]" in archived_text

    # A guardrail redaction of a message that is now archived: stored in its bucket, listed on the session.
    old = SessionMessage(message={"role": "user", "content": [{"text": "[blocked]"}]}, message_id=0)
    assert archive["buckets"][0]["first_message_id"] == 0
    manager.repository.redact_message("r", "assistant", old)
    assert manager.repository.read_message("r", "assistant", 0).message["content"][0]["text"] == "[blocked]"
    assert [e["message_id"] for e in collection.find_one({"_id": "r"})["guardrail_events"]] == [0]
    exported = manager.export_session()["session"]["agents"]["assistant"]["messages"][0]
    assert exported["message"]["content"][0]["text"] == "[blocked]" and "guardrail_event" in exported


# ---- migrations -----------------------------------------------------------------------------------------------


def test_migrate_to_snapshot_reads_the_whole_history_and_removes_the_buckets(
    make_manager: Make, collection: Any, mongo_client: MongoClient[Any], db_name: str, other_db: str
) -> None:
    original = _split_session(make_manager, "m")
    _assert_split(collection, "m")
    _unsplit_copy(mongo_client, db_name, other_db, "m")

    result = migrate_session(collection, "m")
    unsplit = migrate_session(mongo_client[other_db]["sessions"], "m")
    assert result.status == unsplit.status == "migrated"
    assert result.agents == unsplit.agents == {"assistant": 2 * TURNS}
    assert _buckets(collection).count_documents({"session_id": "m"}) == 0, "nothing lists them any more"
    migrated, oracle = collection.find_one({"_id": "m"}), mongo_client[other_db]["sessions"].find_one({"_id": "m"})
    turns = [t["message_index"] for t in migrated[SNAPSHOT_AGENTS]["assistant"]["turn_metrics"]]
    assert turns == [t["message_index"] for t in oracle[SNAPSHOT_AGENTS]["assistant"]["turn_metrics"]]
    assert turns == list(range(1, 2 * TURNS, 2)), "turn metrics keep their positions in the whole conversation"

    storage = MongoDBStorage(database_name=db_name, collection_name="sessions", client=mongo_client)
    restored = Agent(
        agent_id="assistant",
        model=ScriptedModel(["on the snapshot path"]),
        session_manager=SnapshotSessionManager("m", storage=storage),
        callback_handler=None,
    )
    assert _texts(restored.messages) == _texts(original.messages)
    restored("and on")


def test_schema_migration_keeps_the_archive_of_a_split_session(make_manager: Make, collection: Any) -> None:
    _split_session(make_manager, "old")
    archive = _assert_split(collection, "old")
    # As if an older writer had left it without a version and without the id counter.
    collection.update_one({"_id": "old"}, {"$unset": {"schema_version": "", "agents.assistant.next_message_id": ""}})
    assert migrate(collection).migrated == 1
    entry = collection.find_one({"_id": "old"})["agents"]["assistant"]
    assert entry["archive"] == archive
    assert entry["next_message_id"] == 2 * TURNS
    manager = make_manager("old", archive_policy=SMALL)
    assert [m.message_id for m in manager.repository.list_messages("old", "assistant")] == list(range(2 * TURNS))
    assert migrate(collection).migrated == 0


def test_a_history_too_large_for_one_snapshot_stays_on_the_message_log_path(
    make_manager: Make, collection: Any
) -> None:
    manager = make_manager("huge", archive_policy=None)
    _agent(manager, ["hi"])("hello")
    data = _big_export(manager.export_session(), messages=400, text_bytes=50_000)
    make_manager("huge").import_session(data, overwrite=True)  # the default policy splits it into buckets
    archived = _buckets(collection).count_documents({"session_id": "huge"})
    assert archived > 0

    result = migrate_session(collection, "huge")
    assert result.status == "skipped" and "16 MB" in result.reason
    assert "agents" in collection.find_one({"_id": "huge"}), "left exactly as it was"
    assert _buckets(collection).count_documents({"session_id": "huge"}) == archived
    assert make_manager("huge").get_message_count("assistant") == 400
