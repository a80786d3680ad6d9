"""Scale-out readiness (docs/user-guide/scale-out.md).

Production runs on a replica set or a sharded cluster, reached through the normal topology
discovery (``directConnection`` off), never a pinned single host. And every command the library
sends for a session names that session's ``_id`` exactly, which is what lets a sharded cluster
with the shard key on ``_id`` route it to one shard instead of broadcasting it.
"""

from __future__ import annotations

from typing import Any

import pytest
from pymongo import MongoClient, monitoring
from strands import Agent

from mongodb_session_manager import MongoDBSessionManager, MongoDBSessionManagerFactory
from mongodb_session_manager.demo import calculator
from mongodb_session_manager.testing import ScriptedModel


class Commands(monitoring.CommandListener):
    """Records every command sent, for checking how it would be routed."""

    def __init__(self) -> None:
        self.commands: list[tuple[str, dict[str, Any]]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.commands.append((event.command_name, dict(event.command)))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def conversation(manager: MongoDBSessionManager) -> None:
    """Everything a session sees in practice: turns with a tool, metadata, feedback, config, counts."""
    agent = Agent(
        agent_id="assistant",
        model=ScriptedModel(),
        tools=[calculator],
        session_manager=manager,
        callback_handler=None,
        system_prompt="You are terse.",
    )
    agent("What is 6 * 7?")
    agent("thanks")
    manager.update_metadata({"customer": "ada", "priority": "high"})
    manager.delete_metadata(["priority"])
    manager.add_feedback({"rating": "up", "comment": "good"})
    manager.update_agent_config("assistant", model="override-model")
    assert manager.get_metadata() == {"customer": "ada"}
    assert [f["comment"] for f in manager.get_feedbacks()] == ["good"]
    assert manager.get_message_count() >= 4
    assert manager.get_agent_config("assistant")["model"] == "override-model"
    manager.get_session_viewer_password()


def test_replica_set_uri_with_direct_connection_off_discovers_the_set_and_works(mongo_uri: str, db_name: str) -> None:
    if "replicaSet=" not in mongo_uri:
        pytest.skip("MONGODB_CONNECTION_STRING is not a replica-set URI")
    manager = MongoDBSessionManager(
        "scale-out-direct-off",
        connection_string=mongo_uri,
        database_name=db_name,
        collection_name="sessions",
        directConnection=False,
        w="majority",
        retryWrites=True,
    )
    factory = MongoDBSessionManagerFactory(
        mongo_uri, database_name=db_name, collection_name="sessions", directConnection=False, w="majority"
    )
    try:
        conversation(manager)
        description = manager.repository.client.topology_description
        assert description.topology_type_name == "ReplicaSetWithPrimary"
        assert manager.repository.client.options.write_concern.document == {"w": "majority"}

        resumed = factory.create_session_manager("scale-out-direct-off")
        agent = Agent(agent_id="assistant", model=ScriptedModel(), session_manager=resumed, callback_handler=None)
        assert len(agent.messages) == manager.get_message_count("assistant")
        assert factory.client.topology_description.topology_type_name == "ReplicaSetWithPrimary"
    finally:
        manager.close()
        factory.close()


def _session_filter(name: str, command: dict[str, Any], collection: str) -> list[Any]:
    """The filters a session command uses to find its document ([] for commands on other things)."""
    if command.get(name) != collection:
        return []
    if name == "find":
        return [command.get("filter", {})]
    if name in ("update", "delete"):
        key = "updates" if name == "update" else "deletes"
        return [statement["q"] for statement in command[key]]
    if name == "findAndModify":
        return [command.get("query", {})]
    if name == "aggregate":
        first = command["pipeline"][0] if command["pipeline"] else {}
        return [first.get("$match", {})]
    if name == "count":
        return [command.get("query", {})]
    return []


def test_every_session_command_targets_one_document_by_id(mongo_uri: str, db_name: str) -> None:
    """With the shard key on ``_id`` (hashed or ranged), each of these commands is routed to one shard."""
    listener = Commands()
    client: MongoClient[Any] = MongoClient(mongo_uri, event_listeners=[listener])
    try:
        manager = MongoDBSessionManager(
            "routed-session", client=client, database_name=db_name, collection_name="sessions"
        )
        conversation(manager)
        manager.repository.delete_session("routed-session")
    finally:
        client.close()

    session_commands = [
        (name, f)
        for name, command in listener.commands
        for f in _session_filter(name, command, "sessions")
        if name not in ("createIndexes",)
    ]
    names = {name for name, _ in session_commands}
    assert {"find", "update", "aggregate", "delete"} <= names, names
    assert "findAndModify" not in names, "no command makes the server keep a copy of the whole document"
    for name, query in session_commands:
        assert query.get("_id") == "routed-session", f"{name} does not target the session by _id: {query}"
