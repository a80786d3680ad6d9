"""Document shapes of the data lifecycle: retention, legal hold, purge, redaction counts, import.

:mod:`.documents` is the one module that knows the session document; it is large, so the filters,
updates and pipelines of the lifecycle features live here instead, built only from the field names
:mod:`.documents` defines (plus the few lifecycle fields below, declared once here). Pure functions,
unit-tested without a database; the repository (``repository_lifecycle``) sends them. What is done
to a whole collection rather than to one session (buckets no session lists, schema migration) is
shaped in :mod:`.documents_maintenance`.

Fields this module adds to a session document::

    retention_days: <number | null>   # effective retention; null = kept until deleted
    retention_explicit: <bool>        # set by set_retention(): a manager's default never overrides it
    expires_at: <date>                # the TTL index deletes the document at this time; absent = never
    legal_hold: <bool>                # true: no expires_at, whatever the retention says
    legal_hold_changed_at: <date>
    messages_purged_at: <date>        # purge_messages() ran
    redactions: {<rule>: <count>}     # what the redactor replaced (never the original text)

Archived messages (``agents.<id>.archive`` and the bucket documents of ``<collection>_messages``,
see :mod:`.documents_archive`) follow the session: a purge unlists and removes them, an import
writes the oldest messages of a long history as buckets, and buckets no session lists (the TTL
index deleted their session, a split or an import crashed) are removed by
:func:`.documents_maintenance.orphan_buckets_pipeline` (``mongodb-session-manager purge-orphans``).
Buckets carry no ``expires_at`` of their own: a retention change or a legal hold would then have to
reach every bucket in step with the session, and a missed one would delete messages of a session
that is kept.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

import bson
from bson.raw_bson import RawBSONDocument

from . import documents as d
from . import documents_archive as da
from . import documents_indexes as dx
from . import documents_split as dsp
from . import documents_turns as dt
from . import documents_values as dv
from .errors import InvalidInputError

EXPIRES_AT = "expires_at"
RETENTION_DAYS = "retention_days"
RETENTION_EXPLICIT = "retention_explicit"
LEGAL_HOLD = "legal_hold"
LEGAL_HOLD_CHANGED_AT = "legal_hold_changed_at"
PURGED_AT = "messages_purged_at"
REDACTIONS = "redactions"

#: The TTL index: MongoDB's TTL monitor deletes a session once ``expires_at`` is in the past.
TTL_INDEX_KEY: dx.IndexKey = ((EXPIRES_AT, 1),)
TTL_INDEX_OPTIONS: dict[str, Any] = {"expireAfterSeconds": 0}

DAY_MS = 86_400_000
#: A hundred years: anything longer is a typo, not a retention policy.
MAX_RETENTION_DAYS = 36_500

RETENTION_PROJECTION = {d.ID: 0, RETENTION_DAYS: 1, RETENTION_EXPLICIT: 1, EXPIRES_AT: 1, LEGAL_HOLD: 1}
REDACTIONS_PROJECTION = {d.ID: 0, REDACTIONS: 1}
#: The whole document for an export: everything but the viewer password (a secret, not the conversation).
EXPORT_PROJECTION = {d.VIEWER_PASSWORD: 0}
#: What an export (or a snapshot migration) needs of each listed bucket: its messages.
BUCKET_MESSAGES_PROJECTION = {d.ID: 1, "agent_id": 1, da.START: 1, d.MESSAGES: 1}


# ---- retention and legal hold ----------------------------------------------------------------------------


def validate_retention_days(days: object, *, session_id: str | None = None) -> float | int | None:
    """``None`` (keep until deleted) or a number of days from 0 to :data:`MAX_RETENTION_DAYS`.

    Fractions are allowed (``1 / 24`` is an hour); 0 expires the session at the TTL monitor's next pass.
    """
    if days is None:
        return None
    if isinstance(days, bool) or not isinstance(days, int | float) or not math.isfinite(days):
        raise InvalidInputError(f"retention days must be a number or None, got {days!r:.40}", session_id=session_id)
    if not 0 <= days <= MAX_RETENTION_DAYS:
        raise InvalidInputError(
            f"retention days must be between 0 and {MAX_RETENTION_DAYS}, got {days!r}", session_id=session_id
        )
    return days


def _expiry(days_expr: Any, held_expr: Any) -> dict[str, Any]:
    """``$$NOW + days``, or ``$$REMOVE`` (no expiry) when held or when days is not a number."""
    return {
        "$cond": [
            {"$or": [{"$eq": [held_expr, True]}, {"$not": [{"$isNumber": days_expr}]}]},
            "$$REMOVE",
            {"$add": ["$$NOW", {"$multiply": [days_expr, DAY_MS]}]},
        ]
    }


def _expiry_stage() -> dict[str, Any]:
    return {"$set": {EXPIRES_AT: _expiry(f"${RETENTION_DAYS}", f"${LEGAL_HOLD}")}}


def default_retention_update(days: float | int | None) -> list[dict[str, Any]]:
    """Pipeline update: a manager's ``retention_days`` applied, counted from now (the session was opened).

    A retention set on the session itself (``retention_explicit``) wins over the manager's default;
    a legal hold keeps the document without ``expires_at``. Not activity: ``updated_at`` is left alone.
    """
    return [
        {
            "$set": {
                RETENTION_DAYS: {
                    "$cond": [{"$eq": [f"${RETENTION_EXPLICIT}", True]}, f"${RETENTION_DAYS}", {"$literal": days}]
                }
            }
        },
        _expiry_stage(),
    ]


def set_retention_update(days: float | int | None) -> list[dict[str, Any]]:
    """Pipeline update: this session's own retention (``None``: kept until deleted), counted from now."""
    return [{"$set": {RETENTION_DAYS: {"$literal": days}, RETENTION_EXPLICIT: True}}, _expiry_stage()]


