"""A turn of :class:`~.mongodb_session_manager.MongoDBSessionManager`: lease, commit, rollback.

One invocation of an agent is one *turn*, and a turn is stored whole or not at all (see
:mod:`.session_lifecycle` for why, and for the hooks that call in here). This mixin is the turn
from its first step to its last:

- **Begin** (``BeforeInvocationEvent``): take the (session, agent) lease in MongoDB, judged by the
  server's clock. A lease held by another invocation is waited for up to ``busy_timeout``, then
  ``SessionBusyError`` is raised before anything is written; a lease refused because another
  process stored turns since the restore reloads the agent and tries again. While the turn runs,
  :data:`~.lease_renewal.RENEWER` renews the lease every third of ``turn_lease_seconds``, holding the
  manager weakly, so a lease whose holder is gone expires by itself.
- **End** (``AfterInvocationEvent``): a finished turn is stored in one update (its messages,
  metrics, agent state; the lease released by the same write); a turn that ended without an
  answer, or whose lease was taken over, is rolled back in memory and nothing of it is stored.
- **Abandon**: an invocation cancelled while it waited for the lease, or stopped by a later
  ``BeforeInvocation`` hook, gets no ``AfterInvocationEvent``; its lease is given back here
  (:class:`~.turns.LeaseWait` is the hand-off), so it never blocks the agent's next invocation.

Kept apart from the restore and the message bookkeeping (:mod:`.session_lifecycle`, which inherits
this mixin) because the lease protocol is a unit of its own: its waits, renewals and failure paths
read best together. Blocking calls: the hooks run them in the I/O pool (``blocking_io``).
"""

from __future__ import annotations

import logging
import time
import uuid
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from strands.types.exceptions import SessionException
from strands.types.session import SessionAgent, SessionMessage

from . import strands_compat as compat
from .errors import SessionBusyError, SessionStoreError, TurnLeaseLostError
from .held_records import HeldRecords
from .lease_renewal import RENEWER
from .metrics import model_id, summarize, totals_increment
from .turns import LeaseWait, Turn, closes_turn

if TYPE_CHECKING:
    from strands.types.agent import LocalAgent

    from .mongodb_session_repository import MongoDBSessionRepository
    from .repository_restore import RestoredAgent

logger = logging.getLogger(__name__)


