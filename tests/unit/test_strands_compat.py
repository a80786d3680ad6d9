"""Every Strands behaviour the library relies on beyond Strands' public API, pinned one by one.

If a Strands upgrade changes one of these, this file fails, not a user's service. The accessors in
``strands_compat`` degrade to safe defaults; these tests check they still read the real thing.
"""

from __future__ import annotations

import asyncio
from typing import Any

from strands import Agent
from strands.hooks import AfterInvocationEvent, BeforeInvocationEvent, HookRegistry
from strands.session.repository_session_manager import RepositorySessionManager

from mongodb_session_manager import strands_compat as compat
from mongodb_session_manager.testing import ScriptedModel


def agent() -> Agent:
    return Agent(model=ScriptedModel(["hi"]), callback_handler=None)


def test_message_updated_event_exists() -> None:
    assert compat.MessageUpdatedEvent is not None


def test_internal_state_and_versions_are_read_from_the_agent() -> None:
    a = agent()
    state = compat.internal_state(a)
    assert set(state) == {"interrupt_state", "model_state"} and isinstance(state["interrupt_state"], dict)
    before = compat.sync_versions(a)
    assert before is not None and set(before) == {
        "state_version",
        "interrupt_state_version",
        "conversation_manager_state",
        "model_state",
    }
    a.state.set("k", 1)
    assert compat.sync_versions(a)["state_version"] != before["state_version"]  # type: ignore[index]


def test_interrupt_flag_is_read() -> None:
    a = agent()
    assert compat.interrupt_activated(a) is False
    a._interrupt_state.activate()
    assert compat.interrupt_activated(a) is True


def test_repository_manager_tracking_is_a_dict_keyed_by_agent() -> None:
    class Manager(RepositorySessionManager):
        def __init__(self) -> None:
            self._last_synced_internal_state: dict[str, dict[str, Any]] = {}

    manager, a = Manager(), agent()
    compat.mark_synced(manager, a)
    assert manager._last_synced_internal_state[a.agent_id]["state_version"] == a.state._get_version()
    compat.forget_synced(manager, a.agent_id)
    assert a.agent_id not in manager._last_synced_internal_state
    assert callable(getattr(RepositorySessionManager, "_fix_broken_tool_use", None))


def test_conversation_manager_offset_is_read_and_written() -> None:
    a = agent()
    assert compat.removed_message_count(a) == 0
    compat.set_removed_message_count(a, 4)
    assert a.conversation_manager.removed_message_count == 4


def test_missing_tool_results_answer_every_id_with_an_error() -> None:
    message = compat.missing_tool_results(["t1", "t2"])
    assert message["role"] == "user"
    assert [(b["toolResult"]["toolUseId"], b["toolResult"]["status"]) for b in message["content"]] == [
        ("t1", "error"),
        ("t2", "error"),
    ]


def test_invocation_events_carry_what_the_turn_logic_reads() -> None:
    seen: dict[str, Any] = {}
    a = agent()
    a.hooks.add_callback(BeforeInvocationEvent, lambda e: seen.setdefault("messages", e.messages))
    a.hooks.add_callback(AfterInvocationEvent, lambda e: seen.setdefault("result", e.result))
    a("hello")
    assert seen["messages"][0]["content"] == [{"text": "hello"}]
    assert seen["result"] is not None and seen["result"].stop_reason == "end_turn"


def test_after_invocation_callbacks_run_in_reverse_order_and_coroutines_are_awaited() -> None:
    order: list[str] = []
    registry = HookRegistry()
    registry.add_callback(AfterInvocationEvent, lambda e: order.append("registered first"))

    async def later(event: AfterInvocationEvent) -> None:
        order.append("registered later")

    registry.add_callback(AfterInvocationEvent, later)
    asyncio.run(registry.invoke_callbacks_async(AfterInvocationEvent(agent=agent(), invocation_state={})))
    assert order == ["registered later", "registered first"]
