"""One writer of the concurrency test: appends to a shared session the way a stateless service does.

Every attempt is one "request": a fresh manager from the worker's factory, a fresh ``Agent``
restored from MongoDB, one appended user message. Several threads and several OS processes run
this against the same session at once, so some attempts lose the race for a message id; the test
then checks that every attempt reported as successful is stored exactly once and every failure
was the typed conflict error.

Run as a process: ``python _append_worker.py '<json config>'``. It prints ``ready``, waits for a
line on stdin (the start signal, so all writers overlap), then prints one JSON result line.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Any

from strands import Agent

from mongodb_session_manager import MongoDBSessionManagerFactory
from mongodb_session_manager.errors import MessageConflictError
from mongodb_session_manager.testing import ScriptedModel


def append_attempts(
    factory: MongoDBSessionManagerFactory, session_id: str, agent_id: str, writer: str, attempts: int
) -> dict[str, Any]:
    """Try ``attempts`` appends; return the tokens that were acknowledged and what failed and how."""
    successes: list[str] = []
    conflicts = 0
    other_errors: list[str] = []
    for attempt in range(attempts):
        token = f"{writer}-{attempt}"
        try:
            manager = factory.create_session_manager(session_id)
            agent = Agent(agent_id=agent_id, model=ScriptedModel(), session_manager=manager, callback_handler=None)
            manager.append_message({"role": "user", "content": [{"text": token}]}, agent)
        except MessageConflictError:
            conflicts += 1
        except Exception as exc:  # reported to the test, which fails on any of these
            other_errors.append(f"{type(exc).__module__}.{type(exc).__name__}: {exc}")
        else:
            successes.append(token)
    return {"writer": writer, "successes": successes, "conflicts": conflicts, "other_errors": other_errors}


def run_threads(
    factory: MongoDBSessionManagerFactory, session_id: str, agent_id: str, prefix: str, threads: int, attempts: int
) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = [{} for _ in range(threads)]

    def work(index: int) -> None:
        results[index] = append_attempts(factory, session_id, agent_id, f"{prefix}t{index}", attempts)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return results


def main() -> int:
    config = json.loads(sys.argv[1])
    factory = MongoDBSessionManagerFactory(
        config["uri"],
        database_name=config["database_name"],
        collection_name=config["collection_name"],
        serverSelectionTimeoutMS=30_000,
    )
    try:
        print("ready", flush=True)
        sys.stdin.readline()
        results = run_threads(
            factory, config["session_id"], config["agent_id"], config["prefix"], config["threads"], config["attempts"]
        )
    finally:
        factory.close()
    print(json.dumps(results), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
