"""Archived messages: the shapes that let a session grow past what one document holds.

A session stays one document: metadata, feedback, agent data, totals and each agent's *recent*
messages. When an agent's share of the document passes a threshold, its oldest messages move, in
order, into bucket documents of a companion collection (``<collection>_messages``). The session
document keeps the list of its buckets (``agents.<id>.archive``), so it remains the single source of
truth: a bucket it does not list (a split that crashed, or lost a race) is never read and is
removed by the next split of that agent or by ``delete_session``.

Positions, not message ids, locate a message (Strands restores from a position:
``removed_message_count``): the archive holds positions ``[0, archive.count)``, the in-document
array continues from ``archive.count``. Every builder here is pure; the repository sends them.
The split that creates the archive (its plan, lease, bucket documents and guarded move) is
:mod:`.documents_split`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import documents as d
from . import documents_indexes as dx
from . import documents_turns as dt
from .raw_flags import HOLDS

#: ``agents.<id>.archive``: ``{count, bytes, buckets: [{id, start, count, first_message_id, last_message_id, bytes}]}``.
ARCHIVE = "archive"
ARCHIVE_COUNT = "count"
ARCHIVE_BYTES = "bytes"
ARCHIVE_BUCKETS = "buckets"
#: Fields of a bucket entry (in the session document) and of the bucket document itself.
BUCKET_ID = "id"
START = "start"
COUNT = "count"
FIRST_MESSAGE_ID = "first_message_id"
LAST_MESSAGE_ID = "last_message_id"
BYTES = "bytes"
#: The companion collection's name is the session collection's plus this suffix.
BUCKETS_SUFFIX = "_messages"
#: Buckets fetched inside the reading aggregation only up to this many bytes: the aggregation's reply
#: is one document, capped at 16 MB like any other. A larger window is read by a second query.
LOOKUP_BYTES = 8 * 1024 * 1024
#: Upper bound for "no limit" in server-side arithmetic (positions are int32-safe far beyond this).
NO_END = 2**31 - 1

#: Index of the companion collection: the shard key's prefix (session), then agent and position.
BUCKET_INDEX_KEY: dx.IndexKey = ((d.SESSION_ID, 1), ("agent_id", 1), (START, 1))


def buckets_collection_name(collection_name: str) -> str:
    return f"{collection_name}{BUCKETS_SUFFIX}"


def archive_path(agent_id: str, field: str | None = None) -> str:
    base = f"{d.AGENTS}.{agent_id}.{ARCHIVE}"
    return f"{base}.{field}" if field else base


# ---- expressions every reader uses ---------------------------------------------------------------------


def archived_count_expr(agent_expr: str) -> dict[str, Any]:
    """How many of the agent's messages are archived (0 for a session that never split)."""
    return {"$ifNull": [f"{agent_expr}.{ARCHIVE}.{ARCHIVE_COUNT}", 0]}


def message_count_expr(agent_expr: str) -> dict[str, Any]:
    """The agent's whole history: archived plus in-document messages (``agent_expr`` like ``$agents.a``)."""
    messages = f"{agent_expr}.{d.MESSAGES}"
    return {"$add": [{"$size": {"$cond": [{"$isArray": messages}, messages, []]}}, archived_count_expr(agent_expr)]}


def buckets_expr(agent_expr: str) -> dict[str, Any]:
    return {"$ifNull": [f"{agent_expr}.{ARCHIVE}.{ARCHIVE_BUCKETS}", []]}


