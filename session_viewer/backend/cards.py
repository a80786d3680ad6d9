"""What one list card shows, computed on the server from projections: never a whole document.

A card needs per-session aggregates (turns, tokens, latency, feedback up/down, an estimated cost)
and a preview of the first message. All of it is derived from what the library already keeps:
the per-agent running totals (``agents.<id>.agent_data.totals``, ``$inc``-ed after every turn),
each agent's model, the feedback entries and the first message of each agent's array. The
projection below computes those on the server, so a page of 20 cards transfers 20 small rows
however long the conversations are. Cost is priced here, in Python, from a configurable table
keyed by model id (the stored model id is what Strands reported). Pure functions, unit-tested.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mongodb_session_manager import documents as d
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
    condition: dict[str, Any] = d.is_end_user_feedback()
    if rating is not None:
        condition = {"$and": [condition, {"$eq": [f"$$this.{d.RATING}", rating]}]}
    return {"$size": {"$filter": {"input": _array_or_empty(f"${d.FEEDBACKS}"), "cond": condition}}}


def _first_message_text() -> dict[str, Any]:
    """The text of the earliest first message over all agents (redacted text when there is one).

    Built from ``$reduce`` rather than ``$sortArray`` so servers before 5.2 run it too.
    """
    firsts = {
        "$filter": {
            "input": {"$map": {"input": _agents(), "in": {"$first": _array_or_empty(f"$$this.v.{d.MESSAGES}")}}},
            "cond": {"$eq": [{"$type": "$$this"}, "object"]},
        }
    }
    earliest = {
        "$reduce": {
            "input": firsts,
            "initialValue": None,
            "in": {
                "$cond": [
                    {
                        "$or": [
                            {"$eq": ["$$value", None]},
                            {"$lt": [f"$$this.{d.CREATED_AT}", f"$$value.{d.CREATED_AT}"]},
                        ]
                    },
                    "$$this",
                    "$$value",
                ]
            },
        }
    }
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
    return {"$let": {"vars": {"first": earliest}, "in": in_shown}}


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
                        "message_count": {"$size": _array_or_empty(f"$$this.v.{d.MESSAGES}")},
                    },
                }
            },
            dsf.card_agents_expression(),  # sessions written through Strands' snapshot path
        ]
    },
    "feedback_count": _feedback_count(None),
    "feedback_up": _feedback_count("up"),
    "feedback_down": _feedback_count("down"),
    "preview": {
        "$let": {
            "vars": {"logged": _first_message_text()},
            "in": {"$ifNull": ["$$logged", dsf.card_preview_expression()]},
        }
    },
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
