"""Large content blocks are stored out of line (GridFS, ``<collection>_blobs``) and come back exactly,
through every reader; a redaction, a failed write, a purge or a deletion leaves none behind."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo import MongoClient
from strands import Agent, tool
from strands.types.session import SessionMessage

from mongodb_session_manager import ArchivePolicy, MongoDBSessionRepository, blobs
from mongodb_session_manager.errors import ConcurrentModificationError, MessageConflictError, MissingBlobError
from mongodb_session_manager.testing import Reply, ScriptedModel, ToolCall
from tests.integration.session_viewer.conftest import GLOBAL

from .test_split import new_session, text_message

BIG = 1_000_000
MARKER = "__msm_blob__"


@tool
def fetch_report(name: str) -> str:
    """Return a long report."""
    return f"report {name}: " + "r" * BIG


def blob_files(mongo_client: MongoClient[Any], db_name: str) -> int:
    return mongo_client[db_name]["sessions_blobs.files"].count_documents({})


def blob_chunks(mongo_client: MongoClient[Any], db_name: str) -> int:
    return mongo_client[db_name]["sessions_blobs.chunks"].count_documents({})


def stored_messages(collection: Any, sid: str, aid: str) -> list[dict[str, Any]]:
    return collection.find_one({"_id": sid})["agents"][aid]["messages"]


def test_a_large_tool_result_is_stored_out_of_line_and_restored_exactly(
    make_manager: Any, collection: Any, mongo_client: MongoClient[Any], db_name: str
) -> None:
    agent = Agent(
        agent_id="reader",
        model=ScriptedModel([ToolCall("fetch_report", {"name": "q3"}), Reply(text="read it")]),
        tools=[fetch_report],
        session_manager=make_manager("blobs"),
        callback_handler=None,
    )
    agent("get the q3 report")

    result_message = stored_messages(collection, "blobs", "reader")[2]
    [block] = result_message["message"]["content"]
    inner = block["toolResult"]["content"][0]
    assert set(inner) == {MARKER}, "the 1 MB text is a marker in the document"
    assert block["toolResult"]["toolUseId"], "the tool use id and status stay in the message"
    size = collection.aggregate([{"$match": {"_id": "blobs"}}, {"$project": {"s": {"$bsonSize": "$$ROOT"}}}]).next()
    assert size["s"] < 32 * 1024
    files = list(mongo_client[db_name]["sessions_blobs.files"].find())
    assert len(files) == 1 and files[0]["metadata"] == {"session_id": "blobs", "agent_id": "reader", "message_id": 2}

    fresh = Agent(
        agent_id="reader",
        model=ScriptedModel(["still here"]),  # strict: the restored toolResult must answer its toolUse
        tools=[fetch_report],
        session_manager=make_manager("blobs"),
        callback_handler=None,
    )
    assert fresh.messages == agent.messages, "the restored history is the one in memory, byte for byte"
    text = fresh.messages[2]["content"][0]["toolResult"]["content"][0]["text"]
    assert text == "report q3: " + "r" * BIG
    fresh("and now?")

    repo = make_manager("blobs").session_repository
    listed = repo.list_messages("blobs", "reader")
    assert listed[2].message == agent.messages[2]
    assert repo.read_message("blobs", "reader", 2).message == agent.messages[2]


def test_images_and_documents_round_trip_as_bytes(repo: MongoDBSessionRepository, mongo_client, db_name) -> None:
    new_session(repo, "img")
    picture = bytes(range(256)) * 2000  # 512 KB of binary
    content = [
        {"text": "what is in this picture?"},
        {"image": {"format": "png", "source": {"bytes": picture}}},
        {"document": {"format": "pdf", "name": "spec", "source": {"bytes": picture[::-1]}}},
    ]
    repo.create_message("img", "assistant", SessionMessage(message={"role": "user", "content": content}, message_id=0))
    assert blob_files(mongo_client, db_name) == 2, "one blob per large block; the small text stays inline"
    [restored] = repo.list_messages("img", "assistant")
    assert restored.message["content"] == content
    assert repo.restore_agent("img", "assistant").messages[0].message["content"] == content


def test_a_rewrite_deletes_the_blobs_of_the_previous_version(repo: MongoDBSessionRepository, mongo_client, db_name):
    new_session(repo, "redact")
    secret = {"role": "user", "content": [{"text": "card 4111 1111 1111 1111 " + "s" * BIG}]}
    repo.create_message("redact", "assistant", SessionMessage(message=secret, message_id=0))
    assert blob_files(mongo_client, db_name) == 1
    redacted = {"role": "user", "content": [{"text": "[redacted]"}]}
    repo.update_message("redact", "assistant", SessionMessage(message=redacted, message_id=0))
    assert blob_files(mongo_client, db_name) == 0 and blob_chunks(mongo_client, db_name) == 0, "no copy left"
    assert repo.read_message("redact", "assistant", 0).message == redacted

    large_again = {"role": "user", "content": [{"text": "t" * BIG}]}
    repo.update_message("redact", "assistant", SessionMessage(message=large_again, message_id=0))
    assert blob_files(mongo_client, db_name) == 1
    assert repo.read_message("redact", "assistant", 0).message == large_again


def test_a_refused_write_leaves_no_blob(repo: MongoDBSessionRepository, mongo_client, db_name) -> None:
    new_session(repo, "conflict")
    repo.create_message("conflict", "assistant", text_message(0))
    large = {"role": "user", "content": [{"text": "x" * BIG}]}
    with pytest.raises(MessageConflictError):  # id 0 is taken: nothing of this write may stay
        repo.create_message("conflict", "assistant", SessionMessage(message=large, message_id=0))
    assert blob_files(mongo_client, db_name) == 0 and blob_chunks(mongo_client, db_name) == 0


def test_delete_and_purge_remove_the_blobs(repo: MongoDBSessionRepository, mongo_client, db_name) -> None:
    for sid in ("gone", "purged", "kept"):
        new_session(repo, sid)
        repo.create_message(
            sid,
            "assistant",
            SessionMessage(message={"role": "user", "content": [{"text": sid + "x" * BIG}]}, message_id=0),
        )
    assert blob_files(mongo_client, db_name) == 3
    repo.delete_session("gone")
    repo.purge_messages("purged")
    files = list(mongo_client[db_name]["sessions_blobs.files"].find())
    assert [f["metadata"]["session_id"] for f in files] == ["kept"]
    assert blob_chunks(mongo_client, db_name) == 1


def test_export_inlines_blobs_and_an_import_stores_them_again(
    repo: MongoDBSessionRepository, mongo_client, db_name
) -> None:
    new_session(repo, "exp")
    body = {"role": "user", "content": [{"text": "e" * BIG}]}
    repo.create_message("exp", "assistant", SessionMessage(message=body, message_id=0))
    exported = repo.export_session("exp")
    assert exported["session"]["agents"]["assistant"]["messages"][0]["message"]["content"][0]["text"] == "e" * BIG
    other = MongoDBSessionRepository(client=mongo_client, database_name=db_name, collection_name="copies")
    other.import_session(exported)
    assert other.read_message("exp", "assistant", 0).message == body
    other.close()


def test_the_viewer_timeline_shows_the_whole_block(repo: MongoDBSessionRepository, make_api: Any, db_name) -> None:
    new_session(repo, "view")
    repo.create_message(
        "view", "assistant", SessionMessage(message={"role": "user", "content": [{"text": "v" * BIG}]}, message_id=0)
    )
    with make_api(db_name) as api:
        response = api.get("/api/v1/session/view", headers=GLOBAL)
        assert response.status_code == 200, response.text[:300]
        assert ("v" * 1000) in response.text and MARKER not in response.text
        export = api.get("/api/v1/session-export/view", headers=GLOBAL)
        assert export.status_code == 200 and ("v" * BIG) in export.text and MARKER not in export.text


def test_without_a_policy_blocks_stay_inline(mongo_client, db_name, collection) -> None:
    repo = MongoDBSessionRepository(
        client=mongo_client, database_name=db_name, collection_name="sessions", archive_policy=None
    )
    new_session(repo, "inline")
    body = {"role": "user", "content": [{"text": "i" * BIG}]}
    repo.create_message("inline", "assistant", SessionMessage(message=body, message_id=0))
    assert blob_files(mongo_client, db_name) == 0
    assert stored_messages(collection, "inline", "assistant")[0]["message"] == body
    small_blobs = MongoDBSessionRepository(
        client=mongo_client,
        database_name=db_name,
        collection_name="other",
        archive_policy=ArchivePolicy(blob_bytes=1024),
    )
    new_session(small_blobs, "tiny")
    small_blobs.create_message(
        "tiny", "assistant", SessionMessage(message={"role": "user", "content": [{"text": "k" * 2000}]}, message_id=0)
    )
    assert mongo_client[db_name]["other_blobs.files"].count_documents({}) == 1, "the threshold is configurable"


def test_an_export_with_a_block_over_16_mb_imports_and_an_overwrite_drops_the_old_blobs(
    repo: MongoDBSessionRepository, mongo_client, db_name
) -> None:
    new_session(repo, "huge")
    body = {"role": "user", "content": [{"text": "h" * (17 * 1024 * 1024)}]}
    repo.create_message("huge", "assistant", SessionMessage(message=body, message_id=0))
    exported = repo.export_session("huge")
    other = MongoDBSessionRepository(client=mongo_client, database_name=db_name, collection_name="copies")
    other.import_session(exported)
    assert other.read_message("huge", "assistant", 0).message == body
    files = mongo_client[db_name]["copies_blobs.files"]
    first = [f["_id"] for f in files.find()]
    assert len(first) == 1

    other.import_session(exported, overwrite=True)
    second = [f["_id"] for f in files.find()]
    assert len(second) == 1 and second != first, "the replaced session's blob is gone, the new one stays"
    assert other.read_message("huge", "assistant", 0).message == body
    other.close()


def test_purge_orphans_removes_the_blobs_of_sessions_whose_document_is_gone(
    repo: MongoDBSessionRepository, mongo_client, db_name
) -> None:
    from datetime import timedelta

    for sid in ("expired", "alive"):
        new_session(repo, sid)
        repo.create_message(
            sid, "assistant", SessionMessage(message={"role": "user", "content": [{"text": "o" * BIG}]}, message_id=0)
        )
    mongo_client[db_name]["sessions"].delete_one({"_id": "expired"})  # what the TTL index does
    assert repo.purge_orphan_buckets(older_than=timedelta(hours=1)) == 0, "within the grace period: kept"
    assert repo.purge_orphan_buckets(older_than=timedelta(0), dry_run=True) == 1
    assert blob_files(mongo_client, db_name) == 2
    assert repo.purge_orphan_buckets(older_than=timedelta(0)) == 1
    files = list(mongo_client[db_name]["sessions_blobs.files"].find())
    assert [f["metadata"]["session_id"] for f in files] == ["alive"] and blob_chunks(mongo_client, db_name) == 1
    assert repo.read_message("alive", "assistant", 0).message["content"][0]["text"] == "o" * BIG


def _lose_the_blobs(mongo_client: MongoClient[Any], db_name: str, *, files_too: bool = True) -> None:
    """What no code path of the library does: GridFS data deleted behind its back (or not restored)."""
    mongo_client[db_name]["sessions_blobs.chunks"].delete_many({})
    if files_too:
        mongo_client[db_name]["sessions_blobs.files"].delete_many({})


@pytest.mark.parametrize("files_too", [True, False], ids=["files-and-chunks", "chunks-only"])
def test_a_block_lost_outside_the_library_is_a_missing_blob_error_not_a_retry(
    repo: MongoDBSessionRepository, mongo_client: MongoClient[Any], db_name: str, files_too: bool
) -> None:
    new_session(repo, "lost")
    body = {"role": "user", "content": [{"text": "small"}, {"text": "l" * BIG}]}
    repo.create_message("lost", "assistant", SessionMessage(message=body, message_id=0))
    _lose_the_blobs(mongo_client, db_name, files_too=files_too)
    readers = {
        "read_message": lambda: repo.read_message("lost", "assistant", 0),
        "list_messages": lambda: repo.list_messages("lost", "assistant"),
        "restore_agent": lambda: repo.restore_agent("lost", "assistant"),
        "export_session": lambda: repo.export_session("lost"),
    }
    for name, read in readers.items():
        with pytest.raises(MissingBlobError, match="sessions_blobs") as caught:
            read()
        assert not isinstance(caught.value, ConcurrentModificationError), f"{name}: a retry cannot bring it back"
        assert "missing" in str(caught.value)
    with pytest.raises(MissingBlobError) as caught:
        repo.export_session("lost")
    assert caught.value.session_id == "lost", "the export knows its session and names it"


def test_an_export_that_races_a_rewrite_reads_again_and_succeeds(
    repo: MongoDBSessionRepository, mongo_client: MongoClient[Any], db_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A redaction deletes the old blob after storing the new version: a read in between re-reads."""
    new_session(repo, "race")
    secret = {"role": "user", "content": [{"text": "secret " + "s" * BIG}]}
    repo.create_message("race", "assistant", SessionMessage(message=secret, message_id=0))
    redacted = {"role": "user", "content": [{"text": "[redacted]"}]}
    original = blobs.BlobStore.read_blocks
    calls: list[str | None] = []

    def racing(self: blobs.BlobStore, ids: list[Any], *args: Any, **kwargs: Any) -> dict[Any, Any]:
        calls.append(kwargs.get("session_id"))
        if len(calls) == 1:  # the export read the document (with the marker); the rewrite lands now
            repo.update_message("race", "assistant", SessionMessage(message=redacted, message_id=0))
        return original(self, ids, *args, **kwargs)

    monkeypatch.setattr(blobs.BlobStore, "read_blocks", racing)
    exported = repo.export_session("race")
    assert calls == ["race"], "the second read found no marker: nothing more to resolve"
    assert exported["session"]["agents"]["assistant"]["messages"][0]["message"] == redacted
    assert blob_files(mongo_client, db_name) == 0


