"""purge_messages, export_session and import_session on the real mongod, with real agents.

Agents run on the strict ScriptedModel: a history Bedrock would refuse (after a purge, or after an
import into another database) fails the test.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from pymongo import MongoClient
from strands import Agent

from mongodb_session_manager import MongoDBSessionManager
from mongodb_session_manager.errors import (
    InvalidExportError,
    SessionAlreadyExistsError,
    SessionNotFoundError,
    UnsupportedSchemaVersionError,
)
from mongodb_session_manager.export import EXPORT_FORMAT
from mongodb_session_manager.testing import ScriptedModel

Make = Callable[..., MongoDBSessionManager]
PNG = b"\x89PNG\r\n\x1a\n\x00\x01binary\xff"


def _agent(manager: MongoDBSessionManager, replies: list[str], agent_id: str = "assistant") -> Agent:
    return Agent(agent_id=agent_id, model=ScriptedModel(replies), session_manager=manager, callback_handler=None)


def _two_turns(manager: MongoDBSessionManager) -> Agent:
    agent = _agent(manager, ["first answer", "second answer"])
    agent("hello")
    agent([{"text": "what is in this picture?"}, {"image": {"format": "png", "source": {"bytes": PNG}}}])
    manager.update_metadata({"status": "open", "customer": "c-1"})
    manager.add_feedback({"rating": "up", "comment": "helpful"})
    return agent


# ---- purge ---------------------------------------------------------------------------------------------------


def test_purge_removes_transcripts_and_keeps_metadata_feedback_and_totals(make_manager: Make, collection: Any) -> None:
    manager = make_manager("p")
    _two_turns(manager)
    before = collection.find_one({"_id": "p"})
    manager.purge_messages()
    doc = collection.find_one({"_id": "p"})
    entry = doc["agents"]["assistant"]
    assert entry["messages"] == [] and entry["abandoned_messages"] == []
    assert entry["next_message_id"] == before["agents"]["assistant"]["next_message_id"] == 4
    assert doc["metadata"] == {"status": "open", "customer": "c-1"}
    assert [f["comment"] for f in doc["feedbacks"]] == ["helpful"]
    assert doc["totals"] == before["totals"] and doc["totals"]["turns"] == 2
    assert entry["agent_data"]["totals"] == before["agents"]["assistant"]["agent_data"]["totals"]
    assert "messages_purged_at" in doc
    assert manager.get_message_count() == 0


def test_after_a_purge_the_agent_restores_empty_and_continues(make_manager: Make) -> None:
    _two_turns(make_manager("p"))
    make_manager("p").purge_messages()
    fresh = make_manager("p")
    agent = _agent(fresh, ["a new start"])
    assert agent.messages == []
    agent("again")
    stored = fresh.repository.list_messages("p", "assistant")
    assert [m.message_id for m in stored] == [4, 5], "purged ids are never reused"
    assert _agent(make_manager("p"), []).messages[0]["content"][0]["text"] == "again"


def test_purge_resets_a_sliding_window_offset(make_manager: Make) -> None:
    from strands.agent.conversation_manager import SlidingWindowConversationManager

    manager = make_manager("w")
    agent = Agent(
        agent_id="assistant",
        model=ScriptedModel(["one", "two", "three"]),
        session_manager=manager,
        conversation_manager=SlidingWindowConversationManager(window_size=2),
        callback_handler=None,
    )
    for prompt in ("a", "b", "c"):
        agent(prompt)
    assert agent.conversation_manager.removed_message_count > 0
    manager.purge_messages()
    fresh = make_manager("w")
    restored = Agent(
        agent_id="assistant",
        model=ScriptedModel(["after purge"]),
        session_manager=fresh,
        conversation_manager=SlidingWindowConversationManager(window_size=4),
        callback_handler=None,
    )
    restored("new question")
    again = Agent(
        agent_id="assistant",
        model=ScriptedModel([]),
        session_manager=make_manager("w"),
        conversation_manager=SlidingWindowConversationManager(window_size=4),
        callback_handler=None,
    )
    assert [m["content"][0]["text"] for m in again.messages] == ["new question", "after purge"]


def test_purge_can_drop_feedback_too_and_a_missing_session_is_typed(make_manager: Make, collection: Any) -> None:
    manager = make_manager("p")
    _two_turns(manager)
    manager.purge_messages(keep_feedback=False)
    assert collection.find_one({"_id": "p"})["feedbacks"] == []
    manager.repository.delete_session("p")
    with pytest.raises(SessionNotFoundError):
        manager.purge_messages()


# ---- export / import -------------------------------------------------------------------------------------------


def test_export_is_plain_json_with_every_part_of_the_session(make_manager: Make) -> None:
    manager = make_manager("e")
    _two_turns(manager)
    data = json.loads(json.dumps(manager.export_session()))  # plain JSON throughout
    assert data["format"] == EXPORT_FORMAT and data["schema_version"] == 1
    session = data["session"]
    assert "session_viewer_password" not in session and "_id" not in session
    assert session["schema_version"] == 2
    assert session["metadata"]["status"] == "open" and session["feedbacks"][0]["comment"] == "helpful"
    messages = session["agents"]["assistant"]["messages"]
    assert [m["message"]["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    image = messages[2]["message"]["content"][1]["image"]["source"]["bytes"]
    assert image["__bytes_encoded__"] is True and isinstance(image["data"], str)
    assert any("event_loop_metrics" in m for m in messages), "per-turn metrics are exported"
    assert session["totals"]["usage"]["totalTokens"] > 0


def test_export_then_import_into_another_database_restores_the_agent(
    make_manager: Make, mongo_client: MongoClient[Any], db_name: str
) -> None:
    source = make_manager("e")
    original = _two_turns(source)
    data = json.loads(json.dumps(source.export_session()))
    other_db = f"{db_name}_copy"
    try:
        target = MongoDBSessionManager(
            "importer", client=mongo_client, database_name=other_db, collection_name="sessions"
        )
        assert target.import_session(data) == "e"
        copy = mongo_client[other_db]["sessions"].find_one({"_id": "e"})
        assert copy["session_viewer_password"] != source.get_session_viewer_password()
        image = copy["agents"]["assistant"]["messages"][2]["message"]["content"][1]["image"]["source"]["bytes"]
        assert bytes(image) == PNG, "base64 came back as BSON binary"
        assert copy["created_at"] is not None and not isinstance(copy["created_at"], str)
        resumed = MongoDBSessionManager("e", client=mongo_client, database_name=other_db, collection_name="sessions")
        agent = _agent(resumed, ["third answer"])
        assert agent.messages == original.messages
        agent("and now?")
        assert resumed.get_message_count("assistant") == 6
        assert resumed.get_metadata() == {"status": "open", "customer": "c-1"}
        assert [f["comment"] for f in resumed.get_feedbacks()] == ["helpful"]
        target.close()
        resumed.close()
    finally:
        mongo_client.drop_database(other_db)


def test_import_refuses_an_existing_session_unless_overwrite(make_manager: Make, collection: Any) -> None:
    manager = make_manager("e")
    _two_turns(manager)
    data = manager.export_session()
    with pytest.raises(SessionAlreadyExistsError):
        manager.import_session(data)
    manager.update_metadata({"status": "changed"})
    manager.import_session(data, overwrite=True)
    assert collection.find_one({"_id": "e"})["metadata"]["status"] == "open"
    assert manager.import_session(data, session_id="e-copy") == "e-copy"
    assert collection.find_one({"_id": "e-copy"})["session_id"] == "e-copy"


def test_bad_or_newer_exports_are_typed_errors_and_write_nothing(make_manager: Make, collection: Any) -> None:
    manager = make_manager("e")
    data = manager.export_session()
    for bad in ([], {"format": "other"}, {**data, "schema_version": "1"}, {**data, "session": {}}):
        with pytest.raises(InvalidExportError):
            manager.import_session(bad, session_id="x")
    with pytest.raises(UnsupportedSchemaVersionError):
        manager.import_session({**data, "schema_version": 99}, session_id="x")
    with pytest.raises(UnsupportedSchemaVersionError):
        manager.import_session({**data, "session": {**data["session"], "schema_version": 99}}, session_id="x")
    assert collection.count_documents({"_id": "x"}) == 0


def test_abandoned_turns_and_a_live_lease_are_handled(make_manager: Make, collection: Any) -> None:
    manager = make_manager("e")
    _agent(manager, ["answer"])("hi")
    collection.update_one(
        {"_id": "e"},
        {
            "$set": {
                "agents.assistant.abandoned_messages": [{"message_id": 9, "message": {"role": "user", "content": []}}],
                "agents.assistant.lease": {"token": "t", "owner": "elsewhere"},
            }
        },
    )
    data = manager.export_session()
    assert data["session"]["agents"]["assistant"]["abandoned_messages"][0]["message_id"] == 9
    manager.import_session(data, session_id="copy")
    copy = collection.find_one({"_id": "copy"})
    assert "lease" not in copy["agents"]["assistant"], "the source's turn lease would block the agent"
    assert copy["agents"]["assistant"]["abandoned_messages"][0]["message_id"] == 9


def test_an_imported_session_with_retention_gets_a_new_expiry(make_manager: Make, collection: Any) -> None:
    manager = make_manager("e", retention_days=3)
    data = manager.export_session()
    manager.import_session(data, session_id="copy")
    copy = collection.find_one({"_id": "copy"})
    assert copy["retention_days"] == 3 and copy["expires_at"] > collection.find_one({"_id": "e"})["expires_at"]


async def test_async_twins_run_off_the_event_loop(make_manager: Make, collection: Any) -> None:
    manager = make_manager("async")
    _agent(manager, ["answer"])("hi")
    await manager.aset_retention(2)
    assert (await manager.aget_retention())["retention_days"] == 2
    await manager.aset_legal_hold()
    assert "expires_at" not in collection.find_one({"_id": "async"})
    data = await manager.aexport_session()
    assert await manager.aimport_session(data, session_id="async-copy") == "async-copy"
    await manager.apurge_messages()
    assert manager.get_message_count() == 0 and await manager.aget_redactions() == {}
