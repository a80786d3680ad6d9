"""Shapes of the detail side's queries (pure): no stage holds a whole session, passwords never read."""

from __future__ import annotations

from mongodb_session_manager.documents_archive import message_count_expr
from session_viewer.backend import detail_queries as dq


def test_the_header_reads_no_message_and_counts_them_on_the_server() -> None:
    pipeline = dq.header_pipeline("s1")
    assert pipeline[0] == {"$match": {"_id": "s1"}}
    project = pipeline[1]["$project"]
    assert "session_viewer_password" not in project
    agent = project["agents"]["$arrayToObject"]["$map"]["in"]["v"]
    assert set(agent) == {"agent_data", "message_count"}  # no messages
    assert agent["message_count"] == message_count_expr("$$a.v")  # archived + in-document: the whole history


def test_a_timeline_page_unwinds_per_agent_sorts_and_pages_on_the_server() -> None:
    pipeline = dq.timeline_page_pipeline("sessions", "s1", 100, 50)
    stages = [next(iter(stage)) for stage in pipeline]
    assert stages[:3] == ["$match", "$project", "$unwind"]  # one document per agent first
    # Then one per part of the agent's history (the in-document array, each listed bucket), the
    # bucket looked up by _id from the same read of the session document and unwound right away.
    lookup = next(stage["$lookup"] for stage in pipeline if "$lookup" in stage)
    assert lookup["from"] == "sessions_messages" and lookup["foreignField"] == "_id"
    assert stages[stages.index("$lookup") + 1] == "$unwind"
    assert stages[-3:] == ["$unionWith", "$sort", "$facet"]
    union = pipeline[-3]["$unionWith"]
    assert union["coll"] == "sessions" and union["pipeline"][0] == {"$match": {"_id": "s1"}}
    assert pipeline[-2]["$sort"] == dq.TIMELINE_SORT
    assert pipeline[-1]["$facet"] == {"items": [{"$skip": 100}, {"$limit": 50}], "total": [{"$count": "n"}]}
    assert "session_viewer_password" not in str(pipeline)


def test_export_reads_everything_but_the_viewer_password() -> None:
    assert dq.export_projection() == {"session_viewer_password": 0}
    assert dq.session_filter("x") == {"_id": "x"}
