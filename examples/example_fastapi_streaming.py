"""Streaming FastAPI service (also the chat playground's backend): tokens as they are generated.

POST /chat/stream streams newline-delimited JSON events, one per line:

* ``{"type": "delta", "text": ...}``: a piece of the assistant message being generated;
* ``{"type": "assistant_message", "tools": [{"tool_use_id", "name", "input"}]}``: that message is
  complete (the next delta starts a new one), with the tool calls it asked for;
* ``{"type": "tool_result", "tool_use_id", "status", "text"}``: a tool call's result;
* ``{"type": "done", "usage": {...}}``: the turn is over (and stored, in one write);
* ``{"type": "error", "error": <class name>, "detail": ...}``: the turn failed after the stream
  started; nothing of it was stored, so the client can send the prompt again.

The endpoint uses the library's async API: ``await factory.acreate_session_manager(...)`` reads the
session off the event loop, and the turn's writes during ``stream_async`` run in the library's
thread pool. Another turn of the same chat still running (a double-click, a second tab) is answered
with 429 and ``Retry-After`` before the stream starts; an id the library refuses with 422.

GET /sessions/{id} returns the conversation as the user saw it (one entry per user or assistant
message, tool calls attached to the assistant message that made them, the latest feedback on each
message), metadata, metrics and the Session Viewer link, so a page can restore it after a reload.
POST /sessions/{id}/feedback stores feedback, optionally on one message (``message_id``).

Chats are stored in ``chat.sessions`` of the shared local mongod (``MONGODB_CONNECTION_STRING``
overrides it), exactly where ``make demo``'s Session Viewer reads. Ctrl-C or SIGTERM stops the
server and the local mongod if this process started it.

Run: uv run python examples/example_fastapi_streaming.py   (PORT, default 8880; ALLOWED_ORIGINS,
comma-separated, default the playground page on port 8881; VIEWER_URL, default http://127.0.0.1:8882/)
"""

import json
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from strands import Agent

from mongodb_session_manager import close_global_factory, get_global_factory, initialize_global_factory
from mongodb_session_manager.demo import calculator
from mongodb_session_manager.embedded import local_mongodb
from mongodb_session_manager.errors import InvalidInputError, SessionBusyError, SessionStoreError
from mongodb_session_manager.testing import default_model

logger = logging.getLogger("example_fastapi_streaming")

AGENT_ID = "assistant"
DATABASE_NAME = os.environ.get("DATABASE_NAME", "chat")
COLLECTION_NAME = os.environ.get("COLLECTION_NAME", "sessions")
DEFAULT_VIEWER_URL = "http://127.0.0.1:8882/"


class ChatRequest(BaseModel):
    session_id: str
    message: str


class FeedbackRequest(BaseModel):
    rating: str | None = None
    comment: str = Field(default="", max_length=2000)
    message_id: int | None = Field(default=None, ge=0)


def _texts(message: dict[str, Any]) -> list[str]:
    return [block["text"] for block in message.get("content", []) if block.get("text")]


def _tool_uses(message: dict[str, Any]) -> list[dict[str, Any]]:
    uses = [block["toolUse"] for block in message.get("content", []) if "toolUse" in block]
    return [{"tool_use_id": u.get("toolUseId"), "name": u.get("name"), "input": u.get("input")} for u in uses]


def _tool_results(message: dict[str, Any]) -> list[dict[str, Any]]:
    results = [block["toolResult"] for block in message.get("content", []) if "toolResult" in block]
    return [
        {
            "tool_use_id": r.get("toolUseId"),
            "status": r.get("status"),
            "text": "\n".join(c["text"] for c in r.get("content", []) if isinstance(c, dict) and "text" in c),
        }
        for r in results
    ]


