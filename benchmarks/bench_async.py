"""Benchmark: an ``async def`` service with the library's async pattern vs the same service without it.

The service benchmark's load (``bench_service_throughput.load``: 50 concurrent clients on loopback,
each in its own conversation, a bounded time and request count) calls ``POST /chat``, one offline
agent turn with ``invoke_async``. Measured, per mode:

* event-loop lag inside the server (how late a 5 ms sleep wakes up): p50, p99, max;
* requests per second and request latency.

``bare`` (the same agent, no session manager) is the control, measured in the same run. Target:
lag p50 with the library at most 2x the control's. ``fresh`` (reported, no target) is the library
with a new session per request: all of its I/O, but an agent without a conversation, so the part of
the gap that is Strands' work on a history shows. Run: uv run python benchmarks/bench_async.py
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
from _common import Result, Stats, Target, line, run_main, scratch_database
from bench_service_throughput import load as service_load
from bench_service_throughput import start_server, stop_server

APP = Path(__file__).with_name("async_app.py")
TARGET = 2.0


async def load(base: str, mode: str) -> dict[str, Any]:
    """The service benchmark's load (50 workers, one budget, one deadline), then the server's loop lag."""

    async def forget_warmup_lag(client: httpx.AsyncClient) -> None:
        await client.get("/lag")  # the warm-up's lag samples are discarded

    outcome = await service_load(base, mode, after_warmup=forget_warmup_lag)
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        outcome["lag"] = (await client.get("/lag")).json()
    return outcome


def run_mode(uri: str, mode: str) -> dict[str, Any]:
    with scratch_database(uri, f"async_{mode}") as db:
        process, base = start_server(uri, db, mode, app=APP)
        try:
            outcome = asyncio.run(load(base, mode))
        finally:
            stop_server(process)
    done = len(outcome["latencies"])
    return {
        "stats": Stats(outcome["latencies"] or [float("nan")]),
        "requests": done,
        "errors": len(outcome["errors"]),
        "error_kinds": sorted(set(outcome["errors"]))[:5],
        "requests_per_s": round(done / outcome["elapsed_s"], 1) if outcome["elapsed_s"] else 0.0,
        "lag": outcome["lag"],
    }


def run(uri: str) -> Result:
    result = Result("async")
    print("Benchmark: async endpoint, 50 concurrent clients")
    bare = run_mode(uri, "bare")
    library = run_mode(uri, "library")
    fresh = run_mode(uri, "fresh")
    modes = (
        ("no session manager (control)", bare),
        ("library, acreate + invoke_async", library),
        ("library, a new session per request", fresh),
    )
    for name, outcome in modes:
        lag = outcome["lag"]
        print(line(name, outcome["stats"]))
        print(
            f"    {outcome['requests_per_s']} requests/s, {outcome['errors']} errors {outcome['error_kinds']}; lag p50 "
            f"{lag['p50_ms']:.2f} ms, p99 {lag['p99_ms']:.2f} ms, max {lag['max_ms']:.2f} ms; the loop thread "
            f"ran {lag['p99_cpu_share']:.0%} of the slowest 1% ticks' time, blocked {lag['p99_blocked_per_tick']:.0f} "
            f"and was preempted {lag['p99_preempted_per_tick']:.0f} times per such tick"
        )
    lag_ratio = library["lag"]["p50_ms"] / max(bare["lag"]["p50_ms"], 1e-6)
    fresh_ratio = fresh["lag"]["p50_ms"] / max(bare["lag"]["p50_ms"], 1e-6)
    print(f"  lag p50 vs the control: library {lag_ratio:.2f}x, a new session per request {fresh_ratio:.2f}x")
    result.figures = {
        mode: {
            "latency": outcome["stats"].summary(),
            "requests": outcome["requests"],
            "errors": outcome["errors"],
            "requests_per_s": outcome["requests_per_s"],
            "loop_lag_ms": {k: round(v, 3) if isinstance(v, float) else v for k, v in outcome["lag"].items()},
        }
        for mode, outcome in (("bare", bare), ("library", library), ("fresh", fresh))
    }
    result.figures["fresh_lag_ratio"] = round(fresh_ratio, 2)
    result.targets = [
        Target(
            "event-loop lag p50, library vs control",
            f"<= {TARGET:.0f}x",
            f"{lag_ratio:.2f}x ({library['lag']['p50_ms']:.2f} ms vs {bare['lag']['p50_ms']:.2f} ms)",
            lag_ratio <= TARGET and library["errors"] == 0,
        )
    ]
    return result


def main() -> None:
    run_main(run, __doc__ or "")


if __name__ == "__main__":
    main()
