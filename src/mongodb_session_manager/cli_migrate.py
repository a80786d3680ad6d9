"""``mongodb-session-manager migrate-to-snapshot SESSION_ID | --all [--dry-run]``.

Converts message-log sessions (``MongoDBSessionManager``) to the snapshot path
(``SnapshotSessionManager`` over ``MongoDBStorage``) in place; see :mod:`.snapshot_migration`.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from pymongo import MongoClient

from .snapshot_migration import MigrationResult, migrate_all, migrate_session


def add_migrate_command(sub: Any) -> None:
    cmd = sub.add_parser("migrate-to-snapshot", help="convert message-log sessions to Strands' snapshot path")
    target = cmd.add_mutually_exclusive_group(required=True)
    target.add_argument("session_id", nargs="?", help="the session to convert")
    target.add_argument("--all", action="store_true", help="every session still in the message-log shape")
    cmd.add_argument("--dry-run", action="store_true", help="report what would change; write nothing")
    cmd.add_argument(
        "--connection-string",
        default=os.environ.get("MONGODB_CONNECTION_STRING"),
        help="MongoDB URI (default: MONGODB_CONNECTION_STRING)",
    )
    cmd.add_argument("--database", default=os.environ.get("DATABASE_NAME", "database_name"))
    cmd.add_argument("--collection", default=os.environ.get("COLLECTION_NAME", "collection_name"))
    cmd.set_defaults(func=cmd_migrate_to_snapshot)


def cmd_migrate_to_snapshot(args: argparse.Namespace) -> int:
    """Exit code 0 when every session was converted (or would be), 1 if one changed meanwhile."""
    if not args.connection_string:
        raise SystemExit("migrate-to-snapshot needs --connection-string or MONGODB_CONNECTION_STRING")
    client: MongoClient[Any] = MongoClient(args.connection_string)
    try:
        collection = client[args.database][args.collection]
        if args.all:
            results = migrate_all(collection, dry_run=args.dry_run)
        else:
            results = [migrate_session(collection, args.session_id, dry_run=args.dry_run)]
    finally:
        client.close()
    for result in results:
        _report(result)
    if not results:
        _line("no message-log sessions found")
    return 1 if any(r.status == "conflict" for r in results) else 0


def _report(result: MigrationResult) -> None:
    agents = ", ".join(f"{aid} ({count} messages)" for aid, count in result.agents.items())
    line = f"{result.session_id}: {result.status}"
    if agents:
        line += f" | agents: {agents}"
    if result.multi_agents_kept:
        line += f" | multi-agent state kept as is: {', '.join(result.multi_agents_kept)}"
    if result.reason:
        line += f" | {result.reason}"
    _line(line)


def _line(message: str) -> None:
    sys.stdout.write(message + "\n")
    sys.stdout.flush()
