"""The local WebSocket gateway behaves like API Gateway towards the app and towards boto3."""

import asyncio
import base64
import contextlib
import logging
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from local.gateway import LocalWebSocketGateway

WAIT_S = 5.0
CONNECTION_ID = re.compile(r"^[A-Za-z0-9]{15}=$")


def management_client(endpoint_url: str) -> Any:
    return boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


class FakeLambda:
    """Stands in for the Chalice handlers: records events and can be told how to behave."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.changed = threading.Condition()
        self.connect_response: dict[str, Any] | None = {"statusCode": 200}
        self.echo = False
        self.post_during_connect = False
        self.errors_during_connect: list[str] = []
        self.fail_on_body: str | None = None
        self.delete_on_body: str | None = None
        self.connect_raises = False
        self.client: Any = None

    def __call__(self, route_key: str, event: dict[str, Any]) -> dict[str, Any] | None:
        with self.changed:
            self.events.append((route_key, event))
            self.changed.notify_all()
        connection_id = event["requestContext"]["connectionId"]
        if route_key == "$connect":
            if self.connect_raises:
                raise RuntimeError("connect handler bug")
            if self.post_during_connect:
                try:
                    self.client.post_to_connection(ConnectionId=connection_id, Data=b"early")
                except Exception as exc:
                    self.errors_during_connect.append(type(exc).__name__)
            return self.connect_response
        if route_key == "$default":
            if self.fail_on_body is not None and event["body"] == self.fail_on_body:
                raise ValueError("handler bug")
            if event["body"] == self.delete_on_body:
                self.client.delete_connection(ConnectionId=connection_id)
            if self.echo:
                data = event["body"]
                if event["isBase64Encoded"]:
                    data = base64.b64decode(data)
                self.client.post_to_connection(ConnectionId=connection_id, Data=data)
        return {"statusCode": 200}

    def wait_for(self, route_key: str, count: int = 1) -> list[dict[str, Any]]:
        """The first `count` events for `route_key`, waiting for them to arrive."""

        def matching() -> list[dict[str, Any]]:
            return [event for key, event in self.events if key == route_key]

        with self.changed:
            if not self.changed.wait_for(lambda: len(matching()) >= count, timeout=WAIT_S):
                raise AssertionError(f"{route_key} invoked {len(matching())} times, not {count}")
            return matching()[:count]

    def routes(self) -> list[str]:
        with self.changed:
            return [key for key, _ in self.events]


class RunningGateway:
    """A gateway served by its own asyncio loop in a background thread."""

    def __init__(self, gateway: LocalWebSocketGateway) -> None:
        self.gateway = gateway
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.running = False

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def start(self) -> None:
        self.run(self.gateway.start())
        self.running = True

    def stop(self) -> None:
        if self.running:
            self.running = False
            self.run(self.gateway.stop())

    def close(self) -> None:
        self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=WAIT_S)
        self.loop.close()


@pytest.fixture
def app() -> FakeLambda:
    return FakeLambda()


@pytest.fixture
def start_gateway(app: FakeLambda) -> Iterator[Callable[..., RunningGateway]]:
    """Start a gateway on a free loopback port (options as keyword arguments)."""
    started: list[RunningGateway] = []

    def start(**options: Any) -> RunningGateway:
        running = RunningGateway(LocalWebSocketGateway(app, port=0, **options))
        started.append(running)
        running.start()
        app.client = management_client(running.gateway.management_url)
        return running

    yield start
    for running in started:
        running.close()


@pytest.fixture
def gateway(start_gateway: Callable[..., RunningGateway]) -> LocalWebSocketGateway:
    return start_gateway().gateway


@pytest.fixture
def client(app: FakeLambda, gateway: LocalWebSocketGateway) -> Any:
    return app.client


def open_socket(url: str, **options: Any) -> ClientConnection:
    ws: ClientConnection = connect(
        url, open_timeout=WAIT_S, close_timeout=1, ping_interval=None, **options
    )
    return ws


@contextlib.contextmanager
def connected(
    app: FakeLambda, gateway: LocalWebSocketGateway, **options: Any
) -> Iterator[tuple[ClientConnection, str]]:
    """An open socket and the connection id the gateway gave it."""
    with open_socket(gateway.websocket_url, **options) as ws:
        event = app.wait_for("$connect")[-1]
        yield ws, event["requestContext"]["connectionId"]


def close_code(ws: ClientConnection) -> int | None:
    """Wait for the server to close `ws` and return the close code it sent."""
    with pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=WAIT_S)
    return closed.value.rcvd.code if closed.value.rcvd else None


# ---------------------------------------------------------------- $connect


def test_connect_event_carries_the_query_string_headers_and_ids(
    app: FakeLambda, gateway: LocalWebSocketGateway
) -> None:
    url = f"{gateway.websocket_url}?token=abc%3D&room=r1&room=r2"
    with open_socket(url, additional_headers={"X-Test": "yes"}, user_agent_header="ua/1"):
        (event,) = app.wait_for("$connect")

    port = gateway.websocket_url.rsplit(":", 1)[1].split("/")[0]
    context = event["requestContext"]
    assert event["queryStringParameters"] == {"token": "abc=", "room": "r2"}
    assert event["multiValueQueryStringParameters"] == {"token": ["abc="], "room": ["r1", "r2"]}
    assert event["headers"]["X-Test"] == "yes"
    assert event["multiValueHeaders"]["X-Test"] == ["yes"]
    assert event["isBase64Encoded"] is False
    assert context["routeKey"] == "$connect"
    assert context["eventType"] == "CONNECT"
    assert context["messageDirection"] == "IN"
    assert context["stage"] == "dev"
    assert context["apiId"] == "local"
    assert context["domainName"] == f"127.0.0.1:{port}"
    assert CONNECTION_ID.match(context["connectionId"])
    assert context["requestId"] and context["extendedRequestId"]
    assert re.match(r"^\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000$", context["requestTime"])
    assert isinstance(context["connectedAt"], int)
    assert isinstance(context["requestTimeEpoch"], int)
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["identity"]["userAgent"] == "ua/1"


def test_a_connect_without_query_string_has_none_for_its_parameters(
    app: FakeLambda, gateway: LocalWebSocketGateway
) -> None:
    with open_socket(gateway.websocket_url):
        (event,) = app.wait_for("$connect")

    assert event["queryStringParameters"] is None
    assert event["multiValueQueryStringParameters"] is None


@pytest.mark.parametrize("path", ["/", "/dev"])
def test_the_socket_is_served_at_the_root_and_at_the_stage(
    app: FakeLambda, gateway: LocalWebSocketGateway, path: str
) -> None:
    root = gateway.websocket_url.rsplit("/", 1)[0]
    app.echo = True
    with open_socket(root + path) as ws:
        ws.send("hi")
        assert ws.recv(timeout=WAIT_S) == "hi"


def test_each_connection_gets_its_own_id(app: FakeLambda, gateway: LocalWebSocketGateway) -> None:
    with open_socket(gateway.websocket_url), open_socket(gateway.websocket_url):
        first, second = app.wait_for("$connect", count=2)

    assert first["requestContext"]["connectionId"] != second["requestContext"]["connectionId"]


def test_a_rejected_connect_fails_the_handshake_with_the_apps_status(
    app: FakeLambda, gateway: LocalWebSocketGateway, client: Any
) -> None:
    app.connect_response = {"statusCode": 401, "body": "bad token"}

    with pytest.raises(InvalidStatus) as rejected:
        open_socket(gateway.websocket_url + "?token=nope")

    assert rejected.value.response.status_code == 401
    assert rejected.value.response.body == b"bad token"
    (event,) = app.wait_for("$connect")
    with pytest.raises(client.exceptions.GoneException):
        client.get_connection(ConnectionId=event["requestContext"]["connectionId"])


def test_a_connect_handler_that_raises_fails_the_handshake_with_500(
    app: FakeLambda, gateway: LocalWebSocketGateway
) -> None:
    app.connect_raises = True

    with pytest.raises(InvalidStatus) as rejected:
        open_socket(gateway.websocket_url)

    assert rejected.value.response.status_code == 500


def test_a_connect_handler_returning_none_accepts_the_connection(
    app: FakeLambda, gateway: LocalWebSocketGateway
) -> None:
    app.connect_response = None
    app.echo = True

    with open_socket(gateway.websocket_url) as ws:
        ws.send("still here")
        assert ws.recv(timeout=WAIT_S) == "still here"


def test_posting_to_a_connection_whose_connect_is_still_running_raises_gone(
    app: FakeLambda, gateway: LocalWebSocketGateway
) -> None:
    app.post_during_connect = True

    with open_socket(gateway.websocket_url):
        app.wait_for("$connect")

    assert app.errors_during_connect == ["GoneException"]


def test_the_subprotocol_returned_by_connect_is_selected(
    app: FakeLambda, gateway: LocalWebSocketGateway
) -> None:
    app.connect_response = {"statusCode": 200, "headers": {"Sec-WebSocket-Protocol": "salon.v1"}}

    with open_socket(gateway.websocket_url, subprotocols=["salon.v1"]) as ws:
        assert ws.subprotocol == "salon.v1"


def test_a_plain_http_get_is_not_upgraded_and_invokes_nothing(
    app: FakeLambda, gateway: LocalWebSocketGateway
) -> None:
    http_url = gateway.management_url  # same path as the socket, http scheme

    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(http_url, timeout=WAIT_S)

    refused.value.close()
    assert refused.value.code == 426
    assert app.routes() == []


# ---------------------------------------------------------------- $default


def test_a_client_message_invokes_default_with_its_body(
    app: FakeLambda, gateway: LocalWebSocketGateway
) -> None:
    with open_socket(gateway.websocket_url) as ws:
        (connect_event,) = app.wait_for("$connect")
        ws.send('{"action": "join"}')
        (event,) = app.wait_for("$default")

    context = event["requestContext"]
    assert event["body"] == '{"action": "join"}'
    assert event["isBase64Encoded"] is False
    assert context["routeKey"] == "$default"
    assert context["eventType"] == "MESSAGE"
    assert context["messageId"]
    assert context["connectionId"] == connect_event["requestContext"]["connectionId"]
    assert context["connectedAt"] == connect_event["requestContext"]["connectedAt"]


def test_a_binary_message_arrives_base64_encoded(
    app: FakeLambda, gateway: LocalWebSocketGateway
) -> None:
    with open_socket(gateway.websocket_url) as ws:
        ws.send(b"\x00\xff\x10")
        (event,) = app.wait_for("$default")

    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\x00\xff\x10"


def test_messages_from_one_connection_are_handled_in_order(
    app: FakeLambda, gateway: LocalWebSocketGateway
) -> None:
    with open_socket(gateway.websocket_url) as ws:
        for n in range(20):
            ws.send(str(n))
        events = app.wait_for("$default", count=20)

    assert [event["body"] for event in events] == [str(n) for n in range(20)]


def test_an_exception_in_the_handler_is_logged_and_keeps_the_connection_open(
    app: FakeLambda, gateway: LocalWebSocketGateway, caplog: pytest.LogCaptureFixture
) -> None:
    app.echo = True
    app.fail_on_body = "boom"

    with caplog.at_level(logging.ERROR, logger="salon.local.gateway"):
        with open_socket(gateway.websocket_url) as ws:
            ws.send("boom")
            ws.send("after")
            assert ws.recv(timeout=WAIT_S) == "after"

    assert any("$default handler failed" in r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------- @connections


def test_a_handler_can_post_back_to_the_sender_through_boto3(
    app: FakeLambda, gateway: LocalWebSocketGateway
) -> None:
    app.echo = True

    with open_socket(gateway.websocket_url) as ws:
        ws.send("hello, ünïcode")
        assert ws.recv(timeout=WAIT_S) == "hello, ünïcode"


def test_posted_data_that_is_not_utf8_arrives_as_a_binary_frame(
    app: FakeLambda, gateway: LocalWebSocketGateway, client: Any
) -> None:
    with connected(app, gateway) as (ws, connection_id):
        client.post_to_connection(ConnectionId=connection_id, Data=b"\xff\xfe")
        assert ws.recv(timeout=WAIT_S) == b"\xff\xfe"


def test_the_management_api_answers_on_its_own_stage(
    app: FakeLambda, gateway: LocalWebSocketGateway, client: Any
) -> None:
    with connected(app, gateway) as (ws, connection_id):
        client.post_to_connection(ConnectionId=connection_id, Data=b"direct")
        assert ws.recv(timeout=WAIT_S) == "direct"


@pytest.mark.parametrize("path", ["", "/ws"], ids=["no stage", "another stage"])
def test_the_management_api_refuses_another_stage_as_api_gateway_does(
    app: FakeLambda, gateway: LocalWebSocketGateway, path: str
) -> None:
    """A post to a stage the API does not have must fail here too, or the local stack would
    hide a wrong stage in the code's @connections URL (issue 11)."""
    client = management_client(gateway.management_url.rsplit("/", 1)[0] + path)
    with connected(app, gateway) as (_, connection_id):
        with pytest.raises(ClientError) as refused:
            client.post_to_connection(ConnectionId=connection_id, Data=b"direct")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_get_connection_reports_connected_at_and_identity(
    app: FakeLambda, gateway: LocalWebSocketGateway, client: Any
) -> None:
    with connected(app, gateway, user_agent_header="salon-test/1") as (_, connection_id):
        info = client.get_connection(ConnectionId=connection_id)

    assert info["Identity"] == {"SourceIp": "127.0.0.1", "UserAgent": "salon-test/1"}
    assert info["ConnectedAt"].tzinfo is not None
    assert info["LastActiveAt"] >= info["ConnectedAt"]