def window_fields(agent_expr: str, offset: Any, limit: Any | None) -> dict[str, Any]:
    """Projection fields for positions ``[offset, offset + limit)`` of the agent's whole history.

    ``messages`` is the in-document part of the window, ``bucket_ids`` the archived buckets that
    overlap it (fetched by :func:`bucket_lookup_stage`), ``offset``/``end`` the window itself.
    ``offset`` and ``limit`` may be expressions (the restore reads its offset from the agent data).
    """
    # Plain numbers as $literal: in a $project, 0 and 1 would mean "exclude" and "include".
    offset = {"$literal": offset} if isinstance(offset, int) else offset
    limit = {"$literal": limit} if isinstance(limit, int) else limit
    array = {"$ifNull": [f"{agent_expr}.{d.MESSAGES}", []]}
    archived = archived_count_expr(agent_expr)
    end: Any = {"$literal": NO_END} if limit is None else {"$add": [offset, limit]}
    doc_offset = {"$max": [{"$subtract": [offset, archived]}, 0]}
    doc_end = {"$max": [{"$subtract": [end, archived]}, 0]}
    doc_count = {"$subtract": [{"$min": [doc_end, {"$size": array}]}, doc_offset]}
    entry = "$$this"
    overlapping = {
        "$filter": {
            "input": buckets_expr(agent_expr),
            "cond": {
                "$and": [
                    {"$gt": [{"$add": [f"{entry}.{START}", f"{entry}.{COUNT}"]}, offset]},
                    {"$lt": [f"{entry}.{START}", end]},
                ]
            },
        }
    }
    # A window in the document (the normal case) does not even walk the bucket list ($cond is lazy).
    overlapping = {"$cond": [{"$lt": [offset, archived]}, overlapping, []]}
    ids = {"$map": {"input": overlapping, "in": f"$$this.{BUCKET_ID}"}}
    nbytes = {"$sum": {"$map": {"input": overlapping, "in": {"$ifNull": [f"$$this.{BYTES}", 0]}}}}
    return {
        "offset": offset,
        "end": end,
        "archived": archived,
        "stored": {"$size": array},
        "messages": {"$cond": [{"$gt": [doc_count, 0]}, {"$slice": [array, doc_offset, doc_count]}, []]},
        "bucket_ids": ids,
        "lookup_ids": {"$cond": [{"$lte": [nbytes, LOOKUP_BYTES]}, ids, []]},
    }


def bucket_lookup_stage(buckets_collection: str, *, strip: dict[str, Any] | None = None) -> dict[str, Any]:
    """``$lookup`` of the window's buckets, each sliced on the server to the window's positions.

    Uses the bucket ``_id`` index (``localField``/``foreignField``), so a window that lies in the
    document (the normal case) costs an empty index probe, and the restore stays one round trip.
    ``strip`` maps each message to the fields a listing returns.
    """
    lo, hi = "$$lo", "$$hi"
    first = {"$max": [lo, f"${START}"]}
    last = {"$min": [hi, {"$add": [f"${START}", f"${COUNT}"]}]}
    sliced: Any = {
        "$slice": [f"${d.MESSAGES}", {"$subtract": [first, f"${START}"]}, {"$max": [{"$subtract": [last, first]}, 1]}]
    }
    if strip is not None:
        sliced = {"$map": {"input": sliced, "in": strip}}
    return {
        "$lookup": {
            "from": buckets_collection,
            "localField": "lookup_ids",
            "foreignField": d.ID,
            "let": {"lo": "$offset", "hi": "$end"},
            "pipeline": [{"$project": {d.ID: 0, START: 1, d.MESSAGES: sliced}}],
            "as": "buckets",
        }
    }


def whole_bucket_lookup_stage(
    buckets_collection: str, local_field: str = "lookup_ids", *, restore: bool = False
) -> dict[str, Any]:
    """``$lookup`` of whole buckets (the all-agents restore slices them per agent in Python).

    ``restore``: of each message only what Strands restores (:data:`BUCKET_RESTORE_PROJECTION`'s fields).
    """
    messages: dict[str, Any] = (
        {f"{d.MESSAGES}.{field}": 1 for field in RESTORED_MESSAGE_FIELDS} if restore else {d.MESSAGES: 1}
    )
    return {
        "$lookup": {
            "from": buckets_collection,
            "localField": local_field,
            "foreignField": d.ID,
            "pipeline": [{"$project": {d.ID: 0, "agent_id": 1, START: 1, COUNT: 1, **messages}}],
            "as": "buckets",
        }
    }


def window_needs_query(doc: Mapping[str, Any]) -> list[Any]:
    """Bucket ids the aggregation did not bring (the window was too large for one reply)."""
    ids = list(doc.get("bucket_ids") or [])
    return ids if ids and not doc.get("lookup_ids") else []


def buckets_query(ids: Sequence[Any]) -> dict[str, Any]:
    return {d.ID: {"$in": list(ids)}}


