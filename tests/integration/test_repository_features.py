"""The repository's named feature methods (``repository_features``) on the real mongod.

These are the methods the original library had on its repository (metadata, feedback, viewer
password, application name), plus agent configuration, prompt metadata and guardrail auditing.
Each is one server command, raises a typed error with the session id, and never builds a query
outside ``documents.py``.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Any

import pytest
from pymongo import MongoClient, monitoring
from strands.types.session import Session, SessionAgent, SessionMessage, SessionType

from mongodb_session_manager import MongoDBSessionRepository
from mongodb_session_manager.errors import (
    AgentNotFoundError,
    InvalidFeedbackError,
    InvalidInputError,
    InvalidMetadataError,
    MessageNotFoundError,
    SessionNotFoundError,
)

SID, AID = "feature-session", "assistant"

GUARDRAIL_TRACE = {
    "inputAssessment": {
        "gr-1": {
            "contentPolicy": {"filters": [{"type": "HATE", "confidence": "HIGH", "action": "BLOCKED"}]},
            "sensitiveInformationPolicy": {"piiEntities": [{"type": "EMAIL", "action": "ANONYMIZED"}]},
        }
    },
    "outputAssessments": {"gr-1": [{"topicPolicy": {"topics": [{"name": "Investing", "action": "BLOCKED"}]}}]},
}


class Commands(monitoring.CommandListener):
    """Names of the commands a client sent (handshakes aside)."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name.lower() not in {"hello", "ismaster", "ping", "endsessions", "createindexes"}:
            self.names.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.fixture
def ready(repo: MongoDBSessionRepository) -> MongoDBSessionRepository:
    repo.create_session(Session(session_id=SID, session_type=SessionType.AGENT))
    repo.create_agent(SID, SessionAgent(agent_id=AID, state={}, conversation_manager_state={}))
    return repo


@pytest.fixture
def commands() -> Commands:
    return Commands()


@pytest.fixture
def monitored(mongo_uri: str, db_name: str, commands: Commands) -> Any:
    client: MongoClient[Any] = MongoClient(mongo_uri, event_listeners=[commands])
    repo = MongoDBSessionRepository(client=client, database_name=db_name, collection_name="sessions")
    repo.create_session(Session(session_id=SID, session_type=SessionType.AGENT))
    repo.create_agent(SID, SessionAgent(agent_id=AID, state={}, conversation_manager_state={}))
    repo.create_message(SID, AID, SessionMessage(message={"role": "user", "content": [{"text": "hi"}]}, message_id=0))
    commands.names.clear()
    yield repo
    client.close()


def stored(collection: Any) -> dict[str, Any]:
    return collection.find_one({"_id": SID})


# ---- metadata and feedback ---------------------------------------------------------------------------


def test_metadata_update_get_delete(ready: MongoDBSessionRepository) -> None:
    ready.update_metadata(SID, {"status": "active", "priority": "high", "n": 1})
    ready.update_metadata(SID, {"priority": "low"})
    assert ready.get_metadata(SID) == {"status": "active", "priority": "low", "n": 1}
    ready.delete_metadata(SID, ["n"])
    ready.delete_metadata(SID, "status")
    assert ready.get_metadata(SID) == {"priority": "low"}


@pytest.mark.parametrize("bad", [{"$where": 1}, {"a.b": 1}, {"": 1}, {"x": {1, 2}}])
def test_bad_metadata_is_a_typed_error_and_writes_nothing(ready: MongoDBSessionRepository, bad: Any) -> None:
    with pytest.raises(InvalidMetadataError):
        ready.update_metadata(SID, bad)
    assert ready.get_metadata(SID) == {}


@pytest.mark.parametrize("keys", [5, None, {"status": 1}])
def test_delete_metadata_with_keys_that_are_neither_a_key_nor_a_list_is_a_typed_error(
    ready: MongoDBSessionRepository, keys: Any
) -> None:
    ready.update_metadata(SID, {"status": "open"})
    with pytest.raises(InvalidInputError, match="metadata_keys must be a key or a list of keys"):
        ready.delete_metadata(SID, keys)
    assert ready.get_metadata(SID) == {"status": "open"}


def test_turn_totals_that_are_not_integer_counts_are_a_typed_error(ready: MongoDBSessionRepository) -> None:
    with pytest.raises(InvalidInputError, match="must be an integer count"):
        ready.set_message_metrics(SID, AID, 0, {"turn_usage": {}}, {"usage.totalTokens": "abc"})


