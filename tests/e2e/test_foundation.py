"""The local stack as a client meets it: real HTTP, real WebSockets, the real boto3 client."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from chalicelib.adapters.connections import Connections
from tests.support.http import HttpClient

FOUNDER = "+14155550100"


@pytest.fixture(scope="module")
def founder_token(api: HttpClient) -> str:
    return str(api.sign_in(FOUNDER)["access_token"])


def management_url(stack: dict[str, Any]) -> str:
    return str(stack["websocket"]).replace("ws://", "http://")


def open_connection_ids(stack: dict[str, Any]) -> set[str]:
    dynamodb = boto3.client(
        "dynamodb",
        endpoint_url=stack["aws"],
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    table = next(t for t in stack["tables"] if t.endswith("connections"))
    items = dynamodb.scan(TableName=table)["Items"]
    return {item["connection_id"]["S"] for item in items}


def test_health_reports_version_and_stage(api: HttpClient) -> None:
    response = api.get("/health")
    assert response.status == 200
    assert response.body["status"] == "ok"
    assert response.body["stage"] == "local"


def test_a_socket_with_a_valid_token_is_accepted_and_answers_ping(
    stack: dict[str, Any], founder_token: str
) -> None:
    with connect(f"{stack['websocket']}?token={founder_token}") as ws:
        ws.send(json.dumps({"action": "ping", "ref": "hb-1"}))
        reply = json.loads(ws.recv(timeout=10))
    assert (reply["type"], reply["ref"]) == ("pong", "hb-1")


def test_a_socket_without_a_token_is_refused_with_401(stack: dict[str, Any]) -> None:
    with pytest.raises(InvalidStatus) as refused:
        connect(str(stack["websocket"]))
    assert refused.value.response.status_code == 401


def test_a_socket_with_a_bad_token_is_refused_with_401(stack: dict[str, Any]) -> None:
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{stack['websocket']}?token=not-a-token")
    assert refused.value.response.status_code == 401


def test_bad_messages_get_error_replies_over_the_socket(
    stack: dict[str, Any], founder_token: str
) -> None:
    with connect(f"{stack['websocket']}?token={founder_token}") as ws:
        ws.send("this is not json")
        not_json = json.loads(ws.recv(timeout=10))
        ws.send(json.dumps({"action": "teleport"}))
        unknown = json.loads(ws.recv(timeout=10))
        ws.send(json.dumps({"action": "ping", "pad": "x" * 40_000}))
        too_large = json.loads(ws.recv(timeout=10))
    assert (not_json["type"], not_json["code"]) == ("error", "invalid_request")
    assert unknown["code"] == "unknown_action"
    assert too_large["code"] == "payload_too_large"


def test_connections_round_trip_through_the_real_boto3_client_including_410(
    stack: dict[str, Any], founder_token: str
) -> None:
    before = open_connection_ids(stack)
    client = boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=management_url(stack),
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    with connect(f"{stack['websocket']}?token={founder_token}") as ws:
        ws.send(json.dumps({"action": "ping"}))  # the app has stored the connection by now
        ws.recv(timeout=10)
        (connection_id,) = open_connection_ids(stack) - before
        client.post_to_connection(ConnectionId=connection_id, Data=b'{"type":"hello"}')
        assert json.loads(ws.recv(timeout=10)) == {"type": "hello"}
        assert client.get_connection(ConnectionId=connection_id)["ConnectedAt"]
    with pytest.raises(client.exceptions.GoneException):
        client.post_to_connection(ConnectionId=connection_id, Data=b"{}")
    # The app's own adapter reads the same 410 as "gone", not as a failure.
    assert Connections(management_url(stack), "us-east-1").post(connection_id, {"x": 1}) is False


def test_disconnect_removes_the_connection_row(stack: dict[str, Any], founder_token: str) -> None:
    before = open_connection_ids(stack)
    with connect(f"{stack['websocket']}?token={founder_token}") as ws:
        ws.send(json.dumps({"action": "ping"}))
        ws.recv(timeout=10)
        assert open_connection_ids(stack) - before
    # $disconnect is invoked after the socket closes; give the gateway a moment.
    for _ in range(50):
        if not open_connection_ids(stack) - before:
            break
        time.sleep(0.1)
    assert not open_connection_ids(stack) - before


def test_the_stack_keeps_answering_after_more_stdout_than_a_pipe_holds(
    stack: dict[str, Any], api: HttpClient
) -> None:
    """Powertools writes EMF metrics to stdout, as on Lambda. Each refused webhook counts one
    (WebhookSignatureFailures): far more than a pipe's 64 KiB of them, and every request is
    still answered, because the test's stack has its stdout read to the end (a stack nobody
    reads blocks on its next metric, which is how `DELETE /me` once hung the e2e run)."""
    stdout_log = Path(stack["stdout_log"])
    forged = json.dumps({"id": "evt_forged", "type": "charge.refunded"}).encode()

    def refused() -> None:
        answer = api.request("POST", "/webhooks/stripe", raw=forged)
        assert answer.status == 400 and answer.body["error"]["code"] == "invalid_signature", answer

    before = stdout_log.stat().st_size
    refused()
    time.sleep(0.5)  # the copier's turn
    per_request = stdout_log.stat().st_size - before
    assert per_request > 0, "a refused webhook wrote no metric to stdout"
    for _ in range(4 * 65536 // per_request):
        refused()
    assert api.get("/health").status == 200
    assert "WebhookSignatureFailures" in stdout_log.read_text()
