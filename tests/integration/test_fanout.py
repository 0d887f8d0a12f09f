"""A big room's events go out through the fan-out queue and Lambda: the actor, the moderators
and the people an event is about are posted first, inline; everyone else in queued chunks that
the `fanout` function posts. Counted (posts in order, SendMessageBatch requests), never timed.
The queue is moto's real SQS, named as the template names it, so the IAM replay checks both the
acting function's SendMessage and the fan-out function's calls."""

from __future__ import annotations

import math
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import botocore.client
import pytest
from chalice.test import Client

from chalicelib.adapters.timers import Timers
from chalicelib.services.fanout import Fanout, group_of
from tests.support.crowd import Crowd, Person, speaker_in
from tests.support.events import sqs_event
from tests.support.fakes import RecordingConnections

QUEUE = "salon-dev-fanout.fifo"  # the dev template's FanoutQueue
INLINE_MAX = 4
CHUNK = 3
GROUPS = 4
LISTENERS = 16


def chunks_for(people: list[Person]) -> int:
    """The chunks a post to these people's sockets is cut into: per message group, CHUNK."""
    sizes = Counter(group_of(p.connection_id, GROUPS) for p in people)
    return sum(math.ceil(n / CHUNK) for n in sizes.values())


class Fanned:
    """The fan-out queue on moto, and what the `fanout` Lambda does with it."""

    def __init__(self, client: Client, url: str) -> None:
        self.client = client
        self.url = url
        self.sqs = boto3.client("sqs", region_name="us-east-1")
        self.requests: list[str] = []
        # The message groups each socket's chunks came in.
        self.groups: dict[str, set[str]] = defaultdict(set)
        self.failed_batches: list[tuple[dict[str, Any], str]] = []

    def receive(self) -> list[tuple[dict[str, Any], str]]:
        import json

        chunks = []
        while batch := self.sqs.receive_message(
            QueueUrl=self.url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
        ).get("Messages", []):
            for message in batch:
                body, group = json.loads(message["Body"]), message["Attributes"]["MessageGroupId"]
                chunks.append((body, group))
                for connection_id in body["connection_ids"]:
                    self.groups[connection_id].add(group)
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
        return chunks

    def run(self, chunks: list[tuple[dict[str, Any], str]]) -> list[tuple[dict[str, Any], str]]:
        """Through the fan-out function, two chunks a batch as its event source delivers: the
        chunks its partial batch response reports failed (SQS would hand them back)."""
        failed = []
        for start in range(0, len(chunks), 2):
            batch = chunks[start : start + 2]
            event = sqs_event([b for b, _ in batch], QUEUE, groups=[g for _, g in batch])
            try:
                answer = self.client.lambda_.invoke("fanout", event).payload or {}
            except Exception:  # every record failed: the function errs, the batch comes back
                failed += batch
                continue
            ids = {f["itemIdentifier"] for f in answer.get("batchItemFailures", [])}
            failed += [
                c for c, r in zip(batch, event["Records"], strict=True) if r["messageId"] in ids
            ]
        return failed

    def deliver(self) -> int:
        chunks = self.receive()
        self.failed_batches = self.run(chunks)
        return len(chunks)


