"""Convert message-log sessions to the snapshot path, in place (``mongodb-session-manager migrate-to-snapshot``).

Each agent's stored messages and state become one Strands ``Snapshot`` (exactly what
``SnapshotSessionManager`` would have saved after its last turn), written into the same session
document with the agent's config, totals and per-turn metrics; the message-log ``agents`` map is
removed in the same atomic update, guarded by the ``updated_at`` that was read, so a session that
changes meanwhile is reported and left alone. Metadata, feedback and the viewer password are kept.

Multi-agent (Graph / Swarm) state is left in ``multi_agents``: its message-log form is not the
orchestrator snapshot Strands restores, and an orchestrator re-runs from its own state.

An agent whose oldest messages were archived (buckets in ``<collection>_messages``) is read whole:
the snapshot holds the same messages as for the session unsplit. Once the ``agents`` map is gone
the buckets are listed by nothing, so they are deleted right after the migration. A snapshot is
one document: a history too large for it leaves the session as it is (status ``skipped``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pymongo.collection import Collection
from strands.session.snapshot_session_manager import _serialize_snapshot
from strands.types._snapshot import SNAPSHOT_SCHEMA_VERSION, Snapshot

from . import documents as d
from . import documents_archive as da
from . import documents_lifecycle as dl
from . import documents_snapshot as ds
from . import documents_snapshot_features as dsf
from . import documents_values as dv
from .driver_errors import translate_errors
from .errors import ConcurrentModificationError, DocumentTooLargeError
from .repository_lifecycle import read_with_archive

logger = logging.getLogger(__name__)


@dataclass
class MigrationResult:
    """What happened (or, with ``dry_run``, would happen) to one session."""

    session_id: str
    status: str  # "migrated" | "would-migrate" | "skipped" | "conflict"
    agents: dict[str, int] = field(default_factory=dict)  # agent id -> messages in its snapshot
    multi_agents_kept: list[str] = field(default_factory=list)
    reason: str = ""


def snapshot_of_agent(session_id: str, agent_id: str, agent: Mapping[str, Any]) -> tuple[bytes, dict[str, Any], int]:
    """The latest-snapshot bytes, the feature fields and the message count for one message-log agent."""
    agent_data = dv.from_bson(agent.get(d.AGENT_DATA) or {})
    conversation_state = agent_data.get("conversation_manager_state") or {}
    removed = int(conversation_state.get("removed_message_count") or 0)
    stored = sorted(agent.get(d.MESSAGES) or [], key=lambda m: m.get(d.MESSAGE_ID, 0))
    # What Strands' message-log manager restores: messages after the trimmed ones, redactions applied.
    session_messages = [d.message_from_document(m) for m in stored][removed:]
    messages = [m.to_message() for m in session_messages]
    internal = agent_data.get(d.INTERNAL_STATE) or {}
    data: dict[str, Any] = {
        "messages": messages,
        "state": agent_data.get(d.STATE) or {},
        "conversation_manager_state": conversation_state,
        "interrupt_state": internal.get("interrupt_state") or {"interrupts": {}, "context": {}, "activated": False},
        "model_state": internal.get("model_state") or {},
    }
    prompt = agent_data.get(d.SYSTEM_PROMPT)
    data["system_prompt"] = [{"text": prompt}] if isinstance(prompt, str) else prompt
    created = d.to_iso(agent_data.get(d.UPDATED_AT))
    snapshot = Snapshot(
        scope="agent", schema_version=SNAPSHOT_SCHEMA_VERSION, data=data, app_data={}, created_at=created
    )
    features: dict[str, Any] = {}
    if agent_data.get(d.MODEL) is not None:
        features[d.MODEL] = agent_data.get(d.MODEL)
        features[d.SYSTEM_PROMPT] = prompt
        features[d.CONFIG_CAPTURED] = {d.MODEL: agent_data.get(d.MODEL), d.SYSTEM_PROMPT: prompt}
    if agent_data.get(d.TOTALS):
        features[d.TOTALS] = agent_data[d.TOTALS]
    turns = [
        {
            ds.MESSAGE_INDEX: index,
            **dv.from_bson(m[d.METRICS]),
            d.CREATED_AT: m.get(d.UPDATED_AT) or m.get(d.CREATED_AT),
        }
        for index, m in enumerate(stored)  # positions in the whole conversation, as the manager records them
        if isinstance(m.get(d.METRICS), Mapping)
    ]
    if turns:
        features[ds.TURN_METRICS] = turns[-ds.MAX_TURN_METRICS :]
    return _serialize_snapshot(snapshot), features, len(messages)


def migrate_session(collection: Collection[Any], session_id: str, *, dry_run: bool = False) -> MigrationResult:
    """Convert one session; idempotent (a session without message-log agents is skipped)."""
    sid = d.validate_id(session_id, "session")
    buckets = _buckets_of(collection)
    with translate_errors(sid):
        doc = read_with_archive(collection, buckets, ds.session_filter(sid), dsf.MIGRATION_PROJECTION)
    if doc is None:
        return MigrationResult(sid, "skipped", reason="no such session")
    agents = doc.get(d.AGENTS) or {}
    kept = sorted((doc.get(d.MULTI_AGENTS) or {}).keys())
    if not agents:
        return MigrationResult(sid, "skipped", multi_agents_kept=kept, reason="no message-log agents")
    latest: dict[str, bytes] = {}
    features: dict[str, dict[str, Any]] = {}
    counts: dict[str, int] = {}
    for agent_id, agent in sorted(agents.items()):
        data, extra, count = snapshot_of_agent(sid, agent_id, agent)
        latest[ds.latest_key(sid, "agent", agent_id)] = data
        features[agent_id] = extra
        counts[agent_id] = count
    if dry_run:
        return MigrationResult(sid, "would-migrate", counts, kept)
    pipeline = dsf.migrate_update(sid, latest, d.now(), features)
    try:
        with translate_errors(sid):
            result = collection.update_one(dsf.migrate_filter(sid, doc.get(d.UPDATED_AT)), pipeline)
    except DocumentTooLargeError:
        logger.warning("session_id=<%s> | its snapshot would exceed 16 MB; left as it is", sid)
        reason = "its snapshot would exceed MongoDB's 16 MB document limit; it stays on the message-log path"
        return MigrationResult(sid, "skipped", counts, kept, reason=reason)
    if result.matched_count == 0:
        logger.warning("session_id=<%s> | changed while migrating; left as it is", sid)
        return MigrationResult(sid, "conflict", counts, kept, reason="the session changed meanwhile; run again")
    with translate_errors(sid):  # the agents map (and so every archive list) is gone: nothing reads them
        buckets.delete_many(dl.session_buckets_filter(sid))
    logger.info("session_id=<%s> | migrated to the snapshot path (%d agents)", sid, len(counts))
    return MigrationResult(sid, "migrated", counts, kept)


def _buckets_of(collection: Collection[Any]) -> Collection[Any]:
    name = da.buckets_collection_name(collection.name)
    return collection.database.get_collection(name, codec_options=collection.codec_options)


def migrate_all(collection: Collection[Any], *, dry_run: bool = False) -> list[MigrationResult]:
    """Every session still in the message-log shape, one at a time (each update is atomic)."""
    with translate_errors(None):
        ids = [doc[d.ID] for doc in collection.find(dsf.message_log_sessions_filter(), {d.ID: 1})]
    return [migrate_session(collection, sid, dry_run=dry_run) for sid in ids]


def raise_on_conflict(results: list[MigrationResult]) -> None:
    """For callers that want an exception instead of a report."""
    conflicts = [r.session_id for r in results if r.status == "conflict"]
    if conflicts:
        raise ConcurrentModificationError(f"sessions changed while migrating: {conflicts}")
