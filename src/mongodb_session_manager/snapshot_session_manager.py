"""``MongoDBSnapshotSessionManager``: Strands' ``SnapshotSessionManager`` with this library's session features.

Strands' manager keeps the whole snapshot lifecycle (restore on init, save latest, immutable
checkpoints, redaction flush, Graph/Swarm latest state, BidiAgent); :class:`.MongoDBStorage` puts
the snapshots into the session document. This class adds, by composition, what users choose the
library for: metadata (and its tool and hooks), feedback (and hooks), per-turn metrics, agent config,
message counts and the viewer password. Session-level writes go through a
:class:`.MongoDBSessionRepository` pointed at the same collection; the snapshot-specific updates
(turn metrics, creating the document) come from :mod:`.documents_snapshot`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from pymongo import AsyncMongoClient, MongoClient
from strands.hooks import AfterInvocationEvent, BeforeInvocationEvent, HookRegistry, MessageAddedEvent
from strands.session.snapshot_session_manager import SnapshotSessionManager

from . import documents as d
from . import documents_indexes as dx
from . import documents_snapshot as ds
from . import documents_snapshot_features as dsf
from .driver_errors import translate_errors
from .errors import AgentNotFoundError, InvalidInputError
from .hooks.contract import OperationHook
from .manager_features import SessionLevelFeatures
from .metrics import model_id, summarize, totals_increment
from .mongodb_session_repository import MongoDBSessionRepository
from .storage import MongoDBStorage

if TYPE_CHECKING:
    from strands.types.agent import LocalAgent
    from strands.types.content import Message

logger = logging.getLogger(__name__)


class MongoDBSnapshotSessionManager(SessionLevelFeatures, SnapshotSessionManager):
    """Strands' snapshot session manager on MongoDB, plus metadata, feedback, metrics and the viewer.

    Args:
        session_id: The conversation; its document has the same ``_id`` as on the message-log path.
        storage: A :class:`.MongoDBStorage` to share (the factory passes one per collection).
            Without it one is built from ``connection_string`` / ``client``.
        connection_string / database_name / collection_name / client: Where sessions live.
        metadata_fields: Metadata keys to index (the viewer filters on indexed fields).
        metadataHook / metadata_hook, feedbackHook / feedback_hook: Intercept every metadata /
            feedback operation, with the same signature as on ``MongoDBSessionManager``.
        application_name: Recorded on the session when it is created (never changed afterwards).
        **kwargs: Strands' options (``save_latest_on``, ``snapshot_trigger``, ...).
    """

    def __init__(
        self,
        session_id: str,
        storage: MongoDBStorage | None = None,
        connection_string: str | None = None,
        database_name: str = "database_name",
        collection_name: str = "collection_name",
        client: MongoClient[Any] | AsyncMongoClient[Any] | None = None,
        metadata_fields: list[str] | None = None,
        metadataHook: OperationHook | None = None,
        feedbackHook: OperationHook | None = None,
        *,
        metadata_hook: OperationHook | None = None,
        feedback_hook: OperationHook | None = None,
        application_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        d.validate_id(session_id, "session")
        self.application_name = d.validate_application_name(application_name)
        metadata_fields = dx.metadata_field_list(metadata_fields)  # before a client is created
        self._owns_storage = storage is None
        if storage is None:
            storage = MongoDBStorage(connection_string, database_name, collection_name, client)
        super().__init__(session_id, storage=storage, **kwargs)
        self.mongodb_storage: MongoDBStorage = storage
        self.repository = MongoDBSessionRepository(
            client=storage.sync_client,
            database_name=storage.database_name,
            collection_name=storage.collection_name,
            metadata_fields=metadata_fields,
        )
        self.metadata_fields = metadata_fields  # checked (a new list) above
        self.metadata_hook = metadata_hook or metadataHook
        self.feedback_hook = feedback_hook or feedbackHook
        self._turn_messages: dict[str, list[Message]] = {}
        self._session_ensured = False

    def close(self) -> None:
        """Close the storage's clients if this manager created the storage (a shared one stays open)."""
        if self._owns_storage:
            self.mongodb_storage.close()

    def __enter__(self) -> MongoDBSnapshotSessionManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- Strands lifecycle ----------------------------------------------------------------------

    def register_hooks(self, registry: HookRegistry, **kwargs: Any) -> None:
        """Strands' snapshot hooks first (the latest snapshot is saved), then one write for the turn's metrics."""
        super().register_hooks(registry, **kwargs)
        registry.add_callback(BeforeInvocationEvent, lambda event: self._start_turn(event.agent))
        registry.add_callback(MessageAddedEvent, lambda event: self._record_turn_message(event.agent, event.message))
        registry.add_callback(AfterInvocationEvent, self._finish_turn)

    def _start_turn(self, agent: LocalAgent) -> None:
        self._turn_messages[agent.agent_id] = []

    def _record_turn_message(self, agent: LocalAgent, message: Message) -> None:
        # Only inside an invocation: a BidiAgent adds messages without one and must not grow a list forever.
        turn = self._turn_messages.get(agent.agent_id)
        if turn is not None:
            turn.append(message)

    async def _finish_turn(self, event: AfterInvocationEvent) -> None:
        """Metrics of the turn (on the index of its last message), running totals and the agent's config.

        One pipeline update after Strands saved the snapshot; it also creates the document's feature
        fields, and it runs on the storage's client for this loop, so the event loop never blocks.
        """
        agent = event.agent
        aid = agent.agent_id
        turn = self._turn_messages.pop(aid, [])
        event_loop_metrics = getattr(agent, "event_loop_metrics", None)
        metrics = None
        totals = None
        if event_loop_metrics is not None and any(m.get("role") == "assistant" for m in turn):
            summary = summarize(event_loop_metrics, turn)
            # The position in the whole conversation (trimmed messages counted), so it still points at
            # the same message after the conversation manager trims older ones.
            position = _removed_message_count(agent) + len(agent.messages) - 1
            metrics = {ds.MESSAGE_INDEX: position, **summary, d.CREATED_AT: d.now()}
            totals = totals_increment(summary)
        model = getattr(agent, "model", None)
        config = (model_id(model), _prompt_text(getattr(agent, "system_prompt", None))) if model else None
        if metrics is None and config is None:
            return
        update = dsf.turn_pipeline(
            self.session_id,
            aid,
            application_name=self.application_name,
            metrics=metrics,
            totals=totals,
            config=config,
            at=d.now(),
        )
        await self.mongodb_storage.update_session_document(self.session_id, update)

    async def delete_session(self) -> None:
        """Strands' deletion of every snapshot and stash key, then the session document itself."""
        await super().delete_session()
        await self.mongodb_storage.delete_session_keys(self.session_id)
        await self.mongodb_storage.delete_session_document(self.session_id)

    # ---- the session document -------------------------------------------------------------------

    def _ensure_session(self) -> None:
        """Create the document (base fields, viewer password) if no snapshot has been saved yet."""
        if self._session_ensured:
            return
        with translate_errors(self.session_id):
            self.repository.collection.update_one(
                ds.session_filter(self.session_id),
                dsf.ensure_session_pipeline(self.session_id, self.application_name),
                upsert=True,
            )
        self._session_ensured = True

    # ---- agent configuration, counts, metrics, password -----------------------------------------------

    def list_agents(self) -> list[dict[str, Any]]:
        """Every agent with a latest snapshot: id, ``model``, ``system_prompt``, ``message_count``, ``totals``.

        Read with a server-side projection: no message is sent back.
        """
        self._ensure_session()
        return self.repository.list_snapshot_agents(self.session_id)

    def get_agent_config(self, agent_id: str) -> dict[str, Any] | None:
        return next((a for a in self.list_agents() if a["agent_id"] == agent_id), None)

    def update_agent_config(self, agent_id: str, model: str | None = None, system_prompt: str | None = None) -> None:
        """Override the stored model / system prompt (kept until the agent's own config changes).

        As on the message-log path: a value that is not a string is ``InvalidInputError``, an agent
        without a saved snapshot ``AgentNotFoundError`` (an override of nothing would never show).
        """
        for name, value in (("model", model), ("system_prompt", system_prompt)):
            if value is not None and not isinstance(value, str):
                raise InvalidInputError(
                    f"{name} must be a string, got {type(value).__name__}", session_id=self.session_id
                )
        self._require_agent(agent_id)
        self.repository.override_snapshot_agent_config(
            self.session_id, agent_id, model=model, system_prompt=system_prompt
        )

    def get_message_count(self, agent_id: str | None = None) -> int:
        """Messages in the latest snapshot of one agent, or of all agents (counted when saved); an agent
        without a saved snapshot is ``AgentNotFoundError``, as on the message-log path."""
        rows = self.list_agents()
        if agent_id is None:
            return sum(int(r["message_count"]) for r in rows)
        for row in rows:
            if row["agent_id"] == agent_id:
                return int(row["message_count"])
        raise AgentNotFoundError(f"agent {agent_id!r:.80} has no saved snapshot", session_id=self.session_id)

    def _require_agent(self, agent_id: str) -> None:
        if self.get_agent_config(agent_id) is None:
            raise AgentNotFoundError(f"agent {agent_id!r:.80} has no saved snapshot", session_id=self.session_id)

    def get_turn_metrics(self, agent_id: str) -> list[dict[str, Any]]:
        """The per-turn metrics of one agent, oldest first.

        ``message_index`` is the position of the turn's last message in the whole conversation,
        counting messages the conversation manager has trimmed since (its ``removed_message_count``).
        """
        self._ensure_session()
        return self.repository.get_snapshot_turn_metrics(self.session_id, agent_id)

    def _session_features_store(self) -> MongoDBSessionRepository:
        return self.repository


def _removed_message_count(agent: Any) -> int:
    """Messages the conversation manager has trimmed so far (0 for managers that keep everything)."""
    manager = getattr(agent, "conversation_manager", None)
    return int(getattr(manager, "removed_message_count", 0) or 0)


def _prompt_text(system_prompt: Any) -> str | None:
    """The system prompt as the viewer shows it: a string, or the text of its content blocks."""
    if system_prompt is None or isinstance(system_prompt, str):
        return system_prompt
    if isinstance(system_prompt, list):
        return "".join(b.get("text", "") for b in system_prompt if isinstance(b, dict)) or None
    return str(system_prompt)