def test_a_raced_block_is_a_conflict_only_when_the_session_no_longer_refers_to_it(
    repo: MongoDBSessionRepository, mongo_client: MongoClient[Any], db_name: str
) -> None:
    new_session(repo, "check")
    repo.create_message(
        "check", "assistant", SessionMessage(message={"role": "user", "content": [{"text": "c" * BIG}]}, message_id=0)
    )
    [blob_id] = [f["_id"] for f in mongo_client[db_name]["sessions_blobs.files"].find()]
    store = blobs.BlobStore(mongo_client[db_name], "sessions")
    _lose_the_blobs(mongo_client, db_name)
    with pytest.raises(MissingBlobError, match=str(blob_id)):
        store.read_blocks([blob_id], session_id="check")
    with pytest.raises(MissingBlobError):
        store.read_blocks([blob_id])  # without the session nothing can be checked: never a retry loop
    repo.update_message(  # the message no longer refers to the blob: a reader that still had it raced this
        "check", "assistant", SessionMessage(message={"role": "user", "content": [{"text": "new"}]}, message_id=0)
    )
    with pytest.raises(ConcurrentModificationError, match="read it again") as caught:
        store.read_blocks([blob_id], session_id="check")
    assert not isinstance(caught.value, MissingBlobError) and caught.value.session_id == "check"
    repo.delete_session("check")
    with pytest.raises(ConcurrentModificationError):
        store.read_blocks([blob_id], session_id="check")


def test_the_reference_check_reads_markers_in_raw_bson() -> None:
    from bson import ObjectId, encode

    kept, gone = ObjectId(), ObjectId()
    raw = encode({"messages": [{"message": {"content": [{MARKER: {"id": kept, "bytes": 9}}]}}]})
    assert blobs.still_referenced({kept, gone}, [raw]) == {kept}
    assert blobs.still_referenced({gone}, [raw, encode({"other_id": gone})]) == set(), "only a marker's id counts"
