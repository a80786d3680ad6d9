"""``MongoDBSessionManager``: Strands' ``RepositorySessionManager`` plus the features of this library.

Strands' own manager keeps the lifecycle (restore, append, sync, tool-use repair); this class adds
what users choose the library for (metadata, feedback, per-turn metrics, agent configuration,
the viewer password) and never builds a query itself: the repository and :mod:`.documents` do.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pymongo.common
from pymongo import MongoClient
from strands.hooks import (
    AfterInvocationEvent,
    BeforeInvocationEvent,
    HookRegistry,
    MessageAddedEvent,
    MessageUpdatedEvent,
)
from strands.session.repository_session_manager import RepositorySessionManager

from . import documents as d
from .errors import InvalidFeedbackError, SessionAlreadyExistsError
from .metadata_tool import PROTECTED_METADATA_KEYS, build_metadata_tool
from .metrics import model_id, summarize, totals_increment
from .mongodb_session_repository import MongoDBSessionRepository

if TYPE_CHECKING:
    from strands.tools.decorator import DecoratedFunctionTool
    from strands.types.agent import LocalAgent
    from strands.types.content import Message

logger = logging.getLogger(__name__)

#: ``hook(original_func, action, session_id, **kwargs)`` -> whatever ``original_func`` returned.
OperationHook = Callable[..., Any]

VALID_RATINGS = ("up", "down", None)
_EXTRA_CLIENT_KWARGS = {"host", "port", "document_class", "tz_aware", "connect", "type_registry"}


def is_client_option(name: str) -> bool:
    """True for keyword arguments ``MongoClient`` understands (case-insensitive, like URI options)."""
    return name in _EXTRA_CLIENT_KWARGS or name.lower() in pymongo.common.VALIDATORS


def split_client_kwargs(kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    client = {k: v for k, v in kwargs.items() if is_client_option(k)}
    rest = {k: v for k, v in kwargs.items() if k not in client}
    return client, rest


class MongoDBSessionManager(RepositorySessionManager):
    """Persist Strands agents in MongoDB, one document per session.

    Args:
        session_id: The conversation. Created on first use, resumed afterwards.
        connection_string: MongoDB URI (ignored when ``client`` is given).
        database_name / collection_name: Where sessions live.
        client: A shared ``MongoClient`` to borrow (the factory passes its pool's client).
        metadata_fields: Metadata keys to index (the viewer can filter on indexed fields).
        metadataHook / metadata_hook: Intercepts every metadata operation.
        feedbackHook / feedback_hook: Intercepts every feedback operation.
        **kwargs: ``MongoClient`` options go to the owned client; everything else to Strands.
    """

    def __init__(
        self,
        session_id: str,
        connection_string: str | None = None,
        database_name: str = "database_name",
        collection_name: str = "collection_name",
        client: MongoClient[Any] | None = None,
        metadata_fields: list[str] | None = None,
        metadataHook: OperationHook | None = None,
        feedbackHook: OperationHook | None = None,
        *,
        metadata_hook: OperationHook | None = None,
        feedback_hook: OperationHook | None = None,
        repository: MongoDBSessionRepository | None = None,
        **kwargs: Any,
    ) -> None:
        d.validate_id(session_id, "session")
        client_kwargs, strands_kwargs = split_client_kwargs(kwargs)
        self._owns_repository = repository is None
        if repository is None:
            repository = MongoDBSessionRepository(
                connection_string=connection_string,
                database_name=database_name,
                collection_name=collection_name,
                client=client,
                metadata_fields=metadata_fields,
                **client_kwargs,
            )
        elif metadata_fields:
            repository.ensure_metadata_indexes(metadata_fields)
        self.metadata_fields = list(metadata_fields or [])
        self.metadata_hook = metadata_hook or metadataHook
        self.feedback_hook = feedback_hook or feedbackHook
        self._turn_messages: dict[str, list[Message]] = {}
        self._captured_config: dict[str, tuple[str, str | None]] = {}
        try:
            super().__init__(session_id=session_id, session_repository=repository, **strands_kwargs)
        except SessionAlreadyExistsError:
            # Another manager created the session between our read and our insert: it exists now,
            # so initialising again simply reads it.
            logger.debug("session_id=<%s> | lost a creation race, resuming the session", session_id)
            super().__init__(session_id=session_id, session_repository=repository, **strands_kwargs)
        self.session_repository: MongoDBSessionRepository = repository

    @property
    def repository(self) -> MongoDBSessionRepository:
        return self.session_repository

    def close(self) -> None:
        """Close the MongoDB client if this manager created it (a borrowed client stays open)."""
        if self._owns_repository:
            self.session_repository.close()

    def __enter__(self) -> MongoDBSessionManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- Strands lifecycle ----------------------------------------------------------------------

    def register_hooks(self, registry: HookRegistry, **kwargs: Any) -> None:
        super().register_hooks(registry, **kwargs)
        registry.add_callback(BeforeInvocationEvent, lambda event: self._start_turn(event.agent))
        registry.add_callback(MessageAddedEvent, lambda event: self._record_turn_message(event.agent, event.message))
        registry.add_callback(MessageUpdatedEvent, self._on_message_updated)
        registry.add_callback(AfterInvocationEvent, lambda event: self._finish_turn(event.agent))

    def initialize(self, agent: LocalAgent, **kwargs: Any) -> None:
        super().initialize(agent, **kwargs)
        aid = agent.agent_id
        stored = self.session_repository.take_agent_read(self.session_id, aid)
        if (
            stored is not None
            and self._latest_agent_message.get(aid) is None
            and self.session_repository.count_messages(self.session_id, aid)
        ):
            # Every stored message was trimmed by the conversation manager: continue numbering after
            # the newest stored id instead of restarting at 0 (which would collide).
            self._latest_agent_message[aid] = self.session_repository.read_last_message(self.session_id, aid)
        if stored is not None:
            captured = d.captured_config(stored)
            if captured is not None:
                self._captured_config[aid] = captured
        self._mark_synced_if_unchanged(agent, stored)

    def _mark_synced_if_unchanged(self, agent: LocalAgent, stored: Mapping[str, Any] | None) -> None:
        """Tell Strands' change tracking that the agent as restored (or just created) is already stored.

        Strands writes the agent on its first sync in every manager even when nothing changed; in a
        stateless service that is one wasted write per request. We record the versions only when the
        restored values equal the stored document (or the agent was created from them a moment ago),
        so a real difference is still written. On a Strands version without this tracking the
        optimisation is simply skipped.
        """
        from strands.agent.agent import Agent

        tracking = getattr(self, "_last_synced_internal_state", None)
        if not isinstance(agent, Agent) or not isinstance(tracking, dict):
            return
        conversation_state = agent.conversation_manager.get_state()
        internal = {"interrupt_state": agent._interrupt_state.to_dict(), "model_state": agent._model_state}
        if stored is not None and (
            stored.get(d.STATE) != agent.state.get()
            or stored.get("conversation_manager_state") != conversation_state
            or stored.get(d.INTERNAL_STATE) != internal
        ):
            return
        tracking[agent.agent_id] = {
            "state_version": agent.state._get_version(),
            "interrupt_state_version": agent._interrupt_state._get_version(),
            "conversation_manager_state": copy.deepcopy(conversation_state),
            "model_state": copy.deepcopy(agent._model_state),
        }

    def _start_turn(self, agent: LocalAgent) -> None:
        self._turn_messages[agent.agent_id] = []

    def _record_turn_message(self, agent: LocalAgent, message: Message) -> None:
        self._turn_messages.setdefault(agent.agent_id, []).append(message)

    def _on_message_updated(self, event: MessageUpdatedEvent[Any]) -> None:
        """Store a message the agent replaced after appending it (BidiAgent transcripts)."""
        aid = event.agent.agent_id
        for record in reversed(self._held_records.get(aid, [])):
            if record.message.get("tracking_id") == event.tracking_id:
                record.message = event.message
                self.session_repository.update_message(self.session_id, aid, record)
                return
        logger.warning(
            "session_id=<%s> | agent_id=<%s> | tracking_id=<%s> | updated message was never stored here",
            self.session_id,
            aid,
            event.tracking_id,
        )

    def _finish_turn(self, agent: LocalAgent) -> None:
        """After every invocation: metrics onto the latest assistant message, then agent config."""
        self._capture_metrics(agent)
        self._capture_agent_config(agent)

    def _capture_metrics(self, agent: LocalAgent) -> None:
        aid = agent.agent_id
        turn = self._turn_messages.pop(aid, [])
        target = next(
            (r for r in reversed(self._held_records.get(aid, [])) if r.message.get("role") == "assistant"),
            None,
        )
        event_loop_metrics = getattr(agent, "event_loop_metrics", None)
        if target is None or event_loop_metrics is None or not turn:
            return
        summary = summarize(event_loop_metrics, turn)
        self.session_repository.set_message_metrics(
            self.session_id, aid, target.message_id, summary, totals=totals_increment(summary)
        )

    def _capture_agent_config(self, agent: LocalAgent) -> None:
        model = getattr(agent, "model", None)
        if model is None:
            return
        config = (model_id(model), getattr(agent, "system_prompt", None))
        if self._captured_config.get(agent.agent_id) == config:
            return
        self.session_repository.capture_agent_config(
            self.session_id, agent.agent_id, model=config[0], system_prompt=config[1]
        )
        self._captured_config[agent.agent_id] = config

    # ---- metadata ----------------------------------------------------------------------------------

    def update_metadata(self, metadata: Mapping[str, Any]) -> Any:
        """Set the given keys (``$set metadata.<key>``); other keys stay as they are."""
        if self.metadata_hook:
            return self.metadata_hook(
                self._update_metadata, "update", self.session_id, metadata=metadata, session_manager=self
            )
        return self._update_metadata(metadata)

    def get_metadata(self) -> dict[str, Any]:
        """The session's metadata (``{}`` when none)."""
        if self.metadata_hook:
            return self.metadata_hook(self._get_metadata, "get", self.session_id, session_manager=self)
        return self._get_metadata()

    def delete_metadata(self, metadata_keys: list[str]) -> Any:
        """Remove the given keys (``$unset``)."""
        if self.metadata_hook:
            return self.metadata_hook(
                self._delete_metadata, "delete", self.session_id, keys=metadata_keys, session_manager=self
            )
        return self._delete_metadata(metadata_keys)

    def _update_metadata(self, metadata: Mapping[str, Any]) -> None:
        checked = d.validate_metadata(metadata, session_id=self.session_id)
        if checked:
            self.session_repository.update_session_fields(self.session_id, d.set_metadata_update(checked))

    def _get_metadata(self) -> dict[str, Any]:
        doc = self.session_repository.read_session_fields(self.session_id, d.METADATA_PROJECTION)
        return dict(doc.get(d.METADATA) or {})

    def _delete_metadata(self, metadata_keys: list[str]) -> None:
        if isinstance(metadata_keys, str):
            metadata_keys = [metadata_keys]
        keys = [d.validate_metadata_key(k, session_id=self.session_id) for k in metadata_keys]
        if keys:
            self.session_repository.update_session_fields(self.session_id, d.unset_metadata_update(keys))

    def get_metadata_tool(
        self, protected_keys: frozenset[str] = PROTECTED_METADATA_KEYS
    ) -> DecoratedFunctionTool[..., str]:
        """A ``manage_metadata`` tool bound to this session, for ``Agent(tools=[...])``."""
        return build_metadata_tool(self, protected_keys)

    # ---- feedback ------------------------------------------------------------------------------------

    def add_feedback(self, feedback: Mapping[str, Any]) -> Any:
        """Append ``{"rating": "up"|"down"|None, "comment": str}`` with a UTC ``created_at``."""
        if self.feedback_hook:
            return self.feedback_hook(
                self._add_feedback, "add", self.session_id, feedback=feedback, session_manager=self
            )
        return self._add_feedback(feedback)

    def _add_feedback(self, feedback: Mapping[str, Any]) -> None:
        entry = self._validated_feedback(feedback)
        self.session_repository.update_session_fields(self.session_id, d.push_feedback_update(entry))

    def _validated_feedback(self, feedback: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(feedback, Mapping):
            raise InvalidFeedbackError(
                f"feedback must be a mapping, got {type(feedback).__name__}", session_id=self.session_id
            )
        rating = feedback.get("rating")
        if rating not in VALID_RATINGS:
            raise InvalidFeedbackError(
                f"rating must be 'up', 'down' or None, got {rating!r}", session_id=self.session_id
            )
        comment = feedback.get("comment", "")
        if comment is not None and not isinstance(comment, str):
            raise InvalidFeedbackError("comment must be a string", session_id=self.session_id)
        extra = {k: v for k, v in feedback.items() if k not in ("rating", "comment", "created_at")}
        entry = {**extra, "rating": rating, "comment": comment or "", "created_at": d.now()}
        try:
            for key in extra:
                d.validate_metadata_key(key, session_id=self.session_id)
            d.ensure_encodable(entry, what="feedback", session_id=self.session_id)
        except ValueError as exc:
            raise InvalidFeedbackError(f"feedback refused: {exc}", session_id=self.session_id) from exc
        return entry

    def get_feedbacks(self) -> list[dict[str, Any]]:
        doc = self.session_repository.read_session_fields(self.session_id, d.FEEDBACKS_PROJECTION)
        return list(doc.get(d.FEEDBACKS) or [])

    # ---- agent configuration, counts, password ----------------------------------------------------------

    def get_agent_config(self, agent_id: str) -> dict[str, Any] | None:
        """``{agent_id, model, system_prompt, ...}`` for one agent, or None if it does not exist."""
        return next((a for a in self.list_agents() if a["agent_id"] == agent_id), None)

    def update_agent_config(self, agent_id: str, model: str | None = None, system_prompt: str | None = None) -> None:
        """Override the stored model / system prompt (kept until the agent's own config changes)."""
        d.validate_id(agent_id, "agent", session_id=self.session_id)
        update = d.agent_config_update(agent_id, model=model, system_prompt=system_prompt)
        self.session_repository.update_agent_fields(self.session_id, agent_id, update)

    def list_agents(self) -> list[dict[str, Any]]:
        """Every agent of the session with its config and message count (no messages)."""
        rows = self.session_repository.aggregate_session(self.session_id, d.list_agents_pipeline(self.session_id))
        # model / system_prompt are always present (None until the agent's first invocation records them).
        return [{d.MODEL: None, d.SYSTEM_PROMPT: None, **row} for row in rows]

    def get_message_count(self, agent_id: str | None = None) -> int:
        """Messages stored for one agent, or for the whole session; counted by the server."""
        return self.session_repository.count_messages(self.session_id, agent_id)

    def get_session_viewer_password(self) -> str:
        """The password that opens this session (only) in the Session Viewer. Never logged."""
        return self.session_repository.read_viewer_password(self.session_id)
