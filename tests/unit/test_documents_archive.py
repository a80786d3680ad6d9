"""The split plan and the reshaping of message updates: which messages move, how they group, and where
a rewrite of an archived message goes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mongodb_session_manager import documents_archive as da

KIB = 1024


def stored(count: int, size: int = 100) -> list[da.StoredMessage]:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return [da.StoredMessage(message_id=i, bytes=size, updated_at=at) for i in range(count)]


def test_nothing_moves_within_the_policy() -> None:
    policy = da.ArchivePolicy()
    assert da.plan_split(stored(policy.max_messages), 100 * KIB, policy) is None


def test_past_max_messages_the_oldest_move_in_whole_buckets() -> None:
    policy = da.ArchivePolicy(max_messages=10, keep_messages=4, bucket_messages=3)
    plan = da.plan_split(stored(11), 2 * KIB, policy)
    assert plan is not None
    assert plan.count == 6 and plan.groups == (3, 3), "no one-message bucket beside the full ones"
    assert (plan.first_message_id, plan.last_message_id) == (0, 5)
    assert plan.moved_bytes == 600
    defaults = da.ArchivePolicy()
    plan = da.plan_split(stored(201), 100 * KIB, defaults)
    assert plan is not None and plan.groups == (100,), "appending one message at a time: one full bucket"


def test_past_max_bytes_messages_move_until_the_document_is_within_keep_bytes() -> None:
    policy = da.ArchivePolicy(max_bytes=1000 * KIB, keep_bytes=500 * KIB, bucket_bytes=600 * KIB)
    messages = stored(5, 300 * KIB)
    plan = da.plan_split(messages, 5 * 300 * KIB + 10 * KIB, policy)
    assert plan is not None and plan.count == 4, "down to one message of 300 KiB + the rest of the document"
    assert plan.groups == (2, 2), "a bucket holds at most bucket_bytes"


def test_the_newest_message_always_stays_and_a_huge_message_gets_a_bucket_of_its_own() -> None:
    policy = da.ArchivePolicy(max_bytes=1000 * KIB, keep_bytes=500 * KIB, bucket_bytes=600 * KIB)
    sizes = [100 * KIB, 4000 * KIB, 100 * KIB, 4000 * KIB]
    messages = [da.StoredMessage(message_id=i, bytes=b, updated_at=None) for i, b in enumerate(sizes)]
    plan = da.plan_split(messages, sum(sizes), policy)
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
    # The rewritten message may hold anything now: the bucket's record of what it holds goes with it.
    assert bucket == {"$set": {"messages.$[m].message": {"role": "user"}}, "$unset": {"holds": ""}}
    assert session == {"$set": {"updated_at": 1}, "$inc": {"totals.x": 1}, "$push": {"guardrail_events": {"e": 1}}}


def test_a_bucket_records_what_its_messages_hold() -> None:
    import bson
    from bson.raw_bson import RawBSONDocument

    def raw(message: dict) -> RawBSONDocument:
        return RawBSONDocument(bson.encode(message))

    plain = [raw({"message_id": i, "message": {"role": "user", "content": [{"text": "hi"}]}}) for i in range(2)]
    tool = raw({"message_id": 2, "message": {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t"}}]}})
    blob = raw({"message_id": 3, "message": {"role": "user", "content": [{"__msm_blob__": {"id": 1, "bytes": 9}}]}})
    plan = da.SplitPlan(
        count=4, groups=(2, 2), moved_bytes=0, first_message_id=0, last_message_id=3, max_updated_at=None
    )
    docs, _ = da.bucket_documents("s", "a", [*plain, tool, blob], plan, archived=0, ids=["b0", "b1"])
    assert docs[0]["holds"] == {"repair": False, "blobs": False, "tools": False}
    assert docs[1]["holds"] == {"repair": False, "blobs": True, "tools": True}
    from mongodb_session_manager.raw_flags import RawFlags

    assert RawFlags.recorded(docs[1]["holds"]) == RawFlags(blobs=True, tools=True)
    assert RawFlags.recorded(None) is None and RawFlags.recorded({"repair": 1}) is None, "unknown: search the bytes"


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


def test_the_restore_tail_answers_windows_in_the_document_and_says_what_to_read_otherwise() -> None:
    def doc(messages: int, archived: int, removed: int, counter: int | None = None, stored: int | None = None) -> dict:
        agent: dict = {
            "agent_data": {"conversation_manager_state": {"removed_message_count": removed}},
            "messages": [{"message_id": archived + i} for i in range(messages)],
        }
        if archived:
            agent["archive"] = {"count": archived}
        if counter is not None:
            agent["next_message_id"] = counter
        return {"agents": {"a": agent}, "stored": messages if stored is None else stored}

    window = da.tail_window(doc(150, 1000, 1110, counter=1150), "a")
    assert isinstance(window, dict) and [m["message_id"] for m in window["messages"]] == list(range(1110, 1150))
    assert (window["offset"], window["next_message_id"], window["stored"]) == (1110, 1150, 150)
    assert da.tail_window(doc(150, 1000, 900), "a") == da.ReadFrom(None, whole_list=True), "unlisted archive"
    reaching = doc(150, 1000, 950, counter=1150)
    reaching["agents"]["a"]["archive"]["buckets"] = [
        {"id": "b9", "start": 900, "count": 100, "bytes": 10},
        {"id": "b8", "start": 800, "count": 100, "bytes": 10},
    ][::-1]
    window = da.tail_window(reaching, "a")
    assert isinstance(window, dict) and window["bucket_ids"] == ["b9"], "only the newest buckets it reaches into"
    assert len(window["messages"]) == 150, "all in-document messages follow the archived part"
    reaching["agents"]["a"]["agent_data"]["conversation_manager_state"]["removed_message_count"] = 700
    assert da.tail_window(reaching, "a") == da.ReadFrom(None, whole_list=True), "older than the entries read"
    older = [{"id": f"b{i}", "start": 100 * i, "count": 100} for i in range(8)]
    reaching["agents"]["a"]["archive"]["buckets"][0:0] = older
    window = da.tail_window(reaching, "a", da.ReadFrom(None, whole_list=True))
    assert isinstance(window, dict) and window["bucket_ids"] == ["b7", "b8", "b9"], "the whole list answers it"

    # A long array (no policy, a session from the original library): the server's count places the tail.
    long = doc(512, 0, 1960, stored=2000)
    window = da.tail_window(long, "a")
    assert isinstance(window, dict) and len(window["messages"]) == 40, "a sliding window lies in the tail"
    assert [m["message_id"] for m in window["messages"]][:1] == [1960 - 1488], "positions from the count"
    long["agents"]["a"]["agent_data"]["conversation_manager_state"]["removed_message_count"] = 100
    assert da.tail_window(long, "a") == da.ReadFrom(100), "read again from exactly the window's start"
    again = doc(1900, 0, 100, stored=2000)
    window = da.tail_window(again, "a", da.ReadFrom(100))
    assert isinstance(window, dict) and len(window["messages"]) == 1900
    assert da.tail_window(again, "a", da.ReadFrom(90)) is None, "the array changed under the position asked"
    assert da.tail_window({"agents": {"a": {"agent_data": {}, "messages": []}}}, "a") is None, "no count"
    legacy = da.tail_window(doc(10, 0, 4), "a")
    assert isinstance(legacy, dict) and legacy["next_message_id"] == 10, "no counter: the newest id + 1"
    assert da.tail_window({"agents": {}}, "a") == {}, "no such agent"
    projection = da.restore_tail_projection("a", 512, read_from=da.ReadFrom(0, whole_list=True), size=True)
    assert projection["agents.a.messages"] == 1 and projection["agents.a.archive.buckets"] == 1
    assert "size" in projection and "stored" in projection
    assert da.restore_tail_projection("a", 512, read_from=da.ReadFrom(7))["agents.a.messages"] == {
        "$slice": [7, 2**31 - 1]
    }
    assert da.removed_offset({"conversation_manager_state": {"removed_message_count": True}}) == 0
    assert da.removed_offset({"conversation_manager_state": {"removed_message_count": 7.9}}) == 7
    assert da.restore_tail(None) == 512 and da.restore_tail(da.ArchivePolicy(max_messages=1000)) == 2200
