"""Session features against the real mongod: metadata (+ tool, hooks), feedback, metrics, config, password."""

from __future__ import annotations

import logging
import string
from typing import Any

import pytest
from pymongo import MongoClient, monitoring
from strands import Agent

from mongodb_session_manager import MongoDBSessionManager
from mongodb_session_manager.demo import calculator
from mongodb_session_manager.errors import (
    AgentNotFoundError,
    InvalidFeedbackError,
    InvalidMetadataError,
    SessionStoreError,
)
from mongodb_session_manager.testing import Reply, ScriptedModel, ToolCall


@pytest.fixture
def default_session_id() -> str:
    return "feature-session"


def tool_result_text(message: dict[str, Any]) -> str:
    return message["content"][0]["toolResult"]["content"][0]["text"]


def make_agent(manager: MongoDBSessionManager, responses: list[Any] | None = None, **kwargs: Any) -> Agent:
    kwargs.setdefault("agent_id", "assistant")
    return Agent(model=ScriptedModel(responses), session_manager=manager, callback_handler=None, **kwargs)


# ---- metadata ------------------------------------------------------------------------------------


def test_update_metadata_is_partial_and_get_returns_plain_dict(make_manager, collection) -> None:
    manager = make_manager()
    assert manager.get_metadata() == {}
    manager.update_metadata({"priority": "high", "customer": {"name": "Ada", "tier": 2}})
    manager.update_metadata({"priority": "low"})
    assert manager.get_metadata() == {"priority": "low", "customer": {"name": "Ada", "tier": 2}}
    stored = collection.find_one({"_id": "feature-session"})
    assert stored["metadata"]["customer"]["tier"] == 2


def test_delete_metadata_removes_only_named_keys(make_manager) -> None:
    manager = make_manager()
    manager.update_metadata({"a": 1, "b": 2, "c": 3})
    manager.delete_metadata(["a", "c"])
    assert manager.get_metadata() == {"b": 2}


@pytest.mark.parametrize("bad_key", ["$where", "a.b", "nul\x00", "", 5])
def test_bad_metadata_keys_are_refused_and_nothing_is_written(make_manager, bad_key: Any) -> None:
    manager = make_manager()
    manager.update_metadata({"kept": True})
    with pytest.raises(InvalidMetadataError):
        manager.update_metadata({"fine": 1, bad_key: "x"})
    assert manager.get_metadata() == {"kept": True}


def test_unencodable_metadata_value_is_refused(make_manager) -> None:
    manager = make_manager()
    with pytest.raises(InvalidMetadataError, match="cannot be stored"):
        manager.update_metadata({"tags": {"a", "b"}})
    assert manager.get_metadata() == {}


def test_metadata_fields_are_indexed(make_manager, collection) -> None:
    make_manager(metadata_fields=["status", "priority"])
    keys = {next(iter(ix["key"])) for ix in collection.list_indexes()}
    assert {"metadata.status", "metadata.priority", "created_at", "updated_at"} <= keys


# ---- metadata tool ----------------------------------------------------------------------------------


def test_agent_sets_and_reads_metadata_through_the_tool(make_manager) -> None:
    manager = make_manager()
    agent = make_agent(
        manager,
        [
            ToolCall("manage_metadata", {"action": "set", "metadata": {"favourite_colour": "blue"}}),
            "Stored.",
            ToolCall("manage_metadata", {"action": "get"}),
            lambda messages, specs: Reply(
                text="You told me: " + messages[-1]["content"][0]["toolResult"]["content"][0]["text"]
            ),
        ],
        tools=[manager.get_metadata_tool()],
    )
    agent("Remember that my favourite colour is blue")
    assert manager.get_metadata() == {"favourite_colour": "blue"}
    reply = str(agent("What do you know about me?"))
    assert "favourite_colour" in reply and "blue" in reply


def refused(result: Any) -> str:
    """A refusal is a tool result with status "error", so the model knows the call failed."""
    assert isinstance(result, dict) and result["status"] == "error", result
    return result["content"][0]["text"]


def test_tool_accepts_json_strings_and_reports_errors_to_the_model(make_manager) -> None:
    manager = make_manager()
    tool = manager.get_metadata_tool()
    assert tool(action="set", metadata='{"plan": "pro", "seats": 3}').startswith("Metadata updated")
    assert manager.get_metadata() == {"plan": "pro", "seats": 3}
    assert "plan" in tool(action="get", keys='["plan"]')
    assert tool(action="delete", keys="seats").startswith("Metadata deleted")
    assert manager.get_metadata() == {"plan": "pro"}
    assert "unknown action" in refused(tool(action="explode"))
    assert refused(tool(action="set", metadata="{not json"))
    assert refused(tool(action="set", metadata={"$bad": 1}))
    assert refused(tool(action="delete"))
    assert manager.get_metadata() == {"plan": "pro"}


