"""Query shapes of the detail side of the viewer: the session header, one timeline page, export, notes.

Pure builders on :mod:`mongodb_session_manager.documents`' field names (unit-tested without a
database), next to :mod:`.queries`, which holds the list/search side. Why a paged timeline is a
pipeline: a session can hold thousands of messages (16 MB at most), and the browser needs 50 at a
time. The server lays out every agent's messages and the feedback entries in timeline order and
returns one page, so no more than a page crosses the network, and no stage ever holds more than one
agent's messages in a single document (the intermediate documents stay under the 16 MB limit).
"""

from __future__ import annotations

from typing import Any

from mongodb_session_manager import documents as d
from mongodb_session_manager.documents_lifecycle import EXPORT_PROJECTION

#: What a timeline item is, in the order that breaks ties between equal timestamps.
KIND_MESSAGE = 0
KIND_FEEDBACK = 1
#: The timeline order (equal timestamps: messages before feedback, agents by creation then id, array order).
TIMELINE_SORT = {"at": 1, "kind": 1, "agent_created": 1, "agent_id": 1, "index": 1}


def _object_or_empty(expr: str) -> dict[str, Any]:
    return {"$cond": [{"$eq": [{"$type": expr}, "object"]}, expr, {}]}


def _array_or_empty(expr: str) -> dict[str, Any]:
    return {"$cond": [{"$isArray": expr}, expr, []]}


def header_pipeline(session_id: str) -> list[dict[str, Any]]:
    """Everything the detail page shows above the timeline, without a single message.

    Agents come back as ``{agent_id: {agent_data, message_count}}``; ``agent_data`` is the library's
    own record (model, prompt, totals, state), so the counts are computed on the server.
    """
    agents = {
        "$arrayToObject": {
            "$map": {
                "input": {"$objectToArray": _object_or_empty(f"${d.AGENTS}")},
                "as": "a",
                "in": {
                    "k": "$$a.k",
                    "v": {
                        d.AGENT_DATA: f"$$a.v.{d.AGENT_DATA}",
                        "message_count": {"$size": _array_or_empty(f"$$a.v.{d.MESSAGES}")},
                    },
                },
            }
        }
    }
    return [
        {"$match": {d.ID: session_id}},
        {
            "$project": {
                d.ID: 1,
                d.SESSION_ID: 1,
                d.SESSION_TYPE: 1,
                d.CREATED_AT: 1,
                d.UPDATED_AT: 1,
                d.METADATA: 1,
                d.FEEDBACKS: 1,
                d.AGENTS: agents,
            }
        },
    ]


def _message_items(session_id: str) -> list[dict[str, Any]]:
    """One row per stored message: ``{kind, agent_id, agent_created, index, at, item}``."""
    return [
        {"$match": {d.ID: session_id}},
        {"$project": {d.ID: 0, "agents": {"$objectToArray": _object_or_empty(f"${d.AGENTS}")}}},
        {"$unwind": "$agents"},
        {
            "$project": {
                "agent_id": "$agents.k",
                "agent_created": f"$agents.v.{d.AGENT_DATA}.{d.CREATED_AT}",
                "messages": _array_or_empty(f"$agents.v.{d.MESSAGES}"),
            }
        },
        {"$unwind": {"path": "$messages", "includeArrayIndex": "index"}},
        {
            "$project": {
                "kind": {"$literal": KIND_MESSAGE},
                "agent_id": 1,
                "agent_created": 1,
                "index": 1,
                "at": f"$messages.{d.CREATED_AT}",
                "item": "$messages",
            }
        },
    ]


def _feedback_items(session_id: str) -> list[dict[str, Any]]:
    return [
        {"$match": {d.ID: session_id}},
        {"$project": {d.ID: 0, "feedbacks": _array_or_empty(f"${d.FEEDBACKS}")}},
        {"$unwind": {"path": "$feedbacks", "includeArrayIndex": "index"}},
        {
            "$project": {
                "kind": {"$literal": KIND_FEEDBACK},
                "agent_id": {"$literal": ""},
                "agent_created": {"$literal": None},
                "index": 1,
                "at": f"$feedbacks.{d.CREATED_AT}",
                "item": "$feedbacks",
            }
        },
    ]


def timeline_page_pipeline(collection: str, session_id: str, offset: int, limit: int) -> list[dict[str, Any]]:
    """One page of the merged timeline and the total number of items, in one round trip."""
    return [
        *_message_items(session_id),
        {"$unionWith": {"coll": collection, "pipeline": _feedback_items(session_id)}},
        {"$sort": TIMELINE_SORT},
        {"$facet": {"items": [{"$skip": offset}, {"$limit": limit}], "total": [{"$count": "n"}]}},
    ]


def session_filter(session_id: str) -> dict[str, Any]:
    return {d.ID: session_id}


def export_projection() -> dict[str, int]:
    """Export everything but the session's viewer password: the library's own export read
    (``documents_lifecycle.EXPORT_PROJECTION``), so both exports are the same document."""
    return dict(EXPORT_PROJECTION)
