"""A session document as portable JSON: the one export format of this project.

The Session Viewer's export button and API, ``MongoDBSessionManager.export_session()`` and
``mongodb-session-manager export`` all use :func:`export_session_document` (over the same read,
``documents_lifecycle.EXPORT_PROJECTION``), so every export has one shape, versioned by
``schema_version``; :mod:`.portable` reads it back for ``import_session()``. The export is
faithful: it keeps every stored field (metadata, every agent's messages with their metrics and
redactions, feedback including reviewer notes, multi-agent state) under the field names of
:mod:`.documents`, with BSON types made JSON-safe:

* dates as ISO 8601 UTC strings with milliseconds (``2026-12-01T12:00:00.000Z``);
* bytes (images, documents) as Strands' own ``{"__bytes_encoded__": true, "data": <base64>}``,
  so a message can be handed back to Strands unchanged;
* ObjectId, Decimal128 and other BSON types as their string form; non-finite floats as strings.

What it never contains: the session's viewer password (a secret, not part of the conversation)
and MongoDB's ``_id`` (it equals ``session_id``).

A session whose agents' oldest messages were archived into buckets (``<collection>_messages``, see
:mod:`.documents_archive`) exports exactly as the same session would unsplit: each agent's
``messages`` is its whole history in order (the listed buckets by position, then the in-document
messages), and the ``archive`` bookkeeping is left out. That bookkeeping names bucket documents of
the source database; an import writes its own buckets when the history is past its policy. Readers
pass the listed buckets (:func:`listed_bucket_ids`) to :func:`export_session_document`.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from bson.dbref import DBRef

from . import documents as d
from . import documents_archive as da
from .errors import ConcurrentModificationError

#: Bump when a field of the export changes meaning or moves; adding fields keeps the version.
EXPORT_SCHEMA_VERSION = 1
EXPORT_FORMAT = "mongodb-session-manager/session-export"


def _iso(value: datetime) -> str:
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def to_export_json(value: Any) -> Any:
    """Any stored value as plain JSON (see the module docstring for the conversions)."""
    if isinstance(value, DBRef):  # an ordinary {"$ref", "$id"} sub-document decoded by the driver
        value = value.as_doc()
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, bytes | bytearray | memoryview):  # bson.Binary is a bytes subclass
        return {"__bytes_encoded__": True, "data": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, Mapping):
        return {str(k): to_export_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_export_json(v) for v in value]
    return str(value)


def listed_bucket_ids(doc: Mapping[str, Any]) -> list[Any]:
    """The ids of every bucket the session document lists (every agent's archive); the others are orphans."""
    agents = doc.get(d.AGENTS)
    ids: list[Any] = []
    for entry in agents.values() if isinstance(agents, Mapping) else []:
        archive = entry.get(da.ARCHIVE) if isinstance(entry, Mapping) else None
        if isinstance(archive, Mapping):
            ids.extend(b[da.BUCKET_ID] for b in archive.get(da.ARCHIVE_BUCKETS) or [])
    return ids


def join_archived_messages(doc: Mapping[str, Any], buckets: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """``doc`` with every agent's whole history in ``messages`` and no ``archive`` field.

    ``buckets`` are bucket documents (at least ``_id`` and ``messages``); only the ones the
    document lists are used, in the listed order of positions. A listed bucket that is missing
    (the session was purged or replaced after ``doc`` was read) raises
    :class:`ConcurrentModificationError`: the caller reads again.
    """
    agents = doc.get(d.AGENTS)
    if not isinstance(agents, Mapping) or not any(isinstance(e, Mapping) and da.ARCHIVE in e for e in agents.values()):
        return dict(doc)
    by_id = {b[d.ID]: b for b in buckets}
    sid = str(doc.get(d.SESSION_ID, doc.get(d.ID, "")))
    joined: dict[str, Any] = {}
    for aid, entry in agents.items():
        if not isinstance(entry, Mapping) or da.ARCHIVE not in entry:
            joined[aid] = entry
            continue
        archive = entry.get(da.ARCHIVE) or {}
        history: list[Any] = []
        for listed in sorted(archive.get(da.ARCHIVE_BUCKETS) or [], key=lambda b: b[da.START]):
            bucket = by_id.get(listed[da.BUCKET_ID])
            if bucket is None:
                raise ConcurrentModificationError(
                    f"archived bucket {listed[da.BUCKET_ID]} of agent {aid!r} is missing: it was not read, or the "
                    "session was purged or replaced after its document was read (read it again)",
                    session_id=sid,
                )
            history.extend(bucket.get(d.MESSAGES) or [])
        history.extend(entry.get(d.MESSAGES) or [])
        joined[aid] = {**{k: v for k, v in entry.items() if k != da.ARCHIVE}, d.MESSAGES: history}
    return {**doc, d.AGENTS: joined}


def export_session_document(
    doc: Mapping[str, Any],
    *,
    buckets: Iterable[Mapping[str, Any]] = (),
    exported_at: datetime | None = None,
) -> dict[str, Any]:
    """``{"format", "schema_version", "exported_at", "session": {...}}`` for one stored session document.

    ``buckets``: the archived buckets the document lists (``find`` by :func:`listed_bucket_ids`);
    a split session exported without them raises :class:`ConcurrentModificationError` rather than
    silently leaving its oldest messages out.
    """
    doc = join_archived_messages(doc, buckets)
    session = {str(k): to_export_json(v) for k, v in doc.items() if k not in d.INTERNAL_FIELDS}
    session.setdefault(d.SESSION_ID, str(doc.get(d.ID, "")))
    return {
        "format": EXPORT_FORMAT,
        "schema_version": EXPORT_SCHEMA_VERSION,
        "exported_at": _iso(exported_at or datetime.now(UTC)),
        "session": session,
    }
