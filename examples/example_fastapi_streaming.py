"""Streaming FastAPI service (also the playground's backend): tokens as they are generated.

POST /chat/stream streams newline-delimited JSON events ({"type": "delta", "text": ...} then one
{"type": "done", ...} with the turn's metrics). GET /sessions/{id} returns history, metadata and
metrics so a page can restore a conversation after a reload. POST /sessions/{id}/feedback stores feedback.

Run: uv run python examples/example_fastapi_streaming.py   (PORT, default 8880; ALLOWED_ORIGINS, comma-separated,
default the playground page on port 8881)
"""

import json
import os
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from strands import Agent

from mongodb_session_manager import close_global_factory, get_global_factory, initialize_global_factory
from mongodb_session_manager.demo import calculator
from mongodb_session_manager.embedded import local_mongodb
from mongodb_session_manager.errors import InvalidInputError, SessionStoreError
from mongodb_session_manager.testing import default_model

AGENT_ID = "assistant"


class ChatRequest(BaseModel):
    session_id: str
    message: str


class FeedbackRequest(BaseModel):
    rating: str | None = None
    comment: str = ""


def _text(message: dict[str, Any]) -> str:
    return "".join(block.get("text", "") for block in message.get("content", []))


def create_app(connection_string: str, allowed_origins: list[str] | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        initialize_global_factory(
            connection_string,
            database_name="chat",
            collection_name="sessions",
            metadata_fields=["topic"],
        )
        yield
        close_global_factory()

    app = FastAPI(title="Streaming chat with MongoDB sessions", lifespan=lifespan)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=allowed_origins or ["http://localhost:8881", "http://127.0.0.1:8881"],
        allow_methods=["GET", "POST"],
        allow_headers=["content-type"],
    )

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    @app.post("/chat/stream")
    async def chat_stream(request: ChatRequest) -> StreamingResponse:
        try:
            manager = get_global_factory().create_session_manager(request.session_id)
        except InvalidInputError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from exc
        agent = Agent(
            agent_id=AGENT_ID,
            model=default_model(),
            tools=[calculator, manager.get_metadata_tool()],
            system_prompt="You are a helpful assistant.",
            session_manager=manager,
            callback_handler=None,
        )

        async def events():
            async for event in agent.stream_async(request.message):
                if "data" in event:
                    yield json.dumps({"type": "delta", "text": event["data"]}) + "\n"
            usage = agent.event_loop_metrics.agent_invocations[-1].usage
            yield (
                json.dumps({"type": "done", "usage": dict(usage), "messages_in_session": manager.get_message_count()})
                + "\n"
            )

        return StreamingResponse(events(), media_type="application/x-ndjson")

    @app.get("/sessions/{session_id}")
    def session(session_id: str) -> dict:
        try:
            manager = get_global_factory().create_session_manager(session_id)
            docs = manager.repository.list_message_documents(session_id, AGENT_ID, with_metrics=True)
        except InvalidInputError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from exc
        except SessionStoreError:
            docs = []
        history = [{"role": d["message"]["role"], "text": _text(d["message"])} for d in docs]
        metrics = [d["event_loop_metrics"] for d in docs if d.get("event_loop_metrics")]
        total_tokens = sum(m["turn_usage"]["totalTokens"] for m in metrics)
        return {
            "session_id": session_id,
            "history": [h for h in history if h["text"]],
            "metadata": manager.get_metadata(),
            "turns": len(metrics),
            "total_tokens": total_tokens,
            "last_latency_ms": metrics[-1]["turn_metrics"]["latencyMs"] if metrics else None,
            "message_count": len(docs),
        }

    @app.post("/sessions/{session_id}/feedback")
    def feedback(session_id: str, body: FeedbackRequest) -> dict:
        try:
            get_global_factory().create_session_manager(session_id).add_feedback(body.model_dump())
        except InvalidInputError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from exc
        return {"stored": True}

    return app


def main() -> None:
    port = int(os.environ.get("PORT", "8880"))
    with local_mongodb() as uri:
        print(f"Serving on http://127.0.0.1:{port}  (POST /chat/stream)", flush=True)
        origins = [o.strip() for o in os.environ.get("ALLOWED_ORIGINS", "").split(",") if o.strip()]
        uvicorn.run(create_app(uri, origins or None), host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
