"""Benchmark 4: resuming a 1,000-message conversation, MongoDB vs Strands' FileSessionManager.

The same 1,000 messages (~200-character questions, ~800-character answers) are written through
both managers with ``append_message``; then, repeatedly, a new manager and a new ``Agent`` are
built for the session, which restores every message. ``FileSessionManager`` on local disk (one
JSON file per message, read back from the page cache) is the baseline, measured in the same run.

Target: MongoDB at least 5x faster. Run: uv run python benchmarks/bench_restore.py
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Callable

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
from strands import Agent
from strands.session.file_session_manager import FileSessionManager
from strands.session.session_manager import SessionManager

from mongodb_session_manager import MongoDBSessionManagerFactory
from mongodb_session_manager.testing import ScriptedModel

MESSAGES = 1_000
REPEAT, WARMUP = 40, 3
SESSION_ID = "restore-1000"
AGENT = "assistant"
TARGET = 5.0


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

    speedup = ratio(on_disk.median, mongo.median)
    print(line(f"FileSessionManager ({fs_type}, {files} files; baseline)", on_disk))
    print(line("MongoDBSessionManager via factory", mongo, on_disk))
    print(f"  writing the session: MongoDB {mongo_write:.3f} ms/message, files {file_write:.3f} ms/message")
    result.figures = {
        "file_session_manager": on_disk.summary(),
        "mongodb_session_manager": mongo.summary(),
        "speedup_median": round(speedup, 2),
        "write_ms_per_message": {"mongodb": round(mongo_write, 3), "file": round(file_write, 3)},
        "file_storage": {"filesystem": fs_type, "files": files},
    }
    result.targets = [
        Target(
            f"restore {MESSAGES:,} messages vs FileSessionManager",
            f">= {TARGET:.0f}x faster",
            f"{speedup:.2f}x ({mongo.median:.2f} ms vs {on_disk.median:.2f} ms)",
            speedup >= TARGET,
        )
    ]
    return result


def main() -> None:
    run_main(run, __doc__ or "")


if __name__ == "__main__":
    main()
