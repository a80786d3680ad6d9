"""What code written for the original library expects of the manager and the factory (issue 15).

Import paths, keyword handling (camelCase hooks deprecated, unknown names refused), the
application name, prompt metadata, guardrail auditing and ``sync_agent`` on an agent the manager
never initialised, all on the real mongod with real Strands agents where a turn is involved.
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterable
from typing import Any
from unittest.mock import MagicMock

import pytest
from pymongo import MongoClient
from strands import Agent
from strands.types.content import Messages
from strands.types.streaming import StreamEvent

from mongodb_session_manager import MongoDBSessionManager, MongoDBSessionManagerFactory
from mongodb_session_manager.errors import MessageNotFoundError
from mongodb_session_manager.hooks.metadata_websocket_hook import stored_connection_id
from mongodb_session_manager.testing import ScriptedModel


@pytest.fixture
def default_session_id() -> str:
    return "features-session"


def noop_hook(original_func: Any, action: str, session_id: str, **kwargs: Any) -> Any:
    argument = {"update": "metadata", "delete": "keys", "add": "feedback"}.get(action)
    return original_func() if argument is None else original_func(kwargs[argument])


class GuardrailModel(ScriptedModel):
    """A model whose guardrail blocks the prompt: Strands then asks the manager to redact it."""

    async def stream(
        self, messages: Messages, tool_specs: Any = None, system_prompt: str | None = None, **kwargs: Any
    ) -> AsyncIterable[StreamEvent]:
        self.calls.append(list(messages))
        yield {"messageStart": {"role": "assistant"}}
        yield {"contentBlockDelta": {"delta": {"text": "I cannot help with that."}}}
        yield {"contentBlockStop": {}}
        yield {"redactContent": {"redactUserContentMessage": "[blocked by guardrail]"}}  # type: ignore[typeddict-item]
        yield {"messageStop": {"stopReason": "guardrail_intervened"}}
        yield {
            "metadata": {"usage": {"inputTokens": 3, "outputTokens": 5, "totalTokens": 8}, "metrics": {"latencyMs": 1}}
        }


# ---- import paths and keyword handling ----------------------------------------------------------------


def test_the_original_import_paths_work() -> None:
    import mongodb_session_manager
    from mongodb_session_manager.hooks.feedback_sns_hook import create_feedback_hook
    from mongodb_session_manager.hooks.metadata_sqs_hook import create_metadata_hook as create_sqs
    from mongodb_session_manager.hooks.metadata_websocket_hook import create_metadata_hook as create_ws
    from mongodb_session_manager.mongodb_session_manager import create_mongodb_session_manager

    assert create_mongodb_session_manager is mongodb_session_manager.create_mongodb_session_manager
    sns = create_feedback_hook("arn:aws:sns:eu-west-1:123456789012:good", "none", "none", "[P] ")
    assert sns.topics == {"good": "arn:aws:sns:eu-west-1:123456789012:good", "bad": None, "neutral": None}
    assert sns.subject_prefixes["good"] == "[P] " and sns.regions == {"good": "eu-west-1"}
    sqs = create_sqs("https://sqs.eu-west-1.amazonaws.com/123456789012/q", [])
    assert sqs.metadata_fields is None, "as in the original, an empty list sends every field"
    ws = create_ws("wss://abc.execute-api.eu-west-1.amazonaws.com/prod", ["status"])
    assert ws.region == "eu-west-1" and ws.metadata_fields == frozenset({"status"})
    # The classes take the original's positional arguments too (None prefixes mean none).
    from mongodb_session_manager.hooks import FeedbackSNSHook, MetadataWebSocketHook

    arn = "arn:aws:sns:eu-west-1:123456789012:t"
    assert FeedbackSNSHook(arn, arn, None, "[S] ", None, None, "B: ").body_prefixes["good"] == "B: "
    assert MetadataWebSocketHook("https://abc.execute-api.us-east-1.amazonaws.com/prod", None, "us-east-2").region == (
        "us-east-2"
    )


def test_camel_case_hooks_warn_and_still_work(make_manager, mongo_uri: str, db_name: str) -> None:
    from mongodb_session_manager.mongodb_session_manager import create_mongodb_session_manager

    with pytest.warns(DeprecationWarning, match="metadataHook is deprecated, use metadata_hook"):
        manager = make_manager(metadataHook=noop_hook)
    assert manager.metadata_hook is noop_hook
    with pytest.warns(DeprecationWarning, match="feedbackHook"):
        created = create_mongodb_session_manager(
            "camel", connection_string=mongo_uri, database_name=db_name, feedbackHook=noop_hook
        )
    assert created.feedback_hook is noop_hook
    created.close()
    with pytest.warns(DeprecationWarning, match="metadataHook"):
        factory = MongoDBSessionManagerFactory(mongo_uri, database_name=db_name, metadataHook=noop_hook)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the factory renamed it once: its managers do not warn again
        assert factory.create_session_manager("from-factory").metadata_hook is noop_hook
    factory.close()
    with pytest.raises(TypeError, match="both metadataHook and metadata_hook"), pytest.warns(DeprecationWarning):
        make_manager(metadataHook=noop_hook, metadata_hook=lambda *a, **k: None)


def test_snake_case_hooks_are_positional_as_in_the_original(mongo_client: MongoClient[Any], db_name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        manager = MongoDBSessionManager(
            "positional", None, db_name, "sessions", mongo_client, ["status"], noop_hook, noop_hook, "app-pos"
        )
    assert manager.metadata_hook is noop_hook and manager.feedback_hook is noop_hook
    assert manager.get_application_name() == "app-pos"
    with pytest.raises(TypeError, match="metadata_hook must be a callable"):
        MongoDBSessionManager("positional", client=mongo_client, database_name=db_name, metadata_hook="nope")


def test_unknown_keyword_arguments_raise_type_error_naming_them(make_manager, mongo_uri: str, db_name: str) -> None:
    with pytest.raises(TypeError, match="'metadata_feilds'"):
        make_manager(metadata_feilds=["status"])
    with pytest.raises(TypeError, match="'pool_size'"):
        MongoDBSessionManagerFactory(mongo_uri, database_name=db_name, pool_size=3)
    factory = MongoDBSessionManagerFactory(mongo_uri, database_name=db_name, maxPoolSize=4)
    try:
        with pytest.raises(TypeError, match="'colection_name'"):
            factory.create_session_manager("typo", colection_name="x")
    finally:
        factory.close()


# ---- application_name ------------------------------------------------------------------------------------


def test_application_name_factory_default_and_per_session_override(mongo_uri: str, db_name: str) -> None:
    factory = MongoDBSessionManagerFactory(mongo_uri, database_name=db_name, application_name="billing")
    try:
        assert factory.create_session_manager("s-default").get_application_name() == "billing"
        assert factory.create_session_manager("s-custom", application_name="support").get_application_name() == (
            "support"
        )
        # Immutable: reopening the session under another name changes nothing.
        assert factory.create_session_manager("s-default", application_name="other").get_application_name() == (
            "billing"
        )
    finally:
        factory.close()
    plain = MongoDBSessionManagerFactory(mongo_uri, database_name=db_name)
    try:
        assert plain.create_session_manager("s-none").get_application_name() is None
    finally:
        plain.close()


# ---- agent configuration written by code for the original library -------------------------------------------


def mock_agent(agent_id: str, *, model_id: str | None = None, system_prompt: str | None = None) -> MagicMock:
    """The stand-in agent the original library's own integration tests sync."""
    agent = MagicMock()
    agent.agent_id = agent_id
    agent.messages = []
    agent.system_prompt = system_prompt
    if model_id is None:
        agent.model = None
    else:
        agent.model.config = {"model_id": model_id}
    agent.state.get.return_value = {"from": "mock"}
    return agent