@pytest.mark.parametrize(("model", "prompt"), [(5, None), (None, None), ("m", 7)])
def test_a_captured_config_that_is_not_text_is_a_typed_error(ready: MongoDBSessionRepository, model, prompt) -> None:
    with pytest.raises(InvalidInputError, match="model must be a string"):
        ready.capture_agent_config(SID, AID, model=model, system_prompt=prompt)
    assert ready.capture_agent_config(SID, AID, model="m", system_prompt="p") is True  # text is stored


def test_feedback_is_validated_and_timestamped(ready: MongoDBSessionRepository) -> None:
    entry = ready.add_feedback(SID, {"rating": "up", "comment": "good", "message_id": 3})
    ready.add_feedback(SID, {"rating": None})
    feedbacks = ready.get_feedbacks(SID)
    assert [f["rating"] for f in feedbacks] == ["up", None]
    assert feedbacks[0]["message_id"] == 3 and feedbacks[1]["comment"] == ""
    assert isinstance(feedbacks[0]["created_at"], datetime) and feedbacks[0]["created_at"].tzinfo is not None
    assert entry["rating"] == "up"
    with pytest.raises(InvalidFeedbackError):
        ready.add_feedback(SID, {"rating": "great"})
    assert len(ready.get_feedbacks(SID)) == 2


@pytest.mark.parametrize(
    "call",
    [
        lambda r: r.update_metadata("missing", {"a": 1}),
        lambda r: r.get_metadata("missing"),
        lambda r: r.delete_metadata("missing", ["a"]),
        lambda r: r.add_feedback("missing", {"rating": "up"}),
        lambda r: r.get_feedbacks("missing"),
        lambda r: r.get_session_viewer_password("missing"),
        lambda r: r.get_application_name("missing"),
        lambda r: r.list_agents("missing"),
        lambda r: r.get_guardrail_events("missing"),
    ],
)
def test_a_missing_session_is_a_typed_error_where_the_original_returned_none(
    ready: MongoDBSessionRepository, call: Any
) -> None:
    with pytest.raises(SessionNotFoundError) as info:
        call(ready)
    assert info.value.session_id == "missing"


def test_each_feature_operation_is_one_command(monitored: MongoDBSessionRepository, commands: Commands) -> None:
    for call in (
        lambda: monitored.update_metadata(SID, {"a": 1}),
        lambda: monitored.get_metadata(SID),
        lambda: monitored.delete_metadata(SID, ["a"]),
        lambda: monitored.add_feedback(SID, {"rating": "down"}),
        lambda: monitored.get_feedbacks(SID),
        lambda: monitored.get_session_viewer_password(SID),
        lambda: monitored.get_application_name(SID),
        lambda: monitored.list_agents(SID),
        lambda: monitored.get_agent_config(SID, AID),
        lambda: monitored.set_prompt_metadata(SID, AID, {"prompt_id": "p"}),
        lambda: monitored.update_agent_config(SID, AID, model="m"),
    ):
        commands.names.clear()
        call()
        assert len(commands.names) == 1, commands.names


# ---- viewer password and application name -------------------------------------------------------------


