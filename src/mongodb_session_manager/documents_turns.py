"""The turn's queries: the agent's lease, the one-write commit, moving an unfinished turn aside,
and the restore pipeline of sessions without an archive policy.

Built on :mod:`.documents`' field names and paths; the repository's turn and restore mixins
(``repository_turns``, ``repository_restore``) send them. Every guard is in the filter, so each
write is one atomic update whose miss the repository turns into a precise error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strands.types.session import SessionAgent, SessionMessage

from . import documents as d

# ---- the lease and the turn commit ------------------------------------------------------------------------
#: ``agents.<id>.lease``: who runs a turn of this agent now, until when (server time).
LEASE = "lease"
LEASE_TOKEN = "token"
LEASE_OWNER = "owner"
LEASE_EXPIRES_AT = "expires_at"
#: ``agents.<id>.abandoned_messages``: unfinished turns found on restore, kept out of the history.
ABANDONED_MESSAGES = "abandoned_messages"


def lease_path(agent_id: str, field: str | None = None) -> str:
    base = f"{d.AGENTS}.{agent_id}.{LEASE}"
    return f"{base}.{field}" if field else base


def abandoned_messages_path(agent_id: str) -> str:
    return f"{d.AGENTS}.{agent_id}.{ABANDONED_MESSAGES}"


def next_message_id_expr(agent_id: str) -> dict[str, Any]:
    """The agent's next message id; derived from the stored ids for documents without the counter."""
    return {
        "$ifNull": [
            f"${d.next_message_id_path(agent_id)}",
            {"$add": [{"$ifNull": [{"$max": f"${d.messages_path(agent_id)}.{d.MESSAGE_ID}"}, -1]}, 1]},
        ]
    }


def _lease_free_expr(agent_id: str, token: str | None = None) -> dict[str, Any]:
    lease = f"${lease_path(agent_id)}"
    free: list[Any] = [
        {"$eq": [{"$type": lease}, "missing"]},
        {"$lte": [f"{lease}.{LEASE_EXPIRES_AT}", "$$NOW"]},
    ]
    if token is not None:
        free.append({"$eq": [f"{lease}.{LEASE_TOKEN}", token]})
    return {"$or": free}


def lease_free_expr(agent_id: str, token: str | None = None) -> dict[str, Any]:
    """Expression: no live lease on the agent (or it is the one with ``token``)."""
    return _lease_free_expr(agent_id, token)


def acquire_lease_filter(session_id: str, agent_id: str, token: str, next_message_id: int) -> dict[str, Any]:
    """Match only if nobody else holds a live lease and the caller's history is current.

    Expiry is judged by the server's clock (``$$NOW``), so hosts with skewed clocks agree.
    """
    return {
        d.ID: session_id,
        d.agent_data_path(agent_id): {"$exists": True},
        "$expr": {
            "$and": [
                _lease_free_expr(agent_id, token),
                {"$eq": [next_message_id_expr(agent_id), next_message_id]},
            ]
        },
    }


def acquire_lease_update(agent_id: str, token: str, owner: str, ttl_ms: int) -> list[dict[str, Any]]:
    """Pipeline update: take the lease until ``$$NOW + ttl`` and materialise the id counter."""
    return [
        {
            "$set": {
                lease_path(agent_id): {
                    LEASE_TOKEN: {"$literal": token},
                    LEASE_OWNER: {"$literal": owner},
                    LEASE_EXPIRES_AT: {"$add": ["$$NOW", ttl_ms]},
                },
                d.next_message_id_path(agent_id): next_message_id_expr(agent_id),
            }
        }
    ]


def lease_held_filter(session_id: str, agent_id: str, token: str) -> dict[str, Any]:
    return {d.ID: session_id, lease_path(agent_id, LEASE_TOKEN): token}


def renew_lease_update(agent_id: str, ttl_ms: int) -> list[dict[str, Any]]:
    return [{"$set": {lease_path(agent_id, LEASE_EXPIRES_AT): {"$add": ["$$NOW", ttl_ms]}}}]


def release_lease_update(agent_id: str) -> dict[str, Any]:
    return {"$unset": {lease_path(agent_id): ""}}


