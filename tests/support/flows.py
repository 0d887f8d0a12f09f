"""Sign-in flows through the app's REST routes, for tests that need members."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from chalice.test import Client

from local.outbox import latest_code

FOUNDER_PHONE = "+14155550100"


@dataclass
class Member:
    user_id: str
    username: str
    phone: str
    access_token: str
    refresh_token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


def post(client: Client, path: str, payload: Any, headers: dict[str, str] | None = None) -> Any:
    return client.http.post(
        path,
        body=json.dumps(payload),
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def admin(client: Client, name: str, event: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = client.lambda_.invoke(name, event).payload
    return result


def verify(client: Client, phone: str) -> dict[str, Any]:
    started = post(client, "/auth/sign-in", {"phone": phone})
    assert started.status_code == 202, started.json_body
    response = post(client, "/auth/verify", {"phone": phone, "code": latest_code(phone)})
    assert response.status_code == 200, response.json_body
    answer: dict[str, Any] = response.json_body
    return answer


def as_member(answer: dict[str, Any], phone: str) -> Member:
    return Member(
        answer["user"]["user_id"],
        answer["user"]["username"],
        phone,
        answer["access_token"],
        answer["refresh_token"],
    )


def founder(client: Client, invites: int = 5) -> Member:
    made = admin(
        client,
        "admin_create_founder",
        {"phone": FOUNDER_PHONE, "name": "Founder", "username": "founder", "invites": invites},
    )
    assert made["ok"], made
    return as_member(verify(client, FOUNDER_PHONE), FOUNDER_PHONE)


def join(client: Client, inviter: Member, phone: str, username: str) -> Member:
    invited = post(client, "/invites", {"phone": phone}, inviter.auth)
    assert invited.status_code == 201, invited.json_body
    answer = verify(client, phone)
    assert answer["status"] == "invited"
    signed_up = post(
        client,
        "/auth/sign-up",
        {"sign_up_token": answer["sign_up_token"], "name": username.title(), "username": username},
    )
    assert signed_up.status_code == 201, signed_up.json_body
    return as_member(signed_up.json_body, phone)
