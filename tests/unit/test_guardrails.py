"""``guardrail_summary``: the ``policies_triggered`` field reviewers filter on, from a GuardrailTrace."""

from __future__ import annotations

from mongodb_session_manager.guardrails import guardrail_summary


def test_every_policy_kind_is_summarised_as_the_original_library_did() -> None:
    assessment = {
        "contentPolicy": {
            "filters": [{"type": "HATE", "confidence": "HIGH"}, {"type": "VIOLENCE", "confidence": "LOW"}]
        },
        "topicPolicy": {"topics": [{"name": "Investing", "action": "BLOCKED"}]},
        "wordPolicy": {"customWords": [{"match": "secret"}], "managedWordLists": [{"type": "PROFANITY", "match": "x"}]},
        "sensitiveInformationPolicy": {
            "piiEntities": [{"type": "EMAIL", "action": "ANONYMIZED"}],
            "regexes": [{"name": "ticket", "action": "BLOCKED"}],
        },
        "contextualGroundingPolicy": {"filters": [{"type": "GROUNDING", "score": 0.2, "threshold": 0.5}]},
    }
    assert guardrail_summary({"outputAssessments": [assessment]}) == {
        "contentPolicy": ["HATE/HIGH", "VIOLENCE/LOW"],
        "topicPolicy": ["Investing/BLOCKED"],
        "wordPolicy": ["secret", "PROFANITY/x"],
        "sensitiveInformationPolicy": ["EMAIL/ANONYMIZED", "ticket/BLOCKED"],
        "contextualGroundingPolicy": ["GROUNDING/0.2/0.5"],
    }


def test_bedrock_keyed_assessments_and_the_flat_form_both_work() -> None:
    flat = {"inputAssessment": {"topicPolicy": {"topics": [{"name": "T", "action": "BLOCKED"}]}}}
    keyed = {
        "inputAssessment": {"gr-1": flat["inputAssessment"]},
        "outputAssessments": {"gr-1": [{"contentPolicy": {"filters": [{"type": "HATE"}]}}]},
    }
    assert guardrail_summary(flat) == {"topicPolicy": ["T/BLOCKED"]}
    assert guardrail_summary(keyed) == {"topicPolicy": ["T/BLOCKED"], "contentPolicy": ["HATE/UNKNOWN"]}


def test_empty_or_malformed_traces_summarise_to_nothing() -> None:
    assert guardrail_summary(None) == {}
    assert guardrail_summary({}) == {}
    assert (
        guardrail_summary({"outputAssessments": ["x", {"contentPolicy": "bad"}, {"topicPolicy": {"topics": 3}}]}) == {}
    )
