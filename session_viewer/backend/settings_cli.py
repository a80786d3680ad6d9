"""Every :class:`~.config.Settings` field as a command-line flag, for ``mongodb-session-manager viewer``.

The flags are generated from the settings model, so ``--help`` can never drift from what the
backend reads: each flag names its environment variable and shows its default. Precedence is
flag, then environment variable, then ``.env`` file, then default (a flag is passed to
``Settings`` as an init value, which pydantic-settings ranks above every other source).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from .config import Settings

#: Short spellings kept from earlier versions of the CLI.
ALIASES = {"backend_host": ["--host"], "backend_port": ["--port"]}
#: The CLI always serves the frontend itself (one port for the whole viewer).
FIXED = {"serve_frontend"}
#: Never show a secret default (there is none, but a .env must not leak into --help either).
SECRET = {"backend_password"}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _describe_default(name: str, default: Any) -> str:
    if name in SECRET:
        return "none: a random one is generated and printed"
    if isinstance(default, SecretStr):
        return "none"
    if default == "" or default is None:
        return "empty"
    return str(default)


def _parse_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    """One ``--<setting>`` flag per setting, all defaulting to "not given" (None)."""
    group = parser.add_argument_group(
        "settings", "each flag overrides its environment variable (or .env entry); shown: ENV, default"
    )
    for name, field in Settings.model_fields.items():
        if name in FIXED:
            continue
        annotation = field.annotation
        kind: Any = str
        metavar = "TEXT"
        if annotation is int:
            kind, metavar = int, "N"
        elif annotation is bool:
            kind, metavar = _parse_bool, "true|false"
        elif annotation is Path:
            kind, metavar = Path, "DIR"
        description = (field.description or "").rstrip(".")
        text = f"{name.upper()}; default: {_describe_default(name, field.default)}"
        group.add_argument(
            _flag(name),
            *ALIASES.get(name, []),
            dest=f"setting_{name}",
            type=kind,
            default=None,
            metavar=metavar,
            help=f"{description} ({text})" if description else text,
        )


def given_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given as flags (only those: the rest come from the environment or defaults)."""
    values: dict[str, Any] = {}
    for name in Settings.model_fields:
        value = getattr(args, f"setting_{name}", None)
        if value is not None:
            values[name] = value
    return values


def settings_from_args(args: argparse.Namespace, **overrides: Any) -> Settings:
    return Settings(**{**given_settings(args), **overrides})
