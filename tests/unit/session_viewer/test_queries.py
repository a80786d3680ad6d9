"""The viewer's query builders: what a client sends can only ever become a literal lookup."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from session_viewer.backend import paging
from session_viewer.backend import queries as q

ALLOWED = ["session_id", "created_at", "metadata.status", "metadata.score", "metadata.vip", "updated_at"]
OUR_OPERATORS = {"$and", "$eq", "$regex", "$options", "$gte", "$lt"}


def operator_keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        found = {k for k in value if k.startswith("$")}
        for v in value.values():
            found |= operator_keys(v)
        return found
    if isinstance(value, list):
        return set().union(*(operator_keys(v) for v in value)) if value else set()
    return set()


# ---- fields ------------------------------------------------------------------------------------------


def test_filterable_fields_are_indexed_plain_paths_plus_id_and_creation_date() -> None:
    info = {
        "_id_": {"key": [("_id", 1)]},
        "status": {"key": [("metadata.status", 1)]},
        "compound": {"key": [("metadata.channel", 1), ("updated_at", -1)]},
        "text": {"key": [("_fts", "text"), ("_ftsx", 1)]},
        "wild": {"key": [("metadata.$**", 1)]},
        "hashed": {"key": [("metadata.customer", "hashed")]},
        "secret": {"key": [("session_viewer_password", 1)]},
        "nested_secret": {"key": [("metadata.session_viewer_password", 1)]},
    }
    fields = q.filterable_fields(info)
    assert fields[:2] == ["session_id", "created_at"]
    assert set(fields) == {"session_id", "created_at", "metadata.status", "metadata.channel", "updated_at", "_ftsx"}
    assert not any("password" in f or f == "_id" or "$" in f for f in fields)


@pytest.mark.parametrize(
    ("path", "safe"),
    [
        ("metadata.status", True),
        ("$where", False),
        ("metadata.$ne", False),
        ("metadata..x", False),
        ("", False),
        ("_id", False),
        ("session_viewer_password", False),
        ("metadata.session_viewer_password", False),
        ("metadata.a\x00b", False),
    ],
)
def test_is_safe_path(path: str, safe: bool) -> None:
    assert q.is_safe_path(path) is safe


def test_enum_values_sorted_scalars_or_none_when_too_many() -> None:
    assert q.enum_values([{"_id": "b"}, {"_id": "A"}, {"_id": {"nested": 1}}], 5) == ["A", "b"]
    assert q.enum_values([{"_id": n} for n in range(4)], 3) is None
    pipeline = q.enum_values_pipeline("metadata.status", 50)
    assert pipeline[-1] == {"$limit": 51}


def test_value_type_and_label() -> None:
    assert [q.value_type(v) for v in ("x", 1, 2.5, True, datetime.now(UTC), [1])] == [
        "string",
        "number",
        "number",
        "boolean",
        "date",
        "other",
    ]
    assert q.field_label("metadata.status") == "status"
    assert q.field_label("updated_at") == "updated_at"
    assert q.value_at({"metadata": {"status": "open"}}, "metadata.status") == "open"
    assert q.value_at({"metadata": "flat"}, "metadata.status") is None


# ---- filters -------------------------------------------------------------------------------------------


def test_object_form_means_equality_and_list_form_allows_contains() -> None:
    assert q.parse_filters('{"metadata.status": "open"}', ALLOWED) == [q.Condition("metadata.status", "eq", "open")]
    parsed = q.parse_filters(
        json.dumps(
            [{"field": "metadata.status", "op": "contains", "value": " pen "}, {"field": "metadata.vip", "value": True}]
        ),
        ALLOWED,
    )
    assert parsed == [q.Condition("metadata.status", "contains", "pen"), q.Condition("metadata.vip", "eq", True)]
    assert q.parse_filters(None, ALLOWED) == []
    assert q.parse_filters("  ", ALLOWED) == []


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ('{"$where": "1"}', "not a filterable field"),
        ('{"metadata.$ne": 1}', "not a filterable field"),
        ('{"session_viewer_password": "x"}', "not a filterable field"),
        ('{"_id": "x"}', "not a filterable field"),
        ('{"metadata.unindexed": "x"}', "not a filterable field"),
        ('{"metadata.status": {"$ne": null}}', "must be a string, a number or a boolean"),
        ('{"metadata.status": ["open"]}', "must be a string, a number or a boolean"),
        ('{"metadata.status": null}', "must be a string, a number or a boolean"),
        ('[{"field": "metadata.status", "op": "$regex", "value": "x"}]', "unknown filter operator"),
        ('[{"field": "metadata.score", "op": "contains", "value": 3}]', "needs non-empty text"),
        ('[{"field": "metadata.status", "op": "contains", "value": "   "}]', "needs non-empty text"),
        ('["metadata.status"]', "must be an object"),
        ('"open"', "JSON object or a JSON list"),
        ("{not json", "valid JSON"),
        ('{"metadata.status": "' + "x" * 300 + '"}', "longer than 200"),
        ('{"metadata.status": "a\\u0000b"}', "NUL"),
    ],
)
def test_bad_filters_are_refused_with_a_clear_message(raw: str, message: str) -> None:
    with pytest.raises(q.ViewerInputError, match=re.escape(message)):
        q.parse_filters(raw, ALLOWED)


def test_too_many_filters_and_too_long_json_are_refused() -> None:
    with pytest.raises(q.ViewerInputError, match="at most"):
        q.parse_filters(json.dumps([{"field": "metadata.status", "value": "x"}] * 21), ALLOWED)
    with pytest.raises(q.ViewerInputError, match="longer than"):
        q.parse_filters(" " * 10_001 + "{}", ALLOWED)


def test_search_filter_uses_literal_equality_and_escaped_regexes() -> None:
    built = q.search_filter(
        session_id="a.*(b",
        session_id_mode="contains",
        created_from=datetime(2024, 1, 1, tzinfo=UTC),
        created_to=datetime(2024, 2, 1, tzinfo=UTC),
        conditions=[q.Condition("metadata.status", "eq", "$ne"), q.Condition("metadata.status", "contains", "o+")],
    )
    assert built == {
        "$and": [
            {"session_id": {"$regex": re.escape("a.*(b"), "$options": "i"}},
            {"created_at": {"$gte": datetime(2024, 1, 1, tzinfo=UTC), "$lt": datetime(2024, 2, 1, tzinfo=UTC)}},
            {"metadata.status": {"$eq": "$ne"}},
            {"metadata.status": {"$regex": re.escape("o+"), "$options": "i"}},
        ]
    }
    assert q.search_filter() == {}
    assert q.search_filter(session_id="x.") == {"session_id": {"$regex": "^x\\."}}, "an anchored, indexed prefix"
    assert q.search_filter(session_id="x", session_id_mode="exact") == {"session_id": {"$eq": "x"}}
    with pytest.raises(q.ViewerInputError, match="session_id_match"):
        q.search_filter(session_id="x", session_id_mode="regex")


def test_escaped_regex_matches_the_text_literally() -> None:
    text = "(a+)+$ .* [x] \\d"
    pattern = q.literal_regex(text)["$regex"]
    assert re.search(pattern, f"id-{text}-end")
    assert not re.search(pattern, "aaaa")


def test_date_range_must_be_ordered() -> None:
    with pytest.raises(q.ViewerInputError, match="before"):
        q.search_filter(created_from=datetime(2024, 2, 1, tzinfo=UTC), created_to=datetime(2024, 1, 1, tzinfo=UTC))


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=30) | st.sampled_from([*ALLOWED, "$where", "metadata.$gt", "_id"]),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
            lambda children: (
                st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
            ),
            max_leaves=6,
        ),
        max_size=4,
    )
)
def test_no_client_input_ever_becomes_an_operator(raw: dict[str, Any]) -> None:
    try:
        conditions = q.parse_filters(json.dumps(raw), ALLOWED)
    except q.ViewerInputError:
        return
    built = q.search_filter(conditions=conditions)
    assert operator_keys(built) <= OUR_OPERATORS
    for condition in conditions:
        assert condition.field in ALLOWED
        assert isinstance(condition.value, str | int | float | bool)


# ---- dates, pages, sorting --------------------------------------------------------------------------------


def test_dates_parse_to_utc_and_a_bare_end_date_includes_the_whole_day() -> None:
    assert q.parse_date_bound("2024-05-01", end=False, what="x") == datetime(2024, 5, 1, tzinfo=UTC)
    assert q.parse_date_bound("2024-05-01", end=True, what="x") == datetime(2024, 5, 2, tzinfo=UTC)
    assert q.parse_date_bound("2024-05-01T10:00:00Z", end=True, what="x") == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert q.parse_date_bound("2024-05-01T12:00:00+02:00", end=False, what="x") == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert q.parse_date_bound("2024-05-01T10:00:00", end=False, what="x") == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert q.parse_date_bound("", end=False, what="x") is None
    assert q.parse_date_bound(None, end=False, what="x") is None


@pytest.mark.parametrize("bad", ["yesterday", "2024-13-01", "2024-02-30", "1" * 100, "2024/05/01"])
def test_bad_dates_are_refused_with_an_example(bad: str) -> None:
    with pytest.raises(q.ViewerInputError, match=r"created_from must be an ISO 8601 date|created_from is not a date"):
        q.parse_date_bound(bad, end=False, what="created_from")


def test_page_size_is_clamped_and_page_bounded() -> None:
    assert q.page_of(1, None, 20, 100) == q.Page(1, 20)
    assert q.page_of(3, 10**9, 20, 100) == q.Page(3, 100)
    assert q.page_of(1, 0, 20, 100).size == 1
    assert q.page_of(1, -5, 20, 100).size == 1
    assert q.page_of(3, 10, 20, 100).skip == 20
    for bad in (0, -1, q.MAX_PAGE + 1):
        with pytest.raises(q.ViewerInputError, match="page must be between"):
            q.page_of(bad, 10, 20, 100)


def test_sort_only_on_allowed_fields() -> None:
    assert q.sort_spec(None, None, ALLOWED) == {"created_at": -1, "_id": 1}
    # ascending walks the same {field: -1, _id: 1} index backwards, so the tie-break flips too
    assert q.sort_spec("metadata.score", "asc", ALLOWED) == {"metadata.score": 1, "_id": -1}
    assert q.sort_spec("updated", None, ALLOWED) == {"updated_at": -1, "_id": 1}
    assert q.sort_spec("tokens", "desc", []) == {"totals.usage.totalTokens": -1, "_id": 1}
    for field in ("session_viewer_password", "_id", "$natural", "metadata.unindexed"):
        with pytest.raises(q.ViewerInputError, match="cannot sort"):
            q.sort_spec(field, "asc", ALLOWED)
    with pytest.raises(q.ViewerInputError, match="sort_order"):
        q.sort_spec("created_at", "sideways", ALLOWED)


def test_search_pipeline_projects_counts_not_messages() -> None:
    pipeline = q.search_pipeline({}, {"created_at": -1, "_id": 1}, q.Page(2, 10))
    assert pipeline[2:4] == [{"$skip": 10}, {"$limit": 10}]
    projection = pipeline[4]["$project"]
    assert "preview" in json.dumps(pipeline[5:]), "the preview is set after the projection (archived first messages)"
    assert projection["_id"] == 1, "the id is the cursor's tie-break"
    assert "agents" not in projection and "session_viewer_password" not in projection
    assert {"agents_summary", "feedback_count", "feedback_up", "feedback_down"} <= set(projection)
    assert "messages" not in json.dumps(projection).replace("$$this.v.messages", "")
    assert q.detail_projection() == {"session_viewer_password": 0}
    assert q.total_pages(0, 20) == 1
    assert q.total_pages(41, 20) == 3


# ---- keyset paging ---------------------------------------------------------------------------------------


def test_cursor_round_trip_and_tampering() -> None:
    sort = {"created_at": -1, "_id": 1}
    at = datetime(2024, 5, 1, 12, 30, 15, 123000, tzinfo=UTC)
    token = paging.encode_cursor(sort, "next", {"_id": "s-9", "created_at": at})
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token), "URL-safe and opaque"
    cursor = paging.decode_cursor(token, sort)
    assert (cursor.field, cursor.order, cursor.direction, cursor.value, cursor.row_id) == (
        "created_at",
        -1,
        "next",
        at,
        "s-9",
    )
    with pytest.raises(q.ViewerInputError, match="another sort"):
        paging.decode_cursor(token, {"updated_at": -1, "_id": 1})
    for bad in ("", "!!!", "e30", "W10", "x" * 3000, paging.encode_cursor(sort, "next", {"_id": "a"})[:-2] + "zz"):
        with pytest.raises(q.ViewerInputError, match="cursor"):
            paging.decode_cursor(bad or "=", sort)


def test_keyset_clause_bounds_the_sort_field_and_breaks_ties_by_id() -> None:
    after = paging.Cursor("created_at", -1, "next", 5, "m")
    assert paging.keyset_clause(after) == {
        "created_at": {"$lte": 5},
        "$or": [{"created_at": {"$lt": 5}}, {"_id": {"$gt": "m"}}],
    }
    before = paging.Cursor("created_at", -1, "prev", 5, "m")
    assert paging.keyset_clause(before) == {
        "created_at": {"$gte": 5},
        "$or": [{"created_at": {"$gt": 5}}, {"_id": {"$lt": "m"}}],
    }
    ascending = paging.Cursor("created_at", 1, "next", 5, "m")
    assert paging.keyset_clause(ascending) == {
        "created_at": {"$gte": 5},
        "$or": [{"created_at": {"$gt": 5}}, {"_id": {"$lt": "m"}}],
    }


def test_keyset_pages_match_a_sorted_list_exactly() -> None:
    """The clause, evaluated in Python over rows with many ties, yields exactly the next/previous page."""
    rows = [{"_id": f"s{n:03d}", "v": n // 4} for n in range(40)]
    sort = {"v": -1, "_id": 1}
    ordered = sorted(rows, key=lambda r: (-r["v"], r["_id"]))

    def matches(row: dict[str, Any], cursor: paging.Cursor) -> bool:
        clause = paging.keyset_clause(cursor)
        bound_op, bound = next(iter(clause["v"].items()))
        in_bound = row["v"] <= bound if bound_op == "$lte" else row["v"] >= bound
        strict, tie = clause["$or"]
        strict_op, value = next(iter(strict["v"].items()))
        past = row["v"] < value if strict_op == "$lt" else row["v"] > value
        id_op, rid = next(iter(tie["_id"].items()))
        tie_ok = row["_id"] > rid if id_op == "$gt" else row["_id"] < rid
        return in_bound and (past or tie_ok)

    for i in range(len(ordered) - 1):
        cursor = paging.decode_cursor(paging.encode_cursor(sort, "next", ordered[i]), sort)
        assert [r for r in ordered if matches(r, cursor)] == ordered[i + 1 :]
        back = paging.decode_cursor(paging.encode_cursor(sort, "prev", ordered[i + 1]), sort)
        assert [r for r in ordered if matches(r, back)] == ordered[: i + 1]


def test_page_pipeline_reads_one_row_more_and_reverses_for_prev() -> None:
    sort = {"updated_at": -1, "_id": 1}
    first = paging.page_pipeline({"agent_ids": {"$eq": "a"}}, sort, 20, {"_id": 1})
    assert first[1] == {"$sort": sort} and first[2] == {"$limit": 21}
    back = paging.page_pipeline({}, sort, 20, {"_id": 1}, cursor=paging.Cursor("updated_at", -1, "prev", 1, "x"))
    assert back[1] == {"$sort": {"updated_at": 1, "_id": -1}}


def test_new_filters_are_literal_and_index_shaped() -> None:
    built = q.search_filter(
        feedback="down",
        agent_id="support",
        model="m-1",
        application_name="shop",
        updated_from=datetime(2024, 1, 1, tzinfo=UTC),
    )
    clauses = built["$and"]
    assert {"updated_at": {"$gte": datetime(2024, 1, 1, tzinfo=UTC)}} in clauses
    assert {"feedbacks": {"$elemMatch": {"rating": "down", "source": {"$ne": "reviewer"}}}} in clauses
    assert {"agent_ids": {"$eq": "support"}} in clauses and {"models": {"$eq": "m-1"}} in clauses
    assert {"application_name": {"$eq": "shop"}} in clauses
    with pytest.raises(q.ViewerInputError, match="feedback"):
        q.search_filter(feedback="meh")
    with pytest.raises(q.ViewerInputError, match="updated_from must be before"):
        q.search_filter(updated_from=datetime(2024, 2, 1, tzinfo=UTC), updated_to=datetime(2024, 1, 1, tzinfo=UTC))
    assert q.search_filter(conditions=[q.Condition("metadata.status", "prefix", "op.")]) == {
        "metadata.status": {"$regex": "^op\\."}
    }


def test_slow_reasons_name_what_cannot_walk_an_index() -> None:
    created = {"created_at": -1, "_id": 1}
    fast = q.slow_reasons(
        sort=created, session_id_mode="prefix", conditions=[], date_fields=["created_at"], filtered=True, keyset=True
    )
    assert fast == []
    slow = q.slow_reasons(
        sort={"totals.usage.totalTokens": -1, "_id": 1},
        session_id_mode="contains",
        conditions=[q.Condition("metadata.status", "contains", "x")],
        date_fields=["updated_at"],
        filtered=True,
        keyset=True,
    )
    assert len(slow) == 4


def test_dedicated_fields_are_not_offered_as_generic_filters() -> None:
    info = {
        "a": {"key": [("agent_ids", 1), ("created_at", -1), ("_id", 1)]},
        "t": {"key": [("totals.usage.totalTokens", -1)]},
    }
    assert q.filterable_fields(info) == ["session_id", "created_at"]


def test_counts_that_must_read_documents_are_recognised() -> None:
    assert not q.count_reads_documents({})
    assert not q.count_reads_documents({"metadata.status": {"$eq": "open"}})
    assert not q.count_reads_documents(q.search_filter(session_id="abc"))
    assert not q.count_reads_documents(q.search_filter(created_from=datetime(2024, 1, 1, tzinfo=UTC)))
    assert q.count_reads_documents(q.search_filter(feedback="down"))
    assert q.count_reads_documents(q.search_filter(session_id="abc", session_id_mode="contains"))
    assert q.count_reads_documents(q.search_filter(agent_id="a", model="m"))


def test_ttl_indexes_are_not_search_fields() -> None:
    info = {"ttl": {"key": [("expires_at", 1)], "expireAfterSeconds": 0}, "s": {"key": [("metadata.status", 1)]}}
    assert q.filterable_fields(info) == ["session_id", "created_at", "metadata.status"]
