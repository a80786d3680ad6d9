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
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from bson.dbref import DBRef

from . import documents as d

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


def export_session_document(doc: Mapping[str, Any], *, exported_at: datetime | None = None) -> dict[str, Any]:
    """``{"format", "schema_version", "exported_at", "session": {...}}`` for one stored session document."""
    session = {str(k): to_export_json(v) for k, v in doc.items() if k not in d.INTERNAL_FIELDS}
    session.setdefault(d.SESSION_ID, str(doc.get(d.ID, "")))
    return {
        "format": EXPORT_FORMAT,
        "schema_version": EXPORT_SCHEMA_VERSION,
        "exported_at": _iso(exported_at or datetime.now(UTC)),
        "session": session,
    }
