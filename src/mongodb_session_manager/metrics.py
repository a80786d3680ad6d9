"""Compact per-turn and cumulative metrics of one agent invocation.

``EventLoopMetrics.get_summary()`` embeds whole traces (messages, bytes), far too much to keep
on every assistant message. We keep what a reviewer looks at: tokens (per turn and cumulative),
cache tokens when reported, model latency, cycles and tool calls. Pure functions, unit-tested.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from . import documents as d

USAGE_KEYS = ("inputTokens", "outputTokens", "totalTokens", "cacheReadInputTokens", "cacheWriteInputTokens")


def _usage(source: Mapping[str, Any] | None) -> dict[str, int]:
    source = source or {}
    usage = {k: int(source.get(k) or 0) for k in USAGE_KEYS[:3]}
    for key in USAGE_KEYS[3:]:
        if source.get(key):
            usage[key] = int(source[key])
    return usage


def _add(total: dict[str, int], more: Mapping[str, int]) -> None:
    for key, value in more.items():
        total[key] = total.get(key, 0) + int(value)


def turn_metrics(messages: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Sum what the model reported on this turn's assistant messages (``metadata.usage/metrics``)."""
    usage: dict[str, int] = {k: 0 for k in USAGE_KEYS[:3]}
    latency = 0
    first_byte: int | None = None
    model_calls = 0
    tool_calls: Counter[str] = Counter()
    for message in messages:
        if message.get("role") != "assistant":
            continue
        model_calls += 1
        meta = message.get("metadata") or {}
        _add(usage, _usage(meta.get("usage")))
        metrics = meta.get("metrics") or {}
        latency += int(metrics.get("latencyMs") or 0)
        if first_byte is None and metrics.get("timeToFirstByteMs") is not None:
            first_byte = int(metrics["timeToFirstByteMs"])
        for block in message.get("content") or []:
            if isinstance(block, Mapping) and "toolUse" in block:
                tool_calls[str(block["toolUse"].get("name", "unknown"))] += 1
    result: dict[str, Any] = {"usage": usage, "latencyMs": latency, "model_calls": model_calls}
    if first_byte is not None:
        result["timeToFirstByteMs"] = first_byte
    result["tool_calls"] = dict(tool_calls)
    return result


def summarize(event_loop_metrics: Any, turn_messages: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The ``event_loop_metrics`` stored on the turn's last assistant message.

    ``turn_*`` fields describe this invocation only; ``accumulated_*`` fields are the agent
    instance's running totals (what Strands itself accumulates).
    """
    turn = turn_metrics(turn_messages)
    invocations = list(getattr(event_loop_metrics, "agent_invocations", []) or [])
    latest = invocations[-1] if invocations else None
    if latest is not None and any(latest.usage.get(k) for k in USAGE_KEYS[:3]):
        turn_usage = _usage(latest.usage)  # Strands' own per-invocation accounting wins when present
    else:
        turn_usage = turn["usage"]
    tool_usage = {
        name: {
            "call_count": tm.call_count,
            "success_count": tm.success_count,
            "error_count": tm.error_count,
            "total_time": round(float(tm.total_time), 6),
        }
        for name, tm in (getattr(event_loop_metrics, "tool_metrics", {}) or {}).items()
    }
    accumulated_metrics = dict(getattr(event_loop_metrics, "accumulated_metrics", {}) or {})
    summary: dict[str, Any] = {
        "turn_usage": turn_usage,
        "turn_metrics": {"latencyMs": turn["latencyMs"]},
        "turn_cycle_count": len(latest.cycles) if latest is not None else turn["model_calls"],
        "turn_tool_calls": turn["tool_calls"],
        "accumulated_usage": _usage(getattr(event_loop_metrics, "accumulated_usage", None)),
        "accumulated_metrics": {"latencyMs": int(accumulated_metrics.get("latencyMs") or 0)},
        "cycle_count": int(getattr(event_loop_metrics, "cycle_count", 0) or 0),
        "tool_usage": tool_usage,
    }
    if "timeToFirstByteMs" in turn:
        summary["turn_metrics"]["timeToFirstByteMs"] = turn["timeToFirstByteMs"]
    return summary


def totals_increment(summary: Mapping[str, Any]) -> dict[str, int]:
    """What one turn adds to the session-wide per-agent totals (``$inc``; field names from :mod:`.documents`)."""
    inc = {f"{d.TOTALS_USAGE}.{k}": int(v) for k, v in summary["turn_usage"].items()}
    inc[d.TOTALS_LATENCY_MS] = int(summary["turn_metrics"].get("latencyMs", 0))
    inc[d.TOTALS_TURNS] = 1
    inc[d.TOTALS_CYCLES] = int(summary.get("turn_cycle_count", 0))
    for name, count in summary.get("turn_tool_calls", {}).items():
        inc[f"{d.TOTALS_TOOL_CALLS}.{name}"] = int(count)
    return inc


def model_id(model: Any) -> str:
    """Model id from ``model.config`` / ``model.get_config()``, else the model class name (scripted/custom models).

    A plain ``config`` dict is read first, as the original library did (Strands' own models keep
    their config there too, and custom models often have only that).
    """
    config = getattr(model, "config", None)
    if not (isinstance(config, Mapping) and any(config.get(k) for k in ("model_id", "model", "model_name"))):
        try:
            config = model.get_config()
        except Exception:  # a custom model may not implement get_config at all
            config = None
    if isinstance(config, Mapping):
        for key in ("model_id", "model", "model_name"):
            if config.get(key):
                return str(config[key])
    elif config is not None:
        for key in ("model_id", "model"):
            value = getattr(config, key, None)
            if value:
                return str(value)
    return type(model).__name__
