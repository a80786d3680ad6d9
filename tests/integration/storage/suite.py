"""Strands' ``Storage`` protocol, written once and run against every backend.

:class:`StorageContract` holds the tests; a ``test_*.py`` module subclasses it and provides the
``storage`` fixture. Strands' own ``InMemoryStorage`` and ``LocalFileStorage`` run the same suite as
the reference, so every assertion is behaviour Strands' snapshot code relies on, and
``MongoDBStorage`` passing it proves parity. :func:`transcript` records the results of one fixed
script of operations; the cross-backend test asserts the transcripts are identical.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from strands.storage import Storage
from strands.types.exceptions import StorageError

SID = "contract-session"
LATEST = f"session/{SID}/scopes/agent/main/snapshots/snapshot_latest.json"
HISTORY = (
    f"session/{SID}/scopes/agent/main/snapshots/immutable_history/snapshot_0190a1b2-0000-7000-8000-000000000001.json"
)
GRAPH = f"session/{SID}/scopes/multiAgent/graph-1/snapshots/snapshot_latest.json"
STASH = f"context/{SID}/stash/entry-1.json"

#: Payloads a storage must give back byte for byte.
PAYLOADS: dict[str, bytes] = {
    "canonical-json": json.dumps(
        {"scope": "agent", "data": {"messages": [{"text": "héllo ✓"}]}}, ensure_ascii=False
    ).encode(),
    "spaced-json": b'{ "a" : 1 ,\n "b": [1.0, 2.50] }',
    "ascii-escaped-json": b'{"t": "caf\\u00e9"}',
    "big-int-json": b'{"n": 123456789012345678901234567890}',
    "dollar-keys-json": b'{"$ref": "#/defs/x", "$id": "y", "a.b": 1}',
    "json-array": b"[1, 2, 3]",
    "binary": bytes(range(256)) + b"\x00\xff\xfe",
    "empty": b"",
    "not-utf8": b"\xc3\x28 invalid",
}


class StorageContract:
    """Behaviour every ``Storage`` implementation must have. Subclasses provide ``storage``."""

    @pytest.fixture
    def storage(self) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def test_is_a_strands_storage(self, storage: Any) -> None:
        assert isinstance(storage, Storage)

    @pytest.mark.parametrize("name", sorted(PAYLOADS))
    async def test_bytes_round_trip_exactly(self, storage: Any, name: str) -> None:
        for key in (LATEST, HISTORY, STASH, f"other/{name}.bin"):
            await storage.write(key, PAYLOADS[name])
            assert await storage.read(key) == PAYLOADS[name]

    async def test_read_missing_is_none(self, storage: Any) -> None:
        assert await storage.read(LATEST) is None
        assert await storage.read("nothing/here.json") is None

    async def test_overwrite_replaces(self, storage: Any) -> None:
        for key in (LATEST, HISTORY, STASH):
            await storage.write(key, b'{"v": 1}')
            await storage.write(key, b'{"v": 2}')
            assert await storage.read(key) == b'{"v": 2}'

    async def test_delete_and_delete_missing(self, storage: Any) -> None:
        for key in (LATEST, HISTORY, STASH):
            await storage.write(key, b"x")
            await storage.delete(key)
            assert await storage.read(key) is None
            await storage.delete(key)  # a no-op, not an error
        assert await storage.list("") == []

    async def test_list_returns_full_sorted_keys_by_prefix(self, storage: Any) -> None:
        keys = [GRAPH, STASH, HISTORY, LATEST, "a/b/c.json", "a/bc.json", "z.json"]
        for key in keys:
            await storage.write(key, b"{}")
        assert await storage.list("") == sorted(keys)
        assert await storage.list(f"session/{SID}/") == sorted([GRAPH, HISTORY, LATEST])
        assert await storage.list(f"session/{SID}/scopes/agent/main/snapshots/immutable_history/") == [HISTORY]
        assert await storage.list("a/b") == ["a/b/c.json", "a/bc.json"]
        assert await storage.list("a/b/") == ["a/b/c.json"]
        assert await storage.list("context/") == [STASH]
        assert await storage.list("session/other/") == []

    async def test_keys_are_normalised(self, storage: Any) -> None:
        await storage.write("//a//b/c.json/", b"1")
        assert await storage.read("a/b/c.json") == b"1"
        assert await storage.list("/a//") == ["a/b/c.json"]
        await storage.delete("/a/b/c.json")
        assert await storage.list("") == []

    @pytest.mark.parametrize("key", ["", "/", "a/../b", "..", "a\\b"])
    async def test_invalid_keys_are_refused(self, storage: Any, key: str) -> None:
        with pytest.raises(StorageError):
            await storage.write(key, b"x")
        with pytest.raises(StorageError):
            await storage.read(key)

    async def test_namespace_scopes_keys(self, storage: Any) -> None:
        scoped = storage.namespace("session")
        await scoped.write(f"{SID}/scopes/agent/main/snapshots/snapshot_latest.json", b'{"n": 1}')
        assert await storage.read(LATEST) == b'{"n": 1}'
        await storage.write(STASH, b"s")
        assert await scoped.list("") == [f"{SID}/scopes/agent/main/snapshots/snapshot_latest.json"]
        nested = scoped.namespace(SID).namespace("scopes")
        assert await nested.list("agent/") == ["agent/main/snapshots/snapshot_latest.json"]
        assert await nested.read("agent/main/snapshots/snapshot_latest.json") == b'{"n": 1}'
        await nested.delete("agent/main/snapshots/snapshot_latest.json")
        assert await storage.list("") == [STASH]

    async def test_search_scores_keys_and_content(self, storage: Any) -> None:
        await storage.write("notes/dark-mode.md", b"toggle the dark theme in settings")
        await storage.write("notes/light.md", b"the light theme is default")
        await storage.write(LATEST, json.dumps({"data": {"messages": [{"text": "dark roast coffee"}]}}).encode())
        await storage.write(STASH, b"nothing relevant")
        results = await storage.search("dark theme")
        assert [(r.key, r.score) for r in results] == [
            ("notes/dark-mode.md", 2),
            ("notes/light.md", 1),  # ties keep key order
            (LATEST, 1),
        ]
        assert results[0].data == b"toggle the dark theme in settings"
        assert await storage.search("the is of") == []
        scoped = await storage.namespace("notes").search("notes dark")
        assert [(r.key, r.score) for r in scoped] == [("dark-mode.md", 1)]

    def test_a_second_event_loop_works(self, storage: Any) -> None:
        # Strands' sync entry points run the storage in a new event loop per call (run_async).
        asyncio.run(storage.write(LATEST, b'{"loop": 1}'))
        assert asyncio.run(storage.read(LATEST)) == b'{"loop": 1}'
        asyncio.run(storage.write(STASH, b"2"))
        assert asyncio.run(storage.list("")) == sorted([LATEST, STASH])


async def transcript(storage: Any) -> list[Any]:
    """The results of one fixed script of operations (what the cross-backend test compares)."""
    out: list[Any] = []
    for name, payload in sorted(PAYLOADS.items()):
        await storage.write(f"p/{name}", payload)
    for key in (LATEST, HISTORY, GRAPH, STASH):
        await storage.write(key, PAYLOADS["canonical-json"])
    out.append(await storage.list(""))
    out.append([await storage.read(f"p/{name}") for name in sorted(PAYLOADS)])
    for prefix in ("p/", "session/", f"session/{SID}/scopes/", "context", "q"):
        out.append(await storage.list(prefix))
    for query in ("héllo agent", "scope data", "invalid", "the"):
        out.append([(r.key, r.score, r.data) for r in await storage.search(query)])
    await storage.delete(HISTORY)
    await storage.delete("p/empty")
    out.append(await storage.list(""))
    scoped = storage.namespace("session").namespace(SID)
    out.append(await scoped.list(""))
    out.append([(r.key, r.score) for r in await scoped.search("agent main")])
    return out
