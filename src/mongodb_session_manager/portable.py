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

:func:`check_import` also checks what the session will be read and written through afterwards
(:func:`check_session_content`): an import is one write, so a message the restore cannot read, or
a message id counter that would give out ids again, would otherwise break the session for good.
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


def _items(value: Any) -> list[Any]:
    """The entries of a list field; anything else has none (:func:`check_session_content` refuses it)."""
    return list(value) if isinstance(value, list | tuple) else []


def revive_dates(session: dict[str, Any]) -> dict[str, Any]:
    """The library's own date fields of an exported session turned back into datetimes (in place).

    Fields of the wrong type are left as they are (never a raw ``TypeError`` here).
    """
    _revive(session, SESSION_DATES)
    for feedback in _items(session.get(d.FEEDBACKS)):
        _revive(feedback, (d.CREATED_AT,))
    for event in _items(session.get(d.GUARDRAIL_EVENTS)):
        _revive(event, ("timestamp",))
    agents = session.get(d.AGENTS)
    for entry in agents.values() if isinstance(agents, dict) else []:
        if not isinstance(entry, dict):
            continue
        _revive(entry, AGENT_DATES)
        _revive(entry.get(d.AGENT_DATA), AGENT_DATES)
        for key in (d.MESSAGES, dt.ABANDONED_MESSAGES):
            for message in _items(entry.get(key)):
                _revive_message(message)
    multi = session.get(d.MULTI_AGENTS)
    for entry in multi.values() if isinstance(multi, dict) else []:
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


def check_import(data: object) -> dict[str, Any]:
    """What an import writes: :func:`check_export` and :func:`check_session_content` of its session."""
    session = check_export(data)
    check_session_content(session, session_id=session[d.SESSION_ID])
    return session


#: The roles of a Strands message (``strands.types.content.Role``).
MESSAGE_ROLES = ("user", "assistant")


#: Ids and the counter are stored as 64-bit integers (a larger one would be stored as JSON text).
_MAX_ID = 2**63 - 1


