"""Benchmark 3: does a session slow down as it grows? 10 to 50,000 messages, 1 to 40 MiB of content.

Sessions are built through the repository's own append path (``append_messages``: batches of 20
text messages, content sessions one tool turn at a time), so the default ``ArchivePolicy`` splits
them as it would in production: the oldest messages move into buckets of ``<collection>_messages``
and the session document keeps only the recent ones. Two kinds of sessions:

* 10 / 1,000 / 10,000 / 50,000 messages of realistic text (~200-character questions,
  ~800-character answers), the 10-message session is the baseline of every ratio;
* 1 / 8 / 40 MiB of content: turns of question, ``toolUse``, a ``toolResult`` of 100 KB to 1 MB of
  text (sizes cycle 1 MB, 500 KB, 250 KB, 100 KB counted from the newest turn, so the sessions of
  8 and 40 MiB end in the same turns) and an answer.

Measured on each, after a restore (as a manager would have done; the repository knows the session's
size when the build or the restore's aggregation read it):

* append: ``repository.create_message`` of one new message. Each timed append is undone, untimed
  (the message popped, the id counter and the repository's size estimate put back), so the session
  stays the size it says and no split happens inside a timed append;
* ``list_messages(limit=20)``: the first page (offset 0, in the archive once the session split) and
  the latest 20 (``offset = n - 20``);
* restore of a sliding-window agent: ``repository.restore_agent`` with
  ``removed_message_count = n - 40``, as Strands' default conversation manager (40 messages)
  leaves it;
* appends that keep growing: 1,000 consecutive ``create_message`` calls on the 10-message and on the
  50,000-message session, nothing undone; the splits they trigger are paid inside them.

The same operations on one-document sessions (``archive_policy=None``, the shape before the archive)
where they fit in 16 MB, with upstream v0.2.7's unguarded ``$push`` as the append baseline there.
Server commands per operation are counted with a pymongo command listener.

Targets (issue 14): append and paging at 10,000 messages within 1.5x of the 10-message figures;
restore of a sliding-window agent independent of total history (within 1.5x across sizes with the
same window).
Run: uv run python benchmarks/bench_growth.py
"""

from __future__ import annotations

import contextlib
import random
import statistics
import time
from collections.abc import Iterator
from typing import Any

import bson
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
from strands import Agent
from strands.types.session import SessionMessage

from mongodb_session_manager import MongoDBSessionManager
from mongodb_session_manager import documents as d
from mongodb_session_manager import documents_archive as da
from mongodb_session_manager.mongodb_session_repository import MongoDBSessionRepository
from mongodb_session_manager.testing import ScriptedModel

COUNTS = (10, 1_000, 10_000, 50_000)
CONTENT_MIB = (1, 8, 40)
#: One-document sessions for comparison: only what fits under MongoDB's 16 MB document limit.
ONE_DOCUMENT_COUNTS = (1_000, 10_000)
ONE_DOCUMENT_CONTENT_MIB = (1, 8)
RESULT_SIZES = (1_000_000, 500_000, 250_000, 100_000)
BATCH = 20
#: Content sessions are appended one tool turn (question, toolUse, toolResult, answer) at a time.
TURN = 4
WINDOW = 40
GROW = 1_000
REPEAT, WARMUP = 200, 20
COLLECTION = "sessions"
AGENT = "assistant"
TARGET_RATIO = 1.5
MIB = 1024 * 1024


def message(i: int) -> dict[str, Any]:
    if i % 2 == 0:
        return {"role": "user", "content": [{"text": f"question {i}: " + "lorem ipsum dolor sit amet " * 7}]}
    return {"role": "assistant", "content": [{"text": f"answer {i}: " + "consectetur adipiscing elit sed do " * 23}]}


# ---- content sessions --------------------------------------------------------------------------------


def _corpus(size: int) -> str:
    """Pseudo-prose that compresses like text, not like a repeated phrase (WiredTiger compresses blocks)."""
    rng = random.Random(14)
    letters = "etaoinshrdlucmfwypvbgkjqxz"
    words = ["".join(rng.choices(letters, weights=range(26, 0, -1), k=rng.randint(2, 10))) for _ in range(3_000)]
    out: list[str] = []
    total = 0
    while total < size:
        sentence = " ".join(rng.choices(words, k=rng.randint(6, 18))).capitalize() + ". "
        out.append(sentence)
        total += len(sentence)
    return "".join(out)[:size]


