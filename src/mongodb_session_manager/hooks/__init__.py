"""Optional AWS integrations, as metadata / feedback hooks (boto3 is the ``aws`` extra).

The core library never imports boto3; these helpers report whether the hooks can be used.
"""

from __future__ import annotations

import importlib.util


def _boto3_available() -> bool:
    return importlib.util.find_spec("boto3") is not None


def is_feedback_sns_hook_available() -> bool:
    return _boto3_available()


def is_metadata_sqs_hook_available() -> bool:
    return _boto3_available()


def is_metadata_websocket_hook_available() -> bool:
    return _boto3_available()


__all__ = [
    "is_feedback_sns_hook_available",
    "is_metadata_sqs_hook_available",
    "is_metadata_websocket_hook_available",
]
