"""The detail view of a session written through Strands' snapshot path (``MongoDBStorage``).

Such a session keeps each agent's conversation as one latest snapshot instead of a message log, so
the timeline is rebuilt from those snapshots: messages in snapshot order, the turn metrics this
library recorded placed on each turn's last message, feedback interleaved by time, and the result
shaped exactly like a message-log session's (``timeline.session_header`` / ``build_timeline``).

What it cannot show, because the snapshot does not hold it: a timestamp per message (each message
gets the time of the turn it belongs to, or the snapshot's time), messages a conversation manager
trimmed before the snapshot, pre-redaction content and the redaction flag, the immutable-history
checkpoints, and Graph/Swarm orchestrator state.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mongodb_session_manager import documents as d
from mongodb_session_manager import documents_snapshot as ds
from mongodb_session_manager import documents_snapshot_features as dsf

from .timeline import build_timeline, session_header


async def detail_page(collection: Any, session_id: str, offset: int, limit: int) -> dict[str, Any] | None:
    """The detail body of a snapshot session (one timeline page), or None for any other session."""
    doc = await collection.find_one(dsf.viewer_snapshot_filter(session_id), dsf.VIEWER_PROJECTION)
    if doc is None:
        return None
    return detail_from_document(doc, offset, limit)


def detail_from_document(doc: Mapping[str, Any], offset: int, limit: int) -> dict[str, Any]:
    pseudo = message_log_view(doc)
    timeline = build_timeline(pseudo)
    page = timeline[offset : offset + limit]
    end = offset + len(page)
    return {
        **session_header(pseudo),
        "timeline": page,
        "timeline_offset": offset,
        "timeline_total": len(timeline),
        "timeline_next_offset": end if end < len(timeline) and page else None,
    }


def message_log_view(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The snapshot session in the message-log shape the viewer's pure functions already render."""
    agents: dict[str, Any] = {}
    features = doc.get(ds.SNAPSHOT_AGENTS) or {}
    for escaped, entry in ((doc.get(ds.SNAPSHOTS) or {}).get("agent") or {}).items():
        if not isinstance(entry, Mapping):
            continue
        snapshot = ds.payload_json(entry)
        data = snapshot.get("data") if isinstance(snapshot, Mapping) else None
        data = data if isinstance(data, Mapping) else {}
        extra = features.get(escaped) if isinstance(features.get(escaped), Mapping) else {}
        messages = data.get("messages") if isinstance(data.get("messages"), list) else []
        saved_at = entry.get(d.UPDATED_AT)
        # Turn metrics count positions in the whole conversation; the snapshot starts after the
        # messages the conversation manager trimmed.
        trimmed = _removed(data.get("conversation_manager_state"))
        turns = sorted(
            (
                {**t, ds.MESSAGE_INDEX: int(t.get(ds.MESSAGE_INDEX) or 0) - trimmed}
                for t in extra.get(ds.TURN_METRICS) or []
                if isinstance(t, Mapping) and int(t.get(ds.MESSAGE_INDEX) or 0) >= trimmed
            ),
            key=lambda t: t[ds.MESSAGE_INDEX],
        )
        agents[ds.unescape_field(escaped)] = {
            d.AGENT_DATA: {
                d.MODEL: extra.get(d.MODEL),
                d.SYSTEM_PROMPT: extra.get(d.SYSTEM_PROMPT) or _prompt(data.get("system_prompt")),
                d.TOTALS: extra.get(d.TOTALS) or {},
                d.STATE: data.get("state") if isinstance(data.get("state"), Mapping) else {},
                d.CREATED_AT: doc.get(d.CREATED_AT),
                d.UPDATED_AT: saved_at,
            },
            d.MESSAGES: [_stored_message(i, m, turns, saved_at) for i, m in enumerate(messages)],
        }
    return {
        d.SESSION_ID: doc.get(d.SESSION_ID),
        d.SESSION_TYPE: doc.get(d.SESSION_TYPE),
        d.CREATED_AT: doc.get(d.CREATED_AT),
        d.UPDATED_AT: doc.get(d.UPDATED_AT),
        d.METADATA: doc.get(d.METADATA) or {},
        d.FEEDBACKS: doc.get(d.FEEDBACKS) or [],
        d.AGENTS: agents,
    }


def _stored_message(index: int, message: Any, turns: list[Mapping[str, Any]], saved_at: Any) -> dict[str, Any]:
    """A message-log record for message ``index``: the time of its turn, the turn's metrics on its last message."""
    turn = next((t for t in turns if int(t.get(ds.MESSAGE_INDEX) or 0) >= index), None)
    stamp = turn.get(d.CREATED_AT) if turn is not None else saved_at
    metrics = None
    if turn is not None and int(turn.get(ds.MESSAGE_INDEX) or 0) == index:
        metrics = {k: v for k, v in turn.items() if k not in (ds.MESSAGE_INDEX, d.CREATED_AT)}
    return {
        d.MESSAGE_ID: index,
        d.MESSAGE: message if isinstance(message, Mapping) else {"role": "unknown", "content": []},
        d.CREATED_AT: stamp,
        d.UPDATED_AT: stamp,
        d.METRICS: metrics,
    }


def _removed(state: Any) -> int:
    value = state.get("removed_message_count") if isinstance(state, Mapping) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _prompt(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(b.get("text", "") for b in value if isinstance(b, Mapping)) or None
    return json.dumps(value) if value is not None else None
