"""Run every benchmark against one local mongod and print a summary of the targets (``make bench``).

Each benchmark runs in its own Python process (so one's connection pool or imports cannot
colour another's figures) against a single-node replica set started here, or against
``MONGODB_CONNECTION_STRING`` when set. The summary at the end is Markdown, ready for
docs/architecture/performance.md; ``--markdown PATH`` also writes it to a file.

Run: uv run python benchmarks/run_all.py [--only growth restore] [--markdown summary.md]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import machine, mongo_uri

HERE = Path(__file__).resolve().parent
BENCHMARKS = {
    "manager_creation": "bench_manager_creation.py",
    "agent_turn": "bench_agent_turn.py",
    "growth": "bench_growth.py",
    "restore": "bench_restore.py",
    "snapshot": "bench_snapshot.py",
    "service_throughput": "bench_service_throughput.py",
    "async": "bench_async.py",
}
#: A benchmark that runs longer than this is stopped and reported as failed (the longest take 4-5 minutes).
TIMEOUT_S = 420


def run_one(name: str, uri: str, workdir: Path) -> tuple[dict[str, Any] | None, float]:
    out = workdir / f"{name}.json"
    env = {**os.environ, "MONGODB_CONNECTION_STRING": uri}
    start = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, str(HERE / BENCHMARKS[name]), "--json", str(out)], env=env, timeout=TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        print(f"!! {name} did not finish within {TIMEOUT_S} s", flush=True)
        return None, time.monotonic() - start
    elapsed = time.monotonic() - start
    if proc.returncode != 0 or not out.exists():
        print(f"!! {name} failed (exit {proc.returncode})", flush=True)
        return None, elapsed
    return json.loads(out.read_text()), elapsed


def markdown(results: dict[str, dict[str, Any] | None], info: dict[str, Any], command: str) -> str:
    rows = [
        f"Machine: {info['cpus']} CPUs ({info['cpu_model']}), {info['memory_gb']} GB RAM, {info['platform']}; "
        f"Python {info['python']}, mongod {info['mongod']} (single-node replica set on 127.0.0.1), "
        f"pymongo {info['pymongo']}, strands-agents {info['strands']}.",
        "",
        f"Command: `{command}`",
        "",
        "| Benchmark | Target | Measured | Met |",
        "|---|---|---|---|",
    ]
    for name, result in results.items():
        if result is None:
            rows.append(f"| {name} | - | run failed | no |")
            continue
        for target in result["targets"]:
            met = "yes" if target["met"] else "**no**"
            rows.append(f"| {name}: {target['name']} | {target['target']} | {target['measured']} | {met} |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), help="run only these benchmarks")
    parser.add_argument("--markdown", type=Path, help="also write the Markdown summary to this file")
    parser.add_argument("--json", type=Path, help="write every benchmark's full figures as one JSON file")
    args = parser.parse_args()
    names = args.only or list(BENCHMARKS)
    info = machine()
    print(f"machine: {json.dumps(info)}", flush=True)
    results: dict[str, dict[str, Any] | None] = {}
    started = time.monotonic()
    with mongo_uri() as uri, tempfile.TemporaryDirectory(prefix="msm-bench-") as tmp:
        for name in names:
            print(f"\n=== {name} ===", flush=True)
            results[name], elapsed = run_one(name, uri, Path(tmp))
            print(f"({name}: {elapsed:.0f} s)", flush=True)
    command = "uv run python benchmarks/run_all.py" + (f" --only {' '.join(names)}" if args.only else "")
    summary = markdown(results, info, command)
    print(f"\n=== summary ({time.monotonic() - started:.0f} s) ===\n{summary}")
    if args.markdown:
        args.markdown.write_text(summary + "\n")
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "results": results}, indent=2, default=str))
    return 0 if all(r is not None for r in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
