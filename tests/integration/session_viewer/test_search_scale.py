"""Every search the list UI can make reads a few pages of index keys, at 20,000 sessions.

Sessions are bulk-inserted (``mongodb_session_manager.synthetic``) into a collection indexed by the
library's own ``ensure_indexes``; each search goes through the HTTP API while the server's profiler
records what it examined. Nothing here measures time: the profiler's ``keysExamined`` and
``docsExamined`` are what stays flat as the collection grows (and ``hasSortStage`` says whether the
server sorted in memory). Paging correctness is checked against the order computed in Python.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pymongo import MongoClient

from mongodb_session_manager import synthetic
from mongodb_session_manager.indexes import ensure_indexes
from session_viewer.backend.listing import DOCUMENT_COUNT_CAP
from session_viewer.backend.main import create_app

from .conftest import GLOBAL, viewer_settings

N = 20_000
SIZE = 20
#: "A few pages' worth": three pages of rows plus the one extra row each page reads.
FEW_PAGES = 3 * (SIZE + 1)
COUNT_CAP = 5_000  # DOCUMENT_COUNT_CAP (1,000) applies where the count reads documents
SEARCH = "/api/v1/sessions/search"


@pytest.fixture(scope="module")
def big(mongo_client: MongoClient[Any]) -> Iterator[str]:
    name = f"sv_scale_{uuid.uuid4().hex[:10]}"
    collection = mongo_client[name]["sessions"]
    ensure_indexes(collection, ["metadata.status", "metadata.priority"])
    for batch in synthetic.session_documents(N):
        collection.insert_many(batch, ordered=False)
    yield name
    mongo_client.drop_database(name)


@pytest.fixture(scope="module")
def big_api(mongo_uri: str, big: str) -> Iterator[TestClient]:
    settings = viewer_settings(
        mongo_uri, big, count_cap=COUNT_CAP, enum_fields_str="status,priority", max_page_size=100
    )
    with TestClient(create_app(settings), client=("203.0.113.9", 50000)) as api:
        yield api


class Profiled:
    """What the server examined for the list page and for the count of one request."""

    def __init__(self, entries: list[dict[str, Any]]) -> None:
        def is_count(entry: dict[str, Any]) -> bool:  # a filtered count (the estimate reads metadata only)
            return "count" in entry["command"] and bool(entry["command"].get("query"))

        entries = [e for e in entries if "aggregate" in e["command"] or is_count(e)]

        self.pages = [e for e in entries if not is_count(e)]
        self.counts = [e for e in entries if is_count(e)]

    @property
    def page(self) -> dict[str, Any]:
        assert len(self.pages) == 1, [e.get("planSummary") for e in self.pages]
        return self.pages[0]


def profiled(client: MongoClient[Any], database: str, call: Callable[[], Any]) -> tuple[Any, Profiled]:
    db = client[database]
    db.command("profile", 0)
    db["system.profile"].drop()
    db.command("profile", 2)
    try:
        result = call()
    finally:
        db.command("profile", 0)
    query = {"ns": f"{database}.sessions", "$or": [{"command.aggregate": "sessions"}, {"command.count": "sessions"}]}
    entries = list(db["system.profile"].find(query))
    return result, Profiled(entries)


def get(api: TestClient, **params: Any) -> dict[str, Any]:
    if isinstance(params.get("filters"), dict | list):
        params["filters"] = json.dumps(params["filters"])
    response = api.get(SEARCH, headers=GLOBAL, params={"page_size": SIZE, **params})
    assert response.status_code == 200, response.text
    return response.json()


def order_key(sort: str) -> Callable[[int], Any]:
    if sort == "updated":
        return lambda n: (-synthetic.updated_at(n).timestamp(), synthetic.session_id(n))
    return lambda n: (-synthetic.created_at(n).timestamp(), synthetic.session_id(n))


def expected(predicate: Callable[[int], bool], sort: str = "created") -> list[str]:
    return [synthetic.session_id(n) for n in sorted((n for n in range(N) if predicate(n)), key=order_key(sort))]


MIDDLE = synthetic.created_at(N // 2)
SEARCHES: dict[str, dict[str, Any]] = {
    "default": {},
    "sort by update": {"sort_by": "updated"},
    "sort by tokens": {"sort_by": "tokens"},
    "oldest first": {"sort_order": "asc"},
    "status filter": {"filters": {"metadata.status": "escalated"}},
    "priority filter, by update": {"filters": {"metadata.priority": "urgent"}, "sort_by": "updated"},
    "two metadata filters": {"filters": {"metadata.status": "open", "metadata.priority": "low"}},
    "feedback up": {"feedback": "up"},
    "feedback down, by update": {"feedback": "down", "sort_by": "updated"},
    "agent": {"agent_id": "billing"},
    "model": {"model": "model-large"},
    "application (rare)": {"application_name": "rare-app"},
    "created range": {"created_from": MIDDLE.isoformat(), "created_to": (MIDDLE + timedelta(hours=1)).isoformat()},
    "updated range": {
        "updated_from": MIDDLE.isoformat(),
        "updated_to": (MIDDLE + timedelta(hours=6)).isoformat(),
        "sort_by": "updated",
    },
    "filter and created range": {
        "agent_id": "sales",
        "created_from": MIDDLE.isoformat(),
        "created_to": (MIDDLE + timedelta(hours=2)).isoformat(),
    },
    "session id prefix": {"session_id": "sess-0001234"},
    "session id exact": {"session_id": "sess-00012345", "session_id_match": "exact"},
}


@pytest.mark.parametrize("name", list(SEARCHES))
def test_each_search_reads_a_few_pages_of_the_index(
    name: str, big_api: TestClient, mongo_client: MongoClient[Any], big: str
) -> None:
    body, seen = profiled(mongo_client, big, lambda: get(big_api, **SEARCHES[name]))
    page = seen.page
    assert body["sessions"], name
    assert body["slow"] == [], body["slow"]
    assert page["docsExamined"] <= FEW_PAGES, (name, page["planSummary"], page["docsExamined"])
    assert page["keysExamined"] <= FEW_PAGES + 2, (name, page["planSummary"], page["keysExamined"])
    if not name.startswith("session id"):  # an id prefix sorts its handful of matches in memory
        assert not page.get("hasSortStage"), (name, page["planSummary"])
    # The count stops at COUNT_CAP matches. With one filter that is COUNT_CAP index keys; with two, the
    # second is checked on the documents the first one's index finds (1 in 4 here match both).
    cap = COUNT_CAP if name != "two metadata filters" else 4 * DOCUMENT_COUNT_CAP
    for count in seen.counts:
        assert count["keysExamined"] <= cap + 2 and count["docsExamined"] <= cap + 1, (name, count["keysExamined"])
    if not SEARCHES[name]:
        assert seen.counts == [] and body["total_kind"] == "estimate" and body["total"] == N


@pytest.mark.parametrize("sort", ["created", "updated"])
def test_later_pages_via_cursor_read_one_page_each(
    sort: str, big_api: TestClient, mongo_client: MongoClient[Any], big: str
) -> None:
    want = expected(lambda n: True, sort)
    body = get(big_api, sort_by=sort)
    for page_number in range(2, 12):
        cursor = body["next_cursor"]
        body, seen = profiled(mongo_client, big, lambda c=cursor: get(big_api, sort_by=sort, cursor=c))
        assert [s["session_id"] for s in body["sessions"]] == want[(page_number - 1) * SIZE : page_number * SIZE]
        assert seen.counts == [] and body["total"] is None, "a cursor page never counts again"
        assert body["total_kind"] == "not_counted"
        assert seen.page["docsExamined"] <= FEW_PAGES and seen.page["keysExamined"] <= FEW_PAGES + 2
        assert not seen.page.get("hasSortStage")
    back, seen = profiled(mongo_client, big, lambda: get(big_api, sort_by=sort, cursor=body["prev_cursor"]))
    assert [s["session_id"] for s in back["sessions"]] == want[9 * SIZE : 10 * SIZE]
    assert seen.page["docsExamined"] <= FEW_PAGES and not seen.page.get("hasSortStage")


def test_filtered_cursor_pages_stay_on_the_compound_index(
    big_api: TestClient, mongo_client: MongoClient[Any], big: str
) -> None:
    first = get(big_api, feedback="down")
    downs = sum(1 for n in range(N) if synthetic.rating(n) == "down")
    assert downs > DOCUMENT_COUNT_CAP and (first["total"], first["total_kind"]) == (DOCUMENT_COUNT_CAP, "at_least")
    body, seen = profiled(mongo_client, big, lambda: get(big_api, feedback="down", cursor=first["next_cursor"]))
    assert [s["session_id"] for s in body["sessions"]] == expected(lambda n: synthetic.rating(n) == "down")[
        SIZE : 2 * SIZE
    ]
    assert seen.page["docsExamined"] <= FEW_PAGES and not seen.page.get("hasSortStage")
    assert all(s["feedback_down"] == 1 for s in body["sessions"])


def test_walking_every_page_forwards_and_back_is_exact(big_api: TestClient) -> None:
    want = expected(lambda n: n % 100 == 7)
    assert len(want) == N // 100
    pages: list[list[str]] = []
    body = get(big_api, application_name="rare-app", page_size=30)
    assert body["total"] == len(want) and body["prev_cursor"] is None
    while True:
        pages.append([s["session_id"] for s in body["sessions"]])
        if not body["next_cursor"]:
            break
        body = get(big_api, application_name="rare-app", page_size=30, cursor=body["next_cursor"])
    assert [sid for page in pages for sid in page] == want
    for expected_page in reversed(pages[:-1]):
        body = get(big_api, application_name="rare-app", page_size=30, cursor=body["prev_cursor"])
        assert [s["session_id"] for s in body["sessions"]] == expected_page
    assert body["prev_cursor"] is None


def test_counts_are_exact_up_to_the_cap(big_api: TestClient) -> None:
    capped = get(big_api, filters={"metadata.status": "open"})
    assert (capped["total"], capped["total_kind"], capped["total_pages"]) == (COUNT_CAP, "at_least", None)
    model = get(big_api, model="model-large", created_to=synthetic.created_at(1_500).isoformat())
    assert model["total_kind"] == "exact"
    assert model["total"] == sum(
        1 for n in range(N) if n % 3 == 1 and synthetic.created_at(n) < synthetic.created_at(1_500)
    )


def test_slow_searches_say_so(big_api: TestClient) -> None:
    contains = get(big_api, session_id="0001234", session_id_match="contains")
    assert [s["session_id"] for s in contains["sessions"]] == expected(lambda n: "0001234" in synthetic.session_id(n))
    assert contains["slow"]
    crossed = get(big_api, updated_from=MIDDLE.isoformat(), sort_by="created")
    assert any("range while sorting" in reason for reason in crossed["slow"])
    tokens = get(big_api, sort_by="tokens", agent_id="sales")
    assert any("tokens" in reason for reason in tokens["slow"])
    totals = [s["tokens"]["totalTokens"] for s in tokens["sessions"]]
    assert totals == sorted(totals, reverse=True)


def test_filter_options_list_distinct_values(big_api: TestClient) -> None:
    options = big_api.get("/api/v1/search-options", headers=GLOBAL).json()
    assert options["agent_ids"] == sorted(synthetic.AGENTS)
    assert options["models"] == sorted(synthetic.MODELS)
    assert options["application_names"] == sorted(synthetic.APPLICATIONS)
    assert options["sorts"] == ["created", "updated", "tokens"] and options["feedback"] == ["up", "down"]
