"""The money messages of the WebSocket, from real tips, are what docs/asyncapi.yaml promises.

Tips go through the handlers and the Stripe emulator as in test_send_money.py: the sender confirms
with a card, Stripe's webhooks are delivered to the app, and only then is anyone told. A creator
on the stage of a live room with a listener is tipped (`tip_received`, `tip_sent`,
`tip_announced`); a card is declined and then replaced (`tip_failed`, then `tip_sent`); a creator
in the audience is tipped (no `tip_announced`). When each test ends, every message any socket
received is validated against `ServerMessage`, and each money message against whom it is
documented to reach (`x-recipients`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import stripe
from chalice.test import Client

from tests.support import contract, send_money
from tests.support.crowd import Crowd, Person
from tests.support.fakes import RecordingConnections
from tests.support.stripe_local import Delivery, WebhookInbox


@pytest.fixture
def crowd(paying_crowd: Crowd) -> Crowd:
    """The Stripe emulator, its webhook inbox and the app wired to them (conftest.py)."""
    return paying_crowd


GOOD_CARD = "4242424242424242"
# Stripe's test card that attaches but whose charges are declined (`card_declined`): the
# payment fails when the sender confirms it. (The emulator, as localstripe, declines the
# generic-decline card 4000000000000002 only when attaching it to a customer.)
DECLINED_CARD = "4000000000000341"
MONEY = set(contract.driven_elsewhere())


@dataclass
class Tips:
    """The tips a test sends, and what every socket received, checked against the contract."""

    crowd: Crowd
    client: Client
    sockets: RecordingConnections
    people: dict[str, tuple[str, str]] = field(default_factory=dict)  # tip -> sender, creator

    def send(self, sender: Person, creator: Person, cents: int) -> dict[str, Any]:
        answer = send_money.tip(self.client, sender, creator, cents)
        assert answer.status_code == 201, answer.json_body
        body: dict[str, Any] = answer.json_body
        self.people[body["tip"]["tip_id"]] = (sender.user_id, creator.user_id)
        return body

    def money(self) -> list[dict[str, Any]]:
        """Every money message any socket got so far."""
        return [m for ms in self.sockets.sent.values() for m in ms if m["type"] in MONEY]

    def owners(self) -> dict[str, str]:
        """connection id -> user id, for every socket anyone opened."""
        return {
            f"{p.name}-{n}=": p.user_id
            for p in self.crowd.people.values()
            for n in range(1, p.reconnects + 1)
        }

    def check_everything_received(self) -> set[str]:
        """Every message is documented; each money message reached only whom it may reach.
        Returns the types seen."""
        owners, rooms = self.owners(), self.crowd.svc.rooms.repo
        seen = set()
        for connection_id, messages in self.sockets.sent.items():
            for message in messages:
                contract.validate_server_message(message)
                seen.add(message["type"])
                if message["type"] not in MONEY:
                    continue
                assert "ref" not in message, f"not a reply: {message}"
                to = contract.recipients(message["type"])
                assert to is not None, message["type"]
                where = f"{message['type']} reached {connection_id}: {message}"
                sender_id, creator_id = self.people[message["tip_id"]]
                if to["to"] == "room":
                    in_room = rooms.connections(message["room_id"]).values()
                    assert connection_id in in_room, f"not in the room, yet {where}"
                else:
                    wanted = {"creator": creator_id, "sender": sender_id}[to["to"]]
                    assert owners[connection_id] == wanted, f"not for them, yet {where}"
        return seen


@pytest.fixture
def tips(crowd: Crowd, client: Client, sockets: RecordingConnections) -> Iterator[Tips]:
    tips = Tips(crowd, client, sockets)
    yield tips
    tips.check_everything_received()


def settle(client: Client, inbox: WebhookInbox, event_type: str) -> list[Delivery]:
    """Stripe's webhooks, up to `event_type`, delivered to the app; returns them."""
    inbox.wait_for(event_type)
    deliveries = inbox.take()
    assert set(send_money.deliver(client, deliveries)) == {200}
    return deliveries


def status(client: Client, person: Person, tip_id: str) -> str:
    answer = send_money.call(client, "get", f"/tips/{tip_id}", person)
    assert answer.status_code == 200, answer.json_body
    return str(answer.json_body["status"])