def test_tool_never_overwrites_the_connection_id(make_manager) -> None:
    manager = make_manager()
    manager.update_metadata({"ws_connection_id": "conn-1"})
    tool = manager.get_metadata_tool()
    assert refused(tool(action="set", metadata={"ws_connection_id": "evil"}))
    assert refused(tool(action="delete", keys=["connection_id"]))
    assert manager.get_metadata()["ws_connection_id"] == "conn-1"


# ---- metadata hooks ---------------------------------------------------------------------------------


def test_metadata_hook_sees_every_operation_and_can_audit(make_manager) -> None:
    calls: list[tuple[str, str, dict[str, Any]]] = []

    def audit(original, action, session_id, **kwargs):
        calls.append((action, session_id, {k: v for k, v in kwargs.items() if k != "session_manager"}))
        if action == "update":
            return original(kwargs["metadata"])
        if action == "delete":
            return original(kwargs["keys"])
        return original()

    manager = make_manager(metadata_hook=audit)
    manager.update_metadata({"x": 1})
    assert manager.get_metadata() == {"x": 1}
    manager.delete_metadata(["x"])
    assert [c[0] for c in calls] == ["update", "get", "delete"]
    assert calls[0] == ("update", "feature-session", {"metadata": {"x": 1}})
    assert calls[2][2] == {"keys": ["x"]}


def test_validating_hook_refusal_leaves_data_unchanged(make_manager) -> None:
    def validate(original, action, session_id, **kwargs):
        if action == "update" and kwargs["metadata"].get("status", "open") not in {"open", "closed"}:
            raise ValueError("invalid status")
        if action == "update":
            return original(kwargs["metadata"])
        return original(kwargs["keys"]) if action == "delete" else original()

    manager = make_manager(metadata_hook=validate)
    manager.update_metadata({"status": "open"})
    with pytest.raises(ValueError, match="invalid status"):
        manager.update_metadata({"status": "exploded", "other": 1})
    assert manager.get_metadata() == {"status": "open"}


def test_enriching_and_caching_hooks(make_manager, mongo_client, db_name) -> None:
    cache: dict[str, dict[str, Any]] = {}
    reads = {"db": 0}

    def enrich_and_cache(original, action, session_id, **kwargs):
        if action == "update":
            cache.pop(session_id, None)
            return original({**kwargs["metadata"], "last_modified_by": "hook"})
        if action == "get":
            if session_id not in cache:
                reads["db"] += 1
                cache[session_id] = original()
            return cache[session_id]
        cache.pop(session_id, None)
        return original(kwargs["keys"])

    manager = make_manager(metadata_hook=enrich_and_cache)
    manager.update_metadata({"topic": "billing"})
    assert manager.get_metadata() == {"topic": "billing", "last_modified_by": "hook"}
    manager.get_metadata()
    assert reads["db"] == 1


def test_metadata_tool_goes_through_the_hook(make_manager) -> None:
    seen: list[str] = []

    def hook(original, action, session_id, **kwargs):
        seen.append(action)
        return original(kwargs["metadata"]) if action == "update" else original()

    manager = make_manager(metadata_hook=hook)
    manager.get_metadata_tool()(action="set", metadata={"k": "v"})
    # The write goes through the hook (the tool may read first, e.g. to check the key cap).
    assert seen[-1] == "update" and set(seen) <= {"get", "update"}


# ---- feedback ---------------------------------------------------------------------------------------


def test_feedback_is_appended_with_utc_timestamp(make_manager) -> None:
    manager = make_manager()
    manager.add_feedback({"rating": "up", "comment": "Great answer"})
    manager.add_feedback({"rating": None, "comment": "meh"})
    manager.add_feedback({"rating": "down", "comment": "wrong"})
    feedbacks = manager.get_feedbacks()
    assert [f["rating"] for f in feedbacks] == ["up", None, "down"]
    assert feedbacks[0]["comment"] == "Great answer"
    assert feedbacks[0]["created_at"].utcoffset().total_seconds() == 0


@pytest.mark.parametrize("bad", [{"rating": "great"}, {"rating": 5}, {"rating": "up", "comment": 3}, "up", {"$x": 1}])
def test_invalid_feedback_is_refused(make_manager, bad: Any) -> None:
    manager = make_manager()
    with pytest.raises(InvalidFeedbackError):
        manager.add_feedback(bad)
    assert manager.get_feedbacks() == []


