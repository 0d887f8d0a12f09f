"""Push fan-out: a member with N followers (default 10,000) starts a room; every follower's
device gets one push.

Everything below the edge is the real code: `Rooms` would call `Notifier.followers_talking`,
which queues one message; the notifications worker (`Notifications.on_message`, what the
`notifications` Lambda runs for each SQS record) walks the followers a page per message, queues
each follower's collapsed push, and publishes it to SNS. DynamoDB and SNS are moto in-process.
The queue is read in batches of 10, as Lambda's event source would, by one worker (Lambda would
run several in parallel: the wall time here is one worker's). moto's SQS recomputes the queue's
attributes over every message on every call, which makes a queue of 10,000 messages quadratic;
by default the bench replaces it with an in-process queue behind the same adapter (`Timers`)
and counts the requests SQS would get: one per `after`, one per ten for `many`, one receive and
one delete per batch of ten (`--moto-sqs` keeps moto's).
With `--actors K`, K followed members start rooms within the collapse window: each
follower must still get exactly one push ("K people you follow are talking").

AWS requests are counted where they leave the process (botocore's `_make_api_call`), only
during the fan-out, not the seeding. At the end each follower's SNS endpoint must hold exactly
one message.

    .venv/bin/python -m bench.push_fanout                       # 10,000 followers, 1 actor
    .venv/bin/python -m bench.push_fanout --actors 3            # a burst of three
    .venv/bin/python -m bench.push_fanout --followers 1000 --page 100
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
import uuid
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from bench.env import QUEUES, bench_env

os.environ.update(
    bench_env(
        SALON_NOTIFICATIONS_QUEUE_URL=f"{QUEUES}/bench-notifications",
    )
)
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)

import boto3
from botocore.client import BaseClient
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sns.models import sns_backends

from chalicelib.adapters.dynamo.identity import FOLLOWS
from chalicelib.adapters.dynamo.models import PushDeviceModel, RelationModel, UserModel
from chalicelib.adapters.timers import BATCH, Timers
from chalicelib.domain.notifications import PushKind
from chalicelib.services.container import Services
from chalicelib.services.container import settings as env_settings
from chalicelib.services.notifications import device_id
from local.outbox import create_push_applications
from local.tables import create_tables

QUEUE_NAME = "bench-notifications"
APNS = "arn:aws:sns:us-east-1:123456789012:app/APNS/salon-bench-apns"


@contextmanager
def counted() -> Iterator[Counter[str]]:
    calls: Counter[str] = Counter()
    original = BaseClient._make_api_call

    def counting(client: Any, operation: str, params: dict[str, Any]) -> Any:
        calls[f"{client.meta.service_model.service_name}:{operation}"] += 1
        return original(client, operation, params)

    BaseClient._make_api_call = counting  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        BaseClient._make_api_call = original  # type: ignore[method-assign]


def seed(services: Services, followers: int, actors: int) -> tuple[list[str], list[str]]:
    now = datetime.now(UTC)
    actor_ids = [f"actor{i}" for i in range(actors)]
    follower_ids = [f"fan{i:06d}" for i in range(followers)]
    with UserModel.batch_write() as users:
        for uid in actor_ids:
            users.save(UserModel(uid, phone="+1", username=uid, name=uid.title(), created_at=now))
    sns = boto3.client("sns", region_name="us-east-1")
    with RelationModel.batch_write() as edges, PushDeviceModel.batch_write() as devices:
        for uid in follower_ids:
            for actor in actor_ids:
                edges.save(
                    RelationModel(
                        uid,
                        FOLLOWS + actor,
                        other_id=actor,
                        inverse_edge=FOLLOWS + uid,
                        created_at=now,
                    )
                )
            token = f"{uid}-token-0123456789abcdef"
            arn = sns.create_platform_endpoint(PlatformApplicationArn=APNS, Token=token)[
                "EndpointArn"
            ]
            devices.save(
                PushDeviceModel(
                    uid, device_id(token), platform="apns", endpoint_arn=arn, registered_at=now
                )
            )
    return actor_ids, follower_ids


class InProcessQueue(Timers):
    """The notifications queue without moto's SQS: what is sent, in order, counted as the
    requests SQS would get."""

    def __init__(self, calls: Counter[str]) -> None:
        super().__init__("in-process", "us-east-1")
        self.messages: deque[dict[str, Any]] = deque()
        self.calls = calls

    def after(self, delay_s: int, message: dict[str, Any]) -> None:
        self.calls["sqs:SendMessage"] += 1
        self.messages.append(json.loads(json.dumps(message)))

    def many(self, delay_s: int, messages: list[dict[str, Any]]) -> None:
        self.calls["sqs:SendMessageBatch"] += -(-len(messages) // BATCH)
        self.messages.extend(json.loads(json.dumps(m)) for m in messages)

    def drain(self, services: Services) -> int:
        handled = 0
        while self.messages:
            self.calls["sqs:ReceiveMessage"] += 1
            batch = [self.messages.popleft() for _ in range(min(BATCH, len(self.messages)))]
            for message in batch:
                services.notifications.on_message(message, uuid.uuid4().hex)
                handled += 1
            self.calls["sqs:DeleteMessageBatch"] += 1
        return handled


def drain(services: Services, queue_url: str) -> int:
    """The notifications Lambda's event source, one worker: batches of 10 until empty."""
    sqs = boto3.client("sqs", region_name="us-east-1")
    handled = 0
    while True:
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            return handled
        for message in batch:
            services.notifications.on_message(json.loads(message["Body"]), message["MessageId"])
            handled += 1
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)
            ],
        )


