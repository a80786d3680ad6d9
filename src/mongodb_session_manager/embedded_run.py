"""Running the project's own ``mongod``: replica sets on 127.0.0.1, and one shared local server.

* :class:`MongoReplicaSet`: starts one or more ``mongod`` processes on 127.0.0.1 (free ports, a
  temporary or given dbpath), initiates them as a replica set, waits for a primary and stops every
  process it started. Tests, reliability checks and benchmarks use it for throw-away servers.
* :func:`shared_mongod` / :func:`local_mongodb`: the *one* local server a user works with. The demo,
  the playground, the examples and the README's quick start all keep their data in
  :func:`default_data_dir` (``.demo-data/mongod`` in a checkout, ``$MSM_DATA_DIR`` to move it), so
  sessions written by one show up in the others. Whoever finds that server already running reuses
  it; whoever starts it stops it on exit. A file lock serialises the check-then-start, so two
  programs started together never race for the same dbpath.

The binary comes from :mod:`mongodb_session_manager.embedded_install`.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import logging
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .embedded_install import EmbeddedMongoError, MongodInstallation, checkout_dir, ensure_installed

logger = logging.getLogger(__name__)

DATA_DIR_ENV = "MSM_DATA_DIR"
REPLICA_SET_NAME = "rs0"


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class MongodMember:
    """One running mongod process of a replica set."""

    port: int
    dbpath: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class MongoReplicaSet:
    """One or more local ``mongod`` processes initiated as a replica set on 127.0.0.1.

    Use as a context manager, or call :meth:`start` and :meth:`stop`. A ``dbpath`` keeps data
    between runs (the demo); without it a temporary folder is used and removed on stop.
    """

    members: int = 1
    name: str = "rs0"
    dbpath: Path | None = None
    port: int | None = None
    cache_size_gb: float = 0.25
    installation: MongodInstallation | None = None
    #: Linux only: the kernel sends mongod SIGTERM when the thread that started it dies, even by SIGKILL,
    #: so a long-running owner (the demo, the playground) can never leave an orphan server behind.
    die_with_parent: bool = False
    _members: list[MongodMember] = field(default_factory=list, init=False)
    _tmpdir: tempfile.TemporaryDirectory[str] | None = field(default=None, init=False)
    _ports_moved: bool = field(default=False, init=False)

    # ---- public -------------------------------------------------------------------------------

    @property
    def connection_string(self) -> str:
        """URI with every member and the set name, for the normal replica-set discovery."""
        hosts = ",".join(m.host for m in self._members)
        return f"mongodb://{hosts}/?replicaSet={self.name}"

    @property
    def member_processes(self) -> list[MongodMember]:
        return list(self._members)

    def start(self, timeout: float = 60.0) -> MongoReplicaSet:
        self.installation = self.installation or ensure_installed()
        root = self.dbpath
        if root is None:
            self._tmpdir = tempfile.TemporaryDirectory(prefix="msm-mongod-")
            root = Path(self._tmpdir.name)
        root.mkdir(parents=True, exist_ok=True)
        reuse = (root / "replset.json").is_file()
        for index in range(self.members):
            port = self.port + index if self.port else free_port()
            path = root / f"member{index}"
            path.mkdir(exist_ok=True)
            self._members.append(MongodMember(port=port, dbpath=path))
        if reuse:
            self._restore_ports(root)
        try:
            for member in self._members:
                self.start_member(member)
            self._initiate(timeout, reconfigure=reuse)
            (root / "replset.json").write_text(",".join(str(m.port) for m in self._members))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every process this object started (SIGTERM, then SIGKILL after a grace period)."""
        for member in self._members:
            self.stop_member(member)
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    def start_member(self, member: MongodMember, wait: float = 30.0) -> None:
        """(Re)start one member on its own port and dbpath, and wait until it accepts connections."""
        assert self.installation is not None
        log = member.dbpath / "mongod.log"
        cmd = [
            str(self.installation.mongod),
            "--replSet", self.name,
            "--bind_ip", "127.0.0.1",
            "--port", str(member.port),
            "--dbpath", str(member.dbpath),
            "--logpath", str(log),
            "--logappend",
            "--wiredTigerCacheSizeGB", str(self.cache_size_gb),
            "--setParameter", "diagnosticDataCollectionEnabled=false",
            # A signalled primary would wait up to 15 s for secondaries before exiting; our sets are
            # local and disposable, so shut down at once (still a clean shutdown with a checkpoint).
            "--setParameter", "shutdownTimeoutMillisForSignaledShutdown=0",
        ]  # fmt: skip
        member.process = subprocess.Popen(
            cmd,
            env=self.installation.env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=_terminate_with_parent() if self.die_with_parent else None,
        )
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if member.process.poll() is not None:
                err = (member.process.stderr.read() if member.process.stderr else b"").decode()[-500:]
                tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
                raise EmbeddedMongoError(f"mongod on port {member.port} exited: {err} {tail}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", member.port), 0.5):
                return
            time.sleep(0.1)
        self.stop_member(member)
        raise EmbeddedMongoError(f"mongod on port {member.port} did not accept connections in {wait}s")

    def stop_member(self, member: MongodMember, grace: float = 20.0) -> None:
        proc = member.process
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        if proc.stderr:
            proc.stderr.close()
        member.process = None

    def wait_for_primary(self, timeout: float = 60.0) -> str:
        """Block until some member is a writable primary; return its host."""
        from pymongo import MongoClient
        from pymongo.errors import PyMongoError

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for member in self._members:
                if not member.running:
                    continue
                try:
                    with MongoClient(member.host, directConnection=True, serverSelectionTimeoutMS=1000) as c:
                        hello = c.admin.command("hello")
                        if hello.get("isWritablePrimary"):
                            return member.host
                except PyMongoError:
                    pass
            time.sleep(0.2)
        raise EmbeddedMongoError(f"no primary elected within {timeout}s")

    def __enter__(self) -> MongoReplicaSet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- internals ----------------------------------------------------------------------------

    def _restore_ports(self, root: Path) -> None:
        """A kept dbpath remembers its member ports; reuse them so the stored config stays valid.

        A remembered port that something else took meanwhile (after a reboot, say) is replaced by the
        free one already chosen, and :meth:`_initiate` then rewrites the stored config to match.
        """
        ports = (root / "replset.json").read_text().strip().split(",")
        for member, port in zip(self._members, ports, strict=False):
            if self.port or not port.isdigit():
                continue
            if _port_is_free(int(port)):
                member.port = int(port)
            else:
                logger.warning("port %s of %s is taken; moving that member to port %s", port, root, member.port)
                self._ports_moved = True

    def _initiate(self, timeout: float, reconfigure: bool) -> None:
        from pymongo import MongoClient
        from pymongo.errors import OperationFailure

        first = self._members[0]
        config = {
            "_id": self.name,
            "members": [
                {"_id": i, "host": m.host, "priority": 2 if i == 0 else 1} for i, m in enumerate(self._members)
            ],
        }
        with MongoClient(first.host, directConnection=True, serverSelectionTimeoutMS=10000) as client:
            if self._ports_moved:  # initiated before, on ports something else holds now
                self._rewrite_hosts(client, timeout)
            else:
                try:
                    client.admin.command("replSetInitiate", config)
                except OperationFailure as exc:
                    if exc.code != 23:  # AlreadyInitialized: a kept dbpath
                        raise EmbeddedMongoError(f"replSetInitiate failed: {exc}") from exc
        self.wait_for_primary(timeout)

    def _rewrite_hosts(self, client: Any, timeout: float = 30.0) -> None:
        """Point the stored replica-set config at the members' current ports (a forced reconfig).

        The member closes every connection on its way to REMOVED (its config does not name it) and
        again while it takes the new config on, so each step is retried until the stored hosts match.
        """
        from pymongo.errors import AutoReconnect, OperationFailure

        wanted = [m.host for m in self._members]
        deadline = time.monotonic() + timeout
        while True:
            try:
                config = client.admin.command("replSetGetConfig")["config"]
                if [entry["host"] for entry in config["members"]] == wanted:
                    return
                for host, entry in zip(wanted, config["members"], strict=False):
                    entry["host"] = host
                config["version"] = int(config.get("version", 1)) + 1
                client.admin.command("replSetReconfig", config, force=True)
            except (AutoReconnect, OperationFailure) as exc:
                # 94 NotYetInitialized: the member is still loading its stored config at start-up.
                retryable = isinstance(exc, AutoReconnect) or exc.code == 94
                if not retryable or time.monotonic() > deadline:
                    raise EmbeddedMongoError(f"could not move the replica set to new ports: {exc}") from exc
                logger.info("replica set not ready to move yet (%s); retrying", exc)
                time.sleep(0.2)


