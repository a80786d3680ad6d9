"""``MetadataSQSHook``: announce metadata changes on an SQS queue.

Backend consumers (a server-sent-events relay, analytics, workflows) learn that a session's status
or assignment changed without polling MongoDB. Only the configured fields leave the process, so
internal metadata stays internal. Updates and deletes both produce an event; reads do not.

Each message body is the JSON event of :mod:`._events`; ``event_type`` and ``session_id`` are also
message attributes so consumers can filter without parsing. On a FIFO queue (URL ending in
``.fifo``) the session id is the message group, which keeps each session's events in order.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from . import _aws
from ._dispatch import DispatchingHook
from ._events import delete_event, normalize_fields, select_keys, select_metadata, to_json, update_event, utc_timestamp

logger = logging.getLogger(__name__)


class MetadataSQSHook(DispatchingHook):
    """Metadata hook (``metadata_hook=``) that sends update / delete events to an SQS queue.

    Args:
        queue_url: The queue's URL (``https://sqs.<region>.amazonaws.com/<account>/<name>``).
        metadata_fields: Keys to propagate; None propagates every key. A change touching none of
            them sends nothing.
        region: AWS region; by default the one in the queue URL.
        endpoint_url: Another SQS endpoint (moto, LocalStack, a VPC endpoint).
    """

    def __init__(
        self,
        queue_url: str,
        metadata_fields: Iterable[str] | None = None,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        _aws.require_boto3("MetadataSQSHook")
        super().__init__("metadata_sqs")
        if not isinstance(queue_url, str) or not queue_url.startswith(("https://", "http://")):
            raise ValueError(f"queue_url must be an SQS queue URL (https://...), got {queue_url!r}")
        self.queue_url = queue_url
        self.fifo = queue_url.rstrip("/").endswith(".fifo")
        self.metadata_fields = normalize_fields(metadata_fields)
        self.endpoint_url = endpoint_url
        self.region = _aws.resolve_region(region, _aws.region_from_url(queue_url), "queue_url")

    def _schedule(self, action: str, session_id: str, kwargs: Mapping[str, Any]) -> None:
        timestamp = utc_timestamp()
        if action == "update":
            selected = select_metadata(kwargs.get("metadata") or {}, self.metadata_fields)
            event = update_event(session_id, selected, timestamp) if selected else None
        elif action == "delete":
            keys = select_keys(kwargs.get("keys") or [], self.metadata_fields)
            event = delete_event(session_id, keys, timestamp) if keys else None
        else:
            return
        if event is None:
            self._count("skipped")
            logger.debug("session_id=<%s> | action=<%s> | no selected field changed, nothing sent", session_id, action)
            return
        # Serialised now: the caller may mutate its dict once the hook has returned.
        body = to_json(event)
        self._dispatch(session_id, "sqs.send_message", self._send, session_id, event["event_type"], body)

    def _send(self, session_id: str, event_type: str, body: str) -> None:
        params: dict[str, Any] = {
            "QueueUrl": self.queue_url,
            "MessageBody": body,
            "MessageAttributes": {
                "event_type": {"DataType": "String", "StringValue": event_type},
                "session_id": {"DataType": "String", "StringValue": session_id},
            },
        }
        if self.fifo:
            params["MessageGroupId"] = session_id
            params["MessageDeduplicationId"] = uuid.uuid4().hex
        _aws.get_client("sqs", self.region, self.endpoint_url).send_message(**params)
        self._count("sent")
        logger.debug("session_id=<%s> | event_type=<%s> | metadata event queued on SQS", session_id, event_type)


def create_metadata_sqs_hook(
    queue_url: str,
    metadata_fields: Iterable[str] | None = None,
    *,
    region: str | None = None,
    endpoint_url: str | None = None,
) -> MetadataSQSHook:
    """Build a :class:`MetadataSQSHook` (raises ImportError naming the ``aws`` extra without boto3)."""
    return MetadataSQSHook(queue_url, metadata_fields, region=region, endpoint_url=endpoint_url)


def create_metadata_hook(queue_url: str, metadata_fields: Iterable[str] | None = None) -> MetadataSQSHook:
    """The original library's name and signature for :func:`create_metadata_sqs_hook`.

    As in the original, ``None`` and an empty list both send every field (with
    :class:`MetadataSQSHook` itself, an empty list selects nothing).
    """
    fields = list(metadata_fields) if metadata_fields is not None else None
    return MetadataSQSHook(queue_url, fields or None)
