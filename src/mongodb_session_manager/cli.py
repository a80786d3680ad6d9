"""``mongodb-session-manager``: the demo, the Session Viewer and a local mongod from one command.

``demo`` starts (or reuses) a local mongod whose data lives in ``.demo-data/`` when no
``MONGODB_CONNECTION_STRING`` is set, creates realistic demo sessions with real agent loops, and
serves the Session Viewer (API and frontend on one port). Ctrl-C stops everything it started.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from . import defaults
from .embedded import default_data_dir, shared_mongod

logger = logging.getLogger(__name__)

CHECKOUT = Path(__file__).resolve().parents[2]
DEFAULT_DATABASE = defaults.DATABASE_NAME
DEFAULT_COLLECTION = defaults.COLLECTION_NAME
#: Demo metadata fields the viewer shows as dropdowns (override with ENUM_FIELDS_STR).
DEMO_ENUM_FIELDS = "metadata.status,metadata.priority,metadata.channel,metadata.case_type"


def _say(message: str = "") -> None:
    """The CLI talks to a person: plain lines on stdout, flushed (tests read them from a pipe)."""
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


@contextmanager
def mongodb(data_dir: Path | None) -> Iterator[str]:
    """The configured server, or the shared local mongod (reused if running, else started and stopped on exit).

    Its address is printed, so a user can point their own code (or ``mongosh``) at the same server.
    """
    external = os.environ.get("MONGODB_CONNECTION_STRING")
    if external:
        _say("Using MONGODB_CONNECTION_STRING from the environment.")
        yield external
        return
    target = data_dir or default_data_dir()
    _say(f"Local mongod: data in {target} ...")
    started = False
    try:
        with shared_mongod(target) as server:
            started = server.started
            how = "started" if started else "already running, reused"
            _say(f"MONGODB_CONNECTION_STRING={server.connection_string}  ({how})")
            yield server.connection_string
    finally:
        if started:
            _say("Local mongod stopped.")


VIEWER_EXTRA_MISSING = (
    "The Session Viewer needs its dependencies: pip install 'mongodb-session-manager[viewer]' ({error})"
)


def _viewer_modules() -> tuple[Any, Any]:
    """``(Settings, create_app)`` of the installed ``session_viewer`` package (shipped in the wheel)."""
    try:
        from session_viewer.backend.config import Settings
        from session_viewer.backend.main import create_app
    except ImportError as exc:  # fastapi / uvicorn / pydantic-settings: the `viewer` extra
        raise SystemExit(VIEWER_EXTRA_MISSING.format(error=exc)) from exc
    return Settings, create_app


def _viewer_app(connection_string: str, database: str, collection: str, password: str) -> Any:
    settings_class, create_app = _viewer_modules()
    settings = settings_class(
        mongodb_connection_string=connection_string,
        database_name=database,
        collection_name=collection,
        backend_password=password,
        serve_frontend=True,
        allow_weak_password=True,  # the demo is local: whatever BACKEND_PASSWORD the user picked is accepted
        enum_fields_str=os.environ.get("ENUM_FIELDS_STR", DEMO_ENUM_FIELDS),
    )
    return create_app(settings)


def _serve(app: Any, host: str, port: int) -> None:
    import uvicorn

    # proxy_headers=False: uvicorn would otherwise believe X-Forwarded-For from loopback, and a client
    # could rotate addresses past the login lockout. The viewer reads it only from TRUSTED_PROXIES_STR.
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on", proxy_headers=False)
    server = uvicorn.Server(config)
    server.run()


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import seed_demo_sessions

    database = os.environ.get("DATABASE_NAME", DEFAULT_DATABASE)
    collection = os.environ.get("COLLECTION_NAME", DEFAULT_COLLECTION)
    with mongodb(args.data_dir) as uri:
        if not args.no_seed:
            _say("Creating demo sessions with real agent loops ...")
            created = seed_demo_sessions(uri, database_name=database, collection_name=collection)
            _say(f"{len(created)} new demo sessions in {database}.{collection} (DATABASE_NAME, COLLECTION_NAME).")
        return _run_viewer(args, uri, database, collection)


def cmd_viewer(args: argparse.Namespace) -> int:
    """Serve the viewer configured by flags, environment variables or ``.env`` (``--help`` lists them).

    Without a configured MongoDB (no ``--mongodb-connection-string``, no ``MONGODB_CONNECTION_STRING``)
    it uses the shared local mongod, as the demo does.
    """
    _viewer_modules()
    from session_viewer.backend.settings_cli import settings_from_args

    try:  # a bad setting (weak password, "*" origin, ...) is a one-line message, not a traceback
        settings = settings_from_args(args, serve_frontend=True)
    except ValueError as exc:
        raise SystemExit(f"mongodb-session-manager viewer: {exc}") from exc
    if "mongodb_connection_string" in settings.model_fields_set:
        return _serve_viewer(settings)
    with mongodb(args.data_dir) as uri:
        return _serve_viewer(settings.model_copy(update={"mongodb_connection_string": uri}))


def _serve_viewer(settings: Any) -> int:
    _settings_class, create_app = _viewer_modules()
    try:
        app = create_app(settings)  # prints a generated password; a configured one is never printed
    except ValueError as exc:
        raise SystemExit(f"mongodb-session-manager viewer: {exc}") from exc
    _say("")
    _say(f"Session Viewer: http://{settings.backend_host}:{settings.backend_port}/")
    _say(f"Database:       {settings.database_name}.{settings.collection_name}")
    _say("Press Ctrl-C to stop.")
    _serve(app, settings.backend_host, settings.backend_port)
    return 0


def _run_viewer(args: argparse.Namespace, uri: str, database: str, collection: str) -> int:
    password = os.environ.get("BACKEND_PASSWORD") or secrets.token_urlsafe(18)
    app = _viewer_app(uri, database, collection, password)
    url = f"http://{args.host}:{args.port}/"
    _say("")
    _say(f"Session Viewer: {url}")
    _say(f"Password:       {password}")
    _say("Press Ctrl-C to stop.")
    _serve(app, args.host, args.port)
    return 0


def cmd_mongod(args: argparse.Namespace) -> int:
    with mongodb(args.data_dir):
        _say("Press Ctrl-C to stop.")
        with suppress(KeyboardInterrupt):
            signal.pause()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mongodb-session-manager", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func, help_text in (
        ("demo", cmd_demo, "create demo sessions and serve the Session Viewer"),
        ("viewer", cmd_viewer, "serve the Session Viewer"),
        ("mongod", cmd_mongod, "run the local mongod and print its connection string"),
    ):
        cmd = sub.add_parser(name, help=help_text)
        cmd.set_defaults(func=func)
        cmd.add_argument("--data-dir", type=Path, default=None, help="where the local mongod keeps its data")
        if name == "viewer":
            _add_viewer_settings(cmd)
        elif name != "mongod":
            cmd.add_argument("--host", default=os.environ.get("BACKEND_HOST", "127.0.0.1"))
            cmd.add_argument("--port", type=int, default=int(os.environ.get("BACKEND_PORT", "8882")))
        if name == "demo":
            cmd.add_argument("--no-seed", action="store_true", help="do not create demo sessions")
    from .cli_migrate import add_migrate_command

    add_migrate_command(sub)
    from .cli_lifecycle import add_lifecycle_commands

    add_lifecycle_commands(sub)
    return parser


def _add_viewer_settings(cmd: argparse.ArgumentParser) -> None:
    """Every viewer setting as a flag (generated from its settings model), when the extra is installed."""
    try:
        from session_viewer.backend.settings_cli import add_settings_arguments
    except ImportError:
        cmd.description = VIEWER_EXTRA_MISSING.format(error="not installed")
        return
    add_settings_arguments(cmd)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "WARNING"), format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    # SIGTERM (from a test or a process manager) unwinds like Ctrl-C, so the local mongod is stopped.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