@contextlib.contextmanager
def running_mongod(members: int = 1, dbpath: Path | None = None) -> Iterator[MongoReplicaSet]:
    """Context manager: a started replica set that is stopped on exit (or with its owner, see ``die_with_parent``)."""
    rs = MongoReplicaSet(members=members, dbpath=dbpath, die_with_parent=_in_main_thread())
    rs.start()
    try:
        yield rs
    finally:
        rs.stop()


# ---- the shared local server ------------------------------------------------------------------------


def default_data_dir() -> Path:
    """Where the shared local mongod keeps its data: ``$MSM_DATA_DIR``, the checkout's
    ``.demo-data/mongod`` (git-ignored), or ``$XDG_DATA_HOME/mongodb-session-manager/mongod``.

    One folder for the demo, the playground, the examples and the quick start, so a session created
    by any of them is visible in the Session Viewer that ``make demo`` serves.
    """
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser().resolve()
    checkout = checkout_dir()
    if checkout is not None:
        return checkout / ".demo-data" / "mongod"
    data = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return data / "mongodb-session-manager" / "mongod"


@dataclass(frozen=True)
class LocalMongod:
    """The shared local server as one user of it sees it."""

    connection_string: str
    data_dir: Path
    #: True when this process started the server (and so stops it when its block ends).
    started: bool


