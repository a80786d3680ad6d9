"""Hardening of the viewer API against the real mongod: nothing secret in any log at DEBUG,
``maxTimeMS`` on every command, a clear 4xx for every malformed input, a session named ``search``."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pymongo import MongoClient, monitoring

from session_viewer.backend import detail_queries
from session_viewer.backend import store as store_module

from .conftest import BACKEND_PASSWORD, GLOBAL, AppFactory, SeededDatabase
from .test_api_detail import T0, msg, raw_session

SEARCH = "/api/v1/sessions/search"
SECRET_TEXT = "my card number is 4111 1111 1111 1111"


class CommandLog(monitoring.CommandListener):
    """Every command the app sends, as the server receives it."""

    def __init__(self) -> None:
        self.commands: list[tuple[str, dict[str, Any]]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.commands.append((event.command_name, dict(event.command)))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.fixture
def command_log(monkeypatch: pytest.MonkeyPatch) -> CommandLog:
    log = CommandLog()
    original = store_module.make_client
    monkeypatch.setattr(store_module, "make_client", lambda settings: original(settings, event_listeners=[log]))
    monkeypatch.setattr("session_viewer.backend.main.make_client", store_module.make_client)
    return log


def exercise_everything(api: TestClient, seeded: SeededDatabase) -> None:
    """One of each request kind, including failed logins (lockout reads and writes)."""
    session_id = "support-ada-001"
    session = {"X-Session-Password": seeded.passwords[session_id]}
    assert api.get("/health").status_code == 200
    assert api.get("/api/v1/metadata-fields", headers=GLOBAL).status_code == 200
    assert (
        api.get(SEARCH, headers=GLOBAL, params={"filters": json.dumps({"metadata.status": "open"})}).status_code == 200
    )
    assert api.get(SEARCH, headers=GLOBAL).status_code == 200
    assert api.get(f"/api/v1/session/{session_id}", headers=GLOBAL).status_code == 200
    assert api.get(f"/api/v1/session/{session_id}", headers=session).status_code == 200
    assert api.get(f"/api/v1/session-export/{session_id}", headers=GLOBAL).status_code == 200
    assert api.get(SEARCH, headers={"X-Backend-Password": "wrong guess"}).status_code == 401


def test_every_command_carries_max_time_ms(
    make_api: AppFactory, seeded: SeededDatabase, command_log: CommandLog
) -> None:
    with make_api(seeded.name, query_max_time_ms=4321) as api:
        exercise_everything(api, seeded)
    sent = [(name, command) for name, command in command_log.commands if name not in ("endSessions",)]
    names = {name for name, _ in sent}
    assert {"aggregate", "find", "insert", "listIndexes", "ping"} <= names
    for name, command in sent:
        if name in ("hello", "isMaster", "ping", "createIndexes", "endSessions"):
            continue  # handshakes and admin commands; ping has its own 2.5 s wait in the app
        assert 0 < command.get("maxTimeMS", 0) <= 4321, f"{name} without maxTimeMS: {sorted(command)}"


def test_a_query_over_the_limit_is_stopped_by_the_server_and_answered_504(
    make_api: AppFactory, mongo_client: MongoClient[Any], db_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The timeline query is made slow on the server (a JavaScript sleep per document): maxTimeMS stops it."""
    mongo_client[db_name]["sessions"].insert_one(
        raw_session("slow", agents={"a": {"agent_data": {"created_at": T0}, "messages": [msg(0, "user", [], T0)]}})
    )
    original = detail_queries.timeline_page_pipeline
    sleep = {"$function": {"body": "function() { sleep(3000); return true; }", "args": [], "lang": "js"}}
    slow_stage = {"$match": {"$expr": sleep}}
    monkeypatch.setattr(detail_queries, "timeline_page_pipeline", lambda *args: [slow_stage, *original(*args)])
    with make_api(db_name, query_max_time_ms=400) as api:
        response = api.get("/api/v1/session/slow", headers=GLOBAL)
    assert response.status_code == 504
    assert response.json() == {"detail": "the query took too long (QUERY_MAX_TIME_MS)"}


def test_no_password_or_transcript_is_logged_even_at_debug(
    make_api: AppFactory, seeded: SeededDatabase, caplog: pytest.LogCaptureFixture, mongo_client: MongoClient[Any]
) -> None:
    mongo_client[seeded.name]["sessions"].update_one(
        {"_id": "support-ada-001"}, {"$set": {"metadata.secret_note": SECRET_TEXT}}
    )
    try:
        caplog.set_level(logging.DEBUG)  # the root logger and so pymongo.command, uvicorn, httpx, ...
        with make_api(seeded.name, log_level="DEBUG") as api:
            exercise_everything(api, seeded)
            api.post("/api/v1/session-notes/support-ada-001", headers=GLOBAL, json={"comment": SECRET_TEXT})
    finally:
        mongo_client[seeded.name]["sessions"].update_one(
            {"_id": "support-ada-001"},
            {"$unset": {"metadata.secret_note": ""}, "$pull": {"feedbacks": {"source": "reviewer"}}},
        )
    logged = "\n".join(f"{r.name} {r.getMessage()} {r.args!r}" for r in caplog.records)
    assert any(r.levelno == logging.DEBUG for r in caplog.records)  # DEBUG really was on
    assert BACKEND_PASSWORD not in logged
    for password in seeded.passwords.values():
        assert password not in logged
    assert SECRET_TEXT not in logged and "arrived damaged" not in logged  # no transcript, no metadata
    assert "session_viewer_password" not in logged
    assert not [r for r in caplog.records if r.name == "pymongo.command"]


