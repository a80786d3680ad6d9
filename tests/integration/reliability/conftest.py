"""Fixtures for the reliability tests: private mongod processes this folder may stop and restart.

The session-wide server from ``tests/conftest.py`` is shared by every test, so outage and failover
tests never touch it; they start their own replica sets here and stop every process they started,
also when a test fails.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from mongodb_session_manager.embedded import MongoReplicaSet

logger = logging.getLogger(__name__)


def _skip_quiesce(rs: MongoReplicaSet) -> None:
    """Let members of a multi-node set exit on SIGTERM at once instead of quiescing for 15 s each.

    Replica-set members wait ``shutdownTimeoutMillisForSignaledShutdown`` (15 s) on SIGTERM so
    clients can drain; these throw-away sets have no clients left, and 45 s of teardown per test
    module is not worth keeping. A member that does not answer is simply stopped the slow way.
    """
    for member in rs.member_processes:
        if not member.running:
            continue
        try:
            with MongoClient(member.host, directConnection=True, serverSelectionTimeoutMS=5_000) as client:
                client.admin.command({"setParameter": 1, "shutdownTimeoutMillisForSignaledShutdown": 0})
        except PyMongoError as exc:
            logger.info("member=<%s> | could not shorten shutdown: %s", member.host, exc)


def _stop_all(rs: MongoReplicaSet) -> None:
    """Stop the set, then make sure no member process survived (a leaked mongod would hold its port)."""
    try:
        _skip_quiesce(rs)
        rs.stop()
    finally:
        for member in rs.member_processes:
            if member.process is not None and member.process.poll() is None:
                member.process.kill()
                member.process.wait(10)


@pytest.fixture(scope="module")
def single_node_rs() -> Iterator[MongoReplicaSet]:
    """A one-member replica set owned by the module, so tests may stop and restart its mongod."""
    rs = MongoReplicaSet(members=1)
    rs.start()
    try:
        yield rs
    finally:
        _stop_all(rs)


@pytest.fixture(scope="module")
def three_node_rs() -> Iterator[MongoReplicaSet]:
    """Three mongod processes on loopback, initiated as one replica set (for failover)."""
    rs = MongoReplicaSet(members=3)
    rs.start(timeout=120)
    try:
        yield rs
    finally:
        _stop_all(rs)


@pytest.fixture
def outage_rs(single_node_rs: MongoReplicaSet) -> Iterator[MongoReplicaSet]:
    """Hand out the single-node set; afterwards its member runs again and the test's data is gone.

    Restarting comes first, so a test that failed while mongod was stopped does not also make the
    clean-up wait for a server that is not there.
    """
    yield single_node_rs
    for member in single_node_rs.member_processes:
        if not member.running:
            single_node_rs.start_member(member)
    single_node_rs.wait_for_primary(timeout=120)
    with MongoClient(single_node_rs.connection_string, serverSelectionTimeoutMS=60_000) as client:
        for name in client.list_database_names():
            if name not in ("admin", "config", "local"):
                client.drop_database(name)
