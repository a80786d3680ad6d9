"""The reads the original library (v0.2.7) makes when an Agent resumes a session, re-created to measure.

This is not the original's code; it issues the same commands with the same projections and does
the same conversion, so a benchmark can put it beside this library in one run on one server:

* building its repository (one per ``create_session_manager``) runs ``createIndexes`` for
  ``created_at``, ``updated_at`` and ``session_id``;
* ``read_session`` reads the whole session document (no projection);
* ``read_agent`` reads ``agents.<id>``, which holds the agent's whole message array;
* ``list_messages`` reads ``agents.<id>.messages``, sorts the array by ``created_at`` in Python,
  slices it at Strands' offset and builds one ``SessionMessage`` per stored message, without the
  metric fields it kept beside them; per message it also formats a debug line listing the
  message's keys (an f-string, so formatted whether or not debug logging is on).

Checked against the original's own v0.2.7 code on the same data and server (run outside this
repository, 2026-12-02, a 2,000-message restore): without the per-message debug line the
re-creation was up to 20% faster than the original (30-37 ms against 35-39 ms); with it, four
back-to-back comparisons came within 10% either way (41.5 vs 40.7 ms, 41.9 vs 42.4, 44.2 vs 40.0,
30.1 vs 33.0).

Strands' own ``RepositorySessionManager`` drives these calls, as it drove the original's manager.
The client uses the driver's default codec options (naive datetimes), as the original's did.

What the original stored during a turn is re-created too (:func:`record_turn_metrics`): its
``sync_agent``, which Strands calls after every added message, wrote the agent's running latency
and token counts on the session's newest message whenever the latency was above zero. In a
service that builds an Agent per request (the counters start at zero), that is every assistant
message; a restore then reads, sorts and converts those values with the rest.
"""

from __future__ import annotations

import logging
from typing import Any

from pymongo import MongoClient
from strands.session.repository_session_manager import RepositorySessionManager
from strands.session.session_repository import SessionRepository
from strands.types.session import Session, SessionAgent, SessionMessage

logger = logging.getLogger(__name__)

#: Fields the original stored on a message that ``SessionMessage`` does not accept.
METRIC_FIELDS = ("event_loop_metrics", "latency_ms", "input_tokens", "output_tokens")
#: Agent fields the original stored for auditing that ``SessionAgent`` does not accept.
CONFIG_FIELDS = ("model", "system_prompt")


class UpstreamReads(SessionRepository):
    """The read side of the original repository; writes are not part of a restore."""

    def __init__(self, client: MongoClient[Any], database: str, collection: str) -> None:
        self.collection = client[database][collection]
        for field in ("created_at", "updated_at", "session_id"):
            self.collection.create_index(field)

    def read_session(self, session_id: str, **kwargs: Any) -> Session | None:
        doc = self.collection.find_one({"_id": session_id})
        if not doc:
            return None
        return Session(
            session_id=doc["session_id"],
            session_type=doc.get("session_type", "AGENT"),
            created_at=doc.get("created_at"),
            updated_at=doc.get("updated_at"),
        )

    def read_agent(self, session_id: str, agent_id: str, **kwargs: Any) -> SessionAgent | None:
        doc = self.collection.find_one({"_id": session_id}, {f"agents.{agent_id}": 1})
        if not doc or agent_id not in doc.get("agents", {}):
            return None
        data = doc["agents"][agent_id]["agent_data"]
        return SessionAgent(**{k: v for k, v in data.items() if k not in CONFIG_FIELDS})

    def list_messages(
        self, session_id: str, agent_id: str, limit: int | None = None, offset: int = 0, **kwargs: Any
    ) -> list[SessionMessage]:
        doc = self.collection.find_one({"_id": session_id}, {f"agents.{agent_id}.messages": 1})
        if not doc or agent_id not in doc.get("agents", {}):
            return []
        stored = doc["agents"][agent_id].get("messages", [])
        stored.sort(key=lambda m: m.get("created_at", ""))
        stored = stored[offset : offset + limit] if limit is not None else stored[offset:]
        result = []
        for i, m in enumerate(stored):
            logger.debug(f"Message {i} structure: {list(m.keys())}")  # formatted always, as the original did
            result.append(SessionMessage(**{k: v for k, v in m.items() if k not in METRIC_FIELDS}))
        return result

    def create_session(self, session: Session, **kwargs: Any) -> Session:
        raise NotImplementedError("a restore writes nothing")

    def create_agent(self, session_id: str, session_agent: SessionAgent, **kwargs: Any) -> None:
        raise NotImplementedError("a restore writes nothing")

    def update_agent(self, session_id: str, session_agent: SessionAgent, **kwargs: Any) -> None:
        raise NotImplementedError("a restore writes nothing")

    def create_message(self, session_id: str, agent_id: str, session_message: SessionMessage, **kwargs: Any) -> None:
        raise NotImplementedError("a restore writes nothing")

    def read_message(self, session_id: str, agent_id: str, message_id: int, **kwargs: Any) -> SessionMessage | None:
        raise NotImplementedError("not part of a restore")

    def update_message(self, session_id: str, agent_id: str, session_message: SessionMessage, **kwargs: Any) -> None:
        raise NotImplementedError("a restore writes nothing")


def record_turn_metrics(
    client: MongoClient[Any],
    database: str,
    collection: str,
    session_id: str,
    agent_id: str,
    message_id: int,
    event_loop_metrics: Any,
) -> None:
    """What the original's ``sync_agent`` left on the newest message (``message_id``) after a turn:
    the same positional ``$set`` of the agent's accumulated latency and usage."""
    latency = event_loop_metrics.accumulated_metrics["latencyMs"]
    usage = event_loop_metrics.accumulated_usage
    prefix = f"agents.{agent_id}.messages.$.event_loop_metrics"
    client[database][collection].update_one(
        {"_id": session_id, f"agents.{agent_id}.messages.message_id": message_id},
        {
            "$set": {
                f"{prefix}.accumulated_metrics": {"latencyMs": latency},
                f"{prefix}.accumulated_usage": {
                    "inputTokens": usage["inputTokens"],
                    "outputTokens": usage["outputTokens"],
                    "totalTokens": usage["totalTokens"],
                },
            }
        },
    )


def upstream_manager(client: MongoClient[Any], database: str, collection: str, session_id: str) -> Any:
    """What the original's ``factory.create_session_manager(session_id)`` amounted to for a restore."""
    return RepositorySessionManager(
        session_id=session_id, session_repository=UpstreamReads(client, database, collection)
    )
