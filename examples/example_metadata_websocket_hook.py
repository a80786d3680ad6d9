"""Push metadata changes to the session's WebSocket client through API Gateway's Management API.

The hosting service stores the client's connection id in the session metadata when the socket
connects ("ws_connection_id"); every later change of the listed fields is pushed to it. The
agent's metadata tool cannot overwrite that id, and a client that went away (HTTP 410) is skipped
quietly.

By default a small local stand-in for the Management API (on 127.0.0.1) plays the connected
client and prints what it receives; nothing leaves the machine. To push to a real WebSocket API,
set MSM_WS_API_ENDPOINT (e.g. https://<api-id>.execute-api.<region>.amazonaws.com/<stage>) and
MSM_WS_CONNECTION_ID (a connected client), plus AWS credentials the usual boto3 way.

Run: uv run python examples/example_metadata_websocket_hook.py
"""

import contextlib
import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from moto import mock_aws

from mongodb_session_manager import (
    MongoDBSessionManager,
    close_aws_hooks,
    create_metadata_websocket_hook,
    is_metadata_websocket_hook_available,
)
from mongodb_session_manager.embedded import local_mongodb

REAL_ENDPOINT = os.environ.get("MSM_WS_API_ENDPOINT")
CONNECTION_ID = os.environ.get("MSM_WS_CONNECTION_ID", "conn-abc123")
DISCONNECTED: set[str] = set()


class StandInManagementApi(BaseHTTPRequestHandler):
    """POST /<stage>/@connections/<id>: print the payload as the client would see it, or 410."""

    def do_POST(self) -> None:
        data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        connection_id = self.path.rsplit("/@connections/", 1)[-1]
        if connection_id in DISCONNECTED:
            self.send_response(410)
            self.send_header("x-amzn-ErrorType", "GoneException")
            body = b'{"message": "Gone"}'
        else:
            print(f"[client {connection_id}] received {json.dumps(json.loads(data))}")
            self.send_response(200)
            body = b"{}"
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@contextlib.contextmanager
def management_api() -> Iterator[str]:
    """The endpoint to push to: the real one when configured, else the loopback stand-in."""
    if REAL_ENDPOINT:
        yield REAL_ENDPOINT
        return
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandInManagementApi)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        # moto supplies fake credentials (boto3 signs every request) and would answer any request
        # meant for a real AWS host; the stand-in on 127.0.0.1 answers the pushes.
        with mock_aws():
            yield f"http://127.0.0.1:{server.server_address[1]}/prod"
    finally:
        server.shutdown()
        server.server_close()


def main() -> None:
    if not is_metadata_websocket_hook_available():
        print('boto3 is missing: pip install "mongodb-session-manager[aws]"')
        return
    with local_mongodb() as uri, management_api() as endpoint:
        # Outside AWS a region must come from somewhere; a real endpoint's host name carries it.
        hook = create_metadata_websocket_hook(
            endpoint,
            metadata_fields=["status", "agent_state", "progress"],
            region=None if REAL_ENDPOINT else "us-east-1",
        )
        manager = MongoDBSessionManager(
            "websocket-demo",
            connection_string=uri,
            database_name="chat",
            collection_name="sessions",
            metadata_hook=hook,
        )
        manager.update_metadata({"ws_connection_id": CONNECTION_ID})  # what a $connect handler would store

        manager.update_metadata({"status": "processing", "agent_state": "thinking", "progress": 50})
        manager.update_metadata({"progress": 100, "internal_notes": "not a pushed field"})
        manager.delete_metadata(["agent_state"])
        hook.flush(timeout=30)

        tool = manager.get_metadata_tool()
        print(f"Agent tries to take over the socket: {tool(action='set', metadata={'ws_connection_id': 'evil'})}")
        print(f"Connection id still stored: {manager.get_metadata()['ws_connection_id']}")

        DISCONNECTED.add(CONNECTION_ID)  # the user closes the tab
        manager.update_metadata({"status": "done"})  # 410 Gone: skipped quietly, the update is stored
        hook.flush(timeout=30)
        print(f"Stored metadata: {manager.get_metadata()}")
        print(f"Push outcomes: {hook.stats}")

        manager.repository.delete_session("websocket-demo")
        manager.close()
        close_aws_hooks()


if __name__ == "__main__":
    main()