def test_delete_connection_closes_the_socket_and_invokes_disconnect(
    app: FakeLambda, gateway: LocalWebSocketGateway, client: Any
) -> None:
    with connected(app, gateway) as (ws, connection_id):
        client.delete_connection(ConnectionId=connection_id)
        assert close_code(ws) == 1000

    (event,) = app.wait_for("$disconnect")
    context = event["requestContext"]
    assert context["connectionId"] == connection_id
    assert context["eventType"] == "DISCONNECT"
    assert context["disconnectStatusCode"] == 1000
    assert context["disconnectReason"]
    with pytest.raises(client.exceptions.GoneException):
        client.delete_connection(ConnectionId=connection_id)


def test_a_handler_can_delete_the_connection_it_is_handling(
    app: FakeLambda, gateway: LocalWebSocketGateway, client: Any
) -> None:
    app.delete_on_body = "kick me"

    with connected(app, gateway) as (ws, connection_id):
        ws.send("kick me")
        assert close_code(ws) == 1000

    (event,) = app.wait_for("$disconnect")
    assert event["requestContext"]["connectionId"] == connection_id


def test_a_client_close_invokes_disconnect_with_the_clients_code(
    app: FakeLambda, gateway: LocalWebSocketGateway
) -> None:
    with connected(app, gateway) as (ws, connection_id):
        ws.close(code=4000, reason="bye")

    (event,) = app.wait_for("$disconnect")
    assert event["requestContext"]["connectionId"] == connection_id
    assert event["requestContext"]["disconnectStatusCode"] == 4000
    assert event["requestContext"]["disconnectReason"] == "bye"


