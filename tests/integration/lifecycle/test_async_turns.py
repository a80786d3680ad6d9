"""``async def`` services: creation, restore and every turn's writes happen off the event loop.

Each MongoDB command is recorded with the thread that sent it; none may come from the thread that
runs the event loop (that would block every other request of the service while it waits).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from pymongo import MongoClient, monitoring
from strands import Agent

from mongodb_session_manager import MongoDBSessionManager, MongoDBSessionManagerFactory
from mongodb_session_manager.errors import SessionBusyError
from mongodb_session_manager.testing import ScriptedModel

from ._turn_worker import SlowModel
from .test_failed_turns import FailingModel, Throttled


class ThreadRecorder(monitoring.CommandListener):
    IGNORED = frozenset({"hello", "ismaster", "isMaster", "endSessions", "ping"})

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name not in self.IGNORED:
            self.calls.append((event.command_name, threading.get_ident()))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.fixture
def recorded(mongo_uri: str, db_name: str) -> Any:
    recorder = ThreadRecorder()
    client: MongoClient[Any] = MongoClient(mongo_uri, event_listeners=[recorder])
    yield recorder, {"client": client, "database_name": db_name, "collection_name": "sessions"}
    client.close()


def test_an_async_request_never_touches_mongodb_from_the_event_loop(recorded) -> None:
    recorder, options = recorded

    async def request(prompt: str) -> tuple[str, int]:
        manager = await MongoDBSessionManager.acreate("async-1", **options)
        agent = Agent(agent_id="assistant", model=ScriptedModel(), session_manager=manager, callback_handler=None)
        reply = str(await agent.invoke_async(prompt))
        await manager.aupdate_metadata({"last": prompt})
        return reply, threading.get_ident()

    async def main() -> list[tuple[str, int]]:
        first = await request("first")  # creates the session and the agent
        return [first, await request("second")]  # a stateless request restoring it

    results = asyncio.run(main())
    loop_thread = results[0][1]
    assert recorder.calls, "the requests did talk to MongoDB"
    assert all(thread != loop_thread for _, thread in recorder.calls), recorder.calls
    assert "**second**" in results[1][0]
    names = [name for name, _ in recorder.calls]
    assert names.count("find") >= 1 and "findAndModify" not in names


def test_a_restored_agent_gets_its_history_from_the_async_read(recorded) -> None:
    recorder, options = recorded

    async def main() -> list[str]:
        first = await MongoDBSessionManager.acreate("async-restore", **options)
        agent = Agent(agent_id="a", model=ScriptedModel(["one"]), session_manager=first, callback_handler=None)
        await agent.invoke_async("hello")
        second = await MongoDBSessionManager.acreate("async-restore", **options)
        recorder.calls.clear()
        restored = Agent(agent_id="a", model=ScriptedModel(), session_manager=second, callback_handler=None)
        assert recorder.calls == [], "Agent() does no I/O: the restore was read by acreate"
        return [m["content"][0]["text"] for m in restored.messages]

    assert asyncio.run(main()) == ["hello", "one"]


def test_a_failed_async_turn_is_rolled_back_and_the_next_one_works(recorded, collection) -> None:
    _, options = recorded

    async def main() -> None:
        manager = await MongoDBSessionManager.acreate("async-fail", **options)
        agent = Agent(
            agent_id="a",
            model=FailingModel(["ok", "fine"], fail_on={1}),
            session_manager=manager,
            callback_handler=None,
        )
        await agent.invoke_async("one")
        with pytest.raises(Throttled):
            await agent.invoke_async("two")
        async for _ in agent.stream_async("three"):
            pass

    asyncio.run(main())
    texts = [
        m["message"]["content"][0]["text"]
        for m in collection.find_one({"_id": "async-fail"})["agents"]["a"]["messages"]
    ]
    assert texts == ["one", "ok", "three", "fine"]


class GatedModel(ScriptedModel):
    """Answers only once ``gate`` is set: the turn is mid-call when the caller gives up."""

    def __init__(self, gate: asyncio.Event) -> None:
        super().__init__()
        self.gate = gate

    async def stream(self, *args: Any, **kwargs: Any) -> Any:
        await self.gate.wait()
        async for event in super().stream(*args, **kwargs):
            yield event


@pytest.mark.parametrize("abandon", ["task cancelled", "wait_for timeout"])
def test_an_abandoned_async_turn_is_rolled_back_and_frees_the_agent_at_once(recorded, collection, abandon: str) -> None:
    """A cancelled request task (the server's reaction to a client that went away) or a request
    timeout ends the turn in the middle of the model call: nothing of it is stored, the lease is
    released there and then (the next request, which waits for no one, is served), and the same agent
    object can go on. A stream closed mid-answer: ``test_abandoned_streams.py``."""
    _, options = recorded

    async def main() -> tuple[list[str], Any, list[str]]:
        first = await MongoDBSessionManager.acreate("async-abandoned", **options)
        agent = Agent(agent_id="a", model=ScriptedModel(), session_manager=first, callback_handler=None)
        await agent.invoke_async("kept")
        manager = await MongoDBSessionManager.acreate("async-abandoned", **options)
        gate = asyncio.Event()
        abandoned = Agent(agent_id="a", model=GatedModel(gate), session_manager=manager, callback_handler=None)
        if abandon == "task cancelled":
            task = asyncio.create_task(abandoned.invoke_async("dropped"))
            await asyncio.sleep(0.2)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        else:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(abandoned.invoke_async("dropped"), 0.2)
        in_memory = [m["content"][0]["text"][:5] for m in abandoned.messages]
        lease = collection.find_one({"_id": "async-abandoned"})["agents"]["a"].get("lease")
        nobody_waits = await MongoDBSessionManager.acreate("async-abandoned", busy_timeout=0.0, **options)
        after = Agent(agent_id="a", model=ScriptedModel(), session_manager=nobody_waits, callback_handler=None)
        await after.invoke_async("next")  # SessionBusyError if the abandoned turn still held the lease
        abandoned.model = ScriptedModel()
        await abandoned.invoke_async("again")  # stale after "next": reloaded, then answered after it
        return in_memory, lease, [m["content"][0]["text"][:5] for m in abandoned.messages]

    in_memory, lease, history = asyncio.run(main())
    assert in_memory == ["kept", "Thank"], "the abandoned turn is gone from the agent too"
    assert lease is None, "released when the turn was abandoned, not left to expire"
    stored = collection.find_one({"_id": "async-abandoned"})["agents"]["a"]["messages"]
    assert [m["message"]["content"][0]["text"][:5] for m in stored] == [
        "kept",
        "Thank",
        "next",
        "Thank",
        "again",
        "Thank",
    ]
    assert history == ["kept", "Thank", "next", "Thank", "again", "Thank"]


def test_concurrent_async_turns_on_one_agent_take_turns_or_are_refused(recorded, collection) -> None:
    _, options = recorded

    async def invoke(prompt: str, busy_timeout: float) -> str:
        manager = await MongoDBSessionManager.acreate("async-race", busy_timeout=busy_timeout, **options)
        agent = Agent(agent_id="a", model=SlowModel(0.2), session_manager=manager, callback_handler=None)
        try:
            await agent.invoke_async(prompt)
        except SessionBusyError:
            return "busy"
        return "done"

    async def main() -> list[str]:
        await invoke("setup", 5)
        patient = await asyncio.gather(invoke("p1", 10), invoke("p2", 10), invoke("p3", 10))
        running = asyncio.create_task(invoke("i1", 10))
        await asyncio.sleep(0.1)  # i1 holds the lease now (its model takes 0.2 s)
        impatient = await invoke("i2", 0.0)
        return [*patient, await running, impatient]

    outcome = asyncio.run(main())
    assert outcome[:3] == ["done"] * 3, "waiting invocations get their turn, one after the other"
    assert outcome[3:] == ["done", "busy"]
    messages = collection.find_one({"_id": "async-race"})["agents"]["a"]["messages"]
    assert [m["message"]["role"] for m in messages] == ["user", "assistant"] * 5


def test_an_async_created_manager_serves_a_sync_agent_call_and_the_async_feature_methods(recorded) -> None:
    _, options = recorded
    manager = asyncio.run(MongoDBSessionManager.acreate("async-then-sync", **options))
    agent = Agent(agent_id="a", model=ScriptedModel(["sync answer"]), session_manager=manager, callback_handler=None)
    assert str(agent("a sync call")).strip() == "sync answer"

    async def features() -> dict[str, Any]:
        await manager.aupdate_metadata({"status": "open", "tmp": 1})
        await manager.adelete_metadata(["tmp"])
        await manager.aadd_feedback({"rating": "up", "comment": "good"})
        await manager.aupdate_agent_config("a", model="override")
        return {
            "metadata": await manager.aget_metadata(),
            "feedbacks": [f["rating"] for f in await manager.aget_feedbacks()],
            "count": await manager.aget_message_count("a"),
            "agents": [a["agent_id"] for a in await manager.alist_agents()],
            "model": (await manager.aget_agent_config("a") or {})["model"],
            "password": len(await manager.aget_session_viewer_password()),
        }

    assert asyncio.run(features()) == {
        "metadata": {"status": "open"},
        "feedbacks": ["up"],
        "count": 2,
        "agents": ["a"],
        "model": "override",
        "password": 32,
    }


def test_the_factory_creates_managers_off_the_loop(mongo_uri: str, db_name: str) -> None:
    factory = MongoDBSessionManagerFactory(mongo_uri, database_name=db_name, collection_name="sessions")
    try:

        async def main() -> str:
            manager = await factory.acreate_session_manager("factory-async")
            agent = Agent(agent_id="a", model=ScriptedModel(["hi"]), session_manager=manager, callback_handler=None)
            return str(await agent.invoke_async("hello"))

        assert asyncio.run(main()).strip() == "hi"
    finally:
        factory.close()


class PlainSubclass(MongoDBSessionManager):
    """A user's subclass whose constructor does not pass extra keywords on."""

    def __init__(self, session_id: str, client: Any, database_name: str, collection_name: str) -> None:
        super().__init__(session_id, client=client, database_name=database_name, collection_name=collection_name)


@pytest.mark.parametrize("create", ["factory", "classmethod", "subclass"])
def test_an_async_stateless_request_is_one_read_the_lease_and_the_commit(recorded, create: str) -> None:
    recorder, options = recorded
    factory = MongoDBSessionManagerFactory(client=options["client"], database_name=options["database_name"])

    async def request(prompt: str) -> list[str]:
        if create == "factory":
            manager = await factory.acreate_session_manager(f"rt-{create}", collection_name="sessions")
        elif create == "classmethod":
            manager = await MongoDBSessionManager.acreate(f"rt-{create}", **options)
        else:
            manager = await PlainSubclass.acreate(f"rt-{create}", **options)
        agent = Agent(agent_id="assistant", model=ScriptedModel(), session_manager=manager, callback_handler=None)
        await agent.invoke_async(prompt)
        return [m["content"][0]["text"] for m in agent.messages]

    async def main() -> list[str]:
        await request("first")  # creates the session and the agent
        recorder.calls.clear()
        return await request("second")

    texts = asyncio.run(main())
    names = [name for name, _ in recorder.calls]
    if create == "subclass":  # it cannot be handed the flag: the session read, then the agents
        assert names == ["find", "find", "update", "update"]
    else:
        assert names == ["find", "update", "update"], "session and agents in one read, lease, commit"
    assert texts[0] == "first" and texts[2] == "second", "the restore came from that one read"
    factory.close()


def test_without_a_policy_the_async_read_computes_the_windows_on_the_server(recorded) -> None:
    # Without an archive policy a document's arrays may be of any length: the one read is the
    # aggregation that cuts every agent's window on the server, not the whole document.
    recorder, options = recorded
    options = {**options, "archive_policy": None}

    async def request(prompt: str) -> list[str]:
        manager = await MongoDBSessionManager.acreate("rt-no-policy", **options)
        agent = Agent(agent_id="assistant", model=ScriptedModel(), session_manager=manager, callback_handler=None)
        await agent.invoke_async(prompt)
        return [m["content"][0]["text"] for m in agent.messages]

    async def main() -> list[str]:
        await request("first")
        recorder.calls.clear()
        return await request("second")

    texts = asyncio.run(main())
    assert [name for name, _ in recorder.calls] == ["aggregate", "update", "update"]
    assert texts[0] == "first" and texts[2] == "second"


def test_an_async_created_new_session_is_read_once_and_created_once(recorded) -> None:
    recorder, options = recorded

    async def main() -> MongoDBSessionManager:
        return await MongoDBSessionManager.acreate("brand-new", **options)

    manager = asyncio.run(main())
    assert [name for name, _ in recorder.calls if name != "createIndexes"] == ["find", "insert"]
    assert manager.session.session_id == "brand-new"
    stored = options["client"][options["database_name"]]["sessions"].find_one({"_id": "brand-new"})
    assert stored is not None and stored["session_id"] == "brand-new"
