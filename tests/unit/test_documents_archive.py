"""The archive's shapes: the policy, where a rewrite of an archived message goes, and how a restore
reads windows that reach into buckets (the split itself: test_documents_split.py)."""

from __future__ import annotations

import pytest

from mongodb_session_manager import documents_archive as da

KIB = 1024


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
