"""Portable sessions: the export (one format, shared with the Session Viewer) read back for an import.

The export itself is :func:`.export.export_session_document`: ``{"format", "schema_version",
"exported_at", "session": {...}}`` with the whole stored session (agents with their messages,
``abandoned_messages`` when present, metrics, metadata, feedback, guardrail events) as plain JSON,
dates as ISO strings and bytes as Strands' ``{"__bytes_encoded__": true, "data": <base64>}`` marker.
The viewer's export button and ``MongoDBSessionManager.export_session()`` both produce it.

This module checks such data before an import (typed errors: not an export, a newer schema version)
and turns the stored dates back into dates. Only the library's own date fields are revived: a
metadata value that was a date comes back as its ISO string (JSON cannot say it was a date).
Bytes need nothing here: :func:`.documents_values.storable` turns the base64 marker into BSON binary.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from . import documents as d
from . import documents_lifecycle as dl
from . import documents_turns as dt
from .errors import InvalidExportError, UnsupportedSchemaVersionError
from .export import EXPORT_FORMAT, EXPORT_SCHEMA_VERSION

#: Date fields of the session itself, of each agent entry, of agent_data, of each stored message.
SESSION_DATES = (d.CREATED_AT, d.UPDATED_AT, dl.PURGED_AT, dl.LEGAL_HOLD_CHANGED_AT)
AGENT_DATES = (d.CREATED_AT, d.UPDATED_AT)
MESSAGE_DATES = (d.CREATED_AT, d.UPDATED_AT)


def _date(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    return d.to_datetime(parsed)


def _revive(entry: Any, fields: tuple[str, ...]) -> Any:
    if isinstance(entry, dict):
        for name in fields:
            if name in entry:
                entry[name] = _date(entry[name])
    return entry


def _revive_message(message: Any) -> None:
    _revive(message, MESSAGE_DATES)
    if isinstance(message, dict):
        _revive(message.get(d.METRICS), ("recorded_at",))
        _revive(message.get(d.GUARDRAIL_EVENT), ("timestamp",))


def revive_dates(session: dict[str, Any]) -> dict[str, Any]:
    """The library's own date fields of an exported session turned back into datetimes (in place)."""
    _revive(session, SESSION_DATES)
    for feedback in session.get(d.FEEDBACKS) or []:
        _revive(feedback, (d.CREATED_AT,))
    for event in session.get(d.GUARDRAIL_EVENTS) or []:
        _revive(event, ("timestamp",))
    agents = session.get(d.AGENTS)
    for entry in (agents.values() if isinstance(agents, dict) else []) or []:
        if not isinstance(entry, dict):
            continue
        _revive(entry, AGENT_DATES)
        _revive(entry.get(d.AGENT_DATA), AGENT_DATES)
        for key in (d.MESSAGES, dt.ABANDONED_MESSAGES):
            for message in entry.get(key) or []:
                _revive_message(message)
    multi = session.get(d.MULTI_AGENTS)
    for entry in (multi.values() if isinstance(multi, dict) else []) or []:
        _revive(entry, AGENT_DATES)
    return session


def check_export(data: object) -> dict[str, Any]:
    """The exported ``session`` of ``data``, dates revived, or a typed error saying what is wrong.

    An export with a newer ``schema_version`` (of the export, or of the session document inside it)
    raises :class:`UnsupportedSchemaVersionError`: this library cannot know what its fields mean.
    """
    if not isinstance(data, Mapping):
        raise InvalidExportError(f"a session export is a JSON object, got {type(data).__name__}")
    if data.get("format") != EXPORT_FORMAT:
        raise InvalidExportError(f"not a session export: format is {data.get('format')!r:.80}, not {EXPORT_FORMAT!r}")
    version = data.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidExportError(f"schema_version must be a positive integer, got {version!r:.40}")
    if version > EXPORT_SCHEMA_VERSION:
        raise UnsupportedSchemaVersionError(
            f"export schema_version {version} is newer than this library reads ({EXPORT_SCHEMA_VERSION}); "
            "upgrade mongodb-session-manager to import it"
        )
    session = data.get("session")
    if not isinstance(session, Mapping) or not isinstance(session.get(d.SESSION_ID), str):
        raise InvalidExportError("the export has no session object with a session_id")
    sid = session[d.SESSION_ID]
    stored_version = session.get(d.SCHEMA_VERSION)
    if isinstance(stored_version, int) and stored_version > d.CURRENT_SCHEMA_VERSION:
        raise UnsupportedSchemaVersionError(
            f"session schema_version {stored_version} is newer than this library writes ({d.CURRENT_SCHEMA_VERSION})",
            session_id=sid,
        )
    agents = session.get(d.AGENTS, {})
    if not isinstance(agents, Mapping) or not all(isinstance(v, Mapping) for v in agents.values()):
        raise InvalidExportError("agents must be an object of agent entries", session_id=sid)
    return revive_dates(copy.deepcopy(dict(session)))  # a private copy: the caller's data is never changed


def read_export_file(path: str | Path) -> Any:
    """The JSON in ``path`` (``-`` reads standard input), as :func:`check_export` expects it."""
    import sys

    try:
        text = sys.stdin.read() if str(path) == "-" else Path(path).read_text(encoding="utf-8")
        return json.loads(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidExportError(f"cannot read a session export from {str(path)!r}: {exc}") from exc
