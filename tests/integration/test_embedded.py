"""The project's own mongod: installed, started as a replica set on loopback, stopped by PID.

These start their own short-lived servers (the session-wide one from ``tests/conftest.py`` is
shared) and check that every process they started is gone afterwards.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from mongodb_session_manager.embedded import (
    MONGOD_VERSION,
    MongoReplicaSet,
    ensure_installed,
    local_mongodb,
    running_mongod,
    shared_mongod,
)


def assert_gone(processes: list[Any]) -> None:
    for process in processes:
        assert process.poll() is not None, f"mongod pid {process.pid} is still running"


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_the_installed_binary_runs_and_is_the_pinned_version() -> None:
    installation = ensure_installed()
    assert installation.mongod.is_file()
    assert installation.version() == MONGOD_VERSION
    assert all((installation.lib_dir / name).is_file() for name in ("libssl.so.1.1", "libcrypto.so.1.1"))


@pytest.mark.skipif(bool(os.environ.get("MONGODB_CONNECTION_STRING")), reason="an external server was configured")
def test_the_test_session_really_runs_on_the_installed_mongod(mongo_client: MongoClient[Any]) -> None:
    """Integration tests run against the real server this project installs, not a mock."""
    assert mongo_client.server_info()["version"] == MONGOD_VERSION
    hello = mongo_client.admin.command("hello")
    assert hello["isWritablePrimary"] and hello["setName"] == "rs0"
    assert all(host.startswith("127.0.0.1:") for host in hello["hosts"])


def test_start_waits_for_a_primary_and_stop_ends_every_process() -> None:
    rs = MongoReplicaSet(members=1)
    rs.start()
    try:
        [member] = rs.member_processes
        assert member.running
        assert rs.connection_string == f"mongodb://127.0.0.1:{member.port}/?replicaSet=rs0"
        dbpath = member.dbpath
        assert dbpath.is_dir()
        with MongoClient(rs.connection_string, serverSelectionTimeoutMS=10_000) as client:
            assert client.admin.command("hello")["isWritablePrimary"]
            client.t.c.insert_one({"ok": True})  # writable without waiting: start() waited for the primary
        assert rs.wait_for_primary() == member.host
        process = member.process
    finally:
        rs.stop()
    assert_gone([process])
    assert member.process is None and not member.running
    assert not dbpath.exists(), "a temporary dbpath is removed on stop"
    assert port_is_free(member.port)


def test_a_kept_dbpath_keeps_data_and_ports_across_restarts(tmp_path: Path) -> None:
    with running_mongod(dbpath=tmp_path) as rs:
        port = rs.member_processes[0].port
        with MongoClient(rs.connection_string) as client:
            client.demo.sessions.insert_one({"_id": "kept", "n": 1})
        first_process = rs.member_processes[0].process
    assert_gone([first_process])
    assert (tmp_path / "replset.json").read_text() == str(port)

    with running_mongod(dbpath=tmp_path) as rs:
        assert rs.member_processes[0].port == port, "the stored replica-set config names this port"
        with MongoClient(rs.connection_string, serverSelectionTimeoutMS=20_000) as client:
            assert client.demo.sessions.find_one({"_id": "kept"}) == {"_id": "kept", "n": 1}
        second_process = rs.member_processes[0].process
    assert_gone([second_process])
    assert tmp_path.is_dir(), "a given dbpath is never deleted"


def test_running_mongod_stops_the_server_when_the_body_fails() -> None:
    processes: list[Any] = []
    with pytest.raises(RuntimeError, match="boom"), running_mongod() as rs:
        processes.extend(m.process for m in rs.member_processes)
        raise RuntimeError("boom")
    assert processes and all(p is not None for p in processes)
    assert_gone(processes)


# ---- the shared local server ------------------------------------------------------------------------


def mongod_pid(data_dir: Path) -> int:
    """The pid a running mongod wrote into its lock file (empty once it shut down cleanly)."""
    return int((data_dir / "member0" / "mongod.lock").read_text().strip())


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie waiting for a parent that no longer cares."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def wait_gone(pid: int, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.skipif(bool(os.environ.get("MONGODB_CONNECTION_STRING")), reason="an external server was configured")
def test_shared_mongod_is_reused_and_only_its_owner_stops_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSM_DATA_DIR", str(tmp_path))
    with shared_mongod() as owner:
        assert owner.started and owner.data_dir == tmp_path.resolve()
        pid = mongod_pid(tmp_path)
        with local_mongodb() as uri:  # what the quick start and the examples call
            assert uri == owner.connection_string
            with MongoClient(uri, serverSelectionTimeoutMS=10_000) as client:
                client.chat.sessions.insert_one({"_id": "shared"})
        with shared_mongod(tmp_path) as user:
            assert not user.started, "a running server on the same data dir is reused, not started twice"
        assert pid_alive(pid), "a user that only reused the server must not stop it"
    assert wait_gone(pid), "the owner stops the server it started"
    with shared_mongod() as again, MongoClient(again.connection_string, serverSelectionTimeoutMS=20_000) as client:
        assert again.started
        assert client.chat.sessions.find_one({"_id": "shared"}) == {"_id": "shared"}, "data outlives the server"
    assert (tmp_path / "member0" / "mongod.lock").read_text().strip() == "", "stopped cleanly: lock released"


@pytest.mark.skipif(bool(os.environ.get("MONGODB_CONNECTION_STRING")), reason="an external server was configured")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_signalled_owner_leaves_no_mongod_behind(tmp_path: Path, sig: signal.Signals) -> None:
    """SIGTERM unwinds and stops the server; even SIGKILL does, through the kernel's parent-death signal."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mongodb_session_manager.embedded", "start", "--dbpath", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("MONGODB_CONNECTION_STRING=mongodb://127.0.0.1:"), line
        pid = mongod_pid(tmp_path)
        assert pid_alive(pid)
        proc.send_signal(sig)
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stdout:
            proc.stdout.close()
    if sig == signal.SIGTERM:
        assert proc.returncode == 0
    assert wait_gone(pid), f"mongod {pid} outlived its owner after {sig.name}"


@pytest.mark.skipif(bool(os.environ.get("MONGODB_CONNECTION_STRING")), reason="an external server was configured")
def test_a_kept_data_dir_whose_port_was_taken_moves_to_a_free_port_and_keeps_its_data(tmp_path: Path) -> None:
    with shared_mongod(tmp_path) as first, MongoClient(first.connection_string) as client:
        client.chat.sessions.insert_one({"_id": "kept"})
        old_port = int((tmp_path / "replset.json").read_text())
    with socket.socket() as squatter:  # another program took the remembered port meanwhile
        squatter.bind(("127.0.0.1", old_port))
        with shared_mongod(tmp_path) as second:
            assert second.started and f":{old_port}/" not in second.connection_string
            with MongoClient(second.connection_string, serverSelectionTimeoutMS=20_000) as client:
                assert client.chat.sessions.find_one({"_id": "kept"}) == {"_id": "kept"}
            assert (tmp_path / "replset.json").read_text() != str(old_port), "the new port is remembered"
