"""One manager, three audiences: WebSocket push for the UI, SQS events for the backend, SNS alerts.

A manager takes one metadata hook and one feedback hook; ``compose_metadata_hooks`` chains the
WebSocket and SQS hooks so every metadata change (here made by the agent itself through its
metadata tool) reaches both, while MongoDB is written once. Sends run in the background and the
agent's turn never waits for them; ``flush_aws_hooks`` waits before the script exits.

Offline by default: SNS and SQS are simulated in-process by moto, and a local stand-in for API
Gateway's Management API (on 127.0.0.1) plays the browser. Nothing leaves the machine.

Run: uv run python examples/example_combined_hooks.py
"""

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
from moto import mock_aws
from strands import Agent

from mongodb_session_manager import (
    MongoDBSessionManager,
    close_aws_hooks,
    compose_metadata_hooks,
    create_feedback_sns_hook,
    create_metadata_sqs_hook,
    create_metadata_websocket_hook,
    flush_aws_hooks,
)
from mongodb_session_manager.embedded import local_mongodb
from mongodb_session_manager.testing import ScriptedModel

REGION = "us-east-1"


class BrowserStandIn(BaseHTTPRequestHandler):
    """Answers post_to_connection like API Gateway and prints what the browser would receive."""

    def do_POST(self) -> None:
        data = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        print(f"[UI via WebSocket] {data['event_type']}: {data.get('metadata', data.get('deleted_keys'))}")
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:
        return


@contextlib.contextmanager
def websocket_stand_in() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BrowserStandIn)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/prod"
    finally:
        server.shutdown()
        server.server_close()


def main() -> None:
    with local_mongodb() as uri, websocket_stand_in() as ws_endpoint, mock_aws():
        sns, sqs = boto3.client("sns", region_name=REGION), boto3.client("sqs", region_name=REGION)
        queue_url = sqs.create_queue(QueueName="backend-events")["QueueUrl"]
        alerts_url = sqs.create_queue(QueueName="on-call-inbox")["QueueUrl"]
        alerts_arn = sqs.get_queue_attributes(QueueUrl=alerts_url, AttributeNames=["QueueArn"])["Attributes"]
        topic_arn = sns.create_topic(Name="feedback-bad")["TopicArn"]
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=alerts_arn["QueueArn"])

        metadata_hook = compose_metadata_hooks(
            create_metadata_websocket_hook(ws_endpoint, metadata_fields=["status", "progress"], region=REGION),
            create_metadata_sqs_hook(queue_url, metadata_fields=["status", "customer_tier"]),
        )
        feedback_hook = create_feedback_sns_hook(topic_arn_bad=topic_arn, subject_prefix_bad="[DEMO] ")
        manager = MongoDBSessionManager(
            "combined-hooks-demo",
            connection_string=uri,
            database_name="chat",
            collection_name="sessions",
            metadata_hook=metadata_hook,
            feedback_hook=feedback_hook,
        )
        manager.update_metadata({"ws_connection_id": "conn-browser-1", "customer_tier": "gold"})

        agent = Agent(
            agent_id="support",
            model=ScriptedModel(),  # offline; its metadata tool calls go through the hooks
            tools=[manager.get_metadata_tool()],
            session_manager=manager,
            callback_handler=None,
        )
        prompt = "Remember that my status is waiting for a refund."
        print(f"User:  {prompt}")
        print(f"Agent: {agent(prompt)}")
        manager.update_metadata({"progress": 100})
        manager.add_feedback({"rating": "down", "comment": "The refund is still missing."})

        flush_aws_hooks(timeout=30)
        for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
            event = json.loads(message["Body"])
            print(f"[backend via SQS] {event['event_type']}: {event['metadata']}")
        for message in sqs.receive_message(QueueUrl=alerts_url, MaxNumberOfMessages=10).get("Messages", []):
            print(f"[on-call via SNS] {json.loads(message['Body'])['Subject']}")
        print(f"Stored metadata: {manager.get_metadata()}")

        manager.repository.delete_session("combined-hooks-demo")
        manager.close()
        close_aws_hooks()


if __name__ == "__main__":
    main()
