"""How the @connections poster reads API Gateway's answers (chalicelib/adapters/connections.py),
against the service model through botocore's Stubber: a 410 is a gone client; throttling and
API Gateway's own failures (what is left of them after the client's retries) are worth another
try; a refusal for good is neither."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber

from chalicelib.adapters.connections import Connections, Delivery

MESSAGE = {"type": "speaker_muted", "room_id": "r1", "version": 12}


@pytest.fixture
def poster(monkeypatch: pytest.MonkeyPatch) -> Connections:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return Connections("https://abc123.execute-api.us-east-1.amazonaws.com/ws", "us-east-1")


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        (None, 200, Delivery()),
        ("GoneException", 410, Delivery(gone=["c1="])),
        ("LimitExceededException", 429, Delivery(failed=["c1="])),
        ("InternalServerError", 500, Delivery(failed=["c1="])),
        ("ForbiddenException", 403, Delivery()),  # logged; another try would not help
        ("PayloadTooLargeException", 413, Delivery()),
    ],
)
def test_an_answer_is_read_as_delivered_gone_or_worth_another_try(
    poster: Connections, code: str | None, status: int, expected: Delivery
) -> None:
    stubber = Stubber(poster._get_client())
    expected_params = {
        "ConnectionId": "c1=",
        "Data": b'{"type":"speaker_muted","room_id":"r1","version":12}',
    }
    if code is None:
        stubber.add_response("post_to_connection", {}, expected_params)
    else:
        stubber.add_client_error(
            "post_to_connection",
            service_error_code=code,
            http_status_code=status,
            expected_params=expected_params,
        )
    with stubber:
        assert poster.post_many(["c1="], MESSAGE) == expected
        stubber.assert_no_pending_responses()


def test_no_answer_at_all_is_worth_another_try(
    poster: Connections, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(*_: Any) -> bool:
        raise EndpointConnectionError(endpoint_url="https://abc123.execute-api")

    monkeypatch.setattr(poster, "_post_bytes", unreachable)
    assert poster.post_many(["c1=", "c2="], MESSAGE) == Delivery(failed=["c1=", "c2="])


def test_a_post_that_gets_no_answer_ends_its_tries_inside_the_functions_timeout(
    poster: Connections,
) -> None:
    """Every function that posts has 30 s (.chalice/config.json); botocore's own 60 s read
    timeout would have outlived it, so a post to an API Gateway that never answers could not
    be handed back to the fan-out queue."""
    config = poster._get_client().meta.config
    stages = json.loads((Path(__file__).parents[2] / ".chalice" / "config.json").read_text())
    posting = ("websocket_message", "fanout", "timers")
    timeouts = [
        stage.get("lambda_functions", {}).get(name, {}).get("lambda_timeout")
        or stage["lambda_timeout"]
        for stage in stages["stages"].values()
        for name in posting
    ]
    tries = config.retries["total_max_attempts"]
    assert tries * (config.connect_timeout + config.read_timeout) < min(timeouts)
