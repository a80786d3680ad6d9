"""The shape of Strands' snapshot keys in MongoDB: routing, payload fidelity and every query the storage sends.

:class:`~mongodb_session_manager.storage.MongoDBStorage` never builds a query itself: the filters,
pipelines and projections are pure functions here, unit-tested without a database, and the
session-document field names come from :mod:`.documents`. The feature updates, the migration and the
viewer's read of a snapshot session are in :mod:`.documents_snapshot_features`.

Where a key lives (keys are the full, normalised ``Storage`` keys)::

    session/<sid>/scopes/<agent|multiAgent>/<id>/snapshots/snapshot_latest.json
        -> the session document (_id == <sid>, the same document the message-log path uses):
           snapshots.<scope>.<escaped id> = {key, data | raw, size, message_count, tokens, key_tokens,
                                             updated_at}
           snapshot_keys: [<key>, ...]        (multikey index: list() by prefix)
           snapshot_tokens: [<token>, ...]    (multikey index: search() candidates)
           snapshot_agents.<escaped id> = {model, system_prompt, totals, turn_metrics}  (features)
    session/<sid>/scopes/.../snapshots/immutable_history/<name>
        -> <collection>_snapshot_history, one document per key (_id == key)
    anything else (the context manager's stash under context/<sid>/..., other subsystems)
        -> <collection>_storage, one document per key (_id == key)

A payload is kept as readable, decoded JSON (``data``) when re-encoding it the way Strands does
(``json.dumps(..., ensure_ascii=False)``) gives back the exact bytes and BSON can hold it without
change; otherwise the exact bytes are kept (``raw``), so every read returns what was written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from bson.binary import Binary
from strands.storage.search.keyword import STOP_WORDS, tokenize

from . import documents as d
from .errors import InvalidInputError, StorageKeyError

# ---- field names (the session-document ones come from documents.py) ---------------------------------

SNAPSHOTS = d.SNAPSHOTS
SNAPSHOT_KEYS = d.SNAPSHOT_KEYS
SNAPSHOT_TOKENS = d.SNAPSHOT_TOKENS
SNAPSHOT_AGENTS = d.SNAPSHOT_AGENTS
SNAPSHOT_FORMAT = d.SNAPSHOT_FORMAT
#: Value of ``snapshot_format`` on a session written through the snapshot path.
SNAPSHOT_FORMAT_VALUE = "strands-snapshot-1.0"

KEY = "key"
DATA = "data"
RAW = "raw"
SIZE = "size"
MESSAGE_COUNT = "message_count"
PREVIEW = "preview"
TOKENS = "tokens"
KEY_TOKENS = "key_tokens"
SCOPE = "scope"
OWNER_ID = "owner_id"
TURN_METRICS = "turn_metrics"
MESSAGE_INDEX = "message_index"

HISTORY_SUFFIX = "_snapshot_history"
KV_SUFFIX = "_storage"

#: Per-turn metrics kept per agent on a snapshot session (oldest dropped first).
MAX_TURN_METRICS = 1000
#: Nesting BSON allows is 100; JSON deeper than this is kept as raw bytes.
_MAX_DEPTH = 90
_INT64 = (-(2**63), 2**63 - 1)

Scope = Literal["agent", "multiAgent"]
Kind = Literal["latest", "history", "kv"]

_LATEST_RE = re.compile(r"session/([^/]+)/scopes/(agent|multiAgent)/([^/]+)/snapshots/snapshot_latest\.json")
_HISTORY_RE = re.compile(r"session/([^/]+)/scopes/(agent|multiAgent)/([^/]+)/snapshots/immutable_history/(.+)")
_HISTORY_MARK = "/snapshots/immutable_history/"
_SESSION_ROOT = "session/"
_EXTENSION = re.compile(r"(?<=[^/])\.[^./]*$")


# ---- keys ---------------------------------------------------------------------------------------------


def _require_utf8(value: str, what: str) -> None:
    """Keys are stored as BSON strings, which are UTF-8: a lone surrogate has no encoding."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise StorageKeyError(f"Invalid storage {what} {value[:80]!r}: not valid UTF-8 ({exc.reason})") from exc


