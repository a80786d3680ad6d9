"""The split: which of an agent's oldest messages move into buckets, and the writes that move them.

:mod:`.documents_archive` knows the archive's shape (the policy, the bucket documents and the
session document's list of them, the expressions every reader of archived messages uses); this
module knows the one operation that creates it. Kept apart because the split is a protocol of its
own, read best in one place: one read of what to plan from and what to move
(:func:`split_read_projection`, :func:`split_state`), the plan (:func:`plan_split`: whole buckets,
the newest message always kept), the split's own lease when no turn holds one, the bucket documents
(:func:`bucket_documents`, raw BSON re-sent byte for byte) and one guarded move of the session
document (:func:`move_filter`, :func:`move_update`) that fails, instead of losing a rewrite, when a
moved message changed in between. ``repository_archive`` runs it; ``documents_lifecycle`` plans an
import with it; ``migrations`` finds the sessions that need it. Pure, unit-tested.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import bson

from . import documents as d
from . import documents_archive as da
from . import documents_turns as dt
from .raw_flags import HOLDS, RawFlags


@dataclass(frozen=True)
class StoredMessage:
    """What the split plan needs to know of one in-document message."""

    message_id: int
    bytes: int
    updated_at: datetime | None


@dataclass(frozen=True)
class SplitPlan:
    """Move the first ``count`` in-document messages, grouped into buckets of ``groups[i]`` messages."""

    count: int
    groups: tuple[int, ...]
    moved_bytes: int
    first_message_id: int
    last_message_id: int
    max_updated_at: datetime | None


def plan_split(stored: Sequence[StoredMessage], document_bytes: int, policy: da.ArchivePolicy) -> SplitPlan | None:
    """Which of the oldest messages to move, or None when the agent is within the policy.

    The newest message always stays in the document: it is where a restore looks for an unfinished
    turn, and the last message is read alone without touching the archive.
    """
    if not policy.due(len(stored), document_bytes):
        return None
    count, size = 0, document_bytes
    while count < len(stored) - 1 and (len(stored) - count > policy.keep_messages or size > policy.keep_bytes):
        size -= stored[count].bytes
        count += 1
    # Whole buckets: a session growing one message at a time would otherwise leave a one-message
    # bucket beside every full one. Rounded down only where the byte budget does not need the rest.
    whole = count - count % policy.bucket_messages
    if 0 < whole < count and size + sum(m.bytes for m in stored[whole:count]) <= policy.keep_bytes:
        count = whole
    if count == 0:
        return None
    groups: list[int] = []
    in_group = group_bytes = 0
    for message in stored[:count]:
        if in_group and (in_group >= policy.bucket_messages or group_bytes + message.bytes > policy.bucket_bytes):
            groups.append(in_group)
            in_group = group_bytes = 0
        in_group += 1
        group_bytes += message.bytes
    groups.append(in_group)
    dates = [m.updated_at for m in stored[:count] if m.updated_at is not None]
    return SplitPlan(
        count=count,
        groups=tuple(groups),
        moved_bytes=sum(m.bytes for m in stored[:count]),
        first_message_id=stored[0].message_id,
        last_message_id=stored[count - 1].message_id,
        max_updated_at=max(dates) if dates else None,
    )


def split_read_projection(agent_id: str) -> dict[str, Any]:
    """What a split reads, in one ``find``: the document's size, the agent's archive count and its
    in-document messages as stored.

    The plan needs each message's size, id and last change; the move needs the oldest ones byte for
    byte. Both come from this one read (sizes are the raw elements' lengths, what ``$bsonSize``
    gives), where an aggregation of the sizes and a second one of the oldest messages cost two
    round trips. The extra bytes (the messages the plan keeps, about a policy's ``keep_messages``)
    cost less than a round trip even on loopback.
    """
    return {
        d.ID: 0,
        "size": {"$bsonSize": "$$ROOT"},
        da.archive_path(agent_id, da.ARCHIVE_COUNT): 1,
        d.messages_path(agent_id): 1,
    }


@dataclass(frozen=True)
class SplitState:
    """A split's read (:func:`split_read_projection`): the document's size, how many of the agent's
    messages are archived, and its in-document messages (raw, as stored) with what the plan needs."""

    size: int
    archived: int
    raw_messages: list[Any]
    stored: list[StoredMessage]


def split_state(doc: Mapping[str, Any], agent_id: str) -> SplitState:
    """The split's state out of its raw read; a message entry that is not a document raises
    :class:`ValueError` (the split is then skipped and logged, as a failed server expression was)."""
    agent = (doc.get(d.AGENTS) or {}).get(agent_id)
    agent = agent if isinstance(agent, Mapping) else {}
    archive = agent.get(da.ARCHIVE)
    archived = archive.get(da.ARCHIVE_COUNT) if isinstance(archive, Mapping) else None
    messages = agent.get(d.MESSAGES)
    raw_messages = list(messages) if isinstance(messages, list) else []
    stored: list[StoredMessage] = []
    for position, message in enumerate(raw_messages):
        raw = getattr(message, "raw", None)
        if not isinstance(raw, bytes):
            raise ValueError(f"message at position {position} is not a document")
        stored.append(
            StoredMessage(
                message_id=int(message.get(d.MESSAGE_ID) or 0),
                bytes=len(raw),
                updated_at=message.get(d.UPDATED_AT),
            )
        )
    return SplitState(int(doc.get("size") or 0), int(archived or 0), raw_messages, stored)


def oversized_agents_pipeline(policy: da.ArchivePolicy, limit: int | None = None) -> list[dict[str, Any]]:
    """Sessions with an agent the policy would split (its in-document count, or the document's size),
    with each agent's count: ``{_id, size, agents: [{agent_id, stored}]}``. A scan of the collection,
    for ``migrate --archive``; sessions without an agents map (the snapshot path) never match."""
    counts = {
        "$map": {
            "input": {"$objectToArray": "$agents"},
            "in": {
                "agent_id": "$$this.k",
                "stored": {"$cond": [{"$isArray": "$$this.v.messages"}, {"$size": "$$this.v.messages"}, 0]},
            },
        }
    }
    too_many = {"$map": {"input": "$agents", "in": {"$gt": ["$$this.stored", policy.max_messages]}}}
    over = {"$or": [{"$gt": ["$size", policy.max_bytes]}, {"$anyElementTrue": [too_many]}]}
    pipeline: list[dict[str, Any]] = [
        {"$match": {d.AGENTS: {"$type": "object"}}},
        {"$project": {"size": {"$bsonSize": "$$ROOT"}, d.AGENTS: counts}},
        {"$match": {"$expr": over}},
        {"$sort": {d.ID: 1}},
    ]
    if limit is not None:
        pipeline.append({"$limit": limit})
    return pipeline


def split_lease_filter(session_id: str, agent_id: str, token: str) -> dict[str, Any]:
    """Nobody runs a turn of the agent (or the caller already holds its lease)."""
    return {
        d.ID: session_id,
        d.agent_data_path(agent_id): {"$exists": True},
        "$expr": dt.lease_free_expr(agent_id, token),
    }


def split_lease_update(agent_id: str, token: str, owner: str, ttl_ms: int) -> list[dict[str, Any]]:
    return [
        {
            "$set": {
                dt.lease_path(agent_id): {
                    dt.LEASE_TOKEN: {"$literal": token},
                    dt.LEASE_OWNER: {"$literal": owner},
                    dt.LEASE_EXPIRES_AT: {"$add": ["$$NOW", ttl_ms]},
                }
            }
        }
    ]


def _ids_run_on(messages: Sequence[Any], first: int) -> bool:
    """Whether the messages' ids are ``first``, ``first + 1``, ... in order (integers, none missing)."""
    for position, message in enumerate(messages):
        value = message.get(d.MESSAGE_ID)
        if isinstance(value, bool) or not isinstance(value, int) or value != first + position:
            return False
    return True


def bucket_documents(
    session_id: str, agent_id: str, messages: Sequence[Any], plan: SplitPlan, *, archived: int, ids: Sequence[Any]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The bucket documents to insert and their entries for the session document's list.

    ``messages`` are the stored documents as read (raw BSON is re-sent byte for byte).
    """
    docs: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []
    at, start, position = d.now(), archived, 0
    for bucket_id, size in zip(ids, plan.groups, strict=True):
        chunk = list(messages[position : position + size])
        first, last = int(chunk[0][d.MESSAGE_ID]), int(chunk[-1][d.MESSAGE_ID])
        nbytes = sum(len(m.raw) if hasattr(m, "raw") else d.approximate_size(m) for m in chunk)
        bucket = {
            d.ID: bucket_id,
            d.SESSION_ID: session_id,
            "agent_id": agent_id,
            da.START: start,
            da.COUNT: size,
            da.FIRST_MESSAGE_ID: first,
            da.LAST_MESSAGE_ID: last,
            da.BYTES: nbytes,
            d.CREATED_AT: at,
            d.MESSAGES: chunk,
        }
        # What its messages hold, so a restore need not search them (imported messages are dicts).
        raws = (bytes(m.raw) if hasattr(m, "raw") else bson.encode(m, codec_options=d.CODEC_OPTIONS) for m in chunk)
        bucket[HOLDS] = RawFlags.of_messages(raws).record()
        bucket[da.REDACTED] = any(bool(m.get(d.REDACT_MESSAGE)) for m in chunk)
        docs.append(bucket)
        entry = {
            da.BUCKET_ID: bucket_id,
            da.START: start,
            da.COUNT: size,
            da.FIRST_MESSAGE_ID: first,
            da.LAST_MESSAGE_ID: last,
            da.BYTES: nbytes,
        }
        if _ids_run_on(chunk, first):
            entry[da.SEQUENTIAL_IDS] = True
        if bucket[da.REDACTED]:
            entry[da.REDACTED] = True
        entries.append(entry)
        start += size
        position += size
    return docs, entries


def orphan_buckets_filter(session_id: str, agent_id: str, archived: int) -> dict[str, Any]:
    """Buckets of the agent the document does not list: every listed one lies below ``archived``.

    Only safe under the agent's lease: another splitter's buckets are orphans too once its lease is
    gone (its own move is guarded by the lease and can no longer succeed).
    """
    return {d.SESSION_ID: session_id, "agent_id": agent_id, da.START: {"$gte": archived}}


def move_filter(session_id: str, agent_id: str, token: str, plan: SplitPlan, archived: int) -> dict[str, Any]:
    """The split's guard: our lease, the archive unchanged, and the moved messages exactly as copied.

    The first and last ids pin the range; their total size and newest ``updated_at`` detect a
    message rewritten (redacted, given metrics) between the copy and the move, so that rewrite is
    never lost: the move fails and is tried again later.
    """
    array = {"$ifNull": [f"${d.messages_path(agent_id)}", []]}
    moved = {"$slice": [array, plan.count]}
    ids = f"${d.messages_path(agent_id)}.{d.MESSAGE_ID}"
    return {
        d.ID: session_id,
        dt.lease_path(agent_id, dt.LEASE_TOKEN): token,
        "$expr": {
            "$and": [
                {"$eq": [da.archived_count_expr(f"${d.agent_path(agent_id)}"), archived]},
                {"$eq": [{"$arrayElemAt": [ids, 0]}, plan.first_message_id]},
                {"$eq": [{"$arrayElemAt": [ids, plan.count - 1]}, plan.last_message_id]},
                {"$eq": [{"$sum": {"$map": {"input": moved, "in": {"$bsonSize": "$$this"}}}}, plan.moved_bytes]},
                {"$eq": [{"$max": {"$map": {"input": moved, "in": f"$$this.{d.UPDATED_AT}"}}}, plan.max_updated_at]},
            ]
        },
    }


def move_update(
    agent_id: str, plan: SplitPlan, entries: list[dict[str, Any]], *, release: bool
) -> list[dict[str, Any]]:
    """Pipeline update: drop the moved messages, list their buckets, count them (and release the lease)."""
    array = {"$ifNull": [f"${d.messages_path(agent_id)}", []]}
    agent = f"${d.agent_path(agent_id)}"
    kept = {"$slice": [array, plan.count, {"$max": [{"$subtract": [{"$size": array}, plan.count]}, 1]}]}
    stages: list[dict[str, Any]] = [
        {
            "$set": {
                d.messages_path(agent_id): kept,
                d.next_message_id_path(agent_id): dt.next_message_id_expr(agent_id),
                da.archive_path(agent_id, da.ARCHIVE_COUNT): {"$add": [da.archived_count_expr(agent), plan.count]},
                da.archive_path(agent_id, da.ARCHIVE_BYTES): {
                    "$add": [{"$ifNull": [f"{agent}.{da.ARCHIVE}.{da.ARCHIVE_BYTES}", 0]}, plan.moved_bytes]
                },
                da.archive_path(agent_id, da.ARCHIVE_BUCKETS): {
                    "$concatArrays": [da.buckets_expr(agent), {"$literal": entries}]
                },
            }
        }
    ]
    if release:
        stages.append({"$unset": dt.lease_path(agent_id)})
    return stages
