"""The WebSocket edge: who may connect, and how every message gets an answer."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from chalice.test import Client

from tests.support.events import ws_event
from tests.support.fakes import RecordingConnections
from tests.support.flows import founder


def token_for(client: Client) -> str:
    """A real member's access token: the founder, signed in by SMS code."""
    return founder(client).access_token


def connect(client: Client, connection_id: str, query: dict[str, str] | None) -> Any:
    return client.lambda_.invoke(
        "ws_connect", ws_event("$connect", connection_id, query=query)
    ).payload


def send(client: Client, connection_id: str, body: Any) -> None:
    raw = body if isinstance(body, str) else json.dumps(body)
    client.lambda_.invoke("ws_message", ws_event("$default", connection_id, body=raw))


def test_a_valid_token_in_the_query_string_is_admitted(client: Client, svc: Any) -> None:
    response = connect(client, "c1=", {"token": token_for(client)})
    assert response["statusCode"] == 200
    assert svc.connections.get("c1=", datetime.now(UTC)).user_id


def test_a_connection_without_a_token_is_refused_with_401(client: Client) -> None:
    response = connect(client, "c1=", None)
    assert response["statusCode"] == 401
    assert json.loads(response["body"])["error"]["code"] == "not_authenticated"


def test_a_forged_token_is_refused_with_401(client: Client, svc: Any) -> None:
    forged = token_for(client)[:-4] + "AAAA"
    assert connect(client, "c1=", {"token": forged})["statusCode"] == 401


def test_ping_is_answered_with_pong_and_the_callers_ref(
    client: Client, svc: Any, sockets: RecordingConnections
) -> None:
    connect(client, "c1=", {"token": token_for(client)})
    send(client, "c1=", {"action": "ping", "ref": "r-7"})
    reply = sockets.last("c1=")
    assert reply["type"] == "pong"
    assert reply["ref"] == "r-7"


def test_a_message_that_is_not_json_gets_an_error_reply(
    client: Client, svc: Any, sockets: RecordingConnections
) -> None:
    connect(client, "c1=", {"token": token_for(client)})
    send(client, "c1=", "{not json")
    assert sockets.last("c1=") == {
        "type": "error",
        "code": "invalid_request",
        "message": "The message is not valid JSON.",
    }


def test_an_unknown_action_gets_an_error_reply(
    client: Client, svc: Any, sockets: RecordingConnections
) -> None:
    connect(client, "c1=", {"token": token_for(client)})
    send(client, "c1=", {"action": "fly", "ref": "r1"})
    reply = sockets.last("c1=")
    assert (reply["code"], reply["field"], reply["ref"]) == ("unknown_action", "action", "r1")


def test_a_message_without_an_action_gets_an_error_reply(
    client: Client, svc: Any, sockets: RecordingConnections
) -> None:
    connect(client, "c1=", {"token": token_for(client)})
    send(client, "c1=", [1, 2])
    assert sockets.last("c1=")["code"] == "invalid_request"
    send(client, "c1=", {"ref": "x"})
    assert sockets.last("c1=")["field"] == "action"


def test_a_message_over_the_limit_gets_payload_too_large(
    client: Client, svc: Any, sockets: RecordingConnections
) -> None:
    connect(client, "c1=", {"token": token_for(client)})
    limit = svc.settings.max_ws_message_bytes
    send(client, "c1=", {"action": "ping", "pad": "x" * limit})
    assert sockets.last("c1=")["code"] == "payload_too_large"


def test_unexpected_fields_are_refused_by_name(
    client: Client, svc: Any, sockets: RecordingConnections
) -> None:
    connect(client, "c1=", {"token": token_for(client)})
    send(client, "c1=", {"action": "ping", "colour": "red"})
    reply = sockets.last("c1=")
    assert (reply["code"], reply["field"]) == ("invalid_request", "colour")


def test_a_connection_that_never_signed_in_is_told_to_reconnect(
    client: Client, sockets: RecordingConnections
) -> None:
    send(client, "ghost=", {"action": "ping"})
    assert sockets.last("ghost=")["code"] == "not_connected"


def test_disconnect_forgets_the_connection(client: Client, svc: Any) -> None:
    connect(client, "c1=", {"token": token_for(client)})
    client.lambda_.invoke("ws_disconnect", ws_event("$disconnect", "c1="))
    assert svc.connections.get("c1=", datetime.now(UTC)) is None


def test_health_reports_version_and_stage(client: Client) -> None:
    response = client.http.get("/health")
    assert response.status_code == 200
    assert response.json_body == {"status": "ok", "version": "0.1.0", "stage": "test"}


def test_a_message_over_the_limit_is_refused_with_its_ref(
    client: Client, svc: Any, sockets: RecordingConnections
) -> None:
    connect(client, "c1=", {"token": token_for(client)})
    limit = svc.settings.max_ws_message_bytes
    send(client, "c1=", {"action": "ping", "ref": "big-1", "pad": "x" * limit})
    assert (sockets.last("c1=")["code"], sockets.last("c1=").get("ref")) == (
        "payload_too_large",
        "big-1",
    )


def test_an_over_long_ref_is_refused_with_its_first_64_characters(
    client: Client, sockets: RecordingConnections
) -> None:
    connect(client, "c1=", {"token": token_for(client)})
    send(client, "c1=", {"action": "ping", "ref": "r" * 65})
    reply = sockets.last("c1=")
    assert (reply["code"], reply["field"], reply.get("ref")) == ("invalid_request", "ref", "r" * 64)


def test_nan_and_infinity_are_refused_as_not_json_with_the_ref(
    client: Client, sockets: RecordingConnections
) -> None:
    connect(client, "c1=", {"token": token_for(client)})
    for constant in ("NaN", "Infinity", "-Infinity"):
        send(client, "c1=", '{"action": "ping", "ref": "n", "x": ' + constant + "}")
        reply = sockets.last("c1=")
        assert (reply["type"], reply["code"], reply.get("ref")) == (
            "error",
            "invalid_request",
            "n",
        )
        assert constant in reply["message"]


def test_no_message_to_a_socket_carries_nan() -> None:
    with pytest.raises(ValueError):
        RecordingConnections().post("c1=", {"type": "media_offer", "sdp": float("nan")})
