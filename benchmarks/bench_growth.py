"""Benchmark 3: does a long conversation slow down appends and paging? 10 vs 1,000 vs 10,000 messages.

For each size a session is pre-filled (one bulk write, realistic text sizes: ~200-character user
messages, ~800-character answers), then measured:

* append: ``repository.create_message`` of one new message (one guarded ``update_one``). After
  each timed append the message is removed again, untimed, so the size stays what it says;
* the same append as upstream v0.2.7 wrote it: a plain driver ``update_one`` with ``$push`` and no
  guard (the baseline for the append's own cost at each size);
* ``list_messages(limit=20)``: the first page, and the latest 20 (``offset = n - 20``).

The 10-message session is the baseline. Target: the 10,000-message figures within 1.5x of it.
Run: uv run python benchmarks/bench_growth.py
"""

from __future__ import annotations

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
from pymongo import MongoClient
from strands import Agent
from strands.types.session import SessionMessage

from mongodb_session_manager import MongoDBSessionManager
from mongodb_session_manager import documents as d
from mongodb_session_manager.mongodb_session_repository import MongoDBSessionRepository
from mongodb_session_manager.testing import ScriptedModel

SIZES = (10, 1_000, 2_000, 10_000)
REPEAT, WARMUP = 200, 20
COLLECTION = "sessions"
AGENT = "assistant"
TARGET_RATIO = 1.5


def message(i: int) -> dict[str, Any]:
    if i % 2 == 0:
        return {"role": "user", "content": [{"text": f"question {i}: " + "lorem ipsum dolor sit amet " * 7}]}
    return {"role": "assistant", "content": [{"text": f"answer {i}: " + "consectetur adipiscing elit sed do " * 23}]}


def prefill(client: MongoClient[Any], db: str, session_id: str, count: int) -> int:
    """Create the session through the library, then push ``count`` messages in one write; return its size."""
    with MongoDBSessionManager(session_id, client=client, database_name=db, collection_name=COLLECTION) as manager:
        Agent(agent_id=AGENT, model=ScriptedModel(), session_manager=manager, callback_handler=None)
    docs = [d.message_document(SessionMessage(message=message(i), message_id=i)) for i in range(count)]
    collection = client[db][COLLECTION]
    collection.update_one(
        {d.ID: session_id},
        {"$push": {d.messages_path(AGENT): {"$each": docs}}, "$set": {d.next_message_id_path(AGENT): count}},
    )
    sized = list(collection.aggregate([{"$match": {d.ID: session_id}}, {"$project": {"s": {"$bsonSize": "$$ROOT"}}}]))
    return int(sized[0]["s"])


def run(uri: str) -> Result:
    result = Result("growth")
    client: MongoClient[Any] = MongoClient(uri)
    print("Benchmark 3: latency as a session grows")
    figures: dict[str, Any] = {}
    stats: dict[int, dict[str, Stats]] = {}
    with scratch_database(uri, "growth") as db:
        repo = MongoDBSessionRepository(client=client, database_name=db, collection_name=COLLECTION)
        collection = client[db][COLLECTION]
        for size in SIZES:
            sid = f"session-{size}"
            doc_bytes = prefill(client, db, sid, size)
            new = SessionMessage(message=message(size), message_id=size)

            def undo(sid: str, size: int) -> None:
                collection.update_one(
                    {d.ID: sid},
                    {"$pop": {d.messages_path(AGENT): 1}, "$set": {d.next_message_id_path(AGENT): size}},
                )

            # Time only the append: the undo runs outside the timed call.
            samples = []
            for i in range(WARMUP + REPEAT):
                one = measure(lambda sid=sid, new=new: repo.create_message(sid, AGENT, new), repeat=1, warmup=0)
                undo(sid, size)
                if i >= WARMUP:
                    samples += one.samples
            appended = Stats(samples)
            plain_samples = []
            plain_doc = d.message_document(new)
            for i in range(WARMUP + REPEAT):
                one = measure(
                    lambda sid=sid, doc=plain_doc: collection.update_one(
                        {d.ID: sid}, {"$push": {d.messages_path(AGENT): doc}, "$set": d.touch()}
                    ),
                    repeat=1,
                    warmup=0,
                )
                undo(sid, size)
                if i >= WARMUP:
                    plain_samples += one.samples
            plain = Stats(plain_samples)
            first_page = measure(lambda sid=sid: repo.list_messages(sid, AGENT, limit=20), repeat=REPEAT, warmup=WARMUP)
            last_page = measure(
                lambda sid=sid, size=size: repo.list_messages(sid, AGENT, limit=20, offset=max(0, size - 20)),
                repeat=REPEAT,
                warmup=WARMUP,
            )
            assert len(repo.list_messages(sid, AGENT, limit=20)) == min(20, size)
            assert repo.count_messages(sid, AGENT) == size
            stats[size] = {"append": appended, "plain": plain, "first_page": first_page, "last_page": last_page}
            figures[str(size)] = {
                "document_bytes": doc_bytes,
                "append": appended.summary(),
                "append_upstream_pattern": plain.summary(),
                "list_first_20": first_page.summary(),
                "list_latest_20": last_page.summary(),
            }
        repo.close()
    client.close()

    base = stats[SIZES[0]]
    for size in SIZES:
        print(f"  {size:>6} messages ({figures[str(size)]['document_bytes'] / 1024:,.0f} KiB document)")
        for key, label in (("append", "append one message"), ("first_page", "list_messages(limit=20)"),
                           ("last_page", "latest 20 (offset=n-20)")):  # fmt: skip
            print(line("  " + label, stats[size][key], None if size == SIZES[0] else base[key]))
        print(line("  append, upstream v0.2.7 pattern", stats[size]["plain"]))
        print(f"      guarded append vs upstream's unguarded $push: "
              f"{ratio(stats[size]['append'].median, stats[size]['plain'].median):.2f}x")  # fmt: skip

    largest = stats[SIZES[-1]]
    figures["ratios_largest_vs_smallest"] = {
        key: round(ratio(largest[key].median, base[key].median), 2) for key in ("append", "first_page", "last_page")
    }
    result.figures = figures
    for key, name in (("append", "append"), ("first_page", "list_messages(limit=20)"), ("last_page", "latest 20")):
        r = ratio(largest[key].median, base[key].median)
        result.targets.append(
            Target(
                f"{name} at {SIZES[-1]:,} vs {SIZES[0]} messages",
                f"<= {TARGET_RATIO}x",
                f"{r:.2f}x ({largest[key].median:.3f} ms vs {base[key].median:.3f} ms)",
                r <= TARGET_RATIO,
            )
        )
    return result


def main() -> None:
    run_main(run, __doc__ or "")


if __name__ == "__main__":
    main()
