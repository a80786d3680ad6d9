"""The chat playground in headless Chromium against the real streaming backend and mongod."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from mongodb_session_manager.embedded import free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture
def page_server() -> Iterator[str]:
    """Serves playground/chat as static files, like `make frontend`."""
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(ROOT / "playground" / "chat"))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def streaming_backend(mongo_uri: str, page_server: str) -> Iterator[str]:
    """examples/example_fastapi_streaming.py, the playground's backend, on a free loopback port."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(MSM_MODEL="offline", MONGODB_CONNECTION_STRING=mongo_uri, PORT=str(port), ALLOWED_ORIGINS=page_server)
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "example_fastapi_streaming.py")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else "backend exited"
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "backend did not start"
            time.sleep(0.2)
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        if proc.stderr:
            proc.stderr.close()


def test_chat_streams_keeps_the_session_across_reloads_and_shows_metrics(
    streaming_backend: str, page_server: str, tmp_path: Path
) -> None:
    shots = os.environ.get("MSM_SCREENSHOT_DIR")
    tmp_path = Path(shots) if shots else tmp_path
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{page_server}/chat.html?api={streaming_backend}")
            session_id = page.locator("#session-label").inner_text()
            assert session_id.startswith("chat-")

            # Count text updates of the conversation: a streamed reply arrives in several pieces.
            page.evaluate(
                """() => { window.__textUpdates = 0;
                new MutationObserver(() => window.__textUpdates++).observe(
                  document.getElementById('messages'), {characterData: true, subtree: true}); }"""
            )
            page.fill("#prompt", "What is 12 * 7?")
            page.click("#send")
            answer = page.locator(".msg.assistant").last
            expect(answer).to_contain_text("84")
            assert page.evaluate("window.__textUpdates") >= 3
            expect(page.locator("#metrics dd[data-key='Turns']")).to_have_text("1")
            assert int(page.locator("#metrics dd[data-key='Total tokens']").inner_text()) > 0

            page.fill("#prompt", "Remember that my name is Ada")
            page.click("#send")
            expect(page.locator("#metadata dd[data-key='name']")).to_have_text("Ada")
            page.locator(".msg.assistant .feedback button").last.click()
            expect(page.locator(".msg.assistant .feedback").last).to_contain_text("Thanks")

            page.reload()
            expect(page.locator("#session-label")).to_have_text(session_id)
            expect(page.locator(".msg.user")).to_have_count(2)
            expect(page.locator(".msg.user").first).to_have_text("What is 12 * 7?")
            expect(page.locator("#metrics dd[data-key='Turns']")).to_have_text("2")
            page.screenshot(path=str(tmp_path / "playground.png"))
        finally:
            browser.close()
