"""A failed turn never breaks a session: nothing of it is stored, memory is rolled back, and the next
turn (same Agent, fresh manager, fresh process) sends a history Bedrock accepts.

Every agent here runs on the strict ``ScriptedModel``: a request that breaks Converse's rules
(two user messages in a row, an unanswered toolUse) raises Bedrock's own ValidationException.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from pymongo import MongoClient, monitoring
from strands import Agent, tool
from strands.types.exceptions import EventLoopException

from mongodb_session_manager import ArchivePolicy, MongoDBSessionManager
from mongodb_session_manager.errors import (
    InvalidInputError,
    MessageConflictError,
    SessionBusyError,
    SessionStoreError,
    TurnLeaseLostError,
)
from mongodb_session_manager.testing import ScriptedModel, ToolCall, converse_violation

WORKER = Path(__file__).with_name("_turn_worker.py")


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


class Throttled(Exception):
    """What a provider raises when it throttles (any exception from the model behaves the same)."""


class FailingModel(ScriptedModel):
    """The strict scripted model, raising on the calls whose numbers (0-based) are in ``fail_on``."""

    def __init__(self, responses: list[Any] | None = None, *, fail_on: set[int], **kwargs: Any) -> None:
        super().__init__(responses, **kwargs)
        self.fail_on = fail_on
        self.attempt = 0

    async def stream(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        attempt, self.attempt = self.attempt, self.attempt + 1
        if attempt in self.fail_on:
            raise Throttled("ThrottlingException: rate exceeded")
        async for event in super().stream(*args, **kwargs):
            yield event


def stored(collection: Any, session_id: str, agent_id: str = "assistant") -> list[dict[str, Any]]:
    doc = collection.find_one({"_id": session_id}) or {}
    return doc.get("agents", {}).get(agent_id, {}).get("messages", [])


def roles(messages: list[dict[str, Any]]) -> list[str]:
    return [m["message"]["role"] if "message" in m else m["role"] for m in messages]


def assert_valid(messages: list[dict[str, Any]]) -> None:
    """A stored or in-memory history that a new prompt may follow: valid by Converse's rules."""
    history = [m.get("message", m) for m in messages] + [{"role": "user", "content": [{"text": "next"}]}]
    assert converse_violation(history) is None, converse_violation(history)


