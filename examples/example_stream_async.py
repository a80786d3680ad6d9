"""Async streaming with session persistence and the turn's metrics read back from MongoDB.

The manager is built with the async API (``await MongoDBSessionManager.acreate(...)``): the session
is read off the event loop, ``Agent(...)`` does no I/O, every write of ``stream_async`` runs in the
library's thread pool, and the feature methods have async twins (``aget_message_count``...).

Run: uv run python examples/example_stream_async.py
"""

import asyncio
import sys

from strands import Agent

from mongodb_session_manager import MongoDBSessionManager
from mongodb_session_manager.demo import calculator
from mongodb_session_manager.embedded import local_mongodb
from mongodb_session_manager.testing import default_model


async def chat(agent: Agent, prompt: str) -> None:
    print(f"User:  {prompt}\nAgent: ", end="")
    async for event in agent.stream_async(prompt):
        if "data" in event:
            sys.stdout.write(event["data"])
            sys.stdout.flush()
    print()


async def main() -> None:
    with local_mongodb() as uri:
        manager = await MongoDBSessionManager.acreate(
            "stream-demo", connection_string=uri, database_name="chat", collection_name="sessions"
        )
        agent = Agent(
            agent_id="streamer",
            model=default_model(),
            tools=[calculator],
            session_manager=manager,
            callback_handler=None,
        )
        await chat(agent, "Tell me something about MongoDB sessions.")
        await chat(agent, "What is 2 ** 10?")
        print(f"Stored messages: {await manager.aget_message_count('streamer')}")
        docs = manager.repository.list_message_documents("stream-demo", "streamer", with_metrics=True)
        for doc in docs:
            metrics = doc.get("event_loop_metrics")
            if metrics:
                print(
                    f"message {doc['message_id']}: tokens={metrics['turn_usage']['totalTokens']} "
                    f"latency={metrics['turn_metrics']['latencyMs']}ms cycles={metrics['turn_cycle_count']} "
                    f"tools={metrics['turn_tool_calls']}"
                )
        manager.repository.delete_session("stream-demo")
        await manager.aclose()


if __name__ == "__main__":
    asyncio.run(main())
