"""Push, for integration tests: REST calls as a member, a device, and the notifications queue
run through its handler."""

from __future__ import annotations

import json
from typing import Any

from tests.support import contract
from tests.support.crowd import Crowd, Person
from tests.support.events import sqs_event

NOTIFICATIONS = "salon-notifications"


def auth(person: Person) -> dict[str, str]:
    return {"Authorization": f"Bearer {person.token}", "Content-Type": "application/json"}


def rest(crowd: Crowd, method: str, path: str, person: Person, payload: Any = None) -> Any:
    """A request as the member; the answer must be one docs/openapi.yaml documents."""
    body = json.dumps(payload) if payload is not None else None
    answer = crowd.client.http.request(method, path, headers=auth(person), body=body)
    template = contract.operation_for(method, path.split("?", 1)[0]).path
    contract.validate_response(method, template, answer.status_code, answer.json_body)
    return answer


def device(crowd: Crowd, person: Person, platform: str = "apns") -> str:
    token = f"{person.name}-{platform}-token-0123456789abcdef"
    answer = rest(crowd, "POST", "/me/devices", person, {"platform": platform, "token": token})
    assert answer.status_code == 201, answer.body
    return token


def drain(crowd: Crowd) -> int:
    """Run the notifications queue dry through its handler, delays elapsed."""
    queue = crowd.svc.notifications_queue
    handled = 0
    while queue.pending:
        batch = [m for _, m in queue.pending]
        queue.pending.clear()
        for message in batch:
            handle(crowd, message)
            handled += 1
    return handled


def handle(crowd: Crowd, message: dict[str, Any]) -> None:
    """One queued message through the notifications function; it must not fail."""
    assert run_batch(crowd, sqs_event([message], NOTIFICATIONS)) == []


def run_batch(crowd: Crowd, event: dict[str, Any]) -> list[str]:
    """An SQS batch through the notifications function: the ids of the messages it reports
    failed (its partial batch response), as Lambda would read them."""
    answer = crowd.client.lambda_.invoke("notifications", event).payload
    return [failure["itemIdentifier"] for failure in answer["batchItemFailures"]]
