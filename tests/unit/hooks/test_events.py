"""The wire format of metadata events (SQS body, WebSocket payload) and the field selection."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from bson import ObjectId

from mongodb_session_manager.hooks._events import (
    connection_id_from,
    delete_event,
    normalize_fields,
    select_keys,
    select_metadata,
    to_json,
    update_event,
    utc_timestamp,
)


def test_select_metadata_keeps_only_configured_fields_and_drops_excluded_ones() -> None:
    metadata = {"status": "busy", "priority": 1, "internal": "secret", "ws_connection_id": "abc"}
    fields = normalize_fields(["status", "priority", "ws_connection_id"])
    assert select_metadata(metadata, fields) == {"status": "busy", "priority": 1, "ws_connection_id": "abc"}
    assert select_metadata(metadata, fields, exclude=["ws_connection_id"]) == {"status": "busy", "priority": 1}
    assert select_metadata(metadata, None) == metadata


def test_select_keys_accepts_a_single_key_keeps_order_and_drops_duplicates() -> None:
    assert select_keys("status", None) == ["status"]
    assert select_keys(["b", "a", "b", "internal"], frozenset({"a", "b"})) == ["b", "a"]
    assert select_keys(["connection_id", "a"], None, exclude=["connection_id"]) == ["a"]


def test_metadata_fields_must_be_a_list_of_names() -> None:
    assert normalize_fields(None) is None
    assert normalize_fields(("a", "b")) == frozenset({"a", "b"})
    with pytest.raises(TypeError, match="list of field names"):
        normalize_fields("status")
    with pytest.raises(ValueError, match="non-empty strings"):
        normalize_fields(["status", ""])


def test_events_have_the_documented_shape() -> None:
    assert update_event("s1", {"a": 1}, "T") == {
        "event_type": "metadata_update",
        "session_id": "s1",
        "metadata": {"a": 1},
        "timestamp": "T",
    }
    assert delete_event("s1", ["a"], "T") == {
        "event_type": "metadata_delete",
        "session_id": "s1",
        "deleted_keys": ["a"],
        "timestamp": "T",
    }


def test_json_renders_values_mongodb_can_store() -> None:
    oid = ObjectId()
    metadata = {
        "naive": datetime(2024, 1, 26, 10, 30),
        "aware": datetime(2024, 1, 26, 10, 30, tzinfo=UTC),
        "raw": b"\x00\x01",
        "oid": oid,
        "tags": ("x",),
        "name": "José",
    }
    decoded = json.loads(to_json(update_event("s1", metadata, "T")))["metadata"]
    assert decoded == {
        "naive": "2024-01-26T10:30:00+00:00",
        "aware": "2024-01-26T10:30:00+00:00",
        "raw": "AAE=",
        "oid": str(oid),
        "tags": ["x"],
        "name": "José",
    }


def test_timestamp_is_iso_8601_utc() -> None:
    parsed = datetime.fromisoformat(utc_timestamp())
    assert parsed.utcoffset() is not None and parsed.utcoffset().total_seconds() == 0


def test_connection_id_prefers_ws_connection_id_and_ignores_blanks() -> None:
    assert connection_id_from({"ws_connection_id": "A", "connection_id": "B"}) == "A"
    assert connection_id_from({"ws_connection_id": "  ", "connection_id": "B"}) == "B"
    assert connection_id_from({"connection_id": 42}) is None
    assert connection_id_from({}) is None
    assert connection_id_from(None) is None
