"""The lifecycle document builders and the export checks (pure: no database)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import bson
import pytest

from mongodb_session_manager import documents as d
from mongodb_session_manager import documents_archive as da
from mongodb_session_manager import documents_lifecycle as dl
from mongodb_session_manager.errors import (
    InvalidExportError,
    InvalidIdentifierError,
    InvalidInputError,
    InvalidMetadataError,
    UnsupportedSchemaVersionError,
)
from mongodb_session_manager.export import export_session_document
from mongodb_session_manager.portable import check_export


def test_retention_days_validation() -> None:
    assert dl.validate_retention_days(None) is None
    assert dl.validate_retention_days(0) == 0 and dl.validate_retention_days(0.5) == 0.5
    for bad in (-1, True, "3", float("inf"), dl.MAX_RETENTION_DAYS + 1):
        with pytest.raises(InvalidInputError):
            dl.validate_retention_days(bad)


def test_expiry_is_removed_when_held_or_without_days() -> None:
    stage = dl.set_retention_update(None)[1]["$set"][dl.EXPIRES_AT]["$cond"]
    assert stage[1] == "$$REMOVE"
    assert dl.legal_hold_update(True)[0]["$set"][dl.LEGAL_HOLD] is True


def test_redaction_counts_are_rule_names_only() -> None:
    assert dl.redactions_update({"email": 2}) == {"$inc": {"redactions.email": 2}}
    with pytest.raises(InvalidMetadataError):
        dl.redactions_update({"bad.rule": 1})


def test_purge_keeps_feedback_unless_asked() -> None:
    assert d.FEEDBACKS not in dl.purge_messages_update()[0]["$set"]
    assert dl.purge_messages_update(keep_feedback=False)[0]["$set"][d.FEEDBACKS] == []


def _export(**session: Any) -> dict[str, Any]:
    return export_session_document({"_id": "s", "session_id": "s", "created_at": datetime(2025, 1, 1), **session})


def test_import_document_keeps_the_conversation_and_drops_the_source_system() -> None:
    data = _export(
        session_viewer_password="SECRET",
        expires_at=datetime(2025, 1, 2),
        agents={"a": {"lease": {"token": "t"}, "messages": [{"message_id": 0, "created_at": datetime(2025, 1, 1)}]}},
        feedbacks=[{"rating": "up", "created_at": datetime(2025, 1, 1)}],
    )
    doc = dl.import_document(check_export(data))
    assert doc["_id"] == doc["session_id"] == "s"
    assert doc["session_viewer_password"] != "SECRET" and len(doc["session_viewer_password"]) == 32
    assert "lease" not in doc["agents"]["a"] and "expires_at" not in doc
    assert isinstance(doc["created_at"], datetime) and isinstance(doc["feedbacks"][0]["created_at"], datetime)
    assert isinstance(doc["agents"]["a"]["messages"][0]["created_at"], datetime)
    assert dl.import_document(check_export(data), session_id="other")["_id"] == "other"
    with pytest.raises(InvalidIdentifierError):
        dl.import_document(check_export(_export(agents={"a.b": {}})))


def test_check_export_errors() -> None:
    good = _export()
    for bad in (None, {"format": "x"}, {**good, "schema_version": 0}, {**good, "session": []}):
        with pytest.raises(InvalidExportError):
            check_export(bad)
    with pytest.raises(UnsupportedSchemaVersionError):
        check_export({**good, "schema_version": 2})
    assert check_export(good) is not good["session"], "a private copy"


# ---- archived messages --------------------------------------------------------------------------------------


def _history(n: int, text: str = "x") -> list[dict[str, Any]]:
    return [{"message_id": i, "message": {"role": "user", "content": [{"text": f"{i} {text}"}]}} for i in range(n)]


def _ids() -> Any:
    counter = iter(range(1000))
    return lambda: f"bucket-{next(counter)}"


def test_an_import_past_the_policy_is_written_as_the_split_would_leave_it() -> None:
    policy = da.ArchivePolicy(max_messages=6, keep_messages=3, bucket_messages=2)
    doc = {"_id": "s", "agents": {"a": {"messages": _history(10), "next_message_id": 10}, "b": {"messages": []}}}
    written, buckets = dl.archive_imported_document(doc, policy, _ids())
    entry = written["agents"]["a"]
    # The newest keep_messages stay, plus the one that would have made a bucket of one: whole buckets move.
    assert [m["message_id"] for m in entry["messages"]] == [6, 7, 8, 9]
    assert [(b["start"], b["count"]) for b in buckets] == [(0, 2), (2, 2), (4, 2)]
    assert [m["message_id"] for b in buckets for m in b["messages"]] == list(range(6))
    assert all(b["session_id"] == "s" and b["agent_id"] == "a" for b in buckets)
    archive = entry["archive"]
    assert archive["count"] == 6 and [e["id"] for e in archive["buckets"]] == [b["_id"] for b in buckets]
    assert [(e["first_message_id"], e["last_message_id"]) for e in archive["buckets"]] == [
        (0, 1),
        (2, 3),
        (4, 5),
    ]
    assert archive["bytes"] == sum(b["bytes"] for b in buckets) > 0
    assert written["agents"]["b"] == {"messages": []} and "archive" not in doc["agents"]["a"], "input unchanged"


def test_an_import_within_the_policy_without_one_or_with_odd_ids_stays_one_document() -> None:
    policy = da.ArchivePolicy(max_messages=6, keep_messages=3, bucket_messages=2)
    small = {"_id": "s", "agents": {"a": {"messages": _history(6)}}}
    assert dl.archive_imported_document(small, policy, _ids()) == (small, [])
    big = {"_id": "s", "agents": {"a": {"messages": _history(10)}}}
    assert dl.archive_imported_document(big, None, _ids()) == (big, [])
    shuffled = {"_id": "s", "agents": {"a": {"messages": list(reversed(_history(10)))}}}
    assert dl.archive_imported_document(shuffled, policy, _ids())[1] == [], "bucket id ranges need increasing ids"


def test_an_import_past_the_byte_limit_splits_and_counts_the_id_counter() -> None:
    policy = da.ArchivePolicy(max_messages=1000, keep_messages=500, max_bytes=50_000, keep_bytes=20_000)
    doc = {"_id": "s", "agents": {"a": {"messages": _history(20, "y" * 5_000)}}}
    written, buckets = dl.archive_imported_document(doc, policy, _ids())
    assert buckets and len(bson.encode(written)) <= policy.keep_bytes
    assert written["agents"]["a"]["next_message_id"] == 20, "derived from the whole history when absent"


def test_import_document_drops_an_archive_list_of_the_source() -> None:
    data = _export(agents={"a": {"messages": []}})
    data["session"]["agents"]["a"]["archive"] = {"count": 3, "buckets": [{"id": "x", "start": 0, "count": 3}]}
    assert "archive" not in dl.import_document(check_export(data))["agents"]["a"]


def test_purge_unlists_the_archive() -> None:
    text = str(dl.purge_messages_update())
    assert "'$ne': ['$$field.k', 'archive']" in text
