"""Shared plumbing for the benchmark scripts: a mongod, timing statistics, machine facts, results.

Every script measures its own baseline in the same run and reports medians and p95 plus the
ratio, so numbers stay comparable across machines. Each script starts its own single-node replica
set unless ``MONGODB_CONNECTION_STRING`` is set (``run_all.py`` starts one and shares it).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pymongo import MongoClient

from mongodb_session_manager.embedded import local_mongodb

logger = logging.getLogger("benchmarks")
ROOT = Path(__file__).resolve().parents[1]


#: The configured server, or a local single-node replica set for this script only (never the shared data dir).
mongo_uri = functools.partial(local_mongodb, temporary=True)


def run_main(run: Callable[[str], Result], description: str) -> None:
    """The ``main`` of every benchmark script: parse args, quiet logs, run against a server, print."""
    args = parse_args(description)
    quiet_logs()
    with mongo_uri() as uri:
        emit(run(uri), args.json)


@contextlib.contextmanager
def scratch_database(uri: str, prefix: str) -> Iterator[str]:
    """A database name nobody else uses, dropped afterwards (also on failure)."""
    name = f"bench_{prefix}_{uuid.uuid4().hex[:8]}"
    try:
        yield name
    finally:
        with MongoClient(uri, serverSelectionTimeoutMS=30_000) as client:
            client.drop_database(name)


# ---- statistics ----------------------------------------------------------------------------------


@dataclass
class Stats:
    """Milliseconds of repeated runs of one operation."""

    samples: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p95(self) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]

    def summary(self) -> dict[str, float]:
        return {"median_ms": round(self.median, 4), "p95_ms": round(self.p95, 4), "n": len(self.samples)}


def measure(operation: Callable[[], Any], *, repeat: int, warmup: int) -> Stats:
    """Time ``operation`` ``repeat`` times after ``warmup`` untimed runs (caches, pools, JIT-free)."""
    for _ in range(warmup):
        operation()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        operation()
        samples.append((time.perf_counter() - start) * 1000)
    return Stats(samples)


def ratio(slower: float, faster: float) -> float:
    return slower / faster if faster > 0 else float("inf")


# ---- results --------------------------------------------------------------------------------------


@dataclass
class Target:
    """One target from the issue, with what this run measured."""

    name: str
    target: str
    measured: str
    met: bool
    note: str = ""


@dataclass
class Result:
    benchmark: str
    figures: dict[str, Any] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "figures": self.figures,
            "targets": [asdict(t) for t in self.targets],
            "notes": self.notes,
        }


def line(label: str, stats: Stats, baseline: Stats | None = None) -> str:
    text = f"  {label:<44} median {stats.median:9.3f} ms   p95 {stats.p95:9.3f} ms   (n={len(stats.samples)})"
    if baseline is not None:
        text += f"   {compare(stats.median, baseline.median)}"
    return text


def compare(value: float, baseline: float) -> str:
    """``21.5x faster than baseline`` / ``1.3x slower than baseline`` (by median)."""
    if value <= baseline:
        return f"{ratio(baseline, value):.2f}x faster than baseline"
    return f"{ratio(value, baseline):.2f}x slower than baseline"


def emit(result: Result, json_path: str | None) -> None:
    """Print the targets (figures were printed as they were measured) and write JSON for run_all."""
    print("  targets:")
    for target in result.targets:
        status = "MET" if target.met else "NOT MET"
        print(f"    [{status}] {target.name}: target {target.target}; measured {target.measured}")
        if target.note:
            print(f"             {target.note}")
    for note in result.notes:
        print(f"  note: {note}")
    if json_path:
        Path(json_path).write_text(json.dumps(result.to_json(), indent=2, default=str))


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--json", help="also write the result as JSON to this path (used by run_all.py)")
    return parser.parse_args()


def machine() -> dict[str, Any]:
    """What the figures were measured on (they only mean something next to this)."""
    model = platform.processor() or "unknown"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for row in out.splitlines():
            if row.startswith("Model name:"):
                model = row.split(":", 1)[1].strip()
    mem_gb = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for row in Path("/proc/meminfo").read_text().splitlines():
            if row.startswith("MemTotal:"):
                mem_gb = round(int(row.split()[1]) / 1024 / 1024, 1)
    import pymongo
    import strands

    from mongodb_session_manager.embedded import MONGOD_VERSION

    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": mem_gb,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "mongod": MONGOD_VERSION,
        "pymongo": pymongo.version,
        "strands": getattr(strands, "__version__", _dist_version("strands-agents")),
    }


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def quiet_logs() -> None:
    """Benchmarks print their own figures; library debug logs would only distort the timings."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
