"""List-card aggregates and the price table: pure functions over a projected row."""

from __future__ import annotations

import pytest

from session_viewer.backend import cards


def row() -> dict[str, object]:
    return {
        "agents_summary": [
            {
                "agent_id": "support",
                "model": "model-a",
                "totals": {
                    "usage": {"inputTokens": 1_000, "outputTokens": 500, "totalTokens": 1_500},
                    "latencyMs": 40,
                    "turns": 2,
                },
                "message_count": 4,
            },
            {
                "agent_id": "billing",
                "model": "model-b",
                "totals": {"usage": {"inputTokens": 2_000, "outputTokens": 0}, "latencyMs": 10, "turns": 1},
                "message_count": 2,
            },
            {"agent_id": "idle", "model": None, "totals": None, "message_count": 0},
        ],
        "feedback_count": 3,
        "feedback_up": 2,
        "feedback_down": 1,
    }


def test_aggregates_sum_agents_and_price_known_models() -> None:
    prices = cards.parse_prices('{"model-a": {"input": 3, "output": 15}, "model-b": {"input": 1, "output": 5}}')
    got = cards.aggregates(row(), prices)
    assert got["agent_ids"] == ["billing", "idle", "support"]
    assert got["models"] == ["model-a", "model-b"]
    assert got["tokens"] == {"inputTokens": 3_000, "outputTokens": 500, "totalTokens": 3_500}
    assert (got["turns"], got["latency_ms"], got["message_count"]) == (3, 50, 6)
    assert got["cost_usd"] == pytest.approx(0.003 + 0.0075 + 0.002)
    assert got["cost_complete"] is True
    assert (got["feedback_count"], got["feedback_up"], got["feedback_down"]) == (3, 2, 1)


def test_cost_is_partial_or_absent_without_prices() -> None:
    partial = cards.aggregates(row(), cards.parse_prices('{"model-a": {"input": 3, "output": 15}}'))
    assert partial["cost_usd"] == pytest.approx(0.0105) and partial["cost_complete"] is False
    none = cards.aggregates(row(), {})
    assert none["cost_usd"] is None and none["cost_complete"] is False
    assert cards.aggregates({}, {})["tokens"] == {"inputTokens": 0, "outputTokens": 0, "totalTokens": 0}


@pytest.mark.parametrize(
    "bad", ["[1]", "{", '{"m": 3}', '{"m": {"input": -1}}', '{"m": {"input": "x"}}', '{"m": {"output": NaN}}']
)
def test_malformed_price_tables_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="MODEL_PRICES"):
        cards.parse_prices(bad)


def test_projection_never_returns_message_arrays() -> None:
    projection = cards.SUMMARY_PROJECTION
    assert "agents" not in projection and "session_viewer_password" not in projection
    stages = cards.preview_stages("sessions_messages")
    assert any("preview" in stage.get("$set", {}) for stage in stages), "the preview is computed on the server"
    lookup = next(stage["$lookup"] for stage in stages if "$lookup" in stage)
    assert lookup["from"] == "sessions_messages" and lookup["foreignField"] == "_id"
    helpers = {field for field in projection if field.startswith("preview")}
    assert helpers and helpers <= set(stages[-1]["$unset"]), "the preview's helper fields never leave the server"
