"""The app ``bench_async.py`` loads: one ``async def`` chat endpoint, with or without the library.

``POST /chat {"session_id", "message"}`` runs one offline ``ScriptedModel`` turn with
``await agent.invoke_async(...)``. ``--mode library`` builds the manager with
``await factory.acreate_session_manager(...)`` (the library's async pattern); ``--mode bare`` runs
the same agent without a session manager (the control); ``--mode fresh`` is the library with a new
session for every request (the same I/O, but the agent carries no conversation), which tells the
library's own cost apart from Strands' cost of a history; ``--mode memory`` is the second control:
no session manager, each conversation's messages kept in a dict in the process (the same history
the library restores, with no persistence at all). A background task measures event-loop lag: it
asks to sleep 5 ms and records how late it woke, and how much CPU the loop's thread used meanwhile;
``GET /lag`` returns and resets both.

Run (the benchmark does this): python benchmarks/async_app.py --uri URI --db DB --mode library --port N
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from service_app import serve
from strands import Agent

from mongodb_session_manager import MongoDBSessionManagerFactory
from mongodb_session_manager.testing import ScriptedModel

MODES = ("library", "bare", "fresh", "memory")
TICK_S = 0.005


def context_switches() -> tuple[int, int]:
    """This thread's voluntary and involuntary context switches so far (Linux); (0, 0) elsewhere."""
    try:
        with open("/proc/thread-self/status") as status:
            lines = status.read().splitlines()
    except OSError:
        return 0, 0  # no per-thread counters on this platform: the report shows zeros
    counts = {"voluntary_ctxt_switches": 0, "nonvoluntary_ctxt_switches": 0}
    for line in lines:
        name, _, value = line.partition(":")
        if name in counts:
            counts[name] = int(value)
    return counts["voluntary_ctxt_switches"], counts["nonvoluntary_ctxt_switches"]


class ChatRequest(BaseModel):
    session_id: str
    message: str


def create_app(uri: str, database_name: str, mode: str) -> FastAPI:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    state: dict[str, Any] = {"lags": []}
    histories: dict[str, list[Any]] = {}  # the memory mode's conversations

    async def watch_loop() -> None:
        # Beside each tick's lag, what the loop's thread did meanwhile: the CPU time it used (a late
        # wake-up with little CPU spent waited, one with much ran callbacks), and how often it blocked
        # (voluntary switches: the GIL, or the selector) or was preempted for another thread (involuntary).
        while True:
            start, cpu, switched = time.perf_counter(), time.thread_time(), context_switches()
            await asyncio.sleep(TICK_S)
            lag = (time.perf_counter() - start - TICK_S) * 1000
            blocked, preempted = (now - before for now, before in zip(context_switches(), switched, strict=True))
            state["lags"].append((lag, (time.thread_time() - cpu) * 1000, blocked, preempted))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state["factory"] = MongoDBSessionManagerFactory(
            uri, database_name=database_name, collection_name="sessions", maxPoolSize=50
        )
        watcher = asyncio.create_task(watch_loop())
        yield
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        state["factory"].close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "mode": mode}

    @app.get("/lag")
    async def lag() -> dict[str, Any]:
        ticks, state["lags"] = state["lags"], []
        ticks.sort()
        ordered = [tick[0] for tick in ticks] or [0.0]
        slowest = ticks[int(0.99 * len(ticks)) :]  # the ticks at or past p99
        wall = max(sum(tick[0] + TICK_S * 1000 for tick in slowest), 1e-9)
        per_tick = max(len(slowest), 1)
        return {
            "p50_ms": statistics.median(ordered),
            "p99_ms": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
            "max_ms": ordered[-1],
            "samples": len(ticks),
            "loop_cpu_ms": round(sum(tick[1] for tick in ticks), 1),  # the loop thread's CPU over the window
            "p99_cpu_share": round(sum(tick[1] for tick in slowest) / wall, 3),
            "p99_blocked_per_tick": round(sum(tick[2] for tick in slowest) / per_tick, 1),
            "p99_preempted_per_tick": round(sum(tick[3] for tick in slowest) / per_tick, 1),
        }

    @app.post("/chat")
    async def chat(request: ChatRequest) -> dict[str, Any]:
        manager = None
        if mode == "library":
            manager = await state["factory"].acreate_session_manager(request.session_id)
        elif mode == "fresh":
            manager = await state["factory"].acreate_session_manager(f"{request.session_id}-{uuid.uuid4().hex}")
        history = histories.get(request.session_id, []) if mode == "memory" else []
        agent = Agent(
            agent_id="assistant",
            model=ScriptedModel(),
            messages=history,
            session_manager=manager,
            callback_handler=None,
        )
        reply = await agent.invoke_async(request.message)
        if mode == "memory":
            histories[request.session_id] = agent.messages
        return {"reply": str(reply).strip()}

    return app


def main() -> None:
    serve(create_app, MODES, __doc__ or "")


if __name__ == "__main__":
    main()
