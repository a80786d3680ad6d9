"""Every example runs, offline, and exits 0; server examples answer one request and stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from mongodb_session_manager.embedded import free_port

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SERVERS = {"example_fastapi.py", "example_fastapi_streaming.py"}
SCRIPTS = sorted(p.name for p in EXAMPLES.glob("example_*.py") if p.name not in SERVERS)


def example_env(mongo_uri: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["MSM_MODEL"] = "offline"
    env.pop("MONGODB_CONNECTION_STRING", None)
    if mongo_uri:
        env["MONGODB_CONNECTION_STRING"] = mongo_uri
    return env


@pytest.mark.parametrize("script", SCRIPTS)
def test_example_script_runs(script: str, mongo_uri: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        env=example_env(mongo_uri),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    assert proc.stdout.strip(), f"{script} printed nothing"


def test_example_starts_its_own_mongod_when_none_is_configured(tmp_path: Path) -> None:
    """Without a configured server an example uses the shared local mongod (here in a private data dir)."""
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "example_metadata_tool_direct.py")],
        env=example_env(None) | {"MSM_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "Session metadata" in proc.stdout
    assert (tmp_path / "member0" / "mongod.lock").read_text().strip() == "", "it stopped the mongod it started"


def _serve(script: str, mongo_uri: str) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    env = example_env(mongo_uri) | {"PORT": str(port)}
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{script} exited early: {proc.stderr.read()[-3000:] if proc.stderr else ''}")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"{script} did not start")


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
    for stream in (proc.stdout, proc.stderr):
        if stream:
            stream.close()


def test_example_fastapi_answers_a_chat_request(mongo_uri: str) -> None:
    proc, base = _serve("example_fastapi.py", mongo_uri)
    try:
        reply = httpx.post(f"{base}/chat", json={"session_id": "ex-fastapi", "message": "What is 6 * 7?"}, timeout=60)
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert "42" in body["response"] and body["messages_in_session"] == 4
    finally:
        _stop(proc)
    assert proc.returncode is not None


def test_example_fastapi_streaming_streams_and_restores(mongo_uri: str) -> None:
    proc, base = _serve("example_fastapi_streaming.py", mongo_uri)
    try:
        with httpx.stream(
            "POST", f"{base}/chat/stream", json={"session_id": "ex-stream", "message": "Hello there"}, timeout=60
        ) as response:
            events = [json.loads(line) for line in response.iter_lines() if line]
        deltas = [e for e in events if e["type"] == "delta"]
        assert len(deltas) > 1  # streamed in pieces, not one blob
        assert events[-1]["type"] == "done" and events[-1]["usage"]["totalTokens"] > 0
        state = httpx.get(f"{base}/sessions/ex-stream", timeout=30).json()
        assert [m["role"] for m in state["messages"]] == ["user", "assistant"]
        assert state["turns"] == 1 and state["total_tokens"] > 0
        assert state["viewer_url"].endswith("/?session=ex-stream")
        health = httpx.get(f"{base}/health", timeout=10).json()
        assert (health["database"], health["collection"]) == ("chat", "sessions"), "where the demo viewer reads"

        # A tool turn: two assistant messages (the call, then the answer) are two entries, never glued.
        with httpx.stream(
            "POST", f"{base}/chat/stream", json={"session_id": "ex-stream", "message": "What is 12 * 7?"}, timeout=60
        ) as response:
            kinds = [json.loads(line)["type"] for line in response.iter_lines() if line]
        boundaries = [k for k in kinds if k != "delta"]
        assert boundaries == ["assistant_message", "tool_result", "assistant_message", "done"], kinds
        state = httpx.get(f"{base}/sessions/ex-stream", timeout=30).json()
        call, answer = state["messages"][-2:]
        assert [t["name"] for t in call["tools"]] == ["calculator"] and call["tools"][0]["result"] == "Result: 84"
        assert answer["text"] == "Done. Result: 84" and not answer["tools"]
        assert state["message_count"] == 5, "tool results are not counted as messages the user saw"

        stored = httpx.post(
            f"{base}/sessions/ex-stream/feedback",
            json={"rating": "down", "comment": "too terse", "message_id": answer["message_id"]},
            timeout=30,
        )
        assert stored.status_code == 200, stored.text
        state = httpx.get(f"{base}/sessions/ex-stream", timeout=30).json()
        assert state["messages"][-1]["feedback"] == {"rating": "down", "comment": "too terse"}
        assert all(m["feedback"] is None for m in state["messages"][:-1])
    finally:
        _stop(proc)


def _hold_lease(mongo_uri: str, session_id: str) -> None:
    """Another turn of the agent "assistant" is running (a live lease held by someone else)."""
    from datetime import UTC, datetime, timedelta

    from pymongo import MongoClient

    with MongoClient(mongo_uri) as client:
        client["chat"]["sessions"].update_one(
            {"_id": session_id},
            {
                "$set": {
                    "agents.assistant.lease": {
                        "token": "another-request",
                        "owner": "test",
                        "expires_at": datetime.now(UTC) + timedelta(seconds=120),
                    }
                }
            },
        )


@pytest.mark.parametrize("script", sorted(SERVERS))
def test_server_examples_answer_a_busy_session_with_429_and_store_nothing(script: str, mongo_uri: str) -> None:
    streaming = script == "example_fastapi_streaming.py"
    session_id = f"ex-busy-{'stream' if streaming else 'plain'}"
    proc, base = _serve(script, mongo_uri)

    def send(message: str) -> httpx.Response:
        path = "/chat/stream" if streaming else "/chat"
        response = httpx.post(f"{base}{path}", json={"session_id": session_id, "message": message}, timeout=60)
        return response

    try:
        assert send("Hello there").status_code == 200
        _hold_lease(mongo_uri, session_id)
        busy = send("Are you there?")  # waits the default busy_timeout, then is refused
        assert busy.status_code == 429, busy.text
        assert busy.headers["retry-after"] == "1"
        assert "SessionBusyError" in busy.text or "another invocation" in busy.text
    finally:
        _stop(proc)
    from pymongo import MongoClient

    with MongoClient(mongo_uri) as client:
        doc = client["chat"]["sessions"].find_one({"_id": session_id})
    assert [m["message"]["content"][0]["text"] for m in doc["agents"]["assistant"]["messages"]][:1] == ["Hello there"]
    assert len(doc["agents"]["assistant"]["messages"]) == 2, "the refused request stored nothing"
