"""Benchmark 1: building a session manager per request, factory (shared pool) vs a new MongoClient.

A stateless service builds a manager for every request. Through the factory that is one
round trip (read the session) on an already-connected pool; with a new ``MongoClient`` per
request it is connection set-up, replica-set discovery and the index check, every time.
Both resume an existing session, which is what almost every request does.

Target: factory median under 2 ms and at least 10x faster than the per-request client.
Run: uv run python benchmarks/bench_manager_creation.py
"""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

from _common import (
    Result,
    Stats,
    Target,
    line,
    measure,
    ratio,
    run_main,
    scratch_database,
)
from pymongo import MongoClient, monitoring

from mongodb_session_manager import MongoDBSessionManager, MongoDBSessionManagerFactory

SESSIONS = 50
FACTORY_REPEAT, FACTORY_WARMUP = 1000, 100
CLIENT_REPEAT, CLIENT_WARMUP = 60, 5
COLLECTION = "sessions"


class CommandNames(monitoring.CommandListener):
    def __init__(self) -> None:
        self.names: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.names.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def run(uri: str) -> Result:
    result = Result("manager_creation")
    with scratch_database(uri, "creation") as db:
        factory = MongoDBSessionManagerFactory(uri, database_name=db, collection_name=COLLECTION)
        session_ids = [f"session-{i}" for i in range(SESSIONS)]
        for sid in session_ids:
            factory.create_session_manager(sid)
        cycle = itertools.cycle(session_ids)

        def with_factory() -> None:
            factory.create_session_manager(next(cycle)).close()

        def with_new_client() -> None:
            MongoDBSessionManager(
                next(cycle), connection_string=uri, database_name=db, collection_name=COLLECTION
            ).close()

        print("Benchmark 1: manager creation per request (resuming an existing session)")
        # Interleave the two so a noisy neighbour hurts both alike; the factory gets most samples
        # because its operation is ~100x shorter.
        factory_samples: list[float] = []
        client_samples: list[float] = []
        measure(with_factory, repeat=0, warmup=FACTORY_WARMUP)
        measure(with_new_client, repeat=0, warmup=CLIENT_WARMUP)
        per_round = FACTORY_REPEAT // CLIENT_REPEAT
        for _ in range(CLIENT_REPEAT):
            factory_samples += measure(with_factory, repeat=per_round, warmup=0).samples
            client_samples += measure(with_new_client, repeat=1, warmup=0).samples
        pooled, fresh = Stats(factory_samples), Stats(client_samples)
        print(line("new MongoClient per request (baseline)", fresh))
        print(line("factory, shared pool", pooled, fresh))
        speedup = ratio(fresh.median, pooled.median)
        print(f"  the factory is {speedup:.1f}x faster per request (median)")

        trips = round_trips(uri, db, session_ids[0])
        print(f"  round trips to create one manager: factory {trips['factory']}, new client {trips['new_client']}")
        factory.close()

    result.figures = {
        "factory": pooled.summary(),
        "new_client_per_request": fresh.summary(),
        "speedup_median": round(speedup, 1),
        "round_trips": trips,
    }
    result.targets = [
        Target("factory median", "< 2 ms", f"{pooled.median:.3f} ms", pooled.median < 2.0),
        Target("factory vs new client per request", ">= 10x faster", f"{speedup:.1f}x", speedup >= 10),
    ]
    return result


def round_trips(uri: str, db: str, session_id: str) -> dict[str, Any]:
    """Commands sent while building one manager (handshakes and heartbeats are not commands)."""
    listener = CommandNames()
    client: MongoClient[Any] = MongoClient(uri, event_listeners=[listener])
    factory = MongoDBSessionManagerFactory(client=client, database_name=db, collection_name=COLLECTION)
    factory.create_session_manager(session_id)  # first use: the once-per-process index check
    listener.names.clear()
    factory.create_session_manager(session_id)
    pooled = dict(Counter(listener.names))
    factory.close()
    client.close()

    listener = CommandNames()
    fresh: MongoClient[Any] = MongoClient(uri, event_listeners=[listener])
    MongoDBSessionManager(session_id, client=fresh, database_name=db, collection_name=COLLECTION)
    fresh.close()
    return {"factory": pooled, "new_client": dict(Counter(listener.names))}


def main() -> None:
    run_main(run, __doc__ or "")


if __name__ == "__main__":
    main()
