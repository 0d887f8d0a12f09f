"""A real boto3 `ivs-realtime` client behind botocore's Stubber (each call is checked against the
service model), recording every call the IVS adapter makes, and IVS's answers to build on."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.stub import Stubber

from chalicelib.adapters.media.ivs import IvsStages

REGION = "us-east-1"
ACCOUNT = "123456789012"
STAGE_ARN = f"arn:aws:ivs:{REGION}:{ACCOUNT}:stage/AbCdEf012345"
SESSION = "st-0123456789abc"
OLD_SESSION = "st-zzzzzzzzzzzzz"
EXPIRES = datetime(2026, 12, 2, 10, 10, tzinfo=UTC)


class _Recording:
    """The client, with every method the adapter calls noted as (operation, parameters)."""

    def __init__(self, client: Any, calls: list[tuple[str, dict[str, Any]]]) -> None:
        self._client = client
        self._calls = calls

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        operation = self._client.meta.method_to_api_mapping.get(name)
        if operation is None:
            return method

        def call(**params: Any) -> Any:
            self._calls.append((operation, params))
            return method(**params)

        return call


@dataclass
class StubbedIvs:
    stubber: Stubber
    stages: IvsStages
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    built: int = 0

    def expect(self, method: str, response: dict[str, Any], params: dict[str, Any]) -> None:
        self.stubber.add_response(method, response, params)

    def fail(self, method: str, code: str, status: int = 400) -> None:
        self.stubber.add_client_error(method, service_error_code=code, http_status_code=status)


def stubbed_ivs(stage: str = "dev") -> StubbedIvs:
    client = boto3.client(
        "ivs-realtime",
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    stubber = Stubber(client)
    stubber.activate()
    holder: dict[str, StubbedIvs] = {}

    def factory() -> Any:
        holder["it"].built += 1
        return _Recording(client, holder["it"].calls)

    holder["it"] = StubbedIvs(stubber, IvsStages(REGION, stage=stage, client_factory=factory))
    return holder["it"]


# --- IVS's answers ---------------------------------------------------------------------------


def created_stage(arn: str = STAGE_ARN) -> dict[str, Any]:
    return {"stage": {"arn": arn, "name": "salon-dev-room"}, "participantTokens": []}


def token(participant_id: str, capabilities: list[str]) -> dict[str, Any]:
    return {
        "participantToken": {
            "participantId": participant_id,
            "token": f"token-of-{participant_id}",
            "duration": 10,
            "capabilities": capabilities,
            "expirationTime": EXPIRES,
        }
    }


def sessions(*ids_ended: tuple[str, bool], next_token: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {
        "stageSessions": [
            {"sessionId": sid, "startTime": EXPIRES, **({"endTime": EXPIRES} if ended else {})}
            for sid, ended in ids_ended
        ]
    }
    if next_token:
        found["nextToken"] = next_token
    return found


def participant(pid: str, user_id: str, connected: bool = True, published: bool = False) -> Any:
    return {
        "participantId": pid,
        "userId": user_id,
        "state": "CONNECTED" if connected else "DISCONNECTED",
        "published": published,
    }


def participants(*found: dict[str, Any], next_token: str | None = None) -> dict[str, Any]:
    page: dict[str, Any] = {"participants": list(found)}
    if next_token:
        page["nextToken"] = next_token
    return page


def with_attributes(pid: str, user_id: str, may_publish: bool) -> dict[str, Any]:
    return {
        "participant": {
            **participant(pid, user_id),
            "attributes": {"may_publish": "1" if may_publish else "0"},
        }
    }


def list_params(user_id: str, next_token: str | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {
        "stageArn": STAGE_ARN,
        "sessionId": SESSION,
        "filterByUserId": user_id,
        "maxResults": 100,
    }
    if next_token:
        params["nextToken"] = next_token
    return params


def disconnect_params(pid: str, reason: str) -> dict[str, Any]:
    return {"stageArn": STAGE_ARN, "participantId": pid, "reason": reason}


def one_room_lifetime(ivs: StubbedIvs) -> None:
    """Every method of the adapter once, along every path that makes a call: open the room,
    a speaker's and a listener's credentials, a speaker muted (one participant publishing,
    one that joined with a publishing token and has not published yet), a member leaving,
    the room ending."""
    ivs.expect("create_stage", created_stage(), {"name": "salon-dev-r1", "tags": _tags("r1")})
    ivs.expect("create_participant_token", token("p1", ["PUBLISH", "SUBSCRIBE"]), _any_token())
    ivs.expect("create_participant_token", token("p2", ["SUBSCRIBE"]), _any_token())
    ivs.expect("list_stage_sessions", sessions((SESSION, False)), _sessions_params())
    ivs.expect(
        "list_participants",
        participants(participant("p1", "u1", published=True), participant("p3", "u1")),
        list_params("u1"),
    )
    ivs.expect("disconnect_participant", {}, _any_disconnect())
    ivs.expect(
        "get_participant",
        with_attributes("p3", "u1", True),
        {"stageArn": STAGE_ARN, "sessionId": SESSION, "participantId": "p3"},
    )
    ivs.expect("disconnect_participant", {}, _any_disconnect())
    ivs.expect("list_stage_sessions", sessions((SESSION, False)), _sessions_params())
    ivs.expect("list_participants", participants(participant("p2", "u2")), list_params("u2"))
    ivs.expect("disconnect_participant", {}, _any_disconnect())
    ivs.expect("delete_stage", {}, {"arn": STAGE_ARN})

    arn = ivs.stages.open_room("r1")
    ivs.stages.credentials(arn, "u1", "c1", may_publish=True)
    ivs.stages.credentials(arn, "u2", "c2", may_publish=False)
    ivs.stages.revoke_publish(arn, "u1")
    ivs.stages.evict(arn, "u2", "c2")
    ivs.stages.close_room(arn)
    ivs.stubber.assert_no_pending_responses()


def _tags(room_id: str) -> dict[str, str]:
    return {"salon:room": room_id, "salon:stage": "dev"}


def _sessions_params() -> dict[str, Any]:
    return {"stageArn": STAGE_ARN, "maxResults": 100}


def _any_token() -> dict[str, Any]:
    from botocore.stub import ANY

    return {
        "stageArn": STAGE_ARN,
        "userId": ANY,
        "duration": ANY,
        "capabilities": ANY,
        "attributes": ANY,
    }


def _any_disconnect() -> dict[str, Any]:
    from botocore.stub import ANY

    return {"stageArn": STAGE_ARN, "participantId": ANY, "reason": ANY}
