"""Benchmark 6: a snapshot turn (Strands' SnapshotSessionManager) on MongoDBStorage vs LocalFileStorage.

Every turn of the snapshot path rewrites the agent's whole latest snapshot, so its cost grows with
the conversation. Measured in one run, alternating the backends turn by turn so background noise
hits all alike, on conversations of ``TURNS`` turns (~200-character questions, ~800-character answers):

- an ``Agent`` with no session manager (the model loop alone, to isolate persistence),
- ``SnapshotSessionManager`` over Strands' ``LocalFileStorage`` on local disk (the baseline),
- ``SnapshotSessionManager`` over ``MongoDBStorage`` (sync ``agent(...)``: Strands' bridge loop,
  so the pooled sync client in a worker thread),
- the same from an async application (``await agent.invoke_async``: native ``AsyncMongoClient``),
- ``MongoDBSnapshotSessionManager`` (adds per-turn metrics and agent config: one more update),
- a stateless request (new manager + ``Agent`` per request: restore, then the turn), both backends.

Round trips are counted with pymongo command monitoring (every command is one round trip).
Run: uv run python benchmarks/bench_snapshot.py   (``MSM_BENCH_TURNS=20`` for a quick check)
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from _common import Result, Stats, Target, line, ratio, run_main, scratch_database
from pymongo import MongoClient, monitoring
from strands import Agent
from strands.session import SnapshotSessionManager
from strands.storage import LocalFileStorage

from mongodb_session_manager import MongoDBSnapshotSessionManager, MongoDBStorage
from mongodb_session_manager.testing import ScriptedModel

TURNS = int(os.environ.get("MSM_BENCH_TURNS", "100"))
WARMUP = 3
STATELESS = max(10, TURNS // 3)
QUESTION = "Could you explain how the order, the refund and the delivery date relate here? " * 2
ANSWER = "Here is what happened with your order, step by step, and what we will do next. " * 10


class RoundTrips(monitoring.CommandListener):
    def __init__(self) -> None:
        self.names: list[str] = []

    def reset(self) -> list[str]:
        names, self.names = self.names, []
        return names

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.names.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def model() -> ScriptedModel:
    return ScriptedModel([ANSWER] * (TURNS + WARMUP + 5))


def timed(operation: Callable[[], Any]) -> float:
    start = time.perf_counter()
    operation()
    return (time.perf_counter() - start) * 1000


def run(uri: str) -> Result:
    result = Result("snapshot")
    print(f"Benchmark 6: one snapshot turn, {TURNS}-turn conversations (~{len(QUESTION) + len(ANSWER)} chars/turn)")
    listener = RoundTrips()
    with scratch_database(uri, "snapshot") as db, tempfile.TemporaryDirectory(prefix="msm-bench-snap-") as folder:
        client: MongoClient[Any] = MongoClient(uri, event_listeners=[listener])
        mongo = MongoDBStorage(database_name=db, collection_name="sessions", client=client)
        files = LocalFileStorage(folder)
        agents = {
            "none": Agent(model=model(), callback_handler=None),
            "files": Agent(
                model=model(), session_manager=SnapshotSessionManager("s-f", storage=files), callback_handler=None
            ),
            "mongo": Agent(
                model=model(), session_manager=SnapshotSessionManager("s-m", storage=mongo), callback_handler=None
            ),
            "features": Agent(
                model=model(),
                session_manager=MongoDBSnapshotSessionManager("s-x", storage=mongo),
                callback_handler=None,
            ),
        }
        samples: dict[str, list[float]] = {name: [] for name in agents}
        trips: dict[str, list[Counter[str]]] = {"mongo": [], "features": []}
        for i in range(TURNS + WARMUP):
            for name, agent in agents.items():
                listener.reset()
                ms = timed(lambda agent=agent, i=i: agent(f"{QUESTION} {i}"))
                names = listener.reset()
                if i >= WARMUP:
                    samples[name].append(ms)
                    if name in trips:
                        trips[name].append(Counter(names))

        # An async application: one long-lived loop, the storage's native AsyncMongoClient.
        async def async_app() -> tuple[list[float], list[Counter[str]]]:
            agent = Agent(
                model=model(), session_manager=SnapshotSessionManager("s-a", storage=mongo), callback_handler=None
            )
            times, counted = [], []
            for i in range(TURNS + WARMUP):
                listener.reset()
                start = time.perf_counter()
                await agent.invoke_async(f"{QUESTION} {i}")
                if i >= WARMUP:
                    times.append((time.perf_counter() - start) * 1000)
                    counted.append(Counter(listener.reset()))
            return times, counted

        async_samples, async_trips = asyncio.run(async_app())

        # Stateless requests on the conversations built above: restore + one turn per request.
        def request(storage: Any, sid: str) -> Callable[[], None]:
            def go() -> None:
                Agent(
                    model=model(), session_manager=SnapshotSessionManager(sid, storage=storage), callback_handler=None
                )(QUESTION)

            return go

        stateless: dict[str, list[float]] = {"files": [], "mongo": []}
        stateless_trips: list[Counter[str]] = []
        for _ in range(STATELESS):
            stateless["files"].append(timed(request(files, "s-f")))
            listener.reset()
            stateless["mongo"].append(timed(request(mongo, "s-m")))
            stateless_trips.append(Counter(listener.reset()))
        size = client[db]["sessions"].find_one({"_id": "s-m"}, {"_id": 0, "snapshots.agent.default.size": 1})
        mongo.close()
        client.close()

    stats = {name: Stats(values) for name, values in samples.items()}
    base = stats["none"]
    files_overhead = stats["files"].median - base.median
    print(line("Agent, no session manager (model loop only)", base))
    print(line("SnapshotSessionManager + LocalFileStorage (baseline)", stats["files"]))
    print(line("SnapshotSessionManager + MongoDBStorage (sync)", stats["mongo"], stats["files"]))
    async_stats = Stats(async_samples)
    print(line("SnapshotSessionManager + MongoDBStorage (async app)", async_stats, stats["files"]))
    print(line("MongoDBSnapshotSessionManager (+ metrics, config)", stats["features"], stats["files"]))
    stateless_stats = {k: Stats(v) for k, v in stateless.items()}
    print(line("stateless request, LocalFileStorage (baseline)", stateless_stats["files"]))
    print(line("stateless request, MongoDBStorage", stateless_stats["mongo"], stateless_stats["files"]))

    def described(counted: list[Counter[str]]) -> dict[str, Any]:
        totals = sorted(sum(c.values()) for c in counted)
        typical = Counter(tuple(sorted(c.items())) for c in counted).most_common(1)[0][0]
        return {"median": totals[len(totals) // 2], "max": totals[-1], "typical_by_command": dict(typical)}

    rt = {
        "sync_turn": described(trips["mongo"]),
        "async_turn": described(async_trips),
        "features_turn": described(trips["features"]),
        "stateless_request": described(stateless_trips),
    }
    for label, value in rt.items():
        print(f"  round trips, {label}: median {value['median']}, max {value['max']}: {value['typical_by_command']}")
    snapshot_bytes = (((size or {}).get("snapshots") or {}).get("agent") or {}).get("default", {}).get("size")
    print(f"  latest snapshot after {TURNS + WARMUP + STATELESS} turns: {snapshot_bytes} bytes")
    persistence = {name: round(stats[name].median - base.median, 3) for name in ("files", "mongo", "features")} | {
        "async": round(async_stats.median - base.median, 3)
    }
    result.figures = {
        "turns": TURNS,
        "no_manager": base.summary(),
        "local_file_storage": stats["files"].summary(),
        "mongodb_storage_sync": stats["mongo"].summary(),
        "mongodb_storage_async": async_stats.summary(),
        "mongodb_snapshot_session_manager": stats["features"].summary(),
        "stateless_local_file_storage": stateless_stats["files"].summary(),
        "stateless_mongodb_storage": stateless_stats["mongo"].summary(),
        "persistence_overhead_median_ms": persistence,
        "round_trips": rt,
        "latest_snapshot_bytes": snapshot_bytes,
    }
    mongo_ratio = ratio(stats["mongo"].median, stats["files"].median)
    result.targets = [
        Target(
            "round trips per snapshot turn (Strands' manager, MongoDBStorage)",
            "1 write",
            f"{rt['sync_turn']['median']} ({rt['sync_turn']['typical_by_command']})",
            rt["sync_turn"]["median"] == 1,
        ),
        Target(
            "snapshot turn vs LocalFileStorage (reported, no target in the issue)",
            "report",
            f"{mongo_ratio:.2f}x the LocalFileStorage turn ({stats['mongo'].median:.2f} vs "
            f"{stats['files'].median:.2f} ms; persistence overhead {persistence['mongo']:.2f} vs "
            f"{files_overhead:.2f} ms)",
            True,
        ),
    ]
    return result


def main() -> None:
    run_main(run, __doc__ or "")


if __name__ == "__main__":
    main()
