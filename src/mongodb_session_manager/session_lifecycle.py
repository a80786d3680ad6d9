"""The Strands lifecycle of :class:`~.mongodb_session_manager.MongoDBSessionManager`: restore, turns.

Strands' ``RepositorySessionManager`` writes every message the moment it is added. When a model
call fails half way, the prompt (and maybe a tool call) stays stored and in memory, and the next
request sends two user messages in a row, which providers refuse: one error breaks the session
for good. Two processes answering the same session interleave their messages the same way.

This mixin changes the unit of storage from a message to a *turn* (one invocation):

- ``BeforeInvocationEvent`` takes a lease on (session, agent) in MongoDB, judged by the server's
  clock; a second invocation waits up to ``busy_timeout`` and then gets ``SessionBusyError`` before
  writing anything. The lease is renewed while a long turn runs and expires when its holder dies.
- Messages added during the turn are kept in memory.
- ``AfterInvocationEvent`` stores the turn in one update (messages, metrics, agent state, lease
  released). A turn that failed is rolled back in memory and nothing of it is stored.
- A restore reads the agent and its message window in one round trip, and moves an unfinished
  trailing turn (written by older versions or other tools) out of the history.

So a plain turn costs two round trips (lease, commit) and never leaves a broken history.
Callbacks that do I/O are coroutines run in a small thread pool, so an async service's event loop
never blocks on MongoDB, and Strands' synchronous ``agent()`` (which runs its own loop in a
thread) works the same way.

This module holds the hooks, the restore and the numbering of messages (held in a turn, or stored
at once outside one); the turn itself (lease, renewal, commit, rollback) is
:class:`~.session_turns.SessionTurnsMixin`, which :class:`SessionLifecycleMixin` inherits.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from strands.agent.state import AgentState
from strands.hooks import (
    AfterInvocationEvent,
    AfterMultiAgentInvocationEvent,
    AfterNodeCallEvent,
    AgentInitializedEvent,
    BeforeInvocationEvent,
    HookRegistry,
    MessageAddedEvent,
    MultiAgentInitializedEvent,
)
from strands.types.exceptions import SessionException
from strands.types.session import SessionAgent, SessionMessage

from . import documents as d
from . import strands_compat as compat
from .blocking_io import run_blocking
from .errors import AgentAlreadyExistsError, SessionStoreError
from .held_records import HeldRecords
from .session_turns import SessionTurnsMixin
from .turns import LeaseWait, MessagesOf, Turn, closes_turn, has_tool_blocks, join_user_runs, unfinished_tail

if TYPE_CHECKING:
    from strands.types.agent import LocalAgent
    from strands.types.content import Message

    from .mongodb_session_repository import MongoDBSessionRepository
    from .repository_restore import RestoredAgent

logger = logging.getLogger(__name__)

#: Default lease length: how long others wait after the holder of a turn died without releasing it.
DEFAULT_TURN_LEASE_SECONDS = 20.0
#: Default wait for another invocation of the same agent before ``SessionBusyError``.
DEFAULT_BUSY_TIMEOUT = 5.0


class SessionLifecycleMixin(SessionTurnsMixin):
    """Restore and turn handling; mixed into ``MongoDBSessionManager`` before Strands' manager.

    The turn's lease, commit and rollback are inherited from :class:`~.session_turns.SessionTurnsMixin`;
    ``_init_lifecycle`` sets the state both work on.
    """

    session_id: str
    session_repository: MongoDBSessionRepository
    _latest_agent_message: dict[str, SessionMessage | None]
    #: Strands' own ``initialize`` (agents other than ``Agent``) stores plain lists here.
    _held_records: dict[str, HeldRecords | list[SessionMessage]]
    _is_new_session: bool
    #: The redactor's hook (``manager_lifecycle``): the message to store, called where a message is numbered.
    _redact_message: Callable[[Message], Message]

    def _init_lifecycle(self, *, turn_lease_seconds: float, busy_timeout: float) -> None:
        if not turn_lease_seconds > 0:
            raise ValueError(f"turn_lease_seconds must be positive, got {turn_lease_seconds!r}")
        if not busy_timeout >= 0:
            raise ValueError(f"busy_timeout must be zero or positive, got {busy_timeout!r}")
        self.turn_lease_seconds = float(turn_lease_seconds)
        self.busy_timeout = float(busy_timeout)
        self._turns: dict[str, Turn] = {}
        self._next_ids: dict[str, int] = {}
        self._captured_config: dict[str, tuple[str, str | None]] = {}
        self._prefetched: dict[str, RestoredAgent | None] = {}
        self._prefetched_all = False
        #: Agents created in memory but not yet in MongoDB (async managers write them with the first turn).
        self._unsaved_agents: dict[str, list[SessionMessage]] = {}
        self._defer_agent_creation = False
        # Unfinished tails a restore on the async paths cut but has not moved aside yet: the first write
        # of the agent moves them (off the event loop), so building the Agent sends nothing.
        self._pending_set_aside: dict[str, tuple[list[SessionMessage], int]] = {}
        self._owner = f"{socket.gethostname()}:{os.getpid()}"

    # ---- hooks -------------------------------------------------------------------------------------

    def register_hooks(self, registry: HookRegistry, **kwargs: Any) -> None:
        """Strands' session hooks, with messages held per turn and the turn's lease and commit."""
        registry.add_callback(AgentInitializedEvent, lambda event: self.initialize(event.agent))
        registry.add_callback(BeforeInvocationEvent, self._on_before_invocation)
        registry.add_callback(MessageAddedEvent, self._on_message_added)
        registry.add_callback(MessageAddedEvent, lambda event: self.sync_agent(event.agent))
        if compat.MessageUpdatedEvent is not None:
            registry.add_callback(compat.MessageUpdatedEvent, self._on_message_updated)
        # AfterInvocationEvent runs callbacks in reverse order: the commit runs before this sync,
        # which then finds nothing changed (it only writes for agents outside a turn).
        registry.add_callback(AfterInvocationEvent, lambda event: self.sync_agent(event.agent))
        registry.add_callback(AfterInvocationEvent, self._on_after_invocation)
        registry.add_callback(MultiAgentInitializedEvent, lambda event: self.initialize_multi_agent(event.source))
        registry.add_callback(AfterNodeCallEvent, self._on_multi_agent_progress)
        registry.add_callback(AfterMultiAgentInvocationEvent, self._on_multi_agent_progress)

    async def _on_before_invocation(self, event: BeforeInvocationEvent) -> None:
        if not compat.is_agent(event.agent):
            return
        wait = LeaseWait()
        try:
            await run_blocking(self._begin_turn, event.agent, wait)
        except asyncio.CancelledError:
            # Cancelled while the thread takes the lease: no AfterInvocation will come to release it.
            if wait.give_up():
                await asyncio.shield(run_blocking(self._abandon_turn, event.agent))
            raise

    async def _on_multi_agent_progress(self, event: AfterNodeCallEvent | AfterMultiAgentInvocationEvent) -> None:
        # Strands awaits these in a graph's or swarm's invoke_async: the write runs off the event loop.
        await run_blocking(self.sync_multi_agent, event.source)

    async def _on_after_invocation(self, event: AfterInvocationEvent) -> None:
        turn = self._turns.get(event.agent.agent_id)
        if turn is not None and turn.lease_token is not None:
            await run_blocking(self._end_turn, event.agent, turn, getattr(event, "result", None))

    async def _on_message_updated(self, event: Any) -> None:
        """Store a message the agent replaced after appending it (BidiAgent transcripts)."""
        aid = event.agent.agent_id
        turn = self._turns.get(aid)
        for record in reversed(self._held_records.get(aid, [])):
            if record.message.get("tracking_id") == event.tracking_id:
                record.message = event.message
                if turn is None or not any(r is record for r in turn.pending):
                    await run_blocking(self.session_repository.update_message, self.session_id, aid, record)
                return
        logger.warning(
            "session_id=<%s> | agent_id=<%s> | tracking_id=<%s> | updated message was never stored here",
            self.session_id,
            aid,
            event.tracking_id,
        )

    # ---- restore -------------------------------------------------------------------------------------

    def initialize(self, agent: LocalAgent, **kwargs: Any) -> None:
        """Restore the agent (one round trip), or create it with its initial messages (one or two)."""
        aid = agent.agent_id
        if not compat.is_agent(agent):
            super().initialize(agent, **kwargs)  # type: ignore[misc]
            latest = self._latest_agent_message.get(aid)
            if latest is None and not self._is_new_session:
                latest = self.session_repository.read_last_message(self.session_id, aid)
            self._next_ids[aid] = latest.message_id + 1 if latest is not None else 0
            return
        if aid in self._latest_agent_message:
            raise SessionException("The `agent_id` of an agent must be unique in a session.")
        self._latest_agent_message[aid] = None
        if self._is_new_session:
            restored = None
        elif aid in self._prefetched or self._prefetched_all:
            restored = self._prefetched.pop(aid, None)
        else:
            restored = self.session_repository.restore_agent(self.session_id, aid)
        if restored is None and self._defer_agent_creation:
            self._hold_new_agent(agent)
        elif restored is None:
            try:
                self._create_agent(agent)
            except AgentAlreadyExistsError:
                # Another request created this agent between our read and our write: resume it instead.
                logger.debug("session_id=<%s> | agent_id=<%s> | lost a creation race, restoring", self.session_id, aid)
                restored = self.session_repository.restore_agent(self.session_id, aid)
                if restored is None:
                    raise
        if restored is not None:
            self._apply_restore(agent, restored)
        self._is_new_session = False

    def prefetch_agents(self) -> None:
        """Read every agent of the session with its message window now (one round trip).

        An ``Agent`` built on this manager afterwards restores from what was read, with no I/O of
        its own: what an async service does off the event loop before ``Agent(session_manager=...)``.
        Agents that do not exist yet are then created in MongoDB together with their first turn.
        """
        if self._is_new_session:
            self._take_prefetched({})
            return
        exists, agents = self.session_repository.restore_agents(self.session_id)
        if not exists:
            raise SessionException(f"session {self.session_id!r} vanished while it was being read")
        self._take_prefetched(agents)

    def _take_prefetched(self, agents: Mapping[str, RestoredAgent], *, defer: bool = True) -> None:
        """Restore agents from ``agents`` (all the session has); ``defer``: create new ones with their
        first turn (the async paths) instead of when the ``Agent`` is built."""
        self._defer_agent_creation = defer
        self._prefetched.update(agents)
        self._prefetched_all = True

    def _hold_new_agent(self, agent: LocalAgent) -> None:
        """Create a new agent in memory only; ``_begin_turn`` stores it (off the event loop)."""
        aid = agent.agent_id
        initial = [SessionMessage.from_message(self._redact_message(m), i) for i, m in enumerate(agent.messages)]
        self._unsaved_agents[aid] = initial
        self._next_ids[aid] = len(initial)
        self._held_records[aid] = HeldRecords.of(initial)
        self._latest_agent_message[aid] = initial[-1] if initial else None

    def _save_held_agent(self, agent: LocalAgent) -> None:
        initial = self._unsaved_agents.pop(agent.agent_id, None)
        if initial is None:
            return
        try:
            self.session_repository.create_agent(self.session_id, SessionAgent.from_agent(agent))
            self.session_repository.append_messages(self.session_id, agent.agent_id, initial)
        except AgentAlreadyExistsError:
            # Another request created it first: continue from what it stored.
            restored = self.session_repository.restore_agent(self.session_id, agent.agent_id)
            if restored is None:
                raise
            self._apply_restore(agent, restored)
            return
        compat.mark_synced(self, agent)

    def _create_agent(self, agent: LocalAgent) -> None:
        aid = agent.agent_id
        logger.debug("session_id=<%s> | agent_id=<%s> | creating agent", self.session_id, aid)
        self.session_repository.create_agent(self.session_id, SessionAgent.from_agent(agent))
        initial = [SessionMessage.from_message(self._redact_message(m), i) for i, m in enumerate(agent.messages)]
        self.session_repository.append_messages(self.session_id, aid, initial)
        self._next_ids[aid] = len(initial)
        self._held_records[aid] = HeldRecords.of(initial)
        self._latest_agent_message[aid] = initial[-1] if initial else None
        compat.mark_synced(self, agent)

    def _apply_restore(self, agent: LocalAgent, restored: RestoredAgent) -> None:
        """Put the stored agent into ``agent``: state, conversation manager, messages (without a broken tail)."""
        aid = agent.agent_id
        stored = restored.agent
        agent.state = AgentState(stored.state)
        stored.initialize_internal_state(agent)
        prepend: list[Message] = (
            agent.conversation_manager.restore_from_session(stored.conversation_manager_state) or []
        )  # type: ignore[attr-defined]
        records = restored.messages
        tool_blocks = restored.tool_blocks or any(has_tool_blocks(m) for m in prepend)
        offset = compat.removed_message_count(agent)
        if offset != restored.offset:  # a conversation manager that keeps its offset elsewhere
            records = self.session_repository.list_messages(self.session_id, aid, offset=offset)
            tool_blocks = True
        records = self._without_unfinished_turn(agent, records, restored.next_message_id)
        self._next_ids[aid] = restored.next_message_id
        held = self._held_records[aid] = HeldRecords.of(records)
        self._latest_agent_message[aid] = held.last()
        if not compat.model_is_stateful(agent):
            messages = prepend + held.messages()
            # Strands' repair walks every message for unanswered tool calls; a history read without
            # a single tool block (the raw bytes said so) has none to repair.
            agent.messages = join_user_runs(compat.fix_broken_tool_use(self, messages)) if tool_blocks else messages
        captured = d.captured_config(restored.raw)
        if captured is not None:
            self._captured_config[aid] = captured
        self._mark_synced_if_unchanged(agent, restored.raw)

    def _without_unfinished_turn(
        self, agent: LocalAgent, records: list[SessionMessage], next_message_id: int
    ) -> list[SessionMessage]:
        """Drop (and move aside in storage) a trailing turn that never finished."""
        cut = unfinished_tail(MessagesOf(records), interrupted=compat.interrupt_activated(agent))
        if cut is None:
            return records
        tail = records[cut:]
        if self._defer_agent_creation:  # the async paths: moved by the agent's first write (_set_aside_pending)
            self._pending_set_aside[agent.agent_id] = (tail, next_message_id)
            moved: bool | str = "with the first write"
        else:
            moved = self.session_repository.set_aside_messages(
                self.session_id, agent.agent_id, tail, next_message_id=next_message_id
            )
        logger.warning(
            "session_id=<%s> | agent_id=<%s> | message_ids=<%d..%d> | moved=<%s> | restored history ended in an "
            "unfinished turn; it is kept in abandoned_messages and not sent to the model",
            self.session_id,
            agent.agent_id,
            tail[0].message_id,
            tail[-1].message_id,
            moved,
        )
        return records[:cut]

    def _set_aside_pending(self, aid: str) -> None:
        """Move aside the unfinished tail an async restore cut, before anything else of the agent is
        stored (a failure leaves it pending, and the caller gets the typed error)."""
        pending = self._pending_set_aside.get(aid)
        if pending is None:
            return
        tail, next_message_id = pending
        self.session_repository.set_aside_messages(self.session_id, aid, tail, next_message_id=next_message_id)
        del self._pending_set_aside[aid]

    def _held_by_turn(self, aid: str, record: SessionMessage) -> bool:
        """Whether ``record`` is a message of the agent's running turn (stored by its commit, not yet)."""
        turn = self._turns.get(aid)
        return turn is not None and any(r is record for r in turn.pending)

    def _mark_synced_if_unchanged(self, agent: LocalAgent, stored: Mapping[str, Any] | None) -> None:
        """Skip Strands' first sync when the restored agent equals what is stored (no wasted write)."""
        if not compat.is_agent(agent):
            return
        if stored is not None and (
            stored.get(d.STATE) != agent.state.get()
            or stored.get("conversation_manager_state") != agent.conversation_manager.get_state()  # type: ignore[attr-defined]
            or stored.get(d.INTERNAL_STATE) != compat.internal_state(agent)  # type: ignore[arg-type]
        ):
            return
        compat.mark_synced(self, agent)

    # ---- messages --------------------------------------------------------------------------------------

    def append_message(self, message: Message, agent: LocalAgent, **kwargs: Any) -> None:
        """Number the message; inside a turn keep it for the commit, otherwise store it now."""
        turn = self._turns.get(agent.agent_id)
        self._add(agent, message, turn if turn is not None and turn.lease_token is not None else None)

    async def _on_message_added(self, event: MessageAddedEvent) -> None:
        agent, message = event.agent, event.message
        aid = agent.agent_id
        turn = self._turns.get(aid)
        if turn is None and compat.is_agent(agent):
            # Added by the agent outside an invocation (a direct tool call, or Strands answering a
            # dangling toolUse just before the invocation starts): held until it is a whole exchange.
            turn = self._turns[aid] = Turn.open(agent, already_added=1)
        writes_now = turn is None or (turn.lease_token is None and closes_turn(message))
        if writes_now:
            await run_blocking(self._add, agent, message, turn)
        else:
            self._add(agent, message, turn)

    def _add(self, agent: LocalAgent, message: Message, turn: Turn | None) -> None:
        aid = agent.agent_id
        if turn is not None and self._merge_into_previous_user_message(agent, turn, message):
            return
        record = SessionMessage.from_message(self._redact_message(message), self._next_ids[aid])
        self._next_ids[aid] += 1
        self._latest_agent_message[aid] = record
        self._held_records.setdefault(aid, HeldRecords()).append(record)
        if turn is None:
            self._store_now(agent, [record])
            return
        turn.pending.append(record)
        if turn.lease_token is None and closes_turn(message):
            self._flush_outside_invocation(agent, turn)

    def _merge_into_previous_user_message(self, agent: LocalAgent, turn: Turn, message: Message) -> bool:
        """A prompt right after Strands' error ``toolResult`` joins that message: roles must alternate."""
        if message.get("role") != "user" or not turn.pending or len(agent.messages) < 2:
            return False
        previous = turn.pending[-1]
        if previous.message.get("role") != "user" or agent.messages[-2] is not previous.message:
            return False
        agent.messages.pop()
        previous.message["content"] = [*previous.message["content"], *message.get("content", [])]
        return True

    def _flush_outside_invocation(self, agent: LocalAgent, turn: Turn) -> None:
        """Store messages added outside an invocation once they end in an assistant answer."""
        self._turns.pop(agent.agent_id, None)
        try:
            self._store_now(agent, list(turn.pending))
        except SessionStoreError:
            self._roll_back(agent, turn)
            raise

    def _store_now(self, agent: LocalAgent, records: list[SessionMessage]) -> None:
        aid = agent.agent_id
        if aid in self._unsaved_agents:
            self._save_held_agent(agent)
        try:
            self._set_aside_pending(aid)
            self.session_repository.append_messages(self.session_id, aid, records)
        except SessionStoreError:
            self._next_ids[aid] = records[0].message_id
            raise

    def sync_agent(self, agent: LocalAgent, **kwargs: Any) -> None:
        """Outside a turn, Strands' sync (written when changed); inside one, the commit carries it."""
        if agent.agent_id in self._turns and compat.is_agent(agent):
            return
        super().sync_agent(agent, **kwargs)  # type: ignore[misc]

    def _prune_held_records(self, agent: LocalAgent) -> None:
        """Strands' pruning on every sync, without building the records of a restored history."""
        held = self._held_records.get(agent.agent_id)
        if isinstance(held, HeldRecords):
            held.prune(agent.messages)
        else:
            super()._prune_held_records(agent)  # type: ignore[misc]

    def redact_latest_message(self, redact_message: Message, agent: LocalAgent, **kwargs: Any) -> None:
        """Redact the newest message; a message of the running turn is stored redacted with it."""
        aid = agent.agent_id
        latest = self._latest_agent_message.get(aid)
        if latest is None:
            raise SessionException("No message to redact.")
        latest.redact_message = redact_message
        if self._held_by_turn(aid, latest):
            return
        self.session_repository.update_message(self.session_id, aid, latest)
