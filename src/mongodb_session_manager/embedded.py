"""A real, local ``mongod`` for the quick start, the demo, the examples, the tests and the benchmarks.

The project never relies on a system MongoDB. This module is the stable entry point and keeps
every public name it always had; the work is split by concern:

* :mod:`mongodb_session_manager.embedded_install`: installing the pinned binary (``install``,
  ``ensure_installed``, ``MongodInstallation``, ``default_home``).
* :mod:`mongodb_session_manager.embedded_run`: running it (``MongoReplicaSet``, ``running_mongod``)
  and the one shared local server (``local_mongodb``, ``shared_mongod``, ``default_data_dir``).

Command line: ``python -m mongodb_session_manager.embedded install|start|version``.
"""

from __future__ import annotations

import contextlib
import logging
import signal
from pathlib import Path

from .embedded_install import (
    MONGOD_VERSION,
    MONGOD_WHEEL,
    SSL_FALLBACK_WHEEL,
    SSL_LIBRARIES,
    EmbeddedMongoError,
    MongodInstallation,
    checkout_dir,
    default_home,
    ensure_installed,
    install,
    security_mirror_from_sources,
)
from .embedded_run import (
    DATA_DIR_ENV,
    LocalMongod,
    MongodMember,
    MongoReplicaSet,
    default_data_dir,
    free_port,
    local_mongodb,
    running_mongod,
    running_server,
    shared_mongod,
)

__all__ = [
    "DATA_DIR_ENV",
    "MONGOD_VERSION",
    "MONGOD_WHEEL",
    "SSL_FALLBACK_WHEEL",
    "SSL_LIBRARIES",
    "EmbeddedMongoError",
    "LocalMongod",
    "MongoReplicaSet",
    "MongodInstallation",
    "MongodMember",
    "checkout_dir",
    "default_data_dir",
    "default_home",
    "ensure_installed",
    "free_port",
    "install",
    "local_mongodb",
    "main",
    "running_mongod",
    "running_server",
    "security_mirror_from_sources",
    "shared_mongod",
]


def main(argv: list[str] | None = None) -> int:
    """``install`` (idempotent), ``version``, or ``start``: the shared local server until Ctrl-C/SIGTERM."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m mongodb_session_manager.embedded")
    parser.add_argument("command", choices=["install", "version", "start"])
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--dbpath", type=Path, default=None, help="data folder (default: the shared data dir)")
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
        # The suppression wraps the whole block: a signal that lands right after the line is printed,
        # before the pause, must end the command as cleanly as one during it (mongod stopped, exit 0).
        with contextlib.suppress(KeyboardInterrupt), shared_mongod(args.dbpath) as server:
            print(f"MONGODB_CONNECTION_STRING={server.connection_string}", flush=True)
            signal.pause()
    return 0


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    raise SystemExit(main())
