"""The messages of an agent in a session document: appends, rewrites, metrics and projected reads.

Split from :mod:`documents` so that module stays the short owner of field names, paths and
sessions. This one knows ``agents.<agent_id>.messages`` and its counter ``next_message_id``: the
stored form of a ``SessionMessage`` and back, the guarded append (ids new and in order, so the
array stays sorted and a page is a plain ``$slice``), rewrites in place by array filter, a turn's
metrics with the ``$inc`` of the totals, and the pipelines that read a page, the last message, one
message, a count or the document's size on the server. Reads that reach archived messages take
their window and ``$lookup`` stages from :mod:`documents_archive`, imported where used (it imports
:mod:`documents`). Every field name and path comes from :mod:`documents`, read as ``d.`` at call
time, so the demo's virtual clock (it replaces ``documents.now``) dates these writes too.

:mod:`documents` re-exports every public name here (callers keep ``d.<name>``) and imports this
module at its very end; the package's ``__init__`` loads :mod:`documents` first, which is what
lets this module import it back. Pure and unit-tested.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strands.types.session import SessionMessage

from . import documents as d
from . import documents_agents as dag
from . import documents_values as dv
from .errors import InvalidInputError

# ---- writes ----------------------------------------------------------------------------------------------


def message_document(message: SessionMessage) -> dict[str, Any]:
    """Stored form: bytes stay bytes (BSON binary); timestamps become BSON dates."""
    return {
        d.MESSAGE_ID: message.message_id,
        d.MESSAGE: dv.storable(message.message),
        d.REDACT_MESSAGE: dv.storable(message.redact_message) if message.redact_message else None,
        d.CREATED_AT: d.to_datetime(message.created_at),
        d.UPDATED_AT: d.to_datetime(message.updated_at),
    }


def append_message_filter(session_id: str, agent_id: str, message_id: int) -> dict[str, Any]:
    """Match only if the agent exists and ``message_id`` is new and in order.

    ``next_message_id`` makes the check O(1) and keeps the array sorted by id (so pagination is a
    plain ``$slice``); documents written by older versions without the counter fall back to an
    explicit "no message with this id" check.
    """
    counter = d.next_message_id_path(agent_id)
    return {
        d.ID: session_id,
        d.agent_data_path(agent_id): {"$exists": True},
        "$or": [
            {counter: {"$lte": message_id}},
            {counter: {"$exists": False}, f"{d.messages_path(agent_id)}.{d.MESSAGE_ID}": {"$ne": message_id}},
        ],
    }


def append_message_update(agent_id: str, message: SessionMessage) -> dict[str, Any]:
    return {
        "$push": {d.messages_path(agent_id): message_document(message)},
        "$max": {d.next_message_id_path(agent_id): message.message_id + 1},
        "$set": d.touch(),
    }


def message_exists_filter(session_id: str, agent_id: str, message_id: int) -> dict[str, Any]:
    return {d.ID: session_id, f"{d.messages_path(agent_id)}.{d.MESSAGE_ID}": message_id}


def update_message_update(agent_id: str, message: SessionMessage) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Rewrite content in place by array filter; ``created_at`` and stored metrics survive."""
    at = d.now()
    element = f"{d.messages_path(agent_id)}.$[m]"
    update = {
        "$set": {
            f"{element}.{d.MESSAGE}": dv.storable(message.message),
            f"{element}.{d.REDACT_MESSAGE}": dv.storable(message.redact_message) if message.redact_message else None,
            f"{element}.{d.UPDATED_AT}": at,
            **d.touch(at),
        }
    }
    return update, [{f"m.{d.MESSAGE_ID}": message.message_id}]


