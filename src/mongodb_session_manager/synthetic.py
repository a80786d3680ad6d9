"""Small session documents in the library's shape, generated in bulk for load tests and benchmarks.

Real agent loops write a few sessions a second; measuring the viewer at a million sessions needs
them inserted in minutes, so this builds the documents directly with :mod:`.documents`' field names
(including the session-level ``agent_ids``, ``models`` and ``totals`` the viewer's indexes use).
Values are deterministic in the index ``n``: tests can compute what any search must return.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from . import documents as d

STATUSES = ("open", "closed", "escalated")
PRIORITIES = ("low", "medium", "high", "urgent")
AGENTS = ("support", "billing", "triage", "sales", "returns")
MODELS = ("model-small", "model-large", "model-fast")
APPLICATIONS = ("shop", "bank", "travel", "insurance", "telco", "rare-app")
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
#: Sessions per second of creation time: three share each timestamp, so every sort has ties to break.
TIES = 3


def session_id(n: int) -> str:
    return f"sess-{n:08d}"


def created_at(n: int) -> datetime:
    return EPOCH + timedelta(seconds=n // TIES)


def updated_at(n: int) -> datetime:
    """Updates come later than creation by a varying amount, so the two sorts differ."""
    return created_at(n) + timedelta(seconds=(n * 7919) % 86_400)


def rating(n: int) -> str | None:
    return "down" if n % 13 == 0 else "up" if n % 5 == 0 else None


def session_document(n: int) -> dict[str, Any]:
    """Session ``n``: one or two agents with totals, a short first message, metadata and maybe feedback."""
    sid = session_id(n)
    agents = [AGENTS[n % len(AGENTS)]] + ([AGENTS[(n + 2) % len(AGENTS)]] if n % 4 == 0 else [])
    model = MODELS[n % len(MODELS)]
    tokens = 50 + (n * 37) % 5_000
    created = created_at(n)
    entries: dict[str, Any] = {}
    for position, agent in enumerate(agents):
        messages = []
        if position == 0:
            messages = [
                {
                    d.MESSAGE_ID: 0,
                    d.MESSAGE: {"role": "user", "content": [{"text": f"Question {n} about my order"}]},
                    d.REDACT_MESSAGE: None,
                    d.CREATED_AT: created,
                    d.UPDATED_AT: created,
                },
                {
                    d.MESSAGE_ID: 1,
                    d.MESSAGE: {"role": "assistant", "content": [{"text": "Here is the answer."}]},
                    d.REDACT_MESSAGE: None,
                    d.CREATED_AT: created,
                    d.UPDATED_AT: created,
                },
            ]
        entries[agent] = {
            d.AGENT_DATA: {
                "agent_id": agent,
                d.STATE: {},
                d.MODEL: model,
                d.TOTALS: {
                    d.USAGE: {"inputTokens": tokens // 2, "outputTokens": tokens - tokens // 2, "totalTokens": tokens}
                    if position == 0
                    else {"inputTokens": 0, "outputTokens": 0, "totalTokens": 0},
                    "latencyMs": 100 + n % 900 if position == 0 else 0,
                    "turns": 1 if position == 0 else 0,
                },
                d.CREATED_AT: created,
                d.UPDATED_AT: created,
            },
            d.MESSAGES: messages,
            d.NEXT_MESSAGE_ID: len(messages),
        }
    feedback = rating(n)
    return {
        d.ID: sid,
        d.SESSION_ID: sid,
        d.SESSION_TYPE: "AGENT",
        d.VIEWER_PASSWORD: f"pw-{n}",
        d.CREATED_AT: created,
        d.UPDATED_AT: updated_at(n),
        d.METADATA: {"status": STATUSES[n % len(STATUSES)], "priority": PRIORITIES[n % len(PRIORITIES)]},
        d.APPLICATION_NAME: APPLICATIONS[-1] if n % 100 == 7 else APPLICATIONS[n % (len(APPLICATIONS) - 1)],
        d.FEEDBACKS: [{d.RATING: feedback, "comment": "", d.CREATED_AT: created}] if feedback else [],
        d.AGENTS: entries,
        d.MULTI_AGENTS: {},
        d.AGENT_IDS: agents,
        d.MODELS: [model],
        d.TOTALS: {d.USAGE: {"totalTokens": tokens}, "turns": 1},
    }


def session_documents(count: int, start: int = 0, batch: int = 5_000) -> Iterator[list[dict[str, Any]]]:
    """Batches for ``insert_many(..., ordered=False)``: sessions ``start .. start + count - 1``."""
    for first in range(start, start + count, batch):
        yield [session_document(n) for n in range(first, min(first + batch, start + count))]
