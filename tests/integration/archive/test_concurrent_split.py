"""Splits under concurrent writers: turns from several threads, rewrites of old messages, appends to
another agent. Nothing is lost, nothing is duplicated, and no rewrite is undone by a split."""

from __future__ import annotations

import random
import threading
from typing import Any

import pytest
from pymongo import MongoClient
from strands import Agent
from strands.agent.conversation_manager import SlidingWindowConversationManager
from strands.types.session import SessionMessage

from mongodb_session_manager import ArchivePolicy, MongoDBSessionManager, MongoDBSessionRepository
from mongodb_session_manager.testing import ScriptedModel, converse_violation

from .test_split import SMALL, new_session, text_message, texts

THREADS, TURNS = 3, 8


def test_turns_rewrites_and_appends_racing_with_splits_lose_and_duplicate_nothing(
    mongo_client: MongoClient[Any], db_name: str
) -> None:
    repo = MongoDBSessionRepository(
        client=mongo_client, database_name=db_name, collection_name="sessions", archive_policy=SMALL
    )
    new_session(repo, "race", "other")  # "assistant" is created by the first Agent, with Strands' state
    errors: list[BaseException] = []
    rewritten: dict[int, str] = {}
    stop = threading.Event()

    def turns(worker: int) -> None:
        manager = MongoDBSessionManager(
            "race",
            client=mongo_client,
            database_name=db_name,
            collection_name="sessions",
            archive_policy=SMALL,
            busy_timeout=30,
        )
        try:
            agent = Agent(
                agent_id="assistant",
                model=ScriptedModel([f"answer {worker}-{t}" for t in range(TURNS)]),
                session_manager=manager,
                conversation_manager=SlidingWindowConversationManager(window_size=10_000),
                callback_handler=None,
            )
            for t in range(TURNS):
                agent(f"question {worker}-{t}")
        except BaseException as exc:  # collected and re-raised by the test
            errors.append(exc)
        finally:
            manager.close()

    def rewrites() -> None:
        rng = random.Random(7)
        try:
            while not stop.wait(0.005):  # redactions are rare next to turns; still hundreds here
                count = repo.count_messages("race", "assistant")
                if count < 4:
                    continue
                message_id = rng.randrange(0, count - 2)
                stored = repo.read_message("race", "assistant", message_id)
                if stored is None:
                    continue
                text = f"rewritten {message_id} #{rng.randrange(10**6)}"
                role = stored.message["role"]
                repo.update_message(
                    "race",
                    "assistant",
                    SessionMessage(message={"role": role, "content": [{"text": text}]}, message_id=message_id),
                )
                rewritten[message_id] = text
        except BaseException as exc:
            errors.append(exc)

    def appends() -> None:
        try:
            for i in range(40):
                repo.create_message("race", "other", text_message(i))
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=turns, args=(w,)) for w in range(THREADS)]
    side = [threading.Thread(target=rewrites), threading.Thread(target=appends)]
    for thread in [*workers, *side]:
        thread.start()
    for thread in workers:
        thread.join(timeout=240)
    stop.set()
    for thread in side:
        thread.join(timeout=60)
    assert not errors, errors

    history = repo.list_messages("race", "assistant")
    assert [m.message_id for m in history] == list(range(THREADS * TURNS * 2)), "every id once, in order"
    questions = [t for t in texts(history) if t.startswith("question")]
    expected = {f"question {w}-{t}" for w in range(THREADS) for t in range(TURNS)}
    assert len(questions) == len(set(questions)) and set(questions) <= expected, "no turn stored twice"
    rewritten_users = sum(1 for m in history if m.message["role"] == "user" and texts([m])[0].startswith("rewritten"))
    assert len(questions) + rewritten_users == THREADS * TURNS, "every turn stored"
    for message_id, text in rewritten.items():
        assert repo.read_message("race", "assistant", message_id).message["content"][0]["text"] == text
    for m in history:
        if not texts([m])[0].startswith("rewritten"):
            assert texts([m])[0].startswith(("question", "answer"))
    assert converse_violation([m.message for m in history] + [{"role": "user", "content": [{"text": "x"}]}]) is None
    assert texts(repo.list_messages("race", "other")) == [f"message {i}" for i in range(40)]
    assert repo.count_messages("race") == THREADS * TURNS * 2 + 40
    doc = mongo_client[db_name]["sessions"].find_one({"_id": "race"})
    # A split whose range was rewritten meanwhile gives up and is tried at the next write; under this
    # much rewriting a few turns' splits may all have given up, never the other agent's.
    assert doc["agents"]["other"]["archive"]["count"] > 0, "splits happened during the race"
    assert len(doc["agents"]["assistant"]["messages"]) <= SMALL.max_messages + 2 or repo.archive_agent(
        "race", "assistant"
    ), "the agent under rewrites splits once they stop"
    listed = {e["id"] for a in doc["agents"].values() for e in a.get("archive", {}).get("buckets", [])}
    stored_ids = {b["_id"] for b in mongo_client[db_name]["sessions_messages"].find({}, {"_id": 1})}
    assert listed <= stored_ids, "every listed bucket exists"
    assert "lease" not in doc["agents"]["assistant"]
    repo.close()


