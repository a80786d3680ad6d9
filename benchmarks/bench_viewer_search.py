"""Benchmark: every Session Viewer list search through the HTTP API, at 10,000 and at N sessions.

Sessions are bulk-inserted (``mongodb_session_manager.synthetic``: small documents in the library's
shape) into one collection indexed by the library's ``ensure_indexes``; the viewer backend runs
under uvicorn on a loopback port in this process and each search is a real HTTP request with the
backend password. The collection is measured at ``--small`` sessions, then filled up to
``--sessions`` and measured again, so the two columns differ only in size.

Baseline (same run): ``GET /health``, the HTTP + framework floor of one request. The target
(issue 19): every search at most 50 ms median at a million sessions, and flat from 10,000 up
(large/small median ratio reported per search).

Run: uv run python benchmarks/bench_viewer_search.py [--sessions 1000000] [--small 10000] [--repeat 40]
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import uvicorn
from _common import Result, Stats, Target, emit, line, machine, measure, mongo_uri, quiet_logs, scratch_database
from pymongo import MongoClient

from mongodb_session_manager import synthetic
from mongodb_session_manager.embedded import free_port
from mongodb_session_manager.indexes import ensure_indexes
from session_viewer.backend.config import Settings
from session_viewer.backend.main import create_app

PASSWORD = "benchmark viewer password, long enough"
TARGET_MS = 50.0
FLAT_RATIO = 2.0


def searches(count: int) -> dict[str, dict[str, Any]]:
    """What the list UI can ask for, with date ranges in the middle of the data at this size."""
    middle = synthetic.created_at(count // 2)
    return {
        "default (newest first)": {},
        "sort by update": {"sort_by": "updated"},
        "sort by tokens": {"sort_by": "tokens"},
        "status filter": {"filters": json.dumps({"metadata.status": "escalated"})},
        "priority filter, by update": {"filters": json.dumps({"metadata.priority": "urgent"}), "sort_by": "updated"},
        "feedback down": {"feedback": "down"},
        "agent": {"agent_id": "billing"},
        "model": {"model": "model-large"},
        "application (1%)": {"application_name": "rare-app"},
        "created range (1 h)": {
            "created_from": middle.isoformat(),
            "created_to": (middle + timedelta(hours=1)).isoformat(),
        },
        "updated range (6 h), by update": {
            "updated_from": middle.isoformat(),
            "updated_to": (middle + timedelta(hours=6)).isoformat(),
            "sort_by": "updated",
        },
        "session id prefix": {"session_id": synthetic.session_id(count // 3)[:-1]},
        "page 2 (cursor)": {"_cursor_pages": 1},
        "page 50 (cursor)": {"_cursor_pages": 49},
        "status filter, page 10 (cursor)": {"filters": json.dumps({"metadata.status": "open"}), "_cursor_pages": 9},
    }


@contextmanager
def serve(settings: Settings) -> Iterator[str]:
    """The viewer on a free loopback port in a background thread (lifespan included)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the viewer did not start within 30 s")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def getter(base: str) -> Callable[[str, dict[str, Any]], dict[str, Any]]:
    def get(path: str, params: dict[str, Any]) -> dict[str, Any]:
        url = f"{base}{path}?{urllib.parse.urlencode(params)}" if params else f"{base}{path}"
        request = urllib.request.Request(url, headers={"X-Backend-Password": PASSWORD})
        with urllib.request.urlopen(request, timeout=60) as response:  # loopback only
            return json.loads(response.read())

    return get


def measure_searches(base: str, count: int, repeat: int) -> dict[str, Stats]:
    get = getter(base)
    results: dict[str, Stats] = {"baseline: GET /health": measure(lambda: get("/health", {}), repeat=repeat, warmup=5)}
    for name, spec in searches(count).items():
        params = {k: v for k, v in spec.items() if not k.startswith("_")}
        params["page_size"] = 20
        for _ in range(spec.get("_cursor_pages", 0)):  # walk to the page, untimed
            params["cursor"] = get("/api/v1/sessions/search", params)["next_cursor"]
        results[name] = measure(lambda p=dict(params): get("/api/v1/sessions/search", p), repeat=repeat, warmup=3)
    return results