def containing_buckets_pipeline(session_id: str, agent_id: str, message_id: int) -> list[dict[str, Any]]:
    """The ids of the listed buckets that hold ``message_id`` (at most one), read from the session document."""
    listed = containing_bucket_ids(f"${d.agent_path(agent_id)}", message_id)
    return [{"$match": {d.ID: session_id}}, {"$project": {d.ID: 0, "bucket_ids": listed}}]


#: The fields of a stored message a restore builds Strands' record from (dates and metrics stay behind).
RESTORED_MESSAGE_FIELDS = (d.MESSAGE_ID, d.MESSAGE, d.REDACT_MESSAGE)
BUCKET_READ_PROJECTION = {d.ID: 0, "agent_id": 1, START: 1, COUNT: 1, HOLDS: 1, d.MESSAGES: 1}
#: What a restore reads of a bucket: its place, what its messages hold, and of each message only what
#: Strands restores. Without the two dates and the metrics a message decodes to about a third fewer
#: values; on 1,800 archived messages the read measured 7.1 ms against 10.5 ms for whole messages
#: read raw and decoded apiece (the path before), interleaved, 80 runs each.
BUCKET_RESTORE_PROJECTION = {
    d.ID: 0,
    "agent_id": 1,
    START: 1,
    COUNT: 1,
    HOLDS: 1,
    **{f"{d.MESSAGES}.{field}": 1 for field in RESTORED_MESSAGE_FIELDS},
}
#: On a bucket's entry in the session document: its messages' ids are ``first_message_id`` and on, one
#: per position, in order. Checked when the bucket is written (its ids never change afterwards), so a
#: restore whose buckets all say so reads no id per message and numbers them by position
#: (:func:`restore_window_messages`). An entry without it (a bucket from before) is read with the ids.
SEQUENTIAL_IDS = "sequential_ids"
#: On a bucket: whether any of its messages has a redaction (``redact_message`` set). Written with the
#: bucket; a rewrite of a message in it removes it in the same update and then computes it again on
#: the server (:func:`bucket_redacted_update`), so it is read in the same document as the messages it
#: describes, and absent (unknown) only between the two or after a crash between them.
#: On a bucket's entry in the session document, ``redacted: true`` says the bucket held a redaction
#: when it was written (a guardrail's redaction of a message, later archived): a restore whose window
#: lists one reads its buckets with the redactions at once instead of a second time. Only a hint,
#: never updated afterwards: the bucket's own record decides.
REDACTED = "redacted"
#: :data:`BUCKET_RESTORE_PROJECTION` for :data:`SEQUENTIAL_IDS` buckets: no message ids, and no
#: ``redact_message`` either (a bucket that does not say ``redacted: false`` is read again with it,
#: :data:`BUCKET_RESTORE_BY_POSITION_PROJECTION`). Four values fewer to decode per message: 7.4
#: against 8.5 ms for the 1,800 archived messages of a 2,000-message restore (interleaved, 100 runs).
BUCKET_RESTORE_UNREDACTED_PROJECTION = {
    **{key: value for key, value in BUCKET_RESTORE_PROJECTION.items() if not key.startswith(f"{d.MESSAGES}.")},
    d.ID: 1,
    FIRST_MESSAGE_ID: 1,
    REDACTED: 1,
    f"{d.MESSAGES}.{d.MESSAGE}": 1,
}
BUCKET_RESTORE_BY_POSITION_PROJECTION = {
    **BUCKET_RESTORE_UNREDACTED_PROJECTION,
    f"{d.MESSAGES}.{d.REDACT_MESSAGE}": 1,
}


def bucket_unredacted(bucket: Mapping[str, Any]) -> bool:
    """Whether the bucket, as read, records that none of its messages has a redaction."""
    return bucket.get(REDACTED) is False


def bucket_redacted_update() -> list[dict[str, Any]]:
    """Compute a bucket's :data:`REDACTED` from the messages it holds now (after a rewrite). Any
    ``redact_message`` that is neither missing nor null counts, an empty one too: a "yes" too many
    costs a restore one more read, never a redaction."""
    redacted = {"$ne": [{"$ifNull": [f"$$this.{d.REDACT_MESSAGE}", None]}, None]}
    messages = {"$ifNull": [f"${d.MESSAGES}", []]}
    return [{"$set": {REDACTED: {"$anyElementTrue": [{"$map": {"input": messages, "in": redacted}}]}}}]


