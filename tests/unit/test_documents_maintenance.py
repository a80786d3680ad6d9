"""The collection-wide maintenance shapes: the schema migration's guard and update."""

from __future__ import annotations

from mongodb_session_manager import documents as d
from mongodb_session_manager import documents_maintenance as dm


def test_migration_of_snapshot_sessions_only_completes_base_fields() -> None:
    (stage,) = dm.migration_update(viewer_password="p" * 32, snapshot=True)
    assert d.AGENTS not in stage["$set"] and stage["$set"][d.SCHEMA_VERSION] == {"$literal": d.CURRENT_SCHEMA_VERSION}
    assert dm.migration_guard("s") == {"_id": "s", "schema_version": {"$not": {"$gte": d.CURRENT_SCHEMA_VERSION}}}