def test_a_tip_to_a_creator_on_stage_is_told_to_them_the_sender_and_the_room(
    tips: Tips,
    crowd: Crowd,
    client: Client,
    emulator: str,
    inbox: WebhookInbox,
    sdk: stripe.StripeClient,
    sockets: RecordingConnections,
) -> None:
    creator = send_money.creator_with_send_money(crowd, client, emulator, inbox)
    sender = send_money.beta_sender(crowd, client)
    phone = sender.connection_id
    sender.connect()  # a second socket (a laptop, say): both are told
    listener, outsider = crowd.person("listener"), crowd.person("outsider")
    room_id = creator.ok("create_room", title="Jazz at night", kind="open")["room_id"]
    assert listener.ok("join_room", room_id=room_id)["viewer"]["role"] == "listener"

    answer = tips.send(sender, creator, 500)
    tip_id = answer["tip"]["tip_id"]
    assert answer["next_step"] == "confirm_with_card"
    send_money.confirm_with_card(sdk, answer, GOOD_CARD)
    inbox.wait_for("payment_intent.succeeded")
    assert tips.money() == [], "submitting and confirming tell nobody: Stripe's webhook does"
    deliveries = settle(client, inbox, "payment_intent.succeeded")

    fan = {"user_id": sender.user_id, "username": "fan", "name": "Fan"}
    received = {
        "type": "tip_received",
        "tip_id": tip_id,
        "amount_cents": 500,
        "currency": "usd",
        "from": fan,
    }
    announced = {**received, "type": "tip_announced", "room_id": room_id}
    assert creator.events("tip_received") == [received]
    assert creator.events("tip_announced") == [announced]
    assert listener.events("tip_announced") == [announced]
    assert not listener.events("tip_received")
    sent = {"type": "tip_sent", "tip_id": tip_id, "amount_cents": 500}
    for connection_id in (phone, sender.connection_id):
        assert [m for m in sockets.sent[connection_id] if m["type"] in MONEY] == [sent]
    assert outsider.inbox() == []
    assert status(client, sender, tip_id) == "succeeded"

    # Stripe redelivers: nobody is told twice.
    before = tips.money()
    assert set(send_money.deliver(client, deliveries)) == {200}
    assert tips.money() == before

    assert tips.check_everything_received() >= {"tip_received", "tip_sent", "tip_announced"}


def test_a_declined_card_is_told_to_the_sender_alone_and_a_new_card_still_pays(
    tips: Tips,
    crowd: Crowd,
    client: Client,
    emulator: str,
    inbox: WebhookInbox,
    sdk: stripe.StripeClient,
) -> None:
    creator = send_money.creator_with_send_money(crowd, client, emulator, inbox)
    sender = send_money.beta_sender(crowd, client)
    listener = crowd.person("listener")
    room_id = creator.ok("create_room", title="Jazz at night", kind="open")["room_id"]
    listener.ok("join_room", room_id=room_id)

    answer = tips.send(sender, creator, 700)
    tip_id = answer["tip"]["tip_id"]
    with pytest.raises(stripe.CardError) as declined:
        send_money.confirm_with_card(sdk, answer, DECLINED_CARD)
    assert declined.value.code == "card_declined"
    inbox.wait_for("payment_intent.payment_failed")
    assert tips.money() == [], "the decline answered to the app tells nobody on the socket"
    settle(client, inbox, "payment_intent.payment_failed")

    [failed] = sender.events("tip_failed")
    assert (failed["tip_id"], failed["code"]) == (tip_id, "card_declined")
    assert failed["message"]
    assert tips.money() == [failed], "the sender alone"
    assert status(client, sender, tip_id) == "failed"

    # Not final: confirmed again with another card, the same tip goes through.
    send_money.confirm_with_card(sdk, answer, GOOD_CARD)
    settle(client, inbox, "payment_intent.succeeded")
    assert [m["tip_id"] for m in sender.events("tip_sent")] == [tip_id]
    assert [m["tip_id"] for m in creator.events("tip_received")] == [tip_id]
    assert [m["room_id"] for m in listener.events("tip_announced")] == [room_id]
    assert status(client, sender, tip_id) == "succeeded"

    assert tips.check_everything_received() >= {"tip_failed", "tip_sent", "tip_announced"}


def test_a_creator_in_the_audience_is_told_but_the_room_is_not(
    tips: Tips,
    crowd: Crowd,
    client: Client,
    emulator: str,
    inbox: WebhookInbox,
    sdk: stripe.StripeClient,
) -> None:
    creator = send_money.creator_with_send_money(crowd, client, emulator, inbox)
    sender = send_money.beta_sender(crowd, client)
    host = crowd.person("host")
    room_id = host.ok("create_room", title="Open mic", kind="open")["room_id"]
    creator.ok("join_room", room_id=room_id)  # a listener

    answer = tips.send(sender, creator, 300)
    send_money.confirm_with_card(sdk, answer, GOOD_CARD)
    settle(client, inbox, "payment_intent.succeeded")
    assert [m["amount_cents"] for m in creator.events("tip_received")] == [300]
    assert [m["amount_cents"] for m in sender.events("tip_sent")] == [300]
    assert not [m for m in tips.money() if m["type"] == "tip_announced"]
    assert host.events("tip_announced") == []

    assert tips.check_everything_received() >= {"tip_received", "tip_sent"}
