"""Data lifecycle on :class:`~.mongodb_session_manager.MongoDBSessionManager`: retention, export, redaction.

- **Retention**: ``retention_days=`` (manager or factory) gives the session an ``expires_at`` date,
  counted from when a manager opened it; MongoDB's TTL index deletes it then. ``set_retention``
  sets this session's own retention (it wins over the default), ``set_legal_hold`` exempts it
  (no expiry date at all), releasing the hold restores the expiry. ``purge_messages`` removes the
  transcripts and keeps metadata, feedback and totals.
- **Export / import**: ``export_session()`` returns the one export format (see :mod:`.portable`),
  ``import_session(data)`` stores such an export into this manager's collection.
- **Redaction**: a ``redactor`` (see :mod:`.redaction`) sees each message, metadata value and
  feedback comment before it is stored. A message is redacted *in place*, in the agent's history
  too: what the agent remembers is what a restore in another process would give it, so the
  conversation never differs between the two. The counts of what fired are added to the session's
  ``redactions`` after the invocation (one update, only when something fired).

Every method passes values to a named repository method (:mod:`.repository_lifecycle`); none builds a query.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from strands.hooks import AfterInvocationEvent

from .blocking_io import run_blocking
from .errors import SessionStoreError
from .redaction import FEEDBACK_COMMENT, MESSAGE, METADATA, Redactor, apply_redactor

if TYPE_CHECKING:
    from strands.hooks import HookRegistry
    from strands.types.agent import LocalAgent
    from strands.types.content import Message

    from .mongodb_session_repository import MongoDBSessionRepository

logger = logging.getLogger(__name__)


class LifecycleFeaturesMixin:
    """Mixin for ``MongoDBSessionManager``; placed before the features mixin so its overrides wrap them."""

    if TYPE_CHECKING:
        session_id: str
        session_repository: MongoDBSessionRepository

    def _init_lifecycle_features(self, *, retention_days: float | int | None, redactor: Redactor | None) -> None:
        if redactor is not None and not callable(redactor):
            raise TypeError(f"redactor must be callable, got {type(redactor).__name__}")
        self.retention_days = retention_days
        self.redactor = redactor
        self._pending_redactions: Counter[str] = Counter()
        #: The message redacted last: a message the lifecycle hands over twice is redacted once.
        self._last_redacted: Message | None = None

    def _apply_default_retention(self) -> None:
        """After the session is opened: its expiry counted again from now (one update), if a default is set."""
        if self.retention_days is not None:
            self.session_repository.apply_default_retention(self.session_id, self.retention_days)

    # ---- retention ---------------------------------------------------------------------------------------

    def set_retention(self, days: float | int | None) -> None:
        """Keep this session ``days`` days from now (``None``: until deleted); wins over ``retention_days``."""
        self.session_repository.set_retention(self.session_id, days)

    def get_retention(self) -> dict[str, Any]:
        """``{retention_days, retention_explicit, expires_at, legal_hold}``."""
        return self.session_repository.get_retention(self.session_id)

    def set_legal_hold(self, held: bool = True) -> None:
        """Exempt the session from expiry (``held=False`` releases it and restores the expiry)."""
        self.session_repository.set_legal_hold(self.session_id, held)

    def release_legal_hold(self) -> None:
        self.set_legal_hold(False)

    def purge_messages(self, keep_feedback: bool = True) -> None:
        """Remove every agent's messages from storage; metadata, totals, state and feedback stay.

        Agents already in memory keep their history until they are restored again; the message ids
        continue where they were. ``keep_feedback=False`` removes the feedback entries too.
        """
        self.session_repository.purge_messages(self.session_id, keep_feedback=keep_feedback)

    # ---- export / import -------------------------------------------------------------------------------------

    def export_session(self) -> dict[str, Any]:
        """This session as plain JSON: the format the Session Viewer exports (see :mod:`.portable`)."""
        return self.session_repository.export_session(self.session_id)

    def import_session(self, data: object, overwrite: bool = False, *, session_id: str | None = None) -> str:
        """Store an export in this manager's collection, under its own id (or ``session_id``); return the id.

        This manager's own session is not changed unless the export carries its id (then
        ``overwrite=True`` is needed, as the manager created it already). Build a new manager for
        the imported id to resume its agents.
        """
        return self.session_repository.import_session(data, overwrite=overwrite, session_id=session_id)

    # ---- redaction ------------------------------------------------------------------------------------------

    def get_redactions(self) -> dict[str, int]:
        """``{rule: count}`` of what the redactor replaced in this session (stored counts only)."""
        return self.session_repository.get_redactions(self.session_id)

    def _redact(self, value: Any, kind: str) -> Any:
        if self.redactor is None:
            return value
        redacted, counts = apply_redactor(self.redactor, value, kind)
        self._pending_redactions.update(counts)
        return redacted

    def _redact_message(self, message: Message) -> Message:
        """The message to store, redacted in place (the agent's history holds the same object).

        Called where a message is numbered (``_add`` and agent creation in the lifecycle).
        """
        if self.redactor is None or message is self._last_redacted:
            return message
        redacted = self._redact(message, MESSAGE)
        if redacted != message:
            message.clear()
            message.update(redacted)
        self._last_redacted = message
        return message

    def _merge_into_previous_user_message(self, agent: LocalAgent, turn: Any, message: Message) -> bool:
        """A prompt merged into the previous user message (the lifecycle's role repair) is redacted first."""
        self._redact_message(message)
        merged: bool = super()._merge_into_previous_user_message(agent, turn, message)  # type: ignore[misc]
        return merged

    async def _on_message_updated(self, event: Any) -> None:
        """A message the agent replaced after appending it (BidiAgent) is redacted before it is stored."""
        self._redact_message(event.message)
        await super()._on_message_updated(event)  # type: ignore[misc]

    def _update_metadata(self, metadata: Mapping[str, Any]) -> None:
        if self.redactor is not None and isinstance(metadata, Mapping):
            metadata = {key: self._redact(value, METADATA) for key, value in metadata.items()}
        super()._update_metadata(metadata)  # type: ignore[misc]
        self.flush_redactions()

    def _add_feedback(self, feedback: Mapping[str, Any]) -> None:
        if self.redactor is not None and isinstance(feedback, Mapping) and isinstance(feedback.get("comment"), str):
            feedback = {**feedback, "comment": self._redact(feedback["comment"], FEEDBACK_COMMENT)}
        super()._add_feedback(feedback)  # type: ignore[misc]
        self.flush_redactions()

    def flush_redactions(self) -> None:
        """Add the counts gathered since the last flush to the session (one update, none if nothing fired)."""
        if not self._pending_redactions:
            return
        counts = dict(self._pending_redactions)
        self.session_repository.record_redactions(self.session_id, counts)
        self._pending_redactions.subtract(counts)
        self._pending_redactions = +self._pending_redactions

    # ---- async twins (the library's thread pool, as in manager_async) ----------------------------------

    async def aset_retention(self, days: float | int | None) -> None:
        await run_blocking(self.set_retention, days)

    async def aget_retention(self) -> dict[str, Any]:
        return await run_blocking(self.get_retention)

    async def aset_legal_hold(self, held: bool = True) -> None:
        await run_blocking(self.set_legal_hold, held)

    async def apurge_messages(self, keep_feedback: bool = True) -> None:
        await run_blocking(self.purge_messages, keep_feedback)

    async def aexport_session(self) -> dict[str, Any]:
        return await run_blocking(self.export_session)

    async def aimport_session(self, data: object, overwrite: bool = False, *, session_id: str | None = None) -> str:
        return await run_blocking(lambda: self.import_session(data, overwrite, session_id=session_id))

    async def aget_redactions(self) -> dict[str, int]:
        return await run_blocking(self.get_redactions)

    # ---- hooks --------------------------------------------------------------------------------------------

    def initialize(self, agent: LocalAgent, **kwargs: Any) -> None:
        super().initialize(agent, **kwargs)  # type: ignore[misc]
        # An agent created with a history: its messages were redacted just now. On the async paths the
        # counts wait for the first invocation's end (or close), so building the Agent sends nothing.
        if not getattr(self, "_defer_agent_creation", False):
            self.flush_redactions()

    def register_hooks(self, registry: HookRegistry, **kwargs: Any) -> None:
        """Registered first so it runs last: ``AfterInvocationEvent`` runs after the turn's commit."""
        registry.add_callback(AfterInvocationEvent, self._flush_redactions_after_invocation)
        super().register_hooks(registry, **kwargs)  # type: ignore[misc]

    async def _flush_redactions_after_invocation(self, event: AfterInvocationEvent) -> None:
        if not self._pending_redactions:
            return
        try:
            await run_blocking(self.flush_redactions)
        except SessionStoreError as exc:
            # The turn itself is stored; failing the invocation now would make the caller retry it.
            # The counts stay pending and go with the next flush.
            logger.warning("session_id=<%s> | redaction counts not recorded yet: %s", self.session_id, exc)