def legal_hold_update(held: bool) -> list[dict[str, Any]]:
    """Pipeline update: hold (``expires_at`` removed) or release (expiry restored: now + retention days)."""
    return [{"$set": {LEGAL_HOLD: bool(held), LEGAL_HOLD_CHANGED_AT: "$$NOW"}}, _expiry_stage()]


# ---- purge -----------------------------------------------------------------------------------------------


def _object_or_empty(expr: str) -> dict[str, Any]:
    return {"$cond": [{"$eq": [{"$type": expr}, "object"]}, expr, {}]}


def next_id_from_history(agent: str) -> dict[str, Any]:
    """One past the highest stored id, archived messages included (for agents without the counter).

    Public because the schema migration (:mod:`.documents_maintenance`) gives old agents their
    counter with it: a purge and a migration must agree on the next id, or ids would be reused.
    """
    newest = {
        "$max": [
            {"$max": f"{agent}.{d.MESSAGES}.{d.MESSAGE_ID}"},
            {"$max": f"{agent}.{da.ARCHIVE}.{da.ARCHIVE_BUCKETS}.{da.LAST_MESSAGE_ID}"},
        ]
    }
    return {"$add": [{"$ifNull": [newest, -1]}, 1]}


def _purged_conversation_state(state: str) -> dict[str, Any]:
    """The conversation manager's state with its offset reset and any summary (transcript text) cleared.

    Strands restores messages from ``removed_message_count`` on: left as it was, the first
    messages written after a purge would be skipped on the next restore.
    """
    reset = {
        "removed_message_count": 0,
        "summary_message": {"$cond": [{"$eq": [{"$type": f"{state}.summary_message"}, "missing"]}, "$$REMOVE", None]},
    }
    return {"$cond": [{"$eq": [{"$type": state}, "object"]}, {"$mergeObjects": [state, reset]}, state]}


