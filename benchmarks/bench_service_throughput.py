"""Benchmark 5: service throughput under 50 concurrent clients, factory vs a new client per request.

``service_app.py`` (the ``examples/example_fastapi.py`` pattern: a manager per request, one
offline agent turn) runs under uvicorn on a free 127.0.0.1 port in its own process, once per
mode. 50 concurrent clients (``httpx.AsyncClient``), each with its own conversation, send
``POST /chat`` until a request budget or a time budget runs out, whichever comes first. Reported:
requests/s, median and p95 latency, errors. The per-request client is the baseline.

A third run puts the turn in a worker thread (``asyncio.to_thread``), which is what an ``async``
endpoint calling the synchronous pymongo driver should do. Server, mongod and load generator share
the machine's cores, so the absolute numbers are a floor; the ratios are the point.
Run: uv run python benchmarks/bench_service_throughput.py
"""

from __future__ import annotations

import asyncio
import functools
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from _common import Result, Stats, Target, line, ratio, run_main, scratch_database

from mongodb_session_manager.embedded import free_port

CLIENTS = 50
MAX_REQUESTS = 1_500
MAX_SECONDS = 40.0
WARMUP_REQUESTS = 50
REQUEST_TIMEOUT_S = 120.0
APP = Path(__file__).with_name("service_app.py")


def start_server(
    uri: str, db: str, mode: str, app: Path = APP, *, cpus: set[int] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """Serve ``app`` (a script taking --uri --db --mode --port) on a free loopback port; wait for /health.

    ``cpus``: the CPUs the server may run on (set in the child before it starts, so every thread
    it creates inherits them); None leaves it on every CPU.
    """
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(app), "--uri", uri, "--db", db, "--mode", mode, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=None if cpus is None else functools.partial(os.sched_setaffinity, 0, cpus),
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            err = process.stderr.read().decode()[-2000:] if process.stderr else ""
            raise RuntimeError(f"service ({mode}) exited at start-up: {err}")
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return process, base
        except httpx.TransportError:
            time.sleep(0.2)
    stop_server(process)
    raise RuntimeError(f"service ({mode}) did not answer /health within 60 s")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    if process.stderr:
        process.stderr.close()


async def load(
    base: str, mode: str, *, after_warmup: Callable[[httpx.AsyncClient], Awaitable[Any]] | None = None
) -> dict[str, Any]:
    """50 workers share one request budget and one deadline; each keeps its own conversation.

    ``after_warmup`` runs once between the warm-up requests and the measured ones.
    """
    latencies: list[float] = []
    errors: list[str] = []
    budget = {"left": MAX_REQUESTS}
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=REQUEST_TIMEOUT_S) as client:
        for i in range(WARMUP_REQUESTS):
            await client.post("/chat", json={"session_id": f"warmup-{mode}-{i % 5}", "message": "warm up"})
        if after_warmup is not None:
            await after_warmup(client)
        deadline = time.monotonic() + MAX_SECONDS

        async def worker(index: int) -> None:
            turn = 0
            while budget["left"] > 0 and time.monotonic() < deadline:
                budget["left"] -= 1
                turn += 1
                start = time.perf_counter()
                try:
                    response = await client.post(
                        "/chat", json={"session_id": f"{mode}-client-{index}", "message": f"turn {turn}"}
                    )
                    if response.status_code != 200:
                        errors.append(f"HTTP {response.status_code}")
                        continue
                except httpx.HTTPError as exc:
                    cause = exc.__cause__ or exc.__context__
                    errors.append(f"{type(exc).__name__}({cause!r})" if cause is not None else type(exc).__name__)
                    continue
                latencies.append((time.perf_counter() - start) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(CLIENTS)))
        elapsed = time.perf_counter() - started
    return {"latencies": latencies, "errors": errors, "elapsed_s": elapsed}


def run_mode(uri: str, mode: str) -> dict[str, Any]:
    with scratch_database(uri, f"svc_{mode}") as db:
        process, base = start_server(uri, db, mode)
        try:
            outcome = asyncio.run(load(base, mode))
        finally:
            stop_server(process)
    stats = Stats(outcome["latencies"] or [float("nan")])
    done = len(outcome["latencies"])
    return {
        "stats": stats,
        "requests": done,
        "errors": len(outcome["errors"]),
        "error_kinds": sorted(set(outcome["errors"]))[:5],
        "elapsed_s": round(outcome["elapsed_s"], 2),
        "requests_per_s": round(done / outcome["elapsed_s"], 1) if outcome["elapsed_s"] else 0.0,
    }


def run(uri: str) -> Result:
    result = Result("service_throughput")
    print(
        f"Benchmark 5: FastAPI service, {CLIENTS} concurrent clients, <= {MAX_REQUESTS} requests or {MAX_SECONDS:.0f} s"
    )
    client_mode = run_mode(uri, "client")
    factory_mode = run_mode(uri, "factory")
    threaded_mode = run_mode(uri, "factory-threads")
    for label, mode, base in (
        ("new MongoClient per request (baseline)", client_mode, None),
        ("factory, shared pool", factory_mode, client_mode["stats"]),
        ("factory, turn in a worker thread", threaded_mode, client_mode["stats"]),
    ):
        print(line(label, mode["stats"], base))
        print(
            f"    {mode['requests_per_s']:.1f} requests/s ({mode['requests']} in {mode['elapsed_s']} s, "
            f"{mode['errors']} errors {mode['error_kinds']})"
        )
    throughput_gain = ratio(factory_mode["requests_per_s"], client_mode["requests_per_s"])
    print(f"  the factory serves {throughput_gain:.2f}x the requests/s of a new client per request")
    result.figures = {
        mode_name: {
            **mode["stats"].summary(),
            "requests_per_s": mode["requests_per_s"],
            "requests": mode["requests"],
            "errors": mode["errors"],
            "elapsed_s": mode["elapsed_s"],
        }
        for mode_name, mode in (
            ("new_client_per_request", client_mode),
            ("factory", factory_mode),
            ("factory_turn_in_thread", threaded_mode),
        )
    }
    result.figures["throughput_ratio"] = round(throughput_gain, 2)
    threaded_gain = ratio(threaded_mode["requests_per_s"], client_mode["requests_per_s"])
    result.figures["throughput_ratio_threads"] = round(threaded_gain, 2)
    print(f"  with the turn in a worker thread: {threaded_gain:.2f}x the requests/s of the baseline")
    result.targets = [
        Target(
            "service throughput, factory vs per-request client",
            "report requests/s and p95 (no numeric target in the issue)",
            f"{factory_mode['requests_per_s']:.1f} vs {client_mode['requests_per_s']:.1f} requests/s "
            f"({throughput_gain:.2f}x); p95 {factory_mode['stats'].p95:.1f} vs {client_mode['stats'].p95:.1f} ms",
            factory_mode["errors"] == 0 and client_mode["errors"] == 0 and threaded_mode["errors"] == 0,
            "met = every mode served every request without an error",
        )
    ]
    return result


def main() -> None:
    run_main(run, __doc__ or "")


if __name__ == "__main__":
    main()
