"""Strands' snapshot path on MongoDB: SnapshotSessionManager over MongoDBStorage, checkpoints, features.

1. Strands' own ``SnapshotSessionManager`` over ``MongoDBStorage``: a conversation is saved after each
   turn as one snapshot in the session document and restored by a new ``Agent``.
2. Immutable checkpoints (``snapshot_trigger``) and time travel (``restore_snapshot``).
3. ``MongoDBSnapshotSessionManager``: the same path plus metadata, feedback and per-turn metrics.

Run: uv run python examples/example_snapshot_sessions.py
"""

import asyncio
import uuid

from strands import Agent
from strands.session import SnapshotSessionManager

from mongodb_session_manager import MongoDBSnapshotSessionManager, MongoDBStorage
from mongodb_session_manager.embedded import local_mongodb
from mongodb_session_manager.testing import default_model


def main() -> None:
    session_id = f"snapshot-demo-{uuid.uuid4().hex[:6]}"
    with local_mongodb() as uri:
        storage = MongoDBStorage(uri, database_name="chat", collection_name="sessions")

        # 1. Saved after every turn, restored on the next Agent(...).
        agent = Agent(model=default_model(), session_manager=SnapshotSessionManager(session_id, storage=storage))
        agent("Hi, I need help with order #1234.")
        restored = Agent(model=default_model(), session_manager=SnapshotSessionManager(session_id, storage=storage))
        print(f"restored {len(restored.messages)} messages from the latest snapshot")

        # 2. A checkpoint after every invocation, and a restore of the first one.
        manager = SnapshotSessionManager(session_id, storage=storage, snapshot_trigger=lambda **_: True)
        agent = Agent(model=default_model(), session_manager=manager)
        agent("It was due yesterday.")
        agent("Can you check the courier?")
        checkpoints = asyncio.run(manager.list_snapshot_ids(agent))
        asyncio.run(manager.restore_snapshot(agent, snapshot_id=checkpoints[0]))
        print(f"{len(checkpoints)} checkpoints; back at the first: {len(agent.messages)} messages")

        # 3. The library's features on a snapshot session.
        features = MongoDBSnapshotSessionManager(session_id, storage=storage)
        agent = Agent(model=default_model(), session_manager=features, tools=[features.get_metadata_tool()])
        agent("Please remember that my city is Lisbon.")
        features.add_feedback({"rating": "up", "comment": "Helpful"})
        print("metadata:", features.get_metadata())
        print("agents:", [(a["agent_id"], a["model"], a["message_count"]) for a in features.list_agents()])
        print("last turn tokens:", features.get_turn_metrics("default")[-1]["turn_usage"])

        asyncio.run(features.delete_session())  # snapshots, checkpoints and the session document
        storage.close()


if __name__ == "__main__":
    main()