def running_server(data_dir: Path) -> str | None:
    """Connection string of a mongod already serving ``data_dir``, or None.

    The ports come from the ``replset.json`` a previous start wrote; a server only counts when it
    reports this very dbpath (``getCmdLineOpts``), so an unrelated mongod on a recycled port is
    never mistaken for ours.
    """
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    ports_file = data_dir / "replset.json"
    if not ports_file.is_file():
        return None
    expected = (data_dir / "member0").resolve()
    for port in ports_file.read_text().strip().split(","):
        if not port.isdigit():
            continue
        try:
            with MongoClient(f"127.0.0.1:{port}", directConnection=True, serverSelectionTimeoutMS=1000) as client:
                parsed = client.admin.command("getCmdLineOpts").get("parsed", {})
        except PyMongoError:
            continue
        dbpath = parsed.get("storage", {}).get("dbPath")
        if dbpath and Path(dbpath).resolve() == expected:
            name = parsed.get("replication", {}).get("replSet", REPLICA_SET_NAME)
            return f"mongodb://127.0.0.1:{port}/?replicaSet={name}"
    return None


@contextlib.contextmanager
def _exclusive(data_dir: Path) -> Iterator[None]:
    """Hold an advisory lock on ``data_dir`` (released by the kernel even if this process dies)."""
    with open(data_dir / ".start.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def shared_mongod(data_dir: Path | None = None) -> Iterator[LocalMongod]:
    """Reuse the local mongod serving ``data_dir`` (default :func:`default_data_dir`), or start it.

    A server this call started is stopped when the block ends (also on an exception or, in programs
    that turn SIGTERM into an exception like the CLI does, on SIGTERM); a reused one is left to its
    owner. Installs mongod first if needed.
    """
    root = (data_dir or default_data_dir()).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    started: MongoReplicaSet | None = None
    with _exclusive(root):
        uri = running_server(root)
        if uri is None:
            started = MongoReplicaSet(dbpath=root, die_with_parent=_in_main_thread())
            started.start()
            uri = started.connection_string
            logger.info("started the local mongod at %s (data in %s)", uri, root)
        else:
            logger.info("reusing the local mongod at %s (data in %s)", uri, root)
    try:
        yield LocalMongod(connection_string=uri, data_dir=root, started=started is not None)
    finally:
        if started is not None:
            with _exclusive(root):  # nobody may decide to reuse it while it shuts down
                started.stop()


@contextlib.contextmanager
def local_mongodb(dbpath: Path | None = None, *, temporary: bool = False) -> Iterator[str]:
    """``MONGODB_CONNECTION_STRING`` when set, else the shared local mongod (reused or started).

    The quick start, the examples and the playground use this, so they run on a fresh checkout with
    no setup and all write where the demo's Session Viewer reads. ``temporary=True`` starts a private
    throw-away server instead (the benchmarks, which must not grow the shared data).
    """
    external = os.environ.get("MONGODB_CONNECTION_STRING")
    if external:
        yield external
        return
    if temporary:
        with running_mongod(dbpath=dbpath) as rs:
            yield rs.connection_string
        return
    with shared_mongod(dbpath) as server:
        yield server.connection_string


def _in_main_thread() -> bool:
    """The parent-death signal follows the *thread* that forked: only the main thread lives as long as us."""
    return threading.current_thread() is threading.main_thread()


def _terminate_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that asks the kernel for SIGTERM when the parent thread dies (Linux ``prctl``).

    libc is loaded here, in the parent: the child between fork and exec must not import anything.
    Returns None where ``prctl`` does not exist (the server is then stopped only by its owner).
    """
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def preexec() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM)

    return preexec
