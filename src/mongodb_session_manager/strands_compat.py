"""Every use of Strands' private attributes, in one place.

The manager needs a few things Strands does not expose publicly: the change tracking of
``RepositorySessionManager`` (so a restored agent is not written back unchanged), the agent's
interrupt and model state (to tell an interrupted turn from a broken one), and the helper that
builds the error ``toolResult`` for an unanswered ``toolUse``. Each accessor here degrades to a
safe default when Strands changes shape, and ``tests/unit/test_strands_compat.py`` pins every
behaviour relied on, so an upgrade that breaks one fails there and not in a user's service.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from strands.agent.agent import Agent
from strands.types.content import Message

logger = logging.getLogger(__name__)

try:  # Strands >= 1.59 emits it when an agent replaces a message it already appended (BidiAgent).
    from strands.hooks import MessageUpdatedEvent
except ImportError:  # pragma: no cover - depends on the installed Strands
    MessageUpdatedEvent = None  # type: ignore[assignment,misc]


def is_agent(agent: object) -> bool:
    """True for Strands' request/response ``Agent`` (turns apply); False for BidiAgent and others."""
    return isinstance(agent, Agent)


def interrupt_activated(agent: object) -> bool:
    """Whether the agent stopped on an interrupt (its trailing ``toolUse`` waits for a human answer)."""
    state = getattr(agent, "_interrupt_state", None)
    return bool(getattr(state, "activated", False))


def internal_state(agent: Agent) -> dict[str, Any]:
    """The ``_internal_state`` Strands stores for an agent (interrupt and model state)."""
    interrupt = getattr(agent, "_interrupt_state", None)
    return {
        "interrupt_state": interrupt.to_dict() if interrupt is not None else {},
        "model_state": getattr(agent, "_model_state", {}),
    }


def sync_versions(agent: Agent) -> dict[str, Any] | None:
    """What ``RepositorySessionManager.sync_agent`` compares to decide whether to write the agent."""
    try:
        return {
            "state_version": agent.state._get_version(),
            "interrupt_state_version": agent._interrupt_state._get_version(),
            "conversation_manager_state": copy.deepcopy(agent.conversation_manager.get_state()),
            "model_state": copy.deepcopy(agent._model_state),
        }
    except AttributeError:  # pragma: no cover - a Strands without versioned state
        return None


def mark_synced(manager: object, agent: object) -> None:
    """Tell Strands' change tracking that ``agent`` as it is now is already stored."""
    tracking = getattr(manager, "_last_synced_internal_state", None)
    if not isinstance(tracking, dict) or not isinstance(agent, Agent):
        return
    versions = sync_versions(agent)
    if versions is not None:
        tracking[agent.agent_id] = versions


def forget_synced(manager: object, agent_id: str) -> None:
    """Make the next ``sync_agent`` write the agent (after a rollback restored older state)."""
    tracking = getattr(manager, "_last_synced_internal_state", None)
    if isinstance(tracking, dict):
        tracking.pop(agent_id, None)


def removed_message_count(agent: object) -> int:
    manager = getattr(agent, "conversation_manager", None)
    value = getattr(manager, "removed_message_count", 0)
    return value if isinstance(value, int) and value >= 0 else 0


def set_removed_message_count(agent: object, value: int) -> None:
    manager = getattr(agent, "conversation_manager", None)
    if manager is not None and hasattr(manager, "removed_message_count"):
        manager.removed_message_count = value


def model_is_stateful(agent: object) -> bool:
    """Server-side conversation (the model keeps the history): Strands then restores no messages."""
    return bool(getattr(getattr(agent, "model", None), "stateful", False))


def missing_tool_results(tool_use_ids: list[str]) -> Message:
    """The user message Strands itself adds to answer unanswered ``toolUse`` blocks with errors."""
    try:
        from strands.tools._tool_helpers import generate_missing_tool_result_content

        content = generate_missing_tool_result_content(tool_use_ids)
    except ImportError:  # pragma: no cover - depends on the installed Strands
        content = [
            {"toolResult": {"toolUseId": tid, "status": "error", "content": [{"text": "Tool was interrupted."}]}}
            for tid in tool_use_ids
        ]
    return {"role": "user", "content": content}


def fix_broken_tool_use(manager: object, messages: list[Message]) -> list[Message]:
    """Strands' own repair of orphaned ``toolUse``/``toolResult`` pairs, when it has one."""
    fix = getattr(manager, "_fix_broken_tool_use", None)
    return fix(messages) if callable(fix) else messages
