"""The viewer as a user installs it: the wheel with the ``viewer`` extra, in a fresh environment
outside the checkout, started as ``mongodb-session-manager viewer`` from another directory.

Offline: the dependencies come from the committed ``uv.lock`` and uv's cache (``uv sync --frozen
--offline`` into the fresh environment, exactly the versions the project's own ``.venv`` has),
then the built wheel is installed with ``[viewer]`` (uv checks the extra's requirements are met).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from mongodb_session_manager import MongoDBSessionManager
from mongodb_session_manager.embedded import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
PASSWORD = "installed wheel viewer password"
START_SECONDS = 90


def uv_command() -> list[str]:
    """The uv running these tests (``uv run`` exports ``UV``), else one on PATH, else ``python3 -m uv``."""
    found = os.environ.get("UV") or shutil.which("uv")
    return [found] if found else ["python3", "-m", "uv"]


def uv(*args: str, cwd: Path, env: dict[str, str] | None = None) -> None:
    done = subprocess.run([*uv_command(), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"uv {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment (outside the checkout) with the wheel and its ``viewer`` extra."""
    work = tmp_path_factory.mktemp("wheel")
    dist, venv = work / "dist", work / "venv"
    uv("build", "--wheel", "--offline", "--out-dir", str(dist), cwd=ROOT)
    (wheel,) = dist.glob("mongodb_session_manager-*.whl")
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv)}
    env.pop("VIRTUAL_ENV", None)
    uv("sync", "--frozen", "--offline", "--extra", "viewer", "--no-dev", "--no-install-project", cwd=ROOT, env=env)
    uv("pip", "install", "--offline", "--python", str(venv / "bin" / "python"), f"{wheel}[viewer]", cwd=work)
    return venv


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # loopback only
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@contextmanager
def running_viewer(installed: Path, cwd: Path, mongo_uri: str, database: str, *flags: str) -> Iterator[str]:
    """``mongodb-session-manager viewer`` of the fresh environment, as its own process; yields its URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "BACKEND_PASSWORD")}
    command = [
        str(installed / "bin" / "mongodb-session-manager"), "viewer",
        "--mongodb-connection-string", mongo_uri, "--database-name", database,
        "--backend-password", PASSWORD, "--port", str(port), *flags,
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            assert process.poll() is None, (process.stdout.read() if process.stdout else b"").decode()
            try:
                if get(f"{base}/health")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the installed viewer did not start"
            time.sleep(0.2)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.fixture
def database(mongo_client: MongoClient[Any]) -> Iterator[str]:
    name = f"wheel_{uuid.uuid4().hex[:10]}"
    manager = MongoDBSessionManager("search", client=mongo_client, database_name=name, collection_name="sessions")
    manager.update_metadata({"status": "open"})
    yield name
    mongo_client.drop_database(name)


@pytest.fixture
def served(installed: Path, tmp_path: Path, mongo_uri: str, database: str) -> Iterator[str]:
    with running_viewer(installed, tmp_path, mongo_uri, database) as base:
        yield base


def test_the_lockout_holds_across_two_viewer_processes(
    installed: Path, tmp_path: Path, mongo_uri: str, database: str
) -> None:
    """Two processes (as two workers or instances behind a balancer) share one failure count in MongoDB."""
    limit = ("--auth-max-failures", "4")
    with (
        running_viewer(installed, tmp_path, mongo_uri, database, *limit) as first,
        running_viewer(installed, tmp_path, mongo_uri, database, *limit) as second,
    ):
        for base in (first, second, first, second):
            assert get(f"{base}/api/v1/auth/check", {"X-Backend-Password": "a wrong guess"})[0] == 401
        for base in (first, second):
            assert get(f"{base}/api/v1/auth/check", {"X-Backend-Password": PASSWORD})[0] == 429


def test_the_installed_wheel_serves_the_viewer_from_any_directory(installed: Path, served: str) -> None:
    site = next((installed / "lib").glob("python3*/site-packages"))
    assert (site / "session_viewer" / "frontend" / "index.html").is_file()
    assert (site / "session_viewer" / "frontend" / "vendor" / "tailwind.css").is_file()
    status, page = get(f"{served}/")
    assert status == 200 and "<title>Session Viewer</title>" in page
    assert get(f"{served}/config.js")[1].find('apiBaseUrl: ""') >= 0
    status, body = get(f"{served}/api/v1/session/search", {"X-Backend-Password": PASSWORD})
    assert status == 200, body
    assert json.loads(body)["session_id"] == "search"  # a session named "search" opens
    assert get(f"{served}/api/v1/session/search")[0] == 401


def test_help_lists_every_setting_with_its_default(installed: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(
        [str(installed / "bin" / "mongodb-session-manager"), "viewer", "--help"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    text = " ".join(done.stdout.split())
    for flag, env_name in (
        ("--mongodb-connection-string", "MONGODB_CONNECTION_STRING; default: mongodb://127.0.0.1:27017"),
        ("--database-name", "DATABASE_NAME; default:"),
        ("--trusted-proxies-str", "TRUSTED_PROXIES_STR; default: empty"),
        ("--query-max-time-ms", "QUERY_MAX_TIME_MS; default: 5000"),
        ("--allow-weak-password", "ALLOW_WEAK_PASSWORD; default: False"),
        ("--backend-port", "BACKEND_PORT; default: 8882"),
    ):
        assert flag in text and env_name in text


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--backend-password", "123456"], "ALLOW_WEAK_PASSWORD"),
        (["--backend-password", "a long viewer password", "--allowed-origins-str", "*"], "password headers"),
        (["--backend-password", "a long viewer password", "--trusted-proxies-str", "proxy.example"], "CIDR"),
    ],
)
def test_bad_settings_stop_the_viewer_with_a_one_line_reason(
    installed: Path, tmp_path: Path, flags: list[str], message: str
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "BACKEND_PASSWORD")}
    command = [str(installed / "bin" / "mongodb-session-manager"), "viewer", "--mongodb-connection-string",
               "mongodb://127.0.0.1:1", *flags]  # fmt: skip
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert message in done.stderr and "Traceback" not in done.stderr
