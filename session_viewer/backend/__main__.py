"""``python -m session_viewer.backend [--reload]``: serve the API on BACKEND_HOST:BACKEND_PORT."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import uvicorn

from .config import Settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m session_viewer.backend", description=__doc__)
    parser.add_argument("--reload", action="store_true", help="restart when a source file changes")
    args = parser.parse_args(argv)
    settings = Settings()
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
    uvicorn.run(
        "session_viewer.backend.main:app",
        host=settings.backend_host,
        port=settings.backend_port,
        reload=args.reload,
        reload_dirs=[str(Path(__file__).resolve().parent)] if args.reload else None,
        log_level=settings.log_level.lower(),
        # Forwarded headers are the viewer's business (TRUSTED_PROXIES_STR), never uvicorn's loopback default.
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()
