"""Pure logic of the snapshot layout: routing, prefixes, payload fidelity, escaping, search scoring."""

from __future__ import annotations

import json

import bson
import pytest
from strands.storage import InMemoryStorage
from strands.storage.search.keyword import KeywordSearchStrategy
from strands.types.exceptions import StorageError

from mongodb_session_manager import documents_snapshot as ds
from mongodb_session_manager import documents_snapshot_features as dsf

LATEST = "session/s1/scopes/agent/main/snapshots/snapshot_latest.json"
HISTORY = "session/s1/scopes/agent/main/snapshots/immutable_history/snapshot_0190.json"


def test_routes() -> None:
    assert ds.route(LATEST) == ds.Route("latest", "s1", "agent", "main")
    assert ds.route("session/s1/scopes/multiAgent/g/snapshots/snapshot_latest.json").scope == "multiAgent"
    assert ds.route(HISTORY).kind == "history" and ds.route(HISTORY).owner_id == "main"
    assert ds.route("context/s1/stash/x.json").kind == "kv"
    assert ds.route("session/s1/notes.json").kind == "kv"
    # A session id that cannot be a document id of this library stays a plain key.
    assert ds.route("session/$x/scopes/agent/main/snapshots/snapshot_latest.json").kind == "kv"


@pytest.mark.parametrize(
    ("prefix", "kinds"),
    [
        ("", {"latest", "history", "kv"}),
        ("sess", {"latest", "history", "kv"}),
        ("session/s1/", {"latest", "history", "kv"}),
        ("context/", {"kv"}),
        ("session/s1/scopes/agent/main/snapshots/immutable_history/", {"history"}),
    ],
)
def test_kinds_for_prefix(prefix: str, kinds: set[str]) -> None:
    assert ds.kinds_for_prefix(prefix) == kinds


def test_prefix_range_matches_startswith() -> None:
    keys = ["a/b", "a/b/c", "a/bc", "a/c", "a0", "a/b\U0010ffff", "a/a"]
    rng = ds.prefix_range("a/b")
    assert sorted(k for k in keys if rng["$gte"] <= k < rng["$lt"]) == sorted(k for k in keys if k.startswith("a/b"))
    assert ds.prefix_range("") == {"$gte": ""}


@pytest.mark.parametrize("prefix", ["kv/\U0010ffff", "\U0010ffff\U0010ffff", "a/\ud7ff", "a\U0010ffff"])
def test_prefix_range_at_the_edges_of_unicode_is_exact_and_encodable(prefix: str) -> None:
    keys = [prefix, prefix + "x", prefix + "\U0010ffff", prefix[:-1], "a/\ue000", "b", "kv/z", "\U0010ffff"]
    rng = ds.prefix_range(prefix)
    bson.encode({"range": rng})  # no surrogate bound: BSON strings are UTF-8
    inside = [k for k in keys if rng["$gte"] <= k and ("$lt" not in rng or k < rng["$lt"])]
    assert sorted(inside) == sorted(k for k in keys if k.startswith(prefix))


@pytest.mark.parametrize(
    "data",
    [
        json.dumps({"a": [1, 2.5, None, True], "t": "é✓"}, ensure_ascii=False).encode(),
        b'{"a":1}',  # compact: not what Strands writes
        b'{"n": 99999999999999999999}',
        b'{"$ref": "x", "$id": 1}',
        b'{"a.b": 1}',
        b'{"x": NaN}',
        b"[1]",
        b"\xff\x00",
        b"",
    ],
)
def test_payload_round_trips_through_bson(data: bytes) -> None:
    stored = bson.decode(bson.encode(ds.encode_payload(data)))
    assert ds.decode_payload(stored) == data


def test_canonical_json_is_kept_readable_and_the_rest_raw() -> None:
    canonical = json.dumps({"k": "v", "n": [1]}).encode()
    assert ds.encode_payload(canonical)["data"] == {"k": "v", "n": [1]}
    assert bytes(ds.encode_payload(b'{"k":"v"}')["raw"]) == b'{"k":"v"}'


def test_escape_is_reversible_and_field_safe() -> None:
    for value in ["a.b", "$x", "50%", "a\x00b", "%2E", "plain"]:
        escaped = ds.escape_field(value)
        assert "." not in escaped and not escaped.startswith("$") and "\x00" not in escaped
        assert ds.unescape_field(escaped) == value


@pytest.mark.parametrize("key", ["", "/", "a/../b", "a\\b", "kv/\ud800", 5])
def test_invalid_keys(key: str) -> None:
    with pytest.raises(StorageError):
        ds.normalize_key(key)


def test_namespace_prefix() -> None:
    assert ds.namespace_prefix("", "session") == "session/"
    assert ds.namespace_prefix("session/", "/s1//") == "session/s1/"
    assert ds.namespace_prefix("x/", "") == "x/"


async def test_score_equals_strands_keyword_search() -> None:
    storage = InMemoryStorage()
    entries = {"notes/dark-mode.md": b"toggle dark theme", "x/theme.txt": b"nothing", "y.json": b'{"dark": 1}'}
    for key, data in entries.items():
        await storage.write(key, data)
    expected = {r.key: r.score for r in await KeywordSearchStrategy().search(storage, "dark theme toggle")}
    query = ds.query_tokens("dark theme toggle")
    ours = {k: ds.score(query, k, ds.content_tokens(v)) for k, v in entries.items()}
    assert {k: v for k, v in ours.items() if v} == expected


def test_latest_pipeline_literalises_user_data() -> None:
    data = json.dumps({"data": {"messages": [{"text": "$cost is $5"}]}}).encode()
    pipeline = ds.write_latest_pipeline(ds.route(LATEST), LATEST, data, at=None)
    fields = pipeline[1]["$set"]
    assert fields["snapshots.agent.main.data"] == {"$literal": json.loads(data)}
    assert fields["snapshots.agent.main.message_count"] == {"$literal": 1}


def test_agents_from_document() -> None:
    doc = {
        "agent_counts": [{"k": "b", "c": 2}, {"k": "a%2Ex", "c": 4}],
        "agent_features": [{"k": "a%2Ex", "model": "m", "system_prompt": None, "totals": {"turns": 2}}],
    }
    assert dsf.agents_from_document(doc) == [
        {"agent_id": "a.x", "model": "m", "system_prompt": None, "message_count": 4, "totals": {"turns": 2}},
        {"agent_id": "b", "model": None, "system_prompt": None, "message_count": 2, "totals": {}},
    ]


def test_base64_bytes_are_not_indexed_for_search() -> None:
    from strands.types.session import encode_bytes_values

    image = bytes(range(256)) * 40
    payload = json.dumps(
        encode_bytes_values({"content": [{"text": "see the photo"}, {"image": {"source": {"bytes": image}}}]}),
        ensure_ascii=False,
    ).encode()
    tokens = ds.content_tokens(payload)
    assert {"see", "photo", "image", "bytes", "__bytes_encoded__", "data", "true"} <= set(tokens)
    assert len(tokens) < 15  # the base64 of 10 KB of bytes would be hundreds of tokens
