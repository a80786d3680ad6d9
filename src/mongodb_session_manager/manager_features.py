"""The features :class:`~.mongodb_session_manager.MongoDBSessionManager` adds to Strands' manager.

Metadata, feedback, agent configuration and prompt metadata, counts, the viewer password, the
application name, and guardrail-audited redaction. Every method passes values to a named method
of :class:`~.mongodb_session_repository.MongoDBSessionRepository`; none builds a query. Metadata and
feedback operations run through the hook contract of :mod:`.hooks.contract`.

Kept apart from the manager module, whose remaining code is the Strands lifecycle, so the two
evolve independently; the manager class inherits these methods.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from strands.hooks import AfterInvocationEvent
from strands.types.session import SessionAgent

from . import documents_features as df
from .blocking_io import run_blocking
from .errors import AgentAlreadyExistsError, AgentNotFoundError, MessageNotFoundError
from .hooks.contract import OperationHook, run_operation
from .metadata_tool import PROTECTED_METADATA_KEYS, build_metadata_tool
from .metrics import model_id

if TYPE_CHECKING:
    from strands.hooks import HookRegistry
    from strands.tools.decorator import DecoratedFunctionTool
    from strands.types.agent import LocalAgent
    from strands.types.content import Message
    from strands.types.session import SessionMessage

    from .mongodb_session_repository import MongoDBSessionRepository

logger = logging.getLogger(__name__)


class SessionLevelFeatures:
    """Metadata (with its hook and tool), feedback (with its hook), the viewer password and the
    application name: the same for a message-log session and a snapshot session, so written once.

    Subclasses say where the session lives (:meth:`_session_features_store`) and may create the
    session document lazily (:meth:`_ensure_session`, a no-op when the manager created it already).
    """

    if TYPE_CHECKING:
        session_id: str
        metadata_hook: OperationHook | None
        feedback_hook: OperationHook | None

    def _session_features_store(self) -> MongoDBSessionRepository:
        return self.session_repository  # type: ignore[attr-defined,no-any-return]

    def _ensure_session(self) -> None:
        """The message-log manager created the session in its constructor: nothing to do."""

    # ---- metadata ------------------------------------------------------------------------------------

    def update_metadata(self, metadata: Mapping[str, Any]) -> Any:
        """Set the given keys (``$set metadata.<key>``); other keys stay as they are."""
        return run_operation(
            self.metadata_hook, self._update_metadata, "update", self.session_id, metadata, session_manager=self
        )

    def get_metadata(self) -> dict[str, Any]:
        """The session's metadata dict (``{}`` when none), through the metadata hook.

        The original library returned the projected document (``{"_id": ..., "metadata": {...}}``);
        ``get_metadata()["metadata"]`` becomes ``get_metadata()``.
        """
        result: dict[str, Any] = run_operation(
            self.metadata_hook, self._get_metadata, "get", self.session_id, session_manager=self
        )
        return result

    def read_metadata(self) -> dict[str, Any]:
        """The stored metadata without running the metadata hook (what hooks themselves call)."""
        return self._get_metadata()

    def delete_metadata(self, metadata_keys: list[str] | str) -> Any:
        """Remove the given keys (``$unset``)."""
        return run_operation(
            self.metadata_hook, self._delete_metadata, "delete", self.session_id, metadata_keys, session_manager=self
        )

    def _update_metadata(self, metadata: Mapping[str, Any]) -> None:
        self._ensure_session()
        self._session_features_store().update_metadata(self.session_id, metadata)

    def _get_metadata(self) -> dict[str, Any]:
        self._ensure_session()
        return self._session_features_store().get_metadata(self.session_id)

    def _delete_metadata(self, metadata_keys: list[str] | str) -> None:
        self._ensure_session()
        self._session_features_store().delete_metadata(self.session_id, metadata_keys)

    def get_metadata_tool(
        self, protected_keys: frozenset[str] = PROTECTED_METADATA_KEYS
    ) -> DecoratedFunctionTool[..., str]:
        """A ``manage_metadata`` tool bound to this session, for ``Agent(tools=[...])``."""
        return build_metadata_tool(self, protected_keys)  # type: ignore[arg-type]

    # ---- feedback --------------------------------------------------------------------------------------

    def add_feedback(self, feedback: Mapping[str, Any]) -> Any:
        """Append ``{"rating": "up"|"down"|None, "comment": str}`` with a UTC ``created_at``."""
        return run_operation(
            self.feedback_hook, self._add_feedback, "add", self.session_id, feedback, session_manager=self
        )

    def _add_feedback(self, feedback: Mapping[str, Any]) -> None:
        self._ensure_session()
        self._session_features_store().add_feedback(self.session_id, feedback)

    def _validated_feedback(self, feedback: Mapping[str, Any]) -> dict[str, Any]:
        """The entry ``add_feedback`` would store (validation lives in :func:`.documents_features.feedback_entry`)."""
        return df.feedback_entry(feedback, session_id=self.session_id)

    def get_feedbacks(self) -> list[dict[str, Any]]:
        """Every feedback of the session, oldest first."""
        self._ensure_session()
        return self._session_features_store().get_feedbacks(self.session_id)

    def get_session_viewer_password(self) -> str:
        """The password that opens this session (only) in the Session Viewer. Never logged."""
        self._ensure_session()
        return self._session_features_store().get_session_viewer_password(self.session_id)

    def get_application_name(self) -> str | None:
        """The application the session was created by (immutable; ``None`` if created without one)."""
        self._ensure_session()
        return self._session_features_store().get_application_name(self.session_id)


class SessionFeaturesMixin(SessionLevelFeatures):
    """Mixin for a ``RepositorySessionManager`` whose repository is a ``MongoDBSessionRepository``."""

    if TYPE_CHECKING:
        session_id: str
        session_repository: MongoDBSessionRepository
        metadata_hook: OperationHook | None
        feedback_hook: OperationHook | None
        _latest_agent_message: dict[str, SessionMessage | None]

        def sync_agent(self, agent: LocalAgent, **kwargs: Any) -> None: ...

        def _held_by_turn(self, aid: str, record: SessionMessage) -> bool: ...

    # ---- agent configuration, counts, identity ------------------------------------------------------------

    def get_agent_config(self, agent_id: str) -> dict[str, Any] | None:
        """``{agent_id, model, system_prompt, prompt_metadata, totals, ...}`` or None if the agent does not exist."""
        return self.session_repository.get_agent_config(self.session_id, agent_id)

    def update_agent_config(
        self,
        agent_id: str,
        model: str | None = None,
        system_prompt: str | None = None,
        prompt_metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Override the stored model / system prompt / prompt metadata (kept until the agent's own config changes)."""
        self.session_repository.update_agent_config(
            self.session_id, agent_id, model=model, system_prompt=system_prompt, prompt_metadata=prompt_metadata
        )

    def set_prompt_metadata(self, agent_id: str, prompt_metadata: Mapping[str, Any]) -> None:
        """Record the prompt lineage (``prompt_id``, ``prompt_name``, ``prompt_version``, ``deployment_id``,
        ``deployment_name``, ``temperature``...) of an existing agent; later agent syncs keep it."""
        self.session_repository.set_prompt_metadata(self.session_id, agent_id, prompt_metadata)

    def list_agents(self) -> list[dict[str, Any]]:
        """Every agent of the session with its config, totals and message count (no messages)."""
        return self.session_repository.list_agents(self.session_id)

    def get_message_count(self, agent_id: str | None = None) -> int:
        """Messages stored for one agent, or for the whole session; counted by the server."""
        return self.session_repository.count_messages(self.session_id, agent_id)

    def get_guardrail_events(self) -> list[dict[str, Any]]:
        """The guardrail interventions recorded by :meth:`redact_latest_message`, oldest first."""
        return self.session_repository.get_guardrail_events(self.session_id)

    # ---- guardrail auditing --------------------------------------------------------------------------------

    def redact_latest_message(self, redact_message: Message, agent: LocalAgent, **kwargs: Any) -> None:
        """Redact the agent's latest message and record the guardrail event.

        Strands calls this when a guardrail asks to redact the user's input. ``action`` (default
        ``"BLOCKED"``), ``stop_reason`` and ``guardrail_trace`` keyword arguments, as in the original
        library, go into the event; the trace is summarised into ``policies_triggered``. A stored
        message is redacted and audited in one update. A message of the running turn is not stored
        yet: the turn stores it redacted when it commits, and its event is recorded right after
        (one update, on the message and in the session list).
        """
        aid = agent.agent_id
        latest = (getattr(self, "_latest_agent_message", None) or {}).get(aid)
        if latest is None:
            raise MessageNotFoundError("no message to redact", session_id=self.session_id, agent_id=aid)
        audit = {
            "action": kwargs.get("action", df.GUARDRAIL_ACTION_BLOCKED),
            "stop_reason": kwargs.get("stop_reason"),
            "guardrail_trace": kwargs.get("guardrail_trace"),
        }
        latest.redact_message = redact_message
        if self._held_by_turn(aid, latest):
            # The running turn holds it (Strands redacts the prompt inside the invocation): it is stored
            # redacted with the commit, the event right after. Nothing is sent now, so an async
            # invocation never waits on MongoDB from the event loop here.
            self._pending_guardrail_events().setdefault(aid, []).append((latest, audit))
            return
        try:
            self.session_repository.redact_message(self.session_id, aid, latest, **audit)
        except (MessageNotFoundError, AgentNotFoundError):
            # Not stored (nor, maybe, its agent): the running turn holds it. The lifecycle redacts it
            # there (or raises if the message is in no turn either); the event waits for the commit.
            super().redact_latest_message(redact_message, agent, **kwargs)  # type: ignore[misc]
            self._pending_guardrail_events().setdefault(aid, []).append((latest, audit))

    def _pending_guardrail_events(self) -> dict[str, list[tuple[SessionMessage, dict[str, Any]]]]:
        pending: dict[str, list[tuple[SessionMessage, dict[str, Any]]]] | None = getattr(
            self, "_guardrail_events_after_commit", None
        )
        if pending is None:
            pending = self._guardrail_events_after_commit = {}
        return pending

    def register_hooks(self, registry: HookRegistry, **kwargs: Any) -> None:
        """The lifecycle's hooks, plus recording the guardrail events of a committed turn.

        Registered first on purpose: ``AfterInvocationEvent`` runs callbacks in reverse order, so
        this one runs after the turn's commit.
        """
        registry.add_callback(AfterInvocationEvent, self._record_guardrail_events_after_commit)
        super().register_hooks(registry, **kwargs)  # type: ignore[misc]

    async def _record_guardrail_events_after_commit(self, event: AfterInvocationEvent) -> None:
        pending = self._pending_guardrail_events().pop(event.agent.agent_id, [])
        if pending:  # Strands awaits this in invoke_async and agent() alike: the writes run off the loop
            await run_blocking(self._record_guardrail_events, event.agent.agent_id, pending)

    def _record_guardrail_events(self, aid: str, pending: list[tuple[SessionMessage, dict[str, Any]]]) -> None:
        for record, audit in pending:
            try:
                self.session_repository.record_guardrail_event(self.session_id, aid, record.message_id, **audit)
            except MessageNotFoundError:
                # The turn failed and was rolled back: the redacted message was never stored, so
                # there is nothing to audit.
                logger.warning(
                    "session_id=<%s> | agent_id=<%s> | message_id=<%d> | turn not stored, guardrail event dropped",
                    self.session_id,
                    aid,
                    record.message_id,
                )

    # ---- code written for the original library ---------------------------------------------------------------

    def sync_agent(self, agent: LocalAgent, **kwargs: Any) -> None:
        """Strands' sync; for an agent this manager never initialised, what the original library did.

        The original let code call ``sync_agent`` on any agent: the agent was created if missing and
        its model and system prompt were recorded on the spot. Agents that went through
        ``initialize`` (every ``Agent(session_manager=...)``) take Strands' path unchanged, with the
        config recorded after each invocation instead.
        """
        if agent.agent_id in (getattr(self, "_latest_agent_message", None) or {}):
            super().sync_agent(agent, **kwargs)  # type: ignore[misc]
            return
        try:
            self.session_repository.create_agent(self.session_id, SessionAgent.from_agent(agent))
        except AgentAlreadyExistsError:
            super().sync_agent(agent, **kwargs)  # type: ignore[misc]
        model = getattr(agent, "model", None)
        prompt = getattr(agent, "system_prompt", None)
        system_prompt = prompt if isinstance(prompt, str) else None
        if model is not None:
            self.session_repository.capture_agent_config(
                self.session_id, agent.agent_id, model=model_id(model), system_prompt=system_prompt
            )
        elif system_prompt:
            self.update_agent_config(agent.agent_id, system_prompt=system_prompt)
