"""A turn that takes its lease but never reaches AfterInvocation must not lock its agent.

Two ways an invocation ends between the manager's BeforeInvocation callback and Strands'
AfterInvocation (which Strands then does not send): the request task is cancelled while the
manager's I/O thread waits for another turn's lease, or a BeforeInvocation hook registered after
the manager's raises. Either way, nothing is stored and the next request is served.
"""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any

import pytest
from pymongo import MongoClient
from strands import Agent
from strands.hooks import BeforeInvocationEvent

from mongodb_session_manager import MongoDBSessionManager
from mongodb_session_manager.testing import ScriptedModel

from .test_async_turns import GatedModel

SID = "orphaned-lease"


class Refused(Exception):
    """What a guard hook raises to refuse an invocation (instead of setting ``event.cancel``)."""


def refuse_once(agent: Agent) -> None:
    calls: list[int] = []

    def guard(event: BeforeInvocationEvent) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise Refused("rate limited")

    agent.hooks.add_callback(BeforeInvocationEvent, guard)  # runs after the manager's callback


def lease_of(collection: Any) -> Any:
    return collection.find_one({"_id": SID})["agents"]["a"].get("lease")


def texts(collection: Any) -> list[str]:
    return [
        m["message"]["content"][0]["text"][:5] for m in collection.find_one({"_id": SID})["agents"]["a"]["messages"]
    ]


@pytest.fixture
def options(mongo_client: MongoClient[Any], db_name: str) -> dict[str, Any]:
    return {"client": mongo_client, "database_name": db_name, "collection_name": "sessions"}


async def first_turn(options: dict[str, Any]) -> None:
    manager = await MongoDBSessionManager.acreate(SID, **options)
    await Agent(agent_id="a", model=ScriptedModel(), session_manager=manager, callback_handler=None).invoke_async(
        "kept"
    )


def test_a_request_cancelled_while_it_waits_for_the_lease_leaves_none_behind(
    options: dict[str, Any], collection: Any
) -> None:

    async def main() -> Any:
        await first_turn(options)
        gate = asyncio.Event()
        holder = await MongoDBSessionManager.acreate(SID, **options)
        running = asyncio.create_task(
            Agent(agent_id="a", model=GatedModel(gate), session_manager=holder, callback_handler=None).invoke_async(
                "one"
            )
        )
        await asyncio.sleep(0.2)  # "one" holds the lease, its model waits for the gate
        waiting = await MongoDBSessionManager.acreate(SID, busy_timeout=30.0, **options)
        impatient = Agent(agent_id="a", model=ScriptedModel(), session_manager=waiting, callback_handler=None)
        with pytest.raises(TimeoutError):  # a request timeout while its thread waits for "one"'s lease
            await asyncio.wait_for(impatient.invoke_async("dropped"), 0.3)
        gate.set()
        await running
        await asyncio.sleep(1.0)  # time for a thread still waiting to take the freed lease (the bug)
        lease = lease_of(collection)
        nobody_waits = await MongoDBSessionManager.acreate(SID, busy_timeout=0.0, **options)
        after = Agent(agent_id="a", model=ScriptedModel(), session_manager=nobody_waits, callback_handler=None)
        await after.invoke_async("next")  # SessionBusyError if the cancelled request had taken the lease
        return lease

    assert asyncio.run(main()) is None, "no lease taken for the request that gave up"
    assert texts(collection) == ["kept", "Thank", "one", "Thank", "next", "Thank"]


class SlowToReport(MongoDBSessionManager):
    """Takes the lease, then is slow to hand control back: the caller gives up in between."""

    def _begin_turn(self, agent: Any, wait: Any) -> None:
        super()._begin_turn(agent, wait)
        time.sleep(0.3)


def test_a_request_cancelled_just_after_its_lease_was_taken_gives_it_back(
    options: dict[str, Any], collection: Any
) -> None:

    async def main() -> Any:
        await first_turn(options)
        slow = await SlowToReport.acreate(SID, **options)
        agent = Agent(agent_id="a", model=ScriptedModel(), session_manager=slow, callback_handler=None)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(agent.invoke_async("dropped"), 0.1)
        lease = lease_of(collection)
        nobody_waits = await MongoDBSessionManager.acreate(SID, busy_timeout=0.0, **options)
        await Agent(
            agent_id="a", model=ScriptedModel(), session_manager=nobody_waits, callback_handler=None
        ).invoke_async("next")
        return lease, [m["content"][0]["text"][:5] for m in agent.messages]

    lease, in_memory = asyncio.run(main())
    assert lease is None, "given back by the caller that gave up, before wait_for returned"
    assert in_memory == ["kept", "Thank"]
    assert texts(collection) == ["kept", "Thank", "next", "Thank"]


def test_a_before_invocation_hook_that_raises_leaves_the_same_agent_free_to_go_on(make_manager, collection) -> None:
    agent = Agent(agent_id="a", model=ScriptedModel(), session_manager=make_manager(SID), callback_handler=None)
    agent("kept")
    refuse_once(agent)
    with pytest.raises(Refused):
        agent("refused")
    agent("next")  # the refused invocation's lease is given back here (SessionBusyError otherwise)
    assert texts(collection) == ["kept", "Thank", "next", "Thank"]
    assert lease_of(collection) is None


def test_a_turn_whose_manager_is_gone_stops_renewing_and_its_lease_expires(
    options: dict[str, Any], collection: Any
) -> None:
    """A stateless request whose guard hook refused it drops its agent and manager: nothing may keep
    renewing that turn's lease, or the agent stays locked for the life of the process."""
    manager = MongoDBSessionManager(SID, turn_lease_seconds=1.0, **options)
    agent = Agent(agent_id="a", model=ScriptedModel(), session_manager=manager, callback_handler=None)
    agent("kept")
    refuse_once(agent)
    with pytest.raises(Refused):
        agent("refused")
    assert lease_of(collection) is not None, "the refused turn had taken the lease"
    del agent, manager
    gc.collect()
    later = MongoDBSessionManager(SID, busy_timeout=20.0, **options)  # waits for the lease to expire
    Agent(agent_id="a", model=ScriptedModel(), session_manager=later, callback_handler=None)("next")
    later.close()
    assert texts(collection) == ["kept", "Thank", "next", "Thank"]
