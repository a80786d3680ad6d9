"""The split: what it reads, which messages move and how they group, and the bucket documents it writes."""

from __future__ import annotations

from datetime import UTC, datetime

import bson
import pytest
from bson.raw_bson import RawBSONDocument

from mongodb_session_manager import documents as d
from mongodb_session_manager import documents_archive as da
from mongodb_session_manager import documents_split as dsp

KIB = 1024


def stored(count: int, size: int = 100) -> list[dsp.StoredMessage]:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return [dsp.StoredMessage(message_id=i, bytes=size, updated_at=at) for i in range(count)]


def test_nothing_moves_within_the_policy() -> None:
    policy = da.ArchivePolicy()
    assert dsp.plan_split(stored(policy.max_messages), 100 * KIB, policy) is None


def test_past_max_messages_the_oldest_move_in_whole_buckets() -> None:
    policy = da.ArchivePolicy(max_messages=10, keep_messages=4, bucket_messages=3)
    plan = dsp.plan_split(stored(11), 2 * KIB, policy)
    assert plan is not None
    assert plan.count == 6 and plan.groups == (3, 3), "no one-message bucket beside the full ones"
    assert (plan.first_message_id, plan.last_message_id) == (0, 5)
    assert plan.moved_bytes == 600
    defaults = da.ArchivePolicy()
    plan = dsp.plan_split(stored(201), 100 * KIB, defaults)
    assert plan is not None and plan.groups == (100,), "appending one message at a time: one full bucket"


def test_past_max_bytes_messages_move_until_the_document_is_within_keep_bytes() -> None:
    policy = da.ArchivePolicy(max_bytes=1000 * KIB, keep_bytes=500 * KIB, bucket_bytes=600 * KIB)
    messages = stored(5, 300 * KIB)
    plan = dsp.plan_split(messages, 5 * 300 * KIB + 10 * KIB, policy)
    assert plan is not None and plan.count == 4, "down to one message of 300 KiB + the rest of the document"
    assert plan.groups == (2, 2), "a bucket holds at most bucket_bytes"


def test_the_newest_message_always_stays_and_a_huge_message_gets_a_bucket_of_its_own() -> None:
    policy = da.ArchivePolicy(max_bytes=1000 * KIB, keep_bytes=500 * KIB, bucket_bytes=600 * KIB)
    sizes = [100 * KIB, 4000 * KIB, 100 * KIB, 4000 * KIB]
    messages = [dsp.StoredMessage(message_id=i, bytes=b, updated_at=None) for i, b in enumerate(sizes)]
    plan = dsp.plan_split(messages, sum(sizes), policy)
    assert plan is not None and plan.count == 3, "the last message is never moved"
    assert plan.groups == (1, 1, 1)
    assert plan.max_updated_at is None


def test_the_split_plans_from_the_raw_messages_it_read_and_moves_them_as_read() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    as_read = d.CODEC_OPTIONS.with_options(document_class=RawBSONDocument)  # the repository's raw reads
    entries = [{"message_id": i, "message": {"role": "user", "content": [{"text": "x" * i}]}} for i in range(3)]
    messages = [RawBSONDocument(bson.encode({**e, "updated_at": at}), codec_options=as_read) for e in entries]
    doc = {"size": 5000, "agents": {"a": {"archive": {"count": 40}, "messages": messages}}}
    state = dsp.split_state(doc, "a")
    assert (state.size, state.archived) == (5000, 40)
    assert state.raw_messages == messages, "the messages a plan picks are re-sent byte for byte"
    assert [m.bytes for m in state.stored] == [len(m.raw) for m in messages], "what $bsonSize gives"
    assert [(m.message_id, m.updated_at) for m in state.stored] == [(0, at), (1, at), (2, at)]
    never_split = dsp.split_state({"size": 10, "agents": {"a": {"messages": []}}}, "a")
    assert (never_split.archived, never_split.stored) == (0, [])
    assert dsp.split_state({"size": 10}, "a").stored == [], "no such agent: nothing to move"
    projection = dsp.split_read_projection("a")
    assert projection == {
        "_id": 0,
        "size": {"$bsonSize": "$$ROOT"},
        "agents.a.archive.count": 1,
        "agents.a.messages": 1,
    }


