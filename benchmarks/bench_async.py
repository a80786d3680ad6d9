"""Benchmark: an ``async def`` service with the library's async pattern vs the same service without it.

The service benchmark's load (``bench_service_throughput.load``: 50 concurrent clients on loopback,
each in its own conversation, a bounded time and request count) calls ``POST /chat``, one offline
agent turn with ``invoke_async``. Measured, per mode:

* event-loop lag inside the server (how late a 5 ms sleep wakes up): p50, p99, max;
* requests per second and request latency.

``bare`` (the same agent, no session manager) is the control, measured in the same run. Target:
lag p50 with the library at most 2x the control's. ``fresh`` (reported, no target) is the library
with a new session per request: all of its I/O, but an agent without a conversation, so the part of
the gap that is Strands' work on a history shows. ``memory`` (reported, no target) is the second
control: no session manager, each conversation kept in the process's memory, so the agent carries
the same history the library restores; library vs memory is the cost of persistence alone. Beside
the lag, the loop thread's CPU time per request.

Layout (``cpu_layout``): the four modes run with the service on a CPU of its own and mongod and the
load generator on the others, as in production, where the database and the clients are other
machines; the target is judged there. Then the control and the library run again with every
process sharing every CPU (reported, no target): on a two-core machine the service's threads then
compete with mongod's and the load generator's. Run: uv run python benchmarks/bench_async.py
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
from _common import Result, Stats, Target, line, run_main, scratch_database
from bench_service_throughput import load as service_load
from bench_service_throughput import start_server, stop_server
from cpu_layout import own_core, shared

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


def run_mode(uri: str, mode: str, cpus: set[int] | None) -> dict[str, Any]:
    with scratch_database(uri, f"async_{mode}") as db:
        process, base = start_server(uri, db, mode, app=APP, cpus=cpus)
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
        # The lag window (after the warm-up) covers the measured requests: the loop's CPU per request.
        "loop_cpu_per_request_ms": round(outcome["lag"].get("loop_cpu_ms", 0.0) / max(done, 1), 2),
    }


LABELS = {
    "bare": "no session manager (control)",
    "library": "library, acreate + invoke_async",
    "fresh": "library, a new session per request",
    "memory": "no session manager, conversations in memory",
}


def report(outcomes: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Print each mode; return the lag p50 ratios against the controls."""
    for mode, outcome in outcomes.items():
        lag = outcome["lag"]
        print(line(LABELS[mode], outcome["stats"]))
        print(
            f"    {outcome['requests_per_s']} requests/s, {outcome['errors']} errors {outcome['error_kinds']}; lag p50 "
            f"{lag['p50_ms']:.2f} ms, p99 {lag['p99_ms']:.2f} ms, max {lag['max_ms']:.2f} ms; the loop thread "
            f"ran {lag['p99_cpu_share']:.0%} of the slowest 1% ticks' time, blocked {lag['p99_blocked_per_tick']:.0f} "
            f"and was preempted {lag['p99_preempted_per_tick']:.0f} times per such tick; loop CPU "
            f"{outcome['loop_cpu_per_request_ms']:.2f} ms per request"
        )
    p50 = {mode: outcome["lag"]["p50_ms"] for mode, outcome in outcomes.items()}
    ratios = {"library": p50["library"] / max(p50["bare"], 1e-6)}
    if "fresh" in p50:
        ratios["fresh"] = p50["fresh"] / max(p50["bare"], 1e-6)
    if "memory" in p50:
        ratios["library_vs_memory"] = p50["library"] / max(p50["memory"], 1e-6)
    print("  lag p50: " + ", ".join(f"{name} {value:.2f}x" for name, value in ratios.items()))
    return ratios


def figures(outcomes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        mode: {
            "latency": outcome["stats"].summary(),
            "requests": outcome["requests"],
            "errors": outcome["errors"],
            "requests_per_s": outcome["requests_per_s"],
            "loop_lag_ms": {k: round(v, 3) if isinstance(v, float) else v for k, v in outcome["lag"].items()},
            "loop_cpu_per_request_ms": outcome["loop_cpu_per_request_ms"],
        }
        for mode, outcome in outcomes.items()
    }


def run(uri: str) -> Result:
    result = Result("async")
    print("Benchmark: async endpoint, 50 concurrent clients")
    with own_core(uri) as layout:
        print(f"  layout: {layout.describe()}")
        own = {mode: run_mode(uri, mode, layout.server) for mode in ("bare", "library", "fresh", "memory")}
        own_ratios = report(own)
    print(f"  layout: {shared().describe()} (reported, no target)")
    together = {mode: run_mode(uri, mode, None) for mode in ("bare", "library")}
    shared_ratios = report(together)
    result.figures = {
        "layout": layout.describe(),
        **figures(own),
        "ratios": {name: round(value, 2) for name, value in own_ratios.items()},
        "shared_cpus": {**figures(together), "ratios": {n: round(v, 2) for n, v in shared_ratios.items()}},
    }
    library, bare, ratio = own["library"], own["bare"], own_ratios["library"]
    result.targets = [
        Target(
            "event-loop lag p50, library vs control",
            f"<= {TARGET:.0f}x",
            f"{ratio:.2f}x ({library['lag']['p50_ms']:.2f} ms vs {bare['lag']['p50_ms']:.2f} ms)",
            ratio <= TARGET and library["errors"] == 0,
        )
    ]
    return result


def main() -> None:
    run_main(run, __doc__ or "")


if __name__ == "__main__":
    main()
