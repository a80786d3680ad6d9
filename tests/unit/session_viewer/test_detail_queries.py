"""Shapes of the detail side's queries (pure): no stage holds a whole session, passwords never read."""

from __future__ import annotations

from session_viewer.backend import detail_queries as dq


def test_the_header_reads_no_message_and_counts_them_on_the_server() -> None:
    pipeline = dq.header_pipeline("s1")
    assert pipeline[0] == {"$match": {"_id": "s1"}}
    project = pipeline[1]["$project"]
    assert "session_viewer_password" not in project
    agent = project["agents"]["$arrayToObject"]["$map"]["in"]["v"]
    assert set(agent) == {"agent_data", "message_count"}  # no messages
    assert "$size" in agent["message_count"]


def test_a_timeline_page_unwinds_per_agent_sorts_and_pages_on_the_server() -> None:
    pipeline = dq.timeline_page_pipeline("sessions", "s1", 100, 50)
    stages = [next(iter(stage)) for stage in pipeline]
    assert stages[:3] == ["$match", "$project", "$unwind"]  # one document per agent first
    assert stages[-3:] == ["$unionWith", "$sort", "$facet"]
    union = pipeline[-3]["$unionWith"]
    assert union["coll"] == "sessions" and union["pipeline"][0] == {"$match": {"_id": "s1"}}
    assert pipeline[-2]["$sort"] == dq.TIMELINE_SORT
    assert pipeline[-1]["$facet"] == {"items": [{"$skip": 100}, {"$limit": 50}], "total": [{"$count": "n"}]}
    assert "session_viewer_password" not in str(pipeline)


def test_export_reads_everything_but_the_viewer_password() -> None:
    assert dq.export_projection() == {"session_viewer_password": 0}
    assert dq.session_filter("x") == {"_id": "x"}
