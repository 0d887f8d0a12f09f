"""Trust and safety over the local stack: a report from a member reaches an operator's decision
and comes back to the reporter over real HTTP and WebSockets; the socket's limits hold under a
flood; a deleted account is gone."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.support.http import HttpClient
from tests.support.wsclient import WsClient

_numbers = itertools.count(6100)


def admin(api: HttpClient, name: str, event: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = api.post(f"/_local/admin/{name}", event).body
    assert answer["ok"], answer
    return dict(answer["result"])


def phone() -> str:
    return f"+1415555{next(_numbers):04d}"


@pytest.fixture(scope="module")
def founder(api: HttpClient) -> dict[str, Any]:
    """A founder of this module's own (the shared founder's number has 5 codes an hour)."""
    number = phone()
    event = {"phone": number, "name": "Safety Founder", "username": "safety_founder", "invites": 20}
    admin(api, "admin_create_founder", event)
    return api.sign_in(number)


def member(api: HttpClient, founder: dict[str, Any], username: str) -> dict[str, Any]:
    number = phone()
    assert api.post("/invites", {"phone": number}, founder["access_token"]).status == 201
    answer = api.sign_in(number)
    joined = api.post(
        "/auth/sign-up",
        {"sign_up_token": answer["sign_up_token"], "name": username.title(), "username": username},
    )
    assert joined.status == 201, joined.body
    return {**joined.body, "phone": number}


def test_a_report_goes_from_a_member_to_an_operators_decision_and_back_to_the_reporter(
    stack: dict[str, Any], api: HttpClient, founder: dict[str, Any]
) -> None:
    reporter = member(api, founder, "reporter1")
    troll = member(api, founder, "troll1")
    reporter_ws = WsClient(stack["websocket"], reporter["access_token"], "reporter")
    troll_ws = WsClient(stack["websocket"], troll["access_token"], "troll")
    try:
        assert reporter_ws.send("ping")["type"] == "pong"
        assert troll_ws.send("ping")["type"] == "pong"
        made = api.post(
            "/reports",
            {
                "target_kind": "member",
                "target_id": troll["user"]["user_id"],
                "reason": "harassment",
                "note": "Shouted at every speaker.",
            },
            reporter["access_token"],
        )
        assert made.status == 201, made.body
        report_id = made.body["report_id"]

        # The operator works the queue (docs/runbook.md, "Reports").
        queue = admin(api, "admin_reports", {})["items"]
        assert report_id in [r["report_id"] for r in queue]
        opened = admin(api, "admin_report_open", {"report_id": report_id})
        assert opened["reporter"]["username"] == "reporter1"
        assert opened["target"]["username"] == "troll1"
        decided = admin(
            api, "admin_report_decide", {"report_id": report_id, "decision": "suspend", "days": 3}
        )
        assert decided["decision"] == "suspend"

        told = reporter_ws.event("report_decided", report_id=report_id)
        assert told["outcome"] == "suspend"
        # The suspended member's socket is closed by Salon, and their token refused.
        assert _closed_within(troll_ws, 10), "the suspended member's socket stayed open"
        refused = api.get("/me", troll["access_token"])
        assert (refused.status, refused.body["error"]["code"]) == (403, "account_suspended")
        mine = api.get("/me/reports", reporter["access_token"]).body["items"]
        assert [(r["report_id"], r["outcome"]) for r in mine] == [(report_id, "suspend")]
        assert all(reporter["user"]["user_id"] not in json.dumps(m) for m in troll_ws.messages)
    finally:
        reporter_ws.close()
        troll_ws.close()


def _closed_within(client: WsClient, seconds: float) -> bool:
    """Whether the server closes the socket (wait_for gives up early once it is closed)."""
    try:
        client.wait_for(lambda m: False, timeout=seconds)
    except AssertionError:
        pass
    return client.closed


def test_a_flood_on_one_socket_is_limited_with_retry_after_and_every_message_answered(
    stack: dict[str, Any], api: HttpClient, founder: dict[str, Any]
) -> None:
    flooder = member(api, founder, "flooder1")
    calm = member(api, founder, "calm1")
    ws = WsClient(stack["websocket"], flooder["access_token"], "flooder")
    other = WsClient(stack["websocket"], calm["access_token"], "calm")
    try:
        count = 120  # far beyond the burst (30) and what 5 a second refill while it is sent
        for n in range(count):
            ws.send_raw(json.dumps({"action": "ping", "ref": f"flood-{n}"}))
        ws.wait_for(lambda m: m.get("ref") == f"flood-{count - 1}", timeout=60)
        replies = [m for m in ws.messages if str(m.get("ref", "")).startswith("flood-")]
        assert sorted(m["ref"] for m in replies) == sorted(f"flood-{n}" for n in range(count))
        limited = [m for m in replies if m.get("code") == "rate_limited"]
        assert limited, "nothing was limited"
        assert all(m["retry_after"] >= 1 for m in limited)
        assert sum(1 for m in replies if m["type"] == "pong") >= 30
        # Another member's socket is not slowed by it.
        assert other.send("ping")["type"] == "pong"
    finally:
        ws.close()
        other.close()


def test_a_browser_from_another_origin_cannot_open_a_socket(
    stack: dict[str, Any], api: HttpClient, founder: dict[str, Any]
) -> None:
    url = f"{stack['websocket']}?token={founder['access_token']}"
    with pytest.raises(InvalidStatus) as refused:
        connect(url, origin="https://evil.example", open_timeout=10)  # type: ignore[arg-type]
    assert refused.value.response.status_code == 403
    with connect(url, open_timeout=10) as native:  # no Origin: a native app
        native.send(json.dumps({"action": "ping", "ref": "n1"}))
        assert json.loads(native.recv(timeout=10))["type"] == "pong"


def test_a_member_deletes_their_account_with_a_fresh_code(
    stack: dict[str, Any], api: HttpClient, founder: dict[str, Any]
) -> None:
    leaver = member(api, founder, "leaver1")
    token = leaver["access_token"]
    assert api.post("/me/deletion-code", None, token).status == 202
    code = api.get(f"/_local/sms/{leaver['phone'].lstrip('+')}").body["latest_code"]
    export = api.get("/me/export", token)
    assert export.status == 200 and export.body["profile"]["username"] == "leaver1"
    assert api.request("DELETE", "/me", {"code": code}, token).status == 204
    gone = api.get("/me", token)
    assert (gone.status, gone.body["error"]["code"]) == (401, "session_revoked")
    lost = api.get(f"/users/{leaver['user']['user_id']}", founder["access_token"])
    assert lost.status == 404
