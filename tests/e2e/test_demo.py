"""The main job: `mongodb-session-manager demo` brings up the viewer with demo sessions in a browser."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mongodb_session_manager.demo import demo_conversations
from mongodb_session_manager.embedded import free_port

pytestmark = pytest.mark.e2e


def test_demo_serves_the_viewer_with_demo_sessions_and_stops_cleanly(chromium_browser: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "MONGODB_CONNECTION_STRING"}
    env.update(MSM_MODEL="offline", BACKEND_PASSWORD="", PYTHONUNBUFFERED="1")
    data_dir = tmp_path / "demo-data"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mongodb_session_manager.cli", "demo", "--port", str(port), "--data-dir", str(data_dir)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    try:
        url = password = uri = None
        deadline = time.monotonic() + 240
        assert proc.stdout is not None
        while password is None:
            line = proc.stdout.readline()
            assert line or proc.poll() is None, "demo exited early:\n" + "".join(output)
            assert time.monotonic() < deadline, "demo did not start:\n" + "".join(output)
            output.append(line)
            if match := re.match(r"MONGODB_CONNECTION_STRING=(\S+)", line):
                uri = match.group(1)
            if match := re.match(r"Session Viewer: (\S+)", line):
                url = match.group(1)
            if match := re.match(r"Password:\s+(\S+)", line):
                password = match.group(1)
        assert url == f"http://127.0.0.1:{port}/"
        assert uri and uri.startswith("mongodb://127.0.0.1:"), "the demo tells the user where its mongod is"
        assert len(password) >= 16  # generated, never a weak default

        page = chromium_browser.new_context().new_page()
        for _ in range(100):  # uvicorn may need a moment after printing
            try:
                page.goto(url)
                break
            except Exception:  # connection refused while the server binds
                time.sleep(0.2)
        page.fill("#login-password", password)
        page.click("#login-submit")
        expect(page.locator("#login")).to_be_hidden()
        expect(page.locator("#results-count")).to_have_text(f"{len(demo_conversations())} found")
        # Newest first: the multi-agent, tool-using cases open the list, not look-alike filler.
        expect(page.locator(".session-card").first).to_have_attribute("data-session-id", "demo-order-1001")
        page.fill("#filter-session-id", "demo-billing-2002")
        page.click("#search-button")
        expect(page.locator("#results-count")).to_have_text("1 found")
        page.click(".session-card[data-session-id='demo-billing-2002']")
        expect(page.locator("#detail-session-id")).to_have_text("demo-billing-2002")
        expect(page.locator("#timeline .tool-use[data-tool='calculator']")).to_contain_text("49.50 * 2 - 12.25")
        expect(page.locator("#session-metadata dd[data-key='customer_name']")).to_have_text("Grace Hopper")
        if shots := os.environ.get("MSM_SCREENSHOT_DIR"):
            page.screenshot(path=str(Path(shots) / "demo.png"), full_page=False)
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        rest = proc.stdout.read() if proc.stdout else ""
        if proc.stdout:
            proc.stdout.close()
    assert proc.returncode == 0, "".join(output) + rest
    assert "Local mongod stopped." in rest
    # Nothing the demo started is left running: the data folder's mongod lock is released.
    lock = data_dir / "member0" / "mongod.lock"
    assert not lock.exists() or lock.read_text().strip() == ""


def _cli_mongod(data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    env = {k: v for k, v in os.environ.items() if k != "MONGODB_CONNECTION_STRING"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mongodb_session_manager.cli", "mongod", "--data-dir", str(data_dir)],
        env=env | {"PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    for _ in range(20):
        line = proc.stdout.readline()
        if line.startswith("MONGODB_CONNECTION_STRING="):
            return proc, line
        assert line, "the CLI exited before printing its connection string"
    raise AssertionError("no connection string printed")


def _stop(proc: subprocess.Popen[str], sig: signal.Signals) -> str:
    proc.send_signal(sig)
    proc.wait(60)
    rest = proc.stdout.read() if proc.stdout else ""
    if proc.stdout:
        proc.stdout.close()
    return rest


def _pid_gone(pid: int, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    return not Path(f"/proc/{pid}").exists()


@pytest.mark.skipif(bool(os.environ.get("MONGODB_CONNECTION_STRING")), reason="an external server was configured")
def test_sigterm_stops_the_mongod_the_cli_started_and_spares_one_it_reused(tmp_path: Path) -> None:
    from mongodb_session_manager.embedded import shared_mongod

    data_dir = tmp_path / "data"
    proc, line = _cli_mongod(data_dir)
    assert "(started)" in line
    pid = int((data_dir / "member0" / "mongod.lock").read_text().strip())
    rest = _stop(proc, signal.SIGTERM)
    assert proc.returncode == 0 and "Local mongod stopped." in rest
    assert _pid_gone(pid), "SIGTERM left the CLI's mongod running"

    with shared_mongod(data_dir) as owner:  # someone else runs the server now
        proc, line = _cli_mongod(data_dir)
        assert "(already running, reused)" in line and owner.connection_string in line
        rest = _stop(proc, signal.SIGTERM)
        assert proc.returncode == 0 and "Local mongod stopped." not in rest
        pid = int((data_dir / "member0" / "mongod.lock").read_text().strip())
        assert Path(f"/proc/{pid}").exists(), "a reused server belongs to its owner"