def message_metrics_update(
    agent_id: str, message_id: int, metrics: Mapping[str, Any], totals: Mapping[str, int] | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Metrics onto one message and, in the same write, ``$inc`` of the agent's and the session's totals.

    The session-level copy (``totals`` at the top) is what the viewer sorts by tokens on: per-agent
    totals live under map keys that no index can reach.
    """
    at = d.now()
    element = f"{d.messages_path(agent_id)}.$[m]"
    update: dict[str, Any] = {"$set": {f"{element}.{d.METRICS}": {**metrics, "recorded_at": at}, **d.touch(at)}}
    if totals:
        update["$inc"] = totals_inc(agent_id, totals)
    return update, [{f"m.{d.MESSAGE_ID}": message_id}]


def totals_inc(agent_id: str, totals: Mapping[str, int]) -> dict[str, int]:
    """The ``$inc`` of one turn's totals: on the agent and on the session-level copy.

    Every write that adds to ``agents.<id>.agent_data.totals`` must use this, so the session-level
    ``totals`` (what the viewer sorts by tokens on) never drifts from the sum over agents.
    """
    for key, value in totals.items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInputError(f"totals[{key!r:.60}] must be an integer count, got {type(value).__name__}")
    base = d.agent_data_path(agent_id, d.TOTALS)
    inc = {f"{base}.{_safe_segment(k)}": int(v) for k, v in totals.items()}
    inc.update({f"{d.TOTALS}.{_safe_segment(k)}": int(v) for k, v in totals.items()})
    return inc


def _safe_segment(path: str) -> str:
    """Keep the dotted sub-paths of ``totals_increment`` but neutralise ``$`` and empty segments."""
    return ".".join(part.replace("$", "_").replace("\x00", "_") or "_" for part in path.split("."))


# ---- reads -----------------------------------------------------------------------------------------------


_MESSAGE_FIELDS = (d.MESSAGE_ID, d.MESSAGE, d.REDACT_MESSAGE, d.CREATED_AT, d.UPDATED_AT)
#: The fields of a stored message that a listing returns.
MESSAGE_FIELDS = _MESSAGE_FIELDS


def _strip_message(expr: str, *, with_metrics: bool = False) -> dict[str, Any]:
    fields = {f: f"{expr}.{f}" for f in _MESSAGE_FIELDS}
    if with_metrics:
        fields[d.METRICS] = f"{expr}.{d.METRICS}"
    return fields


def _narrow(agent_id: str, *extra: str) -> dict[str, Any]:
    """A plain inclusion of one agent, first: the expression stage after it then works on that agent
    alone (on a 10,000-message session a page costs 1.7 ms instead of 3.6 ms)."""
    return {"$project": {d.agent_path(agent_id): 1, **{field: 1 for field in extra}}}


def list_messages_pipeline(
    session_id: str,
    agent_id: str,
    limit: int | None,
    offset: int,
    *,
    with_metrics: bool = False,
    buckets: str | None = None,
) -> list[dict[str, Any]]:
    """One projected page of an agent's messages (and whether the agent exists).

    The server slices the array, so listing 20 messages of a 10,000-message session transfers 20.
    Positions are over the whole history: the part of the page that was archived comes from the
    companion collection ``buckets`` (sliced there too) in the same round trip.
    """
    from .documents_archive import bucket_lookup_stage, window_fields

    window = window_fields(f"${d.agent_path(agent_id)}", offset, limit)
    strip = _strip_message("$$this", with_metrics=with_metrics)
    window["messages"] = {"$map": {"input": window["messages"], "in": strip}}
    stages: list[dict[str, Any]] = [
        {"$match": {d.ID: session_id}},
        _narrow(agent_id),
        {
            "$project": {
                d.ID: 0,
                "agent_exists": {"$ne": [{"$type": f"${d.agent_data_path(agent_id)}"}, "missing"]},
                **window,
            }
        },
    ]
    if buckets is not None:
        stages.append(bucket_lookup_stage(buckets, strip=strip))
    return stages


def last_message_pipeline(session_id: str, agent_id: str, *, buckets: str | None = None) -> list[dict[str, Any]]:
    from .documents_archive import last_bucket_id, whole_bucket_lookup_stage

    array = {"$ifNull": [f"${d.messages_path(agent_id)}", []]}
    stages: list[dict[str, Any]] = [
        {"$match": {d.ID: session_id}},
        _narrow(agent_id),
        {
            "$project": {
                d.ID: 0,
                "messages": {"$map": {"input": {"$slice": [array, -1]}, "in": _strip_message("$$this")}},
                "bucket_ids": last_bucket_id(f"${d.agent_path(agent_id)}"),
            }
        },
    ]
    if buckets is not None:
        stages.append(whole_bucket_lookup_stage(buckets, "bucket_ids"))
    return stages


def read_message_pipeline(
    session_id: str, agent_id: str, message_id: int, *, buckets: str | None = None
) -> list[dict[str, Any]]:
    from .documents_archive import containing_bucket_ids, message_in_bucket_lookup_stage

    stages: list[dict[str, Any]] = [
        {"$match": {d.ID: session_id}},
        _narrow(agent_id),
        {
            "$project": {
                d.ID: 0,
                "messages": {
                    "$map": {
                        "input": {
                            "$filter": {
                                "input": {"$ifNull": [f"${d.messages_path(agent_id)}", []]},
                                "cond": {"$eq": [f"$$this.{d.MESSAGE_ID}", message_id]},
                                "limit": 1,
                            }
                        },
                        "in": _strip_message("$$this"),
                    }
                },
                "bucket_ids": containing_bucket_ids(f"${d.agent_path(agent_id)}", message_id),
            }
        },
    ]
    if buckets is not None:
        stages.append(message_in_bucket_lookup_stage(buckets, message_id, _strip_message("$$this")))
    return stages


def message_count_pipeline(session_id: str, agent_id: str | None) -> list[dict[str, Any]]:
    """Count on the server: one agent's history (archived and in the document), or the sum over all agents."""
    from .documents_archive import message_count_expr

    if agent_id is not None:
        total: Any = message_count_expr(f"${d.agent_path(agent_id)}")
    else:
        total = dag.all_agents_message_count()
    return [{"$match": {d.ID: session_id}}, {"$project": {d.ID: 0, "count": total}}]


def message_from_document(doc: Mapping[str, Any], *, repair: bool = True) -> SessionMessage:
    """Plain ``SessionMessage`` for Strands: metrics and unknown fields are dropped.

    ``repair=False`` skips the value-by-value walk of :func:`from_bson`, for documents known (by
    :func:`needs_repair` on their raw bytes) to hold no DBRef-shaped, base64 or JSON-text values.
    """
    message = dv.from_bson(doc.get(d.MESSAGE)) if repair else doc.get(d.MESSAGE)
    redact = doc.get(d.REDACT_MESSAGE)
    if redact and repair:
        redact = dv.from_bson(redact)
    return SessionMessage(
        message=message,  # type: ignore[arg-type]
        message_id=int(doc[d.MESSAGE_ID]),
        redact_message=redact or None,
        created_at=d.to_iso(doc.get(d.CREATED_AT)),
        updated_at=d.to_iso(doc.get(d.UPDATED_AT)),
    )


def _array_size(expr: str) -> dict[str, Any]:
    return {"$size": {"$cond": [{"$isArray": expr}, expr, []]}}


def document_size_pipeline(session_id: str, agent_id: str | None = None) -> list[dict[str, Any]]:
    """The session document's BSON size, measured by the server, and how many messages the agent
    keeps in the document (nothing else is sent back)."""
    fields: dict[str, Any] = {d.ID: 0, "size": {"$bsonSize": "$$ROOT"}}
    if agent_id is not None:
        fields["stored"] = _array_size(f"${d.messages_path(agent_id)}")
    return [{"$match": {d.ID: session_id}}, {"$project": fields}]