def purge_messages_update(*, keep_feedback: bool = True) -> list[dict[str, Any]]:
    """Pipeline update: every agent's messages (and abandoned turns) emptied, everything else kept.

    Archived messages go too: ``archive`` is removed, so the session's buckets are no longer read
    (:func:`session_buckets_filter` deletes them after this update). Metadata, totals, agent
    configuration and state, guardrail summaries stay; the id counter is pinned (``next_message_id``)
    so purged ids are never given to new messages. ``keep_feedback=False`` also empties the feedback
    list (its comments are user text).
    """
    agent = "$$this.v"
    data = f"{agent}.{d.AGENT_DATA}"
    counter = {"$ifNull": [f"{agent}.{d.NEXT_MESSAGE_ID}", next_id_from_history(agent)]}
    # The archive is unlisted with the messages (its buckets are then orphans, removed right after).
    without_archive = {
        "$arrayToObject": {
            "$filter": {"input": {"$objectToArray": agent}, "as": "field", "cond": {"$ne": ["$$field.k", da.ARCHIVE]}}
        }
    }
    purged_agent = {
        "$cond": [
            {"$eq": [{"$type": agent}, "object"]},
            {
                "$mergeObjects": [
                    without_archive,
                    {
                        d.MESSAGES: [],
                        dt.ABANDONED_MESSAGES: [],
                        d.NEXT_MESSAGE_ID: counter,
                        d.AGENT_DATA: {
                            "$cond": [
                                {"$eq": [{"$type": data}, "object"]},
                                {
                                    "$mergeObjects": [
                                        data,
                                        {
                                            "conversation_manager_state": _purged_conversation_state(
                                                f"{data}.conversation_manager_state"
                                            )
                                        },
                                    ]
                                },
                                data,
                            ]
                        },
                    },
                ]
            },
            agent,
        ]
    }
    fields: dict[str, Any] = {
        d.AGENTS: {
            "$arrayToObject": {
                "$map": {
                    "input": {"$objectToArray": _object_or_empty(f"${d.AGENTS}")},
                    "in": {"k": "$$this.k", "v": purged_agent},
                }
            }
        },
        PURGED_AT: "$$NOW",
    }
    if not keep_feedback:
        fields[d.FEEDBACKS] = []
    return [{"$set": fields}]


# ---- redaction counts ------------------------------------------------------------------------------------


def redactions_update(counts: Mapping[str, int]) -> dict[str, Any]:
    """``$inc`` of ``redactions.<rule>``: what fired and how often, never the text it replaced."""
    inc: dict[str, int] = {}
    for rule, count in counts.items():
        d.validate_metadata_key(rule)
        inc[f"{REDACTIONS}.{rule}"] = int(count)
    return {"$inc": inc}


# ---- import ----------------------------------------------------------------------------------------------


def import_document(
    session: Mapping[str, Any], *, session_id: str | None = None, viewer_password: str | None = None
) -> dict[str, Any]:
    """The document to insert for an exported ``session`` (dates already revived by ``portable``).

    Everything exported is kept; what belongs to the source system is not: a live turn lease
    (it would block the agent), an ``archive`` list (it names the source's bucket documents; an
    export carries the whole history in ``messages``), the old ``expires_at`` (the expiry is counted again from the
    import, from ``retention_days``) and the viewer password (a new one is generated). Values BSON
    cannot hold go through :func:`.documents_values.storable`, as every other write does.
    """
    sid = d.validate_id(session_id if session_id is not None else session.get(d.SESSION_ID), "session")
    doc = {k: v for k, v in session.items() if k not in (d.ID, d.VIEWER_PASSWORD, EXPIRES_AT)}
    for key in doc:
        d.validate_metadata_key(key, session_id=sid)
    agents = doc.get(d.AGENTS)
    if isinstance(agents, Mapping):
        clean: dict[str, Any] = {}
        for aid, entry in agents.items():
            d.validate_id(aid, "agent", session_id=sid)
            # The lease belongs to a running turn of the source system, the archive to its buckets.
            dropped = (dt.LEASE, da.ARCHIVE)
            clean[aid] = {k: v for k, v in entry.items() if k not in dropped} if isinstance(entry, Mapping) else entry
        doc[d.AGENTS] = clean
    metadata = doc.get(d.METADATA)
    if isinstance(metadata, Mapping):
        for key in metadata:
            d.validate_metadata_key(key, session_id=sid)
    stored: dict[str, Any] = {k: dv.storable(v, 1) for k, v in doc.items()}
    stored[d.ID] = sid
    stored[d.SESSION_ID] = sid
    stored[d.VIEWER_PASSWORD] = viewer_password or d.new_viewer_password()
    days = stored.get(RETENTION_DAYS)
    if isinstance(days, int | float) and not isinstance(days, bool) and stored.get(LEGAL_HOLD) is not True:
        stored[EXPIRES_AT] = d.now() + timedelta(days=float(days))
    return stored