def test_feedback_hook_intercepts_and_can_refuse(make_manager) -> None:
    audited: list[dict[str, Any]] = []

    def hook(original, action, session_id, **kwargs):
        assert action == "add"
        if kwargs["feedback"].get("comment") == "spam":
            raise PermissionError("refused")
        audited.append(kwargs["feedback"])
        return original(kwargs["feedback"])

    manager = make_manager(feedback_hook=hook)
    manager.add_feedback({"rating": "down", "comment": "slow"})
    with pytest.raises(PermissionError):
        manager.add_feedback({"rating": "down", "comment": "spam"})
    assert audited == [{"rating": "down", "comment": "slow"}]
    assert [f["comment"] for f in manager.get_feedbacks()] == ["slow"]


# ---- metrics ----------------------------------------------------------------------------------------


def test_metrics_of_a_multi_turn_conversation_with_a_tool_call(make_manager, collection) -> None:
    manager = make_manager()
    model = ScriptedModel(
        [Reply("Calculating.", [ToolCall("calculator", {"expression": "6 * 7"})]), "It is 42.", "Anything else?"],
        cache_read_tokens=5,
    )
    agent = Agent(agent_id="calc", model=model, tools=[calculator], session_manager=manager, callback_handler=None)
    agent("What is 6 * 7?")
    agent("Thanks")

    messages = collection.find_one({"_id": "feature-session"})["agents"]["calc"]["messages"]
    with_metrics = [m for m in messages if "event_loop_metrics" in m]
    assert [m["message_id"] for m in with_metrics] == [3, 5]  # the last assistant message of each turn
    first, second = (m["event_loop_metrics"] for m in with_metrics)
    assert first["turn_cycle_count"] == 2 and first["turn_tool_calls"] == {"calculator": 1}
    assert first["turn_usage"]["totalTokens"] > 0
    assert first["turn_metrics"]["latencyMs"] == 2 * model.latency_ms
    assert first["tool_usage"]["calculator"]["success_count"] == 1
    assert second["turn_cycle_count"] == 1 and second["turn_tool_calls"] == {}
    assert second["accumulated_usage"]["totalTokens"] == (
        first["turn_usage"]["totalTokens"] + second["turn_usage"]["totalTokens"]
    )
    assert second["accumulated_usage"].get("cacheReadInputTokens", 0) >= 5
    assert "traces" not in first  # the compact summary, not get_summary() wholesale

    totals = collection.find_one({"_id": "feature-session"})["agents"]["calc"]["agent_data"]["totals"]
    assert totals["turns"] == 2 and totals["tool_calls"]["calculator"] == 1
    assert totals["usage"]["totalTokens"] == second["accumulated_usage"]["totalTokens"]

    # Strands gets plain SessionMessages back: no metrics field.
    listed = manager.session_repository.list_messages("feature-session", "calc")
    assert all(not hasattr(m, "event_loop_metrics") for m in listed)
    assert all("event_loop_metrics" not in m.to_dict() for m in listed)


def test_metrics_are_written_even_when_agent_state_is_unchanged(make_manager, collection) -> None:
    manager = make_manager()
    agent = make_agent(manager, ["one", "two", "three"])
    for prompt in ("a", "b", "c"):
        agent(prompt)
    messages = collection.find_one({"_id": "feature-session"})["agents"]["assistant"]["messages"]
    assert sum("event_loop_metrics" in m for m in messages) == 3


def test_message_count_is_computed_per_agent_and_per_session(make_manager) -> None:
    manager = make_manager()
    make_agent(manager, ["hi"], agent_id="a")("hello")
    second = make_agent(manager, ["x", "y"], agent_id="b")
    second("1")
    second("2")
    assert manager.get_message_count("a") == 2
    assert manager.get_message_count("b") == 4
    assert manager.get_message_count() == 6


# ---- agent configuration ------------------------------------------------------------------------------


def test_agent_config_is_captured_and_persists_across_managers(make_manager) -> None:
    manager = make_manager()
    agent = Agent(
        agent_id="support",
        model=ScriptedModel(["hi"], model_id="eu.anthropic.claude-sonnet-4"),
        system_prompt="You are a friendly support agent.",
        session_manager=manager,
        callback_handler=None,
    )
    agent("Hello")
    config = make_manager().get_agent_config("support")
    assert config is not None
    assert config["model"] == "eu.anthropic.claude-sonnet-4"
    assert config["system_prompt"] == "You are a friendly support agent."
    assert make_manager().get_agent_config("nobody") is None


def support_agent(manager: MongoDBSessionManager, reply: list[str], prompt: str = "Prompt A") -> Agent:
    return Agent(
        agent_id="support",
        model=ScriptedModel(reply, model_id="model-a"),
        system_prompt=prompt,
        session_manager=manager,
        callback_handler=None,
    )


