"""Splits inside the production failure cases: an async service, and a model call that fails on a
session whose history is already split."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from pymongo import MongoClient, monitoring
from strands import Agent
from strands.agent.conversation_manager import SlidingWindowConversationManager

from mongodb_session_manager import MongoDBSessionManager
from mongodb_session_manager.testing import ScriptedModel, converse_violation

from ..lifecycle.test_failed_turns import FailingModel, Throttled
from .test_split import SMALL, stored_doc


class LoopThreads(monitoring.CommandListener):
    def __init__(self) -> None:
        self.threads: set[int] = set()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.threads.add(threading.get_ident())

    def succeeded(self, event: Any) -> None: ...

    def failed(self, event: Any) -> None: ...


def test_async_turns_split_off_the_event_loop_and_restore(mongo_uri: str, db_name: str, collection: Any) -> None:
    listener = LoopThreads()
    client: MongoClient[Any] = MongoClient(mongo_uri, event_listeners=[listener])
    options = {"client": client, "database_name": db_name, "collection_name": "sessions", "archive_policy": SMALL}

    async def main() -> tuple[list[Any], int]:
        manager = await MongoDBSessionManager.acreate("async-split", **options)
        agent = Agent(
            agent_id="assistant",
            model=ScriptedModel([f"answer {i}" for i in range(12)]),
            session_manager=manager,
            conversation_manager=SlidingWindowConversationManager(window_size=1000),
            callback_handler=None,
        )
        listener.threads.clear()
        for i in range(12):
            await agent.invoke_async(f"question {i}")
        return list(agent.messages), threading.get_ident()

    messages, loop_thread = asyncio.run(main())
    assert loop_thread not in listener.threads, "no command, split included, ran on the event loop"
    assert stored_doc(collection, "async-split")["archive"]["count"] > 0, "the session split"

    async def restore() -> list[Any]:
        manager = await MongoDBSessionManager.acreate("async-split", **options)
        agent = Agent(
            agent_id="assistant",
            model=ScriptedModel(["ok"]),
            session_manager=manager,
            conversation_manager=SlidingWindowConversationManager(window_size=1000),
            callback_handler=None,
        )
        await agent.invoke_async("still there?")
        return list(agent.messages)

    assert (asyncio.run(restore()))[: len(messages)] == messages
    client.close()


def test_a_failed_model_call_on_a_split_session_stores_nothing_and_the_next_turn_is_valid(
    make_manager: Any, collection: Any
) -> None:
    agent = Agent(
        agent_id="assistant",
        model=FailingModel([f"answer {i}" for i in range(20)], fail_on={10}),
        session_manager=make_manager("fail-split", archive_policy=SMALL),
        conversation_manager=SlidingWindowConversationManager(window_size=1000),
        callback_handler=None,
    )
    for i in range(10):
        agent(f"question {i}")
    before = stored_doc(collection, "fail-split")
    assert before["archive"]["count"] > 0
    with pytest.raises(Throttled):
        agent("this call is throttled")
    after = stored_doc(collection, "fail-split")
    assert after["archive"] == before["archive"] and after["messages"] == before["messages"], "nothing stored"
    agent("and now?")  # the strict model checks the whole history it is sent
    history = make_manager("fail-split", archive_policy=SMALL).session_repository.list_messages(
        "fail-split", "assistant"
    )
    assert len(history) == 22
    assert converse_violation([m.message for m in history] + [{"role": "user", "content": [{"text": "x"}]}]) is None