def restore_window_messages(
    buckets: Sequence[Mapping[str, Any]], offset: int, messages: Sequence[Any], *, by_position: bool
) -> tuple[list[Any], list[Any] | None]:
    """A restore's window, oldest first: the buckets' messages from position ``offset`` on (as
    :func:`slice_bucket` and :func:`join_window` cut and join them), then the document's ``messages``.
    With ``by_position`` (buckets read without their ids, :data:`SEQUENTIAL_IDS`), also each message's
    id: a bucket's run on from its first; the document's messages carry theirs (as stored, checked
    when a record is built from it, as a message read with its id is)."""
    joined: list[Any] = []
    ids: list[Any] | None = [] if by_position else None
    for bucket in sorted(buckets, key=lambda b: int(b[START])):
        stored = bucket[d.MESSAGES]
        skip = max(offset - int(bucket[START]), 0)
        joined.extend(stored[skip:] if skip else stored)
        if ids is not None:
            first = int(bucket[FIRST_MESSAGE_ID])
            ids.extend(range(first + skip, first + len(stored)))
    joined.extend(messages)
    if ids is not None:
        ids.extend(message.get(d.MESSAGE_ID) for message in messages)
    return joined, ids


def slice_bucket(bucket: Mapping[str, Any], offset: int, end: int) -> dict[str, Any]:
    """A whole bucket cut to the window's positions (what the ``$lookup`` slices on the server)."""
    start = int(bucket[START])
    messages = list(bucket[d.MESSAGES])
    return {START: start, d.MESSAGES: messages[max(offset - start, 0) : max(end - start, 0)]}


def join_window(doc: Mapping[str, Any]) -> list[Any]:
    """The window's messages in order: the archived part (buckets by position), then the document's."""
    return restore_window_messages(doc.get("buckets") or [], 0, doc.get("messages") or [], by_position=False)[0]


def slice_whole_buckets(buckets: Sequence[Mapping[str, Any]], agent_id: str, offset: int) -> list[Any]:
    """An agent's archived messages from position ``offset`` on, out of whole buckets."""
    mine = [b for b in buckets if b.get("agent_id") == agent_id]
    return restore_window_messages(mine, offset, [], by_position=False)[0]


def containing_bucket_ids(agent_expr: str, message_id: int) -> dict[str, Any]:
    """Ids of the listed buckets whose id range holds ``message_id`` (at most one in practice)."""
    return {
        "$map": {
            "input": {
                "$filter": {
                    "input": buckets_expr(agent_expr),
                    "cond": {
                        "$and": [
                            {"$lte": [f"$$this.{FIRST_MESSAGE_ID}", message_id]},
                            {"$gte": [f"$$this.{LAST_MESSAGE_ID}", message_id]},
                        ]
                    },
                }
            },
            "in": f"$$this.{BUCKET_ID}",
        }
    }


def message_in_bucket_lookup_stage(buckets_collection: str, message_id: int, strip: dict[str, Any]) -> dict[str, Any]:
    """``$lookup`` of one message by id out of the bucket that holds it."""
    found = {"$filter": {"input": f"${d.MESSAGES}", "cond": {"$eq": [f"$$this.{d.MESSAGE_ID}", message_id]}}}
    return {
        "$lookup": {
            "from": buckets_collection,
            "localField": "bucket_ids",
            "foreignField": d.ID,
            "pipeline": [{"$project": {d.ID: 1, d.MESSAGES: {"$map": {"input": found, "in": strip}}}}],
            "as": "buckets",
        }
    }


def last_bucket_id(agent_expr: str) -> dict[str, Any]:
    """The newest bucket, as a one-element list (for a document whose in-document array is empty)."""
    messages = f"{agent_expr}.{d.MESSAGES}"
    empty = {"$eq": [{"$size": {"$cond": [{"$isArray": messages}, messages, []]}}, 0]}
    last = {"$slice": [{"$map": {"input": buckets_expr(agent_expr), "in": f"$$this.{BUCKET_ID}"}}, -1]}
    return {"$cond": [empty, last, []]}


# ---- the policy (the split itself: documents_split) -----------------------------------------------------


