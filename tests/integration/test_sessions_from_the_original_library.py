"""Sessions written by the original library (v0.2.7 and v0.9.1) restore, continue and show their data.

The documents below have exactly the shape the original's code writes (captured from a run of its
v0.2.7 and v0.9.1 releases against a mongod; only ids and timestamps are fixed): naive UTC dates,
no ``next_message_id``, ``prompt_metadata`` inside ``agent_data`` (0.9.x), cumulative
``event_loop_metrics`` on messages, url-safe viewer passwords.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from strands import Agent

from mongodb_session_manager.testing import ScriptedModel

T0 = datetime(2025, 6, 1, 9, 0, 0)
PASSWORD = "hvYROUb5KcjE_w0KgXC4efs8-95s-4Rm"


def original_document(version: str, session_id: str) -> dict[str, Any]:
    def at(seconds: int) -> datetime:
        return T0 + timedelta(seconds=seconds)

    def message(mid: int, role: str, text: str) -> dict[str, Any]:
        body: dict[str, Any] = {"role": role, "content": [{"text": text}], "tracking_id": f"t-{mid}"}
        stored: dict[str, Any] = {
            "message_id": mid,
            "message": body,
            "redact_message": None,
            "created_at": at(mid + 1),
            "updated_at": at(mid + 1),
        }
        if mid:
            stored["event_loop_metrics"] = {
                "accumulated_metrics": {"latencyMs": 5 * mid},
                "accumulated_usage": {"inputTokens": 3 * mid, "outputTokens": 4 * mid, "totalTokens": 7 * mid},
            }
        return stored

    agent_data: dict[str, Any] = {
        "agent_id": "helper",
        "state": {"step": 2},
        "conversation_manager_state": {
            "__name__": "SlidingWindowConversationManager",
            "model_call_count": 0,
            "removed_message_count": 0,
        },
        "_internal_state": {
            "interrupt_state": {"activated": False, "context": {}, "interrupts": {}},
            "model_state": {},
        },
        "created_at": at(0),
        "updated_at": at(0),
        "model": "echo-model",
        "system_prompt": "Be brief.",
    }
    doc: dict[str, Any] = {
        "_id": session_id,
        "session_id": session_id,
        "session_type": "AGENT",
        "session_viewer_password": PASSWORD,
        "created_at": at(0),
        "updated_at": at(10),
        "agents": {
            "helper": {
                "agent_data": agent_data,
                "created_at": at(0),
                "updated_at": at(4),
                "messages": [
                    message(0, "user", "hello one"),
                    message(1, "assistant", "echo: hello one"),
                    message(2, "user", "hello two"),
                    message(3, "assistant", "echo: hello two"),
                ],
            }
        },
        "metadata": {"priority": "high", "status": "open"},
        "feedbacks": [{"rating": "up", "comment": "nice", "created_at": at(9)}],
    }
    if version == "0.9.1":
        doc["application_name"] = "legacy-app"
        doc["guardrail_events"] = []
        agent_data["prompt_metadata"] = {"prompt_id": "p-old", "prompt_version": "1"}
    return doc


@pytest.mark.parametrize("version", ["0.2.7", "0.9.1"])
def test_an_original_session_restores_continues_and_keeps_its_data(make_manager, collection, version: str) -> None:
    sid = f"original-{version.replace('.', '_')}"
    collection.insert_one(original_document(version, sid))
    manager = make_manager(sid)
    agent = Agent(
        agent_id="helper",
        model=ScriptedModel(["third answer"]),
        system_prompt="Be brief.",
        session_manager=manager,
        callback_handler=None,
    )
    assert [m["content"][0]["text"] for m in agent.messages] == [
        "hello one",
        "echo: hello one",
        "hello two",
        "echo: hello two",
    ]
    assert agent.state.get("step") == 2
    agent("hello three")
    assert manager.get_message_count("helper") == 6
    stored = collection.find_one({"_id": sid})["agents"]["helper"]
    assert [m["message_id"] for m in stored["messages"]] == [0, 1, 2, 3, 4, 5]
    assert stored["created_at"] == T0, "the agent's own created_at is kept"

    assert manager.get_metadata() == {"priority": "high", "status": "open"}
    assert [(f["rating"], f["comment"]) for f in manager.get_feedbacks()] == [("up", "nice")]
    assert manager.get_session_viewer_password() == PASSWORD
    assert manager.get_guardrail_events() == []
    config = manager.get_agent_config("helper")
    assert config is not None and config["system_prompt"] == "Be brief."
    assert config["created_at"].replace(tzinfo=None) == T0
    if version == "0.9.1":
        assert manager.get_application_name() == "legacy-app"
        assert config["prompt_metadata"] == {"prompt_id": "p-old", "prompt_version": "1"}
    else:
        assert manager.get_application_name() is None and config["prompt_metadata"] is None

    fresh = Agent(agent_id="helper", model=ScriptedModel([]), session_manager=make_manager(sid), callback_handler=None)
    assert len(fresh.messages) == 6 and fresh.messages[-1]["content"][0]["text"] == "third answer"
