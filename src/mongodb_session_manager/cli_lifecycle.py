"""``mongodb-session-manager export | import | migrate``: portable sessions and schema migration.

- ``export SESSION_ID [--database D --collection C] [--output FILE]`` prints the session export
  (the viewer's format, see :mod:`.portable`) as JSON.
- ``import FILE [--overwrite] [--session-id ID]`` stores an export (``-`` reads standard input).
- ``migrate [--dry-run] [--archive]`` reports the documents below the current schema version and,
  without ``--dry-run``, migrates them (see :mod:`.migrations`); ``--archive`` also splits the
  sessions over the default archive policy (ported ones) now instead of at their next write.
- ``purge-orphans [--dry-run] [--older-than-minutes N]`` deletes archived-message buckets
  (``<collection>_messages``) that no session lists (those of sessions the TTL index deleted, or left
  by a crash) and the out-of-line blocks of sessions whose document is gone. Run it periodically
  where sessions expire.

The server is ``--connection-string`` or ``MONGODB_CONNECTION_STRING``; the database and
collection default to ``DATABASE_NAME`` / ``COLLECTION_NAME``, else ``chat.sessions``.
Typed errors (no such session, not an export, a newer schema version) exit with status 1 and a
one-line message on standard error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from pymongo import MongoClient

from . import defaults
from . import documents_maintenance as dm
from .errors import SessionStoreError


def _common(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "--connection-string",
        default=os.environ.get("MONGODB_CONNECTION_STRING"),
        help="MongoDB URI (default: MONGODB_CONNECTION_STRING)",
    )
    cmd.add_argument("--database", default=os.environ.get("DATABASE_NAME", defaults.DATABASE_NAME))
    cmd.add_argument("--collection", default=os.environ.get("COLLECTION_NAME", defaults.COLLECTION_NAME))


def add_lifecycle_commands(sub: Any) -> None:
    export = sub.add_parser("export", help="print a session as portable JSON (the viewer's export format)")
    export.add_argument("session_id")
    export.add_argument("--output", type=Path, default=None, help="write to this file instead of stdout")
    _common(export)
    export.set_defaults(func=cmd_export)

    load = sub.add_parser("import", help="store a session export (from `export` or the viewer)")
    load.add_argument("file", help="the export's JSON file, or - for standard input")
    load.add_argument("--overwrite", action="store_true", help="replace the session if it exists")
    load.add_argument("--session-id", default=None, help="import under this id instead of the exported one")
    _common(load)
    load.set_defaults(func=cmd_import)

    migrate = sub.add_parser("migrate", help="bring session documents to the current schema version")
    migrate.add_argument("--dry-run", action="store_true", help="report what needs migration; write nothing")
    migrate.add_argument("--limit", type=int, default=None, help="at most this many documents")
    migrate.add_argument(
        "--archive",
        action="store_true",
        help="also split sessions over the default archive policy now (sessions ported from the original "
        "library), instead of at each one's next write",
    )
    _common(migrate)
    migrate.set_defaults(func=cmd_migrate)

    orphans = sub.add_parser(
        "purge-orphans", help="delete buckets and large blocks no session refers to (e.g. of expired sessions)"
    )
    orphans.add_argument("--dry-run", action="store_true", help="count them; delete nothing")
    orphans.add_argument(
        "--older-than-minutes",
        type=float,
        default=dm.ORPHAN_GRACE.total_seconds() / 60,
        help="only buckets created at least this long ago (default: %(default)s; a split lists its buckets "
        "a moment after writing them)",
    )
    _common(orphans)
    orphans.set_defaults(func=cmd_purge_orphans)


def _repository(args: argparse.Namespace) -> Any:
    from .mongodb_session_repository import MongoDBSessionRepository

    if not args.connection_string:
        raise SystemExit(f"{args.command} needs --connection-string or MONGODB_CONNECTION_STRING")
    return MongoDBSessionRepository(
        connection_string=args.connection_string, database_name=args.database, collection_name=args.collection
    )


def _fail(exc: SessionStoreError) -> int:
    sys.stderr.write(f"error: {exc}\n")
    sys.stderr.flush()
    return 1


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def cmd_export(args: argparse.Namespace) -> int:
    repository = _repository(args)
    try:
        data = repository.export_session(args.session_id)
    except SessionStoreError as exc:
        return _fail(exc)
    finally:
        repository.close()
    text = json.dumps(data, ensure_ascii=False, indent=2)
    if args.output is not None:
        args.output.write_text(text + "\n", encoding="utf-8")
    else:
        _out(text)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from .portable import read_export_file

    repository = _repository(args)
    try:
        sid = repository.import_session(
            read_export_file(args.file), overwrite=args.overwrite, session_id=args.session_id
        )
    except SessionStoreError as exc:
        return _fail(exc)
    finally:
        repository.close()
    _out(f"imported {sid} into {args.database}.{args.collection}")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from .documents_archive import ArchivePolicy
    from .migrations import migrate

    if not args.connection_string:
        raise SystemExit("migrate needs --connection-string or MONGODB_CONNECTION_STRING")
    client: MongoClient[Any] = MongoClient(args.connection_string)
    try:
        policy = ArchivePolicy() if args.archive else None
        collection = client[args.database][args.collection]
        report = migrate(collection, dry_run=args.dry_run, limit=args.limit, archive=policy)
    except SessionStoreError as exc:
        return _fail(exc)
    finally:
        client.close()
    for entry in report.entries:
        kind = " (snapshot session)" if entry.snapshot else ""
        _out(f"{entry.session_id}{kind}: {entry.status} | {'; '.join(entry.reasons) or 'schema_version below current'}")
    verb = "need migration" if report.dry_run else "migrated"
    count = len(report.entries) if report.dry_run else report.migrated
    _out(f"{count} document(s) {verb} in {args.database}.{args.collection}")
    if report.newer:
        _out(f"{report.newer} document(s) have a newer schema version than this library and were left alone")
    if args.archive:
        for archived in report.archived:
            moved = f", {archived.moved} moved to buckets" if archived.moved else ""
            where = f"{archived.session_id}/{archived.agent_id}"
            _out(f"{where}: {archived.stored} messages in the document{moved} | {archived.status}")
        done = [a for a in report.archived if a.status == ("would archive" if report.dry_run else "archived")]
        _out(f"{len(done)} agent(s) {'would be archived' if report.dry_run else 'archived'}")
    return 0


def cmd_purge_orphans(args: argparse.Namespace) -> int:
    if args.older_than_minutes < 0:
        raise SystemExit("--older-than-minutes must not be negative")
    repository = _repository(args)
    try:
        count = repository.purge_orphan_buckets(
            older_than=timedelta(minutes=args.older_than_minutes), dry_run=args.dry_run
        )
    except SessionStoreError as exc:
        return _fail(exc)
    finally:
        repository.close()
    verb = "would be deleted" if args.dry_run else "deleted"
    _out(f"{count} archived bucket(s) no session lists {verb} in {args.database}.{args.collection}_messages")
    return 0
