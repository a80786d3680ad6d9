"""Password comparison and strength, client keys, the lockout window, and settings from the environment."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from session_viewer.backend import lockout
from session_viewer.backend.access import WeakPasswordError
from session_viewer.backend.auth import (
    client_key,
    device_key,
    generate_password,
    new_device_token,
    password_problem,
    passwords_match,
    verify_device_token,
)
from session_viewer.backend.config import Settings
from session_viewer.backend.main import create_app


def test_passwords_match_exactly_and_never_on_empty() -> None:
    assert passwords_match("s3cret", "s3cret")
    assert passwords_match("pässwörd", "pässwörd")
    assert not passwords_match("s3cret", "s3cret ")
    assert not passwords_match("", "")
    assert not passwords_match(None, "x")
    assert not passwords_match("x", None)
    assert not passwords_match("\ud800", "x")  # lone surrogates from a header do not crash the check


def test_lockout_window_frees_when_its_oldest_counting_failure_ages_out() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    newest_first = [now - timedelta(seconds=s) for s in (0, 10, 20)]
    assert lockout.retry_after(newest_first[:2], 3, 60, now) is None
    assert lockout.retry_after(newest_first, 3, 60, now) == 40  # the failure 20 s ago ages out in 40 s
    assert lockout.retry_after(newest_first, 3, 60, now + timedelta(seconds=39.5)) == 1
    document = lockout.failure_document("1.2.3.4", now, 60)
    assert document == {"key": "1.2.3.4", "at": now, "expires_at": now + timedelta(seconds=60)}
    assert lockout.recent_failures_filter("1.2.3.4", now, 60) == {
        "key": "1.2.3.4",
        "at": {"$gt": now - timedelta(seconds=60)},
    }


PROXY = [ipaddress.ip_network("10.0.0.0/8")]


def test_forwarded_headers_are_ignored_unless_the_peer_is_a_configured_proxy() -> None:
    assert client_key("203.0.113.7", "198.51.100.1", []) == "203.0.113.7"
    assert client_key("127.0.0.1", "198.51.100.1", []) == "127.0.0.1"  # loopback is not trusted by default
    assert client_key("203.0.113.7", "198.51.100.1", PROXY) == "203.0.113.7"  # not from the proxy
    assert client_key("10.1.2.3", "198.51.100.1", PROXY) == "198.51.100.1"
    # Left of the first untrusted hop is whatever the client wrote: never believed.
    assert client_key("10.1.2.3", "6.6.6.6, 198.51.100.1, 10.9.9.9", PROXY) == "198.51.100.1"
    assert client_key("10.1.2.3", "garbage", PROXY) == "10.1.2.3"
    assert client_key("10.1.2.3", None, PROXY) == "10.1.2.3"


def test_ipv6_clients_are_counted_per_64_and_mapped_ipv4_as_ipv4() -> None:
    assert client_key("2001:db8:1:2:aaaa::1", None, []) == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:2:bbbb::9", None, []) == "2001:db8:1:2::/64"
    assert client_key("::ffff:198.51.100.4", None, []) == "198.51.100.4"
    assert client_key(None, None, []) == "peer:unknown"


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("123456", "shorter"),
        ("short pass", "shorter"),
        ("123456789012", "common"),
        ("Password1234", "common"),
        ("pass-word-pass-word", "common"),
        ("aaaaaaaaaaaa", "common"),
        ("aaaaaaaaaaaaaaaa", "repeated"),
        ("abcabcabcabcabc", "repeated"),
        ("zzzzyyyyzzzzyyyy", "repeated"),
    ],
)
def test_weak_passwords_are_refused_with_the_reason(password: str, problem: str) -> None:
    found = password_problem(password)
    assert found is not None and problem in found


def test_strong_passwords_pass() -> None:
    assert password_problem("e2e viewer password") is None
    assert password_problem(generate_password()) is None


def test_a_weak_configured_password_stops_the_app_unless_explicitly_allowed() -> None:
    with pytest.raises(WeakPasswordError, match="ALLOW_WEAK_PASSWORD"):
        create_app(Settings(_env_file=None, backend_password="123456"))  # type: ignore[call-arg]
    app = create_app(Settings(_env_file=None, backend_password="123456", allow_weak_password=True))  # type: ignore[call-arg]
    assert app.state.viewer.password == "123456"


@pytest.mark.parametrize("origins", ["*", "http://a.example,*", "https://*.example.com"])
def test_wildcard_origins_are_refused_because_credential_headers_are_used(origins: str) -> None:
    with pytest.raises(ValidationError, match="password headers"):
        Settings(_env_file=None, allowed_origins_str=origins)  # type: ignore[call-arg]


def test_trusted_proxies_must_be_addresses_or_networks() -> None:
    settings = Settings(_env_file=None, trusted_proxies_str="10.0.0.0/8, 192.0.2.1, ::1")  # type: ignore[call-arg]
    assert [str(n) for n in settings.trusted_proxies] == ["10.0.0.0/8", "192.0.2.1/32", "::1/128"]
    with pytest.raises(ValidationError, match="not an IP address"):
        Settings(_env_file=None, trusted_proxies_str="proxy.example")  # type: ignore[call-arg]


def test_generated_passwords_are_random_and_long() -> None:
    first, second = generate_password(), generate_password()
    assert first != second and len(first) >= 24


def test_settings_read_the_documented_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "MONGODB_CONNECTION_STRING": "mongodb://127.0.0.1:1",
        "DATABASE_NAME": "db",
        "COLLECTION_NAME": "col",
        "BACKEND_PASSWORD": "pw",
        "TRUSTED_PROXIES_STR": "10.0.0.0/8",
        "QUERY_MAX_TIME_MS": "1234",
        "ALLOW_WEAK_PASSWORD": "true",
        "BACKEND_HOST": "0.0.0.0",
        "BACKEND_PORT": "9999",
        "ALLOWED_ORIGINS_STR": "http://a.example, http://b.example,,",
        "MAX_POOL_SIZE": "7",
        "MIN_POOL_SIZE": "1",
        "DEFAULT_PAGE_SIZE": "500",
        "MAX_PAGE_SIZE": "50",
        "ENUM_FIELDS_STR": "status, metadata.priority,session_type",
        "ENUM_MAX_VALUES": "9",
        "LOG_LEVEL": "debug",
        "SERVE_FRONTEND": "true",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.database_name == "db" and settings.collection_name == "col"
    assert settings.backend_password.get_secret_value() == "pw"
    assert "pw" not in repr(settings)  # a SecretStr: never printed by accident
    assert (settings.backend_host, settings.backend_port) == ("0.0.0.0", 9999)
    assert settings.allowed_origins == ["http://a.example", "http://b.example"]
    assert (settings.max_pool_size, settings.min_pool_size) == (7, 1)
    assert settings.page_size == 50  # a default above the maximum does not lift the cap
    assert settings.enum_fields == ["metadata.status", "metadata.priority", "session_type"]
    assert settings.enum_max_values == 9
    assert settings.log_level == "DEBUG"
    assert settings.serve_frontend is True
    assert [str(n) for n in settings.trusted_proxies] == ["10.0.0.0/8"]
    assert settings.query_max_time_ms == 1234 and settings.allow_weak_password is True


def test_settings_read_a_dotenv_file(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("DATABASE_NAME=from_file\nBACKEND_PORT=8899\n")
    settings = Settings(_env_file=env_file)  # type: ignore[call-arg]
    assert settings.database_name == "from_file" and settings.backend_port == 8899


def test_no_password_configured_means_a_random_one_printed_once(capsys: pytest.CaptureFixture[str]) -> None:
    first = create_app(Settings(_env_file=None, backend_password=""))  # type: ignore[call-arg]
    second = create_app(Settings(_env_file=None, backend_password=""))  # type: ignore[call-arg]
    printed = capsys.readouterr().err.strip().splitlines()
    generated = [first.state.viewer.password, second.state.viewer.password]
    assert generated[0] != generated[1]
    assert len(printed) == 2
    for line, password in zip(printed, generated, strict=True):
        assert line.endswith(password)
    configured = create_app(Settings(_env_file=None, backend_password="a chosen passphrase"))  # type: ignore[call-arg]
    assert configured.state.viewer.password == "a chosen passphrase"
    assert capsys.readouterr().err == ""


def test_serving_a_frontend_folder_without_index_html_fails_at_start(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None, backend_password="x", allow_weak_password=True, serve_frontend=True, frontend_dir=tmp_path
    )  # type: ignore[call-arg]
    with pytest.raises(RuntimeError, match=r"no index\.html"):
        create_app(settings)


def test_device_tokens_are_signed_by_the_password_and_unforgeable() -> None:
    key = device_key("a long viewer password")
    token = new_device_token(key)
    device_id = verify_device_token(key, token)
    assert device_id is not None and token.startswith(device_id) and new_device_token(key) != token
    assert verify_device_token(device_key("another long password"), token) is None
    tampered = token[:-1] + ("0" if token[-1] != "0" else "1")
    for bad in (None, "", tampered, token + ".x", "z" * 24 + "." + token.split(".")[1], "x" * 200):
        assert verify_device_token(key, bad) is None


def test_the_demo_accepts_whatever_password_the_user_chose() -> None:
    from mongodb_session_manager.cli import _viewer_app

    app = _viewer_app("mongodb://127.0.0.1:1", "db", "sessions", "demo")
    assert app.state.viewer.password == "demo"
