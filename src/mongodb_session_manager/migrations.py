"""Schema migration of session documents to :data:`.documents.CURRENT_SCHEMA_VERSION`.

Every session document carries ``schema_version`` (written by :func:`.documents.new_session_document`).
Documents without one (written by the original library, or by this one before version 2) are
brought to the current shape in place by ``mongodb-session-manager migrate``; ``--dry-run`` only
reports which documents need it and why.

Each document is migrated by one guarded update (:func:`.documents_lifecycle.migration_guard`:
"still below the current version"), so running it twice, or from two processes at once, changes
nothing the second time, and a session in use keeps working while it runs (the update only adds
what is missing and never rewrites what is already in the current shape).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from pymongo.collection import Collection

from . import documents as d
from . import documents_lifecycle as dl
from .driver_errors import translate_errors

logger = logging.getLogger(__name__)


@dataclass
class MigrationEntry:
    """One document: what it needs and, after a run, what happened (``migrated`` / ``already migrated``)."""

    session_id: str
    reasons: list[str] = field(default_factory=list)
    snapshot: bool = False
    status: str = "needs migration"


@dataclass
class MigrationReport:
    entries: list[MigrationEntry]
    #: Documents with a schema version newer than this library's (left alone).
    newer: int = 0
    dry_run: bool = True

    @property
    def migrated(self) -> int:
        return sum(1 for e in self.entries if e.status == "migrated")


def plan(collection: Collection[Any], *, limit: int | None = None) -> MigrationReport:
    """The documents that need migration, with the reasons (nothing is written)."""
    with translate_errors(None):
        rows = list(collection.aggregate(dl.migration_report_pipeline(limit)))
        newer = collection.count_documents(dl.newer_schema_filter())
    entries = [MigrationEntry(str(r[d.ID]), list(r["reasons"]), bool(r["snapshot"])) for r in rows]
    return MigrationReport(entries, newer=newer, dry_run=True)


def migrate(collection: Collection[Any], *, dry_run: bool = False, limit: int | None = None) -> MigrationReport:
    """Migrate every document that needs it (one guarded update each); ``dry_run`` only plans."""
    report = plan(collection, limit=limit)
    report.dry_run = dry_run
    if dry_run:
        return report
    for entry in report.entries:
        update = dl.migration_update(viewer_password=d.new_viewer_password(), snapshot=entry.snapshot)
        with translate_errors(entry.session_id):
            result = collection.update_one(dl.migration_guard(entry.session_id), update)
        entry.status = "migrated" if result.modified_count else "already migrated"
        logger.info("session_id=<%s> | status=<%s> | schema migration", entry.session_id, entry.status)
    return report