def test_a_message_that_is_not_a_document_stops_the_split() -> None:
    doc = {"size": 10, "agents": {"a": {"messages": [RawBSONDocument(bson.encode({"message_id": 0})), "text"]}}}
    with pytest.raises(ValueError, match="position 1"):
        dsp.split_state(doc, "a")


def test_a_bucket_records_what_its_messages_hold() -> None:
    def raw(message: dict) -> RawBSONDocument:
        return RawBSONDocument(bson.encode(message))

    plain = [raw({"message_id": i, "message": {"role": "user", "content": [{"text": "hi"}]}}) for i in range(2)]
    tool = raw({"message_id": 2, "message": {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t"}}]}})
    blob = raw({"message_id": 3, "message": {"role": "user", "content": [{"__msm_blob__": {"id": 1, "bytes": 9}}]}})
    plan = dsp.SplitPlan(
        count=4, groups=(2, 2), moved_bytes=0, first_message_id=0, last_message_id=3, max_updated_at=None
    )
    docs, _ = dsp.bucket_documents("s", "a", [*plain, tool, blob], plan, archived=0, ids=["b0", "b1"])
    assert docs[0]["holds"] == {"repair": False, "blobs": False, "tools": False}
    assert docs[1]["holds"] == {"repair": False, "blobs": True, "tools": True}
    from mongodb_session_manager.raw_flags import RawFlags

    assert RawFlags.recorded(docs[1]["holds"]) == RawFlags(blobs=True, tools=True)
    assert RawFlags.recorded(None) is None and RawFlags.recorded({"repair": 1}) is None, "unknown: search the bytes"


def test_a_bucket_entry_says_when_its_ids_run_on_by_position_and_the_bucket_when_it_holds_a_redaction() -> None:
    def message(i: int, redacted: bool = False) -> dict:
        stored = {"message_id": i, "message": {"role": "user", "content": [{"text": f"m{i}"}]}, "redact_message": None}
        if redacted:
            stored["redact_message"] = {"role": "user", "content": [{"text": "[redacted]"}]}
        return stored

    plan = dsp.SplitPlan(
        count=6, groups=(2, 2, 2), moved_bytes=0, first_message_id=0, last_message_id=7, max_updated_at=None
    )
    # 0, 1 | 2, 4 (a gap) | 7, 6 (out of order, though last - first + 1 == count would say otherwise)
    messages = [message(0), message(1, redacted=True), message(2), message(4), message(7), message(6)]
    docs, entries = dsp.bucket_documents("s", "a", messages, plan, archived=0, ids=["b0", "b1", "b2"])

    assert [e.get(da.SEQUENTIAL_IDS) for e in entries] == [True, None, None]
    assert [doc["redacted"] for doc in docs] == [True, False, False]
    assert [e.get(da.REDACTED) for e in entries] == [True, None, None], "the entry says so too, only when true"
    assert [da.bucket_unredacted(doc) for doc in docs] == [False, True, True]
    odd = [message(10), {**message(11), "message_id": "11"}, message(12), message(13), message(14)]
    del odd[3]["message_id"]  # the first and last of a bucket pin its range; one between them may lack one
    two = dsp.SplitPlan(
        count=5, groups=(2, 3), moved_bytes=0, first_message_id=10, last_message_id=14, max_updated_at=None
    )
    _, entries = dsp.bucket_documents("s", "a", odd, two, archived=0, ids=["c0", "c1"])
    assert [e.get(da.SEQUENTIAL_IDS) for e in entries] == [None, None], "a text id, a missing id: read with ids"
    assert not da.bucket_unredacted({}), "written before, or a message in it is being rewritten: unknown"
