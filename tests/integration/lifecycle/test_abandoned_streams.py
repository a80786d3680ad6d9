"""A stream the client abandons (a browser tab closed mid-answer) ends the turn by the turn rule.

What the async-streaming guide promises: a turn whose model had not yet given its final answer is
rolled back and stores nothing (its lease released at once), one whose final answer was complete is
stored; either way the next request of the session sends a valid history.
"""

from __future__ import annotations

import asyncio
from typing import Any

from strands import Agent

from mongodb_session_manager.testing import ScriptedModel, converse_violation


def stored(collection: Any, session_id: str) -> list[str]:
    doc = collection.find_one({"_id": session_id})
    return [m["message"]["content"][0]["text"] for m in doc["agents"]["assistant"]["messages"]]


def lease(collection: Any, session_id: str) -> Any:
    return collection.find_one({"_id": session_id})["agents"]["assistant"].get("lease")


async def abandon(agent: Agent, prompt: str, *, after: str) -> None:
    """Consume ``stream_async`` until ``after`` ("delta" or "assistant_message"), then close it."""
    stream = agent.stream_async(prompt)
    async for event in stream:
        if after == "delta" and "data" in event:
            break
        message = event.get("message")
        if after == "assistant_message" and isinstance(message, dict) and message.get("role") == "assistant":
            break
    await stream.aclose()


def test_a_stream_abandoned_mid_answer_stores_nothing_and_releases_the_lease(make_manager, collection) -> None:
    agent = Agent(agent_id="assistant", model=ScriptedModel(["first answer"]), session_manager=make_manager("gone"))
    agent("hello")
    agent.model = ScriptedModel(["a long answer " * 20], chunk_size=4)

    asyncio.run(abandon(agent, "are you there?", after="delta"))

    assert stored(collection, "gone") == ["hello", "first answer"], "nothing of the abandoned turn"
    assert lease(collection, "gone") is None, "released at once, not left to expire"
    assert [m["role"] for m in agent.messages] == ["user", "assistant"], "rolled back in memory"
    agent.model = ScriptedModel(["back again"])  # strict: a broken history would be refused here
    assert str(agent("still there?")).strip() == "back again"
    assert stored(collection, "gone") == ["hello", "first answer", "still there?", "back again"]


def test_a_stream_abandoned_after_the_final_answer_keeps_the_turn(make_manager, collection) -> None:
    agent = Agent(agent_id="assistant", model=ScriptedModel(["first answer"]), session_manager=make_manager("late"))
    agent("hello")
    agent.model = ScriptedModel(["the final answer"])

    asyncio.run(abandon(agent, "one more", after="assistant_message"))

    assert stored(collection, "late") == ["hello", "first answer", "one more", "the final answer"]
    assert lease(collection, "late") is None
    history = [m["message"] for m in collection.find_one({"_id": "late"})["agents"]["assistant"]["messages"]]
    assert converse_violation([*history, {"role": "user", "content": [{"text": "next"}]}]) is None