def test_sync_agent_of_an_agent_never_initialised_creates_it_and_records_its_config(make_manager) -> None:
    manager = make_manager()
    manager.sync_agent(mock_agent("ext", model_id="claude-3-sonnet", system_prompt="You are helpful"))
    manager.sync_agent(mock_agent("bare", system_prompt="Only a prompt"))
    config = manager.get_agent_config("ext")
    assert config is not None and config["model"] == "claude-3-sonnet" and config["system_prompt"] == "You are helpful"
    assert manager.get_agent_config("bare")["system_prompt"] == "Only a prompt"  # type: ignore[index]
    manager.sync_agent(mock_agent("ext", model_id="claude-3-sonnet", system_prompt="You are helpful"))  # exists now
    assert {a["agent_id"] for a in manager.list_agents()} == {"ext", "bare"}
    assert manager.repository.read_agent(manager.session_id, "ext").state == {"from": "mock"}  # type: ignore[union-attr]


def test_prompt_metadata_survives_the_next_turns_of_a_real_agent(make_manager) -> None:
    manager = make_manager()
    agent = Agent(
        model=ScriptedModel(["one", "two"], model_id="m-1"),
        session_manager=manager,
        agent_id="support",
        system_prompt="You are support.",
        callback_handler=None,
    )
    agent("first")
    manager.set_prompt_metadata("support", {"prompt_id": "p-7", "prompt_version": "3", "temperature": 0.1})
    agent("second")
    agent.state.set("changed", True)
    agent("third")
    config = manager.get_agent_config("support")
    assert config is not None
    assert config["prompt_metadata"] == {"prompt_id": "p-7", "prompt_version": "3", "temperature": 0.1}
    assert config["model"] == "m-1" and config["system_prompt"] == "You are support."
    fresh = make_manager()
    assert fresh.list_agents()[0]["prompt_metadata"]["prompt_id"] == "p-7"