def conversation(docs: list[dict[str, Any]], feedbacks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stored messages as the user saw them: tool-result messages fold into the call that asked for them.

    Consecutive assistant messages stay separate entries (one bubble each); the latest feedback
    stored with a ``message_id`` is attached to that message.
    """
    latest = {f["message_id"]: f for f in feedbacks if isinstance(f.get("message_id"), int)}
    entries: list[dict[str, Any]] = []
    calls: dict[str, dict[str, Any]] = {}
    for doc in docs:
        message = doc["message"]
        results = _tool_results(message)
        if message.get("role") == "user" and results and not _texts(message):
            for result in results:
                if result["tool_use_id"] in calls:
                    calls[result["tool_use_id"]].update(status=result["status"], result=result["text"])
            continue
        tools = [tool | {"status": None, "result": None} for tool in _tool_uses(message)]
        calls.update({tool["tool_use_id"]: tool for tool in tools})
        feedback = latest.get(doc["message_id"])
        entries.append(
            {
                "message_id": doc["message_id"],
                "role": message.get("role"),
                "text": "\n\n".join(_texts(message)),
                "tools": tools,
                "feedback": {"rating": feedback.get("rating"), "comment": feedback.get("comment", "")}
                if feedback
                else None,
            }
        )
    return entries


def create_app(
    connection_string: str, allowed_origins: list[str] | None = None, viewer_url: str | None = None
) -> FastAPI:
    viewer = (viewer_url or os.environ.get("VIEWER_URL") or DEFAULT_VIEWER_URL).rstrip("/") + "/"

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        initialize_global_factory(
            connection_string,
            database_name=DATABASE_NAME,
            collection_name=COLLECTION_NAME,
            metadata_fields=["topic", "name"],
        )
        yield
        await get_global_factory().aclose()  # the pool's release off the event loop
        close_global_factory()  # then forget it (closing again is a no-op)

    app = FastAPI(title="Streaming chat with MongoDB sessions", lifespan=lifespan)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=allowed_origins or ["http://localhost:8881", "http://127.0.0.1:8881"],
        allow_methods=["GET", "POST"],
        allow_headers=["content-type"],
    )

    @app.get("/health")
    def health() -> dict:
        """Also tells the page where its chats are stored and where the Session Viewer is."""
        return {"status": "ok", "database": DATABASE_NAME, "collection": COLLECTION_NAME, "viewer_url": viewer}

    @app.post("/chat/stream")
    async def chat_stream(request: ChatRequest) -> StreamingResponse:
        try:
            manager = await get_global_factory().acreate_session_manager(request.session_id)
        except InvalidInputError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from exc
        agent = Agent(  # no I/O here: the session and its agents were read above
            agent_id=AGENT_ID,
            model=default_model(),
            tools=[calculator, manager.get_metadata_tool()],
            system_prompt="You are a helpful assistant.",
            session_manager=manager,
            callback_handler=None,
        )
        stream = agent.stream_async(request.message)
        try:
            # Strands yields its first event after the turn's lease was taken, so a busy chat is
            # refused here, while the answer can still be an HTTP status (the error is not wrapped).
            first = await anext(stream)
        except SessionBusyError as exc:
            raise HTTPException(status_code=429, detail=str(exc), headers={"Retry-After": "1"}) from exc

        def encode(event: dict[str, Any]) -> list[str]:
            if "data" in event:
                return [json.dumps({"type": "delta", "text": event["data"]}) + "\n"]
            lines = []
            message = event.get("message")
            if isinstance(message, dict):
                if message.get("role") == "assistant":
                    lines.append(json.dumps({"type": "assistant_message", "tools": _tool_uses(message)}) + "\n")
                lines += [json.dumps({"type": "tool_result", **result}) + "\n" for result in _tool_results(message)]
            return lines

        async def events() -> AsyncIterator[str]:
            try:
                for line in encode(first):
                    yield line
                async for event in stream:
                    for line in encode(event):
                        yield line
            except SessionStoreError as exc:  # the commit was refused: the turn was rolled back, nothing stored
                logger.warning("session_id=<%s> | turn not stored: %s", request.session_id, exc)
                yield json.dumps({"type": "error", "error": type(exc).__name__, "detail": str(exc)}) + "\n"
                return
            usage = agent.event_loop_metrics.agent_invocations[-1].usage
            yield json.dumps({"type": "done", "usage": dict(usage)}) + "\n"

        return StreamingResponse(events(), media_type="application/x-ndjson")

    @app.get("/sessions/{session_id}")
    def session(session_id: str) -> dict:
        try:
            manager = get_global_factory().create_session_manager(session_id)
            docs = manager.repository.list_message_documents(session_id, AGENT_ID, with_metrics=True)
            feedbacks = manager.get_feedbacks()
        except InvalidInputError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from exc
        except SessionStoreError:  # a new chat: nothing stored for this agent yet
            docs, feedbacks = [], []
        entries = [e for e in conversation(docs, feedbacks) if e["text"] or e["tools"]]
        metrics = [d["event_loop_metrics"] for d in docs if d.get("event_loop_metrics")]
        return {
            "session_id": session_id,
            "messages": entries,
            "metadata": manager.get_metadata(),
            "turns": len(metrics),
            "total_tokens": sum(m["turn_usage"]["totalTokens"] for m in metrics),
            "last_latency_ms": metrics[-1]["turn_metrics"]["latencyMs"] if metrics else None,
            "message_count": sum(1 for e in entries if e["text"]),  # what the user saw, not tool plumbing
            "tool_calls": sum(len(e["tools"]) for e in entries),
            "viewer_url": f"{viewer}?session={session_id}",
        }

    @app.post("/sessions/{session_id}/feedback")
    def feedback(session_id: str, body: FeedbackRequest) -> dict:
        entry = body.model_dump(exclude_none=True) | {"rating": body.rating}
        try:
            get_global_factory().create_session_manager(session_id).add_feedback(entry)
        except InvalidInputError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from exc
        return {"stored": True}

    return app


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    port = int(os.environ.get("PORT", "8880"))
    # uvicorn turns Ctrl-C and SIGTERM into a clean shutdown; leaving this block then stops the local
    # mongod if this process started it (the kernel also stops it should this process be killed).
    with local_mongodb() as uri:
        logger.info("Chats stored in %s.%s at %s", DATABASE_NAME, COLLECTION_NAME, uri)
        logger.info("Serving on http://127.0.0.1:%s  (POST /chat/stream)", port)
        origins = [o.strip() for o in os.environ.get("ALLOWED_ORIGINS", "").split(",") if o.strip()]
        uvicorn.run(create_app(uri, origins or None), host="127.0.0.1", port=port, log_level="warning")
    logger.info("Stopped.")


if __name__ == "__main__":
    main()