def test_posting_to_a_closed_connection_raises_gone(
    app: FakeLambda, gateway: LocalWebSocketGateway, client: Any
) -> None:
    with connected(app, gateway) as (_, connection_id):
        pass  # the client closes on leaving the block
    app.wait_for("$disconnect")

    with pytest.raises(client.exceptions.GoneException):
        client.post_to_connection(ConnectionId=connection_id, Data=b"late")
    with pytest.raises(client.exceptions.GoneException):
        client.get_connection(ConnectionId=connection_id)


def test_posting_to_an_unknown_connection_raises_gone(client: Any) -> None:
    with pytest.raises(client.exceptions.GoneException):
        client.post_to_connection(ConnectionId="AAAAAAAAAAAAAAA=", Data=b"x")


def test_an_oversized_post_raises_payload_too_large(
    app: FakeLambda, gateway: LocalWebSocketGateway, client: Any
) -> None:
    with connected(app, gateway) as (ws, connection_id):
        with pytest.raises(client.exceptions.PayloadTooLargeException):
            client.post_to_connection(ConnectionId=connection_id, Data=b"x" * (128 * 1024 + 1))
        client.post_to_connection(ConnectionId=connection_id, Data=b"y" * (128 * 1024))
        assert ws.recv(timeout=WAIT_S) == "y" * (128 * 1024)


