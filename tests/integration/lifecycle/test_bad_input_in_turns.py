"""Bad input inside a turn never crashes it: whatever a model or tool produces is stored exactly (as
JSON text where BSON cannot hold it), refused with a tool result of status "error", or refused
with a typed error before anything is written.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from strands import Agent, tool

from mongodb_session_manager.errors import InvalidIdentifierError, InvalidMetadataError
from mongodb_session_manager.testing import ScriptedModel, ToolCall


@tool
def echo(payload: dict[str, Any]) -> str:
    """Return how many top-level keys the payload has."""
    return f"{len(payload)} keys"


def nested(depth: int) -> dict[str, Any]:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"d": value}
    return value


def tool_turn(make_manager: Any, session_id: str, payload: Any) -> Agent:
    model = ScriptedModel([ToolCall("echo", {"payload": payload}, tool_use_id="t-1"), "Done."])
    agent = Agent(agent_id="assistant", model=model, tools=[echo], session_manager=make_manager(session_id))
    agent("use the tool")
    return agent


@pytest.mark.parametrize(
    ("name", "payload"),
    [
        ("deep", nested(250)),  # deeper than MongoDB's 100 levels; Strands' own tool validation stops near 300
        ("nul-key", {"a\x00b": 1, "ok": True}),
        ("dollar-key", {"$where": "1", "a.b": 2}),
        ("surrogate", {"text": "broken \ud800 half"}),
        ("huge-int", {"n": 2**80}),
    ],
)
def test_odd_tool_input_from_the_model_is_stored_exactly_and_the_session_restores(
    make_manager, name: str, payload: Any
) -> None:
    agent = tool_turn(make_manager, f"odd-{name}", payload)
    tool_use = agent.messages[1]["content"][0]["toolUse"]
    assert tool_use["input"] == {"payload": payload}

    restored = Agent(agent_id="assistant", model=ScriptedModel(["Again."]), session_manager=make_manager(f"odd-{name}"))
    assert restored.messages[1]["content"][0]["toolUse"]["input"] == {"payload": payload}
    restored("one more turn")  # the strict model re-checks the restored history


def test_a_value_json_cannot_hold_fails_the_turn_with_a_typed_error_and_stores_nothing(make_manager, collection):
    from mongodb_session_manager.errors import InvalidInputError

    @tool
    def opaque() -> dict[str, Any]:
        """Return a result holding an object no database (and no JSON) can represent."""
        return {"status": "success", "content": [{"json": {"handle": object()}}]}

    model = ScriptedModel([ToolCall("opaque", {}), "Noted."])
    agent = Agent(agent_id="assistant", model=model, tools=[opaque], session_manager=make_manager("unstorable"))
    with pytest.raises(InvalidInputError) as caught:
        agent("store this")
    assert caught.value.session_id == "unstorable"
    assert collection.find_one({"_id": "unstorable"})["agents"]["assistant"]["messages"] == []
    assert agent.messages == [], "rolled back in memory too: the agent can be invoked again"
    agent.model = ScriptedModel(["Fine."])
    agent("a normal prompt")


def test_lone_surrogates_in_ids_and_metadata_are_typed_errors(make_manager) -> None:
    with pytest.raises(InvalidIdentifierError):
        make_manager("session-\ud800")
    manager = make_manager("surrogates")
    with pytest.raises(InvalidIdentifierError):
        Agent(agent_id="agent-\udfff", model=ScriptedModel(), session_manager=manager)
    with pytest.raises(InvalidMetadataError):
        manager.update_metadata({"key-\ud800": "v"})
    with pytest.raises(InvalidMetadataError):
        manager.update_metadata({"key": "value \ud800"})
    assert manager.get_metadata() == {}


def test_uuid_metadata_values_round_trip(make_manager) -> None:
    manager = make_manager("uuids")
    ticket = uuid.uuid4()
    manager.update_metadata({"ticket": ticket, "related": [uuid.UUID(int=1)]})
    assert make_manager("uuids").get_metadata() == {"ticket": ticket, "related": [uuid.UUID(int=1)]}


def test_the_metadata_tool_caps_keys_refuses_with_status_error_and_does_not_echo(make_manager) -> None:
    manager = make_manager("flood")
    flood = {f"key_{i}": i for i in range(100_000)}
    model = ScriptedModel([ToolCall("manage_metadata", {"action": "set", "metadata": flood}), "Ok."])
    agent = Agent(agent_id="assistant", model=model, tools=[manager.get_metadata_tool()], session_manager=manager)
    agent("remember all of this")
    result = agent.messages[2]["content"][0]["toolResult"]
    assert result["status"] == "error"
    text = result["content"][0]["text"]
    assert "at most 50 keys per call" in text and len(text) < 200, "a refusal never echoes the input"
    assert manager.get_metadata() == {}

    tool_fn = manager.get_metadata_tool()
    for start in range(0, 500, 50):
        assert tool_fn(action="set", metadata={f"k{i}": i for i in range(start, start + 50)}).startswith("Metadata")
    over = tool_fn(action="set", metadata={"one_too_many": 1})
    assert over["status"] == "error" and "at most 500 metadata keys" in over["content"][0]["text"]
    assert len(manager.get_metadata()) == 500
    reply = tool_fn(action="set", metadata={f"k{i}": -i for i in range(50)})
    assert "and 30 more" in reply, "replies name a few keys, not all of them"