def lease_state_pipeline(session_id: str, agent_id: str) -> list[dict[str, Any]]:
    """Why an acquire matched nothing: the agent, its lease, its next id and the server's clock."""
    return [
        {"$match": {d.ID: session_id}},
        {
            "$project": {
                d.ID: 0,
                "agent_exists": {"$ne": [{"$type": f"${d.agent_data_path(agent_id)}"}, "missing"]},
                "lease": f"${lease_path(agent_id)}",
                "next_message_id": next_message_id_expr(agent_id),
                "now": "$$NOW",
            }
        },
    ]


def commit_turn_filter(session_id: str, agent_id: str, token: str, first_message_id: int) -> dict[str, Any]:
    """The turn's writer still holds the lease and nobody appended since the turn began."""
    return {
        d.ID: session_id,
        lease_path(agent_id, LEASE_TOKEN): token,
        d.next_message_id_path(agent_id): first_message_id,
    }


def commit_turn_update(
    agent_id: str,
    messages: list[SessionMessage],
    *,
    next_message_id: int,
    agent: SessionAgent | None = None,
    metrics: tuple[int, Mapping[str, Any]] | None = None,
    totals: Mapping[str, int] | None = None,
    release: bool = True,
) -> dict[str, Any]:
    """A whole turn in one update: its messages, their metrics, the agent's state, the lease released.

    ``metrics`` is ``(index in messages, summary)``: the summary is stored on that message, so the
    metrics cost no write of their own.
    """
    at = d.now()
    documents = [d.message_document(m) for m in messages]
    if metrics is not None:
        index, summary = metrics
        documents[index][d.METRICS] = {**summary, "recorded_at": at}
    fields: dict[str, Any] = {d.next_message_id_path(agent_id): next_message_id, **d.touch(at)}
    if agent is not None:
        fields.update(d.update_agent_update(agent)["$set"])
        fields.update(d.touch(at))
    update: dict[str, Any] = {"$set": fields}
    if documents:
        update["$push"] = {d.messages_path(agent_id): {"$each": documents}}
    if totals:
        update["$inc"] = d.totals_inc(agent_id, totals)
    if release:
        update["$unset"] = {lease_path(agent_id): ""}
    return update


def append_messages_update(agent_id: str, messages: list[SessionMessage]) -> dict[str, Any]:
    """Several messages in one guarded ``$push`` (an agent created with a history, direct tool calls)."""
    return {
        "$push": {d.messages_path(agent_id): {"$each": [d.message_document(m) for m in messages]}},
        "$max": {d.next_message_id_path(agent_id): messages[-1].message_id + 1},
        "$set": d.touch(),
    }


def set_aside_filter(session_id: str, agent_id: str, first_message_id: int, next_message_id: int) -> dict[str, Any]:
    """Nobody runs a turn, nothing was appended since the restore, and the tail was not moved already."""
    return {
        d.ID: session_id,
        f"{d.messages_path(agent_id)}.{d.MESSAGE_ID}": first_message_id,
        "$expr": {"$and": [_lease_free_expr(agent_id), {"$eq": [next_message_id_expr(agent_id), next_message_id]}]},
    }


def set_aside_update(agent_id: str, first_message_id: int, next_message_id: int) -> list[dict[str, Any]]:
    """Pipeline update: move messages from ``first_message_id`` on into ``abandoned_messages``.

    The server moves the stored documents themselves (dates and metrics included), so nothing is
    rebuilt on the client; the id counter is pinned, so the moved ids are never given out again.
    """
    messages = {"$ifNull": [f"${d.messages_path(agent_id)}", []]}
    moved = {"$filter": {"input": messages, "cond": {"$gte": [f"$$this.{d.MESSAGE_ID}", first_message_id]}}}
    kept = {"$filter": {"input": messages, "cond": {"$lt": [f"$$this.{d.MESSAGE_ID}", first_message_id]}}}
    return [
        {
            "$set": {
                abandoned_messages_path(agent_id): {
                    "$concatArrays": [{"$ifNull": [f"${abandoned_messages_path(agent_id)}", []]}, moved]
                },
                d.messages_path(agent_id): kept,
                d.next_message_id_path(agent_id): {"$literal": next_message_id},
                d.UPDATED_AT: "$$NOW",
            }
        }
    ]


