"""The split plan and the reshaping of message updates: which messages move, how they group, and where
a rewrite of an archived message goes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

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


def test_the_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        da.ArchivePolicy(max_messages=0)
    with pytest.raises(ValueError):
        da.ArchivePolicy(max_bytes=10, keep_bytes=20)
    with pytest.raises(ValueError):
        da.ArchivePolicy(bucket_bytes=True)  # type: ignore[arg-type]


def test_a_message_update_splits_into_its_bucket_part_and_its_session_part() -> None:
    update = {
        "$set": {"agents.a.messages.$[m].message": {"role": "user"}, "updated_at": 1},
        "$inc": {"totals.x": 1},
        "$push": {"guardrail_events": {"e": 1}},
    }
    bucket, session = da.split_message_update("a", update)
    # The rewritten message may hold anything now: the bucket's records of what it holds go with it.
    assert bucket == {"$set": {"messages.$[m].message": {"role": "user"}}, "$unset": {"holds": "", "redacted": ""}}
    assert session == {"$set": {"updated_at": 1}, "$inc": {"totals.x": 1}, "$push": {"guardrail_events": {"e": 1}}}


def test_a_bucket_records_what_its_messages_hold() -> None:
    import bson
    from bson.raw_bson import RawBSONDocument

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


def test_a_window_is_read_by_position_only_when_every_bucket_it_reaches_says_so() -> None:
    def doc(flags: list[bool]) -> dict:
        entries = []
        for i, flag in enumerate(flags):
            entry = {"id": f"b{i}", "start": 10 * i, "count": 10}
            if flag:
                entry[da.SEQUENTIAL_IDS] = True
            entries.append(entry)
        agent = {
            "agent_data": {"conversation_manager_state": {"removed_message_count": 15}},
            "messages": [{"message_id": 10 * len(flags) + i} for i in range(3)],
            "archive": {"count": 10 * len(flags), "buckets": entries},
        }
        return {"agents": {"a": agent}}

    assert da.document_window(doc([False, True, True]), "a", 1000)[da.SEQUENTIAL_IDS] is True, "b0 is not reached"
    assert da.document_window(doc([True, False, True]), "a", 1000)[da.SEQUENTIAL_IDS] is False
    in_document = doc([True])
    in_document["agents"]["a"]["agent_data"]["conversation_manager_state"]["removed_message_count"] = 11
    assert da.document_window(in_document, "a", 1000)[da.SEQUENTIAL_IDS] is False, "no bucket to read"


def test_a_window_is_read_with_redactions_at_once_when_a_bucket_it_reaches_held_one() -> None:
    def doc(redacted: list[bool]) -> dict:
        entries = [
            {"id": f"b{i}", "start": 10 * i, "count": 10, da.SEQUENTIAL_IDS: True, **({da.REDACTED: True} if r else {})}
            for i, r in enumerate(redacted)
        ]
        agent = {
            "agent_data": {"conversation_manager_state": {"removed_message_count": 15}},
            "messages": [{"message_id": 30 + i} for i in range(3)],
            "archive": {"count": 30, "buckets": entries},
        }
        return {"agents": {"a": agent}}

    assert da.document_window(doc([False, False, True]), "a", 1000)[da.REDACTED] is True
    assert da.document_window(doc([True, False, False]), "a", 1000)[da.REDACTED] is False, "b0 is not reached"
    assert da.document_window(doc([False, False, False]), "a", 1000)[da.REDACTED] is False


def test_a_window_read_by_position_numbers_each_message_from_its_buckets_first_id() -> None:
    buckets = [
        {"start": 4, "first_message_id": 104, "messages": ["e", "f"]},
        {"start": 0, "first_message_id": 100, "messages": ["a", "b", "c", "d"]},
    ]
    in_document = [{"message_id": 106}, {"message_id": 107}]

    joined, ids = da.restore_window_messages(buckets, 2, in_document, by_position=True)

    assert joined == ["c", "d", "e", "f", *in_document]
    assert ids == [102, 103, 104, 105, 106, 107]
    assert da.restore_window_messages(buckets, 5, [], by_position=False) == (["f"], None)


def test_windows_join_buckets_by_position_then_the_document() -> None:
    doc = {
        "buckets": [{"start": 2, "messages": ["c", "d"]}, {"start": 0, "messages": ["a", "b"]}],
        "messages": ["e"],
    }
    assert da.join_window(doc) == ["a", "b", "c", "d", "e"]
    assert da.slice_bucket({"start": 10, "messages": list("abcd")}, 11, 13) == {"start": 10, "messages": ["b", "c"]}
    whole = [
        {"agent_id": "x", "start": 0, "count": 2, "messages": [1, 2]},
        {"agent_id": "y", "start": 0, "messages": [9]},
    ]
    assert da.slice_whole_buckets(whole, "x", 1) == [2]


def test_a_window_larger_than_one_reply_is_read_by_a_second_query() -> None:
    assert da.window_needs_query({"bucket_ids": [1, 2], "lookup_ids": []}) == [1, 2]
    assert da.window_needs_query({"bucket_ids": [1, 2], "lookup_ids": [1, 2]}) == []
    assert da.window_needs_query({"bucket_ids": []}) == []


def test_the_document_as_stored_answers_windows_in_it_and_in_the_newest_buckets() -> None:
    def doc(messages: int, archived: int, removed: object, counter: int | None = None) -> dict:
        agent: dict = {
            "agent_data": {"conversation_manager_state": {"removed_message_count": removed}},
            "messages": [{"message_id": archived + i} for i in range(messages)],
        }
        if archived:
            agent["archive"] = {"count": archived}
        if counter is not None:
            agent["next_message_id"] = counter
        return {"agents": {"a": agent}}

    window = da.document_window(doc(150, 1000, 1110, counter=1150), "a", 1000)
    assert window is not None and [m["message_id"] for m in window["messages"]] == list(range(1110, 1150))
    assert (window["offset"], window["next_message_id"], window["stored"]) == (1110, 1150, 150)
    assert da.document_window(doc(150, 1000, 900), "a", 1000) is None, "an archive it did not list"
    reaching = doc(150, 1000, 950, counter=1150)
    reaching["agents"]["a"]["archive"]["buckets"] = [
        {"id": "b8", "start": 800, "count": 100},
        {"id": "b9", "start": 900, "count": 100},
    ]
    window = da.document_window(reaching, "a", 1000)
    assert window is not None and window["bucket_ids"] == ["b9"], "only the buckets it reaches into"
    assert len(window["messages"]) == 150, "all in-document messages follow the archived part"
    reaching["agents"]["a"]["agent_data"]["conversation_manager_state"]["removed_message_count"] = 700
    assert da.document_window(reaching, "a", 1000) is None, "older than the entries read"
    assert da.document_window(doc(1000, 0, 990), "a", 1000) is None, "as many as the limit: not placed"
    legacy = da.document_window(doc(10, 0, 4), "a", 1000)
    assert legacy is not None and legacy["next_message_id"] == 10, "no counter: the newest id + 1"
    assert da.document_window({"agents": {}}, "a", 1000) == {}, "no such agent"
    # The offset as the server's expression reads it: a number, truncated; anything else is 0.
    for removed, expected in ((True, 0), (7.9, 7), ("3", 0), (-4, 0), (None, 0)):
        window = da.document_window(doc(10, 0, removed), "a", 1000)
        assert window is not None and window["offset"] == expected, removed
    assert da.restore_document_limit(da.ArchivePolicy()) == 600
    assert da.restore_document_limit(da.ArchivePolicy(max_messages=1000)) == 2200


def test_the_restore_find_projects_exactly_the_window_without_pipeline_stages() -> None:
    projection = da.restore_window_projection("a")
    assert projection["agent_data"] == "$agents.a.agent_data"
    assert {"messages", "bucket_ids", "offset", "stored", "next_message_id"} <= set(projection)
    assert "lookup_ids" not in projection, "buckets come by a find, in batches"
    assert "size" not in projection and "size" in da.restore_window_projection("a", size=True)
