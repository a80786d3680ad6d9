"""The list side of the viewer in headless Chromium: cards, the sort control, the filters, the pager.

Sessions come from real agent loops (``tests/integration/session_viewer/seed.py``); what each card
and each control must show is read from the same API the page calls, so the test checks the
rendering and the wiring, and the API tests check the numbers.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from pymongo import MongoClient

from session_viewer.backend.main import create_app
from tests.integration.session_viewer.seed import bulk_sessions, rich_sessions, seed

from .conftest import serve_asgi
from .test_session_viewer import PASSWORD, VIEWPORT, log_in, settings_for

pytestmark = pytest.mark.e2e

PRICES = json.dumps(
    {"scripted-support": {"input": 3.0, "output": 15.0}, "scripted-billing": {"input": 1.0, "output": 5.0}}
)


@dataclass
class ListViewer:
    url: str
    sessions: list[Any]

    def api(self, **params: Any) -> dict[str, Any]:
        query = "&".join(f"{k}={urllib.request.quote(str(v))}" for k, v in params.items())
        request = urllib.request.Request(
            f"{self.url}/api/v1/sessions/search?{query}", headers={"X-Backend-Password": PASSWORD}
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # loopback only
            return json.loads(response.read())


@pytest.fixture(scope="module")
def list_viewer(mongo_uri: str, mongo_client: MongoClient[Any]) -> Iterator[ListViewer]:
    database = f"e2e_list_{uuid.uuid4().hex[:10]}"
    sessions = rich_sessions() + bulk_sessions(22)
    seed(mongo_client, database, sessions)
    try:
        with serve_asgi(create_app(settings_for(mongo_uri, database, model_prices_str=PRICES))) as url:
            yield ListViewer(url, sessions)
    finally:
        mongo_client.drop_database(database)


@pytest.fixture
def page(chromium_browser: Any) -> Iterator[Any]:
    context = chromium_browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def card_ids(page: Any) -> list[str]:
    return page.locator(".session-card").evaluate_all("cards => cards.map(c => c.dataset.sessionId)")


def search_from_form(page: Any) -> None:
    page.click("#search-button")


def test_cards_show_aggregates_preview_and_metadata_in_order(page: Any, list_viewer: ListViewer) -> None:
    from playwright.sync_api import expect

    page.goto(list_viewer.url)
    log_in(page, PASSWORD)
    expect(page.locator(".session-card")).to_have_count(20)
    page.fill("#filter-session-id", "support-ada")
    search_from_form(page)
    expect(page.locator("#results-count")).to_have_text("1 found")
    card = page.locator(".session-card[data-session-id='support-ada-001']")
    [row] = list_viewer.api(session_id="support-ada-001", session_id_match="exact")["sessions"]
    expect(card.locator(".card-preview")).to_have_text("Hi, my order 1001 arrived damaged.")
    expect(card.locator("[data-stat='turns']")).to_have_text(f"{row['turns']} turns")
    expect(card.locator("[data-stat='messages']")).to_have_text(f"{row['message_count']} messages")
    expect(card.locator("[data-stat='tokens']")).to_contain_text("tokens")
    expect(card.locator("[data-stat='latency']")).to_contain_text("ms")
    expect(card.locator("[data-stat='cost']")).to_contain_text("$")
    expect(card.locator("[data-stat='feedback-up']")).to_have_text("▲ 1")
    expect(card.locator("[data-stat='feedback-down']")).to_have_count(0)
    expect(card.locator(".card-agents")).to_contain_text("billing, support")
    keys = card.locator(".meta-chip").evaluate_all("chips => chips.map(c => c.dataset.key)")
    # indexed fields first (what can be filtered), then the rest as stored; more than four shown
    assert len(keys) > 4 and "preferred_contact" in keys
    assert keys.index("status") < keys.index("preferred_contact") and keys.index("priority") < keys.index(
        "preferred_contact"
    )

    page.fill("#filter-session-id", "billing-grace")
    search_from_form(page)
    grace = page.locator(".session-card[data-session-id='billing-grace-002']")
    expect(grace.locator("[data-stat='feedback-down']")).to_have_text("▼ 1")
    expect(grace.locator("[data-stat='cost']")).to_contain_text("≥ $")  # the triage model has no price


def test_sort_control_orders_by_tokens_and_update(page: Any, list_viewer: ListViewer) -> None:
    from playwright.sync_api import expect

    page.goto(list_viewer.url)
    log_in(page, PASSWORD)
    expect(page.locator(".session-card")).to_have_count(20)
    created = card_ids(page)
    assert created == [s["session_id"] for s in list_viewer.api(page_size=20)["sessions"]]

    page.select_option("#sort-by", "tokens")
    want = [s["session_id"] for s in list_viewer.api(page_size=20, sort_by="tokens")["sessions"]]
    expect(page.locator(".session-card").first).to_have_attribute("data-session-id", want[0])
    assert card_ids(page) == want and want != created

    page.select_option("#sort-by", "updated")
    page.select_option("#sort-order", "asc")
    want = [s["session_id"] for s in list_viewer.api(page_size=20, sort_by="updated", sort_order="asc")["sessions"]]
    expect(page.locator(".session-card").first).to_have_attribute("data-session-id", want[0])
    assert card_ids(page) == want


def test_pager_follows_cursors_forwards_and_back(page: Any, list_viewer: ListViewer) -> None:
    from playwright.sync_api import expect

    page.goto(list_viewer.url)
    log_in(page, PASSWORD)
    expect(page.locator(".session-card")).to_have_count(20)  # logged in and listed before changing anything
    page.select_option("#page-size", "10")
    expect(page.locator(".session-card")).to_have_count(10)
    expect(page.locator("#page-info")).to_have_text("Page 1 of 3")
    first = card_ids(page)
    page.click("#next-page")
    expect(page.locator("#page-info")).to_have_text("Page 2 of 3")
    second = card_ids(page)
    page.click("#next-page")
    expect(page.locator("#page-info")).to_have_text("Page 3 of 3")
    expect(page.locator("#next-page")).to_be_disabled()
    third = card_ids(page)
    assert len(set(first + second + third)) == len(list_viewer.sessions)
    page.click("#prev-page")
    expect(page.locator("#page-info")).to_have_text("Page 2 of 3")
    assert card_ids(page) == second
    expect(page.locator("#results-count")).to_have_text(f"{len(list_viewer.sessions)} found")
    page.click("#prev-page")
    expect(page.locator("#prev-page")).to_be_disabled()
    assert card_ids(page) == first


def test_review_filters_feedback_agent_model_and_updated_range(page: Any, list_viewer: ListViewer) -> None:
    from playwright.sync_api import expect

    page.goto(list_viewer.url)
    log_in(page, PASSWORD)
    expect(page.locator(".session-card")).to_have_count(20)

    page.select_option("#filter-feedback", "down")
    expect(page.locator("#results-count")).to_have_text("1 found")
    assert card_ids(page) == ["billing-grace-002"]
    page.select_option("#filter-feedback", "up")
    ups = {s.session_id for s in list_viewer.sessions if any(f.get("rating") == "up" for f in s.feedback)}
    expect(page.locator("#results-count")).to_have_text(f"{len(ups)} found")
    assert set(card_ids(page)) == ups
    page.select_option("#filter-feedback", "")

    assert page.locator("#filter-agent option").all_inner_texts() == ["Any agent", "billing", "support", "triage"]
    page.select_option("#filter-agent", "triage")
    expect(page.locator("#results-count")).to_have_text("1 found")
    assert card_ids(page) == ["billing-grace-002"]
    page.select_option("#filter-agent", "")
    page.select_option("#filter-model", "scripted-billing")
    expect(page.locator("#results-count")).to_have_text("2 found")
    assert set(card_ids(page)) == {"support-ada-001", "billing-grace-002"}
    page.select_option("#filter-model", "")
    expect(page.locator("#filter-application-wrapper")).to_be_hidden()  # no session has one

    page.select_option("#filter-date-field", "updated")
    page.fill("#filter-date-from", "2999-01-01")
    search_from_form(page)
    expect(page.locator("#results-count")).to_have_text("0 found")
    expect(page.locator("#slow-note")).to_be_visible()  # an updated range while sorted by creation
    page.select_option("#sort-by", "updated")
    expect(page.locator("#slow-note")).to_be_hidden()
    page.click("#reset-button")
    expect(page.locator("#results-count")).to_have_text(f"{len(list_viewer.sessions)} found")

    page.select_option("#filter-id-match", "contains")
    page.fill("#filter-session-id", "GRACE")
    search_from_form(page)
    expect(page.locator("#results-count")).to_have_text("1 found")
    expect(page.locator("#slow-note")).to_contain_text("contains")


def test_too_many_agents_for_a_dropdown_become_a_text_box(
    chromium_browser: Any, mongo_uri: str, mongo_client: MongoClient[Any]
) -> None:
    from playwright.sync_api import expect

    from mongodb_session_manager import synthetic
    from mongodb_session_manager.indexes import ensure_indexes
    from session_viewer.backend.listing import MAX_OPTION_VALUES

    database = f"e2e_many_{uuid.uuid4().hex[:10]}"
    collection = mongo_client[database]["sessions"]
    ensure_indexes(collection)
    docs = [synthetic.session_document(n) for n in range(MAX_OPTION_VALUES + 1)]
    for n, doc in enumerate(docs):
        doc["agent_ids"] = [f"agent-{n}"]
    collection.insert_many(docs)
    context = chromium_browser.new_context(viewport=VIEWPORT)
    try:
        with serve_asgi(create_app(settings_for(mongo_uri, database))) as url:
            page = context.new_page()
            page.goto(url)
            log_in(page, PASSWORD)
            expect(page.locator(".session-card")).to_have_count(20)
            agent = page.locator("#filter-agent")
            expect(agent).to_have_attribute("type", "search")  # no 201-entry dropdown
            agent.fill("agent-7")
            page.click("#search-button")
            expect(page.locator("#results-count")).to_have_text("1 found")
            assert card_ids(page) == [synthetic.session_id(7)]
            expect(page.locator("#filter-model option")).to_have_count(1 + len(synthetic.MODELS))
    finally:
        context.close()
        mongo_client.drop_database(database)
