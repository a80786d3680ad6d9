"""Hostile input against the real mongod: operator injection in filter keys and values, regex
metacharacters, absurd paging, malformed dates, and stored script payloads."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pymongo import MongoClient

from .conftest import GLOBAL, AppFactory, SeededDatabase
from .seed import XSS_IMG, XSS_SCRIPT, hostile_session, seed

SEARCH = "/api/v1/sessions/search"


def raw_search(api: TestClient, **params: Any) -> Any:
    return api.get(SEARCH, headers=GLOBAL, params=params)


@pytest.mark.parametrize(
    "filters",
    [
        {"$where": "sleep(1000)"},
        {"$or": [{"metadata.status": "open"}]},
        {"metadata.$ne": "x"},
        {"session_viewer_password": {"$exists": True}},
        {"session_viewer_password": "x"},
        {"metadata.session_viewer_password": "x"},
        {"_id": "support-ada-001"},
        {"agents.support.messages.message.content.text": "damaged"},
        {"metadata.preferred_contact": "email"},  # real, but not indexed
        {"metadata.status": {"$ne": None}},
        {"metadata.status": {"$gt": ""}},
        {"metadata.status": {"$regex": ".*"}},
        {"metadata.status": ["open", "closed"]},
        [{"field": "metadata.status", "op": "$ne", "value": "x"}],
        [{"field": "metadata.status", "op": "eq", "value": {"$exists": True}}],
    ],
)
def test_operator_injection_is_refused_with_422(api: TestClient, filters: Any) -> None:
    response = raw_search(api, filters=json.dumps(filters))
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert isinstance(detail, str) and len(detail) < 200
    assert "Traceback" not in response.text and "pymongo" not in response.text.lower()


def test_operator_looking_strings_are_plain_values(api: TestClient) -> None:
    for value in ("$ne", "{'$ne': null}", "open' || '1'=='1"):
        body = raw_search(api, filters=json.dumps({"metadata.status": value})).json()
        assert body["total"] == 0


def test_regex_metacharacters_match_literally(
    api: TestClient, make_api: AppFactory, mongo_client: MongoClient[Any], db_name: str
) -> None:
    for text in (".*", "^", "(", "[", "\\", "a+)+$", "case-00[0-9]", "|"):
        response = raw_search(api, session_id=text)
        assert response.status_code == 200, text
        assert response.json()["total"] == 0, text
    contains = json.dumps([{"field": "metadata.customer_name", "op": "contains", "value": ".*"}])
    assert raw_search(api, filters=contains).json()["total"] == 0

    mongo_client[db_name]["sessions"].insert_many(
        [
            {"_id": sid, "session_id": sid, "metadata": {}}
            for sid in ("weird-(a+)+$", "weird-aaaa", "star-*-x", "stars-xx")
        ]
    )
    with make_api(db_name) as other:
        for text, mode in (("(a+)+$", "contains"), ("weird-(a+", "prefix")):
            found = raw_search(other, session_id=text, session_id_match=mode).json()["sessions"]
            assert [s["session_id"] for s in found] == ["weird-(a+)+$"], mode
        found = raw_search(other, session_id="-*-", session_id_match="contains").json()["sessions"]
        assert [s["session_id"] for s in found] == ["star-*-x"]
        assert raw_search(other, session_id="star-*").json()["sessions"][0]["session_id"] == "star-*-x"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"created_from": "yesterday"}, "created_from must be an ISO 8601 date"),
        ({"created_to": "2024-02-30"}, "created_to must be an ISO 8601 date"),
        ({"created_from": "2024-05-02", "created_to": "2024-05-01"}, "created_from must be before created_to"),
        ({"page": "0"}, "page must be between"),
        ({"page": str(10**15)}, "page must be between"),
        ({"sort_by": "session_viewer_password"}, "cannot sort"),
        ({"sort_by": "$natural"}, "cannot sort"),
        ({"sort_order": "sideways"}, "sort_order"),
        ({"filters": "{nope"}, "filters must be valid JSON"),
        ({"session_id": "a\x00b"}, "NUL"),
        ({"session_id": "x" * 201}, "longer than 200"),
    ],
)
def test_bad_parameters_get_a_clear_422(api: TestClient, params: dict[str, str], message: str) -> None:
    response = raw_search(api, **params)
    assert response.status_code == 422
    assert message in response.json()["detail"]


def test_type_errors_do_not_echo_the_input(api: TestClient) -> None:
    response = raw_search(api, page="<script>alert(1)</script>")
    assert response.status_code == 422
    assert response.json() == {"detail": [{"loc": ["query", "page"], "msg": response.json()["detail"][0]["msg"]}]}
    assert "<script>" not in response.text


def test_huge_page_size_is_clamped(api: TestClient, seeded: SeededDatabase) -> None:
    body = raw_search(api, page_size=str(10**30)).json()
    assert body["page_size"] == 100
    assert len(body["sessions"]) == min(100, seeded.total)


def test_stored_script_is_returned_as_inert_json(
    make_api: AppFactory, mongo_client: MongoClient[Any], db_name: str
) -> None:
    [session_id] = seed(mongo_client, db_name, [hostile_session()])
    with make_api(db_name) as api:
        found = raw_search(api, session_id="xss-")
        assert found.json()["sessions"][0]["session_id"] == session_id
        response = api.get(f"/api/v1/sessions/{session_id}", headers=GLOBAL)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-content-type-options"] == "nosniff"
    body = response.json()
    assert body["metadata"]["customer_name"] == XSS_SCRIPT  # data, untouched; the frontend shows it as text
    assert body["feedbacks"][0]["comment"] == f"{XSS_IMG} {XSS_SCRIPT}"
    assert body["agents"][0]["system_prompt"] == f"Prompt with {XSS_IMG}"
    assert XSS_SCRIPT in body["timeline"][0]["content"][0]["text"]
