"""The bounded pool that runs blocking MongoDB calls for async callers."""

from __future__ import annotations

import asyncio
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
