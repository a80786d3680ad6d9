"""``SERVE_FRONTEND``: the backend serves the frontend on its own origin, with a strict CSP."""

from __future__ import annotations

from fastapi.testclient import TestClient

from .conftest import GLOBAL, AppFactory, SeededDatabase


def test_frontend_is_served_with_same_origin_config(make_api: AppFactory, seeded: SeededDatabase) -> None:
    with make_api(seeded.name, serve_frontend=True) as api:
        page = api.get("/")
        assert page.status_code == 200
        assert "<title>Session Viewer</title>" in page.text
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        config = api.get("/config.js")
        assert config.headers["content-type"].startswith("text/javascript")
        assert 'apiBaseUrl: ""' in config.text
        for asset in ("/viewer.js", "/components.js", "/vendor/tailwind.css", "/vendor/purify.min.js"):
            assert api.get(asset).status_code == 200, asset
        assert api.get("/api/v1/sessions/search", headers=GLOBAL).json()["total"] == seeded.total
        assert api.get("/health").status_code == 200
        assert api.get("/../pyproject.toml").status_code == 404


def test_without_serve_frontend_only_the_api_answers(api: TestClient) -> None:
    assert api.get("/").status_code == 404
    assert api.get("/config.js").status_code == 404
    assert api.get("/docs").status_code == 404  # Swagger UI would load a CDN; the schema is still there
    assert api.get("/api/v1/openapi.json").status_code == 200