def normalize_key(key: str) -> str:
    """Strands' rule for path-style keys: collapse ``//``, strip ``/``, refuse empty, ``\\`` and ``..``.

    The same rule as Strands' shipped backends, so one key means one entry on every backend.
    """
    if not isinstance(key, str):
        raise StorageKeyError(f"storage key must be a string, got {type(key).__name__}")
    _require_utf8(key, "key")
    if "\\" in key:
        raise StorageKeyError(f"Invalid storage key '{key[:80]}': backslashes are not allowed")
    normalized = re.sub(r"/+", "/", key).strip("/")
    if not normalized:
        raise StorageKeyError("Storage key must not be empty")
    if ".." in normalized.split("/"):
        raise StorageKeyError(f"Invalid storage key '{key[:80]}': '..' path segments are not allowed")
    return normalized


def normalize_prefix(prefix: str) -> str:
    """Like :func:`normalize_key`, but empty is allowed and a trailing ``/`` is kept (it matters)."""
    if not isinstance(prefix, str):
        raise StorageKeyError(f"storage prefix must be a string, got {type(prefix).__name__}")
    _require_utf8(prefix, "prefix")
    if "\\" in prefix:
        raise StorageKeyError(f"Invalid storage prefix '{prefix[:80]}': backslashes are not allowed")
    normalized = re.sub(r"/+", "/", prefix).lstrip("/")
    if ".." in normalized.split("/"):
        raise StorageKeyError(f"Invalid storage prefix '{prefix[:80]}': '..' path segments are not allowed")
    return normalized


def namespace_prefix(current: str, prefix: str) -> str:
    """The key prefix of ``namespace(prefix)`` on a storage already scoped to ``current``."""
    normalized = normalize_prefix(prefix).rstrip("/")
    return f"{current}{normalized}/" if normalized else current


@dataclass(frozen=True)
class Route:
    """Where one full key is stored."""

    kind: Kind
    session_id: str | None = None
    scope: Scope | None = None
    owner_id: str | None = None


def route(key: str) -> Route:
    """The collection (and, for a latest snapshot, the session and field) a full key belongs to."""
    if match := _LATEST_RE.fullmatch(key):
        sid, scope, owner = match.group(1), match.group(2), match.group(3)
        if _usable_session_id(sid):
            return Route("latest", sid, scope, owner)  # type: ignore[arg-type]
    if match := _HISTORY_RE.fullmatch(key):
        return Route("history", match.group(1), match.group(2), match.group(3))  # type: ignore[arg-type]
    return Route("kv")


def _usable_session_id(sid: str) -> bool:
    try:
        d.validate_id(sid, "session")
    except InvalidInputError:
        return False
    return True


def kinds_for_prefix(prefix: str) -> set[Kind]:
    """Which collections can hold a key starting with ``prefix``: a ``list()`` queries only those."""
    if not (prefix.startswith(_SESSION_ROOT) or _SESSION_ROOT.startswith(prefix)):
        return {"kv"}
    if _HISTORY_MARK in prefix and _HISTORY_RE.match(prefix + "x"):
        # Every key under an agent's immutable_history/ routes to the history collection.
        return {"history"}
    return {"latest", "history", "kv"}


def prefix_range(prefix: str) -> dict[str, Any]:
    """A ``{$gte, $lt}`` range on a string field matching exactly the strings starting with ``prefix``.

    MongoDB compares strings by their UTF-8 bytes, which orders like Python's code points, so the
    range and ``str.startswith`` agree and the index serves it (unlike an unanchored regex).
    """
    if not prefix:
        return {"$gte": ""}
    # The bound is the prefix with its last character raised by one; trailing U+10FFFF cannot be raised
    # (every longer string still starts below the shorter stem's bound), and the surrogates between
    # U+D7FF and U+E000 have no UTF-8 form, so the bound skips them.
    stem = prefix.rstrip("\U0010ffff")
    if not stem:
        return {"$gte": prefix}
    following = ord(stem[-1]) + 1
    if 0xD800 <= following <= 0xDFFF:
        following = 0xE000
    return {"$gte": prefix, "$lt": stem[:-1] + chr(following)}


def escape_field(value: str) -> str:
    """A reversible field-name form of an id: ``%``, ``.``, ``$`` and NUL are percent-encoded.

    Strands' agent ids may contain ``.`` or start with ``$``; as a field-name segment they would
    split the path or read as an operator.
    """
    return value.replace("%", "%25").replace(".", "%2E").replace("$", "%24").replace("\x00", "%00")


def unescape_field(value: str) -> str:
    return value.replace("%00", "\x00").replace("%24", "$").replace("%2E", ".").replace("%25", "%")


def entry_path(scope: str, owner_id: str) -> str:
    return f"{SNAPSHOTS}.{scope}.{escape_field(owner_id)}"


