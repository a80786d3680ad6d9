"""The export format (pure): versioned, faithful, JSON-safe, never the viewer password."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

from bson import Binary, Decimal128, ObjectId
from bson.dbref import DBRef

from mongodb_session_manager.export import EXPORT_FORMAT, EXPORT_SCHEMA_VERSION, export_session_document

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
