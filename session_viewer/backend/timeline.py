"""Turn a stored session document into what the detail view shows: JSON-safe, password-free.

A session document holds BSON types JSON cannot carry (dates, binary image bytes, ObjectIds) and
Strands content blocks in several shapes. This module converts all of it into plain JSON (dates
as ISO 8601 UTC, bytes as a size placeholder, never the bytes) and merges every agent's messages
and the feedback entries into one chronological timeline whose order is stable for equal
timestamps: agents in creation order, messages in id order, feedback after messages. Pure
functions, unit-tested without a database.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from bson.dbref import DBRef

from mongodb_session_manager import documents as d
from mongodb_session_manager import documents_features as df
from mongodb_session_manager.documents_archive import ARCHIVE, ARCHIVE_COUNT

#: A timestamp for items that have none; they keep their place after the item before them.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# ---- JSON-safe values ------------------------------------------------------------------------------


def iso(value: datetime) -> str:
    """ISO 8601 in UTC with a ``Z`` and always milliseconds (BSON's precision).

    A fixed width keeps the strings sortable: ``isoformat()`` alone drops the fraction when it is
    zero, and ``...:52Z`` would then sort after ``...:52.499Z``.
    """
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def as_datetime(value: Any) -> datetime | None:
    """BSON dates and ISO strings (older documents) as aware UTC; anything else None."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def iso_or_none(value: Any) -> str | None:
    parsed = as_datetime(value)
    return iso(parsed) if parsed else None


def binary_placeholder(size: int) -> str:
    return f"[binary data: {size} bytes]"


def _encoded_bytes_size(value: Mapping[str, Any]) -> int | None:
    """Strands' JSON form of bytes (``{"__bytes_encoded__": true, "data": <base64>}``)."""
    if value.get("__bytes_encoded__") is True and isinstance(value.get("data"), str):
        data = value["data"].rstrip("=")
        return len(data) * 3 // 4
    return None


def to_jsonable(value: Any) -> Any:
    """Any BSON value as plain JSON. Bytes never leave the server, only their size does."""
    if isinstance(value, DBRef):  # a stored {"$ref": ..., "$id": ...} sub-document (e.g. JSON Schema)
        value = value.as_doc()
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, bytes | bytearray | memoryview):  # bson.Binary is a bytes subclass
        return binary_placeholder(len(value))
    if isinstance(value, Mapping):
        size = _encoded_bytes_size(value)
        if size is not None:
            return binary_placeholder(size)
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    return str(value)  # ObjectId, Decimal128, Regex, Timestamp, UUID, ...


# ---- content blocks --------------------------------------------------------------------------------


def _byte_size(source: Any) -> int:
    if isinstance(source, Mapping):
        raw = source.get("bytes")
        if isinstance(raw, bytes | bytearray | memoryview):
            return len(raw)
        if isinstance(raw, Mapping):
            return _encoded_bytes_size(raw) or 0
    return 0


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def _tool_result_content(items: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, Mapping) and "text" in item:
            out.append({"type": "text", "text": _text(item["text"])})
        elif isinstance(item, Mapping) and "json" in item:
            out.append({"type": "json", "json": to_jsonable(item["json"])})
        elif isinstance(item, Mapping) and ("image" in item or "document" in item):
            out.append(normalize_block(item))
        else:
            out.append({"type": "other", "data": to_jsonable(item)})
    return out


def normalize_block(block: Any) -> dict[str, Any]:
    """One Strands content block as a small tagged object the frontend renders as a readable block."""
    if not isinstance(block, Mapping):
        return {"type": "text", "text": _text(block)}
    if "text" in block:
        return {"type": "text", "text": _text(block["text"])}
    if "toolUse" in block and isinstance(block["toolUse"], Mapping):
        use = block["toolUse"]
        return {
            "type": "tool_use",
            "tool_use_id": _text(use.get("toolUseId")),
            "name": _text(use.get("name")),
            "input": to_jsonable(use.get("input")),
        }
    if "toolResult" in block and isinstance(block["toolResult"], Mapping):
        result = block["toolResult"]
        return {
            "type": "tool_result",
            "tool_use_id": _text(result.get("toolUseId")),
            "status": _text(result.get("status")) or None,
            "content": _tool_result_content(result.get("content")),
        }
    if "image" in block and isinstance(block["image"], Mapping):
        image = block["image"]
        return {"type": "image", "format": _text(image.get("format")), "size_bytes": _byte_size(image.get("source"))}
    if "document" in block and isinstance(block["document"], Mapping):
        doc = block["document"]
        return {
            "type": "document",
            "name": _text(doc.get("name")),
            "format": _text(doc.get("format")),
            "size_bytes": _byte_size(doc.get("source")),
        }
    if "reasoningContent" in block and isinstance(block["reasoningContent"], Mapping):
        reasoning = block["reasoningContent"].get("reasoningText") or {}
        text = reasoning.get("text") if isinstance(reasoning, Mapping) else None
        return {"type": "reasoning", "text": _text(text)}
    return {"type": "other", "data": to_jsonable(block)}


