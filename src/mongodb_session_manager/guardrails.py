"""A queryable summary of the policies a guardrail applied, from a Bedrock ``GuardrailTrace``.

The full trace is long and nested; reviewers filter on "which policies fired". The summary maps a
policy name to short descriptions (``{"contentPolicy": ["HATE/HIGH"]}``), exactly as the original
library stored it in ``policies_triggered``, so existing dashboards keep working. Pure, unit-tested.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: (policy name, (assessment key, list key), fields joined with "/" into one description)
POLICY_EXTRACTORS: tuple[tuple[str, tuple[str, str], tuple[str, ...]], ...] = (
    ("contentPolicy", ("contentPolicy", "filters"), ("type", "confidence")),
    ("topicPolicy", ("topicPolicy", "topics"), ("name", "action")),
    ("wordPolicy", ("wordPolicy", "customWords"), ("match",)),
    ("wordPolicy", ("wordPolicy", "managedWordLists"), ("type", "match")),
    ("sensitiveInformationPolicy", ("sensitiveInformationPolicy", "piiEntities"), ("type", "action")),
    ("sensitiveInformationPolicy", ("sensitiveInformationPolicy", "regexes"), ("name", "action")),
    ("contextualGroundingPolicy", ("contextualGroundingPolicy", "filters"), ("type", "score", "threshold")),
)


def _assessments(trace: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    found: list[Any] = []
    if "inputAssessment" in trace:
        value = trace["inputAssessment"]
        # Bedrock keys input assessments by guardrail id; the original took the mapping as one assessment.
        found.extend(value.values() if _is_keyed_by_guardrail(value) else [value])
    outputs = trace.get("outputAssessments") or []
    if isinstance(outputs, Mapping):
        outputs = [a for group in outputs.values() for a in (group if isinstance(group, list) else [group])]
    found.extend(outputs)
    return [a for a in found if isinstance(a, Mapping)]


def _is_keyed_by_guardrail(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and bool(value)
        and all(isinstance(v, Mapping) for v in value.values())
        and not any(key.endswith("Policy") for key in value)
    )


def guardrail_summary(trace: Mapping[str, Any] | None) -> dict[str, list[str]]:
    """``{policy: ["TYPE/CONFIDENCE", ...]}`` for every policy entry in the trace (``{}`` for none)."""
    if not isinstance(trace, Mapping) or not trace:
        return {}
    summary: dict[str, list[str]] = {}
    for assessment in _assessments(trace):
        for policy_name, (policy_key, list_key), fields in POLICY_EXTRACTORS:
            policy = assessment.get(policy_key)
            items = policy.get(list_key, []) if isinstance(policy, Mapping) else []
            for item in items if isinstance(items, list) else []:
                if isinstance(item, Mapping):
                    summary.setdefault(policy_name, []).append("/".join(str(item.get(f, "UNKNOWN")) for f in fields))
    return summary
