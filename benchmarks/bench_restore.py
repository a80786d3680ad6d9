"""Benchmark 4: resuming a 1,000-message conversation, MongoDB vs Strands' FileSessionManager.

The same 1,000 messages (~200-character questions, ~800-character answers) are written through
both managers with ``append_message``; then, repeatedly, a new manager and a new ``Agent`` are
built for the session, which restores every message. ``FileSessionManager`` on local disk (one
JSON file per message, read back from the page cache) is the baseline, measured in the same run.

Target: MongoDB at least 5x faster.

Then a new Agent resumes a 2,000-message session (manager construction, every read, every
conversion, Strands' restore), three ways, interleaved in one run on one server. Each session holds
what its library stored for those turns: the original kept the agent's running latency and token
counts on every answer (its ``sync_agent``, re-created in ``upstream_v027.py``), this library the
turn's metrics summary on every answer:

* upstream v0.2.7 (the baseline): the reads the original library made, re-created in
  ``upstream_v027.py``: three ``createIndexes``, the whole session document, the agent (with its
  whole message array), the message array again, sorted and converted in Python;
* this library on its default storage (the oldest messages in archive buckets), the same with one
  message in 50 redacted (a guardrail's redactions, archived with the rest), and on one document (a
  session ported from the original, before its first write splits it);
* a plain driver ``find_one`` of the one document, converting nothing (the floor).

The first two once more on sessions without any metrics (messages appended bare, which neither
library's manager does): a stricter comparison, printed beside the other.

Once for the whole history, once for a sliding-window agent (Strands' default conversation
manager, 40 messages) whose window has slid. The message read alone (``restore_agent`` vs the
original's ``list_messages``) is printed too.
Targets: at most a quarter of upstream's time, at most twice the plain ``find_one``; the stricter
comparison is printed with the same target.
Run: uv run python benchmarks/bench_restore.py
"""

from __future__ import annotations

import gc
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
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
from bench_growth import message
from pymongo import MongoClient
from strands import Agent
from strands.session.file_session_manager import FileSessionManager
from strands.session.session_manager import SessionManager
from strands.types.session import SessionMessage
from upstream_v027 import UpstreamReads, record_turn_metrics, upstream_manager

from mongodb_session_manager import MongoDBSessionManagerFactory
from mongodb_session_manager.held_records import HeldRecords
from mongodb_session_manager.metrics import summarize, totals_increment
from mongodb_session_manager.mongodb_session_repository import MongoDBSessionRepository
from mongodb_session_manager.testing import ScriptedModel

MESSAGES = 1_000
REPEAT, WARMUP = 40, 3
SESSION_ID = "restore-1000"
AGENT = "assistant"
TARGET = 5.0
LARGE = 2_000
UPSTREAM_TARGET, FIND_ONE_TARGET = 0.25, 2.0
REDACT_EVERY = 50
REDACTION = {"role": "user", "content": [{"text": "[redacted by a guardrail]"}]}


def write(manager: SessionManager) -> float:
    """Append the conversation through ``manager``; return milliseconds per message."""
    agent = Agent(agent_id=AGENT, model=ScriptedModel(), session_manager=manager, callback_handler=None)
    start = time.perf_counter()
    for i in range(MESSAGES):
        manager.append_message(message(i), agent)
    manager.sync_agent(agent)
    return (time.perf_counter() - start) * 1000 / MESSAGES


def restorer(make_manager: Callable[[], SessionManager]) -> Callable[[], None]:
    def restore() -> None:
        agent = Agent(agent_id=AGENT, model=ScriptedModel(), session_manager=make_manager(), callback_handler=None)
        if len(agent.messages) != MESSAGES:
            raise AssertionError(f"restored {len(agent.messages)} messages, expected {MESSAGES}")

    return restore


