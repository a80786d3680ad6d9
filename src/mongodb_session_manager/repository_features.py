"""The session-level feature operations of :class:`~.mongodb_session_repository.MongoDBSessionRepository`.

One named method per operation (metadata, feedback, viewer password, application name, agent
configuration, prompt metadata, guardrail-audited redaction): callers pass values, never queries;
every filter, update and projection comes from :mod:`.documents`. The original library had these
methods on its repository, so code written for it keeps working; each raises this library's typed
errors (``SessionNotFoundError``, ``AgentNotFoundError``, ``Invalid*Error``) where the original
returned ``None`` or silently wrote nothing.

Kept apart from the repository module so the Strands-facing storage code and the features change
independently; the repository class inherits these methods.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from . import documents as d
from . import documents_features as df
from . import documents_values as dv
from .errors import AgentNotFoundError, InvalidInputError, SessionNotFoundError
from .guardrails import guardrail_summary

if TYPE_CHECKING:
    from pymongo.collection import Collection
    from strands.types.session import SessionMessage

logger = logging.getLogger(__name__)


class SessionFeatureMethods:
    """Mixin: needs ``collection``, ``_translate`` and ``_guarded_update`` from the repository."""

    if TYPE_CHECKING:
        collection: Collection[Any]
        #: ``MongoDBSessionRepository._translate`` / ``._guarded_update`` (see there).
        _translate: Callable[..., contextlib.AbstractContextManager[None]]
        _guarded_update: Callable[..., None]

    # ---- one session document ------------------------------------------------------------------------

    def _update_session(self, sid: str, update: Mapping[str, Any]) -> None:
        with self._translate(sid):
            result = self.collection.update_one({d.ID: sid}, dict(update))
        if result.matched_count == 0:
            raise SessionNotFoundError("session does not exist", session_id=sid)

    def _read_session(self, sid: str, projection: Mapping[str, Any]) -> dict[str, Any]:
        with self._translate(sid):
            doc = self.collection.find_one({d.ID: sid}, dict(projection))
        if doc is None:
            raise SessionNotFoundError("session does not exist", session_id=sid)
        return dict(doc)

    def _update_agent(self, sid: str, aid: str, update: Mapping[str, Any]) -> None:
        self._guarded_update(
            sid,
            aid,
            d.agent_exists_filter(sid, aid),
            dict(update),
            AgentNotFoundError("agent does not exist", session_id=sid, agent_id=aid),
        )

    # ---- metadata ---------------------------------------------------------------------------------------

    def update_metadata(self, session_id: str, metadata: Mapping[str, Any]) -> None:
        """Set the given keys (``$set metadata.<key>``) in one write; other keys stay as they are."""
        sid = d.validate_id(session_id, "session")
        checked = d.validate_metadata(metadata, session_id=sid)
        if checked:
            self._update_session(sid, df.set_metadata_update(checked))

    def get_metadata(self, session_id: str) -> dict[str, Any]:
        """The session's metadata dict (``{}`` when none); the original returned ``{"_id", "metadata"}``."""
        sid = d.validate_id(session_id, "session")
        doc = self._read_session(sid, df.METADATA_PROJECTION)
        return dict(dv.from_bson(doc.get(d.METADATA) or {}))

    def delete_metadata(self, session_id: str, metadata_keys: list[str] | str) -> None:
        """Remove the given keys (``$unset``); a single key may be passed as a string."""
        sid = d.validate_id(session_id, "session")
        if isinstance(metadata_keys, str):
            keys = [metadata_keys]
        elif isinstance(metadata_keys, list | tuple | set | frozenset):
            keys = list(metadata_keys)
        else:
            raise InvalidInputError(
                f"metadata_keys must be a key or a list of keys, got {type(metadata_keys).__name__}", session_id=sid
            )
        checked = [d.validate_metadata_key(k, session_id=sid) for k in keys]
        if checked:
            self._update_session(sid, df.unset_metadata_update(checked))

    # ---- feedback -------------------------------------------------------------------------------------------

    def add_feedback(self, session_id: str, feedback: Mapping[str, Any]) -> dict[str, Any]:
        """Validate and append one feedback (UTC ``created_at`` added); returns the stored entry."""
        sid = d.validate_id(session_id, "session")
        entry = df.feedback_entry(feedback, session_id=sid)
        self._update_session(sid, df.push_feedback_update(entry))
        return entry

    def get_feedbacks(self, session_id: str) -> list[dict[str, Any]]:
        """Every feedback of the session, oldest first."""
        sid = d.validate_id(session_id, "session")
        doc = self._read_session(sid, df.FEEDBACKS_PROJECTION)
        return list(dv.from_bson(doc.get(d.FEEDBACKS) or []))

    # ---- session identity -----------------------------------------------------------------------------------

    def get_session_viewer_password(self, session_id: str) -> str:
        """The password that opens this session in the Session Viewer. Never logged.

        Sessions written before passwords existed get one on first request; a concurrent first
        request cannot give them two (the write only matches while the field is missing).
        """
        sid = d.validate_id(session_id, "session")
        doc = self._read_session(sid, df.VIEWER_PASSWORD_PROJECTION)
        if not doc.get(d.VIEWER_PASSWORD):
            with self._translate(sid):
                self.collection.update_one(df.missing_viewer_password_filter(sid), df.set_viewer_password_update())
            doc = self._read_session(sid, df.VIEWER_PASSWORD_PROJECTION)
        return str(doc[d.VIEWER_PASSWORD])

    def get_application_name(self, session_id: str) -> str | None:
        """The ``application_name`` the session was created with (``None`` if it was created without)."""
        sid = d.validate_id(session_id, "session")
        value = self._read_session(sid, d.APPLICATION_NAME_PROJECTION).get(d.APPLICATION_NAME)
        return str(value) if value is not None else None

    # ---- agent configuration --------------------------------------------------------------------------------

    def list_agents(self, session_id: str) -> list[dict[str, Any]]:
        """Every agent with ``agent_id, model, system_prompt, prompt_metadata, created_at, updated_at,
        totals, message_count`` (keys always present; ``None`` until recorded). No messages are read."""
        sid = d.validate_id(session_id, "session")
        return self._agent_rows(sid, None)

    def get_agent_config(self, session_id: str, agent_id: str) -> dict[str, Any] | None:
        """One row of :meth:`list_agents`, or ``None`` if the agent does not exist."""
        sid = d.validate_id(session_id, "session")
        aid = d.validate_id(agent_id, "agent", session_id=sid)
        rows = self._agent_rows(sid, aid)
        return rows[0] if rows else None

    def _agent_rows(self, sid: str, aid: str | None) -> list[dict[str, Any]]:
        with self._translate(sid, aid):
            rows = list(self.collection.aggregate(d.list_agents_pipeline(sid, aid)))
            if not rows and self.collection.count_documents({d.ID: sid}, limit=1) == 0:
                raise SessionNotFoundError("session does not exist", session_id=sid)
        return [{key: None for key in d.AGENT_CONFIG_KEYS} | dv.from_bson(row) for row in rows]

    def update_agent_config(
        self,
        session_id: str,
        agent_id: str,
        model: str | None = None,
        system_prompt: str | None = None,
        prompt_metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Override the stored model / system prompt / prompt metadata; ``None`` leaves a value as it is.

        A model or prompt set here survives later syncs of an unchanged agent (only a change of the
        agent's own config overwrites it).
        """
        sid = d.validate_id(session_id, "session")
        aid = d.validate_id(agent_id, "agent", session_id=sid)
        for name, value in (("model", model), ("system_prompt", system_prompt)):
            if value is not None and not isinstance(value, str):
                raise InvalidInputError(f"{name} must be a string, got {type(value).__name__}", session_id=sid)
        checked = d.validate_prompt_metadata(prompt_metadata, session_id=sid) if prompt_metadata is not None else None
        update = d.agent_config_update(aid, model=model, system_prompt=system_prompt, prompt_metadata=checked)
        self._update_agent(sid, aid, update)

    def set_prompt_metadata(self, session_id: str, agent_id: str, prompt_metadata: Mapping[str, Any]) -> None:
        """Record which prompt (id, name, version, deployment, temperature...) the agent runs with.

        Stored beside ``agent_data``, so unlike the original library the next agent sync keeps it.
        """
        sid = d.validate_id(session_id, "session")
        aid = d.validate_id(agent_id, "agent", session_id=sid)
        checked = d.validate_prompt_metadata(prompt_metadata, session_id=sid)
        self._update_agent(sid, aid, d.set_prompt_metadata_update(aid, checked))
        logger.debug(
            "session_id=<%s> | agent_id=<%s> | prompt_id=<%s> | prompt metadata set", sid, aid, checked.get("prompt_id")
        )

    # ---- guardrail auditing ---------------------------------------------------------------------------------

    def redact_message(
        self,
        session_id: str,
        agent_id: str,
        session_message: SessionMessage,
        *,
        action: str = df.GUARDRAIL_ACTION_BLOCKED,
        stop_reason: str | None = None,
        guardrail_trace: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Store the redacted message and its guardrail event, on the message and in the session list.

        One update, so the audit list never names a message whose redaction was not stored. Returns
        the session-level event; ``MessageNotFoundError`` if the message is not stored (yet).
        """
        sid, aid, mid, on_message, on_session = self._guardrail_event(
            session_id, agent_id, session_message.message_id, action, stop_reason, guardrail_trace
        )
        update, array_filters = df.redact_message_update(aid, session_message, on_message, on_session)
        self._guarded_message_update(sid, aid, mid, update, array_filters)
        logger.info("session_id=<%s> | agent_id=<%s> | message_id=<%d> | action=<%s> | redacted", sid, aid, mid, action)
        return on_session

    def record_guardrail_event(
        self,
        session_id: str,
        agent_id: str,
        message_id: int,
        *,
        action: str = df.GUARDRAIL_ACTION_BLOCKED,
        stop_reason: str | None = None,
        guardrail_trace: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Record a guardrail event for an already stored (redacted) message, in one update."""
        sid, aid, mid, on_message, on_session = self._guardrail_event(
            session_id, agent_id, message_id, action, stop_reason, guardrail_trace
        )
        update, array_filters = df.guardrail_event_update(aid, mid, on_message, on_session)
        self._guarded_message_update(sid, aid, mid, update, array_filters)
        logger.info(
            "session_id=<%s> | agent_id=<%s> | message_id=<%d> | action=<%s> | guardrail event", sid, aid, mid, action
        )
        return on_session

    def _guardrail_event(
        self,
        session_id: str,
        agent_id: str,
        message_id: int,
        action: str,
        stop_reason: str | None,
        guardrail_trace: Mapping[str, Any] | None,
    ) -> tuple[str, str, int, dict[str, Any], dict[str, Any]]:
        sid = d.validate_id(session_id, "session")
        aid = d.validate_id(agent_id, "agent", session_id=sid)
        mid = d.validate_message_id(message_id, session_id=sid)
        if not isinstance(action, str) or not action:
            raise InvalidInputError("guardrail action must be a non-empty string", session_id=sid)
        if stop_reason is not None and not isinstance(stop_reason, str):
            raise InvalidInputError("stop_reason must be a string", session_id=sid)
        if guardrail_trace is not None and not isinstance(guardrail_trace, Mapping):
            raise InvalidInputError("guardrail_trace must be a mapping (Bedrock's GuardrailTrace)", session_id=sid)
        on_message, on_session = df.guardrail_events(
            aid,
            mid,
            action=action,
            stop_reason=stop_reason,
            policies_triggered=guardrail_summary(guardrail_trace),
            trace=guardrail_trace,
        )
        d.ensure_encodable(on_message, what="guardrail trace", session_id=sid)
        return sid, aid, mid, on_message, on_session

    def get_guardrail_events(self, session_id: str) -> list[dict[str, Any]]:
        """The session's guardrail events, oldest first (``[]`` for sessions without any)."""
        sid = d.validate_id(session_id, "session")
        doc = self._read_session(sid, df.GUARDRAIL_EVENTS_PROJECTION)
        return list(dv.from_bson(doc.get(d.GUARDRAIL_EVENTS) or []))

    # ---- snapshot sessions (MongoDBSnapshotSessionManager) --------------------------------------------------

    def list_snapshot_agents(self, session_id: str) -> list[dict[str, Any]]:
        """Every agent with a latest snapshot, its config, message count and totals (no messages read)."""
        from . import documents_snapshot_features as dsf

        sid, _ = self._ids(session_id)
        return dsf.agents_from_document(dv.from_bson(self._read_session(sid, dsf.AGENTS_PROJECTION)))

    def override_snapshot_agent_config(
        self, session_id: str, agent_id: str, *, model: str | None, system_prompt: str | None
    ) -> None:
        """Store a model / system prompt override for a snapshot agent (kept until its own config changes)."""
        from . import documents_snapshot_features as dsf

        sid, aid = self._ids(session_id, agent_id)
        self._update_session(sid, dsf.agent_config_override_update(aid, model=model, system_prompt=system_prompt))

    def get_snapshot_turn_metrics(self, session_id: str, agent_id: str) -> list[dict[str, Any]]:
        """The per-turn metrics of one snapshot agent, oldest first."""
        from . import documents_snapshot_features as dsf

        sid, aid = self._ids(session_id, agent_id)
        doc = dv.from_bson(self._read_session(sid, dsf.turn_metrics_projection(aid)))
        return dsf.turn_metrics_from_document(doc, aid)

    # ---- deprecated (0.3) ---------------------------------------------------------------------------------

    def read_viewer_password(self, session_id: str) -> str:
        """Deprecated name of :meth:`get_session_viewer_password` (0.3)."""
        return self.get_session_viewer_password(session_id)

    def update_session_fields(self, session_id: str, update: Mapping[str, Any]) -> None:
        """Deprecated (0.3): apply an update built by a ``documents`` module; prefer the named methods."""
        self._update_session(d.validate_id(session_id, "session"), update)

    def read_session_fields(self, session_id: str, projection: Mapping[str, Any]) -> dict[str, Any]:
        """Deprecated (0.3): one projected read of the session document; prefer the named methods."""
        return dict(dv.from_bson(self._read_session(d.validate_id(session_id, "session"), projection)))
