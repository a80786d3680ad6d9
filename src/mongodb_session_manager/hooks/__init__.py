"""Optional AWS integrations, as metadata / feedback hooks (boto3 is the ``aws`` extra).

Importing this package never imports boto3: the hook classes load it when they are built, and
``create_*`` raises an ImportError naming the extra when it is missing. The ``is_*_available()``
helpers let an application decide at start-up whether to wire the hooks in.

Sends run on one small worker pool shared by every hook; :func:`flush_aws_hooks` waits for them
(call it before a Lambda handler returns) and :func:`close_aws_hooks` also stops the pool.
"""

from __future__ import annotations

from ._aws import boto3_available
from ._dispatch import DispatchingHook
from ._dispatch import close as close_aws_hooks
from ._dispatch import flush as flush_aws_hooks
from .compose import ComposedHook, compose_feedback_hooks, compose_hooks, compose_metadata_hooks
from .feedback_sns_hook import FeedbackSNSHook, create_feedback_sns_hook
from .metadata_sqs_hook import MetadataSQSHook, create_metadata_sqs_hook
from .metadata_websocket_hook import MetadataWebSocketHook, create_metadata_websocket_hook


def is_feedback_sns_hook_available() -> bool:
    """True when :class:`FeedbackSNSHook` can be built (boto3 imports)."""
    return boto3_available()


def is_metadata_sqs_hook_available() -> bool:
    """True when :class:`MetadataSQSHook` can be built (boto3 imports)."""
    return boto3_available()


def is_metadata_websocket_hook_available() -> bool:
    """True when :class:`MetadataWebSocketHook` can be built (boto3 imports)."""
    return boto3_available()


__all__ = [
    "ComposedHook",
    "DispatchingHook",
    "FeedbackSNSHook",
    "MetadataSQSHook",
    "MetadataWebSocketHook",
    "close_aws_hooks",
    "compose_feedback_hooks",
    "compose_hooks",
    "compose_metadata_hooks",
    "create_feedback_sns_hook",
    "create_metadata_sqs_hook",
    "create_metadata_websocket_hook",
    "flush_aws_hooks",
    "is_feedback_sns_hook_available",
    "is_metadata_sqs_hook_available",
    "is_metadata_websocket_hook_available",
]
