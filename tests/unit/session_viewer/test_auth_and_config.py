"""Password comparison, the failed-attempt limiter, and settings from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from session_viewer.backend.auth import FailedAttemptLimiter, generate_password, passwords_match
from session_viewer.backend.config import Settings
from session_viewer.backend.main import create_app


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_passwords_match_exactly_and_never_on_empty() -> None:
    assert passwords_match("s3cret", "s3cret")
    assert passwords_match("pässwörd", "pässwörd")
    assert not passwords_match("s3cret", "s3cret ")
    assert not passwords_match("", "")
    assert not passwords_match(None, "x")
    assert not passwords_match("x", None)
    assert not passwords_match("\ud800", "x")  # lone surrogates from a header do not crash the check


def test_limiter_blocks_after_max_failures_until_the_window_slides() -> None:
    clock = FakeClock()
    limiter = FailedAttemptLimiter(3, 60, clock=clock)
    for _ in range(2):
        limiter.record_failure("1.2.3.4")
        clock.now += 10
    assert limiter.retry_after("1.2.3.4") is None
    limiter.record_failure("1.2.3.4")  # failures at t=1000, 1010, 1020
    assert limiter.retry_after("1.2.3.4") == 40  # the first ages out at t=1060
    assert limiter.retry_after("5.6.7.8") is None  # per client
    clock.now = 1059
    assert limiter.retry_after("1.2.3.4") == 1
    clock.now = 1060
    assert limiter.retry_after("1.2.3.4") is None
    assert limiter.failures("1.2.3.4") == 2
    clock.now = 2000
    assert limiter.failures("1.2.3.4") == 0


def test_limiter_memory_is_bounded() -> None:
    limiter = FailedAttemptLimiter(1, 60, clock=FakeClock(), max_clients=100)
    for n in range(1000):
        limiter.record_failure(f"10.0.{n // 256}.{n % 256}")
    assert len(limiter._failures) == 100
    assert limiter.retry_after("10.0.3.231") is not None  # the most recent are kept


def test_generated_passwords_are_random_and_long() -> None:
    first, second = generate_password(), generate_password()
    assert first != second and len(first) >= 24


def test_settings_read_the_documented_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "MONGODB_CONNECTION_STRING": "mongodb://127.0.0.1:1",
        "DATABASE_NAME": "db",
        "COLLECTION_NAME": "col",
        "BACKEND_PASSWORD": "pw",
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
    configured = create_app(Settings(_env_file=None, backend_password="chosen"))  # type: ignore[call-arg]
    assert configured.state.viewer.password == "chosen"
    assert capsys.readouterr().err == ""


def test_serving_a_frontend_folder_without_index_html_fails_at_start(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, backend_password="x", serve_frontend=True, frontend_dir=tmp_path)  # type: ignore[call-arg]
    with pytest.raises(RuntimeError, match=r"no index\.html"):
        create_app(settings)
