"""Many writers, one session: threads and OS processes append through their own managers.

A stateless service runs several replicas, each building a manager per request; two requests for
the same conversation may race for the next message id. The library must let exactly one win
(the other gets ``MessageConflictError``), never store a message twice and never lose one it
acknowledged. Metadata and feedback writes from many threads must all land.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient
from strands import Agent

from mongodb_session_manager import MongoDBSessionManager, MongoDBSessionManagerFactory
from mongodb_session_manager.errors import ConcurrentModificationError, MessageConflictError
from mongodb_session_manager.mongodb_session_repository import MongoDBSessionRepository
from mongodb_session_manager.testing import ScriptedModel

from ._append_worker import run_threads

WORKER = Path(__file__).with_name("_append_worker.py")
SESSION_ID = "shared-conversation"
AGENT_ID = "assistant"
PROCESSES = 2
THREADS_PER_PROCESS = 2
LOCAL_THREADS = 3
ATTEMPTS = 12
READY_TIMEOUT_S = 120
RESULT_TIMEOUT_S = 240


def _start_workers(mongo_uri: str, db_name: str) -> list[subprocess.Popen[str]]:
    processes = []
    for index in range(PROCESSES):
        config = {
            "uri": mongo_uri,
            "database_name": db_name,
            "collection_name": "sessions",
            "session_id": SESSION_ID,
            "agent_id": AGENT_ID,
            "prefix": f"p{index}",
            "threads": THREADS_PER_PROCESS,
            "attempts": ATTEMPTS,
        }
        processes.append(
            subprocess.Popen(
                [sys.executable, str(WORKER), json.dumps(config)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    return processes


def _wait_ready(process: subprocess.Popen[str]) -> None:
    """Block (bounded) until the worker imported everything and printed ``ready``."""
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(process.stdout.readline() if process.stdout else ""))
    reader.start()
    reader.join(READY_TIMEOUT_S)
    if not line or line[0].strip() != "ready":
        process.kill()
        _, err = process.communicate(timeout=30)
        raise AssertionError(f"append worker did not start: {line!r} {err[-2000:]}")


def _stop(processes: list[subprocess.Popen[str]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(30)


def test_threads_and_processes_appending_to_one_session_store_each_acknowledged_message_once(
    mongo_uri: str, mongo_client: MongoClient[Any], db_name: str
) -> None:
    repo = MongoDBSessionRepository(client=mongo_client, database_name=db_name, collection_name="sessions")
    # The agent exists before the race starts, as in a conversation that is already under way.
    with MongoDBSessionManager(SESSION_ID, client=mongo_client, database_name=db_name, collection_name="sessions") as m:
        Agent(agent_id=AGENT_ID, model=ScriptedModel(), session_manager=m, callback_handler=None)

    processes = _start_workers(mongo_uri, db_name)
    factory = MongoDBSessionManagerFactory(
        mongo_uri, database_name=db_name, collection_name="sessions", serverSelectionTimeoutMS=30_000
    )
    try:
        for process in processes:
            _wait_ready(process)
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        results = run_threads(factory, SESSION_ID, AGENT_ID, "local-", LOCAL_THREADS, ATTEMPTS)
        for process in processes:
            out, err = process.communicate(timeout=RESULT_TIMEOUT_S)
            assert process.returncode == 0, err[-2000:]
            results.extend(json.loads(out.strip().splitlines()[-1]))
    finally:
        _stop(processes)
        factory.close()

    assert len(results) == LOCAL_THREADS + PROCESSES * THREADS_PER_PROCESS
    for result in results:
        assert result["other_errors"] == [], result
        assert len(result["successes"]) + result["conflicts"] == ATTEMPTS
    acknowledged = [token for result in results for token in result["successes"]]
    process_writers = {r["writer"][:2] for r in results if r["successes"] and r["writer"].startswith("p")}
    assert len(process_writers) == PROCESSES, "every process must have stored at least one message"

    stored = repo.list_messages(SESSION_ID, AGENT_ID)
    # A lone user message is an unfinished turn: the next restore moves it to abandoned_messages
    # (kept in the document, never sent to the model). Both arrays together hold what was stored.
    doc = mongo_client[db_name]["sessions"].find_one({"_id": SESSION_ID}) or {}
    abandoned = doc["agents"][AGENT_ID].get("abandoned_messages", [])
    stored_tokens = [m.message["content"][0]["text"] for m in stored]
    stored_tokens += [m["message"]["content"][0]["text"] for m in abandoned]
    counts = Counter(stored_tokens)
    assert {token for token, n in counts.items() if n > 1} == set(), "a message was stored twice"
    assert sorted(stored_tokens) == sorted(acknowledged), "stored messages must be exactly the acknowledged ones"
    ids = [m.message_id for m in stored]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids), "messages stay ordered by id"
    assert repo.count_messages(SESSION_ID, AGENT_ID) + len(abandoned) == len(acknowledged)
    repo.close()


def test_two_managers_restored_at_the_same_point_one_wins_the_other_gets_the_typed_conflict(
    mongo_client: MongoClient[Any], db_name: str
) -> None:
    """The race above, made deterministic: both requests read the session before either writes."""
    options = {"client": mongo_client, "database_name": db_name, "collection_name": "sessions"}
    with MongoDBSessionManager("race", **options) as setup:
        Agent(agent_id=AGENT_ID, model=ScriptedModel(), session_manager=setup, callback_handler=None)
    first, second = MongoDBSessionManager("race", **options), MongoDBSessionManager("race", **options)
    agent_1 = Agent(agent_id=AGENT_ID, model=ScriptedModel(), session_manager=first, callback_handler=None)
    agent_2 = Agent(agent_id=AGENT_ID, model=ScriptedModel(), session_manager=second, callback_handler=None)
    first.append_message({"role": "user", "content": [{"text": "winner"}]}, agent_1)
    with pytest.raises(MessageConflictError) as caught:
        second.append_message({"role": "user", "content": [{"text": "loser"}]}, agent_2)
    assert isinstance(caught.value, ConcurrentModificationError)
    assert caught.value.session_id == "race"
    stored = first.repository.list_messages("race", AGENT_ID)
    assert [m.message["content"][0]["text"] for m in stored] == ["winner"]


def test_metadata_and_feedback_from_many_threads_all_land(mongo_uri: str, db_name: str) -> None:
    threads, writes = 8, 10
    factory = MongoDBSessionManagerFactory(mongo_uri, database_name=db_name, collection_name="sessions")
    factory.create_session_manager("busy-session")
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            for n in range(writes):
                manager = factory.create_session_manager("busy-session")
                manager.update_metadata({f"t{index}_k{n}": {"thread": index, "n": n}, f"last_{index}": n})
                manager.add_feedback({"rating": "up" if n % 2 else "down", "comment": f"{index}:{n}"})
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(RESULT_TIMEOUT_S)
    assert not any(worker.is_alive() for worker in workers)
    assert errors == []

    manager = factory.create_session_manager("busy-session")
    metadata = manager.get_metadata()
    for index in range(threads):
        assert metadata[f"last_{index}"] == writes - 1
        for n in range(writes):
            assert metadata[f"t{index}_k{n}"] == {"thread": index, "n": n}
    feedbacks = manager.get_feedbacks()
    comments = Counter(f["comment"] for f in feedbacks)
    assert comments == Counter(f"{i}:{n}" for i in range(threads) for n in range(writes))
    assert all(f["rating"] in ("up", "down") and f["created_at"] is not None for f in feedbacks)
    factory.close()
