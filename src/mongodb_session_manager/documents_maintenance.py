"""Document shapes of collection-wide maintenance: what no session lists, and schema migration.

:mod:`.documents_lifecycle` shapes what happens to *one* session (its retention, purge, import);
this module shapes the passes over a whole collection that the maintenance commands run, apart
from any manager: ``mongodb-session-manager purge-orphans`` (``repository_lifecycle``) and
``mongodb-session-manager migrate`` (``migrations``). Pure functions built only from the field
names :mod:`.documents` and :mod:`.documents_archive` define, unit-tested without a database.

- **What no session lists.** The TTL index deletes an expired session's document, never its
  bucket documents in ``<collection>_messages`` (see :mod:`.documents_archive`) or its blocks stored
  out of line in ``<collection>_blobs`` (see :mod:`.blobs`); a split or an import that crashed leaves
  buckets nothing lists either. :func:`orphan_buckets_pipeline` and :func:`orphan_blobs_pipeline`
  find them, leaving out the young ones (a write stores its buckets and blocks a moment before the
  document that lists them).
- **Schema migration.** Every session document carries ``schema_version``
  (``documents.SCHEMA_VERSION``); documents below :data:`.documents.CURRENT_SCHEMA_VERSION` are
  found, explained (:data:`MIGRATION_REASONS`) and brought to the current shape in place by one
  guarded pipeline update each (:func:`migration_guard`, :func:`migration_update`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from . import documents as d
from . import documents_archive as da
from . import documents_indexes as dx
from . import documents_lifecycle as dl

# ---- buckets and blobs no session lists ------------------------------------------------------------------


#: A bucket younger than this may belong to a split or an import that has not listed it yet.
ORPHAN_GRACE = timedelta(hours=1)


def _object_or_empty(expr: str) -> dict[str, Any]:
    return {"$cond": [{"$eq": [{"$type": expr}, "object"]}, expr, {}]}


def listed_bucket_ids_expr(session_expr: str = "$$ROOT") -> dict[str, Any]:
    """Every bucket id the session document lists, over all its agents."""
    agents = {"$objectToArray": _object_or_empty(f"{session_expr}.{d.AGENTS}")}
    listed = f"$$this.v.{da.ARCHIVE}.{da.ARCHIVE_BUCKETS}.{da.BUCKET_ID}"
    return {
        "$reduce": {
            "input": agents,
            "initialValue": [],
            "in": {"$concatArrays": ["$$value", {"$cond": [{"$isArray": listed}, listed, []]}]},
        }
    }


def orphan_buckets_pipeline(sessions_collection: str, created_before: datetime) -> list[dict[str, Any]]:
    """On ``<collection>_messages``: per session, the buckets its document does not list.

    That covers the buckets of a session the TTL index deleted (no document at all), of a
    snapshot-migrated session (no ``agents``) and of crashed splits or imports. Buckets created
    after ``created_before`` are left out (a split lists its buckets a moment after inserting
    them); buckets without ``created_at`` count as old.
    """
    return [
        {"$match": {d.CREATED_AT: {"$not": {"$gte": created_before}}}},
        {"$group": {d.ID: f"${d.SESSION_ID}", "ids": {"$push": f"${d.ID}"}}},
        {
            "$lookup": {
                "from": sessions_collection,
                "localField": d.ID,
                "foreignField": d.ID,
                "pipeline": [{"$project": {d.ID: 0, "listed": listed_bucket_ids_expr()}}],
                "as": "session",
            }
        },
        {"$project": {"orphans": {"$setDifference": ["$ids", {"$ifNull": [{"$first": "$session.listed"}, []]}]}}},
        {"$match": {"orphans.0": {"$exists": True}}},
    ]


def orphan_blobs_pipeline(sessions_collection: str, cutoff: Any) -> list[dict[str, Any]]:
    """On the blob files (GridFS ``<collection>_blobs.files``): the blocks stored before ``cutoff`` whose
    session document is gone (expired by the TTL index, or deleted by hand), grouped by session.

    Younger blocks are kept: a write stores its blocks a moment before the document that refers to them.
    """
    return [
        {"$match": {"uploadDate": {"$lt": cutoff}}},
        {"$group": {d.ID: f"$metadata.{d.SESSION_ID}", "ids": {"$push": f"${d.ID}"}}},
        {
            "$lookup": {
                "from": sessions_collection,
                "localField": d.ID,
                "foreignField": d.ID,
                "pipeline": [{"$project": {d.ID: 1}}],
                "as": "session",
            }
        },
        {"$match": {"session.0": {"$exists": False}}},
    ]


# ---- schema migration ------------------------------------------------------------------------------------


def needs_migration_filter() -> dict[str, Any]:
    """Documents below the current schema version, including those without one (the original library's)."""
    return {d.SCHEMA_VERSION: {"$not": {"$gte": d.CURRENT_SCHEMA_VERSION}}}


def newer_schema_filter() -> dict[str, Any]:
    return {d.SCHEMA_VERSION: {"$gt": d.CURRENT_SCHEMA_VERSION}}


def migration_guard(session_id: Any) -> dict[str, Any]:
    """The one document, only while it still needs migration: a second run (or process) changes nothing."""
    return {d.ID: session_id, **needs_migration_filter()}


def _missing(expr: str) -> dict[str, Any]:
    return {"$eq": [{"$type": expr}, "missing"]}


def _any_agent(condition: dict[str, Any]) -> dict[str, Any]:
    """True if ``condition`` (over ``$$this.v``, one agent entry) holds for any agent of the document."""
    return {
        "$anyElementTrue": [{"$map": {"input": {"$objectToArray": _object_or_empty(f"${d.AGENTS}")}, "in": condition}}]
    }


#: Why a document needs migration, as the dry run reports it (name -> aggregation condition).
MIGRATION_REASONS: dict[str, dict[str, Any]] = {
    "no schema_version": _missing(f"${d.SCHEMA_VERSION}"),
    "no viewer password": _missing(f"${d.VIEWER_PASSWORD}"),
    "no session-level agent_ids/models/totals": _missing(f"${d.AGENT_IDS}"),
    "base fields missing (metadata, feedbacks, guardrail_events, application_name)": {
        "$or": [
            _missing(f"${d.METADATA}"),
            _missing(f"${d.FEEDBACKS}"),
            _missing(f"${d.GUARDRAIL_EVENTS}"),
            _missing(f"${d.APPLICATION_NAME}"),
        ]
    },
    "dates stored as strings": {
        "$or": [{"$eq": [{"$type": f"${d.CREATED_AT}"}, "string"]}, {"$eq": [{"$type": f"${d.UPDATED_AT}"}, "string"]}]
    },
    "agents without a message id counter": _any_agent(_missing(f"$$this.v.{d.NEXT_MESSAGE_ID}")),
    "agent timestamps only inside agent_data": _any_agent(_missing(f"$$this.v.{d.CREATED_AT}")),
    "prompt_metadata inside agent_data": _any_agent(
        {
            "$and": [
                _missing(f"$$this.v.{d.PROMPT_METADATA}"),
                {"$not": [_missing(f"$$this.v.{d.AGENT_DATA}.{d.PROMPT_METADATA}")]},
            ]
        }
    ),
}


def migration_report_pipeline(limit: int | None = None) -> list[dict[str, Any]]:
    """Each document needing migration: its id, whether it is a snapshot session, and the reasons."""
    stages: list[dict[str, Any]] = [{"$match": needs_migration_filter()}, {"$sort": {d.ID: 1}}]
    if limit is not None:
        stages.append({"$limit": int(limit)})
    stages.append(
        {
            "$project": {
                d.ID: 1,
                "snapshot": {"$not": [_missing(f"${d.SNAPSHOT_FORMAT}")]},
                "reasons": {
                    "$filter": {
                        "input": [{"$cond": [cond, name, None]} for name, cond in MIGRATION_REASONS.items()],
                        "cond": {"$ne": ["$$this", None]},
                    }
                },
            }
        }
    )
    return stages


def _date(field: str) -> dict[str, Any]:
    """A stored date: kept; an ISO string (older writers) parsed; missing or unreadable: ``$$NOW``."""
    expr = f"${field}"
    return {
        "$switch": {
            "branches": [
                {"case": {"$eq": [{"$type": expr}, "date"]}, "then": expr},
                {
                    "case": {"$eq": [{"$type": expr}, "string"]},
                    "then": {"$dateFromString": {"dateString": expr, "onError": "$$NOW", "onNull": "$$NOW"}},
                },
            ],
            "default": "$$NOW",
        }
    }


def _if_missing(field: str, value: Any) -> dict[str, Any]:
    return {"$cond": [_missing(f"${field}"), {"$literal": value}, f"${field}"]}


def migration_update(*, viewer_password: str, snapshot: bool) -> list[dict[str, Any]]:
    """Pipeline update bringing one document to :data:`.documents.CURRENT_SCHEMA_VERSION`, in place.

    Only what is missing is added or moved: the session-level list fields derived from the agents
    (as :func:`.documents_indexes.backfill_list_fields_update`), the base fields, a viewer password, dates
    as BSON dates, and per agent the id counter, its own timestamps and ``prompt_metadata`` beside
    ``agent_data`` (where the original library kept them inside it). Values already in the current
    shape are left exactly as they are. Snapshot sessions (``MongoDBStorage``) have no ``agents``
    map: only their base fields are completed.
    """
    base: dict[str, Any] = {
        d.SCHEMA_VERSION: {"$literal": d.CURRENT_SCHEMA_VERSION},
        d.SESSION_ID: {"$ifNull": [f"${d.SESSION_ID}", f"${d.ID}"]},
        d.SESSION_TYPE: _if_missing(d.SESSION_TYPE, "AGENT"),
        d.VIEWER_PASSWORD: _if_missing(d.VIEWER_PASSWORD, viewer_password),
        d.APPLICATION_NAME: _if_missing(d.APPLICATION_NAME, None),
        d.CREATED_AT: _date(d.CREATED_AT),
        d.UPDATED_AT: _date(d.UPDATED_AT),
        d.METADATA: _if_missing(d.METADATA, {}),
        d.FEEDBACKS: _if_missing(d.FEEDBACKS, []),
        d.GUARDRAIL_EVENTS: _if_missing(d.GUARDRAIL_EVENTS, []),
    }
    if snapshot:
        return [{"$set": base}]
    backfill = dx.backfill_list_fields_update()[0]["$set"]
    derived = {field: {"$cond": [_missing(f"${d.AGENT_IDS}"), value, f"${field}"]} for field, value in backfill.items()}
    agent = "$$this.v"
    data = f"{agent}.{d.AGENT_DATA}"
    counter = dl.next_id_from_history(agent)
    migrated_agent = {
        "$cond": [
            {"$eq": [{"$type": agent}, "object"]},
            {
                "$mergeObjects": [
                    agent,
                    {
                        d.MESSAGES: {"$ifNull": [f"{agent}.{d.MESSAGES}", []]},
                        d.NEXT_MESSAGE_ID: {"$ifNull": [f"{agent}.{d.NEXT_MESSAGE_ID}", counter]},
                        d.CREATED_AT: {"$ifNull": [f"{agent}.{d.CREATED_AT}", f"{data}.{d.CREATED_AT}", "$$NOW"]},
                        d.UPDATED_AT: {"$ifNull": [f"{agent}.{d.UPDATED_AT}", f"{data}.{d.UPDATED_AT}", "$$NOW"]},
                        d.PROMPT_METADATA: {
                            "$ifNull": [f"{agent}.{d.PROMPT_METADATA}", f"{data}.{d.PROMPT_METADATA}", "$$REMOVE"]
                        },
                    },
                ]
            },
            agent,
        ]
    }
    agents = {
        "$arrayToObject": {
            "$map": {
                "input": {"$objectToArray": _object_or_empty(f"${d.AGENTS}")},
                "in": {"k": "$$this.k", "v": migrated_agent},
            }
        }
    }
    return [
        {"$set": derived},
        {"$set": {**base, d.AGENTS: agents, d.MULTI_AGENTS: _if_missing(d.MULTI_AGENTS, {})}},
    ]
