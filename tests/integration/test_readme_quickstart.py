"""The README's quick start runs exactly as written, as a new user would run it, and resumes.

The first Python block of README.md is extracted verbatim and run twice in a clean environment: no
``MONGODB_CONNECTION_STRING`` (so it must find or start the project's local mongod by itself), no
AWS variables (so it must fall back to the offline model) and no network. The network is cut twice
over: in a fresh network namespace with only loopback up when this machine allows ``unshare``, and
always by a ``sitecustomize`` that refuses any non-loopback connection from Python. Only the data
folder is redirected (``MSM_DATA_DIR``) so the test never touches the user's ``.demo-data/``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

NO_NETWORK = """
import ipaddress
import socket

_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex


def _check(sock, address):
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        host = address[0]
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise OSError(f"network disabled in the quick-start test: {host}")


def connect(self, address):
    _check(self, address)
    return _connect(self, address)


def connect_ex(self, address):
    _check(self, address)
    return _connect_ex(self, address)


socket.socket.connect = connect
socket.socket.connect_ex = connect_ex
"""


def first_python_block(markdown: str) -> str:
    match = re.search(r"^```python\n(.*?)^```", markdown, re.S | re.M)
    assert match, "README.md has no python block"
    return match.group(1)


def clean_env(tmp_path: Path) -> dict[str, str]:
    drop = ("MONGODB_CONNECTION_STRING", "MSM_MODEL", "BEDROCK_MODEL_ID", "DATABASE_NAME", "COLLECTION_NAME")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k not in drop}
    guard = tmp_path / "no-network"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(NO_NETWORK)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(guard), env.get("PYTHONPATH", "")) if p)
    env["MSM_DATA_DIR"] = str(tmp_path / "data")
    env["NO_PROXY"] = env["no_proxy"] = "*"
    return env


def isolated_network() -> list[str]:
    """``unshare`` into a network namespace with only loopback, when this machine permits it."""
    if not (shutil.which("unshare") and shutil.which("ip")):
        return []
    prefix = ["unshare", "-rn", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"]
    probe = subprocess.run([*prefix, "true"], capture_output=True)
    return prefix if probe.returncode == 0 else []


def test_readme_quick_start_runs_as_written_twice_and_resumes(tmp_path: Path) -> None:
    script = tmp_path / "quickstart.py"
    script.write_text(first_python_block((ROOT / "README.md").read_text()))
    env = clean_env(tmp_path)
    command = [*isolated_network(), sys.executable, str(script)]

    runs = []
    for _ in range(2):
        proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
        assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
        runs.append(proc.stdout)

    first, second = runs
    assert "Restored 0 earlier messages" in first
    assert "Assistant:" in first and "offline demo model (turn 1)" in first
    assert "Restored 2 earlier messages" in second, "the second run resumes the stored conversation"
    assert "(turn 2)" in second

    # The block started the local mongod itself and stopped it again: nothing keeps the data dir locked.
    lock = tmp_path / "data" / "member0" / "mongod.lock"
    assert lock.exists(), "the quick start used the project's local mongod in the shared data dir"
    assert lock.read_text().strip() == ""


@pytest.mark.parametrize("needle", ["metadata_fields", "MSM_DATA_DIR", "MONGODB_CONNECTION_STRING"])
def test_readme_explains_what_a_new_user_needs(needle: str) -> None:
    assert needle in (ROOT / "README.md").read_text()
