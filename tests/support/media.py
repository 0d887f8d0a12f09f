"""The media plane in integration tests: a publish offer Janus accepts without a browser, and
what Janus itself says about a room."""

from __future__ import annotations

from typing import Any

from tests.support import contract
from tests.support.crowd import Crowd, Person

# A send-only audio offer Janus accepts (audio, opus, ICE credentials, a sha-256 fingerprint,
# one host candidate on 127.0.0.1). No peer is behind it: its DTLS never comes up, so Janus
# answers and lists the publisher but never reports it live nor offers it to subscribers.
OFFER = "\r\n".join(
    [
        "v=0",
        "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0",
        "a=msid-semantic: WMS salon",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "c=IN IP4 127.0.0.1",
        "a=rtcp:9 IN IP4 0.0.0.0",
        "a=candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host",
        "a=ice-ufrag:sAlN",
        "a=ice-pwd:0123456789abcdefghijklmn",
        "a=fingerprint:sha-256 " + ":".join(["AB"] * 32),
        "a=setup:actpass",
        "a=mid:0",
        "a=sendonly",
        "a=msid:salon audio0",
        "a=rtcp-mux",
        "a=rtpmap:111 opus/48000/2",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        "a=ssrc:1001 cname:salon",
        "",
    ]
)


def checked(person: Person, action: str, **fields: Any) -> dict[str, Any]:
    """Send an action the contract accepts; its reply must be one the contract documents."""
    contract.validate_client_message({"action": action, **fields})
    reply = person.send(action, **fields)
    contract.validate_reply(action, reply)
    return reply


def open_room(crowd: Crowd) -> tuple[Person, str]:
    host = crowd.person("host")
    return host, str(checked(host, "create_room", title="Jazz", kind="open")["room_id"])


def ref_of(svc: Any, room_id: str) -> str:
    return str(svc.rooms.repo.load(room_id, []).room.media_ref)


def in_janus_room(svc: Any, ref: str) -> set[str]:
    """Who Janus lists in the VideoRoom, asked through its admin API."""
    reply = svc.media._plugin({"request": "listparticipants", "room": ref})
    return {str(p["id"]) for p in reply.get("participants", [])}