CORPUS = _corpus(2 * RESULT_SIZES[0])


def content_messages(total: int) -> list[dict[str, Any]]:
    """Tool turns whose results add up to ``total`` bytes of text, oldest first.

    Result sizes are assigned from the newest turn backwards, so every session ends in the same turns
    (a sliding window over sessions of different sizes then holds the same messages).
    """
    sizes: list[int] = []
    while sum(sizes) < total:
        sizes.append(min(RESULT_SIZES[len(sizes) % len(RESULT_SIZES)], total - sum(sizes)))
    sizes.reverse()
    out: list[dict[str, Any]] = []
    for turn, size in enumerate(sizes):
        start = (turn * 7_919) % RESULT_SIZES[0]
        tool_id = f"tooluse-{turn}"
        out += [
            {"role": "user", "content": [{"text": f"question {turn}: summarise part {turn} of the report " * 4}]},
            {
                "role": "assistant",
                "content": [{"toolUse": {"toolUseId": tool_id, "name": "read_document", "input": {"part": turn}}}],
            },
            {
                "role": "user",
                "content": [
                    {
                        "toolResult": {
                            "toolUseId": tool_id,
                            "status": "success",
                            "content": [{"text": CORPUS[start : start + size]}],
                        }
                    }
                ],
            },
            message(2 * turn + 1),
        ]
    return out


# ---- plumbing ------------------------------------------------------------------------------------------


class CommandCounter(monitoring.CommandListener):
    """The server commands the benchmark thread sends while counting (the round trips of one operation)."""

    def __init__(self) -> None:
        self.names: list[str] | None = None

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if self.names is not None:
            self.names.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    @contextlib.contextmanager
    def counting(self) -> Iterator[list[str]]:
        self.names = names = []
        try:
            yield names
        finally:
            self.names = None


def build(
    client: MongoClient[Any],
    db: str,
    repo: MongoDBSessionRepository,
    sid: str,
    messages: list[dict[str, Any]],
    batch_size: int,
) -> float:
    """Create the session through the library, then append ``messages`` in batches; return seconds."""
    with MongoDBSessionManager(sid, client=client, database_name=db, collection_name=COLLECTION) as manager:
        Agent(agent_id=AGENT, model=ScriptedModel(), session_manager=manager, callback_handler=None)
    start = time.perf_counter()
    for first in range(0, len(messages), batch_size):
        batch = messages[first : first + batch_size]
        repo.append_messages(sid, AGENT, [SessionMessage(message=m, message_id=first + i) for i, m in enumerate(batch)])
    seconds = time.perf_counter() - start
    # As Strands' sliding-window conversation manager leaves a long conversation: the last 40 in the agent.
    client[db][COLLECTION].update_one(
        {d.ID: sid},
        {
            "$set": {
                f"{d.agent_data_path(AGENT)}.conversation_manager_state.removed_message_count": max(
                    0, len(messages) - WINDOW
                )
            }
        },
    )
    return seconds


def shape(client: MongoClient[Any], db: str, sid: str) -> dict[str, Any]:
    """Document bytes, in-document and archived messages, buckets and their bytes."""
    collection = client[db][COLLECTION]
    sized = next(iter(collection.aggregate(d.document_size_pipeline(sid, AGENT))))
    doc = collection.find_one({d.ID: sid}, {da.archive_path(AGENT): 1}) or {}
    archive = ((doc.get(d.AGENTS) or {}).get(AGENT) or {}).get(da.ARCHIVE) or {}
    buckets = client[db][da.buckets_collection_name(COLLECTION)]
    bucket_bytes = list(
        buckets.aggregate(
            [{"$match": {d.SESSION_ID: sid}}, {"$group": {"_id": None, "b": {"$sum": {"$bsonSize": "$$ROOT"}}}}]
        )
    )
    return {
        "document_bytes": int(sized["size"]),
        "in_document": int(sized["stored"]),
        "archived": int(archive.get(da.ARCHIVE_COUNT) or 0),
        "buckets": len(archive.get(da.ARCHIVE_BUCKETS) or []),
        "bucket_bytes": int(bucket_bytes[0]["b"]) if bucket_bytes else 0,
    }