# ---- the restore pipeline (sessions without an archive policy) -----------------------------------


def removed_offset_expr(agent_expr: str) -> dict[str, Any]:
    """Strands' restore offset read on the server: ``removed_message_count`` if a number, else 0.

    ``agent_expr`` is the agent as an expression (``$agents.<id>``, or ``$$a.v`` inside a ``$map``);
    :func:`.documents_archive.removed_offset` reads it the same way in Python.
    """
    removed = f"{agent_expr}.{d.AGENT_DATA}.conversation_manager_state.removed_message_count"
    return {"$cond": [{"$isNumber": removed}, {"$max": [{"$toInt": removed}, 0]}, 0]}


def restore_agents_pipeline(session_id: str, *, buckets: str | None = None) -> list[dict[str, Any]]:
    """The session and every agent with its message window, in one round trip (the async creation path).

    The session's own fields (:data:`.documents.SESSION_PROJECTION`) come with it, so a manager built from
    this read needs no ``read_session`` of its own.

    Archived buckets an agent's window reaches into come whole (``$lookup``) and are sliced per agent
    by :func:`documents_archive.slice_whole_buckets`.
    """
    from .documents_archive import archived_count_expr, buckets_expr

    agent = "$$a.v"
    array = {"$ifNull": [f"{agent}.{d.MESSAGES}", []]}
    offset = removed_offset_expr(agent)
    archived = archived_count_expr(agent)
    counter = {
        "$ifNull": [
            f"{agent}.next_message_id",
            {"$add": [{"$ifNull": [{"$max": f"{agent}.{d.MESSAGES}.{d.MESSAGE_ID}"}, -1]}, 1]},
        ]
    }
    doc_offset = {"$max": [{"$subtract": [offset, archived]}, 0]}
    overlapping = {
        "$filter": {
            "input": buckets_expr(agent),
            "as": "b",
            "cond": {"$gt": [{"$add": ["$$b.start", "$$b.count"]}, offset]},
        }
    }
    needed = {"$map": {"input": overlapping, "as": "b", "in": "$$b.id"}}
    needed_bytes = {"$sum": {"$map": {"input": overlapping, "as": "b", "in": {"$ifNull": ["$$b.bytes", 0]}}}}
    stages: list[dict[str, Any]] = [
        {"$match": {d.ID: session_id}},
        {
            "$project": {
                **d.SESSION_PROJECTION,  # the session itself comes along: its read is this one
                "size": {"$bsonSize": "$$ROOT"},
                "agents": {
                    "$map": {
                        "input": {"$objectToArray": {"$ifNull": [f"${d.AGENTS}", {}]}},
                        "as": "a",
                        "in": {
                            "agent_id": "$$a.k",
                            "agent_data": "$$a.v.agent_data",
                            "next_message_id": counter,
                            "offset": offset,
                            "archived": archived,
                            "stored": {"$size": array},
                            "messages": {"$slice": [array, doc_offset, {"$max": [{"$size": array}, 1]}]},
                            "bucket_ids": needed,
                            "bucket_bytes": needed_bytes,
                        },
                    }
                },
            }
        },
    ]
    if buckets is not None:
        from .documents_archive import LOOKUP_BYTES, whole_bucket_lookup_stage

        stages.append(
            {
                "$set": {
                    "bucket_ids": {
                        "$reduce": {
                            "input": "$agents.bucket_ids",
                            "initialValue": [],
                            "in": {"$concatArrays": ["$$value", "$$this"]},
                        }
                    },
                    "bucket_bytes": {"$sum": "$agents.bucket_bytes"},
                }
            }
        )
        stages.append(
            {"$set": {"lookup_ids": {"$cond": [{"$lte": ["$bucket_bytes", LOOKUP_BYTES]}, "$bucket_ids", []]}}}
        )
        stages.append(whole_bucket_lookup_stage(buckets, restore=True))
    return stages