def agent_features_path(agent_id: str, field: str | None = None) -> str:
    base = f"{SNAPSHOT_AGENTS}.{escape_field(agent_id)}"
    return f"{base}.{field}" if field else base


def latest_key(session_id: str, scope: str, owner_id: str) -> str:
    return f"session/{session_id}/scopes/{scope}/{owner_id}/snapshots/snapshot_latest.json"


# ---- payloads -----------------------------------------------------------------------------------------


def encode_payload(data: bytes) -> dict[str, Any]:
    """``{data: <decoded JSON>, raw: None}`` when that is lossless, else ``{data: None, raw: <bytes>}``."""
    parsed = _readable(data)
    if parsed is not None:
        return {DATA: parsed, RAW: None, SIZE: len(data)}
    return {DATA: None, RAW: Binary(bytes(data)), SIZE: len(data)}


def _readable(data: bytes) -> dict[str, Any] | None:
    try:
        parsed = json.loads(data)
        if not isinstance(parsed, dict) or not _bson_safe(parsed, 0):
            return None
        if json.dumps(parsed, ensure_ascii=False).encode("utf-8") != data:
            return None
    except (ValueError, UnicodeError, RecursionError):
        return None
    return parsed


def _bson_safe(value: Any, depth: int) -> bool:
    """True when BSON stores ``value`` and gives back an equal, identically ordered value."""
    if depth > _MAX_DEPTH:
        return False
    if isinstance(value, dict):
        return all(
            isinstance(k, str) and k and not k.startswith("$") and "." not in k and "\x00" not in k for k in value
        ) and all(_bson_safe(v, depth + 1) for v in value.values())
    if isinstance(value, list):
        return all(_bson_safe(v, depth + 1) for v in value)
    if isinstance(value, bool) or value is None or isinstance(value, float | str):
        return True
    if isinstance(value, int):
        return _INT64[0] <= value <= _INT64[1]
    return False


def decode_payload(entry: Mapping[str, Any]) -> bytes:
    """The exact bytes that were written, from a stored entry."""
    raw = entry.get(RAW)
    if raw is not None:
        return bytes(raw)
    return json.dumps(entry.get(DATA), ensure_ascii=False).encode("utf-8")


def payload_json(entry: Mapping[str, Any]) -> Any:
    """The decoded JSON of an entry (for the viewer and migration), or None if it is not JSON."""
    if entry.get(DATA) is not None:
        return entry[DATA]
    try:
        return json.loads(decode_payload(entry))
    except (ValueError, UnicodeError):
        return None


#: Longer "words" (hashes, minified blobs) are not indexed: nobody searches for them, and each one
#: would be an index key of that size.
MAX_TOKEN_LENGTH = 128

#: Strands' JSON form of bytes (images, documents): ``{"__bytes_encoded__": true, "data": "<base64>"}``.
_ENCODED_BYTES = re.compile(r'("__bytes_encoded__":\s*true,\s*"data":\s*")[A-Za-z0-9+/=]*(")')


def content_tokens(data: bytes) -> list[str]:
    """Tokens of the content as Strands' keyword search tokenises it, without base64-encoded bytes.

    An image in a message is ~1.3x its size in base64, which splits into tens of thousands of random
    "words": indexing them would bloat every write and match nothing anyone searches for. Text,
    keys and every other value are tokenised exactly as Strands does (words up to
    ``MAX_TOKEN_LENGTH`` characters).
    """
    text = _ENCODED_BYTES.sub(r"\1\2", data.decode("utf-8", errors="replace"))
    return sorted(token for token in tokenize(text) if len(token) <= MAX_TOKEN_LENGTH)


def key_tokens(key: str) -> list[str]:
    return sorted(tokenize(_EXTENSION.sub("", key)))


def query_tokens(query: str) -> set[str]:
    return tokenize(query) - STOP_WORDS


def score(query: set[str], relative_key: str, tokens: Iterable[str]) -> int:
    """Strands' keyword score: distinct query tokens in the key (without extension) and the content."""
    return len(query & (set(tokens) | set(key_tokens(relative_key))))


#: Characters of the first message kept as ``preview`` (what a list card shows).
PREVIEW_LENGTH = 240


