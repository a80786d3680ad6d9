"""A viewer that finds no sessions says which database and collection it reads and how to change them.

A new user who points their code at one database and the viewer at another must not be left with a
bare "0 found": the empty list names the collection and the settings that choose it.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from session_viewer.backend.config import Settings
from session_viewer.backend.main import create_app

from .conftest import serve_asgi

pytestmark = pytest.mark.e2e

PASSWORD = "empty viewer password"


def test_an_empty_collection_names_the_database_and_collection_and_how_to_change_them(
    chromium_browser: Any, mongo_uri: str
) -> None:
    from playwright.sync_api import expect

    database = f"e2e_empty_{uuid.uuid4().hex[:8]}"
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        mongodb_connection_string=mongo_uri,
        database_name=database,
        collection_name="sessions",
        backend_password=PASSWORD,
        serve_frontend=True,
        min_pool_size=0,
    )
    with serve_asgi(create_app(settings)) as url:
        context = chromium_browser.new_context()
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(url)
        page.fill("#login-password", PASSWORD)
        page.click("#login-submit")
        expect(page.locator("#login")).to_be_hidden()
        expect(page.locator("#results-count")).to_have_text("0 found")
        hint = page.locator("#empty-source-hint")
        expect(hint).to_contain_text(f"This viewer reads {database}.sessions")
        expect(hint).to_contain_text("DATABASE_NAME and COLLECTION_NAME")
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def test_the_viewer_defaults_to_the_database_the_local_tools_write() -> None:
    from mongodb_session_manager import defaults
    from mongodb_session_manager.cli import DEFAULT_COLLECTION, DEFAULT_DATABASE

    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (settings.database_name, settings.collection_name) == ("chat", "sessions")
    assert (DEFAULT_DATABASE, DEFAULT_COLLECTION) == (defaults.DATABASE_NAME, defaults.COLLECTION_NAME)