def filesystem(path: str) -> str:
    try:
        out = subprocess.run(["stat", "-f", "-c", "%T", path], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.strip() or "unknown"


def run(uri: str) -> Result:
    result = Result("restore")
    print(f"Benchmark 4: a new Agent resuming a {MESSAGES:,}-message session")
    with scratch_database(uri, "restore") as db, tempfile.TemporaryDirectory(prefix="msm-bench-files-") as storage:
        factory = MongoDBSessionManagerFactory(uri, database_name=db, collection_name="sessions")
        mongo_write = write(factory.create_session_manager(SESSION_ID))
        file_write = write(FileSessionManager(session_id=SESSION_ID, storage_dir=storage))
        files = sum(len(names) for _, _, names in os.walk(storage))

        # Alternate the two so background noise (page cache, mongod checkpoints) hits both alike.
        restore_mongo = restorer(lambda: factory.create_session_manager(SESSION_ID))
        restore_files = restorer(lambda: FileSessionManager(session_id=SESSION_ID, storage_dir=storage))
        measure(restore_mongo, repeat=0, warmup=WARMUP)
        measure(restore_files, repeat=0, warmup=WARMUP)
        mongo_samples: list[float] = []
        file_samples: list[float] = []
        for _ in range(REPEAT):
            mongo_samples += measure(restore_mongo, repeat=1, warmup=0).samples
            file_samples += measure(restore_files, repeat=1, warmup=0).samples
        mongo, on_disk = Stats(mongo_samples), Stats(file_samples)
        fs_type = filesystem(storage)
        factory.close()
        restore_read_vs_upstream(uri, db, result)

    speedup = ratio(on_disk.median, mongo.median)
    print(line(f"FileSessionManager ({fs_type}, {files} files; baseline)", on_disk))
    print(line("MongoDBSessionManager via factory", mongo, on_disk))
    print(f"  writing the session: MongoDB {mongo_write:.3f} ms/message, files {file_write:.3f} ms/message")
    result.figures = {
        **result.figures,  # the 2,000-message reads, recorded by restore_read_vs_upstream
        "file_session_manager": on_disk.summary(),
        "mongodb_session_manager": mongo.summary(),
        "speedup_median": round(speedup, 2),
        "write_ms_per_message": {"mongodb": round(mongo_write, 3), "file": round(file_write, 3)},
        "file_storage": {"filesystem": fs_type, "files": files},
    }
    result.targets = [  # before the targets restore_read_vs_upstream added
        Target(
            f"restore {MESSAGES:,} messages vs FileSessionManager",
            f">= {TARGET:.0f}x faster",
            f"{speedup:.2f}x ({mongo.median:.2f} ms vs {on_disk.median:.2f} ms)",
            speedup >= TARGET,
        ),
        *result.targets,
    ]
    return result


def turn_metrics_sample() -> tuple[Any, dict[str, Any], dict[str, int]]:
    """One real turn on the offline model: Strands' metrics object (what the original stored from),
    and the summary and totals this library stores with a turn's last assistant message."""
    agent = Agent(model=ScriptedModel(), callback_handler=None)
    agent("a question")
    summary = summarize(agent.event_loop_metrics, agent.messages)
    return agent.event_loop_metrics, summary, totals_increment(summary)


def restore_read_vs_upstream(uri: str, db: str, result: Result) -> None:
    """A 2,000-message session resumed end to end: this library vs upstream v0.2.7 vs a bare ``find_one``."""
    client: MongoClient[Any] = MongoClient(uri)
    one, split = "restore-2000", "restore-2000-split"
    one_bare, split_bare = "restore-2000-bare", "restore-2000-split-bare"
    records = [SessionMessage(message=message(i), message_id=i) for i in range(LARGE)]
    strands_metrics, summary, totals = turn_metrics_sample()
    # One document, as upstream stored it (and as a session ported from it looks until its next write):
    # the messages, then what its sync_agent wrote on each turn's answer.
    flat = MongoDBSessionRepository(client=client, database_name=db, collection_name="sessions", archive_policy=None)
    flat_factory = MongoDBSessionManagerFactory(
        client=client, database_name=db, collection_name="sessions", archive_policy=None
    )
    for sid in (one, one_bare):
        Agent(agent_id=AGENT, model=ScriptedModel(), session_manager=flat_factory.create_session_manager(sid))
        for start in range(0, LARGE, 500):
            flat.append_messages(sid, AGENT, records[start : start + 500])
    for record in records:
        if record.message["role"] == "assistant":
            record_turn_metrics(client, db, "sessions", one, AGENT, record.message_id, strands_metrics)
    # The same messages as this library stores them by default: appended one at a time, as turns do,
    # each answer with the turn's metrics; the default ArchivePolicy moves the oldest into buckets as
    # it goes. Guarded: a guardrail redacting one message in 50 as it is written (Strands redacts the
    # newest message): the split archives the redactions with the rest.
    guarded = "restore-2000-redacted"
    factory = MongoDBSessionManagerFactory(client=client, database_name=db, collection_name="sessions")
    default = MongoDBSessionRepository(client=client, database_name=db, collection_name="sessions")
    for sid, metrics, redact in ((split, True, False), (guarded, True, True), (split_bare, False, False)):
        Agent(agent_id=AGENT, model=ScriptedModel(), session_manager=factory.create_session_manager(sid))
        for record in records:
            default.append_messages(sid, AGENT, [record])
            if metrics and record.message["role"] == "assistant":
                default.set_message_metrics(sid, AGENT, record.message_id, summary, totals)
            if redact and record.message_id % REDACT_EVERY == 0:
                redacted = SessionMessage(
                    message=record.message, message_id=record.message_id, redact_message=REDACTION
                )
                default.update_message(sid, AGENT, redacted)
    plain = client[db]["sessions"]  # the driver's defaults, as a plain call (and upstream's client) has them

    def resume(make_manager: Callable[[], SessionManager], expected: int) -> Callable[[], None]:
        def run() -> None:
            agent = Agent(agent_id=AGENT, model=ScriptedModel(), session_manager=make_manager(), callback_handler=None)
            if len(agent.messages) != expected:
                raise AssertionError(f"restored {len(agent.messages)} messages, expected {expected}")

        return run

    def find_one() -> None:
        assert plain.find_one({"_id": one}) is not None

    def upstream_list_messages() -> None:
        assert len([m.to_message() for m in UpstreamReads(client, db, "sessions").list_messages(one, AGENT)]) == LARGE

    def our_read() -> None:
        restored = default.restore_agent(split, AGENT)
        # What a restore hands the agent: the message dicts (records are built when read, see held_records).
        assert restored is not None and isinstance(restored.messages, HeldRecords)
        assert len(restored.messages.messages()) == LARGE

    def interleaved(operations: dict[str, Callable[[], None]]) -> dict[str, Stats]:
        # Round-robin, so background noise (checkpoints, the page cache) hits every operation alike.
        for operation in operations.values():
            measure(operation, repeat=0, warmup=WARMUP)
        samples: dict[str, list[float]] = {name: [] for name in operations}
        for _ in range(REPEAT):
            for name, operation in operations.items():
                # Each sample starts from a collected heap: otherwise a full collection that one
                # operation's garbage made due lands on whichever runs next (p95s of 60-90 ms).
                gc.collect()
                samples[name] += measure(operation, repeat=1, warmup=0).samples
        return {name: Stats(values) for name, values in samples.items()}

    whole = interleaved(
        {
            "upstream": resume(lambda: upstream_manager(client, db, "sessions", one), LARGE),
            "ours": resume(lambda: factory.create_session_manager(split), LARGE),
            "ours_redacted": resume(lambda: factory.create_session_manager(guarded), LARGE),
            "ours_one_document": resume(lambda: factory.create_session_manager(one), LARGE),
            "find_one": find_one,
            "upstream_bare": resume(lambda: upstream_manager(client, db, "sessions", one_bare), LARGE),
            "ours_bare": resume(lambda: factory.create_session_manager(split_bare), LARGE),
            "upstream_list_messages": upstream_list_messages,
            "restore_agent": our_read,
        }
    )
    # Strands' default conversation manager is a 40-message sliding window: once it has slid, a
    # restore starts at removed_message_count and needs only the window.
    window = 40
    path = f"agents.{AGENT}.agent_data.conversation_manager_state.removed_message_count"
    for sid in (one, split):
        plain.update_one({"_id": sid}, {"$set": {path: LARGE - window}})
    windowed = interleaved(
        {
            "upstream": resume(lambda: upstream_manager(client, db, "sessions", one), window),
            "ours": resume(lambda: factory.create_session_manager(split), window),
            "ours_one_document": resume(lambda: factory.create_session_manager(one), window),
        }
    )
    for closing in (flat, default, flat_factory, factory):
        closing.close()
    client.close()

    print(f"  a new Agent resuming a {LARGE:,}-message session (manager + Agent, every read and conversion)")
    print(line("upstream v0.2.7 (3 reads of the document; baseline)", whole["upstream"]))
    print(line("this library, default storage", whole["ours"], whole["upstream"]))
    print(line(f"  the same, 1 message in {REDACT_EVERY} redacted", whole["ours_redacted"], whole["upstream"]))
    print(line("this library, one document (ported, unwritten)", whole["ours_one_document"], whole["upstream"]))
    print(line("plain find_one of the one document", whole["find_one"], whole["upstream"]))
    print("  the same messages without any metrics (as neither library stores a turn; stricter)")
    print(line("upstream v0.2.7 (baseline)", whole["upstream_bare"]))
    print(line("this library, default storage", whole["ours_bare"], whole["upstream_bare"]))
    print("  the message read alone, converted to Strands messages")
    print(line("upstream v0.2.7 list_messages (baseline)", whole["upstream_list_messages"]))
    print(line("restore_agent, default storage", whole["restore_agent"], whole["upstream_list_messages"]))
    print(f"  the same, the agent's {window}-message sliding window having slid")
    print(line("upstream v0.2.7 (baseline)", windowed["upstream"]))
    print(line("this library, default storage", windowed["ours"], windowed["upstream"]))
    print(line("this library, one document (ported, unwritten)", windowed["ours_one_document"], windowed["upstream"]))
    result.figures[f"resume_{LARGE}"] = {name: v.summary() for name, v in whole.items()}
    result.figures[f"resume_{LARGE}_sliding_window"] = {name: v.summary() for name, v in windowed.items()}

    def versus(stats: dict[str, Stats], ours: str, baseline: str, limit: float, label: str) -> Target:
        value = stats[ours].median / stats[baseline].median
        measured = f"{value:.2f}x ({stats[ours].median:.2f} ms vs {stats[baseline].median:.2f} ms)"
        return Target(label, f"<= {limit}x its time", measured, value <= limit)

    result.targets += [
        versus(whole, "ours", "upstream", UPSTREAM_TARGET, f"resume {LARGE:,} messages (whole history) vs upstream"),
        versus(whole, "ours", "find_one", FIND_ONE_TARGET, f"resume {LARGE:,} messages vs a plain find_one"),
        versus(
            whole,
            "ours_bare",
            "upstream_bare",
            UPSTREAM_TARGET,
            f"resume {LARGE:,} messages stored without metrics vs upstream (stricter)",
        ),
        versus(
            windowed, "ours", "upstream", UPSTREAM_TARGET, f"resume {LARGE:,} messages, sliding window, vs upstream"
        ),
        versus(
            whole,
            "ours_one_document",
            "upstream",
            UPSTREAM_TARGET,
            f"resume {LARGE:,} messages kept in one document (a ported session) vs upstream",
        ),
    ]


def main() -> None:
    run_main(run, __doc__ or "")


if __name__ == "__main__":
    main()
