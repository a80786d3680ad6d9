"""mongod goes away in the middle of a conversation, then comes back.

While it is down, every operation, sync or async, must fail with ``DatabaseUnavailableError`` (a typed
``DatabaseError``) once the configured server-selection timeout expires, not hang and not leave a
half-written document. When it is back, the very same manager and factory objects keep working:
an application does not need a restart.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from pymongo import MongoClient
from strands import Agent

from mongodb_session_manager import MongoDBSessionManager, MongoDBSessionManagerFactory
from mongodb_session_manager.embedded import MongoReplicaSet
from mongodb_session_manager.errors import DatabaseError, DatabaseUnavailableError
from mongodb_session_manager.testing import ScriptedModel

SELECTION_TIMEOUT_MS = 2_000
#: A hang guard, not a speed check: 30x the configured timeout, so a loaded CI box never trips it.
HANG_GUARD_S = 60.0
DB, COLL = "outage", "sessions"


def outcome(operation: Callable[[], Any]) -> BaseException | None:
    """Run ``operation`` in a thread; return what it raised (None on success), failing if it hangs."""
    result: list[BaseException | None] = []

    def run() -> None:
        try:
            operation()
        except BaseException as exc:  # handed back to the test
            result.append(exc)
        else:
            result.append(None)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(HANG_GUARD_S)
    assert not worker.is_alive(), f"operation still blocked after {HANG_GUARD_S}s: it hangs instead of failing"
    return result[0]


def assert_unavailable(exc: BaseException | None, session_id: str) -> None:
    assert isinstance(exc, DatabaseUnavailableError), f"expected DatabaseUnavailableError, got {exc!r}"
    assert isinstance(exc, DatabaseError)
    assert exc.session_id == session_id
    assert "unreachable" in str(exc)


def stored_texts(client: MongoClient[Any], session_id: str, agent_id: str = "assistant") -> list[str]:
    doc = client[DB][COLL].find_one({"_id": session_id}) or {}
    messages = doc.get("agents", {}).get(agent_id, {}).get("messages", [])
    for message in messages:  # every stored message is complete: nothing half-written
        assert set(message) >= {"message_id", "message", "created_at", "updated_at"}, message
        assert message["message"]["role"] in ("user", "assistant") and message["message"]["content"]
    ids = [m["message_id"] for m in messages]
    assert ids == sorted(set(ids)), f"message ids must be unique and ordered: {ids}"
    return [block.get("text", "") for m in messages for block in m["message"]["content"]]


def echo(messages: list[dict[str, Any]], tool_specs: list[Any]) -> str:
    """Answer with the latest user text, so replies are deterministic whichever turns reach the model."""
    return "echo: " + messages[-1]["content"][0]["text"]


def test_outage_mid_conversation_fails_fast_with_typed_error_and_the_same_objects_resume(
    outage_rs: MongoReplicaSet,
) -> None:
    rs = outage_rs
    uri = rs.connection_string
    manager = MongoDBSessionManager(
        "outage-chat", connection_string=uri, database_name=DB, collection_name=COLL,
        serverSelectionTimeoutMS=SELECTION_TIMEOUT_MS,
    )  # fmt: skip
    factory = MongoDBSessionManagerFactory(
        uri, database_name=DB, collection_name=COLL, serverSelectionTimeoutMS=SELECTION_TIMEOUT_MS
    )
    checker: MongoClient[Any] = MongoClient(uri, serverSelectionTimeoutMS=60_000)
    try:
        agent = Agent(
            agent_id="assistant",
            model=ScriptedModel([echo] * 3),
            session_manager=manager,
            callback_handler=None,
        )
        agent("before the outage")
        manager.update_metadata({"stage": "before"})
        assert stored_texts(checker, "outage-chat") == ["before the outage", "echo: before the outage"]
        factory.create_session_manager("served-before").update_metadata({"stage": "before"})
        # The same through the async API (an ``async def`` service), each call in a new event loop.
        served = asyncio.run(factory.acreate_session_manager("outage-async"))
        async_agent = Agent(agent_id="assistant", model=ScriptedModel(), session_manager=served, callback_handler=None)
        asyncio.run(async_agent.invoke_async("async, before the outage"))

        (member,) = rs.member_processes
        rs.stop_member(member)

        # A conversation turn, session features, and a new request through the factory all fail typed.
        assert_unavailable(outcome(lambda: agent("during the outage")), "outage-chat")
        assert_unavailable(outcome(lambda: manager.update_metadata({"stage": "during"})), "outage-chat")
        assert_unavailable(outcome(lambda: manager.add_feedback({"rating": "down", "comment": "x"})), "outage-chat")
        assert_unavailable(outcome(manager.get_metadata), "outage-chat")
        assert_unavailable(outcome(lambda: factory.create_session_manager("new-during-outage")), "new-during-outage")
        assert_unavailable(outcome(lambda: asyncio.run(async_agent.invoke_async("async, during"))), "outage-async")
        assert_unavailable(outcome(lambda: asyncio.run(served.aupdate_metadata({"stage": "during"}))), "outage-async")
        assert_unavailable(outcome(lambda: asyncio.run(factory.acreate_session_manager("new-async"))), "new-async")

        rs.start_member(member)
        rs.wait_for_primary(timeout=120)

        # Nothing was half-written: the document holds exactly what was acknowledged before the outage.
        assert stored_texts(checker, "outage-chat") == ["before the outage", "echo: before the outage"]
        assert checker[DB][COLL].count_documents({"_id": "new-during-outage"}) == 0

        # The same manager continues (its agent too), and so does the factory.
        manager.update_metadata({"stage": "after"})
        assert manager.get_metadata() == {"stage": "after"}
        agent("after the outage")
        texts = stored_texts(checker, "outage-chat")
        assert texts[:2] == ["before the outage", "echo: before the outage"]
        assert texts[-2:] == ["after the outage", "echo: after the outage"]
        assert texts.count("during the outage") <= 1

        fresh = factory.create_session_manager("outage-chat")
        resumed = Agent(agent_id="assistant", model=ScriptedModel(), session_manager=fresh, callback_handler=None)
        assert [m["content"][0].get("text") for m in resumed.messages][-2:] == [
            "after the outage",
            "echo: after the outage",
        ]
        asyncio.run(async_agent.invoke_async("async, after the outage"))
        async_texts = stored_texts(checker, "outage-async")  # nothing of the failed async turn was stored
        assert len(async_texts) == 4 and async_texts[0::2] == ["async, before the outage", "async, after the outage"]
        other = factory.create_session_manager("new-after-outage")
        other.add_feedback({"rating": "up", "comment": "works again"})
        assert [f["comment"] for f in other.get_feedbacks()] == ["works again"]
    finally:
        manager.close()
        factory.close()
        checker.close()
