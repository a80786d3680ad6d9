"""A separate process that invokes an agent of a shared session, the way one service replica would.

``python _turn_worker.py '<json config>'`` with ``mode``:

- ``turn``: restore the session in a fresh process and run one turn; print the reply and the history.
- ``hang``: start a turn whose model never answers; print ``in-turn`` once the lease is held, then
  wait to be killed (the test SIGKILLs it mid-turn).
- ``race``: print ``ready``, wait for ``go`` on stdin, then run ``attempts`` turns, each with a fresh
  manager and agent (a stateless request); print one JSON line with what completed and what was refused.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from typing import Any

from pymongo import MongoClient
from strands import Agent

from mongodb_session_manager import MongoDBSessionManager
from mongodb_session_manager.errors import SessionBusyError
from mongodb_session_manager.testing import ScriptedModel


class SlowModel(ScriptedModel):
    """The strict scripted model, taking ``delay`` seconds per call (so turns overlap)."""

    def __init__(self, delay: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.delay = delay

    async def stream(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        await asyncio.sleep(self.delay)
        async for event in super().stream(*args, **kwargs):
            yield event


class HangingModel(ScriptedModel):
    async def stream(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        print("in-turn", flush=True)
        await asyncio.sleep(3600)
        yield {}


def manager(config: dict[str, Any], client: MongoClient[Any], **kwargs: Any) -> MongoDBSessionManager:
    return MongoDBSessionManager(
        config["session_id"],
        client=client,
        database_name=config["database_name"],
        collection_name="sessions",
        **kwargs,
    )


def race(config: dict[str, Any], client: MongoClient[Any], writer: str, out: list[dict[str, Any]]) -> None:
    completed: list[str] = []
    busy: list[str] = []
    other: list[str] = []
    for attempt in range(config["attempts"]):
        prompt = f"{writer}-{attempt}"
        try:
            m = manager(config, client, busy_timeout=config["busy_timeout"], turn_lease_seconds=5)
            agent = Agent(
                agent_id=config["agent_id"], model=SlowModel(config["delay"]), session_manager=m, callback_handler=None
            )
            agent(prompt)
        except SessionBusyError:
            busy.append(prompt)
        except Exception as exc:  # reported to the test, which fails on any of these
            other.append(f"{type(exc).__module__}.{type(exc).__name__}: {exc}")
        else:
            completed.append(prompt)
    out.append({"writer": writer, "completed": completed, "busy": busy, "other": other})


def main() -> int:
    config = json.loads(sys.argv[1])
    client: MongoClient[Any] = MongoClient(config["uri"], serverSelectionTimeoutMS=30_000)
    try:
        if config["mode"] == "turn":
            agent = Agent(
                agent_id=config["agent_id"],
                model=ScriptedModel(),
                session_manager=manager(config, client),
                callback_handler=None,
            )
            reply = str(agent(config["prompt"]))
            print(json.dumps({"reply": reply, "roles": [m["role"] for m in agent.messages]}), flush=True)
        elif config["mode"] == "hang":
            agent = Agent(
                agent_id=config["agent_id"],
                model=HangingModel(),
                session_manager=manager(config, client, turn_lease_seconds=config["lease"]),
                callback_handler=None,
            )
            agent(config["prompt"])
        else:
            print("ready", flush=True)
            sys.stdin.readline()
            results: list[dict[str, Any]] = []
            threads = [
                threading.Thread(target=race, args=(config, client, f"{config['prefix']}t{i}", results))
                for i in range(config["threads"])
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            print(json.dumps(results), flush=True)
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
