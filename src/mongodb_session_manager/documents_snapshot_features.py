"""Snapshot sessions beyond the storage: their session features, the migration, and the viewer's read.

Pure builders, like :mod:`.documents_snapshot` (whose layout and field names they use):
``MongoDBSnapshotSessionManager`` sends the feature updates, ``snapshot_migration`` the migration,
and the Session Viewer's detail endpoint the read of a snapshot session.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import documents as d
from . import documents_snapshot as ds

# ---- session features on a snapshot session ----------------------------------------------------------


def ensure_session_pipeline(session_id: str, application_name: str | None = None) -> list[dict[str, Any]]:
    """Upsert: the session document with its base fields where missing; ``updated_at`` is kept."""
    return [ds.base_stage(session_id, d.now(), None, application_name=application_name, touch=False)]


def _add_to(path: str, value: Any) -> dict[str, Any]:
    return {"$add": [{"$ifNull": [f"${path}", 0]}, {"$literal": value}]}


def turn_pipeline(
    session_id: str,
    agent_id: str,
    *,
    application_name: str | None = None,
    metrics: Mapping[str, Any] | None,
    totals: Mapping[str, int] | None,
    config: tuple[str, str | None] | None,
    at: Any,
) -> list[dict[str, Any]]:
    """One update after a turn: its metrics (capped list), running totals and the agent's config.

    The config is compared with the one captured last time inside the server, so an override set with
    ``update_agent_config`` is kept until the agent's own model or prompt changes, without a read.
    """
    fields: dict[str, Any] = {d.UPDATED_AT: {"$literal": at}}
    if metrics is not None:
        path = ds.agent_features_path(agent_id, ds.TURN_METRICS)
        fields[path] = {
            "$slice": [
                {"$concatArrays": [{"$ifNull": [f"${path}", []]}, {"$literal": [dict(metrics)]}]},
                -ds.MAX_TURN_METRICS,
            ]
        }
    for name, value in (totals or {}).items():
        path = ds.agent_features_path(agent_id, f"{d.TOTALS}.{name}")
        fields[path] = _add_to(path, value)
    if totals and "usage.totalTokens" in totals:
        fields[f"{d.TOTALS}.usage.totalTokens"] = _add_to(f"{d.TOTALS}.usage.totalTokens", totals["usage.totalTokens"])
    if config is not None:
        captured = {d.MODEL: config[0], d.SYSTEM_PROMPT: config[1]}
        captured_path = ds.agent_features_path(agent_id, d.CONFIG_CAPTURED)
        unchanged = {"$eq": [f"${captured_path}", {"$literal": captured}]}
        for name in (d.MODEL, d.SYSTEM_PROMPT):
            path = ds.agent_features_path(agent_id, name)
            fields[path] = {"$cond": [unchanged, f"${path}", {"$literal": captured[name]}]}
        fields[captured_path] = {"$literal": captured}
        models = getattr(d, "MODELS", None)
        if models:
            fields[models] = {"$setUnion": [{"$ifNull": [f"${models}", []]}, {"$literal": [config[0]]}]}
    return [ds.base_stage(session_id, at, agent_id, application_name=application_name), {"$set": fields}]


def agent_config_override_update(agent_id: str, *, model: str | None, system_prompt: str | None) -> dict[str, Any]:
    fields: dict[str, Any] = {d.UPDATED_AT: d.now()}
    if model is not None:
        fields[ds.agent_features_path(agent_id, d.MODEL)] = model
    if system_prompt is not None:
        fields[ds.agent_features_path(agent_id, d.SYSTEM_PROMPT)] = system_prompt
    return {"$set": fields}


_COUNTS = "agent_counts"
_FEATURES = "agent_features"

#: Counts and config of every agent, computed by the server: neither messages nor turn metrics are sent.
AGENTS_PROJECTION = {
    d.ID: 0,
    _COUNTS: {
        "$map": {
            "input": {"$objectToArray": {"$ifNull": [f"${ds.SNAPSHOTS}.agent", {}]}},
            "in": {"k": "$$this.k", "c": f"$$this.v.{ds.MESSAGE_COUNT}"},
        }
    },
    _FEATURES: {
        "$map": {
            "input": {"$objectToArray": {"$ifNull": [f"${ds.SNAPSHOT_AGENTS}", {}]}},
            "in": {
                "k": "$$this.k",
                d.MODEL: f"$$this.v.{d.MODEL}",
                d.SYSTEM_PROMPT: f"$$this.v.{d.SYSTEM_PROMPT}",
                d.TOTALS: f"$$this.v.{d.TOTALS}",
            },
        }
    },
}


def agents_from_document(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``[{agent_id, model, system_prompt, message_count, totals}]``, sorted by agent id."""
    features = {row["k"]: row for row in doc.get(_FEATURES) or []}
    rows = []
    for counted in sorted(doc.get(_COUNTS) or [], key=lambda row: row["k"]):
        extra = features.get(counted["k"]) or {}
        rows.append(
            {
                "agent_id": ds.unescape_field(counted["k"]),
                d.MODEL: extra.get(d.MODEL),
                d.SYSTEM_PROMPT: extra.get(d.SYSTEM_PROMPT),
                "message_count": counted.get("c") or 0,
                d.TOTALS: extra.get(d.TOTALS) or {},
            }
        )
    return rows


