"""Search and field discovery against the real mongod: filters, dates, pagination, enum detection."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from pymongo import MongoClient, monitoring

from mongodb_session_manager import documents as d
from session_viewer.backend import queries as q

from .conftest import BULK_COUNT, GLOBAL, AppFactory, SeededDatabase
from .seed import bulk_sessions, rich_sessions

SEARCH = "/api/v1/sessions/search"
ALL = rich_sessions() + bulk_sessions(BULK_COUNT)


def search(api: TestClient, **params: Any) -> dict[str, Any]:
    if isinstance(params.get("filters"), dict | list):
        params["filters"] = json.dumps(params["filters"])
    response = api.get(SEARCH, headers=GLOBAL, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def ids(body: dict[str, Any]) -> list[str]:
    return [s["session_id"] for s in body["sessions"]]


def expected(predicate: Any) -> set[str]:
    return {s.session_id for s in ALL if predicate(s.metadata)}


# ---- pagination ------------------------------------------------------------------------------------


def test_default_page_newest_first_with_total(api: TestClient, seeded: SeededDatabase) -> None:
    body = search(api)
    assert body["total"] == seeded.total == len(ALL)
    assert (body["page"], body["page_size"], body["total_pages"]) == (1, 20, 2)
    assert len(body["sessions"]) == 20
    created = [s["created_at"] for s in body["sessions"]]
    assert created == sorted(created, reverse=True)
    assert body["sessions"][0]["session_id"] == ALL[-1].session_id  # the last one seeded


def test_pages_cover_every_session_exactly_once(api: TestClient) -> None:
    seen: list[str] = []
    for page in range(1, 5):
        seen += ids(search(api, page=page, page_size=7))
    assert len(seen) == len(set(seen)) == len(ALL)
    assert search(api, page=50, page_size=7)["sessions"] == []


def test_page_sizes_are_clamped_not_refused(api: TestClient) -> None:
    huge = search(api, page_size=10**12)
    assert huge["page_size"] == 100 and len(huge["sessions"]) == len(ALL)
    assert search(api, page_size=0)["page_size"] == 1
    assert search(api, page_size=-20)["page_size"] == 1


def test_rows_carry_counts_and_metadata(api: TestClient) -> None:
    [row] = search(api, session_id="support-ada-001")["sessions"]
    assert row["agent_ids"] == ["billing", "support"]
    assert row["message_count"] == 10
    assert row["feedback_count"] == 1
    assert row["metadata"]["customer_name"] == "Ada Lovelace"
    assert row["metadata"]["preferred_contact"] == "email"  # set by the agent's metadata tool
    assert {
        "session_id",
        "session_type",
        "created_at",
        "updated_at",
        "metadata",
        "agent_ids",
        "message_count",
        "feedback_count",
    } <= set(row)


def test_search_never_transfers_message_arrays(mongo_uri: str, seeded: SeededDatabase) -> None:
    """What the server sends back for the viewer's search pipeline, observed on the wire."""

    class Replies(monitoring.CommandListener):
        def __init__(self) -> None:
            self.replies: list[Any] = []

        def started(self, event: monitoring.CommandStartedEvent) -> None:
            pass

        def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
            self.replies.append(event.reply)

        def failed(self, event: monitoring.CommandFailedEvent) -> None:
            pass

    listener = Replies()
    client: MongoClient[Any] = MongoClient(mongo_uri, event_listeners=[listener])
    try:
        pipeline = q.search_pipeline({}, q.sort_spec(None, None, [d.CREATED_AT]), q.Page(1, 100))
        rows = list(client[seeded.name]["sessions"].aggregate(pipeline))
    finally:
        client.close()
    assert len(rows) == len(ALL)
    wire = json.dumps([r for r in listener.replies], default=str)
    assert '"messages"' not in wire and '"agents"' not in wire and "session_viewer_password" not in wire
    assert "preferred contact is email" not in wire, "a later message never travels"
    [ada] = [r for r in rows if r["session_id"] == "support-ada-001"]
    assert ada["preview"] == "Hi, my order 1001 arrived damaged."  # only the first message, as a preview


# ---- filters ----------------------------------------------------------------------------------------


def test_session_id_contains_is_explicit_and_case_insensitive(api: TestClient) -> None:
    body = search(api, session_id="ADA-0", session_id_match="contains")
    assert ids(body) == ["support-ada-001"]
    assert body["slow"], "contains cannot use the index and says so"
    assert search(api, session_id="ADA-0")["total"] == 0, "the default is an indexed prefix match"
    matched = search(api, session_id="case-001", session_id_match="contains", page_size=100)
    assert set(ids(matched)) == {f"case-{n:04d}" for n in range(10, 20)}


def test_session_id_prefix_by_default_and_exact(api: TestClient) -> None:
    prefix = search(api, session_id="case-001", page_size=100)
    assert set(ids(prefix)) == {f"case-{n:04d}" for n in range(10, 20)} and prefix["slow"] == []
    assert ids(search(api, session_id="support-ada-001", session_id_match="exact")) == ["support-ada-001"]
    assert search(api, session_id="support-ada", session_id_match="exact")["total"] == 0


def test_metadata_equality_and_logical_and(api: TestClient) -> None:
    escalated = search(api, filters={"metadata.status": "escalated"}, page_size=100)
    assert set(ids(escalated)) == expected(lambda m: m.get("status") == "escalated")
    assert escalated["total"] == len(expected(lambda m: m.get("status") == "escalated"))
    both = search(api, filters={"metadata.status": "escalated", "metadata.priority": "high"}, page_size=100)
    assert set(ids(both)) == expected(lambda m: m.get("status") == "escalated" and m.get("priority") == "high")
    assert both["total"] < escalated["total"]


