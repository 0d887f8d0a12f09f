"""Account steps the integration tests share: asking for the deletion code, deleting, and the
number a member signed up with."""

from __future__ import annotations

from typing import Any

from chalice.test import Client

from tests.support.crowd import Person
from tests.support.send_money import call


def delete_me(client: Client, person: Person, code: str | None) -> Any:
    payload = {} if code is None else {"code": code}
    return call(client, "delete", "/me", person, payload)


def phone_of(svc: Any, person: Person) -> str:
    return str(svc.identity.repo.profile(person.user_id).phone)


def ask_code(client: Client, person: Person) -> None:
    answer = call(client, "post", "/me/deletion-code", person)
    assert answer.status_code == 202, answer.json_body
