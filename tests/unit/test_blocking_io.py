"""The bounded pool that runs blocking MongoDB calls for async callers."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest

from mongodb_session_manager import blocking_io


def test_the_pool_size_comes_from_the_environment_or_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(blocking_io.ENV_THREADS, raising=False)
    assert blocking_io.pool_size() == blocking_io.MAX_WORKERS
    monkeypatch.setenv(blocking_io.ENV_THREADS, " 8 ")
    assert blocking_io.pool_size() == 8
    for bad in ("0", "-3", "eight", "2.5"):
        monkeypatch.setenv(blocking_io.ENV_THREADS, bad)
        with pytest.raises(ValueError, match="MSM_IO_THREADS must be a positive integer"):
            blocking_io.pool_size()


def test_a_blocking_call_runs_off_the_loop_and_its_exception_arrives_unchanged() -> None:
    class Refused(Exception):
        pass

    def where() -> str:
        return threading.current_thread().name

    def fail() -> None:
        raise Refused("no")

    async def main() -> str:
        name = await blocking_io.run_blocking(where)
        with pytest.raises(Refused, match="no"):
            await blocking_io.run_blocking(fail)
        return name

    assert asyncio.run(main()).startswith("msm-io")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX fork")
def test_a_forked_child_gets_a_pool_of_its_own() -> None:
    """The parent's pool has a worker thread; the child inherits the object, not the thread."""
    assert blocking_io.io_executor().submit(lambda: "parent").result(timeout=5) == "parent"
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what its pool did, then leave without running pytest's teardown
        try:
            answer = blocking_io.io_executor().submit(lambda: "child").result(timeout=5)
        except BaseException as exc:
            answer = type(exc).__name__
        os.write(write, answer.encode())
        os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    answer = os.read(read, 100).decode()
    os.close(read)
    assert answer == "child", f"the child's submitted work did not run: {answer}"
    assert os.waitstatus_to_exitcode(status) == 0