def test_viewer_password_is_stable_and_legacy_sessions_get_exactly_one(
    ready: MongoDBSessionRepository, collection: Any
) -> None:
    password = ready.get_session_viewer_password(SID)
    assert len(password) == 32 and password.isalnum()
    assert ready.get_session_viewer_password(SID) == password
    collection.insert_one({"_id": "legacy", "session_id": "legacy", "agents": {}})
    seen: list[str] = []
    threads = [
        threading.Thread(target=lambda: seen.append(ready.get_session_viewer_password("legacy"))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(seen)) == 1 and stored_password(collection, "legacy") == seen[0]


def stored_password(collection: Any, sid: str) -> str:
    return collection.find_one({"_id": sid})["session_viewer_password"]


def test_application_name_is_stored_once_indexed_and_immutable(
    mongo_client: MongoClient[Any], db_name: str, collection: Any
) -> None:
    repo = MongoDBSessionRepository(
        client=mongo_client, database_name=db_name, collection_name="sessions", application_name="billing"
    )
    repo.create_session(Session(session_id=SID, session_type=SessionType.AGENT))
    assert stored(collection)["application_name"] == "billing"
    assert repo.get_application_name(SID) == "billing"
    keys = [dict(index["key"]) for index in collection.index_information().values()]
    assert any(next(iter(key)) == "application_name" for key in keys), keys
    other = MongoDBSessionRepository(
        client=mongo_client, database_name=db_name, collection_name="sessions", application_name="support"
    )
    # No operation can change it: every feature write leaves it as created.
    other.update_metadata(SID, {"application_name": "support"})
    other.create_agent(SID, SessionAgent(agent_id=AID, state={}, conversation_manager_state={}))
    other.update_agent_config(SID, AID, model="m", prompt_metadata={"prompt_id": "p"})
    assert other.get_application_name(SID) == "billing"
    plain = MongoDBSessionRepository(client=mongo_client, database_name=db_name, collection_name="sessions")
    plain.create_session(Session(session_id="no-app", session_type=SessionType.AGENT))
    assert plain.get_application_name("no-app") is None
    assert collection.find_one({"_id": "no-app"})["application_name"] is None


@pytest.mark.parametrize("bad", ["", "   ", 42, "a\x00b", "x" * 600])
def test_bad_application_name_is_refused(mongo_client: MongoClient[Any], bad: Any) -> None:
    with pytest.raises(InvalidInputError):
        MongoDBSessionRepository(client=mongo_client, application_name=bad)


def test_unknown_keyword_is_a_type_error_and_client_options_reach_the_owned_client(mongo_uri: str) -> None:
    with pytest.raises(TypeError, match="applicaton_name"):
        MongoDBSessionRepository(connection_string=mongo_uri, applicaton_name="typo")
    repo = MongoDBSessionRepository(connection_string=mongo_uri, application_name="ok", maxPoolSize=3)
    try:
        assert repo.client.options.pool_options.max_pool_size == 3
    finally:
        repo.close()


def test_client_options_with_a_borrowed_client_are_ignored_and_logged(
    mongo_client: MongoClient[Any], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        MongoDBSessionRepository(client=mongo_client, maxPoolSize=3)
    assert "maxPoolSize" in caplog.text


# ---- agents: timestamps beside agent_data, configuration, prompt metadata --------------------------------


def test_agent_timestamps_sit_beside_agent_data_and_created_at_survives_updates(
    ready: MongoDBSessionRepository, collection: Any
) -> None:
    entry = stored(collection)["agents"][AID]
    created, updated = entry["created_at"], entry["updated_at"]
    assert isinstance(created, datetime) and created == updated
    ready.update_agent(SID, SessionAgent(agent_id=AID, state={"k": 1}, conversation_manager_state={}))
    after = stored(collection)["agents"][AID]
    assert after["created_at"] == created and after["updated_at"] >= updated
    assert after["agent_data"]["state"] == {"k": 1}
    row = ready.get_agent_config(SID, AID)
    assert row is not None  # the repository reads dates as aware UTC; this raw collection reads them naive
    assert row["created_at"].replace(tzinfo=None) == created
    assert row["updated_at"].replace(tzinfo=None) == after["updated_at"]


def test_prompt_metadata_is_returned_and_survives_agent_syncs(ready: MongoDBSessionRepository) -> None:
    metadata = {
        "prompt_id": "p-1",
        "prompt_name": "Support",
        "prompt_version": "1.2.0",
        "deployment_id": "d-9",
        "deployment_name": "production",
        "temperature": 0.2,
    }
    ready.set_prompt_metadata(SID, AID, metadata)
    ready.update_agent(SID, SessionAgent(agent_id=AID, state={"after": "sync"}, conversation_manager_state={}))
    ready.capture_agent_config(SID, AID, model="m-1", system_prompt="You help.")
    config = ready.get_agent_config(SID, AID)
    assert config is not None and config["prompt_metadata"] == metadata
    assert config["model"] == "m-1" and config["system_prompt"] == "You help."
    assert ready.list_agents(SID)[0]["prompt_metadata"] == metadata
    ready.update_agent_config(SID, AID, prompt_metadata={"prompt_id": "p-2"})
    assert ready.get_agent_config(SID, AID)["prompt_metadata"] == {"prompt_id": "p-2"}  # type: ignore[index]


def test_prompt_metadata_errors_are_typed(ready: MongoDBSessionRepository) -> None:
    with pytest.raises(InvalidMetadataError):
        ready.set_prompt_metadata(SID, AID, {"temperature": "hot"})
    with pytest.raises(InvalidMetadataError):
        ready.set_prompt_metadata(SID, AID, {"$bad": 1})
    with pytest.raises(AgentNotFoundError):
        ready.set_prompt_metadata(SID, "nobody", {"prompt_id": "p"})
    assert ready.get_agent_config(SID, "nobody") is None
    assert ready.get_agent_config(SID, AID)["prompt_metadata"] is None  # type: ignore[index]


def test_list_agents_always_returns_every_key(ready: MongoDBSessionRepository) -> None:
    (row,) = ready.list_agents(SID)
    assert set(row) >= {"agent_id", "model", "system_prompt", "prompt_metadata", "created_at", "updated_at"}
    assert row["model"] is None and row["message_count"] == 0 and row["totals"] == {}


def test_sessions_written_by_the_original_library_are_read(ready: MongoDBSessionRepository, collection: Any) -> None:
    """v0.9.1 kept prompt_metadata inside agent_data and the timestamps beside it; 0.3 had neither."""
    legacy_created = datetime(2025, 1, 2, 3, 4, 5)
    collection.insert_one(
        {
            "_id": "v091",
            "session_id": "v091",
            "application_name": "legacy-app",
            "session_viewer_password": "p" * 32,
            "metadata": {"status": "done"},
            "feedbacks": [{"rating": "down", "comment": "slow", "created_at": legacy_created}],
            "agents": {
                "a": {
                    "agent_data": {"agent_id": "a", "state": {}, "model": "m", "prompt_metadata": {"prompt_id": "old"}},
                    "created_at": legacy_created,
                    "updated_at": legacy_created,
                    "messages": [{"message_id": 0, "message": {"role": "user", "content": [{"text": "x"}]}}],
                }
            },
        }
    )
    (row,) = ready.list_agents("v091")
    assert row["prompt_metadata"] == {"prompt_id": "old"} and row["model"] == "m" and row["message_count"] == 1
    assert row["created_at"].replace(tzinfo=None) == legacy_created
    assert ready.get_application_name("v091") == "legacy-app"
    assert ready.get_metadata("v091") == {"status": "done"}
    assert ready.get_feedbacks("v091")[0]["comment"] == "slow"
    assert ready.get_guardrail_events("v091") == []


# ---- guardrail auditing --------------------------------------------------------------------------------------


def test_redact_message_stores_the_redaction_and_both_events_in_one_update(
    monitored: MongoDBSessionRepository, commands: Commands
) -> None:
    redacted = SessionMessage(
        message={"role": "user", "content": [{"text": "hi"}]},
        message_id=0,
        redact_message={"role": "user", "content": [{"text": "[blocked]"}]},
    )
    event = monitored.redact_message(
        SID, AID, redacted, stop_reason="guardrail_intervened", guardrail_trace=GUARDRAIL_TRACE
    )
    # One update stores everything; the find looks for out-of-line blocks the previous version of the
    # message referred to, so that no copy of redacted content stays in GridFS.
    assert commands.names == ["update", "find"]
    doc = monitored.collection.find_one({"_id": SID})
    message = doc["agents"][AID]["messages"][0]
    assert message["redact_message"]["content"][0]["text"] == "[blocked]"
    on_message = message["guardrail_event"]
    assert on_message["action"] == "BLOCKED" and on_message["stop_reason"] == "guardrail_intervened"
    assert on_message["trace"] == GUARDRAIL_TRACE
    assert on_message["policies_triggered"] == {
        "contentPolicy": ["HATE/HIGH"],
        "sensitiveInformationPolicy": ["EMAIL/ANONYMIZED"],
        "topicPolicy": ["Investing/BLOCKED"],
    }
    (listed,) = monitored.get_guardrail_events(SID)
    assert listed["message_id"] == 0 and listed["agent_id"] == AID and "trace" not in listed
    assert listed["policies_triggered"] == on_message["policies_triggered"] == event["policies_triggered"]
    assert monitored.read_message(SID, AID, 0).to_message()["content"][0]["text"] == "[blocked]"  # type: ignore[union-attr]


def test_guardrail_event_of_a_missing_message_writes_nothing(ready: MongoDBSessionRepository) -> None:
    with pytest.raises(MessageNotFoundError):
        ready.record_guardrail_event(SID, AID, 7, action="MASKED")
    with pytest.raises(InvalidInputError):
        ready.record_guardrail_event(SID, AID, 0, action="")
    assert ready.get_guardrail_events(SID) == []
