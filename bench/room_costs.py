"""What one room action costs in WebSocket posts and DynamoDB requests, by room size.

Each action goes through the real WebSocket edge (`Realtime.receive`), the rooms service and
the DynamoDB and @connections adapters, against moto in-process, with a real Janus as the
media plane (`local/janus.py`). Requests are counted where they leave the process: every
botocore call for DynamoDB (PynamoDB's and the cross-table BatchGetItem alike), botocore's
`before-parameter-build`/`before-call` events for @connections posts and SQS. Counts do not
depend on the machine.

    .venv/bin/python -m bench.room_costs [--sizes 10,1000,8000]
"""

from __future__ import annotations

import argparse
import json
import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bench.env import QUEUES, bench_env

os.environ.update(
    bench_env(
        SALON_WS_MANAGEMENT_URL="https://benchapi.execute-api.us-east-1.amazonaws.com/ws",
        SALON_TIMERS_QUEUE_URL=f"{QUEUES}/bench-timers",
        SALON_NOTIFICATIONS_QUEUE_URL=f"{QUEUES}/bench-notifications",
        SALON_FANOUT_QUEUE_URL=f"{QUEUES}/bench-fanout.fifo",
        SALON_ROOM_CAPACITY="10000",
    )
)
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)

import boto3
import botocore.client
from moto import mock_aws

from chalicelib.adapters.dynamo.models import RoomMemberModel, RoomModel
from chalicelib.adapters.media import Limits
from chalicelib.adapters.media.janus import JanusVideoRoom
from chalicelib.config import settings
from chalicelib.services.container import Services
from local.janus import JanusProcess
from local.tables import create_tables
from tests.support.media import OFFER

ACTIONS = (
    "ping",
    "join_room",
    "raise_hand",
    "invite_to_speak",
    "accept_speaker_invite",
    "media_publish",
    "media_subscribe",
    "media_unsubscribe",
    "flush_count (timer)",
)


@dataclass(frozen=True)
class Cost:
    """What one action sent out: DynamoDB requests and capacity units, posts, SQS sends; and,
    for a big room, the chunks it handed to the fan-out queue and the posts the `fanout`
    function made from them (`posts` counts every post, wherever it was made)."""

    dynamodb: int
    posts: int
    queue: int
    read_units: float
    write_units: float
    chunks: int = 0
    fanout_posts: int = 0


def _kb(item: Any) -> float:
    return len(json.dumps(item)) / 1024