@dataclass(frozen=True)
class ArchivePolicy:
    """When an agent's oldest messages move out of the session document, and how they are grouped.

    Defaults come from ``benchmarks/bench_growth.py``: an append costs 2x at 640 KiB of document and
    3x at 1.3 MiB against 7 KiB, so an agent is split once it holds ``max_messages`` messages in the
    document or the document passes ``max_bytes``; the split keeps the newest ``keep_messages``
    (and at most ``keep_bytes`` of document), which is more than Strands' default window of 40, so a
    sliding-window agent restores from the document alone. ``bucket_messages``/``bucket_bytes`` bound
    one bucket (a single larger message gets a bucket of its own). A content block larger than
    ``blob_bytes`` (encoded) is stored out of line, in GridFS (see :mod:`.blobs`): a 1 MB tool
    result then costs the document a marker of about 60 bytes.
    """

    max_messages: int = 200
    keep_messages: int = 100
    max_bytes: int = 1024 * 1024
    keep_bytes: int = 512 * 1024
    bucket_messages: int = 100
    bucket_bytes: int = 2 * 1024 * 1024
    blob_bytes: int = 256 * 1024

    def __post_init__(self) -> None:
        names = (
            "max_messages",
            "keep_messages",
            "max_bytes",
            "keep_bytes",
            "bucket_messages",
            "bucket_bytes",
            "blob_bytes",
        )
        for name in names:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ArchivePolicy.{name} must be a positive integer, got {value!r}")
        if self.keep_messages > self.max_messages:
            raise ValueError("ArchivePolicy.keep_messages must not exceed max_messages")
        if self.keep_bytes > self.max_bytes:
            raise ValueError("ArchivePolicy.keep_bytes must not exceed max_bytes")

    def due(self, stored_messages: int, document_bytes: int) -> bool:
        return stored_messages > self.max_messages or document_bytes > self.max_bytes


#: The policy every repository uses unless told otherwise.
DEFAULT_ARCHIVE_POLICY = ArchivePolicy()


def bucket_of_message_filter(bucket_id: Any, message_id: int) -> dict[str, Any]:
    return {d.ID: bucket_id, f"{d.MESSAGES}.{d.MESSAGE_ID}": message_id}