class SessionTurnsMixin:
    """The turn's lease, commit and rollback; inherited by ``SessionLifecycleMixin``, which sets its state."""

    if TYPE_CHECKING:
        # Set by SessionLifecycleMixin._init_lifecycle (and Strands' manager): the state a turn works on.
        session_id: str
        session_repository: MongoDBSessionRepository
        turn_lease_seconds: float
        busy_timeout: float
        _turns: dict[str, Turn]
        _next_ids: dict[str, int]
        _captured_config: dict[str, tuple[str, str | None]]
        _unsaved_agents: dict[str, list[SessionMessage]]
        _owner: str
        _latest_agent_message: dict[str, SessionMessage | None]
        _held_records: dict[str, HeldRecords | list[SessionMessage]]

        # The restore side, in SessionLifecycleMixin: a turn may store a held agent, move aside a cut
        # tail, or reload a stale agent before it takes its lease.
        def _save_held_agent(self, agent: LocalAgent) -> None: ...

        def _set_aside_pending(self, aid: str) -> None: ...

        def _apply_restore(self, agent: LocalAgent, restored: RestoredAgent) -> None: ...

    def _begin_turn(self, agent: LocalAgent, wait: LeaseWait) -> None:
        """Take the (session, agent) lease, waiting for another turn up to ``busy_timeout`` (or until
        ``wait`` says the caller gave up)."""
        aid = agent.agent_id
        orphan = self._turns.get(aid)
        if orphan is not None and orphan.lease_token is not None:
            # A turn that took its lease but never ended: a BeforeInvocation hook after ours raised, so
            # Strands sent no AfterInvocation. One agent runs one invocation at a time: it is over. The
            # agent's messages are left as they are (the caller may have changed them since).
            self._abandon_turn(agent, roll_back=False)
        if aid in self._unsaved_agents:
            self._save_held_agent(agent)
        turn = self._turns.get(aid) or Turn.open(agent)
        self._turns[aid] = turn
        token = uuid.uuid4().hex
        ttl_ms = int(self.turn_lease_seconds * 1000)
        deadline = time.monotonic() + self.busy_timeout
        delay = 0.025
        while True:
            try:
                self._set_aside_pending(aid)  # a tail the async restore cut (and again after a refresh)
            except SessionStoreError:
                self._roll_back(agent, turn)
                raise
            refusal = self.session_repository.acquire_lease(
                self.session_id, aid, token=token, owner=self._owner, ttl_ms=ttl_ms, next_message_id=self._next_ids[aid]
            )
            if refusal is None:
                break
            if refusal.stale and not refusal.held:
                # Another process stored turns since this agent was restored: continue from them.
                turn = self._refresh(agent, turn)
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._roll_back(agent, turn)
                raise SessionBusyError(
                    f"another invocation of this agent is running (its lease ends in {refusal.retry_after:.1f}s); "
                    f"waited {self.busy_timeout:.1f}s, nothing was written",
                    session_id=self.session_id,
                    agent_id=aid,
                )
            pause = max(0.005, min(delay, remaining, refusal.retry_after or delay))
            if wait.abandoned.wait(pause):  # the caller gave up: stop waiting
                self._roll_back(agent, turn)
                return
            delay = min(delay * 2, 0.4)
        turn.lease_token = token
        turn.invoked = True
        turn.renewer = RENEWER.schedule(
            self.turn_lease_seconds / 3,
            self._renewal(turn, token, ttl_ms),
            lambda: setattr(turn, "lease_lost", True),
            label=f"session_id=<{self.session_id}> | agent_id=<{aid}>",
        )
        if not wait.take():  # the caller gave up while the lease was being taken
            self._abandon_turn(agent)

    def _renewal(self, turn: Turn, token: str, ttl_ms: int) -> Callable[[], bool]:
        """The turn's lease renewal. It holds the manager weakly: a running invocation keeps its agent,
        and so the manager, alive; once the manager is gone no AfterInvocation can end the turn (a
        BeforeInvocation hook after ours raised, say), so the renewals stop and the lease expires."""
        manager, repository, sid, aid = weakref.ref(self), self.session_repository, self.session_id, turn.agent_id

        def renew() -> bool:
            if manager() is None:
                logger.warning(
                    "session_id=<%s> | agent_id=<%s> | the manager of an unfinished turn is gone; its lease "
                    "is left to expire",
                    sid,
                    aid,
                )
                turn.stop_renewing()
                return True
            return repository.renew_lease(sid, aid, token=token, ttl_ms=ttl_ms)

        return renew

    def _abandon_turn(self, agent: LocalAgent, *, roll_back: bool = True) -> None:
        """Give back the lease of a turn whose invocation ended before its AfterInvocation (nothing stored)."""
        aid = agent.agent_id
        turn = self._turns.get(aid)
        if turn is None or turn.lease_token is None:
            return
        token = turn.lease_token
        if roll_back:
            self._roll_back(agent, turn)
        else:  # only forget it: the agent's memory stays as it is
            self._turns.pop(aid, None)
            turn.stop_renewing()
        self._release(aid, token)
        logger.info(
            "session_id=<%s> | agent_id=<%s> | invocation ended before its turn began; its lease was released",
            self.session_id,
            aid,
        )

    def _refresh(self, agent: LocalAgent, turn: Turn) -> Turn:
        """Reload a stale agent from storage; messages held from before the invocation are dropped."""
        logger.info(
            "session_id=<%s> | agent_id=<%s> | history changed elsewhere, reloading", self.session_id, agent.agent_id
        )
        self._roll_back(agent, turn)
        restored = self.session_repository.restore_agent(self.session_id, agent.agent_id)
        if restored is None:
            raise SessionException("agent vanished while it was being invoked")
        self._apply_restore(agent, restored)
        fresh = Turn.open(agent)
        self._turns[agent.agent_id] = fresh
        return fresh

    def _end_turn(self, agent: LocalAgent, turn: Turn, result: Any) -> None:
        """Store a finished turn in one write, or roll back a failed one (storage untouched)."""
        aid = agent.agent_id
        self._turns.pop(aid, None)
        turn.stop_renewing()
        token = turn.lease_token
        assert token is not None
        finished = result is not None or not turn.pending or closes_turn(turn.pending[-1].message)
        if not finished:
            self._roll_back(agent, turn)
            logger.warning(
                "session_id=<%s> | agent_id=<%s> | invocation ended without an answer (an error, or the caller "
                "cancelled it); its turn was rolled back and not stored",
                self.session_id,
                aid,
            )
            self._release(aid, token)
            return
        if turn.lease_lost:
            self._roll_back(agent, turn)
            raise TurnLeaseLostError(
                "the turn's lease was taken over while it ran; nothing of this turn was stored",
                session_id=self.session_id,
                agent_id=aid,
            )
        pending = list(turn.pending)
        first_id = pending[0].message_id if pending else self._next_ids[aid]
        metrics = self._turn_metrics(agent, pending)
        try:
            self.session_repository.commit_turn(
                self.session_id,
                aid,
                token=token,
                first_message_id=first_id,
                messages=pending,
                agent=SessionAgent.from_agent(agent),
                metrics=metrics,
                totals=totals_increment(metrics[1]) if metrics else None,
            )
        except SessionStoreError:
            self._roll_back(agent, turn)
            self._release(aid, token)
            raise
        compat.mark_synced(self, agent)
        self._capture_agent_config(agent)

    def _release(self, aid: str, token: str) -> None:
        """Give back the lease of a turn that stored nothing; a failure here must not hide the turn's own."""
        try:
            self.session_repository.release_lease(self.session_id, aid, token=token)
        except SessionStoreError as exc:
            logger.warning(
                "session_id=<%s> | agent_id=<%s> | lease not released (it expires by itself): %s",
                self.session_id,
                aid,
                exc,
            )

    def _roll_back(self, agent: LocalAgent, turn: Turn) -> None:
        """Undo an unstored turn in memory: messages, ids, state."""
        aid = agent.agent_id
        self._turns.pop(aid, None)
        turn.stop_renewing()
        if turn.pending:
            self._next_ids[aid] = turn.pending[0].message_id
            held = self._held_records.get(aid)
            held = self._held_records[aid] = held if isinstance(held, HeldRecords) else HeldRecords.of(held or [])
            held.discard(turn.pending)
            self._latest_agent_message[aid] = held.last()
        turn.roll_back(agent)
        compat.mark_synced(self, agent)

    def _turn_metrics(self, agent: LocalAgent, pending: list[SessionMessage]) -> tuple[int, dict[str, Any]] | None:
        """The turn's metrics, for its last assistant message (stored with it, no extra write)."""
        event_loop_metrics = getattr(agent, "event_loop_metrics", None)
        index = next(
            (i for i in range(len(pending) - 1, -1, -1) if pending[i].message.get("role") == "assistant"), None
        )
        if event_loop_metrics is None or index is None:
            return None
        return index, summarize(event_loop_metrics, [r.message for r in pending])

    def _capture_agent_config(self, agent: LocalAgent) -> None:
        """Record model and system prompt when they differ from what is stored (rarely a write)."""
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
