"""The local stack runs a big room's posts as AWS does: through the fan-out queue (FIFO, from
the packaged template) and the `fanout` function its event source names, over real sockets.
A stack of its own, where every room counts as big (`SALON_FANOUT_INLINE_MAX=1`)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deploy.wiring import Template
from local.aws_calls import read_sink
from tests.conftest import assert_allowed
from tests.support.http import HttpClient, member_of_their_own
from tests.support.iam_replay import Replay
from tests.support.stack import running_stack
from tests.support.wsclient import WsClient

LISTENERS = 6
_numbers = itertools.count(7000)


@pytest.fixture(scope="module")
def big_room_stack(
    tmp_path_factory: pytest.TempPathFactory, packaged: Template
) -> Iterator[tuple[dict[str, Any], Path]]:
    folder = tmp_path_factory.mktemp("fanout")
    calls = folder / "calls.jsonl"
    env = {"SALON_FANOUT_INLINE_MAX": "1", "SALON_FANOUT_CHUNK_SIZE": "2"}
    with running_stack(
        folder / "stack.log", record_aws_calls=calls, template=packaged.path, extra_env=env
    ) as info:
        yield info, calls


@pytest.fixture
def clients(
    big_room_stack: tuple[dict[str, Any], Path],
) -> Iterator[list[tuple[str, WsClient]]]:
    """(user id, socket) of a host, a speaker-to-be and the listeners."""
    info, _ = big_room_stack
    api = HttpClient(info["rest"])
    opened = []
    for i in range(LISTENERS + 2):
        answer = member_of_their_own(api, f"+1415555{next(_numbers):04d}", f"fan{i}")
        socket = WsClient(info["websocket"], answer["access_token"], f"fan{i}")
        opened.append((str(answer["user"]["user_id"]), socket))
    yield opened
    for _, socket in opened:
        socket.close()


def test_a_big_rooms_event_reaches_every_socket_through_the_fanout_function(
    big_room_stack: tuple[dict[str, Any], Path],
    clients: list[tuple[str, WsClient]],
    iam_replay: Replay,
) -> None:
    _, calls = big_room_stack
    (_, host), (speaker_id, speaker), *listeners = clients
    room_id = host.ok("create_room", title="Fanned out", kind="open")["room_id"]
    for _, socket in (clients[1], *listeners):
        socket.ok("join_room", room_id=room_id)
    host.ok("invite_to_speak", user_id=speaker_id)
    speaker.ok("accept_speaker_invite")
    _, start = read_sink(calls)

    speaker.ok("unmute")

    for _, socket in clients:
        event = socket.event("speaker_unmuted", timeout=20, room_id=room_id)
        assert isinstance(event["version"], int)
    records, _ = read_sink(calls, start)
    queued = {
        r["function"]
        for r in records
        if r["action"] == "sqs:SendMessage" and r["resource"].endswith(":salon-dev-fanout.fifo")
    }
    assert "ws_message" in queued
    posted = {r["function"] for r in records if r["action"] == "execute-api:ManageConnections"}
    assert {"ws_message", "fanout"} <= posted
    assert_allowed(iam_replay, records)