def replace_filter(session_id: str) -> dict[str, Any]:
    return {d.ID: session_id}


def _history_is_splittable(messages: Any) -> bool:
    """Stored message documents with increasing integer ids: what a bucket's id range relies on."""
    if not isinstance(messages, list) or len(messages) < 2:
        return False
    ids = [m.get(d.MESSAGE_ID) if isinstance(m, Mapping) else None for m in messages]
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        return False
    return all(a < b for a, b in itertools.pairwise(ids))


_RAW = d.CODEC_OPTIONS.with_options(document_class=RawBSONDocument)


def archive_imported_document(
    doc: dict[str, Any], policy: da.ArchivePolicy | None, new_id: Callable[[], Any]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """An import document past ``policy``: its agents' oldest messages as bucket documents.

    Returns the session document to write (each split agent keeps its newest messages and lists
    its buckets, exactly as a split in place would leave it) and the buckets to insert first. The
    plan is the live split's (:func:`.documents_split.plan_split`), so an export of 20 MB is
    written as a document within the policy plus buckets, never one document past 16 MB. Agents
    are split largest first; ``policy=None`` (the repository never splits) returns ``doc`` as it is.
    """
    agents = doc.get(d.AGENTS)
    if policy is None or not isinstance(agents, Mapping):
        return doc, []
    size = len(bson.encode(doc, codec_options=d.CODEC_OPTIONS))
    sid = doc[d.ID]
    split_agents = dict(agents)
    buckets: list[dict[str, Any]] = []
    raws: dict[str, list[RawBSONDocument]] = {
        aid: [RawBSONDocument(bson.encode(m, codec_options=d.CODEC_OPTIONS), _RAW) for m in entry[d.MESSAGES]]
        for aid, entry in agents.items()
        if isinstance(entry, Mapping) and _history_is_splittable(entry.get(d.MESSAGES))
    }
    for aid in sorted(raws, key=lambda a: -sum(len(r.raw) for r in raws[a])):
        messages, entry = raws[aid], split_agents[aid]
        stored = [dsp.StoredMessage(int(r[d.MESSAGE_ID]), len(r.raw), None) for r in messages]
        plan = dsp.plan_split(stored, size, policy)
        if plan is None:
            continue
        ids = [new_id() for _ in plan.groups]
        docs, entries = dsp.bucket_documents(sid, aid, messages[: plan.count], plan, archived=0, ids=ids)
        buckets.extend(docs)
        kept = list(entry[d.MESSAGES])[plan.count :]
        next_id = entry.get(d.NEXT_MESSAGE_ID)
        if not isinstance(next_id, int) or isinstance(next_id, bool):
            next_id = int(stored[-1].message_id) + 1
        split_agents[aid] = {
            **entry,
            d.MESSAGES: kept,
            d.NEXT_MESSAGE_ID: next_id,
            da.ARCHIVE: {da.ARCHIVE_COUNT: plan.count, da.ARCHIVE_BYTES: plan.moved_bytes, da.ARCHIVE_BUCKETS: entries},
        }
        size -= plan.moved_bytes
    if not buckets:
        return doc, []
    return {**doc, d.AGENTS: split_agents}, buckets


def stale_buckets_filter(session_id: str, keep: list[Any]) -> dict[str, Any]:
    """The session's buckets other than ``keep``: what a replaced (overwritten) session left behind."""
    return {d.SESSION_ID: session_id, d.ID: {"$nin": list(keep)}}


def bucket_ids_filter(session_id: str, ids: list[Any]) -> dict[str, Any]:
    """These buckets of the session (an export's listed ones, or an import's own on failure)."""
    return {d.SESSION_ID: session_id, d.ID: {"$in": list(ids)}}


def session_buckets_filter(session_id: str) -> dict[str, Any]:
    """Every bucket of the session (after a purge unlisted them all)."""
    return {d.SESSION_ID: session_id}
