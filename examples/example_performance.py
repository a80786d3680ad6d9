"""Why the factory matters: manager creation with a shared pool vs a new MongoClient per request.

A quick illustration; benchmarks/ holds the measured, repeatable numbers.
Run: uv run python examples/example_performance.py
"""

import statistics
import time

from mongodb_session_manager import MongoDBSessionManager, MongoDBSessionManagerFactory
from mongodb_session_manager.embedded import local_mongodb

REQUESTS = 30


def timed(create) -> list[float]:
    samples = []
    for i in range(REQUESTS):
        start = time.perf_counter()
        manager = create(f"perf-{i}")
        manager.get_metadata()  # one real round trip, like a request would do
        manager.close()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def main() -> None:
    with local_mongodb() as uri:
        factory = MongoDBSessionManagerFactory(uri, database_name="chat", collection_name="perf")
        factory.create_session_manager("warm-up").get_metadata()
        pooled = timed(factory.create_session_manager)
        fresh = timed(
            lambda sid: MongoDBSessionManager(sid, connection_string=uri, database_name="chat", collection_name="perf")
        )
        factory.client["chat"]["perf"].drop()
        factory.close()
    p_med, f_med = statistics.median(pooled), statistics.median(fresh)
    print(f"factory (shared pool):     median {p_med:.2f} ms")
    print(f"new MongoClient per call:  median {f_med:.2f} ms")
    print(f"the factory is {f_med / p_med:.1f}x faster per request")


if __name__ == "__main__":
    main()
