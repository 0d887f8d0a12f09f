"""People in rooms, for integration tests: members with sockets, driven through the handlers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from chalice.test import Client

from tests.support.events import sqs_event, ws_event
from tests.support.fakes import RecordingConnections
from tests.support.flows import as_member, verify


@dataclass
class Person:
    name: str
    user_id: str
    token: str
    crowd: Crowd
    connection_id: str = ""
    reconnects: int = field(default=0)

    def connect(self) -> None:
        self.reconnects += 1
        self.connection_id = f"{self.name}-{self.reconnects}="
        response = self.crowd.client.lambda_.invoke(
            "ws_connect", ws_event("$connect", self.connection_id, query={"token": self.token})
        )
        assert response.payload["statusCode"] == 200, response.payload

    def disconnect(self) -> None:
        self.crowd.client.lambda_.invoke(
            "ws_disconnect", ws_event("$disconnect", self.connection_id)
        )

    def send(self, action: str, **fields: Any) -> dict[str, Any]:
        """Send one action and return the reply addressed to it (matched by ref)."""
        ref = f"{action}-{len(self.inbox())}"
        body = json.dumps({"action": action, "ref": ref, **fields})
        self.crowd.client.lambda_.invoke(
            "ws_message", ws_event("$default", self.connection_id, body=body)
        )
        replies = [m for m in self.inbox() if m.get("ref") == ref]
        assert replies, f"no reply to {action}"
        return replies[-1]

    def ok(self, action: str, **fields: Any) -> dict[str, Any]:
        reply = self.send(action, **fields)
        assert reply["type"] != "error", reply
        return reply

    def refused(self, action: str, **fields: Any) -> str:
        reply = self.send(action, **fields)
        assert reply["type"] == "error", reply
        return str(reply["code"])

    def inbox(self) -> list[dict[str, Any]]:
        return self.crowd.sockets.sent.get(self.connection_id, [])

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.inbox() if m.get("type") == kind]


@dataclass
class Crowd:
    client: Client
    svc: Any
    sockets: RecordingConnections
    people: dict[str, Person] = field(default_factory=dict)

    def person(self, name: str, *, connect: bool = True) -> Person:
        phone = f"+1415555{1000 + len(self.people):04d}"
        made = self.client.lambda_.invoke(
            "admin_create_founder",
            {"phone": phone, "name": name.title(), "username": name, "invites": 0},
        ).payload
        assert made["ok"], made
        member = as_member(verify(self.client, phone), phone)
        person = Person(name, member.user_id, member.access_token, self)
        self.people[name] = person
        if connect:
            person.connect()
        return person

    def follow(self, follower: Person, followee: Person) -> None:
        self.svc.identity.follow(follower.user_id, followee.user_id)

    def fire(self, kind: str) -> int:
        """Run the delayed work of that kind through the timers function, as the queue would
        deliver it after its delay (so the IAM replay checks the timers role's calls too)."""
        messages = self.svc.timers.take(kind)
        if messages:
            self.client.lambda_.invoke("timers", sqs_event(messages))
        return len(messages)


def speaker_in(crowd: Crowd, room_id: str, host: Person, name: str) -> Person:
    """A new member who joins the room and accepts the host's invitation to speak (muted)."""
    person = crowd.person(name)
    person.ok("join_room", room_id=room_id)
    host.ok("invite_to_speak", user_id=person.user_id)
    person.ok("accept_speaker_invite")
    return person