# ---- malformed input ------------------------------------------------------------------------------


def nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


@pytest.mark.parametrize(
    "params",
    [
        {"filters": nested(2000)},
        {"filters": "[" * 5000 + "]" * 5000},
        {"filters": json.dumps({"metadata.score": 2**70})},
        {"filters": json.dumps([{"field": "metadata.score", "op": "eq", "value": -(2**64)}])},
        {"filters": '{"metadata.status": "\\ud800"}'},
        {"filters": '[{"field": "metadata.status", "op": "contains", "value": "x\\udfff"}]'},
        {"created_from": "0001-01-01T00:00:00+05:00"},
        {"created_to": "9999-12-31"},
        {"created_to": "9999-12-31T23:59:59.999999-01:00"},
        {"created_from": "not a date"},
    ],
)
def test_malformed_search_input_is_a_clear_4xx(api: TestClient, params: dict[str, str]) -> None:
    response = api.get(SEARCH, headers=GLOBAL, params=params)
    assert 400 <= response.status_code < 500, response.text[:300]
    assert "Traceback" not in response.text and len(response.text) < 2000


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/v1/session/support-ada-001", {"timeline_offset": str(2**70)}),
        ("/api/v1/session/support-ada-001", {"timeline_offset": "-1"}),
        ("/api/v1/session/support-ada-001", {"timeline_limit": "0"}),
        ("/api/v1/session/support-ada-001", {"timeline_limit": "x"}),
        ("/api/v1/session/%ED%A0%80", {}),  # a lone surrogate, percent-encoded
        ("/api/v1/session/%00bad", {}),
        ("/api/v1/session/" + "x" * 600, {}),
    ],
)
def test_malformed_detail_input_is_a_clear_4xx(api: TestClient, path: str, params: dict[str, str]) -> None:
    response = api.get(path, headers=GLOBAL, params=params)
    assert 400 <= response.status_code < 500, response.text[:300]
    assert "Traceback" not in response.text


@pytest.mark.parametrize(
    "body",
    [
        '{"comment": "x\\ud800"}',
        '{"comment": ' + '{"a":' * 5000 + "1" + "}" * 5000 + "}",
        '{"comment": "ok", "rating": "sideways"}',
        '{"comment": "ok", "extra": 1}',
        '{"comment": ""}',
        '{"comment": "   "}',
        "not json",
        '{"comment": ' + str(2**70) + "}",
    ],
)
def test_malformed_notes_are_a_clear_4xx(api: TestClient, body: str) -> None:
    headers = {**GLOBAL, "Content-Type": "application/json"}
    response = api.post(
        "/api/v1/session-notes/support-ada-001", headers=headers, content=body.encode("utf-8", "surrogatepass")
    )
    assert 400 <= response.status_code < 500, response.text[:300]


@pytest.mark.parametrize(
    "url", ["/api/v1/auth/check?session_id=%ED%B3%BF", "/api/v1/sessions/search?session_id=%ED%A0%80&page=1"]
)
def test_surrogates_in_a_query_string_never_reach_the_database_as_such(api: TestClient, url: str) -> None:
    """The server decodes them as U+FFFD (replacement), so they are ordinary text: answered, never a 500."""
    assert api.get(url, headers=GLOBAL).status_code in (200, 422)


def test_a_password_header_that_is_not_utf8_is_refused_not_crashed(api: TestClient) -> None:
    response = api.get(SEARCH, headers={"X-Backend-Password": b"\xed\xa0\x80\xff"})
    assert response.status_code == 401


# ---- routes ---------------------------------------------------------------------------------------


def test_a_session_named_search_opens(make_api: AppFactory, mongo_client: MongoClient[Any], db_name: str) -> None:
    mongo_client[db_name]["sessions"].insert_many([raw_session("search"), raw_session("export"), raw_session("a/b")])
    with make_api(db_name) as api:
        for session_id in ("search", "export", "a/b"):
            response = api.get(f"/api/v1/session/{session_id}", headers=GLOBAL)
            assert response.status_code == 200 and response.json()["session_id"] == session_id
            exported = api.get(f"/api/v1/session-export/{session_id}", headers=GLOBAL)
            assert exported.json()["session"]["session_id"] == session_id
        assert api.get("/api/v1/sessions/search", headers=GLOBAL).json()["sessions"]  # search still searches


def test_cors_preflight_allows_posting_notes_from_an_allowed_origin_only(api: TestClient) -> None:
    def preflight(origin: str) -> Any:
        return api.options(
            "/api/v1/session-notes/x",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "x-backend-password,content-type",
            },
        )

    assert preflight("http://localhost:8883").status_code == 200
    assert "access-control-allow-origin" not in preflight("http://evil.example").headers
