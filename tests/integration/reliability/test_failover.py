"""The primary steps down while a conversation is being written.

With majority write concern and retryable writes, a write the driver acknowledged survives the
election, and a write the driver retried after the old primary vanished is applied once: the
server recognises the retry by its transaction number. The conversation runs the way a
stateless service runs it (a manager and a restored agent per turn), on a background thread,
while the test forces the primary to step down.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from pymongo import MongoClient
from pymongo.errors import ConnectionFailure, OperationFailure
from strands import Agent

from mongodb_session_manager import MongoDBSessionManager
from mongodb_session_manager.embedded import MongoReplicaSet
from mongodb_session_manager.errors import DatabaseError
from mongodb_session_manager.testing import ScriptedModel

DB, COLL, SESSION_ID = "failover", "sessions", "failover-chat"
TURNS_BEFORE_STEPDOWN = 4
TURNS_AFTER_STEPDOWN = 8
MAX_TURNS = 60
JOIN_TIMEOUT_S = 240


def echo(messages: list[dict[str, Any]], tool_specs: list[Any]) -> str:
    return "echo: " + messages[-1]["content"][0]["text"]


class Conversation(threading.Thread):
    """Runs bounded turns; records which turns were acknowledged and which failed (and how)."""

    def __init__(self, client: MongoClient[Any], stepped_down: threading.Event) -> None:
        super().__init__(daemon=True)
        self.client = client
        self.stepped_down = stepped_down
        self.reached_stepdown_point = threading.Event()
        self.acknowledged: list[str] = []
        self.failures: list[BaseException] = []
        self.crash: BaseException | None = None

    def run(self) -> None:
        try:
            after = 0
            for turn in range(MAX_TURNS):
                text = f"turn {turn}"
                try:
                    with MongoDBSessionManager(
                        SESSION_ID, client=self.client, database_name=DB, collection_name=COLL
                    ) as manager:
                        agent = Agent(
                            agent_id="assistant",
                            model=ScriptedModel([echo]),
                            session_manager=manager,
                            callback_handler=None,
                        )
                        agent(text)
                except DatabaseError as exc:  # allowed only as a typed error; checked by the test
                    self.failures.append(exc)
                else:
                    self.acknowledged.append(text)
                if turn + 1 >= TURNS_BEFORE_STEPDOWN:
                    self.reached_stepdown_point.set()
                if self.stepped_down.is_set():
                    after += 1
                    if after >= TURNS_AFTER_STEPDOWN:
                        return
        except BaseException as exc:  # anything untyped fails the test
            self.crash = exc
        finally:
            self.reached_stepdown_point.set()


def step_down_primary(rs: MongoReplicaSet) -> str:
    primary = rs.wait_for_primary(timeout=120)
    with MongoClient(primary, directConnection=True, serverSelectionTimeoutMS=10_000) as direct:
        try:
            direct.admin.command({"replSetStepDown": 10, "force": True})
        except ConnectionFailure:
            pass  # older servers drop the connection that asked for the step-down
        except OperationFailure as exc:
            raise AssertionError(f"replSetStepDown refused: {exc}") from exc
        hello = direct.admin.command("hello")
        assert not hello.get("isWritablePrimary"), "the old primary must have stepped down"
    return primary


def test_primary_step_down_mid_conversation_loses_nothing_acknowledged_and_writes_nothing_twice(
    three_node_rs: MongoReplicaSet,
) -> None:
    client: MongoClient[Any] = MongoClient(
        three_node_rs.connection_string, w="majority", retryWrites=True, serverSelectionTimeoutMS=60_000
    )
    stepped_down = threading.Event()
    conversation = Conversation(client, stepped_down)
    try:
        conversation.start()
        assert conversation.reached_stepdown_point.wait(JOIN_TIMEOUT_S)
        old_primary = step_down_primary(three_node_rs)
        stepped_down.set()
        conversation.join(JOIN_TIMEOUT_S)
        assert not conversation.is_alive(), "the conversation hung after the step-down"
        new_primary = three_node_rs.wait_for_primary(timeout=120)
        assert conversation.crash is None, repr(conversation.crash)

        # Read what the majority committed, from whichever member is primary now.
        doc = client[DB][COLL].find_one({"_id": SESSION_ID})
        assert doc is not None
        messages = doc["agents"]["assistant"]["messages"]
        texts = [m["message"]["content"][0]["text"] for m in messages]
        ids = [m["message_id"] for m in messages]
    finally:
        client.close()

    assert old_primary and new_primary
    assert len(conversation.acknowledged) >= TURNS_BEFORE_STEPDOWN + 1, "turns must succeed after the election"
    counts = Counter(texts)
    assert [t for t, n in counts.items() if n > 1] == [], f"written twice: {counts}"
    assert len(set(ids)) == len(ids) and ids == sorted(ids)
    for text in conversation.acknowledged:
        assert counts[text] == 1, f"acknowledged user message {text!r} lost"
        assert counts[f"echo: {text}"] == 1, f"acknowledged reply to {text!r} lost"
    for exc in conversation.failures:
        assert isinstance(exc, DatabaseError)