def first_text(parsed: Any) -> str | None:
    """The first text block of the first message of a snapshot, cut to ``PREVIEW_LENGTH``."""
    if not isinstance(parsed, dict) or not isinstance(parsed.get("data"), dict):
        return None
    messages = parsed["data"].get("messages")
    first = messages[0] if isinstance(messages, list) and messages else None
    content = first.get("content") if isinstance(first, dict) else None
    for block in content if isinstance(content, list) else []:
        if isinstance(block, dict) and isinstance(block.get("text"), str):
            return str(block["text"])[:PREVIEW_LENGTH]
    return None


def message_count(parsed: Any) -> int | None:
    if isinstance(parsed, dict) and isinstance(parsed.get("data"), dict):
        messages = parsed["data"].get("messages")
        if isinstance(messages, list):
            return len(messages)
    return None


# ---- the session document (latest snapshots) ---------------------------------------------------------


def session_base_fields(session_id: str, application_name: str | None = None) -> dict[str, Any]:
    """What a session created by the snapshot path starts with (message-log fields left out)."""
    from strands.types.session import Session, SessionType

    session = Session(session_id=session_id, session_type=SessionType.AGENT)
    doc = d.new_session_document(session, application_name=application_name)
    for field in (d.ID, d.AGENTS, d.MULTI_AGENTS, d.UPDATED_AT):
        doc.pop(field, None)
    return doc


def _if_missing(field: str, value: Any) -> dict[str, Any]:
    return {"$ifNull": [f"${field}", {"$literal": value}]}


def recompute_search_fields() -> dict[str, Any]:
    """Pipeline stage: ``snapshot_keys`` / ``snapshot_tokens`` rebuilt from the entries now present.

    Recomputed by the server on every write, so an overwritten (or redacted) snapshot leaves no
    stale key or token behind, in one round trip.
    """
    entries = {
        "$concatArrays": [
            {"$objectToArray": {"$ifNull": [f"${SNAPSHOTS}.agent", {}]}},
            {"$objectToArray": {"$ifNull": [f"${SNAPSHOTS}.multiAgent", {}]}},
        ]
    }
    return {
        "$set": {
            SNAPSHOT_KEYS: {"$map": {"input": entries, "in": f"$$this.v.{KEY}"}},
            SNAPSHOT_TOKENS: {
                "$reduce": {
                    "input": entries,
                    "initialValue": [],
                    "in": {
                        "$setUnion": [
                            "$$value",
                            {"$ifNull": [f"$$this.v.{TOKENS}", []]},
                            {"$ifNull": [f"$$this.v.{KEY_TOKENS}", []]},
                        ]
                    },
                }
            },
        }
    }


def write_latest_pipeline(rt: Route, key: str, data: bytes, at: Any) -> list[dict[str, Any]]:
    """One upserting pipeline update: the entry, the base fields if new, and the search fields."""
    assert rt.session_id is not None and rt.scope is not None and rt.owner_id is not None
    payload = encode_payload(data)
    path = entry_path(rt.scope, rt.owner_id)
    fields: dict[str, Any] = {f"{path}.{name}": {"$literal": value} for name, value in payload.items()}
    fields[f"{path}.{KEY}"] = {"$literal": key}
    fields[f"{path}.{TOKENS}"] = {"$literal": content_tokens(data)}
    fields[f"{path}.{KEY_TOKENS}"] = {"$literal": key_tokens(key)}
    fields[f"{path}.{MESSAGE_COUNT}"] = {"$literal": message_count(payload[DATA])}
    fields[f"{path}.{PREVIEW}"] = {"$literal": first_text(payload[DATA])}
    fields[f"{path}.{d.UPDATED_AT}"] = {"$literal": at}
    base = base_stage(rt.session_id, at, rt.owner_id if rt.scope == "agent" else None)
    return [base, {"$set": fields}, recompute_search_fields()]


def base_stage(
    session_id: str, at: Any, agent_id: str | None, *, application_name: str | None = None, touch: bool = True
) -> dict[str, Any]:
    """Pipeline stage: the base fields where missing (an upsert creates a complete session document).

    ``application_name`` is only ever filled in where it is missing or null (the storage, which does
    not know it, may have created the document first); ``touch=False`` keeps ``updated_at``.
    """
    fields = session_base_fields(session_id, application_name)
    base = {name: _if_missing(name, value) for name, value in fields.items()}
    base[SNAPSHOT_FORMAT] = {"$literal": SNAPSHOT_FORMAT_VALUE}
    base[d.UPDATED_AT] = {"$literal": at} if touch else _if_missing(d.UPDATED_AT, at)
    agent_ids = getattr(d, "AGENT_IDS", None)
    if agent_ids and agent_id is not None:
        base[agent_ids] = {"$setUnion": [{"$ifNull": [f"${agent_ids}", []]}, {"$literal": [agent_id]}]}
    return {"$set": base}