@pytest.fixture
def fanned(
    svc: Any, client: Client, sockets: RecordingConnections, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Fanned]:
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName=QUEUE, Attributes={"FifoQueue": "true"})["QueueUrl"]
    svc.__dict__["fanout"] = Fanout(
        poster=sockets,
        connections=svc.connections,
        queue=Timers(url, "us-east-1", setting="SALON_FANOUT_QUEUE_URL"),
        new_id=lambda: uuid.uuid4().hex,
        inline_max=INLINE_MAX,
        chunk_size=CHUNK,
        groups=GROUPS,
    )
    fanned = Fanned(client, url)
    original = botocore.client.BaseClient._make_api_call

    def counted(api: Any, operation: str, params: dict[str, Any]) -> Any:
        if api.meta.service_model.service_name == "sqs" and operation.startswith("SendMessage"):
            fanned.requests.append(operation)
        return original(api, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", counted)
    yield fanned


@pytest.fixture
def big_room(fanned: Fanned, client: Client, svc: Any) -> tuple[Person, Person, list[Person]]:
    crowd = Crowd(client, svc, svc.poster)
    host = crowd.person("host")
    room_id = str(host.ok("create_room", title="Big", kind="open")["room_id"])
    speaker = speaker_in(crowd, room_id, host, "speaker")
    speaker.ok("unmute")
    listeners = [crowd.person(f"listener{i}") for i in range(LISTENERS)]
    for listener in listeners:
        listener.ok("join_room", room_id=room_id)
    fanned.deliver()
    fanned.requests.clear()
    return host, speaker, listeners


def test_a_big_rooms_event_reaches_everyone_through_the_queue_actor_and_moderators_first(
    big_room: tuple[Person, Person, list[Person]],
    fanned: Fanned,
    sockets: RecordingConnections,
) -> None:
    host, speaker, listeners = big_room
    sockets.order.clear()

    host.ok("mute", user_id=speaker.user_id)

    # Before any fan-out Lambda ran, the host (who acted, and moderates) and the speaker (whom
    # it is about) have it; no listener does.
    assert [t for c, t in sockets.order if t == "speaker_muted"] == ["speaker_muted"] * 2
    assert {c for c, _ in sockets.order} == {host.connection_id, speaker.connection_id}
    assert all(not listener.events("speaker_muted") for listener in listeners)

    chunks = fanned.deliver()
    assert chunks == chunks_for(listeners)
    for person in (host, speaker, *listeners):
        assert len(person.events("speaker_muted")) == 1, person.name
    muted = [c for c, t in sockets.order if t == "speaker_muted"]
    assert muted[:2] == [host.connection_id, speaker.connection_id]
    assert sorted(muted[2:]) == sorted(p.connection_id for p in listeners)


def test_send_message_batch_requests_are_one_per_ten_chunks(
    big_room: tuple[Person, Person, list[Person]], fanned: Fanned
) -> None:
    host, speaker, listeners = big_room

    host.ok("mute", user_id=speaker.user_id)

    chunks = chunks_for(listeners)  # 16 listeners in 4 groups, 3 a chunk: 7 to 9 chunks
    assert fanned.requests == ["SendMessageBatch"] * math.ceil(chunks / 10)
    assert fanned.deliver() == chunks


def test_an_actions_events_reach_each_listener_in_order_with_the_rooms_version(
    big_room: tuple[Person, Person, list[Person]], fanned: Fanned
) -> None:
    host, speaker, listeners = big_room
    host.ok("mute", user_id=speaker.user_id)
    speaker.ok("unmute")
    fanned.deliver()

    for listener in listeners:
        seen = [
            (m["type"], m["version"])
            for m in listener.inbox()
            if m["type"] in ("speaker_unmuted", "speaker_muted")
        ]
        assert [t for t, _ in seen] == ["speaker_muted", "speaker_unmuted"]
        assert seen[0][1] < seen[1][1]


def test_each_socket_is_posted_through_one_message_group_whatever_the_action(
    big_room: tuple[Person, Person, list[Person]], fanned: Fanned
) -> None:
    """FIFO order holds within a message group: a socket that always falls in the same group
    hears a room's actions in the order they were sent, whichever Lambda posts them."""
    host, speaker, listeners = big_room
    fanned.groups.clear()
    host.ok("mute", user_id=speaker.user_id)
    speaker.ok("unmute")
    host.ok("set_hands_allowed", allowed=False)
    fanned.deliver()

    assert {p.connection_id for p in listeners} <= set(fanned.groups)
    assert all(len(groups) == 1 for groups in fanned.groups.values())
    assert len({g for groups in fanned.groups.values() for g in groups}) > 1  # in parallel


def test_gone_connections_are_removed_by_the_fanout_function(
    big_room: tuple[Person, Person, list[Person]],
    fanned: Fanned,
    sockets: RecordingConnections,
    svc: Any,
) -> None:
    host, speaker, listeners = big_room
    gone = [listeners[0].connection_id, listeners[-1].connection_id]
    sockets.gone.update(gone)

    host.ok("mute", user_id=speaker.user_id)
    fanned.deliver()

    now = datetime.now(UTC)
    assert [svc.connections.get(c, now) for c in gone] == [None, None]
    assert all(svc.connections.get(p.connection_id, now) for p in listeners[1:-1])
    assert all(p.events("speaker_muted") for p in listeners[1:-1])


def test_a_retried_batch_posts_its_chunk_again_with_the_same_version(
    big_room: tuple[Person, Person, list[Person]], fanned: Fanned
) -> None:
    """SQS delivers at least once and retries a failed batch whole: a listener in it gets the
    same event twice, with the same room version, and the client drops the second copy (it is
    not newer than what it holds: docs/asyncapi.yaml, "Ordering"). Nobody else is posted again."""
    host, speaker, listeners = big_room
    host.ok("mute", user_id=speaker.user_id)
    bodies = fanned.receive()
    fanned.run(bodies)
    fanned.run(bodies[:1])  # the first chunk's batch comes back

    again = set(bodies[0][0]["connection_ids"])
    for listener in listeners:
        copies = listener.events("speaker_muted")
        assert len(copies) == (2 if listener.connection_id in again else 1)
        assert len({m["version"] for m in copies}) == 1
    assert len(host.events("speaker_muted")) == 1


def test_a_small_room_stays_inline(fanned: Fanned, client: Client, svc: Any) -> None:
    crowd = Crowd(client, svc, svc.poster)
    host = crowd.person("host")
    room_id = str(host.ok("create_room", title="Small", kind="open")["room_id"])
    speaker = speaker_in(crowd, room_id, host, "speaker")
    speaker.ok("unmute")
    listener = crowd.person("listener")
    listener.ok("join_room", room_id=room_id)
    fanned.requests.clear()

    host.ok("mute", user_id=speaker.user_id)

    assert fanned.requests == []
    assert fanned.receive() == []
    assert len(listener.events("speaker_muted")) == 1


def test_posts_throttled_inline_or_in_the_fanout_function_are_queued_again_and_arrive(
    big_room: tuple[Person, Person, list[Person]],
    fanned: Fanned,
    sockets: RecordingConnections,
) -> None:
    """At the account's @connections quota API Gateway throttles (429, after the client's own
    retries): the acting Lambda and the fan-out Lambda both hand those posts back to the queue,
    in each socket's own message group, and every listener still hears the event once."""
    host, speaker, listeners = big_room
    sockets.throttled[host.connection_id] = 1  # inline, in the acting Lambda
    sockets.throttled[listeners[0].connection_id] = 1  # in the fan-out function
    sockets.throttled[listeners[1].connection_id] = 2  # there, and on its first retry

    host.ok("mute", user_id=speaker.user_id)
    assert host.events("speaker_muted") == []
    rounds = 0
    while fanned.deliver():
        rounds += 1

    assert rounds == 3  # the chunks (and the host's retry), the first retries, the second
    for person in (host, speaker, *listeners):
        assert len(person.events("speaker_muted")) == 1, person.name
    assert all(len(groups) == 1 for groups in fanned.groups.values())
    assert +sockets.throttled == Counter()


def test_retries_the_queue_refuses_fail_the_chunk_in_the_fanout_function_and_not_the_action(
    big_room: tuple[Person, Person, list[Person]],
    fanned: Fanned,
    sockets: RecordingConnections,
    svc: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The queue fails the moment a throttled post is handed back. Inline, the acting Lambda
    logs it and goes on, so the room still hears the action; in the fan-out Lambda, the chunk
    is reported failed (partial batch response) and SQS hands it back whole: its sockets may
    hear it twice, none never. The other group's chunk in the same batch is done."""
    host, speaker, listeners = big_room
    queue = svc.fanout.queue
    refusals = {"left": 1}

    def in_order(entries: Any) -> None:
        if any(body.get("attempt") for _, _, body in entries) and refusals["left"]:
            refusals["left"] -= 1
            raise RuntimeError("SQS is failing")
        queue.__class__.in_order(queue, entries)

    monkeypatch.setattr(queue, "in_order", in_order)
    sockets.throttled[host.connection_id] = 1  # inline: its retry is refused and logged

    host.ok("mute", user_id=speaker.user_id)
    assert fanned.deliver()
    assert fanned.failed_batches == []  # the chunks went out; only the host's post is lost
    assert host.events("speaker_muted") == []
    assert all(len(p.events("speaker_muted")) == 1 for p in (speaker, *listeners))

    refusals["left"] = 1
    throttled = listeners[0]
    sockets.throttled[throttled.connection_id] = 1  # in the fan-out: its retry is refused
    speaker.ok("unmute")
    fanned.deliver()
    failed = fanned.failed_batches
    assert any(throttled.connection_id in body["connection_ids"] for body, _ in failed)
    fanned.run(failed)  # SQS delivers them again, whole
    handed_back = {c for body, _ in failed for c in body["connection_ids"]}
    assert len(throttled.events("speaker_unmuted")) == 1
    for person in listeners:
        heard = len(person.events("speaker_unmuted"))
        # Twice at most, for the others in a chunk that came back; once for everyone else.
        assert 1 <= heard <= (2 if person.connection_id in handed_back else 1), person.name
    assert [r.message for r in caplog.records if r.name == "salon.fanout"].count(
        "fan-out retries could not be queued"
    ) == 1