def split_message_update(agent_id: str, update: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a message update built for the session document into its bucket part and the rest.

    Fields of the message element (``agents.<id>.messages.$[m].<field>``) go to the bucket
    (``messages.$[m].<field>``); everything else (the session's ``updated_at``, totals, guardrail
    events) stays on the session document.
    """
    prefix = f"{d.messages_path(agent_id)}.$[m]."
    bucket: dict[str, Any] = {}
    session: dict[str, Any] = {}
    for operator, fields in update.items():
        for path, value in fields.items():
            if path.startswith(prefix):
                bucket.setdefault(operator, {})[f"{d.MESSAGES}.$[m].{path[len(prefix) :]}"] = value
            else:
                session.setdefault(operator, {})[path] = value
    if bucket:  # the rewritten message may now hold anything: the bucket's records of it go
        bucket.setdefault("$unset", {}).update({HOLDS: "", REDACTED: ""})
    return bucket, session


# ---- the restore's reads: the document as stored, or exactly the window computed by the server ----------

#: The newest bucket entries (about 100 bytes each) the restore reads with the document; a window
#: reaching further back into the archive is answered by :func:`restore_window_projection`.
RESTORE_BUCKET_ENTRIES = 32


def restore_document_limit(policy: ArchivePolicy) -> int:
    """At most this many in-document messages are read as stored; a longer array is not placed.

    Twice what the policy lets the document hold before a split moves the excess (its
    ``max_messages`` plus a bucket): only a session not yet split reaches it.
    """
    return max(64, 2 * (policy.max_messages + policy.bucket_messages))


def restore_document_projection(agent_id: str, limit: int) -> dict[str, Any]:
    """What a restore under a policy reads first: the agent as stored, no computed field.

    A policy keeps a few hundred messages in the document, so reading them all costs less than a
    computed projection (which makes the server build the document as values: about 1 ms more on
    a 130 KiB document); the window is cut in Python (:func:`document_window`). At most ``limit``
    of the newest messages: a session not yet split (from the original library) is not read whole
    just to find its array too long.
    """
    return {
        d.ID: 0,
        d.agent_data_path(agent_id): 1,
        d.next_message_id_path(agent_id): 1,
        archive_path(agent_id, ARCHIVE_COUNT): 1,
        archive_path(agent_id, ARCHIVE_BUCKETS): {"$slice": -RESTORE_BUCKET_ENTRIES},
        d.messages_path(agent_id): {"$slice": -limit},
    }


def removed_offset(agent_data: Mapping[str, Any]) -> int:
    """Strands' restore offset, read as the server's window expression reads it (a number, else 0)."""
    state = agent_data.get("conversation_manager_state")
    removed = state.get("removed_message_count") if isinstance(state, Mapping) else None
    if isinstance(removed, bool) or not isinstance(removed, int | float):
        return 0
    return max(int(removed), 0)


def document_window(doc: Mapping[str, Any], agent_id: str, limit: int | None) -> dict[str, Any] | None:
    """The restore's window out of a read by :func:`restore_document_projection` (or of the whole
    document: ``limit=None``, nothing was sliced).

    Fewer than ``limit`` messages mean the whole in-document array was read, so positions are
    known. None when they are not, or when the window reaches further into the archive than the
    bucket entries read (the caller then reads it with :func:`restore_window_projection`); ``{}``
    when there is no such agent. A window that reaches into the archive lists its buckets' ids in
    ``bucket_ids`` (read by ``_id``, then cut by :func:`slice_bucket`), whether all of them are
    :data:`SEQUENTIAL_IDS`, and whether any entry says it held a redaction (:data:`REDACTED`).
    """
    agent = (doc.get(d.AGENTS) or {}).get(agent_id)
    if not isinstance(agent, Mapping) or agent.get(d.AGENT_DATA) is None:
        return {}
    messages = agent.get(d.MESSAGES)
    messages = list(messages) if isinstance(messages, list) else []
    if limit is not None and len(messages) >= limit:
        return None
    archive = agent.get(ARCHIVE)
    archived = int(archive.get(ARCHIVE_COUNT) or 0) if isinstance(archive, Mapping) else 0
    offset = removed_offset(agent[d.AGENT_DATA])
    bucket_ids: list[Any] = []
    sequential = redacted = False
    if offset < archived:
        entries = list(archive.get(ARCHIVE_BUCKETS) or []) if isinstance(archive, Mapping) else []
        if not entries or int(entries[0][START]) > offset:
            return None
        windowed = [e for e in entries if int(e[START]) + int(e[COUNT]) > offset]
        bucket_ids = [e[BUCKET_ID] for e in windowed]
        sequential = all(e.get(SEQUENTIAL_IDS) is True for e in windowed)
        redacted = any(e.get(REDACTED) is True for e in windowed)
    counter = agent.get(d.NEXT_MESSAGE_ID)
    if counter is None:  # written before the counter existed: the newest id + 1
        counter = max((int(m.get(d.MESSAGE_ID) or 0) for m in messages), default=-1) + 1
    return {
        "agent_data": agent[d.AGENT_DATA],
        "next_message_id": int(counter),
        "offset": offset,
        "stored": len(messages),
        "messages": messages[max(offset - archived, 0) :],
        "bucket_ids": bucket_ids,
        SEQUENTIAL_IDS: sequential,
        REDACTED: redacted,
    }


def restore_window_projection(agent_id: str, *, size: bool = False) -> dict[str, Any]:
    """A ``find`` projection returning the agent and exactly the messages Strands restores.

    The same window expressions as the restore aggregation (:func:`window_fields`): the server
    reads the offset from the agent's conversation manager state, slices the in-document part of
    the window, and lists the ids of the buckets it reaches into (read by ``_id`` afterwards, in
    batches, so no reply size limit applies). A find evaluates them without the aggregation's
    pipeline stages: a sliding-window agent of a 2,000-message document transfers its 40
    messages, not its array. ``size`` adds the document's BSON size (for the size check).
    """
    agent = f"${d.agent_path(agent_id)}"
    fields = window_fields(agent, dt.removed_offset_expr(agent), None)
    fields.pop("lookup_ids")  # buckets come by a find, not a $lookup
    projection = {
        d.ID: 0,
        "agent_data": f"{agent}.{d.AGENT_DATA}",
        "next_message_id": dt.next_message_id_expr(agent_id),
        **fields,
    }
    if size:
        projection["size"] = {"$bsonSize": "$$ROOT"}
    return projection
