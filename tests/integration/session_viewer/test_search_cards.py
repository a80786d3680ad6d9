"""List cards and the new list filters on sessions written by real agent loops (not synthetic ones).

Proves the library's own writes keep what the list reads: ``agent_ids`` and ``models`` (filters),
the session-level ``totals`` (sort by tokens) and the per-agent totals (card aggregates).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient
from pymongo import MongoClient

from .conftest import GLOBAL, AppFactory, SeededDatabase
from .seed import bulk_sessions, rich_sessions

SEARCH = "/api/v1/sessions/search"
ALL = rich_sessions() + bulk_sessions(22)
PRICES = json.dumps(
    {"scripted-support": {"input": 3.0, "output": 15.0}, "scripted-billing": {"input": 1.0, "output": 5.0}}
)


def search(api: TestClient, **params: Any) -> dict[str, Any]:
    response = api.get(SEARCH, headers=GLOBAL, params={"page_size": 100, **params})
    assert response.status_code == 200, response.text
    return response.json()


def card(api: TestClient, session_id: str) -> dict[str, Any]:
    [row] = search(api, session_id=session_id, session_id_match="exact")["sessions"]
    return row


def test_cards_carry_aggregates_from_the_librarys_totals(make_api: AppFactory, seeded: SeededDatabase) -> None:
    with make_api(seeded.name, model_prices_str=PRICES) as api:
        ada = card(api, "support-ada-001")
        assert ada["agent_ids"] == ["billing", "support"]
        assert sorted(ada["models"]) == ["scripted-billing", "scripted-support"]
        assert ada["turns"] == 3 and ada["message_count"] == 10
        tokens = ada["tokens"]
        assert tokens["totalTokens"] == tokens["inputTokens"] + tokens["outputTokens"] > 0
        assert ada["latency_ms"] > 0
        assert ada["cost_usd"] is not None and ada["cost_usd"] > 0 and ada["cost_complete"] is True
        assert (ada["feedback_count"], ada["feedback_up"], ada["feedback_down"]) == (1, 1, 0)
        assert ada["preview"] == "Hi, my order 1001 arrived damaged."
        grace = card(api, "billing-grace-002")
        assert (grace["feedback_up"], grace["feedback_down"]) == (0, 1)
        assert grace["cost_complete"] is False, "the triage agent's model has no price"
    with make_api(seeded.name) as api:
        assert card(api, "support-ada-001")["cost_usd"] is None


def test_session_level_fields_written_by_real_turns(mongo_client: MongoClient[Any], seeded: SeededDatabase) -> None:
    doc = mongo_client[seeded.name]["sessions"].find_one({"_id": "support-ada-001"})
    assert doc is not None
    assert sorted(doc["agent_ids"]) == ["billing", "support"]
    assert sorted(doc["models"]) == ["scripted-billing", "scripted-support"]
    per_agent = sum(a["agent_data"]["totals"]["usage"]["totalTokens"] for a in doc["agents"].values())
    assert doc["totals"]["usage"]["totalTokens"] == per_agent > 0
    assert doc["totals"]["turns"] == 3


def test_sort_by_tokens_and_update(api: TestClient) -> None:
    by_tokens = search(api, sort_by="tokens")["sessions"]
    totals = [s["tokens"]["totalTokens"] for s in by_tokens]
    assert totals == sorted(totals, reverse=True) and len(by_tokens) == len(ALL)
    fewest = search(api, sort_by="tokens", sort_order="asc")["sessions"]
    assert [s["session_id"] for s in fewest][:3] == [s["session_id"] for s in reversed(by_tokens)][:3] or (
        [s["tokens"]["totalTokens"] for s in fewest] == sorted(totals)
    )
    updated = [s["updated_at"] for s in search(api, sort_by="updated")["sessions"]]
    assert updated == sorted(updated, reverse=True)


def test_feedback_agent_and_model_filters(api: TestClient) -> None:
    ups = {s["session_id"] for s in search(api, feedback="up")["sessions"]}
    assert ups == {s.session_id for s in ALL if any(f.get("rating") == "up" for f in s.feedback)}
    downs = {s["session_id"] for s in search(api, feedback="down")["sessions"]}
    assert downs == {"billing-grace-002"}
    triage = {s["session_id"] for s in search(api, agent_id="triage")["sessions"]}
    assert triage == {s.session_id for s in ALL if any(agent == "triage" for agent, _ in s.turns)}
    billing_model = search(api, model="scripted-billing")
    assert {s["session_id"] for s in billing_model["sessions"]} == {"support-ada-001", "billing-grace-002"}
    assert search(api, agent_id="nobody")["total"] == 0
    options = api.get("/api/v1/search-options", headers=GLOBAL).json()
    assert options["agent_ids"] == ["billing", "support", "triage"]
    assert options["models"] == ["scripted-billing", "scripted-support", "scripted-triage"]


def test_updated_range_and_bad_input(api: TestClient) -> None:
    newest = search(api, sort_by="updated", page_size=1)["sessions"][0]["updated_at"]
    assert search(api, updated_from=newest, sort_by="updated")["total"] >= 1
    assert search(api, updated_to="2000-01-01", sort_by="updated")["total"] == 0
    for params in (
        {"feedback": "sideways"},
        {"session_id": "x", "session_id_match": "regex"},
        {"cursor": "not-a-cursor"},
        {"sort_by": "metadata.unindexed"},
        {"updated_from": "2024-02-01", "updated_to": "2024-01-01"},
    ):
        response = api.get(SEARCH, headers=GLOBAL, params=params)
        assert response.status_code == 422, (params, response.text)
    first = search(api, page_size=5)
    other_sort = api.get(SEARCH, headers=GLOBAL, params={"cursor": first["next_cursor"], "sort_by": "updated"})
    assert other_sort.status_code == 422 and "another sort" in other_sort.json()["detail"]


def test_backfill_makes_older_sessions_visible_to_the_list_filters(
    make_api: AppFactory, mongo_client: MongoClient[Any], db_name: str
) -> None:
    from mongodb_session_manager import documents_indexes as dx

    collection = mongo_client[db_name]["sessions"]
    usage = {"inputTokens": 10, "outputTokens": 5, "totalTokens": 15}
    legacy = {  # what an earlier version wrote: no agent_ids, models or session-level totals
        "_id": "old-1",
        "session_id": "old-1",
        "metadata": {},
        "feedbacks": [],
        "agents": {
            "a": {"agent_data": {"model": "m-old", "totals": {"usage": usage, "turns": 2}}, "messages": []},
            "b": {"agent_data": {"totals": {"usage": usage, "turns": 1}}, "messages": []},
        },
    }
    collection.insert_one(legacy)
    with make_api(db_name) as api:
        assert search(api, agent_id="a")["total"] == 0
        result = collection.update_many(dx.backfill_list_fields_filter(), dx.backfill_list_fields_update())
        assert result.modified_count == 1
        assert (
            collection.update_many(dx.backfill_list_fields_filter(), dx.backfill_list_fields_update()).matched_count
            == 0
        )
        doc = collection.find_one({"_id": "old-1"})
        assert doc is not None and sorted(doc["agent_ids"]) == ["a", "b"] and doc["models"] == ["m-old"]
        assert doc["totals"] == {"usage": {"totalTokens": 30}, "turns": 3}
        assert [s["session_id"] for s in search(api, agent_id="b")["sessions"]] == ["old-1"]
        assert [s["session_id"] for s in search(api, model="m-old")["sessions"]] == ["old-1"]
        assert [s["session_id"] for s in search(api, sort_by="tokens")["sessions"]] == ["old-1"]