def page_bytes(page: list[SessionMessage]) -> int:
    return len(bson.encode({"m": [m.to_dict() for m in page]}))


def measure_session(
    client: MongoClient[Any],
    db: str,
    repo: MongoDBSessionRepository,
    counter: CommandCounter,
    sid: str,
    n: int,
    *,
    upstream: bool,
) -> tuple[dict[str, Stats], dict[str, Any]]:
    """Append (undone), first and latest page, sliding-window restore; commands of each, once."""
    collection = client[db][COLLECTION]
    new = SessionMessage(message=message(n), message_id=n)
    repo.restore_agent(sid, AGENT)  # what a manager does first; gives the repository the size
    # One untimed append and undo first: a split that is due happens here, not in a timed append.
    repo.create_message(sid, AGENT, new)
    collection.update_one(
        {d.ID: sid}, {"$pop": {d.messages_path(AGENT): 1}, "$set": {d.next_message_id_path(AGENT): n}}
    )
    restored = repo.restore_agent(sid, AGENT)
    assert restored is not None and len(restored.messages) == min(n, WINDOW)
    assert [m.message_id for m in restored.messages] == list(range(max(0, n - WINDOW), n))
    before = shape(client, db, sid)
    # The repository's own estimates (private): the undo puts them back with the message. The restore's
    # fast path (a find of the document's tail) does not read the size, so it may be unknown here.
    size, stored = repo._known_sizes().get(sid), before["in_document"]

    def undo() -> None:
        collection.update_one(
            {d.ID: sid}, {"$pop": {d.messages_path(AGENT): 1}, "$set": {d.next_message_id_path(AGENT): n}}
        )
        if size is None:
            repo._known_sizes().pop(sid, None)
        else:
            repo._known_sizes()[sid] = size
        repo._remember_stored(sid, AGENT, stored)

    def timed_undone(operation: Any) -> Stats:
        samples: list[float] = []
        for i in range(WARMUP + REPEAT):
            one = measure(operation, repeat=1, warmup=0)
            undo()
            if i >= WARMUP:
                samples += one.samples
        return Stats(samples)

    stats: dict[str, Stats] = {"append": timed_undone(lambda: repo.create_message(sid, AGENT, new))}
    if upstream:
        plain = d.message_document(new)
        stats["upstream"] = timed_undone(
            lambda: collection.update_one({d.ID: sid}, {"$push": {d.messages_path(AGENT): plain}, "$set": d.touch()})
        )
    latest = max(0, n - 20)
    stats["first_page"] = measure(lambda: repo.list_messages(sid, AGENT, limit=20), repeat=REPEAT, warmup=WARMUP)
    stats["last_page"] = measure(
        lambda: repo.list_messages(sid, AGENT, limit=20, offset=latest), repeat=REPEAT, warmup=WARMUP
    )
    stats["restore"] = measure(lambda: repo.restore_agent(sid, AGENT), repeat=REPEAT, warmup=WARMUP)
    after = shape(client, db, sid)
    assert after == before, f"{sid} changed while measured: {before} -> {after}"

    first = repo.list_messages(sid, AGENT, limit=20)
    last = repo.list_messages(sid, AGENT, limit=20, offset=latest)
    assert [m.message_id for m in first] == list(range(min(20, n)))
    assert [m.message_id for m in last] == list(range(latest, n))
    assert repo.count_messages(sid, AGENT) == n
    commands: dict[str, list[str]] = {}
    with counter.counting() as names:
        repo.create_message(sid, AGENT, new)
    commands["append"] = list(names)
    undo()
    for key, operation in (
        ("first_page", lambda: repo.list_messages(sid, AGENT, limit=20)),
        ("last_page", lambda: repo.list_messages(sid, AGENT, limit=20, offset=latest)),
        ("restore", lambda: repo.restore_agent(sid, AGENT)),
    ):
        with counter.counting() as names:
            operation()
        commands[key] = list(names)
    restored = repo.restore_agent(sid, AGENT)
    assert restored is not None
    info = {
        **before,
        "commands": commands,
        "first_page_bytes": page_bytes(first),
        "last_page_bytes": page_bytes(last),
        "window_bytes": page_bytes(restored.messages),
    }
    return stats, info


