"""What a restore repairs, and what it may skip.

Histories written by other tools or older versions can hold a ``toolUse`` nobody answered, in the
middle or at the end. Restored as they are, the next request would break Converse's rules. A
restore repairs them (Strands' rule for the middle, our unfinished-turn rule for the end) wherever
the messages live, in the document or in archive buckets; a history whose bytes hold no tool block
at all skips Strands' walk over every message, since there is nothing to pair.
"""

from __future__ import annotations

from typing import Any

import pytest
from strands import Agent
from strands.types.session import SessionMessage

from mongodb_session_manager import ArchivePolicy, MongoDBSessionRepository
from mongodb_session_manager.testing import ScriptedModel, converse_violation

SMALL = ArchivePolicy(max_messages=6, keep_messages=3, bucket_messages=2)


def text(role: str, value: str) -> dict[str, Any]:
    return {"role": role, "content": [{"text": value}]}


def tool_use(tool_use_id: str) -> dict[str, Any]:
    return {"role": "assistant", "content": [{"toolUse": {"toolUseId": tool_use_id, "name": "add", "input": {}}}]}


def seed(repo: MongoDBSessionRepository, session_id: str, messages: list[dict[str, Any]]) -> None:
    """Store ``messages`` as another tool would have: one by one, no turn rules applied."""
    from strands.types.session import Session, SessionAgent, SessionType

    repo.create_session(Session(session_id=session_id, session_type=SessionType.AGENT))
    blank = Agent(agent_id="assistant", model=ScriptedModel(), callback_handler=None)
    repo.create_agent(session_id, SessionAgent.from_agent(blank))
    for i, message in enumerate(messages):
        repo.create_message(session_id, "assistant", SessionMessage(message=message, message_id=i))


def valid_for_next_prompt(messages: list[dict[str, Any]]) -> bool:
    return converse_violation([*messages, text("user", "next")]) is None


@pytest.mark.parametrize("policy", [None, SMALL], ids=["one-document", "archived"])
def test_an_unanswered_tool_call_mid_history_is_repaired_on_restore(make_manager, mongo_client, db_name, policy):
    repo = MongoDBSessionRepository(
        client=mongo_client, database_name=db_name, collection_name="sessions", archive_policy=policy
    )
    history = [text("user", "q0"), tool_use("t-lost"), text("user", "q1"), text("assistant", "a1")]
    history += [text("user", f"q{i}") if i % 2 == 0 else text("assistant", f"a{i}") for i in range(2, 12)]
    seed(repo, "mid", history)
    if policy is not None:
        assert repo.collection.find_one({"_id": "mid"})["agents"]["assistant"]["archive"]["count"] > 0

    agent = Agent(
        agent_id="assistant",
        model=ScriptedModel(["answered"]),
        session_manager=make_manager("mid", archive_policy=policy),
        callback_handler=None,
    )
    assert valid_for_next_prompt(agent.messages), "the lost tool call got its error result"
    result = agent("next")  # the strict model refuses any history Bedrock would refuse
    assert str(result).strip() == "answered"
    repo.close()


def test_a_history_without_tool_blocks_skips_strands_walk(make_manager, repo, monkeypatch) -> None:
    seed(repo, "plain", [text("user", "q"), text("assistant", "a")] * 50)
    calls: list[int] = []
    manager = make_manager("plain")
    original = manager._fix_broken_tool_use
    monkeypatch.setattr(manager, "_fix_broken_tool_use", lambda messages: calls.append(1) or original(messages))
    agent = Agent(agent_id="assistant", model=ScriptedModel(), session_manager=manager, callback_handler=None)
    assert len(agent.messages) == 100 and calls == []

    seed(repo, "tools", [text("user", "q"), tool_use("t1"), text("user", "q2"), text("assistant", "a")])
    manager = make_manager("tools")
    monkeypatch.setattr(manager, "_fix_broken_tool_use", lambda messages: calls.append(1) or original(messages))
    agent = Agent(agent_id="assistant", model=ScriptedModel(), session_manager=manager, callback_handler=None)
    assert calls == [1], "a history with a tool block gets Strands' repair"
    assert valid_for_next_prompt(agent.messages)


@pytest.mark.parametrize("policy", [None, SMALL], ids=["in-document", "archived"])
def test_turn_metrics_alone_do_not_send_a_restore_through_strands_walk(make_manager, monkeypatch, policy) -> None:
    # Real turns store their metrics (with ``tool_usage``, an embedded document) on every answer;
    # only a toolUse or toolResult block may cost the walk over every message, whether the bytes are
    # searched on restore (the document) or when a bucket is written (its ``holds``).
    turns = 5
    for i in range(turns):
        agent = Agent(
            agent_id="assistant",
            model=ScriptedModel([f"a{i}"]),
            session_manager=make_manager("metered", archive_policy=policy),
            callback_handler=None,
        )
        agent(f"q{i}")
    calls: list[int] = []
    manager = make_manager("metered", archive_policy=policy)
    original = manager._fix_broken_tool_use
    monkeypatch.setattr(manager, "_fix_broken_tool_use", lambda messages: calls.append(1) or original(messages))
    agent = Agent(agent_id="assistant", model=ScriptedModel(), session_manager=manager, callback_handler=None)
    repo = manager.session_repository
    stored = [m for m in repo.collection.find_one({"_id": "metered"})["agents"]["assistant"]["messages"]]
    buckets = list(repo.buckets.find({"session_id": "metered"}))
    stored += [m for bucket in buckets for m in bucket["messages"]]
    answers = [m for m in stored if m["message"]["role"] == "assistant"]
    assert len(answers) == turns and all("tool_usage" in m["event_loop_metrics"] for m in answers)
    if policy is not None:
        assert buckets and all(bucket["holds"]["tools"] is False for bucket in buckets)
    assert len(agent.messages) == 2 * turns and calls == []


def test_an_unfinished_turn_at_the_end_of_a_long_history_is_set_aside(make_manager, repo) -> None:
    history = [text("user", "q") if i % 2 == 0 else text("assistant", "a") for i in range(2_000)]
    history += [text("user", "never answered"), tool_use("t-end")]
    seed(repo, "long", history)
    agent = Agent(
        agent_id="assistant", model=ScriptedModel(), session_manager=make_manager("long"), callback_handler=None
    )
    assert len(agent.messages) == 2_000 and valid_for_next_prompt(agent.messages)
    abandoned = repo.collection.find_one({"_id": "long"})["agents"]["assistant"]["abandoned_messages"]
    assert [m["message_id"] for m in abandoned] == [2_000, 2_001]
