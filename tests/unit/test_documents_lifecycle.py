"""The lifecycle document builders and the export checks (pure: no database)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from mongodb_session_manager import documents as d
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


def test_migration_of_snapshot_sessions_only_completes_base_fields() -> None:
    (stage,) = dl.migration_update(viewer_password="p" * 32, snapshot=True)
    assert d.AGENTS not in stage["$set"] and stage["$set"][d.SCHEMA_VERSION] == {"$literal": d.CURRENT_SCHEMA_VERSION}
    assert dl.migration_guard("s") == {"_id": "s", "schema_version": {"$not": {"$gte": d.CURRENT_SCHEMA_VERSION}}}
