"""The project's own mongod: installed, started as a replica set on loopback, stopped by PID.

These start their own short-lived servers (the session-wide one from ``tests/conftest.py`` is
shared) and check that every process they started is gone afterwards.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from mongodb_session_manager.embedded import (
    MONGOD_VERSION,
    MongoReplicaSet,
    ensure_installed,
    running_mongod,
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