def grow(repo: MongoDBSessionRepository, counter: CommandCounter, sid: str, n: int) -> dict[str, Any]:
    """``GROW`` consecutive appends, nothing undone: splits happen inside them, as in production."""
    repo.restore_agent(sid, AGENT)
    samples: list[float] = []
    with counter.counting() as names:
        for i in range(n, n + GROW):
            new = SessionMessage(message=message(i), message_id=i)
            samples += measure(lambda new=new: repo.create_message(sid, AGENT, new), repeat=1, warmup=0).samples
    assert repo.count_messages(sid, AGENT) == n + GROW
    return {
        "stats": Stats(samples),
        "mean_ms": statistics.fmean(samples),
        "max_ms": max(samples),
        "commands_per_append": len(names) / GROW,
        "splits": names.count("insert"),
    }


def commands_text(names: list[str]) -> str:
    return f"{len(names)} ({', '.join(names)})"


# ---- the run ---------------------------------------------------------------------------------------------


def run(uri: str) -> Result:
    result = Result("growth")
    counter = CommandCounter()
    client: MongoClient[Any] = MongoClient(uri, event_listeners=[counter])
    print("Benchmark 3: latency as a session grows (default ArchivePolicy, and one document for comparison)")
    started = time.perf_counter()
    figures: dict[str, Any] = {}
    stats: dict[str, dict[str, Stats]] = {}
    infos: dict[str, dict[str, Any]] = {}
    growing: dict[str, dict[str, Any]] = {}
    with scratch_database(uri, "growth") as db:
        archived = MongoDBSessionRepository(client=client, database_name=db, collection_name=COLLECTION)
        one_doc = MongoDBSessionRepository(
            client=client, database_name=db, collection_name=COLLECTION, archive_policy=None
        )
        # Untimed: a throw-away session warms the pools, the new collections and their indexes.
        build(client, db, archived, "warm-up", [message(i) for i in range(300)], BATCH)
        measure_session(client, db, archived, counter, "warm-up", 300, upstream=False)
        plan: list[tuple[str, list[dict[str, Any]], MongoDBSessionRepository, bool, int]] = []
        for count in COUNTS:
            texts = [message(i) for i in range(count)]
            plan.append((f"{count:,} messages", texts, archived, False, BATCH))
            if count in ONE_DOCUMENT_COUNTS:
                plan.append((f"{count:,} messages, one document", texts, one_doc, True, BATCH))
        for mib in CONTENT_MIB:
            content = content_messages(mib * MIB)
            plan.append((f"{mib} MiB content", content, archived, False, TURN))
            if mib in ONE_DOCUMENT_CONTENT_MIB:
                plan.append((f"{mib} MiB content, one document", content, one_doc, True, TURN))
        for label, messages, repo, upstream, batch_size in plan:
            sid = f"session-{label.replace(' ', '-').replace(',', '')}"
            seconds = build(client, db, repo, sid, messages, batch_size)
            stats[label], infos[label] = measure_session(
                client, db, repo, counter, sid, len(messages), upstream=upstream
            )
            infos[label].update(messages=len(messages), build_s=round(seconds, 1))
            report(label, stats[label], infos[label], stats[plan[0][0]] if label != plan[0][0] else None)
            if label in (plan[0][0], f"{COUNTS[-1]:,} messages"):
                growing[label] = grow(repo, counter, sid, len(messages))
        archived.close()
        one_doc.close()
    client.close()

    base_label, largest = f"{COUNTS[0]} messages", f"{COUNTS[-1]:,} messages"
    print(f"  {GROW:,} appends that keep growing the session (splits included, nothing undone)")
    for label, grown in growing.items():
        print(line(f"  from {label}", grown["stats"], None if label == base_label else growing[base_label]["stats"]))
        print(
            f"      mean {grown['mean_ms']:.3f} ms, max {grown['max_ms']:.1f} ms, "
            f"{grown['commands_per_append']:.3f} commands per append, {grown['splits']} splits"
        )
    base = stats[base_label]
    for label in stats:
        figures[label] = {
            **infos[label],
            **{key: value.summary() for key, value in stats[label].items()},
            "vs_10_messages": {
                key: round(ratio(value.median, base[key].median), 2)
                for key, value in stats[label].items()
                if key in base
            },
        }
    figures["growing_appends"] = {
        label: {
            "median_ms": round(g["stats"].median, 4),
            "p95_ms": round(g["stats"].p95, 4),
            "mean_ms": round(g["mean_ms"], 4),
            "max_ms": round(g["max_ms"], 2),
            "commands_per_append": round(g["commands_per_append"], 3),
            "splits": g["splits"],
        }
        for label, g in growing.items()
    }
    figures["run_s"] = round(time.perf_counter() - started, 1)
    result.figures = figures

    def target(name: str, label: str, key: str, against: str = base_label) -> None:
        r = ratio(stats[label][key].median, stats[against][key].median)
        result.targets.append(
            Target(
                f"{name} at {label} vs {against}",
                f"<= {TARGET_RATIO}x",
                f"{r:.2f}x ({stats[label][key].median:.3f} ms vs {stats[against][key].median:.3f} ms)",
                r <= TARGET_RATIO,
            )
        )

    for label in (f"{COUNTS[2]:,} messages", largest, f"{CONTENT_MIB[-1]} MiB content"):
        target("append", label, "append")
    for label in (f"{COUNTS[2]:,} messages", largest):
        target("list_messages(limit=20)", label, "first_page")
        target("latest 20", label, "last_page")
    window_base = f"{COUNTS[1]:,} messages"
    for label in (f"{COUNTS[2]:,} messages", largest):
        target(f"sliding-window restore ({WINDOW} messages)", label, "restore", window_base)
    target(
        f"sliding-window restore ({WINDOW} messages, same turns)",
        f"{CONTENT_MIB[-1]} MiB content",
        "restore",
        f"{CONTENT_MIB[1]} MiB content",
    )
    grown_ratio = ratio(growing[largest]["mean_ms"], growing[base_label]["mean_ms"])
    result.targets.append(
        Target(
            f"mean of {GROW:,} growing appends (splits included) from {largest} vs from {base_label}",
            f"<= {TARGET_RATIO}x",
            f"{grown_ratio:.2f}x ({growing[largest]['mean_ms']:.3f} ms vs {growing[base_label]['mean_ms']:.3f} ms)",
            grown_ratio <= TARGET_RATIO,
        )
    )
    result.notes.append(f"whole run {figures['run_s']:.0f} s (builds included)")
    return result


def report(label: str, stats: dict[str, Stats], info: dict[str, Any], base: dict[str, Stats] | None) -> None:
    print(
        f"  {label}: document {info['document_bytes'] / 1024:,.0f} KiB with {info['in_document']:,} messages; "
        f"archived {info['archived']:,} in {info['buckets']:,} buckets ({info['bucket_bytes'] / MIB:,.1f} MiB); "
        f"built in {info['build_s']:.1f} s"
    )
    rows = (
        ("append", "append one message"),
        ("upstream", "append, upstream v0.2.7 unguarded $push"),
        ("first_page", f"list_messages(limit=20) ({info['first_page_bytes'] / 1024:,.0f} KiB)"),
        ("last_page", f"latest 20 ({info['last_page_bytes'] / 1024:,.0f} KiB)"),
        ("restore", f"sliding-window restore ({info['window_bytes'] / 1024:,.0f} KiB)"),
    )
    for key, text in rows:
        if key in stats:
            print(line("  " + text, stats[key], None if base is None or key not in base else base[key]))
    print("      commands: " + "; ".join(f"{key} {commands_text(names)}" for key, names in info["commands"].items()))


def main() -> None:
    run_main(run, __doc__ or "")


if __name__ == "__main__":
    main()
