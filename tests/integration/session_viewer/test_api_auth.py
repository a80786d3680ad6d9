"""Access control of the viewer API against the real mongod: global and per-session passwords,
wrong and missing passwords, the rate limit, CORS, and that no password is ever returned."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from mongodb_session_manager.embedded import free_port

from .conftest import BACKEND_PASSWORD, GLOBAL, AppFactory, SeededDatabase

SEARCH = "/api/v1/sessions/search"
FIELDS = "/api/v1/metadata-fields"


def detail(session_id: str) -> str:
    return f"/api/v1/sessions/{session_id}"


def test_health_is_public_and_reports_the_database(api: TestClient) -> None:
    response = api.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok" and response.json()["database"] == "reachable"
    assert response.headers["cache-control"] == "no-store"


def test_health_reports_an_unreachable_database_without_internals(make_api: AppFactory) -> None:
    port = free_port()
    with make_api(
        "nowhere",
        mongodb_connection_string=f"mongodb://127.0.0.1:{port}/?directConnection=true",
        server_selection_timeout_ms=300,
    ) as api:
        response = api.get("/health")
        assert response.status_code == 503
        assert response.json()["database"] == "unreachable"
        search = api.get(SEARCH, headers=GLOBAL)
        assert search.status_code == 503
        assert search.json() == {"detail": "the database is unavailable"}
        assert str(port) not in search.text and "127.0.0.1" not in search.text


def test_search_and_fields_need_the_backend_password(api: TestClient) -> None:
    for path in (SEARCH, FIELDS):
        assert api.get(path).status_code == 401
        assert api.get(path).json() == {"detail": "a password is required"}
        assert api.get(path, headers={"X-Backend-Password": "wrong"}).status_code == 401
        assert api.get(path, headers=GLOBAL).status_code == 200


def test_a_password_in_the_url_is_never_accepted(api: TestClient) -> None:
    for params in ({"password": BACKEND_PASSWORD}, {"X-Backend-Password": BACKEND_PASSWORD}):
        assert api.get(SEARCH, params=params).status_code == 401


def test_a_session_password_opens_that_session_only(api: TestClient, seeded: SeededDatabase) -> None:
    own = {"X-Session-Password": seeded.passwords["support-ada-001"]}
    assert api.get(detail("support-ada-001"), headers=own).status_code == 200
    assert api.get(detail("billing-grace-002"), headers=own).status_code == 401
    assert api.get(SEARCH, headers=own).status_code == 401
    assert api.get(FIELDS, headers=own).status_code == 401
    # A session password is not a backend password either.
    assert api.get(SEARCH, headers={"X-Backend-Password": seeded.passwords["support-ada-001"]}).status_code == 401


def test_the_backend_password_opens_every_session(api: TestClient, seeded: SeededDatabase) -> None:
    for session_id in list(seeded.passwords)[:3]:
        assert api.get(detail(session_id), headers=GLOBAL).json()["session_id"] == session_id
    assert api.get(detail("no-such-session"), headers=GLOBAL).status_code == 404


def test_a_missing_session_and_a_wrong_session_password_look_the_same(api: TestClient, seeded: SeededDatabase) -> None:
    password = {"X-Session-Password": seeded.passwords["support-ada-001"]}
    missing = api.get(detail("no-such-session"), headers=password)
    wrong = api.get(detail("support-ada-001"), headers={"X-Session-Password": "x" * 32})
    assert missing.status_code == wrong.status_code == 401
    assert missing.json() == wrong.json() == {"detail": "invalid password"}


def test_auth_check_tells_what_a_password_opens(api: TestClient, seeded: SeededDatabase) -> None:
    check = "/api/v1/auth/check"
    assert api.get(check, headers=GLOBAL).json() == {"scope": "global", "session_id": None}
    password = seeded.passwords["shipping-alan-003"]
    both = {"X-Backend-Password": password, "X-Session-Password": password}  # what the login form sends
    response = api.get(check, params={"session_id": "shipping-alan-003"}, headers=both)
    assert response.json() == {"scope": "session", "session_id": "shipping-alan-003"}
    assert api.get(check, headers={"X-Session-Password": password}).status_code == 401  # no session named
    assert api.get(check).status_code == 401


def test_failed_attempts_are_rate_limited_per_client(make_api: AppFactory, seeded: SeededDatabase) -> None:
    with make_api(seeded.name, auth_max_failures=3, auth_window_seconds=600) as attacker:
        for _ in range(5):
            assert attacker.get(SEARCH).status_code == 401  # no password at all: not an attempt
        for _ in range(3):
            assert attacker.get(SEARCH, headers={"X-Backend-Password": "guess"}).status_code == 401
        blocked = attacker.get(SEARCH, headers=GLOBAL)  # even the right password waits now
        assert blocked.status_code == 429
        assert 1 <= int(blocked.headers["retry-after"]) <= 600
        assert "try again later" in blocked.json()["detail"]
        session = {"X-Session-Password": seeded.passwords["support-ada-001"]}
        assert attacker.get(detail("support-ada-001"), headers=session).status_code == 429
        assert attacker.portal.call(attacker.app.state.viewer.store.lockout.failures, "203.0.113.7") == 3


def test_forwarded_headers_do_not_let_a_client_rotate_addresses(make_api: AppFactory, seeded: SeededDatabase) -> None:
    """No trusted proxy configured (the default): X-Forwarded-For is ignored, even from loopback."""
    with make_api(seeded.name, auth_max_failures=3, client=("127.0.0.1", 40000)) as api:
        for n in range(3):
            forged = {"X-Backend-Password": "guess", "X-Forwarded-For": f"198.51.100.{n}"}
            assert api.get(SEARCH, headers=forged).status_code == 401
        fresh = {"X-Backend-Password": "guess", "X-Forwarded-For": "198.51.100.99"}
        assert api.get(SEARCH, headers=fresh).status_code == 429


def test_behind_a_trusted_proxy_one_client_cannot_lock_out_the_others(
    make_api: AppFactory, seeded: SeededDatabase
) -> None:
    """The proxy (the TestClient's peer address) is configured; each real client has its own count."""
    with make_api(seeded.name, auth_max_failures=3, trusted_proxies_str="203.0.113.0/24") as proxy:
        attacker = "198.51.100.66"
        for n in range(3):
            # The attacker also writes its own X-Forwarded-For; the proxy appends the real address.
            headers = {"X-Backend-Password": "guess", "X-Forwarded-For": f"10.0.0.{n}, {attacker}"}
            assert proxy.get(SEARCH, headers=headers).status_code == 401
        assert proxy.get(SEARCH, headers={**GLOBAL, "X-Forwarded-For": attacker}).status_code == 429
        colleague = {**GLOBAL, "X-Forwarded-For": "198.51.100.7"}
        assert proxy.get(SEARCH, headers=colleague).status_code == 200
        assert proxy.get("/api/v1/auth/check", headers=colleague).json() == {"scope": "global", "session_id": None}


def test_a_guesser_on_a_shared_address_cannot_lock_out_reviewers_who_logged_in_before(
    make_api: AppFactory, seeded: SeededDatabase
) -> None:
    """Everyone here shares one address (an office NAT, a proxy that is not ours)."""
    with make_api(seeded.name, auth_max_failures=3) as api:
        login = api.get("/api/v1/auth/check", headers=GLOBAL)
        reviewer = {**GLOBAL, "X-Viewer-Device": login.headers["x-viewer-device"]}
        assert api.get(SEARCH, headers=reviewer).headers.get("x-viewer-device") is None  # kept, not renewed
        for _ in range(3):
            assert api.get(SEARCH, headers={"X-Backend-Password": "guess"}).status_code == 401
        assert api.get(SEARCH, headers=GLOBAL).status_code == 429  # no token: the address is locked
        assert api.get(SEARCH, headers=reviewer).status_code == 200  # the reviewer keeps working
        forged = {**GLOBAL, "X-Viewer-Device": "0" * 24 + "." + "0" * 32}
        assert api.get(SEARCH, headers=forged).status_code == 429  # a made-up token is no token


def test_a_device_that_guesses_locks_itself_and_its_address(make_api: AppFactory, seeded: SeededDatabase) -> None:
    """A token holder (say, with one session's password) cannot guess on, nor fetch fresh tokens."""
    with make_api(seeded.name, auth_max_failures=3) as api:
        first = api.get("/api/v1/auth/check", headers=GLOBAL).headers["x-viewer-device"]
        second = api.get("/api/v1/auth/check", headers=GLOBAL).headers["x-viewer-device"]
        for _ in range(3):
            guess = {"X-Backend-Password": "guess", "X-Viewer-Device": first}
            assert api.get(SEARCH, headers=guess).status_code == 401
        assert api.get(SEARCH, headers={**GLOBAL, "X-Viewer-Device": first}).status_code == 429
        assert api.get("/api/v1/auth/check", headers=GLOBAL).status_code == 429  # no new token for this address
        assert api.get(SEARCH, headers={**GLOBAL, "X-Viewer-Device": second}).status_code == 200
    with make_api(seeded.name, backend_password="another long passphrase") as other:
        stale = {"X-Backend-Password": "another long passphrase", "X-Viewer-Device": first}
        assert other.get(SEARCH, headers=stale).headers.get("x-viewer-device")  # other password: a new token


def test_the_lockout_holds_across_worker_processes(make_api: AppFactory, seeded: SeededDatabase) -> None:
    """Two apps (as two uvicorn workers or instances) sharing the database share one count."""
    shared = {"auth_max_failures": 4, "lockout_collection_name": f"lockout_shared_{seeded.name}"}
    with make_api(seeded.name, **shared) as first, make_api(seeded.name, **shared) as second:
        for api in (first, second, first, second):
            assert api.get(SEARCH, headers={"X-Backend-Password": "guess"}).status_code == 401
        assert first.get(SEARCH, headers=GLOBAL).status_code == 429
        assert second.get(SEARCH, headers=GLOBAL).status_code == 429


def test_session_password_guesses_count_too(make_api: AppFactory, seeded: SeededDatabase) -> None:
    with make_api(seeded.name, auth_max_failures=2) as api:
        for _ in range(2):
            assert api.get(detail("support-ada-001"), headers={"X-Session-Password": "guess"}).status_code == 401
        right = {"X-Session-Password": seeded.passwords["support-ada-001"]}
        assert api.get(detail("support-ada-001"), headers=right).status_code == 429


def test_no_response_ever_contains_a_password(api: TestClient, seeded: SeededDatabase) -> None:
    bodies: list[str] = [api.get("/health").text, api.get(FIELDS, headers=GLOBAL).text]
    bodies.append(api.get(SEARCH, headers=GLOBAL, params={"page_size": 100}).text)
    for session_id, password in seeded.passwords.items():
        bodies.append(api.get(detail(session_id), headers=GLOBAL).text)
        bodies.append(api.get(detail(session_id), headers={"X-Session-Password": password}).text)
    everything = "\n".join(bodies)
    assert "session_viewer_password" not in everything
    assert BACKEND_PASSWORD not in everything
    for password in seeded.passwords.values():
        assert password not in everything


def test_cors_only_for_allowed_origins(api: TestClient) -> None:
    def preflight(origin: str) -> Any:
        return api.options(
            SEARCH,
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "x-backend-password",
            },
        )

    allowed = preflight("http://localhost:8883")
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "http://localhost:8883"
    assert "x-backend-password" in allowed.headers["access-control-allow-headers"].lower()
    denied = preflight("http://evil.example")
    assert denied.status_code == 400
    assert "access-control-allow-origin" not in denied.headers
    simple = api.get(SEARCH, headers={**GLOBAL, "Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in simple.headers


def test_security_headers_on_every_response(api: TestClient) -> None:
    response = api.get(SEARCH, headers=GLOBAL)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