def normalize_content(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [normalize_block(b) for b in content] if isinstance(content, list) else []


# ---- the session --------------------------------------------------------------------------------------


def _agents_in_order(agents: Any) -> list[tuple[str, Mapping[str, Any]]]:
    """Agents by creation time, then id: the tie-break order of the timeline."""
    if not isinstance(agents, Mapping):
        return []
    entries = [(str(k), v) for k, v in agents.items() if isinstance(v, Mapping)]

    def created(entry: tuple[str, Mapping[str, Any]]) -> tuple[datetime, str]:
        data = entry[1].get(d.AGENT_DATA)
        stamp = as_datetime(data.get(d.CREATED_AT)) if isinstance(data, Mapping) else None
        return (stamp or _EPOCH, entry[0])

    return sorted(entries, key=created)


def model_call_usage(message: Mapping[str, Any]) -> tuple[dict[str, int] | None, int | None]:
    """Tokens and latency the model reported for this one assistant message (``message.metadata``)."""
    meta = message.get("metadata")
    if not isinstance(meta, Mapping):
        return None, None
    usage = meta.get("usage")
    metrics = meta.get("metrics")
    tokens = {k: _int(v) for k, v in usage.items() if isinstance(k, str)} if isinstance(usage, Mapping) else None
    latency = metrics.get("latencyMs") if isinstance(metrics, Mapping) else None
    return tokens or None, _int(latency) if latency is not None else None


def _message_item(agent_id: str, stored: Mapping[str, Any]) -> dict[str, Any]:
    redacted = stored.get(d.REDACT_MESSAGE)
    shown = redacted if isinstance(redacted, Mapping) else stored.get(d.MESSAGE)
    shown = shown if isinstance(shown, Mapping) else {}
    metrics = stored.get(d.METRICS)
    message_id = stored.get(d.MESSAGE_ID)
    original = stored.get(d.MESSAGE)
    usage, latency = model_call_usage(original if isinstance(original, Mapping) else {})
    return {
        "type": "message",
        "id": f"{agent_id}:{message_id}",
        "agent_id": agent_id,
        "message_id": message_id if isinstance(message_id, int) and not isinstance(message_id, bool) else None,
        "role": _text(shown.get("role")) or "unknown",
        "content": normalize_content(shown.get("content")),
        "redacted": isinstance(redacted, Mapping),
        "created_at": iso_or_none(stored.get(d.CREATED_AT)),
        "updated_at": iso_or_none(stored.get(d.UPDATED_AT)),
        "usage": usage,
        "latency_ms": latency,
        "metrics": to_jsonable(metrics) if isinstance(metrics, Mapping) else None,
    }


def _feedback_item(index: int, stored: Any) -> dict[str, Any]:
    entry = stored if isinstance(stored, Mapping) else {}
    rating = entry.get(d.RATING)
    source = entry.get(df.FEEDBACK_SOURCE)
    extra = {k: v for k, v in entry.items() if k not in (d.RATING, d.COMMENT, d.CREATED_AT, df.FEEDBACK_SOURCE)}
    return {
        "type": "feedback",
        "id": f"feedback:{index}",
        "rating": rating if rating in ("up", "down") else None,
        "comment": _text(entry.get(d.COMMENT)),
        "created_at": iso_or_none(entry.get(d.CREATED_AT)),
        "source": source if isinstance(source, str) and source else None,
        "extra": to_jsonable(extra),
    }


def feedback_summary(feedbacks: Any) -> dict[str, int]:
    """End users' ratings only: reviewer notes (``source: "reviewer"``) are never counted as feedback."""
    out = {"up": 0, "down": 0, "total": 0, "reviewer_notes": 0}
    for entry in feedbacks if isinstance(feedbacks, list) else []:
        if not isinstance(entry, Mapping):
            continue
        if entry.get(df.FEEDBACK_SOURCE) == df.REVIEWER_SOURCE:
            out["reviewer_notes"] += 1
            continue
        out["total"] += 1
        if entry.get(d.RATING) in ("up", "down"):
            out[str(entry[d.RATING])] += 1
    return out


def build_timeline(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Messages of all agents and feedback entries, oldest first, deterministic for ties.

    ``doc`` holds the messages it shows: of a session that split, only the in-document part unless
    the archived messages were joined in first (the API pages with ``detail_queries``, which reads both).

    Python's sort is stable, so items are first laid out in the tie-break order (agents by
    creation, messages by array order which is id order, then feedback in insertion order) and
    then sorted by timestamp alone. An item without a timestamp borrows the previous one's.
    """
    laid_out: list[tuple[datetime, dict[str, Any]]] = []
    for agent_id, agent in _agents_in_order(doc.get(d.AGENTS)):
        previous = _EPOCH
        messages = agent.get(d.MESSAGES)
        for stored in messages if isinstance(messages, list) else []:
            if not isinstance(stored, Mapping):
                continue
            previous = as_datetime(stored.get(d.CREATED_AT)) or previous
            laid_out.append((previous, _message_item(agent_id, stored)))
    previous = _EPOCH
    feedbacks = doc.get(d.FEEDBACKS)
    for index, stored in enumerate(feedbacks if isinstance(feedbacks, list) else []):
        stamp = as_datetime(stored.get(d.CREATED_AT)) if isinstance(stored, Mapping) else None
        previous = stamp or previous
        laid_out.append((previous, _feedback_item(index, stored)))
    laid_out.sort(key=lambda pair: pair[0])
    return [item for _, item in laid_out]


def _message_count(agent: Mapping[str, Any], messages: Any) -> int:
    """The agent's whole history: the server-computed count of a header row, or for a whole document
    its in-document messages plus the archived ones (``archive.count``)."""
    if not isinstance(messages, list):
        return _int(agent.get("message_count"))
    archive = agent.get(ARCHIVE)
    return len(messages) + (_int(archive.get(ARCHIVE_COUNT)) if isinstance(archive, Mapping) else 0)


def _agent_summary(agent_id: str, agent: Mapping[str, Any]) -> dict[str, Any]:
    data = agent.get(d.AGENT_DATA)
    data = data if isinstance(data, Mapping) else {}
    messages = agent.get(d.MESSAGES)
    totals = data.get(d.TOTALS)
    return {
        "agent_id": agent_id,
        "model": data.get(d.MODEL) if isinstance(data.get(d.MODEL), str) else None,
        "system_prompt": data.get(d.SYSTEM_PROMPT) if isinstance(data.get(d.SYSTEM_PROMPT), str) else None,
        "created_at": iso_or_none(data.get(d.CREATED_AT)),
        "updated_at": iso_or_none(data.get(d.UPDATED_AT)),
        "message_count": _message_count(agent, messages),
        "totals": to_jsonable(totals) if isinstance(totals, Mapping) else {},
        "state": to_jsonable(data.get(d.STATE)) if isinstance(data.get(d.STATE), Mapping) else {},
    }


def session_totals(agents: list[dict[str, Any]]) -> dict[str, int]:
    """Session-wide tokens, latency and turns: the sum of the per-agent totals the library keeps."""
    out = {"inputTokens": 0, "outputTokens": 0, "totalTokens": 0, "latencyMs": 0, "turns": 0}
    for agent in agents:
        totals = agent.get(d.TOTALS) or {}
        usage = totals.get(d.TOTALS_USAGE) if isinstance(totals.get(d.TOTALS_USAGE), Mapping) else {}
        for key in ("inputTokens", "outputTokens", "totalTokens"):
            out[key] += _int(usage.get(key))
        out["latencyMs"] += _int(totals.get(d.TOTALS_LATENCY_MS))
        out["turns"] += _int(totals.get(d.TOTALS_TURNS))
    return out


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) else 0


def session_header(doc: Mapping[str, Any]) -> dict[str, Any]:
    """Everything of the detail body but the timeline, from an allow-list (no internal field slips through).

    ``doc`` is a whole session document or the result of ``detail_queries.header_pipeline`` (agents
    without messages but with a server-computed ``message_count``).
    """
    agents = [_agent_summary(agent_id, agent) for agent_id, agent in _agents_in_order(doc.get(d.AGENTS))]
    metadata = doc.get(d.METADATA)
    feedbacks = doc.get(d.FEEDBACKS)
    return {
        "session_id": _text(doc.get(d.SESSION_ID) or doc.get(d.ID)),
        "session_type": _text(doc.get(d.SESSION_TYPE)) or None,
        "created_at": iso_or_none(doc.get(d.CREATED_AT)),
        "updated_at": iso_or_none(doc.get(d.UPDATED_AT)),
        "metadata": to_jsonable(metadata) if isinstance(metadata, Mapping) else {},
        "agents": agents,
        "totals": session_totals(agents),
        "feedbacks": [_feedback_item(i, f) for i, f in enumerate(feedbacks if isinstance(feedbacks, list) else [])],
        "feedback_summary": feedback_summary(feedbacks),
    }


def session_detail(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The whole detail body of a whole document, every timeline item on one page (tests, small tools)."""
    timeline = build_timeline(doc)
    return {
        **session_header(doc),
        "timeline": timeline,
        "timeline_offset": 0,
        "timeline_total": len(timeline),
        "timeline_next_offset": None,
    }


def timeline_row_item(row: Mapping[str, Any]) -> dict[str, Any]:
    """One row of ``detail_queries.timeline_page_pipeline`` as a timeline item."""
    stored = row.get("item")
    index = _int(row.get("index"))
    if row.get("kind") == 1:
        return _feedback_item(index, stored)
    return _message_item(_text(row.get("agent_id")), stored if isinstance(stored, Mapping) else {})


def session_detail_page(
    header: Mapping[str, Any], rows: list[Mapping[str, Any]], total: int, offset: int
) -> dict[str, Any]:
    """The detail body for one timeline page: the header plus ``rows`` (already in timeline order)."""
    items = [timeline_row_item(row) for row in rows]
    end = offset + len(items)
    return {
        **session_header(header),
        "timeline": items,
        "timeline_offset": offset,
        "timeline_total": total,
        "timeline_next_offset": end if end < total and items else None,
    }
