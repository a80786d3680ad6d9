"""The Session Viewer frontend in headless Chromium against the real backend and mongod.

Sessions are written by real agent loops (ScriptedModel, calculator and metadata tools). The
backend serves the frontend on one origin (like ``make demo``); one test also runs the two-port
setup (``make dev`` + ``make run``) where the browser calls the API cross-origin.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from session_viewer.backend.config import Settings
from session_viewer.backend.main import create_app
from tests.integration.session_viewer.seed import (
    COLLECTION,
    XSS_IMG,
    XSS_SCRIPT,
    bulk_sessions,
    hostile_session,
    rich_sessions,
    seed,
)

from .conftest import serve_asgi, serve_directory

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "e2e viewer password"
BULK = 22
VIEWPORT = {"width": 1440, "height": 1000}


@dataclass
class Viewer:
    url: str
    database: str
    passwords: dict[str, str]
    sessions: list[Any]


def settings_for(mongo_uri: str, database: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "mongodb_connection_string": mongo_uri,
        "database_name": database,
        "collection_name": COLLECTION,
        "backend_password": PASSWORD,
        "serve_frontend": True,
        "enum_fields_str": "status,priority,channel",
        "min_pool_size": 0,
        "auth_max_failures": 20,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture(scope="module")
def viewer(mongo_uri: str, mongo_client: MongoClient[Any]) -> Iterator[Viewer]:
    database = f"e2e_{uuid.uuid4().hex[:12]}"
    sessions = rich_sessions() + bulk_sessions(BULK) + [hostile_session()]
    passwords = seed(mongo_client, database, sessions)
    try:
        with serve_asgi(create_app(settings_for(mongo_uri, database))) as url:
            yield Viewer(url, database, passwords, sessions)
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


def log_in(page: Any, password: str) -> None:
    from playwright.sync_api import expect

    expect(page.locator("#login")).to_be_visible()
    page.fill("#login-password", password)
    page.click("#login-submit")


def test_log_in_filter_page_and_open_a_session_with_timeline_and_metrics(page: Any, viewer: Viewer) -> None:
    from playwright.sync_api import expect

    page.goto(viewer.url)
    expect(page.locator("#health")).to_have_attribute("data-state", "ok")
    log_in(page, "not the password")
    expect(page.locator("#login-error")).to_have_text("Wrong password.")
    log_in(page, PASSWORD)
    expect(page.locator("#login")).to_be_hidden()

    total = len(viewer.sessions)
    expect(page.locator("#results-count")).to_have_text(f"{total} found")
    expect(page.locator("#page-info")).to_have_text("Page 1 of 2")
    expect(page.locator(".session-card")).to_have_count(20)
    page.click("#next-page")
    expect(page.locator("#page-info")).to_have_text("Page 2 of 2")
    expect(page.locator(".session-card")).to_have_count(total - 20)
    expect(page.locator("#prev-page")).to_be_enabled()
    expect(page.locator("#next-page")).to_be_disabled()

    # Two metadata filters (dropdowns for enum fields), ANDed; then remove one at runtime.
    page.select_option("#add-filter-field", "metadata.status")
    page.locator(".filter-row[data-field='metadata.status'] select").select_option(label="escalated")
    page.click("#search-button")
    escalated = [s.session_id for s in viewer.sessions if s.metadata.get("status") == "escalated"]
    expect(page.locator("#results-count")).to_have_text(f"{len(escalated)} found")
    expect(page.locator("#page-info")).to_have_text("Page 1 of 1")
    page.select_option("#add-filter-field", "metadata.priority")
    page.locator(".filter-row[data-field='metadata.priority'] select").select_option(label="high")
    page.click("#search-button")
    both = [
        s.session_id
        for s in viewer.sessions
        if s.metadata.get("status") == "escalated" and s.metadata.get("priority") == "high"
    ]
    expect(page.locator("#results-count")).to_have_text(f"{len(both)} found")
    assert sorted(page.locator(".session-card").evaluate_all("cards => cards.map(c => c.dataset.sessionId)")) == sorted(
        both
    )
    page.locator(".filter-row[data-field='metadata.priority'] .remove-filter").click()
    page.click("#search-button")
    expect(page.locator("#results-count")).to_have_text(f"{len(escalated)} found")

    page.click(".session-card[data-session-id='billing-grace-002']")
    expect(page.locator("#detail-session-id")).to_have_text("billing-grace-002")
    timeline = page.locator("#timeline > li")
    expect(timeline.first).to_contain_text("I was charged twice this month.")
    expect(page.locator("#timeline .agent-badge", has_text="triage").first).to_be_visible()
    expect(page.locator("#timeline .agent-badge", has_text="billing").first).to_be_visible()
    expect(page.locator("#timeline .tool-use[data-tool='calculator']")).to_contain_text("49.50 * 2 - 12.25")
    expect(page.locator("#timeline .tool-result")).to_contain_text("Result: 86.75")
    expect(timeline.last).to_have_attribute("data-type", "feedback")
    expect(timeline.last).to_contain_text("Still waiting for the refund.")
    expect(page.locator("#session-metadata dd[data-key='customer_name']")).to_have_text("Grace Hopper")
    expect(page.locator("#session-agents .agent-model").first).to_have_text("scripted-triage")

    # Metrics: per-message tokens and latency, the turn summary, session totals.
    expect(page.locator("#timeline .message-tokens").first).to_contain_text("total")
    expect(page.locator("#timeline .message-latency").first).to_have_text("Latency 42 ms")
    expect(page.locator("#timeline .turn-metrics")).to_have_count(2)
    total_tokens = page.locator("#session-totals [data-stat='total-tokens'] .stat-value").inner_text()
    assert int(total_tokens.replace(",", "")) > 0
    expect(page.locator("#session-totals [data-stat='turns'] .stat-value")).to_have_text("2")

    # The session link carries the id, never the password; reloading it reopens the session.
    assert "session=billing-grace-002" in page.url
    assert PASSWORD.split()[0] not in page.url
    shots = os.environ.get("MSM_SCREENSHOT_DIR")
    if shots:  # MSM_SCREENSHOT_DIR=docs/images refreshes the documentation's screenshot
        page.set_viewport_size({"width": 1440, "height": 1300})
        page.mouse.move(1, 1)  # no hover highlight in the picture
        page.screenshot(path=str(Path(shots) / "session-viewer-detail.png"))
    page.reload()
    expect(page.locator("#detail-session-id")).to_have_text("billing-grace-002")


def test_a_session_link_opens_with_that_sessions_own_password_only(page: Any, viewer: Viewer) -> None:
    from playwright.sync_api import expect

    page.goto(f"{viewer.url}/?session=shipping-alan-003")
    log_in(page, viewer.passwords["support-ada-001"])  # another session's password opens nothing
    expect(page.locator("#login-error")).to_have_text("Wrong password.")
    log_in(page, viewer.passwords["shipping-alan-003"])
    expect(page.locator("#detail-session-id")).to_have_text("shipping-alan-003")
    expect(page.locator("#scope-label")).to_have_text("Single-session access")
    expect(page.locator("#filter-panel")).to_be_hidden()
    expect(page.locator("#results-panel")).to_be_hidden()
    expect(page.locator("#timeline")).to_contain_text("Where is my parcel?")
    assert viewer.passwords["shipping-alan-003"] not in page.url


def test_stored_script_payloads_are_shown_as_text_and_never_run(chromium_browser: Any, viewer: Viewer) -> None:
    from playwright.sync_api import expect

    # bypass_csp: prove the rendering itself is safe, not merely that the CSP blocks inline script.
    context = chromium_browser.new_context(viewport=VIEWPORT, bypass_csp=True)
    try:
        page = context.new_page()
        page.goto(viewer.url)
        log_in(page, PASSWORD)
        page.fill("#filter-session-id", "xss-")
        page.click("#search-button")
        expect(page.locator("#results-count")).to_have_text("1 found")
        card = page.locator(".session-card").first
        expect(card.locator(".session-id")).to_have_text(f"xss-{XSS_IMG}")
        card.click()
        expect(page.locator("#detail-session-id")).to_have_text(f"xss-{XSS_IMG}")
        expect(page.locator("#session-metadata dd[data-key='customer_name']")).to_have_text(XSS_SCRIPT)
        expect(page.locator("#timeline .feedback-comment")).to_have_text(f"{XSS_IMG} {XSS_SCRIPT}")
        expect(page.locator("#session-agents .system-prompt")).to_have_text(f"Prompt with {XSS_IMG}")
        first_message = page.locator("#timeline .markdown").first
        expect(first_message).to_contain_text(f"Please show this: {XSS_SCRIPT} and {XSS_IMG}")  # shown, as text
        page.wait_for_load_state("load")
        assert page.evaluate("typeof window.__xss") == "undefined"
        detail = page.locator("#session-detail")
        assert detail.locator("script, img, iframe, [onerror]").count() == 0
        hrefs = detail.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href') || '')")
        assert not [h for h in hrefs if h.lower().startswith("javascript:")]
    finally:
        context.close()


def test_two_port_setup_calls_the_api_cross_origin(
    chromium_browser: Any, viewer: Viewer, mongo_uri: str, tmp_path: Path
) -> None:
    """``make run`` serves the folder on its own port; config.js points it at the backend."""
    from playwright.sync_api import expect

    frontend = tmp_path / "frontend"
    shutil.copytree(ROOT / "session_viewer" / "frontend", frontend)
    with serve_directory(frontend) as static_url:
        settings = settings_for(mongo_uri, viewer.database, serve_frontend=False, allowed_origins_str=static_url)
        with serve_asgi(create_app(settings)) as api_url:
            (frontend / "config.js").write_text(f'window.SESSION_VIEWER_CONFIG = {{apiBaseUrl: "{api_url}"}};\n')
            context = chromium_browser.new_context(viewport=VIEWPORT)
            try:
                page = context.new_page()
                page.goto(f"{static_url}/index.html")
                expect(page.locator("#health")).to_have_attribute("data-state", "ok")
                log_in(page, PASSWORD)
                expect(page.locator("#results-count")).to_have_text(f"{len(viewer.sessions)} found")
            finally:
                context.close()


# ---- review features ----------------------------------------------------------------------------------

TOKYO = "Asia/Tokyo"  # UTC+9 all year: the expected local time is plain arithmetic
LONG_TOKEN = "unbroken" * 400  # 3,200 characters without a space


def raw_message(n: int, role: str, content: list[dict[str, Any]], at: datetime) -> dict[str, Any]:
    return {"message_id": n, "message": {"role": role, "content": content}, "created_at": at, "updated_at": at}


def extra_sessions(mongo_client: MongoClient[Any], database: str) -> None:
    """A long session (paged timeline), one full of unbroken text, and one named "search"."""
    t0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    long_messages = [
        raw_message(
            n, "user" if n % 2 == 0 else "assistant", [{"text": f"Long chat line {n}"}], t0 + timedelta(seconds=n)
        )
        for n in range(130)
    ]
    wide_content = [
        {"text": f"Look: {LONG_TOKEN}"},
        {"toolUse": {"toolUseId": "t-wide", "name": "lookup", "input": {"blob": LONG_TOKEN}}},
    ]
    wide_messages = [
        raw_message(0, "assistant", wide_content, t0),
        raw_message(
            1,
            "user",
            [{"toolResult": {"toolUseId": "t-wide", "status": "success", "content": [{"text": LONG_TOKEN}]}}],
            t0 + timedelta(milliseconds=1500),
        ),
    ]

    def doc(session_id: str, messages: list[dict[str, Any]], metadata: dict[str, Any]) -> dict[str, Any]:
        agent = {"agent_data": {"agent_id": "support", "created_at": t0, "model": "m"}, "messages": messages}
        return {
            "_id": session_id, "session_id": session_id, "session_type": "AGENT", "created_at": t0, "updated_at": t0,
            "metadata": metadata, "feedbacks": [], "agents": {"support": agent}, "session_viewer_password": "P" * 32,
        }  # fmt: skip

    mongo_client[database][COLLECTION].insert_many(
        [
            doc("long-scroll", long_messages, {"status": "open"}),
            doc(f"wide-{'x' * 300}", wide_messages, {"status": "open", "note": LONG_TOKEN}),
            doc("search", [raw_message(0, "user", [{"text": "I am the session named search"}], t0)], {}),
        ]
    )


@pytest.fixture(scope="module")
def extra_viewer(mongo_uri: str, mongo_client: MongoClient[Any]) -> Iterator[Viewer]:
    database = f"e2e_extra_{uuid.uuid4().hex[:10]}"
    extra_sessions(mongo_client, database)
    try:
        with serve_asgi(create_app(settings_for(mongo_uri, database))) as url:
            yield Viewer(url, database, {}, [])
    finally:
        mongo_client.drop_database(database)


def test_tool_steps_time_zone_copy_links_and_export(chromium_browser: Any, viewer: Viewer, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    context = chromium_browser.new_context(viewport=VIEWPORT, timezone_id=TOKYO, accept_downloads=True)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=viewer.url)
    try:
        page = context.new_page()
        page.goto(f"{viewer.url}/?session=billing-grace-002")
        log_in(page, PASSWORD)
        expect(page.locator("#detail-session-id")).to_have_text("billing-grace-002")

        # A tool call and its result are one step, with the time between them; no separate result message.
        step = page.locator("#timeline .tool-step[data-tool='calculator']")
        expect(step).to_have_attribute("data-state", "done")
        expect(step.locator(".tool-result")).to_contain_text("Result: 86.75")
        expect(step.locator(".tool-duration")).to_have_text(re.compile(r"^took \d+(\.\d+)? (ms|s)$"))
        expect(page.locator("#timeline li[data-role='tool']")).to_have_count(0)

        # Times are in the browser's zone, and the zone is named.
        expect(page.locator("#timezone-label")).to_contain_text(TOKYO)
        first = page.locator("#timeline li.message").first
        stored = datetime.fromisoformat(first.get_attribute("data-created-at").replace("Z", "+00:00"))
        local = (stored + timedelta(hours=9)).strftime("%Y-%m-%d %H:%M:%S")
        expect(first.locator("header")).to_contain_text(f"{local} GMT+9")

        # Copy-link buttons: the session, and one message; a message link scrolls to that message.
        page.click(".copy-session-link")
        expect(page.locator(".copy-session-link")).to_have_attribute("data-copied", "yes")
        assert page.evaluate("navigator.clipboard.readText()") == f"{viewer.url}/?session=billing-grace-002"
        target = page.locator("#timeline li.message").nth(2)
        item_id = target.get_attribute("data-item-id")
        target.locator(".copy-message-link").click()
        message_url = page.evaluate("navigator.clipboard.readText()")
        assert (
            message_url.startswith(f"{viewer.url}/?session=billing-grace-002#message=") and PASSWORD not in message_url
        )
        other = context.new_page()
        other.goto(message_url)
        log_in(other, PASSWORD)
        expect(other.locator(f"#timeline li[data-item-id='{item_id}']")).to_have_class(re.compile("linked-item"))
        other.close()

        # Export as JSON: the same format as the API, with its schema version.
        with page.expect_download() as download:
            page.click("#export-session")
        saved = tmp_path / "export.json"
        download.value.save_as(saved)
        assert download.value.suggested_filename == "session-billing-grace-002.json"
        exported = json.loads(saved.read_text())
        assert exported["schema_version"] == 1 and exported["session"]["session_id"] == "billing-grace-002"
        assert "session_viewer_password" not in saved.read_text()
    finally:
        context.close()


def test_reviewer_notes_are_kept_apart_from_end_user_feedback(page: Any, viewer: Viewer, mongo_client: Any) -> None:
    from playwright.sync_api import expect

    page.goto(f"{viewer.url}/?session=shipping-alan-003")
    log_in(page, PASSWORD)
    expect(page.locator("#session-totals [data-stat='feedback'] .stat-value")).to_have_text("▲ 0 · ▼ 0")
    page.fill("#note-text", "The agent never gave a delivery date.")
    page.select_option("#note-rating", "down")
    page.click("#note-submit")
    expect(page.locator("#reviewer-notes .reviewer-note-entry")).to_contain_text("never gave a delivery date")
    expect(page.locator("#timeline li").last).to_have_attribute("data-source", "reviewer")
    page.reload()
    expect(page.locator("#reviewer-notes .reviewer-note-entry")).to_have_count(1)
    expect(page.locator("#session-totals [data-stat='feedback'] .stat-value")).to_have_text("▲ 0 · ▼ 0")
    stored = mongo_client[viewer.database][COLLECTION].find_one({"_id": "shipping-alan-003"})
    assert stored["feedbacks"][-1]["source"] == "reviewer" and stored["feedbacks"][-1]["rating"] == "down"
    shots = os.environ.get("MSM_SCREENSHOT_DIR")
    if shots:
        page.locator("#reviewer-notes").scroll_into_view_if_needed()
        page.screenshot(path=str(Path(shots) / "session-viewer-notes.png"))


def test_the_timeline_loads_more_as_the_reviewer_scrolls(page: Any, extra_viewer: Viewer) -> None:
    from playwright.sync_api import expect

    page.goto(f"{extra_viewer.url}/?session=long-scroll")
    log_in(page, PASSWORD)
    items = page.locator("#timeline > li")
    expect(page.locator("h3", has_text="Timeline (130)")).to_be_visible()
    expect(items).to_have_count(50)
    for expected in (100, 130):
        page.locator("#detail-panel").evaluate("panel => panel.scrollTo(0, panel.scrollHeight)")
        expect(items).to_have_count(expected)
    expect(page.locator("#timeline-more")).to_have_attribute("data-state", "done")
    texts = items.evaluate_all("lis => lis.map(li => li.querySelector('.markdown').textContent.trim())")
    assert texts == [f"Long chat line {n}" for n in range(130)]  # in order, no gaps, no repeats


def test_a_session_named_search_opens_in_the_browser(page: Any, extra_viewer: Viewer) -> None:
    from playwright.sync_api import expect

    page.goto(f"{extra_viewer.url}/?session=search")
    log_in(page, PASSWORD)
    expect(page.locator("#detail-session-id")).to_have_text("search")
    expect(page.locator("#timeline")).to_contain_text("I am the session named search")


def test_the_layout_works_at_800_px_and_long_text_wraps(chromium_browser: Any, extra_viewer: Viewer) -> None:
    from playwright.sync_api import expect

    context = chromium_browser.new_context(viewport={"width": 800, "height": 900})
    try:
        page = context.new_page()
        page.goto(extra_viewer.url)
        log_in(page, PASSWORD)
        page.locator(".session-card", has_text="wide-").first.click()
        expect(page.locator("#detail-session-id")).to_contain_text("wide-")
        expect(page.locator("#timeline .tool-step")).to_have_attribute("data-state", "done")
        assert page.evaluate("document.documentElement.scrollWidth") <= 800
        for panel in ("#detail-panel", "#results-panel"):
            sizes = page.locator(panel).evaluate("p => [p.scrollWidth, p.clientWidth]")
            assert sizes[0] <= sizes[1] + 1, (panel, sizes)
        box = page.locator("#session-totals").bounding_box()
        for tile in page.locator("#session-totals > div").all():
            t = tile.bounding_box()
            assert t["x"] >= box["x"] - 1 and t["x"] + t["width"] <= box["x"] + box["width"] + 1, (
                "a stat tile is cut off"
            )
        widths = page.locator("#session-detail .timeline-item, #session-detail section").evaluate_all(
            "nodes => nodes.map(n => [n.scrollWidth, n.clientWidth])"
        )
        assert all(scroll <= client + 1 for scroll, client in widths), widths
        for control in ("#sort-by", "#sort-order"):  # the list column's controls stay usable too
            assert page.locator(control).bounding_box()["width"] >= 100, control
        shots = os.environ.get("MSM_SCREENSHOT_DIR")
        if shots:
            page.mouse.move(1, 1)
            page.screenshot(path=str(Path(shots) / "session-viewer-800px.png"))
    finally:
        context.close()


def test_a_guesser_on_the_same_address_does_not_lock_out_a_reviewer_who_logged_in_before(
    chromium_browser: Any, extra_viewer: Viewer, mongo_uri: str
) -> None:
    from playwright.sync_api import expect

    settings = settings_for(mongo_uri, extra_viewer.database, auth_max_failures=2, lockout_collection_name="e2e_lock")
    with serve_asgi(create_app(settings)) as url:
        reviewer = chromium_browser.new_context(viewport=VIEWPORT)
        guesser = chromium_browser.new_context(viewport=VIEWPORT)
        try:
            page = reviewer.new_page()
            page.goto(url)
            log_in(page, PASSWORD)
            expect(page.locator("#login")).to_be_hidden()
            assert page.evaluate("localStorage.getItem('sessionViewer.device')")  # this browser's device token
            attacker = guesser.new_page()  # same address (127.0.0.1), no token
            attacker.goto(url)
            for _ in range(2):
                log_in(attacker, "a wrong guess")
                expect(attacker.locator("#login-error")).to_have_text("Wrong password.")
            log_in(attacker, PASSWORD)
            expect(attacker.locator("#login-error")).to_contain_text("Too many failed attempts")
            page.reload()
            page.goto(f"{url}/?session=search")
            expect(page.locator("#detail-session-id")).to_have_text("search")  # the reviewer keeps working
        finally:
            reviewer.close()
            guesser.close()