# ---- guardrail auditing -----------------------------------------------------------------------------------------


def test_a_guardrail_redaction_during_a_turn_is_stored_and_audited(make_manager, collection: Any) -> None:
    manager = make_manager()
    agent = Agent(model=GuardrailModel(), session_manager=manager, agent_id="guarded", callback_handler=None)
    agent("tell me something forbidden")
    doc = collection.find_one({"_id": manager.session_id})
    user = doc["agents"]["guarded"]["messages"][0]
    assert user["message"]["role"] == "user"
    assert user["redact_message"]["content"][0]["text"] == "[blocked by guardrail]"
    assert user["guardrail_event"]["action"] == "BLOCKED"
    (event,) = manager.get_guardrail_events()
    assert event["agent_id"] == "guarded" and event["message_id"] == user["message_id"]
    # A restored agent sees the redacted prompt, never the original one.
    restored = Agent(
        model=ScriptedModel(["ok"]), session_manager=make_manager(), agent_id="guarded", callback_handler=None
    )
    assert restored.messages[0]["content"][0]["text"] == "[blocked by guardrail]"


def test_redact_latest_message_outside_a_turn_records_the_callers_details(make_manager) -> None:
    manager = make_manager()
    agent = Agent(model=ScriptedModel(["answer"]), session_manager=manager, agent_id="a", callback_handler=None)
    agent("question")
    trace = {"outputAssessments": [{"wordPolicy": {"customWords": [{"match": "secret"}]}}]}
    manager.redact_latest_message(
        {"role": "assistant", "content": [{"text": "[removed]"}]},
        agent,
        action="MASKED",
        stop_reason="content_filtered",
        guardrail_trace=trace,
    )
    (event,) = manager.get_guardrail_events()
    assert event["action"] == "MASKED" and event["stop_reason"] == "content_filtered"
    assert event["policies_triggered"] == {"wordPolicy": ["secret"]}
    stored = manager.repository.read_message(manager.session_id, "a", event["message_id"])
    assert stored is not None and stored.to_message()["content"][0]["text"] == "[removed]"


def test_redacting_before_any_message_is_a_typed_error(make_manager) -> None:
    manager = make_manager()
    agent = Agent(model=ScriptedModel([]), session_manager=manager, agent_id="empty", callback_handler=None)
    with pytest.raises(MessageNotFoundError):
        manager.redact_latest_message({"role": "user", "content": [{"text": "x"}]}, agent)
    assert manager.get_guardrail_events() == []


# ---- hooks use public methods only ----------------------------------------------------------------------------


def test_the_websocket_hook_reads_the_connection_id_without_re_entering_metadata_hooks(make_manager) -> None:
    calls: list[str] = []

    def counting(original_func: Any, action: str, session_id: str, **kwargs: Any) -> Any:
        calls.append(action)
        return noop_hook(original_func, action, session_id, **kwargs)

    manager = make_manager(metadata_hook=counting)
    manager.update_metadata({"ws_connection_id": "abc="})
    calls.clear()
    assert stored_connection_id(manager) == "abc="
    assert manager.read_metadata() == {"ws_connection_id": "abc="}
    assert calls == [], "read_metadata does not run the metadata hook"
    assert manager.get_metadata()["ws_connection_id"] == "abc=" and calls == ["get"]
