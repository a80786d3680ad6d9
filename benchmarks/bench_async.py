"""Benchmark: an ``async def`` service with the library's async pattern vs the same service without it.

50 concurrent clients on loopback call ``POST /chat`` (one offline agent turn, ``invoke_async``),
each in its own conversation, for a bounded time and request count. Measured, per mode:

* event-loop lag inside the server (how late a 5 ms sleep wakes up): p50, p99, max;
* requests per second and request latency.

``bare`` (the same agent, no session manager) is the control, measured in the same run. Target:
lag p50 with the library at most 2x the control's. Run: uv run python benchmarks/bench_async.py
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
from _common import Result, Stats, Target, line, run_main, scratch_database
from bench_service_throughput import start_server, stop_server

APP = Path(__file__).with_name("async_app.py")
CLIENTS = 50
MAX_REQUESTS = 1_500
MAX_SECONDS = 30.0
WARMUP_REQUESTS = 50
TARGET = 2.0


async def load(base: str, mode: str) -> dict[str, Any]:
    latencies: list[float] = []
    errors: list[str] = []
    budget = {"left": MAX_REQUESTS}
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120) as client:
        for i in range(WARMUP_REQUESTS):
            await client.post("/chat", json={"session_id": f"warmup-{i % 5}", "message": "warm up"})
        await client.get("/lag")  # discard the warm-up's lag samples
        deadline = time.monotonic() + MAX_SECONDS

        async def worker(index: int) -> None:
            turn = 0
            while budget["left"] > 0 and time.monotonic() < deadline:
                budget["left"] -= 1
                turn += 1
                start = time.perf_counter()
                try:
                    response = await client.post("/chat", json={"session_id": f"c{index}", "message": f"turn {turn}"})
                except httpx.HTTPError as exc:
                    errors.append(type(exc).__name__)
                    continue
                if response.status_code != 200:
                    errors.append(f"HTTP {response.status_code}")
                    continue
                latencies.append((time.perf_counter() - start) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(CLIENTS)))
        elapsed = time.perf_counter() - started
        lag = (await client.get("/lag")).json()
    return {"latencies": latencies, "errors": errors, "elapsed_s": elapsed, "lag": lag}


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
        "requests_per_s": round(done / outcome["elapsed_s"], 1) if outcome["elapsed_s"] else 0.0,
        "lag": outcome["lag"],
    }


def run(uri: str) -> Result:
    result = Result("async")
    print(f"Benchmark: async endpoint, {CLIENTS} concurrent clients")
    bare = run_mode(uri, "bare")
    library = run_mode(uri, "library")
    for name, outcome in (("no session manager (control)", bare), ("library, acreate + invoke_async", library)):
        lag = outcome["lag"]
        print(line(name, outcome["stats"]))
        print(
            f"    {outcome['requests_per_s']} requests/s, {outcome['errors']} errors; event-loop lag p50 "
            f"{lag['p50_ms']:.2f} ms, p99 {lag['p99_ms']:.2f} ms, max {lag['max_ms']:.2f} ms"
        )
    lag_ratio = library["lag"]["p50_ms"] / max(bare["lag"]["p50_ms"], 1e-6)
    result.figures = {
        mode: {
            "latency": outcome["stats"].summary(),
            "requests": outcome["requests"],
            "errors": outcome["errors"],
            "requests_per_s": outcome["requests_per_s"],
            "loop_lag_ms": {k: round(v, 3) if isinstance(v, float) else v for k, v in outcome["lag"].items()},
        }
        for mode, outcome in (("bare", bare), ("library", library))
    }
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
