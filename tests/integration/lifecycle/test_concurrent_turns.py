"""One turn at a time per (session, agent): concurrent invocations from threads and processes never
interleave; the ones that cannot wait get ``SessionBusyError`` before writing anything.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from pymongo import MongoClient
from strands import Agent

from mongodb_session_manager.testing import converse_violation

from ._turn_worker import race

WORKER = Path(__file__).with_name("_turn_worker.py")
PROCESSES, THREADS_PER_PROCESS, LOCAL_THREADS, ATTEMPTS = 2, 2, 2, 5


def _answer_of(prompt: str) -> str:
    return f"Thanks, I understand: **{prompt}**"


def test_threads_and_processes_invoking_one_agent_store_each_completed_turn_once_and_whole(
    mongo_uri: str, mongo_client: MongoClient[Any], db_name: str
) -> None:
    base = {"uri": mongo_uri, "database_name": db_name, "session_id": "race", "agent_id": "assistant"}
    # Half the writers give up quickly (to see refusals), half wait long enough to get their turn.
    configs = [
        {
            **base,
            "mode": "race",
            "prefix": f"p{i}",
            "threads": THREADS_PER_PROCESS,
            "attempts": ATTEMPTS,
            "delay": 0.05,
            "busy_timeout": 0.02 if i == 0 else 15,
        }
        for i in range(PROCESSES)
    ]
    processes = [
        subprocess.Popen(
            [sys.executable, str(WORKER), json.dumps(c)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for c in configs
    ]
    results: list[dict[str, Any]] = []
    try:
        for process in processes:
            assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        local = {**base, "attempts": ATTEMPTS, "delay": 0.05, "busy_timeout": 15}
        threads = [
            threading.Thread(target=race, args=(local, mongo_client, f"localt{i}", results))
            for i in range(LOCAL_THREADS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for process in processes:
            out, err = process.communicate(timeout=300)
            assert process.returncode == 0, err[-3000:]
            results.extend(json.loads(out.strip().splitlines()[-1]))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(30)

    assert len(results) == LOCAL_THREADS + PROCESSES * THREADS_PER_PROCESS
    for result in results:
        assert result["other"] == [], result  # no conflict, no ValidationException from the strict model
    completed = [p for r in results for p in r["completed"]]
    refused = [p for r in results for p in r["busy"]]
    assert len(completed) + len(refused) == len(results) * ATTEMPTS
    assert refused, "writers with a 20 ms patience must meet a running turn at least once"
    assert any(r["completed"] for r in results if r["writer"].startswith("p1")), "another process got turns"

    doc = mongo_client[db_name]["sessions"].find_one({"_id": "race"})
    messages = [m["message"] for m in doc["agents"]["assistant"]["messages"]]
    assert [m["role"] for m in messages] == ["user", "assistant"] * len(completed), "turns never interleave"
    prompts = [m["content"][0]["text"] for m in messages[::2]]
    assert sorted(prompts) == sorted(completed), "every completed turn is stored exactly once"
    for prompt, answer in zip(messages[::2], messages[1::2], strict=True):
        assert _answer_of(prompt["content"][0]["text"]) in answer["content"][0]["text"], "each turn is whole"
    assert not set(refused) & set(prompts), "a refused invocation wrote nothing"
    ids = [m["message_id"] for m in doc["agents"]["assistant"]["messages"]]
    assert ids == list(range(len(ids)))
    assert converse_violation([*messages, {"role": "user", "content": [{"text": "next"}]}]) is None
    assert "lease" not in doc["agents"]["assistant"], "every lease was released"


def test_different_agents_of_one_session_run_at_the_same_time(make_manager, collection) -> None:
    from ._turn_worker import SlowModel

    make_manager("two")  # the session exists
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def invoke(agent_id: str) -> None:
        agent = Agent(
            agent_id=agent_id,
            model=SlowModel(0.3),
            session_manager=make_manager("two", busy_timeout=0),
            callback_handler=None,
        )
        barrier.wait()
        try:
            agent(f"hello from {agent_id}")
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=invoke, args=(name,)) for name in ("planner", "writer")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [], "a turn of one agent never blocks another agent (busy_timeout=0 would refuse)"
    doc = collection.find_one({"_id": "two"})
    assert {aid: len(a["messages"]) for aid, a in doc["agents"].items()} == {"planner": 2, "writer": 2}


def test_a_waiting_invocation_continues_from_the_turn_it_waited_for(make_manager, collection) -> None:
    """Both requests restored the same history; the second waits, reloads the first one's turn, goes on."""
    from ._turn_worker import SlowModel

    first = Agent(agent_id="a", model=SlowModel(0.4), session_manager=make_manager("wait"), callback_handler=None)
    second_model = SlowModel(0.0)
    second = Agent(agent_id="a", model=second_model, session_manager=make_manager("wait"), callback_handler=None)
    started = threading.Event()
    thread = threading.Thread(target=lambda: (started.set(), first("first question")))
    thread.start()
    started.wait()
    import time

    time.sleep(0.15)  # the first turn holds the lease now
    second("second question")
    thread.join()
    texts = [
        m["message"]["content"][0]["text"] for m in collection.find_one({"_id": "wait"})["agents"]["a"]["messages"]
    ]
    assert texts[0] == "first question" and texts[2] == "second question"
    sent = second_model.calls[0]
    assert [m["content"][0]["text"] for m in sent][:1] == ["first question"], "it saw the turn it waited for"


def test_a_turn_longer_than_its_lease_keeps_it_by_renewing(make_manager, collection) -> None:
    """A 3 s lease, a 6 s model call: without renewal another invocation could take the agent at 3 s."""
    import time

    from mongodb_session_manager.errors import SessionBusyError

    from ._turn_worker import SlowModel

    long_turn = Agent(
        agent_id="a",
        model=SlowModel(6.0),
        session_manager=make_manager("renewed", turn_lease_seconds=3),
        callback_handler=None,
    )
    other = Agent(
        agent_id="a",
        model=SlowModel(0.0),
        session_manager=make_manager("renewed", busy_timeout=0),
        callback_handler=None,
    )
    errors: list[BaseException] = []

    def run_long_turn() -> None:
        try:
            long_turn("a question that takes a while")
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    thread = threading.Thread(target=run_long_turn)
    thread.start()
    time.sleep(4.5)  # past the lease's first term: only renewals hold it now
    try:
        other("may I?")
        refused = False
    except SessionBusyError:
        refused = True
    thread.join()
    assert refused, "the lease outlived its first term because the running turn renewed it"
    assert errors == []
    agent_doc = collection.find_one({"_id": "renewed"})["agents"]["a"]
    assert [m["message"]["role"] for m in agent_doc["messages"]] == ["user", "assistant"]
    assert "lease" not in agent_doc, "the commit released it"