def _is_id(value: object) -> bool:
    """An integer from 0 to :data:`_MAX_ID`; ``bool`` is not an integer here."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_ID


def _is_list(value: object) -> bool:
    return isinstance(value, list | tuple)


def check_session_content(session: Mapping[str, Any], *, session_id: str | None = None) -> None:
    """Raise :class:`InvalidExportError` (naming the agent and the field) for content the session
    cannot live with; ``None`` when the import may be written.

    Checked: every agent entry (:func:`check_agent_entry`), ``multi_agents`` (an object of objects),
    ``metadata`` (an object), ``feedbacks`` (each as ``add_feedback`` accepts it: a rating in
    :data:`.documents.VALID_RATINGS`, a string or null comment) and ``guardrail_events`` (a list of
    objects). A field that is absent is fine: sessions of the original library lack several.
    """
    agents = session.get(d.AGENTS)
    if agents is not None:
        if not isinstance(agents, Mapping):
            raise InvalidExportError("agents must be an object of agent entries", session_id=session_id)
        for aid, entry in agents.items():
            check_agent_entry(aid, entry, session_id=session_id)
    multi = session.get(d.MULTI_AGENTS)
    if multi is not None and (
        not isinstance(multi, Mapping) or not all(isinstance(v, Mapping) for v in multi.values())
    ):
        raise InvalidExportError("multi_agents must be an object of multi-agent entries", session_id=session_id)
    if d.METADATA in session and not isinstance(session[d.METADATA], Mapping):
        raise InvalidExportError(
            f"metadata must be an object, got {type(session[d.METADATA]).__name__}", session_id=session_id
        )
    if d.FEEDBACKS in session:
        _check_feedbacks(session[d.FEEDBACKS], session_id)
    events = session.get(d.GUARDRAIL_EVENTS, [])
    if not _is_list(events) or not all(isinstance(e, Mapping) for e in events):
        raise InvalidExportError("guardrail_events must be a list of objects", session_id=session_id)


def _check_feedbacks(feedbacks: Any, session_id: str | None) -> None:
    if not _is_list(feedbacks):
        raise InvalidExportError(f"feedbacks must be a list, got {type(feedbacks).__name__}", session_id=session_id)
    for i, feedback in enumerate(feedbacks):
        if not isinstance(feedback, Mapping):
            raise InvalidExportError(f"feedbacks[{i}] must be an object", session_id=session_id)
        rating = feedback.get(d.RATING)
        if rating not in d.VALID_RATINGS:
            raise InvalidExportError(
                f"feedbacks[{i}]: rating must be 'up', 'down' or null, got {rating!r:.40}", session_id=session_id
            )
        comment = feedback.get(d.COMMENT)
        if comment is not None and not isinstance(comment, str):
            raise InvalidExportError(f"feedbacks[{i}]: comment must be a string or null", session_id=session_id)


def check_agent_entry(agent_id: object, entry: object, *, session_id: str | None = None) -> None:
    """Raise :class:`InvalidExportError` unless the agent entry can be restored and continued.

    * ``agent_data``, when present, is an object (its ``state`` and ``conversation_manager_state``
      objects when present);
    * ``messages`` (absent: none) and ``abandoned_messages`` are lists of stored messages
      (:func:`stored_message_problem`: an object with an integer ``message_id`` >= 0 and a
      ``message`` with a ``role`` of ``user``/``assistant`` and a ``content`` list of blocks);
    * the ids of ``messages`` are unique: updates and redactions find a message by its id;
    * ``next_message_id``, when present (and not null), is an integer above every message id, so
      no id is given out twice. Absent or null, it is derived from the messages (highest id + 1),
      as for sessions of the original library; a counter too low is refused, never corrected,
      since the export is then not what its source stored.
    """
    where = f"agent {str(agent_id)[:80]!r}"
    if not isinstance(entry, Mapping):
        raise InvalidExportError(f"{where}: the agent entry must be an object", session_id=session_id)
    if d.AGENT_DATA in entry:
        data = entry[d.AGENT_DATA]
        if not isinstance(data, Mapping):
            raise InvalidExportError(f"{where}: agent_data must be an object", session_id=session_id)
        for name in (d.STATE, "conversation_manager_state"):
            if name in data and not isinstance(data[name], Mapping):
                raise InvalidExportError(f"{where}: agent_data.{name} must be an object", session_id=session_id)
    ids: list[int] = []
    for field in (d.MESSAGES, dt.ABANDONED_MESSAGES):
        if field not in entry:
            continue
        messages = entry[field]
        if not _is_list(messages):
            raise InvalidExportError(
                f"{where}: {field} must be a list, got {type(messages).__name__}", session_id=session_id
            )
        for i, stored in enumerate(messages):
            problem = stored_message_problem(stored)
            if problem:
                raise InvalidExportError(f"{where}: {field}[{i}] {problem}", session_id=session_id)
            if field == d.MESSAGES:
                ids.append(stored[d.MESSAGE_ID])
    if len(set(ids)) != len(ids):
        raise InvalidExportError(f"{where}: message ids must be unique integers >= 0", session_id=session_id)
    counter = entry.get(d.NEXT_MESSAGE_ID)
    if counter is None:
        return
    lowest = max(ids) + 1 if ids else 0
    if not _is_id(counter) or counter < lowest:
        raise InvalidExportError(
            f"{where}: next_message_id must be an integer above every message id (at least {lowest}), "
            f"got {counter!r:.40}",
            session_id=session_id,
        )


def stored_message_problem(stored: object) -> str | None:
    """What is wrong with one stored message of an export (``None``: Strands can be given it).

    ``redact_message``, when set, is what the agent is given instead of ``message``: it is held to
    the same shape.
    """
    if not isinstance(stored, Mapping):
        return f"must be an object, got {type(stored).__name__}"
    message_id = stored.get(d.MESSAGE_ID)
    if not _is_id(message_id):
        return f"message_id must be an integer >= 0, got {message_id!r:.40}"
    if d.MESSAGE not in stored:
        return "has no message field"
    for field in (d.MESSAGE, d.REDACT_MESSAGE):
        body = stored.get(field)
        if field == d.REDACT_MESSAGE and not body:  # absent, null or empty: no redaction
            continue
        if not isinstance(body, Mapping):
            return f"{field} must be an object, got {type(body).__name__}"
        if body.get("role") not in MESSAGE_ROLES:
            return f"{field}.role must be 'user' or 'assistant', got {body.get('role')!r:.40}"
        content = body.get("content")
        if not _is_list(content) or not all(isinstance(block, Mapping) for block in content):
            return f"{field}.content must be a list of content blocks (objects)"
    return None


def read_export_file(path: str | Path) -> Any:
    """The JSON in ``path`` (``-`` reads standard input), as :func:`check_export` expects it."""
    import sys

    try:
        text = sys.stdin.read() if str(path) == "-" else Path(path).read_text(encoding="utf-8")
        return json.loads(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidExportError(f"cannot read a session export from {str(path)!r}: {exc}") from exc
