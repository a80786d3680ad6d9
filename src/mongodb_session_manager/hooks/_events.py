"""The metadata change events the SQS and WebSocket hooks send, and the field selection they share.

Kept free of boto3 and MongoDB so the exact wire format is unit-tested on its own. Event shape::

    {"event_type": "metadata_update", "session_id": "...", "metadata": {...}, "timestamp": "...+00:00"}
    {"event_type": "metadata_delete", "session_id": "...", "deleted_keys": [...], "timestamp": "..."}
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

#: Metadata keys that hold the client's WebSocket connection id (``ws_connection_id`` wins).
CONNECTION_ID_KEYS = ("ws_connection_id", "connection_id")

UPDATE_EVENT = "metadata_update"
DELETE_EVENT = "metadata_delete"


def utc_timestamp() -> str:
    """ISO 8601 with an explicit UTC offset, e.g. ``2024-01-26T10:30:45.123456+00:00``."""
    return datetime.now(UTC).isoformat()


def normalize_fields(metadata_fields: Iterable[str] | None) -> frozenset[str] | None:
    """``None`` means every field; a bare string is refused (it would select single characters)."""
    if metadata_fields is None:
        return None
    if isinstance(metadata_fields, str):
        raise TypeError("metadata_fields must be a list of field names, not a string")
    fields = frozenset(metadata_fields)
    bad = sorted(repr(f) for f in fields if not isinstance(f, str) or not f)
    if bad:
        raise ValueError(f"metadata_fields must be non-empty strings, got {', '.join(bad)}")
    return fields


def select_metadata(
    metadata: Mapping[str, Any], fields: frozenset[str] | None, exclude: Iterable[str] = ()
) -> dict[str, Any]:
    """The entries of ``metadata`` that are selected (all when ``fields`` is None) and not excluded."""
    skip = set(exclude)
    return {k: v for k, v in metadata.items() if (fields is None or k in fields) and k not in skip}


def select_keys(keys: Iterable[str] | str, fields: frozenset[str] | None, exclude: Iterable[str] = ()) -> list[str]:
    """The deleted keys to announce, in the caller's order, without duplicates."""
    if isinstance(keys, str):
        keys = [keys]
    skip = set(exclude)
    chosen: list[str] = []
    for key in keys:
        if (fields is None or key in fields) and key not in skip and key not in chosen:
            chosen.append(key)
    return chosen


def update_event(session_id: str, metadata: Mapping[str, Any], timestamp: str) -> dict[str, Any]:
    return {"event_type": UPDATE_EVENT, "session_id": session_id, "metadata": dict(metadata), "timestamp": timestamp}


def delete_event(session_id: str, keys: list[str], timestamp: str) -> dict[str, Any]:
    return {"event_type": DELETE_EVENT, "session_id": session_id, "deleted_keys": list(keys), "timestamp": timestamp}


def _json_default(value: Any) -> Any:
    # Metadata may hold anything BSON stores; consumers get a readable JSON rendering of it.
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def to_json(event: Mapping[str, Any]) -> str:
    return json.dumps(event, default=_json_default, ensure_ascii=False)


def connection_id_from(metadata: Mapping[str, Any] | None) -> str | None:
    """The connection id stored under ``ws_connection_id`` (or its alias ``connection_id``)."""
    if not metadata:
        return None
    for key in CONNECTION_ID_KEYS:
        value = metadata.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None