def test_update_agent_config_survives_syncs_until_the_agent_config_changes(make_manager) -> None:
    manager = make_manager()
    agent = support_agent(manager, ["a", "b"])
    agent("1")
    manager.update_agent_config("support", model="model-b", system_prompt="$5 off everything")
    agent("2")  # same agent config: the override stays
    assert manager.get_agent_config("support")["model"] == "model-b"
    assert manager.get_agent_config("support")["system_prompt"] == "$5 off everything"

    # A fresh manager (new request) with the same unchanged agent config keeps the override too.
    fresh = make_manager()
    support_agent(fresh, ["c"])("3")
    assert fresh.get_agent_config("support")["model"] == "model-b"

    # The agent's own config changed: it wins for that field, the override of the other stays.
    latest = make_manager()
    support_agent(latest, ["d"], prompt="Prompt C")("4")
    config = latest.get_agent_config("support")
    assert config["system_prompt"] == "Prompt C" and config["model"] == "model-b"


def test_list_agents_returns_ids_configs_and_counts(make_manager) -> None:
    manager = make_manager()
    make_agent(manager, ["x"], agent_id="a", system_prompt="A")("hi")
    make_agent(manager, ["y"], agent_id="b", system_prompt="B")("hi")
    agents = {a["agent_id"]: a for a in manager.list_agents()}
    assert set(agents) == {"a", "b"}
    assert agents["a"]["system_prompt"] == "A" and agents["b"]["message_count"] == 2
    assert agents["a"]["model"] == "scripted-offline-model"


def test_agent_config_keys_exist_before_the_first_invocation(make_manager) -> None:
    manager = make_manager()
    make_agent(manager, [])  # initialised (stored) but never invoked
    config = manager.get_agent_config("assistant")
    assert config is not None and config["model"] is None and config["system_prompt"] is None


def test_update_agent_config_of_missing_agent_raises(make_manager) -> None:
    with pytest.raises(AgentNotFoundError):
        make_manager().update_agent_config("ghost", model="m")


# ---- viewer password ------------------------------------------------------------------------------------


def test_every_session_gets_a_strong_viewer_password_that_is_never_logged(make_manager, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="mongodb_session_manager")
    first = make_manager("s-one")
    second = make_manager("s-two")
    make_agent(first, ["ok"])("hello")
    password = first.get_session_viewer_password()
    assert len(password) == 32 and set(password) <= set(string.ascii_letters + string.digits)
    assert password != second.get_session_viewer_password()
    assert make_manager("s-one").get_session_viewer_password() == password  # stable across managers
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("mongodb_session_manager")]
    assert ours and not any(password in line for line in ours)


def test_legacy_session_without_password_gets_one(make_manager, collection) -> None:
    make_manager("legacy")
    collection.update_one({"_id": "legacy"}, {"$unset": {"session_viewer_password": ""}})
    password = make_manager("legacy").get_session_viewer_password()
    assert len(password) == 32
    assert collection.find_one({"_id": "legacy"})["session_viewer_password"] == password


def test_feature_errors_are_session_exceptions_with_the_session_id(make_manager) -> None:
    with pytest.raises(SessionStoreError, match="feature-session"):
        make_manager().update_metadata({"a.b": 1})


# ---- persistence cost ---------------------------------------------------------------------------------


class _Commands(monitoring.CommandListener):
    def __init__(self) -> None:
        self.names: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name not in ("hello", "ismaster", "endSessions"):
            self.names.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def test_a_turn_with_a_fresh_manager_per_request_costs_two_writes(mongo_uri: str, db_name: str) -> None:
    listener = _Commands()
    client: MongoClient[Any] = MongoClient(mongo_uri, event_listeners=[listener])
    try:
        first = MongoDBSessionManager("per-request", client=client, database_name=db_name)
        make_agent(first, ["hello"])("hi")
        for request in range(2):  # what a FastAPI/Lambda service does on every request
            manager = MongoDBSessionManager("per-request", client=client, database_name=db_name)
            agent = make_agent(manager, [f"reply {request}"])
            listener.names.clear()
            agent(f"question {request}")
            # the turn's lease, then one commit (messages, metrics, agent state): no config re-write
            assert listener.names == ["update", "update"]
    finally:
        client.close()


def test_state_changes_are_still_written_with_a_fresh_manager(make_manager) -> None:
    agent = make_agent(make_manager("stateful"), ["a"])
    agent("one")
    manager = make_manager("stateful")
    restored = make_agent(manager, ["b"])
    restored.state.set("cart", ["book"])
    restored("two")
    again = make_agent(make_manager("stateful"), [])
    assert again.state.get("cart") == ["book"]