def run(followers: int, actors: int, page: int, moto_sqs: bool = False) -> dict[str, Any]:
    with mock_aws():
        create_tables()
        create_push_applications([APNS])
        queue_url = boto3.client("sqs", region_name="us-east-1").create_queue(QueueName=QUEUE_NAME)[
            "QueueUrl"
        ]
        services = Services(
            dataclasses.replace(
                env_settings(),
                push_apns_application_arn=APNS,
                push_fanout_page=page,
                # The bench does not wait out the window: the bursts are read at once.
                push_collapse_s=0,
                push_cap_per_hour=100,
            )
        )
        started = time.perf_counter()
        actor_ids, _ = seed(services, followers, actors)
        seeded_s = time.perf_counter() - started
        with counted() as calls:
            queue = None if moto_sqs else InProcessQueue(calls)
            if queue is not None:
                services.__dict__["notifications_queue"] = queue
            started = time.perf_counter()
            for actor in actor_ids:  # what each actor's create_room costs: one message
                services.notifier.followers_talking(actor, PushKind.ROOM_STARTED, "r1", "Talk")
            action_calls = sum(calls.values())
            handled = queue.drain(services) if queue else drain(services, queue_url)
            wall_s = time.perf_counter() - started
        backend = sns_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
        counts = Counter(len(e.messages) for e in backend.platform_endpoints.values())
        assert counts == Counter({1: followers}), f"pushes per device: {dict(counts)}"
        sample = json.loads(next(iter(backend.platform_endpoints.values())).messages.popitem()[1])
        title = json.loads(sample["APNS"])["aps"]["alert"]["title"]
        dynamodb = sum(v for k, v in calls.items() if k.startswith("dynamodb:"))
        return {
            "followers": followers,
            "actors": actors,
            "page": page,
            "seed_s": round(seeded_s, 1),
            "action_requests_per_actor": action_calls / actors,
            "messages_handled": handled,
            "wall_s": round(wall_s, 1),
            "per_follower_ms": round(1000 * wall_s / followers, 2),
            "dynamodb_per_follower": round(dynamodb / followers, 2),
            "sqs_requests": sum(v for k, v in calls.items() if k.startswith("sqs:")),
            "sns_publishes": calls["sns:Publish"],
            "push_title": title,
            "calls": dict(sorted(calls.items())),
            "queue": "moto SQS" if moto_sqs else "in-process (SQS requests counted)",
            "load_average": os.getloadavg(),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--followers", type=int, default=10_000)
    parser.add_argument("--actors", type=int, default=1)
    parser.add_argument("--page", type=int, default=250, help="followers per fan-out message")
    parser.add_argument("--moto-sqs", action="store_true", help="moto's SQS queue (slow)")
    args = parser.parse_args()
    print(json.dumps(run(args.followers, args.actors, args.page, args.moto_sqs), indent=2))


if __name__ == "__main__":
    main()