def fill(client: MongoClient[Any], database: str, start: int, count: int) -> float:
    """Insert sessions ``start .. start + count - 1``; seconds taken."""
    collection = client[database]["sessions"]
    began = time.perf_counter()
    for batch in synthetic.session_documents(count, start=start, batch=10_000):
        collection.insert_many(batch, ordered=False)
    return time.perf_counter() - began


def run(uri: str, sessions: int, small: int, repeat: int) -> Result:
    result = Result("viewer_search", figures={"machine": machine(), "sessions": sessions, "small": small})
    with scratch_database(uri, "viewer") as database, MongoClient(uri) as client:
        ensure_indexes(client[database]["sessions"], ["metadata.status", "metadata.priority"])
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            mongodb_connection_string=uri,
            database_name=database,
            collection_name="sessions",
            backend_password=PASSWORD,
            min_pool_size=0,
            log_level="WARNING",
        )
        seconds = fill(client, database, 0, small)
        print(f"  inserted {small:,} sessions in {seconds:.1f} s")
        with serve(settings) as base:
            at_small = measure_searches(base, small, repeat)
        seconds = fill(client, database, small, sessions - small)
        print(f"  inserted {sessions - small:,} more sessions in {seconds:.1f} s ({sessions:,} in all)")
        with serve(settings) as base:
            at_large = measure_searches(base, sessions, repeat)
    print(f"  {'search':<36} {f'{small:,} sessions':>24}   {f'{sessions:,} sessions':>24}   large/small")
    figures: dict[str, Any] = {}
    worst_median = 0.0
    worst_ratio = 0.0
    for name, large in at_large.items():
        base_stats = at_small[name]
        ratio = large.median / base_stats.median if base_stats.median else float("inf")
        print(
            f"  {name:<36} {base_stats.median:8.2f} ms (p95 {base_stats.p95:7.2f})   "
            f"{large.median:8.2f} ms (p95 {large.p95:7.2f})   {ratio:5.2f}x"
        )
        figures[name] = {"small": base_stats.summary(), "large": large.summary(), "ratio": round(ratio, 3)}
        if not name.startswith("baseline"):
            worst_median = max(worst_median, large.median)
            worst_ratio = max(worst_ratio, ratio)
    print(line("baseline GET /health at the larger size", at_large["baseline: GET /health"]))
    result.figures["searches"] = figures
    result.targets = [
        Target(
            f"every search, median at {sessions:,} sessions",
            f"<= {TARGET_MS:.0f} ms",
            f"worst {worst_median:.2f} ms",
            worst_median <= TARGET_MS,
        ),
        Target(
            f"flat from {small:,} to {sessions:,}",
            f"large/small median <= {FLAT_RATIO:.1f}x for every search",
            f"worst {worst_ratio:.2f}x",
            worst_ratio <= FLAT_RATIO,
        ),
    ]
    if sessions < 1_000_000:
        result.notes.append(f"measured at {sessions:,} sessions, not the 1,000,000 of the issue (--sessions)")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1_000_000, help="the larger size (default 1,000,000)")
    parser.add_argument("--small", type=int, default=10_000, help="the smaller size (default 10,000)")
    parser.add_argument("--repeat", type=int, default=40, help="timed requests per search and size")
    parser.add_argument("--json", help="also write the result as JSON to this path (used by run_all.py)")
    args = parser.parse_args()
    if args.sessions <= args.small:
        parser.error("--sessions must be larger than --small")
    quiet_logs()
    with mongo_uri() as uri:
        emit(run(uri, args.sessions, args.small, args.repeat), args.json)


if __name__ == "__main__":
    main()
