"""A long restored history under production failure: records stay unbuilt, and nothing is lost.

The restore hands the agent its message dicts and builds a Strands record only when one is read
(:mod:`mongodb_session_manager.held_records`). A failed turn, two requests racing on the agent and
the async path all touch those records (rollback, reload, pruning on sync): each must keep the
stored history whole and the ids contiguous, and none may build a record per restored message.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from strands import Agent
from strands.types.session import SessionMessage

from mongodb_session_manager import MongoDBSessionManager, MongoDBSessionRepository, held_records
from mongodb_session_manager.testing import ScriptedModel

from ._turn_worker import SlowModel
from .test_failed_turns import FailingModel, Throttled
from .test_restore_repairs import seed, text

HISTORY = 400


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the records HeldRecords builds."""
    counted: list[int] = []

    class Counted(SessionMessage):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            counted.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(held_records, "SessionMessage", Counted)
    return counted


def seeded(repo: MongoDBSessionRepository, session_id: str) -> None:
    seed(repo, session_id, [text("user", "q") if i % 2 == 0 else text("assistant", "a") for i in range(HISTORY)])


def stored_ids(repo: MongoDBSessionRepository, session_id: str) -> list[int]:
    return [m.message_id for m in repo.list_messages(session_id, "assistant")]


def test_a_long_history_is_restored_and_continued_without_a_record_per_message(make_manager, repo, built):
    # Strands keeps a SessionMessage per message and walks them on every sync; a restore builds only
    # the records something reads (the newest, for the next id and a redaction).
    seeded(repo, "records")
    manager = make_manager("records")
    agent = Agent(agent_id="assistant", model=ScriptedModel(["fine"]), session_manager=manager, callback_handler=None)
    assert len(agent.messages) == 400

    assert str(agent("next")).strip() == "fine"

    assert len(built) <= 2, f"{len(built)} records built for 400 restored messages"
    stored = repo.list_messages("records", "assistant")
    assert [m.message_id for m in stored[-3:]] == [399, 400, 401]
    # The newest record is still the one to redact, whether restored or added since.
    manager.redact_latest_message(text("assistant", "[redacted]"), agent)
    assert repo.read_message("records", "assistant", 401).redact_message == text("assistant", "[redacted]")


def test_an_async_restore_survives_a_failed_model_call_without_building_its_records(repo, db_name, mongo_client, built):
    seeded(repo, "failed")

    async def main() -> None:
        manager = await MongoDBSessionManager.acreate(
            "failed", client=mongo_client, database_name=db_name, collection_name="sessions"
        )
        agent = Agent(
            agent_id="assistant",
            model=FailingModel(["fine"], fail_on={0}),
            session_manager=manager,
            callback_handler=None,
        )
        with pytest.raises(Throttled):
            await agent.invoke_async("this one fails")
        assert len(agent.messages) == HISTORY
        assert str(await agent.invoke_async("again")).strip() == "fine"

    asyncio.run(main())

    assert stored_ids(repo, "failed") == list(range(HISTORY + 2))
    assert len(built) <= 2, f"{len(built)} records built for {HISTORY} restored messages"


def test_two_requests_racing_on_a_restored_agent_store_both_turns_in_order(repo, make_manager, built):
    seeded(repo, "race")
    first = Agent(
        agent_id="assistant", model=SlowModel(0.4), session_manager=make_manager("race"), callback_handler=None
    )
    second = Agent(
        agent_id="assistant", model=SlowModel(0.0), session_manager=make_manager("race"), callback_handler=None
    )
    thread = threading.Thread(target=lambda: first("first"))
    thread.start()
    time.sleep(0.15)  # the first turn holds the lease: the second waits, then reloads the history

    second("second")
    thread.join()

    ids = stored_ids(repo, "race")
    assert ids == list(range(HISTORY + 4))
    texts = [m.message["content"][0]["text"] for m in repo.list_messages("race", "assistant")][HISTORY:]
    assert texts[0] == "first" and texts[2] == "second"
    # Two restores and one reload, each building what it reads, never one record per message.
    assert len(built) <= 6, f"{len(built)} records built for {HISTORY} restored messages, three times"
