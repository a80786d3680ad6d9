"""The detail endpoint shows a session written through Strands' snapshot path like any other."""

from __future__ import annotations

import uuid
from typing import Any

from pymongo import MongoClient
from strands import Agent
from strands.session import SnapshotSessionManager

from mongodb_session_manager import MongoDBSnapshotSessionManager, MongoDBStorage
from mongodb_session_manager.testing import ScriptedModel

from .conftest import GLOBAL, AppFactory


def test_snapshot_session_timeline_metrics_and_feedback(make_api: AppFactory, mongo_client: MongoClient[Any]) -> None:
    database = f"sv_snap_{uuid.uuid4().hex[:8]}"
    storage = MongoDBStorage(database_name=database, collection_name="sessions", client=mongo_client)
    try:
        manager = MongoDBSnapshotSessionManager("snap-1", storage=storage)
        agent = Agent(
            model=ScriptedModel(["first answer", "second answer"]),
            session_manager=manager,
            callback_handler=None,
            system_prompt="Be kind.",
        )
        agent("first question")
        manager.update_metadata({"status": "open"})
        agent("second question")
        manager.add_feedback({"rating": "up", "comment": "thanks"})
        password = manager.get_session_viewer_password()

        with make_api(database) as api:
            listed = api.get("/api/v1/sessions/search", headers=GLOBAL).json()["sessions"]
            by_agent = api.get("/api/v1/sessions/search?agent_id=default", headers=GLOBAL).json()["sessions"]
            body = api.get("/api/v1/sessions/snap-1", headers=GLOBAL).json()
            paged = api.get("/api/v1/sessions/snap-1?timeline_limit=2", headers=GLOBAL).json()
            own = api.get("/api/v1/sessions/snap-1", headers={"X-Session-Password": password})
        messages = [i for i in body["timeline"] if i["type"] == "message"]
        assert [m["content"][0]["text"] for m in messages] == [
            "first question",
            "first answer",
            "second question",
            "second answer",
        ]
        assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
        assert messages[1]["metrics"]["turn_metrics"]["latencyMs"] == 42 and messages[0]["metrics"] is None
        assert body["timeline"][-1]["type"] == "feedback" and body["feedback_summary"]["up"] == 1
        assert body["metadata"] == {"status": "open"}
        [info] = body["agents"]
        assert info["agent_id"] == "default" and info["message_count"] == 4
        assert info["model"] == "scripted-offline-model" and info["system_prompt"] == "Be kind."
        assert body["totals"]["turns"] == 2 and body["totals"]["totalTokens"] > 0
        assert paged["timeline_total"] == 5 and len(paged["timeline"]) == 2 and paged["timeline_next_offset"] == 2
        assert own.status_code == 200
        # The list card: the same aggregates as for a message-log session.
        [card] = listed
        assert card["agent_ids"] == ["default"] and card["models"] == ["scripted-offline-model"]
        assert card["message_count"] == 4 and card["turns"] == 2 and card["tokens"]["totalTokens"] > 0
        assert card["preview"] == "first question" and card["feedback_up"] == 1
        assert [c["session_id"] for c in by_agent] == ["snap-1"]
        assert "session_viewer_password" not in str(body) and password not in str(body)
    finally:
        storage.close()
        mongo_client.drop_database(database)


def test_a_message_log_session_with_snapshot_keys_keeps_its_message_log_view(
    make_api: AppFactory, mongo_client: MongoClient[Any], mongo_uri: str
) -> None:
    from mongodb_session_manager import MongoDBSessionManager

    database = f"sv_mixed_{uuid.uuid4().hex[:8]}"
    manager = MongoDBSessionManager("mixed", client=mongo_client, database_name=database, collection_name="sessions")
    storage = MongoDBStorage(database_name=database, collection_name="sessions", client=mongo_client)
    try:
        Agent(model=ScriptedModel(["logged answer"]), session_manager=manager, callback_handler=None)("logged question")
        # Never migrated, but Strands' snapshot manager used the same session id once.
        snapshot_agent = Agent(
            model=ScriptedModel(["snapshot answer"]),
            session_manager=SnapshotSessionManager("mixed", storage=storage),
            callback_handler=None,
            agent_id="other",
        )
        snapshot_agent("snapshot question")
        with make_api(database) as api:
            body = api.get("/api/v1/sessions/mixed", headers=GLOBAL).json()
        texts = [i["content"][0]["text"] for i in body["timeline"] if i["type"] == "message"]
        assert texts == ["logged question", "logged answer"]
    finally:
        manager.close()
        storage.close()
        mongo_client.drop_database(database)
