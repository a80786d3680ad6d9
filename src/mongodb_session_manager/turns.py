"""What a turn is, in memory: the rules that keep a conversation valid for the model.

A *turn* is everything one invocation adds to an agent's history: the prompt, the assistant's
messages, the tool results. Providers such as Bedrock's Converse API accept a history only if it
starts with a user message, roles alternate, and every ``toolUse`` is answered in the next message.
A turn that dies half way (model error, tool crash, a killed process) leaves a history that breaks
those rules, and every later request of that session would then be refused.

So the manager stores a turn's messages together when the invocation ends, and on failure puts the
agent back exactly as it was before the turn (:class:`Turn`). Histories written by other tools or
by older versions can still end in an unfinished turn; :func:`unfinished_tail` finds it on restore.
This module is pure (no I/O), so its rules are unit-tested on their own.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from strands.types.content import Message
from strands.types.session import SessionMessage

from . import strands_compat as compat

if TYPE_CHECKING:
    from .lease_renewal import Renewal


def has_tool_use(message: Message) -> bool:
    return any(isinstance(block, dict) and "toolUse" in block for block in message.get("content", []))


def has_tool_blocks(message: Message) -> bool:
    """Whether the message holds a ``toolUse`` or a ``toolResult`` block."""
    return any(isinstance(b, dict) and ("toolUse" in b or "toolResult" in b) for b in message.get("content", []))


def closes_turn(message: Message) -> bool:
    """An assistant message without ``toolUse``: the model answered and the turn is over."""
    return message.get("role") == "assistant" and not has_tool_use(message)


def unfinished_tail(messages: Sequence[Message], *, interrupted: bool = False) -> int | None:
    """Index where a trailing unfinished turn starts, or None when the history ends cleanly.

    A history ends cleanly after an assistant message without ``toolUse``, or on an assistant
    ``toolUse`` when the agent stopped on an interrupt (the human's answer resumes it). Anything
    else after the last clean end (a prompt that never got an answer, a tool call whose result the
    model never saw) is an unfinished turn: sent as it is, the next request would break the rules.
    """
    # From the end: a restored history of thousands of messages is only read back to its last answer.
    last_closed = next((i for i in range(len(messages) - 1, -1, -1) if closes_turn(messages[i])), -1)
    tail = messages[last_closed + 1 :]
    if not tail:
        return None
    if interrupted and tail[-1].get("role") == "assistant" and has_tool_use(tail[-1]):
        return None
    return last_closed + 1


def join_user_runs(messages: list[Message]) -> list[Message]:
    """Consecutive user messages joined into one, so that roles alternate again.

    Strands' restore repair answers an unanswered ``toolUse`` by inserting a user ``toolResult``
    message; when the stored history went on with a user prompt, two user messages follow each
    other and Bedrock refuses every later request. The joined message is new (memory only): the
    stored messages and their records stay as they are.
    """
    if not any(a.get("role") == b.get("role") == "user" for a, b in pairwise(messages)):
        return messages
    joined: list[Message] = []
    for message in messages:
        previous = joined[-1] if joined else None
        if previous is not None and previous.get("role") == message.get("role") == "user":
            joined[-1] = {"role": "user", "content": [*previous.get("content", []), *message.get("content", [])]}
        else:
            joined.append(message)
    return joined


class MessagesOf(Sequence[Message]):
    """The messages of session records, read on demand (a restore checks only the last few)."""

    def __init__(self, records: Sequence[SessionMessage]) -> None:
        self._records = records

    def __len__(self) -> int:
        return len(self._records)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [r.to_message() for r in self._records[index]]
        return self._records[index].to_message()


@dataclass
class Turn:
    """One open invocation of one agent: what to store at the end, and how to undo it.

    ``messages_before`` is a shallow copy of the agent's list (the message dicts are shared), enough
    to restore it: Strands appends new dicts and the conversation manager only removes from the list.
    """

    agent_id: str
    messages_before: list[Message]
    removed_before: int
    state_before: dict[str, Any]
    pending: list[SessionMessage] = field(default_factory=list)
    lease_token: str | None = None
    invoked: bool = False
    renewer: Renewal | None = None
    lease_lost: bool = False

    @classmethod
    def open(cls, agent: Any, *, already_added: int = 0) -> Turn:
        """Snapshot the agent before the turn changes it (``already_added`` messages are the turn's)."""
        messages = list(agent.messages)
        if already_added:
            messages = messages[:-already_added]
        return cls(
            agent_id=agent.agent_id,
            messages_before=messages,
            removed_before=compat.removed_message_count(agent),
            state_before=copy.deepcopy(agent.state.get()),
        )

    def roll_back(self, agent: Any) -> None:
        """Put the agent back as it was before the turn; nothing of the turn stays in memory."""
        from strands.agent.state import AgentState

        agent.messages = list(self.messages_before)
        compat.set_removed_message_count(agent, self.removed_before)
        agent.state = AgentState(copy.deepcopy(self.state_before))
        self.pending.clear()

    def stop_renewing(self) -> None:
        if self.renewer is not None:
            self.renewer.cancel()
            self.renewer = None


class LeaseWait:
    """The hand-off between an async invocation and the I/O thread taking its turn's lease.

    The thread may wait seconds for another turn's lease. If the invocation is cancelled meanwhile
    (a client that went away, ``asyncio.wait_for``), Strands sends no AfterInvocation, and a lease the
    thread then takes would be renewed for nobody and lock the agent. Whichever side comes second
    learns it here: a thread that takes the lease after the caller gave up gives it back itself;
    a caller that gives up after the lease was taken gives it back (:meth:`give_up` says which).
    """

    __slots__ = ("_lock", "_taken", "abandoned")

    def __init__(self) -> None:
        self.abandoned = threading.Event()
        self._lock = threading.Lock()
        self._taken = False

    def give_up(self) -> bool:
        """The caller stops waiting; True if the lease was already taken (the caller must release it)."""
        with self._lock:
            self.abandoned.set()
            return self._taken

    def take(self) -> bool:
        """The thread has the lease; False if the caller gave up first (the thread must release it)."""
        with self._lock:
            if self.abandoned.is_set():
                return False
            self._taken = True
            return True
