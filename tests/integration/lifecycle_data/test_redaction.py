"""Write-time redaction on the real mongod: a real agent turn on the strict scripted model."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from pymongo import MongoClient
from strands import Agent

from mongodb_session_manager import MongoDBSessionManager, MongoDBSessionManagerFactory
from mongodb_session_manager.redaction import PIIRedactor, Redacted
from mongodb_session_manager.testing import ScriptedModel, ToolCall

Make = Callable[..., MongoDBSessionManager]
EMAIL, PHONE, CARD = "ana.perez@example.com", "+34 612 345 678", "4111 1111 1111 1111"
PROMPT = f"I am {EMAIL}, call me on {PHONE}; my card is {CARD}. Order 2026-12-01 #123456."


def _stored_text(collection: Any, sid: str) -> str:
    return json.dumps(collection.find_one({"_id": sid}), default=str)


def test_a_real_turn_is_stored_redacted_and_what_fired_is_counted(make_manager: Make, collection: Any) -> None:
    manager = make_manager("r", redactor=PIIRedactor())
    agent = Agent(
        agent_id="a",
        model=ScriptedModel([f"Thanks, I will write to {EMAIL}."]),
        session_manager=manager,
        callback_handler=None,
    )
    agent(PROMPT)
    text = _stored_text(collection, "r")
    for secret in (EMAIL, PHONE, CARD, "612 345 678"):
        assert secret not in text
    user, assistant = (m["message"] for m in collection.find_one({"_id": "r"})["agents"]["a"]["messages"])
    assert user["content"][0]["text"] == (
        "I am [REDACTED:email], call me on [REDACTED:phone]; my card is [REDACTED:card_number]. "
        "Order 2026-12-01 #123456."
    ), "dates and order numbers are left alone"
    assert assistant["content"][0]["text"] == "Thanks, I will write to [REDACTED:email]."
    assert manager.get_redactions() == {"email": 2, "phone": 1, "card_number": 1}
    assert "ana.perez" not in json.dumps(manager.get_redactions()), "counts only, never the text"
    # The agent's memory holds what is stored: a restore elsewhere gives the same conversation.
    restored = Agent(
        agent_id="a", model=ScriptedModel(["ok"]), session_manager=make_manager("r"), callback_handler=None
    )
    assert restored.messages == agent.messages
    restored("and one more turn")


def test_tool_inputs_and_results_are_redacted_too(make_manager: Make, collection: Any) -> None:
    from strands import tool

    @tool
    def lookup_customer(customer_id: str) -> str:
        """Look up a customer."""
        return f"customer {customer_id}: {EMAIL}"

    manager = make_manager("t", redactor=PIIRedactor())
    agent = Agent(
        agent_id="a",
        model=ScriptedModel([ToolCall("lookup_customer", {"customer_id": "c-7"}), "found them"]),
        tools=[lookup_customer],
        session_manager=manager,
        callback_handler=None,
    )
    agent("who is c-7?")
    assert EMAIL not in _stored_text(collection, "t")
    assert manager.get_redactions() == {"email": 1}


def test_metadata_values_and_feedback_comments_are_redacted(make_manager: Make, collection: Any) -> None:
    manager = make_manager("m", redactor=PIIRedactor())
    manager.update_metadata({"contact": EMAIL, "nested": {"phone": PHONE}, "count": 3})
    manager.add_feedback({"rating": "down", "comment": f"reach me at {EMAIL}"})
    doc = collection.find_one({"_id": "m"})
    assert doc["metadata"] == {"contact": "[REDACTED:email]", "nested": {"phone": "[REDACTED:phone]"}, "count": 3}
    assert doc["feedbacks"][0]["comment"] == "reach me at [REDACTED:email]"
    assert doc["redactions"] == {"email": 2, "phone": 1}


def test_an_agent_created_with_a_history_is_stored_redacted(make_manager: Make, collection: Any) -> None:
    manager = make_manager("h", redactor=PIIRedactor())
    history = [
        {"role": "user", "content": [{"text": f"mail {EMAIL}"}]},
        {"role": "assistant", "content": [{"text": "noted"}]},
    ]
    Agent(agent_id="a", model=ScriptedModel(["hi"]), messages=history, session_manager=manager, callback_handler=None)
    assert EMAIL not in _stored_text(collection, "h")
    assert manager.get_redactions() == {"email": 1}


def test_a_custom_redactor_through_the_factory(mongo_client: MongoClient[Any], db_name: str, collection: Any) -> None:
    seen: list[str] = []

    def redactor(value: Any, kind: str) -> Any:
        seen.append(kind)
        if kind == "message":
            for block in value["content"]:
                if "text" in block and "secret" in block["text"]:
                    block["text"] = block["text"].replace("secret", "******")
                    return Redacted(value, {"secret_word": 1})
        return value

    factory = MongoDBSessionManagerFactory(
        client=mongo_client, database_name=db_name, collection_name="sessions", redactor=redactor
    )
    manager = factory.create_session_manager("c")
    Agent(agent_id="a", model=ScriptedModel(["fine"]), session_manager=manager, callback_handler=None)("my secret")
    assert "secret" not in _stored_text(collection, "c").replace("secret_word", "")
    assert manager.get_redactions() == {"secret_word": 1}
    assert seen.count("message") == 2


def test_a_redactor_must_be_callable(make_manager: Make) -> None:
    with pytest.raises(TypeError):
        make_manager("x", redactor="not callable")


def test_a_prompt_after_a_dangling_tool_call_is_stored_redacted(make_manager: Make, collection: Any) -> None:
    """Strands repairs a history ending in a toolUse before the prompt; the prompt is redacted all the same."""
    manager = make_manager("dangling", redactor=PIIRedactor())
    history = [
        {"role": "user", "content": [{"text": "look me up"}]},
        {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "lookup", "input": {}}}]},
    ]
    agent = Agent(
        agent_id="a", model=ScriptedModel(["done"]), messages=history, session_manager=manager, callback_handler=None
    )
    agent(f"never mind, mail {EMAIL}")
    assert EMAIL not in _stored_text(collection, "dangling")
    assert manager.get_redactions() == {"email": 1}
    restored = Agent(agent_id="a", model=ScriptedModel(["ok"]), session_manager=make_manager("dangling"))
    restored("again")  # the strict model accepts the stored history
