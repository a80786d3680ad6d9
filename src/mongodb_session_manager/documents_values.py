"""Values as BSON holds them, and as they were written when read back.

Models and tools produce values MongoDB refuses as they are: :func:`storable` keeps the odd subtree
as JSON text under a marker instead of failing the turn, and :func:`from_bson` gives every stored
value back exactly as written (also undoing the driver's ``DBRef`` decoding and Strands' base64
wrapper of older sessions). A read rarely needs that repair: the byte searches here tell, in C,
whether it does (and whether it holds any tool block), so a common restore is never walked in Python.

A leaf: it knows no field of the session document, so :mod:`.documents` and its companions all
build on it.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bson.dbref import DBRef

from .errors import InvalidInputError

# ---- values read back ---------------------------------------------------------------------------------


def from_bson(value: Any) -> Any:
    """Return a stored value exactly as it was written.

    Two things come back different otherwise: the driver decodes every sub-document with ``$ref``
    and ``$id`` keys (ordinary JSON Schema in tool arguments, or user metadata) as a
    ``bson.dbref.DBRef``, and sessions written by older versions hold bytes as Strands' base64
    ``{"__bytes_encoded__": true, "data": ...}`` wrapper. Both are turned back into the plain values.
    """
    if isinstance(value, DBRef):
        value = dict(value.as_doc())
    if isinstance(value, dict):
        if value.get("__bytes_encoded__") is True and "data" in value:
            return base64.b64decode(value["data"])
        if len(value) == 1 and isinstance(value.get(JSON_MARKER), str):
            return _from_json_marker(value[JSON_MARKER])
        return {k: from_bson(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_bson(v) for v in value]
    return value


# ---- values MongoDB cannot store as they are ----------------------------------------------------------
#: A value stored as JSON text because BSON cannot hold it as it is (see :func:`storable`).
JSON_MARKER = "__msm_json__"
#: Nesting (below a message) after which a subtree is stored as JSON text; the server allows 100 levels
#: for a whole document and a message already sits about ten levels deep in its session.
MAX_VALUE_DEPTH = 60
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_SPECIAL_KEYS = frozenset({"$ref", "$id", "$db"})


def storable(value: Any, depth: int = 0) -> Any:
    """``value`` with every part BSON cannot store replaced by a JSON-text marker, losing nothing.

    Models and tools produce values the driver or the server refuse: keys with NUL or a leading
    ``$``, strings with lone surrogates, integers beyond 64 bits, nesting deeper than MongoDB allows.
    Refusing them would fail the whole turn for one odd tool argument; storing just that subtree as
    JSON (``{"__msm_json__": "..."}``) keeps the turn and the exact value, and :func:`from_bson` turns
    it back. Strands' base64 wrapper for bytes becomes BSON binary on the way (the walk is bounded by
    ``MAX_VALUE_DEPTH``, unlike a recursive decode, so no input can exhaust the stack). A value even
    JSON cannot hold (nesting beyond Python's recursion limit, arbitrary objects) raises
    :class:`InvalidInputError`.
    """
    if isinstance(value, str):
        return value if encodable_text(value) else _as_json(value)
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        return value if _INT64_MIN <= value <= _INT64_MAX else _as_json(value)
    if isinstance(value, Mapping):
        if value.get("__bytes_encoded__") is True and isinstance(value.get("data"), str):
            return base64.b64decode(value["data"])  # Strands' own encoding of bytes: store real binary
        if value and (depth >= MAX_VALUE_DEPTH or any(_stored_key_problem(k) for k in value)):
            return _as_json(value)
        return {k: storable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if value and depth >= MAX_VALUE_DEPTH:
            return _as_json(value)
        return [storable(v, depth + 1) for v in value]
    return value  # bytes, dates, UUIDs, ObjectIds: BSON has a type for them


def encodable_text(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _stored_key_problem(key: object) -> bool:
    if not isinstance(key, str):
        return True
    if key in _SPECIAL_KEYS:
        return False
    return key == "" or key.startswith("$") or "." in key or "\x00" in key or not encodable_text(key)


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return {"__bytes_encoded__": True, "data": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _as_json(value: Any) -> dict[str, str]:
    import json

    try:
        return {JSON_MARKER: json.dumps(value, ensure_ascii=True, default=_json_default)}
    except (RecursionError, TypeError, ValueError) as exc:
        raise InvalidInputError(f"a value cannot be stored in MongoDB, even as JSON: {exc}") from exc


def _from_json_marker(text: str) -> Any:
    import json

    # object_hook runs bottom-up inside the C decoder: no Python recursion, whatever the depth.
    return json.loads(text, object_hook=_bytes_from_json)


def _bytes_from_json(obj: dict[str, Any]) -> Any:
    if obj.get("__bytes_encoded__") is True and isinstance(obj.get("data"), str):
        return base64.b64decode(obj["data"])
    return obj


# ---- raw bytes: what a read holds, searched in C ------------------------------------------------
#: Byte patterns of the values :func:`from_bson` rewrites; a document without them decodes as it is.
_REPAIR_MARKERS = (b"$ref\x00", b"__bytes_encoded__\x00", JSON_MARKER.encode() + b"\x00")


def needs_repair(raw: bytes) -> bool:
    """Whether raw BSON holds anything :func:`from_bson` must rewrite (checked in C, not walked in Python)."""
    return any(marker in raw for marker in _REPAIR_MARKERS)


#: A ``toolUse`` or ``toolResult`` content block: an embedded document (type 0x03) under exactly that
#: key. Not a shorter prefix: the metrics stored on every answer hold ``tool_usage`` (an embedded
#: document too), and matching it sent every restore of a real session through the repair walk.
_TOOL_BLOCK_MARKERS = (b"\x03toolUse\x00", b"\x03toolResult\x00")


def has_tool_blocks(raw: bytes) -> bool:
    """Whether raw BSON may hold tool blocks (a history without any needs no tool-pairing repair)."""
    return any(marker in raw for marker in _TOOL_BLOCK_MARKERS)