def delete_latest_pipeline(rt: Route, at: Any) -> list[dict[str, Any]]:
    assert rt.scope is not None and rt.owner_id is not None
    return [
        {"$unset": entry_path(rt.scope, rt.owner_id)},
        {"$set": {d.UPDATED_AT: {"$literal": at}}},
        recompute_search_fields(),
    ]


def session_filter(session_id: str) -> dict[str, Any]:
    return {d.ID: session_id}


def holds_key_filter(session_id: str, key: str) -> dict[str, Any]:
    return {d.ID: session_id, SNAPSHOT_KEYS: key}


def entry_projection(rt: Route) -> dict[str, Any]:
    assert rt.scope is not None and rt.owner_id is not None
    return {d.ID: 0, entry_path(rt.scope, rt.owner_id): 1}


def entry_from_document(doc: Mapping[str, Any] | None, rt: Route) -> dict[str, Any] | None:
    if not doc:
        return None
    assert rt.scope is not None and rt.owner_id is not None
    entry = doc.get(SNAPSHOTS, {}).get(rt.scope, {}).get(escape_field(rt.owner_id))
    return entry if isinstance(entry, dict) and KEY in entry else None


def list_sessions_filter(prefix: str) -> dict[str, Any]:
    return {SNAPSHOT_KEYS: prefix_range(prefix)}


KEYS_PROJECTION = {d.ID: 0, SNAPSHOT_KEYS: 1}


def search_sessions_filter(prefix: str, tokens: Iterable[str]) -> dict[str, Any]:
    return {SNAPSHOT_KEYS: prefix_range(prefix), SNAPSHOT_TOKENS: {"$in": sorted(tokens)}}


SEARCH_SESSIONS_PROJECTION = {d.ID: 0, SNAPSHOTS: 1}


def entries_of(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every snapshot entry of a session document (agent and multi-agent scopes)."""
    found: list[dict[str, Any]] = []
    for scope in ("agent", "multiAgent"):
        for entry in (doc.get(SNAPSHOTS, {}).get(scope) or {}).values():
            if isinstance(entry, dict) and KEY in entry:
                found.append(entry)
    return found


# ---- side collections (immutable history, other keys) -------------------------------------------------


def keyed_document(key: str, data: bytes, rt: Route, at: Any) -> dict[str, Any]:
    """A history or key/value document: the payload, its search tokens and, for history, its owner."""
    doc: dict[str, Any] = {d.ID: key, **encode_payload(data), TOKENS: content_tokens(data), KEY_TOKENS: key_tokens(key)}
    if rt.kind == "history":
        doc.update({d.SESSION_ID: rt.session_id, SCOPE: rt.scope, OWNER_ID: rt.owner_id})
    doc[d.UPDATED_AT] = at
    return doc


def key_filter(key: str) -> dict[str, Any]:
    return {d.ID: key}


def list_keyed_filter(prefix: str) -> dict[str, Any]:
    return {d.ID: prefix_range(prefix)}


ID_PROJECTION = {d.ID: 1}


def search_keyed_filter(prefix: str, tokens: Iterable[str]) -> dict[str, Any]:
    ordered = sorted(tokens)
    return {d.ID: prefix_range(prefix), "$or": [{TOKENS: {"$in": ordered}}, {KEY_TOKENS: {"$in": ordered}}]}


SEARCH_KEYED_PROJECTION = {d.ID: 1, DATA: 1, RAW: 1, TOKENS: 1}


def history_of_session_filter(session_id: str) -> dict[str, Any]:
    return {d.SESSION_ID: session_id}


def stash_filter(session_id: str) -> dict[str, Any]:
    return {d.ID: prefix_range(f"context/{session_id}/")}


#: (collection kind, index keys) the storage ensures once per collection per process.
STORAGE_INDEXES: tuple[tuple[Kind, tuple[tuple[str, int], ...]], ...] = (
    ("latest", ((SNAPSHOT_KEYS, 1),)),
    ("latest", ((SNAPSHOT_TOKENS, 1),)),
    ("history", ((d.SESSION_ID, 1),)),
    ("history", ((TOKENS, 1),)),
    ("history", ((KEY_TOKENS, 1),)),
    ("kv", ((TOKENS, 1),)),
    ("kv", ((KEY_TOKENS, 1),)),
)
