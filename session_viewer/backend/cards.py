"""What one list card shows, computed on the server from projections: never a whole document.

A card needs per-session aggregates (turns, tokens, latency, feedback up/down, an estimated cost)
and a preview of the first message. All of it is derived from what the library already keeps:
the per-agent running totals (``agents.<id>.agent_data.totals``, ``$inc``-ed after every turn),
each agent's model, the feedback entries and the first message of each agent's history. The
projection below computes those on the server, so a page of 20 cards transfers 20 small rows
however long the conversations are. Cost is priced here, in Python, from a configurable table
keyed by model id (the stored model id is what Strands reported). Pure functions, unit-tested.

Long sessions keep an agent's oldest messages in buckets (``<collection>_messages``, see
:mod:`mongodb_session_manager.documents_archive`): message counts include them, and the preview of
such an agent is the first message of its first listed bucket, fetched by ``_id`` on the server
(:func:`preview_stages`) and reduced there to its text.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mongodb_session_manager import documents as d
from mongodb_session_manager import documents_archive as da
from mongodb_session_manager import documents_features as df
from mongodb_session_manager import documents_snapshot_features as dsf

#: Characters of the first message a card shows (counted in code points on the server).
PREVIEW_LENGTH = 240


@dataclass(frozen=True)
class Price:
    """US dollars per million input and output tokens for one model id."""

    input: float
    output: float


def parse_prices(raw: str) -> dict[str, Price]:
    """``MODEL_PRICES`` JSON: ``{"<model id>": {"input": 3.0, "output": 15.0}}`` (USD per 1M tokens).

    Refused loudly at start-up when malformed: a silently ignored price table would show no cost
    and look like a free model.
    """
    if not raw.strip():
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError as exc:
        raise ValueError("MODEL_PRICES must be a JSON object") from exc
    if not isinstance(parsed, Mapping):
        raise ValueError("MODEL_PRICES must be a JSON object of model id -> {input, output}")
    prices: dict[str, Price] = {}
    for model, entry in parsed.items():
        if not isinstance(entry, Mapping):
            raise ValueError(f"MODEL_PRICES[{model!r}] must be an object with input and output")
        values = [entry.get("input", 0), entry.get("output", 0)]
        if not all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v >= 0 for v in values
        ):
            raise ValueError(f"MODEL_PRICES[{model!r}]: input and output must be non-negative numbers")
        prices[str(model)] = Price(float(values[0]), float(values[1]))
    return prices


def _object_or_empty(expr: str) -> dict[str, Any]:
    return {"$cond": [{"$eq": [{"$type": expr}, "object"]}, expr, {}]}


def _array_or_empty(expr: str) -> dict[str, Any]:
    return {"$cond": [{"$isArray": expr}, expr, []]}


def _agents() -> dict[str, Any]:
    return {"$objectToArray": _object_or_empty(f"${d.AGENTS}")}


def _feedback_count(rating: str | None) -> dict[str, Any]:
    condition: dict[str, Any] = df.is_end_user_feedback()
    if rating is not None:
        condition = {"$and": [condition, {"$eq": [f"$$this.{d.RATING}", rating]}]}
    return {"$size": {"$filter": {"input": _array_or_empty(f"${d.FEEDBACKS}"), "cond": condition}}}


def _preview_candidate(message: Any) -> dict[str, Any]:
    """A stored message reduced to what the preview compares and shows: ``{at, text}``.

    ``text`` is the first text block of the shown message (the redacted one when there is one),
    cut to ``PREVIEW_LENGTH`` code points, or null when the message has no text block.
    """
    shown = {"$ifNull": [f"$$first.{d.REDACT_MESSAGE}", f"$$first.{d.MESSAGE}"]}
    text_block = {
        "$first": {
            "$filter": {
                "input": _array_or_empty("$$shown.content"),
                "as": "block",
                "cond": {"$eq": [{"$type": "$$block.text"}, "string"]},
            }
        }
    }
    preview = {
        "$cond": [
            {"$eq": [{"$type": "$$block.text"}, "string"]},
            {"$substrCP": ["$$block.text", 0, PREVIEW_LENGTH]},
            None,
        ]
    }
    in_block = {"$let": {"vars": {"block": text_block}, "in": preview}}
    in_shown = {"$let": {"vars": {"shown": shown}, "in": in_block}}
    candidate = {"at": f"$$first.{d.CREATED_AT}", "text": in_shown}
    return {
        "$let": {
            "vars": {"first": message},
            "in": {"$cond": [{"$eq": [{"$type": "$$first"}, "object"]}, candidate, None]},
        }
    }


def _preview_parts() -> dict[str, Any]:
    """Per agent, in the document's order: its first message as ``{at, text}``, ``{bucket: <id>}``
    when that message is archived (the agent lists buckets), or null for an agent without messages."""
    buckets = da.buckets_expr("$$this.v")
    first_bucket = {"bucket": {"$first": {"$map": {"input": buckets, "in": f"$$this.{da.BUCKET_ID}"}}}}
    in_document = _preview_candidate({"$first": _array_or_empty(f"$$this.v.{d.MESSAGES}")})
    return {
        "$map": {"input": _agents(), "in": {"$cond": [{"$gt": [{"$size": buckets}, 0]}, first_bucket, in_document]}}
    }


def _earliest_text(candidates: Any) -> dict[str, Any]:
    """The text of the earliest candidate (first in agent order on ties).

    Built from ``$reduce`` rather than ``$sortArray`` so servers before 5.2 run it too.
    """
    earliest = {
        "$reduce": {
            "input": {"$filter": {"input": candidates, "cond": {"$eq": [{"$type": "$$this"}, "object"]}}},
            "initialValue": None,
            "in": {
                "$cond": [
                    {"$or": [{"$eq": ["$$value", None]}, {"$lt": ["$$this.at", "$$value.at"]}]},
                    "$$this",
                    "$$value",
                ]
            },
        }
    }
    return {"$let": {"vars": {"earliest": earliest}, "in": "$$earliest.text"}}


#: Helper fields of the list row that only the preview stages read; removed before the row leaves the server.
_PREVIEW_PARTS = "preview_parts"
_PREVIEW_BUCKET_IDS = "preview_bucket_ids"
_PREVIEW_ARCHIVED = "preview_archived"
_PREVIEW_SNAPSHOT = "preview_snapshot"


def preview_stages(buckets_collection: str) -> list[dict[str, Any]]:
    """The stages after :data:`SUMMARY_PROJECTION` that turn its preview parts into ``preview``.

    Only agents whose first message is archived cost a lookup (by bucket ``_id``, reduced to
    ``{at, text}`` on the server); a row without such an agent looks up an empty list of ids.
    The bucket id comes from the session document's own list, so an orphan bucket is never read.
    """
    ids = {
        "$map": {
            "input": {
                "$filter": {"input": f"${_PREVIEW_PARTS}", "cond": {"$ne": [{"$type": "$$this.bucket"}, "missing"]}}
            },
            "in": "$$this.bucket",
        }
    }
    archived_first = _preview_candidate({"$first": _array_or_empty(f"${d.MESSAGES}")})
    resolved = {
        "$map": {
            "input": f"${_PREVIEW_PARTS}",
            "as": "part",
            "in": {
                "$cond": [
                    {"$eq": [{"$type": "$$part.bucket"}, "missing"]},
                    "$$part",
                    {
                        "$first": {
                            "$map": {
                                "input": {
                                    "$filter": {
                                        "input": f"${_PREVIEW_ARCHIVED}",
                                        "cond": {"$eq": [f"$$this.{d.ID}", "$$part.bucket"]},
                                    }
                                },
                                "in": "$$this.first",
                            }
                        }
                    },
                ]
            },
        }
    }
    return [
        {"$set": {_PREVIEW_BUCKET_IDS: ids}},
        {
            "$lookup": {
                "from": buckets_collection,
                "localField": _PREVIEW_BUCKET_IDS,
                "foreignField": d.ID,
                "pipeline": [{"$project": {d.ID: 1, "first": archived_first}}],
                "as": _PREVIEW_ARCHIVED,
            }
        },
        {"$set": {"preview": {"$ifNull": [_earliest_text(resolved), f"${_PREVIEW_SNAPSHOT}"]}}},
        {"$unset": [_PREVIEW_PARTS, _PREVIEW_BUCKET_IDS, _PREVIEW_ARCHIVED, _PREVIEW_SNAPSHOT]},
    ]


#: A list row: identity, dates, metadata and aggregates computed on the server (never the messages).
SUMMARY_PROJECTION: dict[str, Any] = {
    d.ID: 1,
    d.SESSION_ID: 1,
    d.SESSION_TYPE: 1,
    d.CREATED_AT: 1,
    d.UPDATED_AT: 1,
    d.METADATA: 1,
    d.APPLICATION_NAME: 1,
    d.TOTAL_TOKENS_PATH: 1,
    "agents_summary": {
        "$concatArrays": [
            {
                "$map": {
                    "input": _agents(),
                    "in": {
                        "agent_id": "$$this.k",
                        "model": f"$$this.v.{d.AGENT_DATA}.{d.MODEL}",
                        "totals": f"$$this.v.{d.AGENT_DATA}.{d.TOTALS}",
                        "message_count": da.message_count_expr("$$this.v"),
                    },
                }
            },
            dsf.card_agents_expression(),  # sessions written through Strands' snapshot path
        ]
    },
    "feedback_count": _feedback_count(None),
    "feedback_up": _feedback_count("up"),
    "feedback_down": _feedback_count("down"),
    _PREVIEW_PARTS: _preview_parts(),
    _PREVIEW_SNAPSHOT: dsf.card_preview_expression(),  # sessions written through Strands' snapshot path
}


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return 0
    return int(value)


def aggregates(row: Mapping[str, Any], prices: Mapping[str, Price]) -> dict[str, Any]:
    """Sums over the row's agents, and the estimated cost of the agents whose model has a price.

    ``cost_usd`` is None when no agent with tokens has a priced model; ``cost_complete`` is False
    when some tokens came from an unpriced model (the card then shows the cost as "at least").
    """
    agents = [a for a in row.get("agents_summary") or [] if isinstance(a, Mapping)]
    usage = {"inputTokens": 0, "outputTokens": 0, "totalTokens": 0}
    latency = turns = messages = 0
    cost = 0.0
    priced = False
    complete = True
    models: list[str] = []
    for agent in agents:
        totals = agent.get("totals") if isinstance(agent.get("totals"), Mapping) else {}
        agent_usage = totals.get(d.USAGE) if isinstance(totals.get(d.USAGE), Mapping) else {}
        tokens_in, tokens_out = _int(agent_usage.get("inputTokens")), _int(agent_usage.get("outputTokens"))
        usage["inputTokens"] += tokens_in
        usage["outputTokens"] += tokens_out
        usage["totalTokens"] += _int(agent_usage.get("totalTokens")) or tokens_in + tokens_out
        latency += _int(totals.get("latencyMs"))
        turns += _int(totals.get("turns"))
        messages += _int(agent.get("message_count"))
        model = agent.get("model")
        if isinstance(model, str) and model and model not in models:
            models.append(model)
        price = prices.get(model) if isinstance(model, str) else None
        if price is not None:
            cost += tokens_in * price.input / 1_000_000 + tokens_out * price.output / 1_000_000
            priced = True
        elif tokens_in or tokens_out:
            complete = False
    return {
        "agent_ids": sorted(str(a.get("agent_id")) for a in agents),
        "models": models,
        "message_count": messages,
        "turns": turns,
        "tokens": usage,
        "latency_ms": latency,
        "cost_usd": round(cost, 6) if priced else None,
        "cost_complete": complete,
        "feedback_count": _int(row.get("feedback_count")),
        "feedback_up": _int(row.get("feedback_up")),
        "feedback_down": _int(row.get("feedback_down")),
    }
