"""The chat playground in headless Chromium against the real streaming backend and its own local mongod.

The backend is started the way a user starts it, ``make -C playground/chat backend-fastapi-streaming``,
without ``MONGODB_CONNECTION_STRING``, so it uses the shared local mongod (here in a private
``MSM_DATA_DIR``) and the database the demo's Session Viewer reads. SIGTERM to that ``make`` must stop
the backend and the mongod it started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import MongoClient

from mongodb_session_manager.embedded import free_port, running_server

from .conftest import serve_directory

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
PLAYGROUND = ROOT / "playground" / "chat"


@dataclass
class Backend:
    url: str
    data_dir: Path
    process: subprocess.Popen[str]


@pytest.fixture
def page_server() -> Iterator[str]:
    """Serves playground/chat as static files, like `make frontend`."""
    with serve_directory(PLAYGROUND) as url:
        yield url


def start_backend(data_dir: Path, page_server: str, *, own_group: bool = False) -> Backend:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "MONGODB_CONNECTION_STRING"}
    env.update(MSM_MODEL="offline", MSM_DATA_DIR=str(data_dir), ALLOWED_ORIGINS=page_server)
    env.pop("MAKEFLAGS", None)
    proc = subprocess.Popen(
        ["make", "-s", "-C", str(PLAYGROUND), "backend-fastapi-streaming", f"PORT={port}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=own_group,  # a process group of its own, like a job in a terminal
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else "backend exited"
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return Backend(base, data_dir, proc)
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "backend did not start"
        time.sleep(0.2)


def stop(backend: Backend, sig: signal.Signals = signal.SIGTERM) -> int:
    backend.process.send_signal(sig)
    try:
        backend.process.wait(60)
    except subprocess.TimeoutExpired:
        backend.process.kill()
        backend.process.wait(10)
    if backend.process.stderr:
        backend.process.stderr.close()
    return backend.process.returncode


@pytest.fixture
def backend(tmp_path: Path, page_server: str) -> Iterator[Backend]:
    started = start_backend(tmp_path / "data", page_server)
    try:
        yield started
    finally:
        if started.process.poll() is None:
            stop(started)


def test_chat_bubbles_tools_markdown_feedback_and_the_viewer_link(
    chromium_browser: Any, backend: Backend, page_server: str, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    shots = Path(os.environ.get("MSM_SCREENSHOT_DIR") or tmp_path)
    page = chromium_browser.new_context().new_page()
    page.goto(f"{page_server}/chat.html?api={backend.url}")
    session_id = page.locator("#session-label").inner_text()
    assert session_id.startswith("chat-")
    expect(page.locator("#backend-status")).to_contain_text("stored in chat.sessions")

    # Streaming: the reply arrives in several pieces.
    page.evaluate(
        """() => { window.__textUpdates = 0;
        new MutationObserver(() => window.__textUpdates++).observe(
          document.getElementById('messages'), {characterData: true, subtree: true}); }"""
    )
    page.fill("#prompt", "What is 12 * 7?")
    page.click("#send")
    assistant = page.locator(".msg.assistant")
    # One bubble per assistant message: the tool call and the answer are never glued together.
    expect(assistant).to_have_count(2)
    expect(assistant.nth(0)).to_contain_text("Let me calculate that.")
    expect(assistant.nth(1).locator(".markdown")).to_have_text("Done. Result: 84")
    assert page.evaluate("window.__textUpdates") >= 3

    # The tool call is shown, collapsed, with its input and result.
    tool = assistant.nth(0).locator("details.tool[data-tool='calculator']")
    expect(tool).to_have_count(1)
    assert tool.get_attribute("open") is None, "tool calls start collapsed"
    expect(tool.locator("summary")).to_contain_text("calculator")
    tool.locator("summary").click()
    expect(tool.locator(".tool-result")).to_have_text("result: Result: 84")
    expect(tool.locator(".tool-input")).to_contain_text("12 * 7")
    expect(page.locator("#metrics dd[data-key='Messages']")).to_have_text("3")  # tool results are not messages
    expect(page.locator("#metrics dd[data-key='Tool calls']")).to_have_text("1")

    # Markdown through the viewer's sanitiser: bold renders, typed HTML stays text.
    page.fill("#prompt", "Hello <img src=x onerror=window.__xss=1> friend")
    page.click("#send")
    expect(assistant).to_have_count(3)
    last = assistant.nth(2)
    expect(last.locator(".markdown strong")).to_contain_text("<img src=x onerror=window.__xss=1> friend")
    assert page.locator("#messages img").count() == 0 and page.evaluate("window.__xss") is None

    # Feedback on one message, with a comment; icons are inline SVG, not emoji that fonts may lack.
    bar = assistant.nth(1).locator(".feedback")
    expect(bar.locator("button.fb-up svg.icon")).to_have_count(1)
    expect(bar.locator("button.fb-down svg.icon")).to_have_count(1)
    assert "👍" not in page.content()
    expect(bar.locator("form")).to_be_hidden()  # the comment box opens after a rating is chosen
    bar.locator("button.fb-down").click()
    expect(bar.locator("form")).to_be_visible()
    bar.locator("input.fb-comment").fill("The result was right but explain the steps")
    bar.locator("button.fb-send").click()
    expect(bar.locator(".fb-status")).to_have_text("Feedback saved.")

    # Every chat links to its session in the Session Viewer.
    link = page.locator("#viewer-link")
    expect(link).to_be_visible()
    assert link.get_attribute("href") == f"http://127.0.0.1:8882/?session={session_id}"
    expect(link.locator("svg.icon")).to_have_count(1)

    # After a reload everything comes back from MongoDB, feedback included.
    page.reload()
    expect(page.locator("#session-label")).to_have_text(session_id)
    expect(page.locator(".msg.user")).to_have_count(2)
    expect(page.locator(".msg.user").first).to_have_text("What is 12 * 7?")
    expect(assistant).to_have_count(3)
    bar = assistant.nth(1).locator(".feedback")
    expect(bar.locator("button.fb-down")).to_have_attribute("aria-pressed", "true")
    expect(bar.locator("button.fb-up")).to_have_attribute("aria-pressed", "false")
    expect(bar.locator(".fb-comment-text")).to_contain_text("The result was right but explain the steps")
    expect(assistant.nth(0).locator(".feedback .fb-status")).to_have_text("")
    expect(page.locator("#metrics dd[data-key='Turns']")).to_have_text("2")
    page.screenshot(path=str(shots / "playground.png"))

    # Stored where the demo's Session Viewer reads: chat.sessions in the shared local mongod.
    uri = running_server(backend.data_dir)
    assert uri, "the backend runs the shared local mongod of its data dir"
    with MongoClient(uri, serverSelectionTimeoutMS=10_000) as client:
        doc = client.chat.sessions.find_one({"_id": session_id}, {"feedbacks": 1})
    assert doc and doc["feedbacks"][-1]["rating"] == "down"


@pytest.mark.parametrize("how", ["SIGTERM to make", "Ctrl-C"])
def test_stopping_make_backend_stops_the_backend_and_its_mongod(tmp_path: Path, page_server: str, how: str) -> None:
    backend = start_backend(tmp_path / "data", page_server, own_group=how == "Ctrl-C")
    pid = int((backend.data_dir / "member0" / "mongod.lock").read_text().strip())
    assert Path(f"/proc/{pid}").exists()
    if how == "Ctrl-C":  # the terminal sends SIGINT to the whole foreground job
        os.killpg(backend.process.pid, signal.SIGINT)
        backend.process.wait(60)
        if backend.process.stderr:
            backend.process.stderr.close()
    else:
        stop(backend, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{pid}").exists(), f"mongod {pid} outlived `make backend-fastapi-streaming` ({how})"
    assert (backend.data_dir / "member0" / "mongod.lock").read_text().strip() == "", "a clean shutdown"