def test_typed_values_numbers_and_booleans(api: TestClient) -> None:
    nines = search(api, filters={"metadata.score": 9})
    assert set(ids(nines)) == expected(lambda m: m.get("score") == 9) == {"support-ada-001", "case-0009"}
    assert search(api, filters={"metadata.score": "9"})["total"] == 0  # a string is not the number 9
    assert ids(search(api, filters={"metadata.vip": True})) == ["billing-grace-002"]


def test_contains_filter_on_text(api: TestClient) -> None:
    body = search(api, filters=[{"field": "metadata.customer_name", "op": "contains", "value": "LOVE"}])
    assert ids(body) == ["support-ada-001"]


def test_created_at_range(api: TestClient) -> None:
    today = datetime.now(UTC).date()
    assert search(api, created_from=(today - timedelta(days=1)).isoformat())["total"] == len(ALL)
    assert search(api, created_to=today.isoformat())["total"] == len(ALL)  # a bare end date includes the day
    assert search(api, created_from=(today + timedelta(days=2)).isoformat())["total"] == 0
    assert search(api, created_to="2000-01-01T00:00:00Z")["total"] == 0


def test_created_at_range_is_precise(api: TestClient) -> None:
    rows = search(api, sort_by="created_at", sort_order="asc", page_size=100)["sessions"]
    middle = rows[10]["created_at"]
    after = search(api, created_from=middle, sort_by="created_at", sort_order="asc", page_size=100)
    assert ids(after) == [r["session_id"] for r in rows[10:]]
    before = search(api, created_to=middle, sort_by="created_at", sort_order="asc", page_size=100)
    assert ids(before) == [r["session_id"] for r in rows[:10]]


def test_sorting_on_an_indexed_field(api: TestClient) -> None:
    body = search(api, sort_by="metadata.score", sort_order="desc", filters={"metadata.status": "open"})
    scores = [s["metadata"]["score"] for s in body["sessions"] if "score" in s["metadata"]]
    assert scores == sorted(scores, reverse=True)


# ---- field discovery -----------------------------------------------------------------------------------


def test_metadata_fields_are_the_indexed_ones_with_types_and_enums(api: TestClient) -> None:
    fields = {f["field"]: f for f in api.get("/api/v1/metadata-fields", headers=GLOBAL).json()["fields"]}
    assert set(fields) == {
        "session_id",
        "created_at",
        "updated_at",
        "metadata.status",
        "metadata.priority",
        "metadata.channel",
        "metadata.customer_name",
        "metadata.score",
        "metadata.vip",
    }
    assert "metadata.preferred_contact" not in fields  # stored, but not indexed
    assert fields["metadata.status"] == {
        "field": "metadata.status",
        "label": "status",
        "type": "enum",
        "values": ["closed", "escalated", "open"],
    }
    assert fields["metadata.priority"]["values"] == ["high", "low", "medium"]
    assert fields["metadata.customer_name"]["type"] == "string"  # configured, but more than ENUM_MAX_VALUES
    assert fields["metadata.customer_name"]["values"] is None
    assert fields["metadata.score"]["type"] == "number"
    assert fields["metadata.vip"] == {"field": "metadata.vip", "label": "vip", "type": "enum", "values": [True]}
    assert fields["created_at"]["type"] == "date" and fields["updated_at"]["type"] == "date"


def test_enum_threshold_and_new_indexes(make_api: AppFactory, mongo_client: MongoClient[Any], db_name: str) -> None:
    collection = mongo_client[db_name]["sessions"]
    collection.insert_many(
        [{"_id": f"s{n}", "session_id": f"s{n}", "metadata": {"region": ["eu", "us", "ap"][n % 3]}} for n in range(9)]
    )
    with make_api(db_name, enum_fields_str="region", enum_max_values=2) as api:
        names = [f["field"] for f in api.get("/api/v1/metadata-fields", headers=GLOBAL).json()["fields"]]
        assert names == ["session_id", "created_at"]  # nothing else indexed yet
        collection.create_index("metadata.region")
        collection.create_index("session_viewer_password")  # someone indexed it: still never offered
        fields = {f["field"]: f for f in api.get("/api/v1/metadata-fields", headers=GLOBAL).json()["fields"]}
        assert set(fields) == {"session_id", "created_at", "metadata.region"}
        assert fields["metadata.region"]["type"] == "string"  # 3 values > ENUM_MAX_VALUES=2
        assert search(api, filters={"metadata.region": "eu"})["total"] == 3
        refused = api.get(SEARCH, headers=GLOBAL, params={"filters": '{"session_viewer_password": "x"}'})
        assert refused.status_code == 422
    with make_api(db_name, enum_fields_str="region", enum_max_values=3) as api:
        fields = {f["field"]: f for f in api.get("/api/v1/metadata-fields", headers=GLOBAL).json()["fields"]}
        assert fields["metadata.region"]["values"] == ["ap", "eu", "us"]


def test_an_empty_collection_searches_fine(make_api: AppFactory, db_name: str) -> None:
    with make_api(db_name) as api:
        body = search(api)
        assert (body["sessions"], body["total"], body["page"], body["total_pages"]) == ([], 0, 1, 1)
        assert body["next_cursor"] is None and body["prev_cursor"] is None
        assert search(api, session_id="x")["total"] == 0
