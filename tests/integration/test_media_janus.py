"""Audio through a real Janus (the `janus` fixture): Salon's permission check before anything
reaches the SFU, rights taken away at the SFU, and the media actions' replies on the wire.

No browser here: a static SDP offer (audio, opus, ICE credentials, a sha-256 fingerprint, one
host candidate on 127.0.0.1) is enough for Janus to answer and list the publisher. Without a
real peer its DTLS never comes up, so Janus never reports the publication as live and never
offers it to subscribers: those paths are driven by tests/browser/test_audio.py.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from chalice.test import Client

from tests.support.crowd import Crowd, Person, speaker_in
from tests.support.fakes import RecordingConnections
from tests.support.media import OFFER, checked, in_janus_room, open_room, ref_of


@pytest.fixture
def crowd(client: Client, svc: Any, sockets: RecordingConnections) -> Crowd:
    return Crowd(client, svc, sockets)


def refused(person: Person, action: str, **fields: Any) -> tuple[str, str | None]:
    reply = checked(person, action, **fields)
    assert reply["type"] == "error", reply
    return reply["code"], reply.get("field")


def test_every_room_has_a_janus_room_and_the_view_says_how_to_reach_it(
    crowd: Crowd, svc: Any
) -> None:
    host, room_id = open_room(crowd)
    snapshot = host.inbox()[-1]
    assert snapshot["media"] == {"kind": "janus", "ice_servers": [], "may_publish": False}
    assert in_janus_room(svc, ref_of(svc, room_id)) == set()  # the room exists, empty
    fan = crowd.person("fan")
    assert checked(fan, "join_room", room_id=room_id)["media"]["may_publish"] is False
    # The room holds what one Janus node serves, not the 8,000 of the setting.
    assert snapshot["capacity"] == min(svc.settings.room_capacity, svc.media.limits.max_listeners)


def test_an_unmuted_speaker_publishes_and_the_sfu_answers(crowd: Crowd, svc: Any) -> None:
    host, room_id = open_room(crowd)
    checked(host, "unmute")
    granted = host.events("media_credentials")[-1]
    assert (granted["room_id"], granted["may_publish"]) == (room_id, True)
    reply = checked(host, "media_publish", sdp=OFFER)
    assert reply["type"] == "media_answer" and reply["sdp"].startswith("v=0")
    assert (reply["room_id"], reply["sdp"]) != (room_id, OFFER)
    ref = ref_of(svc, room_id)
    assert in_janus_room(svc, ref) == {host.user_id}
    # Publishing again (a reload, another tab) replaces the publication: still one.
    assert checked(host, "media_publish", sdp=OFFER)["type"] == "media_answer"
    assert in_janus_room(svc, ref) == {host.user_id}
    # No peer ever completes DTLS here: Janus does not report the publication as live.
    assert not svc.media.is_publishing(ref, host.user_id)
    assert refused(host, "media_live") == ("not_publishing", None)


def test_a_listener_cannot_publish_and_the_sfu_never_sees_them(crowd: Crowd, svc: Any) -> None:
    _, room_id = open_room(crowd)
    fan = crowd.person("fan")
    fan.ok("join_room", room_id=room_id)
    assert refused(fan, "media_publish", sdp=OFFER) == ("not_allowed_to_publish", None)
    assert refused(fan, "media_live") == ("not_allowed_to_publish", None)
    ref = ref_of(svc, room_id)
    assert not svc.media.is_publishing(ref, fan.user_id)
    assert fan.user_id not in in_janus_room(svc, ref)


def test_a_muted_speaker_cannot_publish(crowd: Crowd, svc: Any) -> None:
    host, room_id = open_room(crowd)
    speaker = speaker_in(crowd, room_id, host, "speaker")
    assert refused(speaker, "media_publish", sdp=OFFER) == ("not_allowed_to_publish", None)
    assert refused(host, "media_publish", sdp=OFFER) == ("not_allowed_to_publish", None)
    assert in_janus_room(svc, ref_of(svc, room_id)) == set()


def test_moving_a_publisher_to_the_audience_kicks_them_from_the_sfu(crowd: Crowd, svc: Any) -> None:
    host, room_id = open_room(crowd)
    speaker = speaker_in(crowd, room_id, host, "speaker")
    checked(speaker, "unmute")
    checked(speaker, "media_publish", sdp=OFFER)
    ref = ref_of(svc, room_id)
    assert speaker.user_id in in_janus_room(svc, ref)
    host.ok("move_to_audience", user_id=speaker.user_id)
    assert speaker.user_id not in in_janus_room(svc, ref)
    revoked = speaker.events("media_credentials")[-1]
    assert revoked["may_publish"] is False
    assert refused(speaker, "media_publish", sdp=OFFER) == ("not_allowed_to_publish", None)


def test_a_moderators_mute_kicks_the_publisher_from_the_sfu(crowd: Crowd, svc: Any) -> None:
    host, room_id = open_room(crowd)
    speaker = speaker_in(crowd, room_id, host, "speaker")
    checked(speaker, "unmute")
    checked(speaker, "media_publish", sdp=OFFER)
    ref = ref_of(svc, room_id)
    host.ok("mute", user_id=speaker.user_id)
    assert speaker.user_id not in in_janus_room(svc, ref)
    assert speaker.events("media_credentials")[-1]["may_publish"] is False


def test_ending_the_room_closes_the_janus_room(crowd: Crowd, svc: Any) -> None:
    host, room_id = open_room(crowd)
    checked(host, "unmute")
    checked(host, "media_publish", sdp=OFFER)
    ref = ref_of(svc, room_id)
    host.ok("end_room")
    reply = svc.media._plugin({"request": "exists", "room": ref})
    assert reply["exists"] is False
    assert refused(host, "media_publish", sdp=OFFER) == ("room_ended", None)


def test_subscribing_needs_someone_who_is_sending(crowd: Crowd, svc: Any) -> None:
    host, room_id = open_room(crowd)
    fan = crowd.person("fan")
    fan.ok("join_room", room_id=room_id)
    # A muted moderator, a listener, oneself, a stranger: not sending.
    for user_id in (host.user_id, fan.user_id, "nobody"):
        assert refused(fan, "media_subscribe", user_id=user_id) == ("not_publishing", "user_id")
    checked(host, "unmute")
    assert refused(host, "media_subscribe", user_id=host.user_id) == ("not_publishing", "user_id")
    # Unmuted, but their connection is not up at the SFU: Janus has no feed to offer.
    assert refused(fan, "media_subscribe", user_id=host.user_id) == (
        "media_negotiation_failed",
        None,
    )


def test_answers_and_unsubscribes_need_a_handle_of_theirs(crowd: Crowd) -> None:
    _, room_id = open_room(crowd)
    fan = crowd.person("fan")
    fan.ok("join_room", room_id=room_id)
    for bad in ("0", "01", "12a", "1" * 21, ""):
        assert fan.refused("media_answer", handle=bad, sdp="v=0") == "invalid_request"
        assert fan.refused("media_unsubscribe", handle=bad) == "invalid_request"
    assert fan.refused("media_answer", handle=12, sdp="v=0") == "invalid_request"
    # A well-formed handle this socket never got: nothing to answer, nothing to drop.
    assert refused(fan, "media_answer", handle="4096", sdp="v=0") == (
        "media_negotiation_failed",
        None,
    )
    gone = checked(fan, "media_unsubscribe", handle="4096")
    assert gone == {
        "type": "media_unsubscribed",
        "room_id": room_id,
        "handle": "4096",
        "ref": gone["ref"],
    }


def test_sdp_is_size_limited(crowd: Crowd, svc: Any) -> None:
    host, room_id = open_room(crowd)
    checked(host, "unmute")
    limit = svc.settings.max_signal_bytes
    assert host.refused("media_publish", sdp="x" * (limit + 1)) == "invalid_request"
    assert host.refused("media_publish", sdp="") == "invalid_request"
    assert host.refused("media_publish", sdp={"sdp": OFFER}) == "invalid_request"
    assert host.refused("media_answer", handle="1", sdp="x" * (limit + 1)) == "invalid_request"
    # Exactly at the limit the field check passes; Janus refuses what is not SDP.
    assert host.refused("media_publish", sdp="x" * limit) == "media_negotiation_failed"
    assert in_janus_room(svc, ref_of(svc, room_id)) == set()


def test_the_thirteenth_unmute_is_refused(crowd: Crowd, svc: Any) -> None:
    host, room_id = open_room(crowd)
    speakers = [speaker_in(crowd, room_id, host, f"speaker{i}") for i in range(12)]
    for speaker in speakers[:11]:
        speaker.ok("unmute")
    host.ok("unmute")  # the 12th
    assert refused(speakers[11], "unmute") == ("too_many_publishers", None)
    speakers[0].ok("mute")
    checked(speakers[11], "unmute")
    assert speakers[11].events("speaker_unmuted")


def test_sdp_is_never_logged(crowd: Crowd, svc: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    host, _ = open_room(crowd)
    checked(host, "unmute")
    secret = OFFER.replace("sAlN", "SECRETUFRAG")
    checked(host, "media_publish", sdp=secret)
    host.send("media_publish", sdp="SECRET-NOT-SDP " + secret)
    host.send("media_answer", handle="77", sdp=secret)
    assert "SECRETUFRAG" not in caplog.text
    assert "SECRET-NOT-SDP" not in caplog.text
