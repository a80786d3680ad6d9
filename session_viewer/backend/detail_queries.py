"""Query shapes of the detail side of the viewer: the session header, one timeline page, export, notes.

Pure builders on :mod:`mongodb_session_manager.documents`' field names (unit-tested without a
database), next to :mod:`.queries`, which holds the list/search side. Why a paged timeline is a
pipeline: a session can hold thousands of messages, and the browser needs 50 at a time. The server
lays out every agent's messages and the feedback entries in timeline order and returns one page, so
no more than a page crosses the network, and no stage ever holds more than one agent's in-document
messages or one archived bucket in a single document (the intermediate documents stay under 16 MB).

A long session keeps each agent's oldest messages in bucket documents of ``<collection>_messages``
(:mod:`mongodb_session_manager.documents_archive`). The timeline reads them from the buckets the
session document lists, in the same read as the in-document messages, and numbers every message by
its position in the agent's whole history, so a split session pages exactly like an unsplit one.
"""

from __future__ import annotations

from typing import Any

from mongodb_session_manager import documents as d
from mongodb_session_manager import documents_archive as da
from mongodb_session_manager.documents_lifecycle import BUCKET_MESSAGES_PROJECTION, EXPORT_PROJECTION, bucket_ids_filter

#: What a timeline item is, in the order that breaks ties between equal timestamps.
KIND_MESSAGE = 0
KIND_FEEDBACK = 1
#: The timeline order (equal timestamps: messages before feedback, agents by creation then id, then the
#: message's position in the agent's whole history, archived or not).
TIMELINE_SORT = {"at": 1, "kind": 1, "agent_created": 1, "agent_id": 1, "index": 1}


def _object_or_empty(expr: str) -> dict[str, Any]:
    return {"$cond": [{"$eq": [{"$type": expr}, "object"]}, expr, {}]}


def _array_or_empty(expr: str) -> dict[str, Any]:
    return {"$cond": [{"$isArray": expr}, expr, []]}


def header_pipeline(session_id: str) -> list[dict[str, Any]]:
    """Everything the detail page shows above the timeline, without a single message.

    Agents come back as ``{agent_id: {agent_data, message_count}}``; ``agent_data`` is the library's
    own record (model, prompt, totals, state), so the counts are computed on the server. A count is
    the agent's whole history: its archived messages plus the ones in the document.
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
                        "message_count": da.message_count_expr("$$a.v"),
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


def _message_items(session_id: str, buckets_collection: str) -> list[dict[str, Any]]:
    """One row per message of the agents' whole histories: ``{kind, agent_id, agent_created, index, at, item}``.

    Each agent becomes its *parts*: the in-document array (first history position ``archive.count``)
    and one entry per bucket the document lists (first position ``start``). Only bucket parts are
    looked up, by ``_id``, so an orphan bucket (a split that crashed, never listed) cannot appear,
    and the listing and the in-document messages come from the same read of the session document: a
    split running meanwhile can neither show a message twice nor hide one (a ``$unionWith`` over
    the buckets would read the session document a second time). ``$lookup`` directly followed by
    ``$unwind`` is coalesced by the server, so a bucket is never copied into an array first.
    """
    agent = "$agents.v"
    in_document = {"messages": _array_or_empty(f"{agent}.{d.MESSAGES}"), "base": da.archived_count_expr(agent)}
    listed = {
        "$map": {
            "input": da.buckets_expr(agent),
            "in": {"bucket_id": f"$$this.{da.BUCKET_ID}", "base": f"$$this.{da.START}"},
        }
    }
    return [
        {"$match": {d.ID: session_id}},
        {"$project": {d.ID: 0, "agents": {"$objectToArray": _object_or_empty(f"${d.AGENTS}")}}},
        {"$unwind": "$agents"},
        {
            "$project": {
                "agent_id": "$agents.k",
                "agent_created": f"{agent}.{d.AGENT_DATA}.{d.CREATED_AT}",
                "parts": {"$concatArrays": [[in_document], listed]},
            }
        },
        {"$unwind": "$parts"},
        {
            "$lookup": {
                "from": buckets_collection,
                "localField": "parts.bucket_id",  # missing for the in-document part: matches no bucket
                "foreignField": d.ID,
                "pipeline": [{"$project": {d.ID: 0, d.MESSAGES: 1}}],
                "as": "bucket",
            }
        },
        {"$unwind": {"path": "$bucket", "preserveNullAndEmptyArrays": True}},
        {
            "$project": {
                "agent_id": 1,
                "agent_created": 1,
                "base": "$parts.base",
                "messages": {
                    "$cond": [
                        {"$eq": [{"$type": "$parts.bucket_id"}, "missing"]},
                        "$parts.messages",
                        _array_or_empty(f"$bucket.{d.MESSAGES}"),
                    ]
                },
            }
        },
        {"$unwind": {"path": "$messages", "includeArrayIndex": "position"}},
        {
            "$project": {
                "kind": {"$literal": KIND_MESSAGE},
                "agent_id": 1,
                "agent_created": 1,
                "index": {"$add": ["$base", "$position"]},
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
    """One page of the merged timeline and the total number of items, in one round trip.

    ``collection`` is the session collection; archived messages are read from its companion
    (``<collection>_messages``).
    """
    return [
        *_message_items(session_id, da.buckets_collection_name(collection)),
        {"$unionWith": {"coll": collection, "pipeline": _feedback_items(session_id)}},
        {"$sort": TIMELINE_SORT},
        {"$facet": {"items": [{"$skip": offset}, {"$limit": limit}], "total": [{"$count": "n"}]}},
    ]


def session_filter(session_id: str) -> dict[str, Any]:
    return {d.ID: session_id}


#: What the export reads of each listed bucket (the library's own export reads the same).
BUCKET_PROJECTION = dict(BUCKET_MESSAGES_PROJECTION)


def buckets_filter(session_id: str, ids: list[Any]) -> dict[str, Any]:
    """The listed buckets of the session, by ``_id`` (the session id keeps it on the shard key)."""
    return bucket_ids_filter(session_id, ids)


def export_projection() -> dict[str, int]:
    """Export everything but the session's viewer password: the library's own export read
    (``documents_lifecycle.EXPORT_PROJECTION``), so both exports are the same document."""
    return dict(EXPORT_PROJECTION)
