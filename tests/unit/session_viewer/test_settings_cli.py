"""Every setting is a flag of ``mongodb-session-manager viewer``; a flag wins over the environment."""

from __future__ import annotations

import argparse

import pytest

from session_viewer.backend.config import Settings
from session_viewer.backend.settings_cli import add_settings_arguments, given_settings, settings_from_args


def parser() -> argparse.ArgumentParser:
    built = argparse.ArgumentParser(prog="viewer")
    add_settings_arguments(built)
    return built


def test_every_setting_has_a_flag_naming_its_variable_and_default() -> None:
    text = " ".join(parser().format_help().split())
    for name in Settings.model_fields:
        if name == "serve_frontend":
            continue  # the CLI always serves the frontend
        assert "--" + name.replace("_", "-") in text
        assert f"{name.upper()}; default:" in text
    assert "default: none: a random one is generated" in text  # never a secret in --help


def test_flags_win_over_the_environment_and_unset_flags_leave_it_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_NAME", "from_env")
    monkeypatch.setenv("COLLECTION_NAME", "env_collection")
    args = parser().parse_args(["--database-name", "from_flag", "--port", "9001", "--allow-weak-password", "yes"])
    assert given_settings(args) == {"database_name": "from_flag", "backend_port": 9001, "allow_weak_password": True}
    settings = settings_from_args(args, serve_frontend=True, _env_file=None)
    assert settings.database_name == "from_flag" and settings.collection_name == "env_collection"
    assert settings.backend_port == 9001 and settings.serve_frontend is True


def test_a_bad_boolean_is_refused_by_the_parser() -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(["--allow-weak-password", "maybe"])
