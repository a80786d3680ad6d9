"""The compact metrics summary: per-turn and cumulative values from Strands' own accounting."""

from __future__ import annotations

from types import SimpleNamespace

from strands.telemetry.metrics import AgentInvocation, EventLoopCycleMetric, EventLoopMetrics, ToolMetrics

from mongodb_session_manager.metrics import model_id, summarize, totals_increment, turn_metrics


def assistant(text: str, usage: dict[str, int], latency: int, tool: str | None = None) -> dict:
    content: list[dict] = [{"text": text}]
    if tool:
        content.append({"toolUse": {"toolUseId": "t1", "name": tool, "input": {}}})
    return {"role": "assistant", "content": content, "metadata": {"usage": usage, "metrics": {"latencyMs": latency}}}


def usage(i: int, o: int, **extra: int) -> dict[str, int]:
    return {"inputTokens": i, "outputTokens": o, "totalTokens": i + o, **extra}


def test_turn_metrics_sum_assistant_messages_and_count_tool_calls() -> None:
    turn = turn_metrics(
        [
            {"role": "user", "content": [{"text": "hi"}]},
            assistant("a", usage(10, 2, cacheReadInputTokens=4), 30, tool="calculator"),
            {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": []}}]},
            assistant("b", usage(20, 5), 40),
        ]
    )
    assert turn["usage"] == {"inputTokens": 30, "outputTokens": 7, "totalTokens": 37, "cacheReadInputTokens": 4}
    assert turn["latencyMs"] == 70 and turn["model_calls"] == 2
    assert turn["tool_calls"] == {"calculator": 1}


def test_summarize_prefers_strands_invocation_usage_and_is_compact() -> None:
    elm = EventLoopMetrics()
    elm.cycle_count = 3
    elm.accumulated_usage = usage(100, 20)
    elm.accumulated_metrics = {"latencyMs": 900}
    elm.agent_invocations = [
        AgentInvocation(cycles=[EventLoopCycleMetric("c0", usage(50, 10))], usage=usage(50, 10)),
        AgentInvocation(
            cycles=[EventLoopCycleMetric("c1", usage(20, 5)), EventLoopCycleMetric("c2", usage(30, 5))],
            usage=usage(50, 10),
        ),
    ]
    elm.tool_metrics = {
        "calculator": ToolMetrics(tool={"toolUseId": "t", "name": "calculator", "input": {"x": b"big"}}, call_count=2)
    }
    summary = summarize(elm, [assistant("x", usage(1, 1), 12, tool="calculator")])
    assert summary["turn_usage"] == usage(50, 10)
    assert summary["turn_cycle_count"] == 2
    assert summary["turn_metrics"] == {"latencyMs": 12}
    assert summary["accumulated_usage"] == usage(100, 20)
    assert summary["accumulated_metrics"] == {"latencyMs": 900}
    assert summary["tool_usage"]["calculator"]["call_count"] == 2
    assert "input" not in str(summary["tool_usage"])  # tool inputs (possibly bytes) are not copied
    inc = totals_increment(summary)
    assert inc["usage.totalTokens"] == 60 and inc["turns"] == 1 and inc["tool_calls.calculator"] == 1


def test_summarize_falls_back_to_message_usage_without_invocations() -> None:
    summary = summarize(SimpleNamespace(), [assistant("x", usage(3, 4), 5)])
    assert summary["turn_usage"] == usage(3, 4) and summary["turn_cycle_count"] == 1


def test_model_id_from_config_or_class_name() -> None:
    assert model_id(SimpleNamespace(get_config=lambda: {"model_id": "eu.claude"})) == "eu.claude"
    assert model_id(SimpleNamespace(get_config=lambda: SimpleNamespace(model="gpt"))) == "gpt"

    class NoConfig:
        def get_config(self) -> None:
            raise NotImplementedError

    assert model_id(NoConfig()) == "NoConfig"
