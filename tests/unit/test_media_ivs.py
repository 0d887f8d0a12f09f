"""The IVS real-time adapter against botocore's Stubber: every call it makes is checked against
the `ivs-realtime` service model, with exactly the parameters and in the order asserted."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest
from botocore.config import Config

from chalicelib.adapters.media import MediaPlane, MediaUnavailableError
from chalicelib.adapters.media.ivs import TOKEN_MINUTES, IvsStages
from tests.support.ivs_stubs import (
    EXPIRES,
    OLD_SESSION,
    REGION,
    SESSION,
    STAGE_ARN,
    StubbedIvs,
    created_stage,
    disconnect_params,
    list_params,
    one_room_lifetime,
    participant,
    participants,
    sessions,
    stubbed_ivs,
    token,
    with_attributes,
)


@pytest.fixture
def ivs() -> StubbedIvs:
    return stubbed_ivs()


def token_params(user_id: str, capabilities: list[str], may_publish: str) -> dict[str, object]:
    return {
        "stageArn": STAGE_ARN,
        "userId": user_id,
        "duration": TOKEN_MINUTES,
        "capabilities": capabilities,
        "attributes": {"may_publish": may_publish},
    }


def test_it_is_a_media_plane_of_twelve_publishers_and_ten_thousand_listeners() -> None:
    stages: MediaPlane = IvsStages(REGION)
    assert stages.kind == "ivs"
    assert (stages.limits.max_publishers, stages.limits.max_listeners) == (12, 10_000)


def test_the_client_is_built_on_first_use_only(ivs: StubbedIvs) -> None:
    assert ivs.built == 0
    ivs.expect("delete_stage", {}, {"arn": STAGE_ARN})
    ivs.expect("delete_stage", {}, {"arn": STAGE_ARN})
    ivs.stages.close_room(STAGE_ARN)
    ivs.stages.close_room(STAGE_ARN)
    assert ivs.built == 1


# --- rooms ---------------------------------------------------------------------------------


def test_opening_a_room_creates_a_tagged_stage_named_after_it_with_no_tokens(
    ivs: StubbedIvs,
) -> None:
    ivs.expect(
        "create_stage",
        created_stage(),
        {"name": "salon-dev-0f3a9c", "tags": {"salon:room": "0f3a9c", "salon:stage": "dev"}},
    )
    assert ivs.stages.open_room("0f3a9c") == STAGE_ARN
    ivs.stubber.assert_no_pending_responses()


def test_a_stage_name_keeps_only_what_ivs_allows() -> None:
    ivs = stubbed_ivs(stage="")
    ivs.expect(
        "create_stage", created_stage(), {"name": "salon-a-b-c", "tags": {"salon:room": "a.b/c"}}
    )
    ivs.stages.open_room("a.b/c")
    ivs.stubber.assert_no_pending_responses()


def test_closing_a_room_deletes_its_stage(ivs: StubbedIvs) -> None:
    ivs.expect("delete_stage", {}, {"arn": STAGE_ARN})
    ivs.stages.close_room(STAGE_ARN)
    ivs.stubber.assert_no_pending_responses()


def test_closing_a_room_whose_stage_is_gone_is_fine(ivs: StubbedIvs) -> None:
    ivs.fail("delete_stage", "ResourceNotFoundException", 404)
    ivs.stages.close_room(STAGE_ARN)
    ivs.stubber.assert_no_pending_responses()


# --- credentials ---------------------------------------------------------------------------


def test_a_member_who_may_publish_gets_a_publish_and_subscribe_token(ivs: StubbedIvs) -> None:
    ivs.expect(
        "create_participant_token",
        token("p1", ["PUBLISH", "SUBSCRIBE"]),
        token_params("u1", ["PUBLISH", "SUBSCRIBE"], "1"),
    )
    assert ivs.stages.credentials(STAGE_ARN, "u1", "conn-1", may_publish=True) == {
        "kind": "ivs",
        "ice_servers": [],
        "token": "token-of-p1",
        "participant_id": "p1",
        "expires_at": EXPIRES.isoformat(),
        "may_publish": True,
    }
    ivs.stubber.assert_no_pending_responses()


def test_a_listener_gets_a_subscribe_only_token(ivs: StubbedIvs) -> None:
    ivs.expect(
        "create_participant_token",
        token("p2", ["SUBSCRIBE"]),
        token_params("u2", ["SUBSCRIBE"], "0"),
    )
    answer = ivs.stages.credentials(STAGE_ARN, "u2", "conn-2", may_publish=False)
    assert answer["may_publish"] is False
    ivs.stubber.assert_no_pending_responses()


def test_the_credentials_are_the_documented_media_access(ivs: StubbedIvs) -> None:
    from tests.support import contract

    ivs.expect(
        "create_participant_token",
        token("p1", ["SUBSCRIBE"]),
        token_params("u1", ["SUBSCRIBE"], "0"),
    )
    access = ivs.stages.credentials(STAGE_ARN, "u1", "c", may_publish=False)
    contract.check(contract.ASYNCAPI_URI, "/components/schemas/MediaAccess", access, "media")
    contract.validate_server_message({"type": "media_credentials", "room_id": "r1", **access})


def test_tokens_are_short_lived() -> None:
    assert 1 <= TOKEN_MINUTES <= 60


def test_a_token_carries_no_personal_data_nor_the_connection(ivs: StubbedIvs) -> None:
    ivs.expect(
        "create_participant_token",
        token("p1", ["SUBSCRIBE"]),
        token_params("u-9f2", ["SUBSCRIBE"], "0"),
    )
    ivs.stages.credentials(STAGE_ARN, "u-9f2", "conn-secret-id", may_publish=False)
    ((_, sent),) = ivs.calls
    shown = json.dumps({"userId": sent["userId"], "attributes": sent["attributes"]})
    assert "conn-secret-id" not in shown
    assert set(sent["attributes"]) == {"may_publish"}
    assert sent["userId"] == "u-9f2"  # Salon's opaque id: no name, phone or handle


def test_expiry_falls_back_to_the_duration_when_ivs_gives_none() -> None:
    ivs = stubbed_ivs()
    now = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    ivs.stages._clock = lambda: now
    answer = token("p1", ["SUBSCRIBE"])
    del answer["participantToken"]["expirationTime"]
    ivs.expect("create_participant_token", answer, token_params("u1", ["SUBSCRIBE"], "0"))
    got = ivs.stages.credentials(STAGE_ARN, "u1", "c", may_publish=False)
    assert got["expires_at"] == "2026-12-02T09:10:00+00:00"


def test_credentials_for_a_stage_that_is_gone_are_unavailable(ivs: StubbedIvs) -> None:
    ivs.fail("create_participant_token", "ResourceNotFoundException", 404)
    with pytest.raises(MediaUnavailableError):
        ivs.stages.credentials(STAGE_ARN, "u1", "c", may_publish=True)


# --- revoking and evicting -----------------------------------------------------------------


def test_revoking_disconnects_only_that_users_publishing_participants(ivs: StubbedIvs) -> None:
    ivs.expect(
        "list_stage_sessions",
        sessions((OLD_SESSION, True), (SESSION, False)),
        {"stageArn": STAGE_ARN, "maxResults": 100},
    )
    ivs.expect(
        "list_participants",
        participants(
            participant("pub", "u1", published=True),
            participant("left", "u1", connected=False, published=True),
            participant("joined-to-publish", "u1"),
            participant("listening", "u1"),
            participant("someone-else", "u2", published=True),  # a filter IVS ignored
        ),
        list_params("u1"),
    )
    ivs.expect("disconnect_participant", {}, disconnect_params("pub", "publishing right revoked"))
    for pid, may_publish in (("joined-to-publish", True), ("listening", False)):
        ivs.expect(
            "get_participant",
            with_attributes(pid, "u1", may_publish),
            {"stageArn": STAGE_ARN, "sessionId": SESSION, "participantId": pid},
        )
        if may_publish:
            ivs.expect(
                "disconnect_participant", {}, disconnect_params(pid, "publishing right revoked")
            )
    ivs.stages.revoke_publish(STAGE_ARN, "u1")
    ivs.stubber.assert_no_pending_responses()
    disconnected = [p["participantId"] for op, p in ivs.calls if op == "DisconnectParticipant"]
    assert disconnected == ["pub", "joined-to-publish"]


def test_revoking_reads_every_page_of_sessions_and_participants(ivs: StubbedIvs) -> None:
    ivs.expect(
        "list_stage_sessions",
        sessions((OLD_SESSION, True), next_token="s2"),
        {"stageArn": STAGE_ARN, "maxResults": 100},
    )
    ivs.expect(
        "list_stage_sessions",
        sessions((SESSION, False)),
        {"stageArn": STAGE_ARN, "maxResults": 100, "nextToken": "s2"},
    )
    ivs.expect("list_participants", participants(next_token="n2"), list_params("u1"))
    ivs.expect(
        "list_participants",
        participants(participant("pub", "u1", published=True)),
        list_params("u1", next_token="n2"),
    )
    ivs.expect("disconnect_participant", {}, disconnect_params("pub", "publishing right revoked"))
    ivs.stages.revoke_publish(STAGE_ARN, "u1")
    ivs.stubber.assert_no_pending_responses()


def test_revoking_on_a_stage_with_no_session_in_progress_does_nothing(ivs: StubbedIvs) -> None:
    ivs.expect(
        "list_stage_sessions",
        sessions((OLD_SESSION, True)),
        {"stageArn": STAGE_ARN, "maxResults": 100},
    )
    ivs.stages.revoke_publish(STAGE_ARN, "u1")
    ivs.stubber.assert_no_pending_responses()


def test_a_participant_already_gone_when_disconnected_is_fine(ivs: StubbedIvs) -> None:
    ivs.expect(
        "list_stage_sessions",
        sessions((SESSION, False)),
        {"stageArn": STAGE_ARN, "maxResults": 100},
    )
    ivs.expect(
        "list_participants",
        participants(participant("pub", "u1", published=True)),
        list_params("u1"),
    )
    ivs.fail("disconnect_participant", "ResourceNotFoundException", 404)
    ivs.stages.revoke_publish(STAGE_ARN, "u1")
    ivs.stubber.assert_no_pending_responses()


def test_evicting_disconnects_every_connected_participant_of_that_user(ivs: StubbedIvs) -> None:
    ivs.expect(
        "list_stage_sessions",
        sessions((SESSION, False)),
        {"stageArn": STAGE_ARN, "maxResults": 100},
    )
    ivs.expect(
        "list_participants",
        participants(
            participant("speaking", "u1", published=True),
            participant("listening", "u1"),
            participant("earlier", "u1", connected=False),
        ),
        list_params("u1"),
    )
    ivs.expect("disconnect_participant", {}, disconnect_params("speaking", "left the room"))
    ivs.expect("disconnect_participant", {}, disconnect_params("listening", "left the room"))
    ivs.stages.evict(STAGE_ARN, "u1", "conn-1")
    ivs.stubber.assert_no_pending_responses()


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("ThrottlingException", 429),
        ("ServiceQuotaExceededException", 402),
        ("AccessDeniedException", 403),
        ("InternalServerException", 500),
        ("ValidationException", 400),
    ],
)
def test_what_aws_refuses_is_media_unavailable(ivs: StubbedIvs, code: str, status: int) -> None:
    ivs.fail("create_stage", code, status)
    with pytest.raises(MediaUnavailableError) as raised:
        ivs.stages.open_room("r1")
    assert raised.value.code == "media_unavailable"


def test_a_refused_listing_is_media_unavailable_not_nothing_to_revoke(ivs: StubbedIvs) -> None:
    ivs.fail("list_stage_sessions", "AccessDeniedException", 403)
    with pytest.raises(MediaUnavailableError):
        ivs.stages.revoke_publish(STAGE_ARN, "u1")


def test_a_refused_disconnect_is_media_unavailable(ivs: StubbedIvs) -> None:
    ivs.expect(
        "list_stage_sessions",
        sessions((SESSION, False)),
        {"stageArn": STAGE_ARN, "maxResults": 100},
    )
    ivs.expect("list_participants", participants(participant("p", "u1")), list_params("u1"))
    ivs.fail("disconnect_participant", "AccessDeniedException", 403)
    with pytest.raises(MediaUnavailableError):
        ivs.stages.evict(STAGE_ARN, "u1", "c")


def test_an_unreachable_endpoint_is_media_unavailable() -> None:
    def unreachable() -> object:
        return boto3.client(
            "ivs-realtime",
            region_name=REGION,
            endpoint_url="http://127.0.0.1:9",  # discard port: nothing listens
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(connect_timeout=1, retries={"max_attempts": 1}),
        )

    with pytest.raises(MediaUnavailableError):
        IvsStages(REGION, client_factory=unreachable).open_room("r1")


def test_one_room_lifetime_makes_only_the_calls_the_model_knows() -> None:
    ivs = stubbed_ivs()
    one_room_lifetime(ivs)
    assert {op for op, _ in ivs.calls} == {
        "CreateStage",
        "CreateParticipantToken",
        "ListStageSessions",
        "ListParticipants",
        "GetParticipant",
        "DisconnectParticipant",
        "DeleteStage",
    }