def turn_metrics_projection(agent_id: str) -> dict[str, Any]:
    return {d.ID: 0, ds.agent_features_path(agent_id, ds.TURN_METRICS): 1}


def turn_metrics_from_document(doc: Mapping[str, Any], agent_id: str) -> list[dict[str, Any]]:
    features = (doc.get(ds.SNAPSHOT_AGENTS) or {}).get(ds.escape_field(agent_id)) or {}
    return list(features.get(ds.TURN_METRICS) or [])


# ---- migration from the message-log shape -------------------------------------------------------------

MIGRATION_PROJECTION = {d.AGENTS: 1, d.MULTI_AGENTS: 1, d.UPDATED_AT: 1, ds.SNAPSHOTS: 1}


def message_log_sessions_filter() -> dict[str, Any]:
    """Sessions that still hold agents in the message-log shape."""
    return {f"{d.AGENTS}": {"$exists": True, "$ne": {}}}


def migrate_update(
    session_id: str, latest: Mapping[str, bytes], at: Any, features: Mapping[str, Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Pipeline: write every agent's latest snapshot and drop ``agents`` in one atomic update."""
    stages: list[dict[str, Any]] = []
    for key, data in latest.items():
        stages.extend(ds.write_latest_pipeline(ds.route(key), key, data, at)[:2])
    feature_fields = {
        ds.agent_features_path(aid, name): {"$literal": v} for aid, f in features.items() for name, v in f.items()
    }
    if feature_fields:
        stages.append({"$set": feature_fields})
    stages.append({"$unset": [d.AGENTS]})
    stages.append(ds.recompute_search_fields())
    return stages


def migrate_filter(session_id: str, updated_at: Any) -> dict[str, Any]:
    """Guard: only the document as it was read (a concurrent writer makes the migration retry)."""
    return {d.ID: session_id, d.UPDATED_AT: updated_at}


# ---- the Session Viewer -------------------------------------------------------------------------------


def viewer_snapshot_filter(session_id: str) -> dict[str, Any]:
    """The session, only if it was written through the snapshot path (else the viewer's own path applies)."""
    # A message-log session that also got snapshot keys (never migrated) keeps its message-log view.
    return {
        d.ID: session_id,
        ds.SNAPSHOT_FORMAT: {"$exists": True},
        "$or": [{d.AGENTS: {"$exists": False}}, {d.AGENTS: {}}],
    }


#: What the viewer reads of a snapshot session: never the password, tokens or raw history.
VIEWER_PROJECTION = {
    d.ID: 0,
    d.SESSION_ID: 1,
    d.SESSION_TYPE: 1,
    d.CREATED_AT: 1,
    d.UPDATED_AT: 1,
    d.METADATA: 1,
    d.FEEDBACKS: 1,
    f"{ds.SNAPSHOTS}.agent": 1,
    ds.SNAPSHOT_AGENTS: 1,
}


def _object_or_empty(expr: str) -> dict[str, Any]:
    return {"$cond": [{"$eq": [{"$type": expr}, "object"]}, expr, {}]}


def card_agents_expression() -> dict[str, Any]:
    """A list card's agents of a snapshot session: ``[{agent_id, model, totals, message_count}]``.

    The same shape the viewer's cards compute from ``agents`` on the message-log path, so one list
    query serves both kinds of session (``[]`` for a message-log session). Agent ids are shown as
    stored (an escaped ``.`` stays ``%2E``).
    """
    features = {"$objectToArray": _object_or_empty(f"${ds.SNAPSHOT_AGENTS}")}
    return {
        "$map": {
            "input": {"$objectToArray": _object_or_empty(f"${ds.SNAPSHOTS}.agent")},
            "as": "entry",
            "in": {
                "$let": {
                    "vars": {
                        "f": {"$first": {"$filter": {"input": features, "cond": {"$eq": ["$$this.k", "$$entry.k"]}}}}
                    },
                    "in": {
                        "agent_id": "$$entry.k",
                        d.MODEL: f"$$f.v.{d.MODEL}",
                        d.TOTALS: f"$$f.v.{d.TOTALS}",
                        "message_count": {"$ifNull": [f"$$entry.v.{ds.MESSAGE_COUNT}", 0]},
                    },
                }
            },
        }
    }


def card_preview_expression() -> dict[str, Any]:
    """The first agent's ``preview`` (its first message's text, kept when the snapshot was saved)."""
    first_entry = {"$first": {"$objectToArray": _object_or_empty(f"${ds.SNAPSHOTS}.agent")}}
    return {"$let": {"vars": {"entry": first_entry}, "in": f"$$entry.v.{ds.PREVIEW}"}}
