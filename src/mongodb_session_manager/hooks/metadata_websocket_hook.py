"""``MetadataWebSocketHook``: push metadata changes to the session's WebSocket client.

A chat UI connected through an API Gateway WebSocket API shows "thinking", progress or a new case
status the moment the agent stores it, without polling. The hosting service stores the client's
connection id in the session metadata (``ws_connection_id``, or ``connection_id``) when the socket
connects; the hook reads it and calls the API Gateway Management API ``post_to_connection``.

The connection id is infrastructure, not client state: it is never pushed itself, and the agent's
metadata tool cannot overwrite or delete it. A client that has gone away (HTTP 410) is normal
for WebSockets: it is counted as ``gone`` and logged at INFO, not treated as a failure.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from . import _aws
from ._dispatch import DispatchingHook
from ._events import (
    CONNECTION_ID_KEYS,
    connection_id_from,
    delete_event,
    normalize_fields,
    select_keys,
    select_metadata,
    to_json,
    update_event,
    utc_timestamp,
)

logger = logging.getLogger(__name__)


def management_endpoint(api_gateway_endpoint: str) -> str:
    """The HTTPS management endpoint for a WebSocket API URL (``wss://`` is accepted and converted)."""
    if not isinstance(api_gateway_endpoint, str):
        raise ValueError(f"api_gateway_endpoint must be a URL string, got {type(api_gateway_endpoint).__name__}")
    url = api_gateway_endpoint.strip().rstrip("/")
    for websocket_scheme, http_scheme in (("wss://", "https://"), ("ws://", "http://")):
        if url.startswith(websocket_scheme):
            url = http_scheme + url[len(websocket_scheme) :]
    parsed = urlsplit(url)
    if parsed.scheme not in ("https", "http") or not parsed.netloc:
        raise ValueError(
            "api_gateway_endpoint must look like https://<api-id>.execute-api.<region>.amazonaws.com/<stage>, "
            f"got {api_gateway_endpoint!r}"
        )
    return url


def is_gone(error: Exception) -> bool:
    """True for API Gateway's answer about a client that has disconnected (GoneException / 410)."""
    response = getattr(error, "response", None) or {}
    code = (response.get("Error") or {}).get("Code")
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    return code in ("GoneException", "410") or status == 410


class MetadataWebSocketHook(DispatchingHook):
    """Metadata hook (``metadata_hook=``) that pushes changes to the client's WebSocket connection.

    Args:
        api_gateway_endpoint: The WebSocket API's stage URL; it is boto3's ``endpoint_url`` for the
            ``apigatewaymanagementapi`` client, so a local stand-in URL works too.
        metadata_fields: Keys to push; None pushes every key (except the connection id keys).
        region: AWS region; by default the one in the endpoint's host name.
    """

    def __init__(
        self,
        api_gateway_endpoint: str,
        metadata_fields: Iterable[str] | None = None,
        region: str | None = None,
    ) -> None:
        _aws.require_boto3("MetadataWebSocketHook")
        super().__init__("metadata_websocket")
        self.endpoint_url = management_endpoint(api_gateway_endpoint)
        self.metadata_fields = normalize_fields(metadata_fields)
        self.region = _aws.resolve_region(region, _aws.region_from_url(self.endpoint_url), "api_gateway_endpoint")

    def _schedule(self, action: str, session_id: str, kwargs: Mapping[str, Any]) -> None:
        timestamp = utc_timestamp()
        connection_id: str | None = None
        if action == "update":
            metadata = kwargs.get("metadata") or {}
            connection_id = connection_id_from(metadata)
            selected = select_metadata(metadata, self.metadata_fields, exclude=CONNECTION_ID_KEYS)
            event = update_event(session_id, selected, timestamp) if selected else None
        elif action == "delete":
            keys = select_keys(kwargs.get("keys") or [], self.metadata_fields, exclude=CONNECTION_ID_KEYS)
            event = delete_event(session_id, keys, timestamp) if keys else None
        else:
            return
        if event is None:
            self._count("skipped")
            logger.debug(
                "session_id=<%s> | action=<%s> | no selected field changed, nothing pushed", session_id, action
            )
            return
        body = to_json(event)
        manager = kwargs.get("session_manager")
        self._dispatch(session_id, "post_to_connection", self._push, session_id, body, connection_id, manager)

    def _push(self, session_id: str, body: str, connection_id: str | None, manager: Any) -> None:
        from botocore.exceptions import ClientError

        if connection_id is None:
            connection_id = stored_connection_id(manager)
        if connection_id is None:
            self._count("skipped")
            logger.debug("session_id=<%s> | no ws_connection_id in the session metadata, nothing pushed", session_id)
            return
        client = _aws.get_client("apigatewaymanagementapi", self.region, self.endpoint_url)
        try:
            client.post_to_connection(ConnectionId=connection_id, Data=body.encode("utf-8"))
        except ClientError as exc:
            if not is_gone(exc):
                raise
            self._count("gone")
            logger.info(
                "session_id=<%s> | connection_id=<%s> | client disconnected (410), update dropped",
                session_id,
                connection_id,
            )
            return
        self._count("sent")
        logger.debug("session_id=<%s> | connection_id=<%s> | metadata pushed", session_id, connection_id)


def stored_connection_id(manager: Any) -> str | None:
    """The connection id in the stored metadata.

    Read with the manager's public ``read_metadata()``, which does not run the metadata hook (this
    hook is part of it: going through ``get_metadata()`` would re-enter every composed hook); any
    other object offering only ``get_metadata()`` is read through that.
    """
    if manager is None:
        return None
    reader = getattr(manager, "read_metadata", None) or getattr(manager, "get_metadata", None)
    if reader is None:
        return None
    return connection_id_from(reader())


def create_metadata_hook(
    api_gateway_endpoint: str,
    metadata_fields: Iterable[str] | None = None,
    region: str | None = None,
) -> MetadataWebSocketHook:
    """The original library's name and signature for :func:`create_metadata_websocket_hook`.

    Unlike the original (which defaulted to ``eu-west-1``), ``region=None`` means the region in the
    endpoint's host name, else boto3's default.
    """
    return MetadataWebSocketHook(api_gateway_endpoint, metadata_fields, region=region)


def create_metadata_websocket_hook(
    api_gateway_endpoint: str,
    metadata_fields: Iterable[str] | None = None,
    *,
    region: str | None = None,
) -> MetadataWebSocketHook:
    """Build a :class:`MetadataWebSocketHook` (raises ImportError naming the ``aws`` extra without boto3)."""
    return MetadataWebSocketHook(api_gateway_endpoint, metadata_fields, region=region)
