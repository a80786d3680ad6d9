"""Schema migration of session documents to :data:`.documents.CURRENT_SCHEMA_VERSION`.

Every session document carries ``schema_version`` (written by :func:`.documents.new_session_document`).
Documents without one (written by the original library, or by this one before version 2) are
brought to the current shape in place by ``mongodb-session-manager migrate``; ``--dry-run`` only
reports which documents need it and why.

Each document is migrated by one guarded update (:func:`.documents_maintenance.migration_guard`:
"still below the current version"), so running it twice, or from two processes at once, changes
nothing the second time, and a session in use keeps working while it runs (the update only adds
what is missing and never rewrites what is already in the current shape).

With ``archive`` (``migrate --archive``), sessions whose agents hold more messages than the archive
policy keeps in the document (sessions ported from the original library, which kept every message
there) are split now, by the repository's own guarded split: otherwise the first write of each such
session splits it, inside a turn (about 145 ms for 2,000 messages, against 6 ms for a write), and
every restore until then reads the whole document.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from pymongo.collection import Collection

from . import documents as d
from . import documents_archive as da
from . import documents_maintenance as dm
from . import documents_split as dsp
from .driver_errors import translate_errors
from .errors import InvalidIdentifierError

logger = logging.getLogger(__name__)


@dataclass
class MigrationEntry:
    """One document: what it needs and, after a run, what happened (``migrated`` / ``already migrated``)."""

    session_id: str
    reasons: list[str] = field(default_factory=list)
    snapshot: bool = False
    status: str = "needs migration"


@dataclass
class ArchiveEntry:
    """One agent over the archive policy: its in-document messages and, after a run, how many moved.

    ``status``: ``would archive`` (a dry run), ``archived``, ``left for its next write`` (a turn held
    the agent's lease, or the document changed meanwhile: the next write splits it as usual), or
    ``skipped: <why>`` (an id this library refuses, see the migration guide: copy the session first).
    """

    session_id: str
    agent_id: str
    stored: int
    moved: int = 0
    status: str = "would archive"


@dataclass
class MigrationReport:
    entries: list[MigrationEntry]
    #: Documents with a schema version newer than this library's (left alone).
    newer: int = 0
    dry_run: bool = True
    #: With ``archive``: every agent over the policy (see :func:`archive_oversized`).
    archived: list[ArchiveEntry] = field(default_factory=list)

    @property
    def migrated(self) -> int:
        return sum(1 for e in self.entries if e.status == "migrated")


def plan(collection: Collection[Any], *, limit: int | None = None) -> MigrationReport:
    """The documents that need migration, with the reasons (nothing is written)."""
    with translate_errors(None):
        rows = list(collection.aggregate(dm.migration_report_pipeline(limit)))
        newer = collection.count_documents(dm.newer_schema_filter())
    entries = [MigrationEntry(str(r[d.ID]), list(r["reasons"]), bool(r["snapshot"])) for r in rows]
    return MigrationReport(entries, newer=newer, dry_run=True)


def migrate(
    collection: Collection[Any],
    *,
    dry_run: bool = False,
    limit: int | None = None,
    archive: da.ArchivePolicy | None = None,
) -> MigrationReport:
    """Migrate every document that needs it (one guarded update each); ``dry_run`` only plans.

    ``archive``: then split every agent over that policy (:func:`archive_oversized`).
    """
    report = plan(collection, limit=limit)
    report.dry_run = dry_run
    if not dry_run:
        _migrate_entries(collection, report)
    if archive is not None:
        report.archived = archive_oversized(collection, archive, dry_run=dry_run, limit=limit)
    return report


def _migrate_entries(collection: Collection[Any], report: MigrationReport) -> None:
    for entry in report.entries:
        update = dm.migration_update(viewer_password=d.new_viewer_password(), snapshot=entry.snapshot)
        with translate_errors(entry.session_id):
            result = collection.update_one(dm.migration_guard(entry.session_id), update)
        entry.status = "migrated" if result.modified_count else "already migrated"
        logger.info("session_id=<%s> | status=<%s> | schema migration", entry.session_id, entry.status)


def archive_oversized(
    collection: Collection[Any],
    policy: da.ArchivePolicy = da.DEFAULT_ARCHIVE_POLICY,
    *,
    dry_run: bool = False,
    limit: int | None = None,
) -> list[ArchiveEntry]:
    """Split every agent the policy would split at its next write (at most ``limit`` sessions).

    The repository's own split: it takes the agent's split lease (an agent in a turn is left for that
    turn's commit), copies the oldest messages into buckets and moves them only if they are unchanged,
    so it is safe beside a running service and running it twice moves nothing the second time.
    """
    from .mongodb_session_repository import MongoDBSessionRepository

    with translate_errors(None):
        rows = list(collection.aggregate(dsp.oversized_agents_pipeline(policy, limit)))
    entries = [
        ArchiveEntry(str(row[d.ID]), str(agent["agent_id"]), int(agent["stored"]))
        for row in rows
        for agent in row[d.AGENTS]
        if agent["stored"] > 1 and policy.due(int(agent["stored"]), int(row["size"]))
    ]
    if dry_run or not entries:
        return entries
    repository = MongoDBSessionRepository(
        client=collection.database.client,
        database_name=collection.database.name,
        collection_name=collection.name,
        archive_policy=policy,
        ensure_indexes_on_init=False,
    )
    try:
        for entry in entries:
            try:
                entry.moved = repository.archive_agent(entry.session_id, entry.agent_id)
            except InvalidIdentifierError as exc:  # stored by the original under an id this library refuses
                entry.status = f"skipped: {exc}"
                logger.warning("session_id=<%s> | %s | archive migration", entry.session_id, entry.status)
                continue
            entry.status = "archived" if entry.moved else "left for its next write"
            logger.info(
                "session_id=<%s>, agent_id=<%s>, moved=<%d> | status=<%s> | archive migration",
                entry.session_id,
                entry.agent_id,
                entry.moved,
                entry.status,
            )
    finally:
        repository.close()
    return entries
