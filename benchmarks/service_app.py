"""The service benchmark 5 loads: ``examples/example_fastapi.py`` reduced to what is measured.

``POST /chat {"session_id", "message"}`` builds a session manager for the request, restores the
agent, runs one offline ``ScriptedModel`` turn and returns the answer. ``--mode`` picks how the
manager is built:

* ``factory``: ``MongoDBSessionManagerFactory.create_session_manager`` on the shared pool;
* ``client``: ``MongoDBSessionManager(connection_string=...)``, i.e. a new ``MongoClient`` per
  request, closed when the request ends;
* ``factory-threads``: the factory again, but the turn runs in a worker thread
  (``asyncio.to_thread``) instead of on the event loop. pymongo is synchronous: called from an
  ``async def`` endpoint it blocks the loop, so requests are served one at a time.

Run (the benchmark does this): python benchmarks/service_app.py --uri URI --db DB --mode factory --port N
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel
from strands import Agent

from mongodb_session_manager import MongoDBSessionManager, MongoDBSessionManagerFactory
from mongodb_session_manager.testing import ScriptedModel

COLLECTION = "sessions"
MODES = ("factory", "client", "factory-threads")


class ChatRequest(BaseModel):
    session_id: str
    message: str


def create_app(uri: str, database_name: str, mode: str) -> FastAPI:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if mode != "client":
            state["factory"] = MongoDBSessionManagerFactory(
                uri, database_name=database_name, collection_name=COLLECTION, maxPoolSize=50
            )
        yield
        if "factory" in state:
            state["factory"].close()

    app = FastAPI(lifespan=lifespan)

    def manager_for(session_id: str) -> MongoDBSessionManager:
        if mode != "client":
            return state["factory"].create_session_manager(session_id)
        return MongoDBSessionManager(
            session_id, connection_string=uri, database_name=database_name, collection_name=COLLECTION
        )

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "mode": mode}

    def turn_in_thread(request: ChatRequest) -> str:
        manager = manager_for(request.session_id)
        try:
            agent = Agent(agent_id="assistant", model=ScriptedModel(), session_manager=manager, callback_handler=None)
            return str(agent(request.message)).strip()
        finally:
            manager.close()

    @app.post("/chat")
    async def chat(request: ChatRequest) -> dict[str, Any]:
        if mode == "factory-threads":
            return {"session_id": request.session_id, "response": await asyncio.to_thread(turn_in_thread, request)}
        manager = manager_for(request.session_id)
        try:
            agent = Agent(agent_id="assistant", model=ScriptedModel(), session_manager=manager, callback_handler=None)
            result = await agent.invoke_async(request.message)
            return {"session_id": request.session_id, "response": str(result).strip()}
        finally:
            manager.close()

    return app


def serve(create: Callable[[str, str, str], FastAPI], modes: tuple[str, ...], description: str) -> None:
    """The command line of a benchmark app: ``--uri --db --mode --port``, served by uvicorn on loopback."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--uri", required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--mode", choices=modes, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    uvicorn.run(
        create(args.uri, args.db, args.mode),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        # uvicorn's 5 s default, equal to httpx's client-side expiry, made 1-3 requests in 1,500
        # fail with ReadError (a reset connection) in most bench_async runs; with 60 s none did.
        timeout_keep_alive=60,
    )


def main() -> None:
    serve(create_app, MODES, __doc__ or "")


if __name__ == "__main__":
    main()