# ---------------------------------------------------------------- limits


def test_an_oversized_client_message_closes_the_socket_with_1009(
    app: FakeLambda, start_gateway: Callable[..., RunningGateway]
) -> None:
    gateway = start_gateway(max_message_bytes=1024).gateway

    with open_socket(gateway.websocket_url) as ws:
        ws.send("x" * 1025)
        assert close_code(ws) == 1009

    (event,) = app.wait_for("$disconnect")
    assert event["requestContext"]["disconnectStatusCode"] == 1009
    assert "$default" not in app.routes()


def test_an_idle_connection_is_closed_with_1001_and_disconnect_invoked(
    app: FakeLambda, start_gateway: Callable[..., RunningGateway]
) -> None:
    gateway = start_gateway(idle_timeout_s=0.5).gateway

    with open_socket(gateway.websocket_url) as ws:
        assert close_code(ws) == 1001

    (event,) = app.wait_for("$disconnect")
    assert event["requestContext"]["disconnectStatusCode"] == 1001
    assert event["requestContext"]["disconnectReason"] == "Going away"


def test_client_messages_reset_the_idle_timer(
    app: FakeLambda, start_gateway: Callable[..., RunningGateway]
) -> None:
    gateway = start_gateway(idle_timeout_s=0.6).gateway
    app.echo = True

    with open_socket(gateway.websocket_url) as ws:
        for n in range(6):  # 6 round trips 0.15 s apart outlast one idle period
            threading.Event().wait(0.15)
            ws.send(str(n))
            assert ws.recv(timeout=WAIT_S) == str(n)
        assert close_code(ws) == 1001