def test_a_rewrite_between_the_copy_and_the_move_fails_the_move_and_survives(
    mongo_client: MongoClient[Any], db_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = MongoDBSessionRepository(
        client=mongo_client, database_name=db_name, collection_name="sessions", archive_policy=None
    )
    new_session(repo, "s")
    for i in range(10):
        repo.create_message("s", "assistant", text_message(i))
    repo.archive_policy = ArchivePolicy(max_messages=6, keep_messages=3, bucket_messages=2)
    buckets = repo.buckets
    original = type(buckets).insert_many

    def insert_then_rewrite(self: Any, documents: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(self, documents, *args, **kwargs)
        other = MongoDBSessionRepository(client=mongo_client, database_name=db_name, collection_name="sessions")
        other.update_message(
            "s", "assistant", SessionMessage(message={"role": "assistant", "content": [{"text": "late"}]}, message_id=1)
        )
        return result

    monkeypatch.setattr(type(buckets), "insert_many", insert_then_rewrite)
    assert repo.archive_agent("s", "assistant") == 0, "the move saw the rewrite and gave up"
    monkeypatch.undo()

    assert mongo_client[db_name]["sessions_messages"].count_documents({}) == 0, "its buckets were removed"
    assert repo.read_message("s", "assistant", 1).message["content"][0]["text"] == "late"
    assert repo.archive_agent("s", "assistant") > 0, "the next attempt moves"
    assert repo.read_message("s", "assistant", 1).message["content"][0]["text"] == "late"
    assert [m.message_id for m in repo.list_messages("s", "assistant")] == list(range(10))
    assert "lease" not in mongo_client[db_name]["sessions"].find_one({"_id": "s"})["agents"]["assistant"]


def test_a_split_waits_for_nobody_and_skips_while_a_turn_holds_the_lease(mongo_client, db_name) -> None:
    repo = MongoDBSessionRepository(
        client=mongo_client, database_name=db_name, collection_name="sessions", archive_policy=None
    )
    new_session(repo, "s")
    for i in range(10):
        repo.create_message("s", "assistant", text_message(i))
    repo.archive_policy = SMALL
    refusal = repo.acquire_lease("s", "assistant", token="turn", owner="test", ttl_ms=30_000, next_message_id=10)
    assert refusal is None
    assert repo.archive_agent("s", "assistant") == 0, "a running turn splits when it commits"
    assert repo.archive_agent("s", "assistant", token="turn", release=True) > 0
    assert "lease" not in mongo_client[db_name]["sessions"].find_one({"_id": "s"})["agents"]["assistant"]