def capacity_units(
    operation: str, params: dict[str, Any], result: dict[str, Any]
) -> tuple[float, float]:
    """(read, write) capacity units DynamoDB would charge, from the request and its answer:
    4 KB per read unit (half for an eventually consistent read), 1 KB per write unit, twice
    that inside a transaction (DynamoDB's pricing rules; item sizes as JSON, near enough)."""

    def read(items: list[Any], consistent: bool) -> float:
        size = sum(_kb(i) for i in items)
        return max(1, -(-size // 4)) * (1 if consistent else 0.5) if items else 0.0

    if operation == "GetItem":
        return read([result.get("Item", {})], bool(params.get("ConsistentRead"))), 0.0
    if operation == "BatchGetItem":
        units = 0.0
        for table, items in result.get("Responses", {}).items():
            consistent = bool(params["RequestItems"][table].get("ConsistentRead"))
            units += sum(read([i], consistent) for i in items)
        return units, 0.0
    if operation == "Query":
        return read(result.get("Items", []), bool(params.get("ConsistentRead"))), 0.0
    if operation in ("PutItem", "UpdateItem", "DeleteItem"):
        return 0.0, max(1.0, -(-_kb(params.get("Item", params.get("Key", {}))) // 1))
    if operation == "TransactWriteItems":
        writes = [e for e in params["TransactItems"] if "ConditionCheck" not in e]
        checks = len(params["TransactItems"]) - len(writes)
        size = [max(1.0, -(-_kb(next(iter(e.values())).get("Item", {})) // 1)) for e in writes]
        return 2.0 * checks, 2.0 * sum(size)
    if operation == "BatchWriteItem":
        return 0.0, float(sum(len(v) for v in params["RequestItems"].values()))
    return 0.0, 0.0


class Meter:
    def __init__(self) -> None:
        self.dynamodb: Counter[str] = Counter()
        self.read_units = 0.0
        self.write_units = 0.0
        self.posts = 0
        self.queue = 0
        self.chunks = 0
        self.fanout_posts = 0
        self.in_fanout = False  # the posts being made are the fan-out function's
        self.sent: dict[str, Any] = {}

    def cost(self) -> Cost:
        return Cost(
            sum(self.dynamodb.values()),
            self.posts,
            self.queue,
            self.read_units,
            self.write_units,
            self.chunks,
            self.fanout_posts,
        )

    def record_post(self, params: dict[str, Any], **_: Any) -> None:
        self.posts += 1
        self.fanout_posts += self.in_fanout
        self.sent[params["ConnectionId"]] = json.loads(params["Data"])

    def record_chunks(self, params: dict[str, Any], **_: Any) -> None:
        self.chunks += len(params["Entries"])

    def reset(self) -> None:
        self.dynamodb.clear()
        self.read_units = self.write_units = 0.0
        self.sent.clear()
        self.posts = self.queue = self.chunks = self.fanout_posts = 0


@contextmanager
def metered(svc: Services) -> Iterator[Meter]:
    meter = Meter()
    original = botocore.client.BaseClient._make_api_call

    def counting(client: Any, operation: str, kwargs: dict[str, Any]) -> Any:
        result = original(client, operation, kwargs)
        if client.meta.service_model.service_name == "dynamodb":
            meter.dynamodb[operation] += 1
            read, write = capacity_units(operation, kwargs, result)
            meter.read_units += read
            meter.write_units += write
        return result

    botocore.client.BaseClient._make_api_call = counting  # type: ignore[method-assign]
    posts = svc.poster._get_client()
    posts.meta.events.register(
        "before-parameter-build.apigatewaymanagementapi.PostToConnection", meter.record_post
    )
    for queue in (svc.timers, svc.notifications_queue):
        queue._sqs().meta.events.register(
            "before-call.sqs.SendMessage", lambda **_: setattr(meter, "queue", meter.queue + 1)
        )
    svc.fanout_queue._sqs().meta.events.register(
        "before-parameter-build.sqs.SendMessageBatch", meter.record_chunks
    )
    try:
        yield meter
    finally:
        botocore.client.BaseClient._make_api_call = original  # type: ignore[method-assign]


def member(svc: Services, name: str) -> str:
    phone_digits = 1000 + abs(hash(name)) % 8000
    profile = svc.identity.repo.create_founder(
        name, f"+1212555{phone_digits:04d}", name, name, 0, datetime.now(UTC)
    )
    return profile.user_id


def seed_room(svc: Services, listeners: int) -> tuple[str, dict[str, str]]:
    """A room with a host (moderator), one speaker and `listeners` listeners, written directly."""
    people = {}
    for name in ("host", "speaker", "newcomer", "listener_a"):
        people[name] = member(svc, name)
        svc.connections.add(f"{name}=", people[name], datetime.now(UTC))
    host = svc.connections.get("host=", datetime.now(UTC))
    assert host is not None
    room_id = svc.rooms.create(host, "Benchmark room", "open")["room_id"]
    speaker = svc.connections.get("speaker=", datetime.now(UTC))
    assert speaker is not None
    svc.rooms.join(speaker, room_id)
    svc.realtime.receive(
        "host=", json.dumps({"action": "invite_to_speak", "user_id": people["speaker"]})
    )
    svc.realtime.receive("speaker=", json.dumps({"action": "accept_speaker_invite"}))
    svc.realtime.receive("speaker=", json.dumps({"action": "unmute"}))
    listener_a = svc.connections.get("listener_a=", datetime.now(UTC))
    assert listener_a is not None
    svc.rooms.join(listener_a, room_id)
    now = datetime.now(UTC)
    with RoomMemberModel.batch_write() as batch:
        for i in range(listeners - 1):
            uid = f"seeded{i:05d}"
            batch.save(
                RoomMemberModel(
                    room_id,
                    uid,
                    role="listener",
                    muted=True,
                    joined_at=now,
                    connected=True,
                    connection_id=f"seeded{i:05d}=",
                    revision=1,
                    audience_key=f"{now.isoformat()}#{uid}",
                )
            )
    RoomModel(room_id).update(actions=[RoomModel.listener_count.add(listeners - 1)])
    return room_id, people


def measure(size: int, janus: JanusProcess) -> dict[str, Cost]:
    results: dict[str, Cost] = {}
    with mock_aws():
        create_tables()
        sqs = boto3.client("sqs")
        for queue in ("bench-timers", "bench-notifications"):
            sqs.create_queue(QueueName=queue)
        fanout_url = sqs.create_queue(
            QueueName="bench-fanout.fifo", Attributes={"FifoQueue": "true"}
        )["QueueUrl"]
        boto3.client("apigatewaymanagementapi", endpoint_url=settings().management_url)
        svc = Services(settings())
        config = janus.config
        svc.__dict__["media"] = JanusVideoRoom(
            janus.url,
            janus.admin_url,
            api_secret=lambda: config.api_secret,
            admin_secret=lambda: config.admin_secret,
            limits=Limits(max_publishers=12, max_listeners=size + 10),
        )
        room_id, people = seed_room(svc, size)
        with metered(svc) as meter:

            def run(
                name: str, connection_id: str, payload: dict[str, Any], refusal_ok: bool = False
            ) -> None:
                meter.reset()
                svc.realtime.receive(connection_id, json.dumps(payload))
                reply = meter.sent.get(connection_id, {})
                fan_out(svc, sqs, fanout_url, meter)
                # A refused action would measure nothing (unless refused by Janus, after all
                # of Salon's checks).
                if reply.get("type") == "error" and not refusal_ok:
                    raise RuntimeError(f"{name} was refused: {reply}")
                results[name] = meter.cost()

            run("ping", "listener_a=", {"action": "ping"})
            run("join_room", "newcomer=", {"action": "join_room", "room_id": room_id})
            run("raise_hand", "listener_a=", {"action": "raise_hand"})
            run(
                "invite_to_speak",
                "host=",
                {"action": "invite_to_speak", "user_id": people["listener_a"]},
            )
            run("accept_speaker_invite", "listener_a=", {"action": "accept_speaker_invite"})
            run("media_publish", "speaker=", {"action": "media_publish", "sdp": OFFER})
            # Janus offers only a live publication (whose DTLS came up) to subscribers; no
            # peer is behind OFFER, so the subscription is counted up to Janus's refusal.
            run(
                "media_subscribe",
                "listener_a=",
                {"action": "media_subscribe", "user_id": people["speaker"]},
                refusal_ok=True,
            )
            run(
                "media_unsubscribe",
                "listener_a=",
                {"action": "media_unsubscribe", "handle": "12345"},
            )
            meter.reset()
            svc.rooms.on_timer({"kind": "flush_count", "room_id": room_id})
            fan_out(svc, sqs, fanout_url, meter)
            results["flush_count (timer)"] = meter.cost()
    return results


def fan_out(svc: Services, sqs: Any, url: str, meter: Meter) -> None:
    """What the `fanout` function does with the chunks an action queued, its posts counted
    apart (its queue's own requests are priced from the chunk count)."""
    meter.in_fanout = True
    try:
        while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            for message in batch:
                svc.fanout.on_message(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    finally:
        meter.in_fanout = False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10,1000,8000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with JanusProcess() as janus:
        table = {size: measure(size, janus) for size in sizes}
    header = "action".ljust(24) + "".join(f"{f'{s:,} listeners':>26}" for s in sizes)
    print("DynamoDB requests / @connections posts (of them by the fanout function) / SQS sends")
    print(header)
    for action in ACTIONS:
        row = action.ljust(24)
        for size in sizes:
            c = table[size][action]
            row += f"{f'{c.dynamodb} / {c.posts} ({c.fanout_posts}) / {c.queue}':>26}"
        print(row)


if __name__ == "__main__":
    main()