def test_client_pings_reset_the_idle_timer(
    app: FakeLambda, start_gateway: Callable[..., RunningGateway]
) -> None:
    gateway = start_gateway(idle_timeout_s=0.6).gateway

    with open_socket(gateway.websocket_url) as ws:
        for _ in range(6):
            threading.Event().wait(0.15)
            assert ws.ping().wait(timeout=WAIT_S)  # the gateway answers pings
        assert close_code(ws) == 1001

    assert "$default" not in app.routes()


def test_a_connection_is_closed_at_its_maximum_duration(
    app: FakeLambda, start_gateway: Callable[..., RunningGateway]
) -> None:
    gateway = start_gateway(max_connection_s=0.5).gateway
    app.echo = True

    with open_socket(gateway.websocket_url) as ws:
        ws.send("busy")
        assert ws.recv(timeout=WAIT_S) == "busy"
        assert close_code(ws) == 1001

    app.wait_for("$disconnect")


def test_stop_disconnects_every_client(
    app: FakeLambda, start_gateway: Callable[..., RunningGateway]
) -> None:
    running = start_gateway()
    url = running.gateway.websocket_url
    with open_socket(url) as first, open_socket(url) as second:
        app.wait_for("$connect", count=2)

        running.stop()

        assert close_code(first) == 1001
        assert close_code(second) == 1001
    # stop() returns only after every $disconnect has been invoked.
    assert app.routes().count("$disconnect") == 2


# ---------------------------------------------------------------- logging


def test_message_bodies_and_query_strings_are_never_logged(
    app: FakeLambda, gateway: LocalWebSocketGateway, caplog: pytest.LogCaptureFixture
) -> None:
    app.echo = True
    app.fail_on_body = "boom-SECRET-SDP"

    with caplog.at_level(logging.DEBUG, logger="salon.local.gateway"):
        with open_socket(gateway.websocket_url + "?token=SECRET-TOKEN") as ws:
            ws.send("v=0 SECRET-SDP")
            assert ws.recv(timeout=WAIT_S) == "v=0 SECRET-SDP"
            ws.send("boom-SECRET-SDP")
        app.wait_for("$disconnect")

    text = caplog.text
    assert "opened" in text
    assert "closed" in text
    assert "$default handler failed" in text
    assert "SECRET" not in text
    opened = [r for r in caplog.records if "opened" in r.getMessage()]
    assert [r.levelno for r in opened] == [logging.INFO]
