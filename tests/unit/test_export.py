"""The export format (pure): versioned, faithful, JSON-safe, never the viewer password."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from bson import Binary, Decimal128, ObjectId
from bson.dbref import DBRef

from mongodb_session_manager.errors import ConcurrentModificationError
from mongodb_session_manager.export import (
    EXPORT_FORMAT,
    EXPORT_SCHEMA_VERSION,
    export_session_document,
    join_archived_messages,
    listed_bucket_ids,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def test_export_is_versioned_json_without_internal_fields() -> None:
    doc = {
        "_id": "s1",
        "session_id": "s1",
        "session_viewer_password": "SECRET",
        "created_at": T0,
        "metadata": {"when": datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))), "n": float("nan")},
        "feedbacks": [{"rating": "up", "source": "reviewer"}],
        "agents": {"a": {"messages": [{"message": {"content": [{"image": {"source": {"bytes": Binary(b"ab")}}}]}}]}},
        "extra": {"oid": ObjectId("0123456789ab0123456789ab"), "dec": Decimal128("1.5"), "ref": DBRef("c", 1)},
    }
    out = export_session_document(doc, exported_at=T0)
    text = json.dumps(out)  # JSON-safe throughout
    assert "SECRET" not in text and "_id" not in out["session"]
    assert out["format"] == EXPORT_FORMAT and out["schema_version"] == EXPORT_SCHEMA_VERSION == 1
    assert out["exported_at"] == "2024-05-01T12:00:00.000Z"
    session = out["session"]
    assert session["metadata"] == {"when": "2024-05-01T12:00:00.000Z", "n": "nan"}
    assert session["feedbacks"] == [{"rating": "up", "source": "reviewer"}]
    image = session["agents"]["a"]["messages"][0]["message"]["content"][0]["image"]
    assert image["source"]["bytes"] == {"__bytes_encoded__": True, "data": "YWI="}
    assert session["extra"] == {"oid": "0123456789ab0123456789ab", "dec": "1.5", "ref": {"$ref": "c", "$id": 1}}


def test_a_document_without_session_id_takes_it_from_the_id() -> None:
    assert export_session_document({"_id": "only-id"})["session"]["session_id"] == "only-id"


# ---- sessions whose oldest messages are archived in buckets ------------------------------------------------


def _message(i: int) -> dict[str, object]:
    return {"message_id": i, "message": {"role": "user", "content": [{"text": f"m{i}"}]}, "created_at": T0}


def _split_doc() -> tuple[dict[str, object], list[dict[str, object]]]:
    first, second = ObjectId(), ObjectId()
    buckets = [
        {"_id": second, "start": 2, "messages": [_message(2), _message(3)]},
        {"_id": first, "start": 0, "messages": [_message(0), _message(1)]},
        {"_id": ObjectId(), "start": 4, "messages": [_message(99)]},  # an orphan: not listed
    ]
    archive = {
        "count": 4,
        "bytes": 100,
        "buckets": [
            {"id": first, "start": 0, "count": 2, "first_message_id": 0, "last_message_id": 1, "bytes": 50},
            {"id": second, "start": 2, "count": 2, "first_message_id": 2, "last_message_id": 3, "bytes": 50},
        ],
    }
    doc = {
        "_id": "s",
        "session_id": "s",
        "agents": {
            "a": {"messages": [_message(4)], "next_message_id": 5, "archive": archive},
            "b": {"messages": [_message(0)], "next_message_id": 1},
        },
    }
    return doc, buckets


def test_a_split_session_exports_its_whole_history_as_if_unsplit() -> None:
    doc, buckets = _split_doc()
    assert listed_bucket_ids(doc) == [e["id"] for e in doc["agents"]["a"]["archive"]["buckets"]]
    unsplit = {
        **doc,
        "agents": {
            "a": {"messages": [_message(i) for i in range(5)], "next_message_id": 5},
            "b": doc["agents"]["b"],
        },
    }
    exported = export_session_document(doc, buckets=buckets, exported_at=T0)
    assert exported == export_session_document(unsplit, exported_at=T0)
    assert "archive" not in exported["session"]["agents"]["a"], "bucket ids of the source stay out"
    assert "archive" in doc["agents"]["a"], "the caller's document is not changed"


def test_a_split_session_without_its_listed_buckets_is_refused_not_truncated() -> None:
    doc, buckets = _split_doc()
    with pytest.raises(ConcurrentModificationError, match="archived bucket"):
        export_session_document(doc)
    with pytest.raises(ConcurrentModificationError):
        join_archived_messages(doc, buckets[1:])
    assert listed_bucket_ids({"agents": {"a": {"messages": []}}}) == []
