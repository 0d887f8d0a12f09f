"""What the control plane costs per 1,000 listener-minutes, at us-east-1 list prices.

A one-hour room of one speaker (and its host) and N listeners. What each action sends out is
measured, not assumed: `bench.room_costs` drives every action through the real WebSocket
edge, service and adapters against moto, with a real Janus, in a room of N, and counts its
DynamoDB requests and capacity units, @connections posts and SQS sends. This script prices
an hour of such a room: everyone joins once and subscribes to the speaker, every socket pings
every 240 s (the web client), the audience count goes out once per interval (the interval of
a room of N: chalicelib/domain/rooms.py), and the stage and the hands see the activity below.

The media (Janus or IVS) is not in these figures; only what Salon's backend itself costs.
Lambda's duration is modelled from the counts: 1.5 ms of CPU per post (`bench.post_cpu`
measured 1.46-1.70 ms on this machine: building, signing and sending it, docs/benchmarks.md),
scaled to the function's share of a vCPU, plus a DynamoDB round trip per request. A big room's
posts beyond the inline ones are the `fanout` function's (1,769 MB, a whole vCPU), two queued
chunks an invocation, and its FIFO queue's requests are priced per chunk.

    .venv/bin/python -m bench.cost [--listeners 1000,8000] [--json figures.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from bench.room_costs import Cost, measure
from chalicelib.config import Settings
from chalicelib.domain.rooms import audience_count_interval_s
from local.janus import JanusProcess

# us-east-1 list prices (USD), checked 2026-12 on the AWS pricing pages.
PRICE = {
    "message": 1.00 / 1e6,  # API Gateway WebSocket messages (first billion), per 32 KB
    "connection_minute": 0.25 / 1e6,  # API Gateway WebSocket connection minutes
    "lambda_request": 0.20 / 1e6,
    "lambda_gb_s": 0.0000166667,  # x86
    "read_unit": 0.125 / 1e6,  # DynamoDB on-demand read request units
    "write_unit": 0.625 / 1e6,  # DynamoDB on-demand write request units
    "sqs_request": 0.40 / 1e6,  # standard queue; a timer is a send, a receive and a delete
    "sqs_fifo_request": 0.50 / 1e6,  # the fan-out queue
}
HOUR_MIN = 60
PING_EVERY_S = 240  # web/app.js
WS_MEMORY_MB, TIMERS_MEMORY_MB, FANOUT_MEMORY_MB = 512, 1024, 1769  # .chalice/config.json
VCPU_MB = 1769  # Lambda gives a whole vCPU at 1,769 MB
CPU_MS_PER_POST = 1.5  # one post, all of it (bench.post_cpu; docs/benchmarks.md)
CHUNKS_PER_FANOUT = 2  # the fanout function's batch size (app.py)
SEND_BATCH = 10  # chunks per SendMessageBatch
MS_PER_DYNAMODB_REQUEST = 5.0
BASE_MS = 3.0  # a warm handler's own work per invocation


@dataclass(frozen=True)
class Activity:
    """What happens in the hour besides everyone joining, pinging and listening."""

    stage_changes: int = 60  # mutes, unmutes, invitations accepted: each reaches everyone
    hands: int = 30
    invitations: int = 10


def gb_s(memory_mb: int, requests: int, posts: int, invocations: int = 1) -> float:
    cpu_share = min(1.0, memory_mb / VCPU_MB)
    ms = (
        invocations * BASE_MS
        + requests * MS_PER_DYNAMODB_REQUEST
        + posts * CPU_MS_PER_POST / cpu_share
    )
    return memory_mb / 1024 * ms / 1000


def fanout_invocations(cost: Cost) -> int:
    return -(-cost.chunks // CHUNKS_PER_FANOUT)


def hour_of_room(listeners: int, costs: dict[str, Cost], activity: Activity) -> dict[str, float]:
    """Dollars by line for one hour of the room."""
    people = listeners + 2  # the host and the speaker
    interval = audience_count_interval_s(listeners, Settings.audience_count_interval_s)
    # (action, how many times in the hour, the function's memory)
    happening = [
        ("join_room", listeners, WS_MEMORY_MB),
        ("media_subscribe", 2 * listeners, WS_MEMORY_MB),  # the offer, then the answer
        ("ping", people * HOUR_MIN * 60 // PING_EVERY_S, WS_MEMORY_MB),
        ("flush_count (timer)", 3600 // interval, TIMERS_MEMORY_MB),
        ("accept_speaker_invite", activity.stage_changes, WS_MEMORY_MB),
        ("raise_hand", activity.hands, WS_MEMORY_MB),
        ("invite_to_speak", activity.invitations, WS_MEMORY_MB),
    ]
    lines = dict.fromkeys(("messages", "connection minutes", "Lambda", "DynamoDB", "SQS"), 0.0)
    for action, times, memory in happening:
        cost = costs[action]
        inbound = 0 if action.endswith("(timer)") else 1
        lines["messages"] += times * (inbound + cost.posts) * PRICE["message"]
        inline = cost.posts - cost.fanout_posts
        fanouts = fanout_invocations(cost)
        lines["Lambda"] += times * (
            (1 + fanouts) * PRICE["lambda_request"]
            + gb_s(memory, cost.dynamodb, inline) * PRICE["lambda_gb_s"]
            + gb_s(FANOUT_MEMORY_MB, 0, cost.fanout_posts, fanouts) * PRICE["lambda_gb_s"]
        )
        lines["DynamoDB"] += times * (
            cost.read_units * PRICE["read_unit"] + cost.write_units * PRICE["write_unit"]
        )
        lines["SQS"] += times * 3 * cost.queue * PRICE["sqs_request"]
        # The chunks: sent ten a request; received and deleted a batch (two) at a time.
        fifo_requests = -(-cost.chunks // SEND_BATCH) + 2 * fanouts
        lines["SQS"] += times * fifo_requests * PRICE["sqs_fifo_request"]
        if action.endswith("(timer)"):
            lines["SQS"] += times * 3 * PRICE["sqs_request"]  # the timer's own message
    # $connect and $disconnect: one invocation each per person, a few requests each.
    lines["Lambda"] += 2 * people * PRICE["lambda_request"]
    lines["connection minutes"] = people * HOUR_MIN * PRICE["connection_minute"]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listeners", default="1000,8000")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    sizes = [int(s) for s in args.listeners.split(",")]
    activity = Activity()
    with JanusProcess() as janus:
        measured = {size: measure(size, janus) for size in sizes}
    print(
        f"One-hour room, 1 speaker + host + N listeners; {activity.stage_changes} stage changes, "
        f"{activity.hands} raised hands, {activity.invitations} invitations in the hour; "
        f"pings every {PING_EVERY_S} s"
    )
    print()
    print("measured per action (DynamoDB requests / read units / write units / posts / chunks):")
    for size in sizes:
        print(f"  {size:,} listeners")
        for action, c in measured[size].items():
            print(
                f"    {action:24} {c.dynamodb:3} / {c.read_units:6.1f} / {c.write_units:5.1f} /"
                f" {c.posts:6,} / {c.chunks:3}"
            )
    print()
    header = "line".ljust(22) + "".join(f"{f'{s:,} listeners':>20}" for s in sizes)
    print("dollars per 1,000 listener-minutes")
    print(header)
    priced = {size: hour_of_room(size, measured[size], activity) for size in sizes}
    per_k = {size: size * HOUR_MIN / 1000 for size in sizes}
    for line in next(iter(priced.values())):
        print(line.ljust(22) + "".join(f"{priced[s][line] / per_k[s]:>20.5f}" for s in sizes))
    print(
        "total".ljust(22) + "".join(f"{sum(priced[s].values()) / per_k[s]:>20.5f}" for s in sizes)
    )
    print(
        "count interval (s)".ljust(22)
        + "".join(
            f"{audience_count_interval_s(s, Settings.audience_count_interval_s):>20}" for s in sizes
        )
    )
    if args.json:
        figures = {
            str(size): {
                "measured": {action: dataclasses.asdict(c) for action, c in measured[size].items()},
                "dollars_per_1000_listener_minutes": {
                    line: dollars / per_k[size] for line, dollars in priced[size].items()
                },
            }
            for size in sizes
        }
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