def run_worker(config: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(WORKER), json.dumps(config)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---- a model failure -------------------------------------------------------------------------------------


def test_a_failed_first_model_call_stores_nothing_and_the_same_agent_continues(make_manager, collection) -> None:
    agent = Agent(
        agent_id="assistant",
        model=FailingModel(["Hello!", "Still here."], fail_on={1}),
        session_manager=make_manager("fail-first"),
        callback_handler=None,
    )
    agent("hi")
    before_memory = list(agent.messages)
    before_stored = stored(collection, "fail-first")

    with pytest.raises(Throttled):
        agent("this call is throttled")

    assert agent.messages == before_memory, "the failed prompt is not left in memory"
    assert stored(collection, "fail-first") == before_stored, "nothing of the failed turn is stored"
    assert "lease" not in collection.find_one({"_id": "fail-first"})["agents"]["assistant"]
    assert str(agent("and now?")).strip() == "Still here."  # the strict model accepted the history
    assert roles(stored(collection, "fail-first")) == ["user", "assistant", "user", "assistant"]


def test_a_value_bson_cannot_encode_fails_the_turn_typed_and_frees_the_agent(make_manager, collection) -> None:
    agent = Agent(
        agent_id="assistant",
        model=ScriptedModel(["Hello!", "Still here.", "Third."]),
        session_manager=make_manager("lone-surrogate"),
        callback_handler=None,
    )
    agent("hi")
    before_memory, before_stored = list(agent.messages), stored(collection, "lone-surrogate")
    agent.state.set("note", json.loads('"\\ud800"'))  # a lone surrogate: valid str, not UTF-8

    with pytest.raises(InvalidInputError, match="not valid UTF-8"):
        agent("this turn cannot be stored")

    assert agent.messages == before_memory and stored(collection, "lone-surrogate") == before_stored
    assert "lease" not in collection.find_one({"_id": "lone-surrogate"})["agents"]["assistant"]
    agent.state.set("note", "fixed")
    assert str(agent("and now?")).strip() == "Third."  # no SessionBusyError: the lease was released


def test_a_failure_after_a_tool_call_rolls_back_the_whole_turn(make_manager, collection) -> None:
    model = FailingModel([ToolCall("add", {"a": 2, "b": 3}), "5.", "Fine again."], fail_on={2})
    # calls: 0 -> tool call, 1 -> answer "5." ... first turn; the second turn's first call (2) fails
    agent = Agent(agent_id="assistant", model=model, tools=[add], session_manager=make_manager("fail-tool"))
    agent("what is 2+3?")
    model.responses.appendleft(ToolCall("add", {"a": 1, "b": 1}))
    model.fail_on = {3}  # the second turn: call 2 asks for a tool, the call after the tool result fails
    with pytest.raises(EventLoopException) as caught:  # Strands wraps model errors after a tool cycle
        agent("and 1+1?")
    assert isinstance(caught.value.__cause__, Throttled)
    assert roles(agent.messages) == ["user", "assistant", "user", "assistant"], "tool call and result rolled back"
    assert roles(stored(collection, "fail-tool")) == ["user", "assistant", "user", "assistant"]
    assert_valid(stored(collection, "fail-tool"))
    agent("one more")  # the strict model checks the history
    assert_valid(stored(collection, "fail-tool"))


def test_after_a_failure_a_fresh_process_restores_a_valid_history(make_manager, collection, mongo_uri, db_name):
    agent = Agent(
        agent_id="assistant",
        model=FailingModel([ToolCall("add", {"a": 2, "b": 2}), "4."], fail_on={2, 3}),
        tools=[add],
        session_manager=make_manager("fail-process"),
        callback_handler=None,
    )
    agent("2+2?")
    with pytest.raises(Throttled):
        agent("this one fails")
    result = run_worker(
        {
            "mode": "turn",
            "uri": mongo_uri,
            "database_name": db_name,
            "session_id": "fail-process",
            "agent_id": "assistant",
            "prompt": "are you there?",
        }
    )
    assert result["roles"] == ["user", "assistant", "user", "assistant", "user", "assistant"]
    assert_valid(stored(collection, "fail-process"))


def test_a_process_killed_mid_turn_leaves_no_trace_and_its_lease_expires(make_manager, collection, mongo_uri, db_name):
    agent = Agent(agent_id="assistant", model=ScriptedModel(["Hi."]), session_manager=make_manager("killed"))
    agent("hello")
    config = {
        "mode": "hang",
        "uri": mongo_uri,
        "database_name": db_name,
        "session_id": "killed",
        "agent_id": "assistant",
        "prompt": "a turn that dies",
        "lease": 2,
    }
    process = subprocess.Popen(
        [sys.executable, str(WORKER), json.dumps(config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "in-turn"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
    assert "lease" in collection.find_one({"_id": "killed"})["agents"]["assistant"], "the dead holder's lease"
    impatient = Agent(
        agent_id="assistant",
        model=ScriptedModel(["never"]),
        callback_handler=None,
        session_manager=make_manager("killed", busy_timeout=0.1),
    )
    with pytest.raises(SessionBusyError):
        impatient("too soon")
    assert roles(impatient.messages) == ["user", "assistant"], "refused before anything was added"

    patient = Agent(
        agent_id="assistant",
        model=ScriptedModel(["Back."]),
        callback_handler=None,
        session_manager=make_manager("killed", busy_timeout=10),
    )
    assert str(patient("after the crash")).strip() == "Back.", "the lease expired by itself"
    texts = [m["message"]["content"][0]["text"] for m in stored(collection, "killed")]
    assert texts == ["hello", "Hi.", "after the crash", "Back."], "nothing of the killed turn was stored"


# ---- typed errors reach the caller as themselves ----------------------------------------------------------


def _hold_lease(collection: Any, session_id: str, seconds: float = 60) -> None:
    from datetime import UTC, datetime, timedelta

    collection.update_one(
        {"_id": session_id},
        {
            "$set": {
                "agents.assistant.lease": {
                    "token": "someone-else",
                    "owner": "test",
                    "expires_at": datetime.now(UTC) + timedelta(seconds=seconds),
                }
            }
        },
    )


@pytest.mark.parametrize("entry", ["call", "invoke_async", "stream_async"])
def test_session_busy_reaches_every_entry_point_unwrapped(make_manager, collection, entry: str) -> None:
    manager = make_manager(f"busy-{entry}", busy_timeout=0.05)
    agent = Agent(agent_id="assistant", model=ScriptedModel(["a", "b"]), session_manager=manager)
    agent("first")
    _hold_lease(collection, f"busy-{entry}")
    before = stored(collection, f"busy-{entry}")

    async def consume() -> None:
        async for _ in agent.stream_async("second"):
            pass

    with pytest.raises(SessionBusyError) as caught:
        if entry == "call":
            agent("second")
        elif entry == "invoke_async":
            asyncio.run(agent.invoke_async("second"))
        else:
            asyncio.run(consume())
    assert type(caught.value) is SessionBusyError
    assert caught.value.session_id == f"busy-{entry}" and caught.value.agent_id == "assistant"
    assert stored(collection, f"busy-{entry}") == before
    assert roles(agent.messages) == ["user", "assistant"]


class Interfering(ScriptedModel):
    """Runs ``during`` while the turn waits for the model: another writer acting mid-turn."""

    def __init__(self, during: Any, **kwargs: Any) -> None:
        super().__init__(["my answer"], **kwargs)
        self.during = during

    async def stream(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        self.during()
        async for event in super().stream(*args, **kwargs):
            yield event


def test_a_turn_whose_lease_was_taken_over_is_refused_typed_and_rolled_back(make_manager, collection) -> None:
    steal = lambda: collection.update_one(  # noqa: E731
        {"_id": "stolen"}, {"$set": {"agents.assistant.lease.token": "thief"}}
    )
    agent = Agent(agent_id="assistant", model=Interfering(steal), session_manager=make_manager("stolen"))
    with pytest.raises(TurnLeaseLostError) as caught:
        agent("hello")
    assert isinstance(caught.value, SessionStoreError) and caught.value.session_id == "stolen"
    assert stored(collection, "stolen") == [] and agent.messages == []


def test_a_writer_appending_during_the_turn_gets_a_typed_conflict(make_manager, collection, repo) -> None:
    from strands.types.session import SessionMessage

    def append_elsewhere() -> None:
        repo.append_messages(
            "conflict",
            "assistant",
            [
                SessionMessage({"role": "user", "content": [{"text": "other"}]}, 0),
                SessionMessage({"role": "assistant", "content": [{"text": "other answer"}]}, 1),
            ],
        )

    agent = Agent(agent_id="assistant", model=Interfering(append_elsewhere), session_manager=make_manager("conflict"))
    with pytest.raises(MessageConflictError):
        agent("hello")
    assert [m["message"]["content"][0]["text"] for m in stored(collection, "conflict")] == ["other", "other answer"]
    assert agent.messages == []


# ---- round trips per turn ------------------------------------------------------------------------------------


class Commands(monitoring.CommandListener):
    IGNORED = frozenset({"hello", "ismaster", "isMaster", "endSessions", "createIndexes", "listIndexes", "ping"})

    def __init__(self) -> None:
        self.names: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name not in self.IGNORED:
            self.names.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def test_round_trips_per_plain_turn_tool_turn_and_stateless_request(mongo_uri: str, db_name: str) -> None:
    listener = Commands()
    client: MongoClient[Any] = MongoClient(mongo_uri, event_listeners=[listener])
    options = {"client": client, "database_name": db_name, "collection_name": "sessions"}
    try:
        agent = Agent(
            agent_id="a", model=ScriptedModel(), tools=[add], session_manager=MongoDBSessionManager("rt", **options)
        )
        agent("warm up")  # the first turn also records the agent's model and prompt
        listener.names.clear()
        agent("a plain turn")
        assert listener.names == ["update", "update"], "lease, then one commit"
        listener.names.clear()
        agent.model = ScriptedModel([ToolCall("add", {"a": 1, "b": 2}), "3"])
        agent("a tool turn")
        assert listener.names == ["update", "update"], "a tool turn is still one commit"
        listener.names.clear()
        fresh = Agent(
            agent_id="a", model=ScriptedModel(), tools=[add], session_manager=MongoDBSessionManager("rt", **options)
        )
        fresh("a stateless request")
        assert listener.names == ["find", "update", "update"], "the session with its agents, lease, commit"
        listener.names.clear()
        unarchived = {**options, "archive_policy": None}  # arrays of any length: the session, then the window
        Agent(agent_id="a", model=ScriptedModel(), session_manager=MongoDBSessionManager("rt", **unarchived))(
            "without a policy"
        )
        assert listener.names == ["find", "find", "update", "update"], "session, agent window, lease, commit"
        assert "findAndModify" not in listener.names
    finally:
        client.close()


def test_a_turn_that_splits_reads_the_agent_once_then_moves(mongo_uri: str, db_name: str) -> None:
    """The turn that passes the policy: lease, commit, one read for the split's plan and the messages
    it moves, the orphan check, the buckets, the move (which releases the lease)."""
    listener = Commands()
    client: MongoClient[Any] = MongoClient(mongo_uri, event_listeners=[listener])
    policy = ArchivePolicy(max_messages=6, keep_messages=3, bucket_messages=2)
    try:
        manager = MongoDBSessionManager(
            "rt-split", client=client, database_name=db_name, collection_name="sessions", archive_policy=policy
        )
        agent = Agent(agent_id="a", model=ScriptedModel(), session_manager=manager, callback_handler=None)
        per_turn = []
        for i in range(4):
            listener.names.clear()
            agent(f"turn {i}")
            per_turn.append(list(listener.names))
        plain, split = per_turn[1], per_turn[3]  # 4 then 8 messages: the fourth turn passes 6
        assert plain == ["update", "update"]
        assert split == ["update", "update", "find", "delete", "insert", "update"], split
        stored = client[db_name]["sessions"].find_one({"_id": "rt-split"})["agents"]["a"]
        assert stored["archive"]["count"] == 4 and len(stored["messages"]) == 4
        assert "lease" not in stored, "the move released the turn's lease"
        fresh = Agent(
            agent_id="a",
            model=ScriptedModel(),
            callback_handler=None,
            session_manager=MongoDBSessionManager(
                "rt-split", client=client, database_name=db_name, collection_name="sessions", archive_policy=policy
            ),
        )
        assert [m["content"][0]["text"] for m in fresh.messages[::2]] == [f"turn {i}" for i in range(4)]
    finally:
        client.close()


def test_failed_turn_costs_the_lease_and_its_release_only(mongo_uri: str, db_name: str) -> None:
    listener = Commands()
    client: MongoClient[Any] = MongoClient(mongo_uri, event_listeners=[listener])
    try:
        manager = MongoDBSessionManager("rt-fail", client=client, database_name=db_name)
        agent = Agent(agent_id="a", model=FailingModel(["ok"], fail_on={1}), session_manager=manager)
        agent("warm up")
        listener.names.clear()
        with pytest.raises(Throttled):
            agent("fails")
        assert listener.names == ["update", "update"]
    finally:
        client.close()


# ---- the strict model itself ------------------------------------------------------------------------------


def test_strict_model_refuses_what_bedrock_refuses_with_bedrocks_error() -> None:
    agent = Agent(model=ScriptedModel(["fine"]), callback_handler=None)
    agent.messages = [{"role": "user", "content": [{"text": "dangling prompt"}]}]  # a broken history
    with pytest.raises(ClientError) as caught:
        agent("second prompt")
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert "alternate between user and assistant" in str(caught.value)
