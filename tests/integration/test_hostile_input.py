"""Hostile input is refused at the edge, with a documented error, on every route and action.

The routes, fields and actions are read from docs/openapi.yaml and docs/asyncapi.yaml (which
tests/unit/test_contract.py keeps equal to the code), so a new route or field is covered as soon
as it is documented.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.edge.validation import MAX_JSON_DEPTH
from tests.support import contract
from tests.support.contract_api import ContractApi
from tests.support.events import ws_event
from tests.support.fakes import RecordingConnections
from tests.support.flows import Member, founder
from tests.support.stripe_local import CONNECT_SECRET, PLATFORM_SECRET

LONE_SURROGATES = ("\ud800", "\udfff", "ok \ud83d cut emoji")
# About 2 KB: the size the issue reported, far past the parser's recursion limit.
DEEP = 1000
SOME_ID = "u_0000000000"


def deep_array(levels: int) -> str:
    return "[" * levels + "]" * levels


def deep_object(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


def concrete(path: str) -> str:
    return re.sub(r"{[^}]+}", SOME_ID, path)


def operations() -> list[contract.Operation]:
    return [op for op in contract.operations() if not op.spec.get("x-local-only")]


def body_operations() -> list[contract.Operation]:
    return [op for op in operations() if "requestBody" in op.spec]


def _schema_of(op: contract.Operation) -> tuple[dict[str, Any], dict[str, Any]]:
    """The request body's schema and its first documented example ({} if none)."""
    document = contract.openapi()
    request_body, _ = contract.follow(
        document, contract.pointer("paths", op.path, op.method.lower(), "requestBody")
    )
    media = request_body["content"]["application/json"]
    schema = contract.resolve(document, media["schema"])
    examples = list((media.get("examples") or {}).values())
    example = contract.resolve(document, examples[0])["value"] if examples else {}
    return schema, dict(example) if isinstance(example, dict) else {}


def _is_string(document: dict[str, Any], schema: Any) -> bool:
    schema = contract.resolve(document, schema)
    return isinstance(schema, dict) and (
        schema.get("type") == "string"
        or (isinstance(schema.get("type"), list) and "string" in schema["type"])
        or isinstance(schema.get("const"), str)
        or all(isinstance(choice, str) for choice in schema.get("enum") or [0])
    )


def string_fields(document: dict[str, Any], schema: dict[str, Any]) -> Iterator[tuple[str, bool]]:
    """(name, is it a list of strings) for every string property of an object schema."""
    for name, prop in (schema.get("properties") or {}).items():
        prop = contract.resolve(document, prop)
        if _is_string(document, prop):
            yield name, False
        elif prop.get("type") == "array" and _is_string(document, prop.get("items")):
            yield name, True


def body_string_fields() -> list[tuple[contract.Operation, str, bool]]:
    found = []
    for op in body_operations():
        schema, _ = _schema_of(op)
        found += [(op, name, many) for name, many in string_fields(contract.openapi(), schema)]
    return found


def query_string_fields() -> list[tuple[contract.Operation, str]]:
    found = []
    for op in operations():
        for parameter in op.spec.get("parameters", []):
            parameter = contract.resolve(contract.openapi(), parameter)
            if parameter["in"] == "query":
                found.append((op, parameter["name"]))
    return found


def ws_string_fields() -> list[tuple[str, str]]:
    document = contract.asyncapi()
    found = []
    for action, location in contract.client_actions().items():
        schema, _ = contract.follow(document, location)
        found += [(action, name) for name, _ in string_fields(document, schema)]
    return found


@pytest.fixture
def member(client: Client, svc: Any) -> Member:
    svc.settings = dataclasses.replace(
        svc.settings,
        stripe_webhook_secret=PLATFORM_SECRET,
        stripe_connect_webhook_secret=CONNECT_SECRET,
    )
    return founder(client)


@pytest.fixture
def api(client: Client) -> ContractApi:
    return ContractApi(client)


def _refusal(api: ContractApi, op: contract.Operation, raw: str, auth: Any) -> dict[str, Any]:
    """The error a body route gives `raw` (checked against the contract); a 500 fails."""
    status, body = api.call(op.method, concrete(op.path), raw=raw, auth=auth, valid=False)
    expected = "invalid_signature" if _is_stripe(op) else "invalid_request"
    assert (status, body["error"]["code"]) == (400, expected), (op.method, op.path, body)
    error: dict[str, Any] = body["error"]
    return error


def _is_stripe(op: contract.Operation) -> bool:
    # Stripe's bodies are read only once their signature holds: unsigned, they are refused so.
    return str(op.spec["requestBody"].get("$ref", "")).endswith("/StripeEvent")


# --- deeply nested JSON -----------------------------------------------------------------------


def test_a_deeply_nested_body_is_refused_on_every_body_route(
    api: ContractApi, member: Member
) -> None:
    assert len(body_operations()) >= 10
    for op in body_operations():
        for raw in (deep_array(DEEP), deep_object(DEEP)):
            error = _refusal(api, op, raw, member.auth)
            if not _is_stripe(op):
                assert f"more than {MAX_JSON_DEPTH} levels" in error["message"], (op, error)


def test_a_body_nested_just_within_the_limit_is_read_as_json(
    api: ContractApi, member: Member
) -> None:
    levels = MAX_JSON_DEPTH - 1
    raw = '{"x":' + '{"a":' * levels + "1" + "}" * levels + "}"
    for op in body_operations():
        error = _refusal(api, op, raw, member.auth)
        # Parsed, then refused for what it says (an unknown field), not for its shape.
        assert "levels" not in error["message"], (op, error)


def test_brackets_inside_strings_do_not_count_as_nesting(api: ContractApi, member: Member) -> None:
    status, body = api.call("PATCH", "/me", {"bio": "[{" * 100}, auth=member.auth)
    assert status == 200, body


# --- lone surrogates --------------------------------------------------------------------------


def test_a_lone_surrogate_in_any_string_field_of_a_body_is_refused_naming_the_field(
    api: ContractApi, member: Member
) -> None:
    fields = body_string_fields()
    assert {"name", "bio", "pitch", "sign_up_token", "refresh_token"} <= {f for _, f, _ in fields}
    for op, field, many in fields:
        _, example = _schema_of(op)
        for text in LONE_SURROGATES:
            raw = json.dumps({**example, field: [text] if many else text})
            assert "\\ud" in raw  # sent as the JSON escape a JavaScript client would send
            error = _refusal(api, op, raw, member.auth)
            if not _is_stripe(op):
                assert error.get("field") == field, (op, field, error)
                assert "surrogate" in error["message"]


def test_a_lone_surrogate_in_a_field_name_is_refused_and_not_echoed(
    api: ContractApi, member: Member
) -> None:
    for op in body_operations():
        error = _refusal(api, op, json.dumps({"\ud800": 1}), member.auth)
        assert "\ud800" not in error["message"], (op, error)


def test_a_whole_emoji_made_of_a_surrogate_pair_is_accepted(
    api: ContractApi, member: Member
) -> None:
    status, body = api.call("PATCH", "/me", {"bio": "salut \U0001f600"}, auth=member.auth)
    assert status == 200, body
    assert body["bio"] == "salut \U0001f600"


def test_a_lone_surrogate_in_any_query_parameter_is_refused_naming_it(
    api: ContractApi, member: Member
) -> None:
    parameters = query_string_fields()
    assert parameters
    for op, name in parameters:
        # On AWS the event is JSON, so a query value can decode to a lone surrogate.
        status, body = api.call(op.method, f"{concrete(op.path)}?{name}=\ud800", auth=member.auth)
        got = (status, body["error"]["code"], body["error"].get("field"))
        assert got == (400, "invalid_request", name), (op, body)


def test_a_lone_surrogate_in_a_path_parameter_names_nothing(
    api: ContractApi, member: Member
) -> None:
    with_parameters = [op for op in operations() if contract.path_parameters(op.path)]
    assert with_parameters
    for op in with_parameters:
        path = re.sub(r"{[^}]+}", "x\ud800", op.path)
        status, body = api.call(op.method, path, auth=member.auth, valid=False)
        assert (status, body["error"]["code"]) == (404, "not_found"), (op, body)


def test_a_lone_surrogate_in_the_access_token_is_not_a_token(
    api: ContractApi, member: Member
) -> None:
    auth = {"Authorization": "Bearer eyJ\ud800.x.y"}
    for op in operations():
        raw = "{}" if "requestBody" in op.spec else None
        status, body = api.call(op.method, concrete(op.path), raw=raw, auth=auth, valid=False)
        assert status < 500, (op, body)
        if op.spec.get("security") != []:
            assert (status, body["error"]["code"]) == (401, "not_authenticated"), (op, body)


def test_a_stripe_signature_that_is_not_ascii_is_a_bad_signature(
    api: ContractApi, member: Member
) -> None:
    for path in ("/webhooks/stripe", "/webhooks/stripe-connect"):
        for signature in ("t=1,v1=\ud800", "t=1,v1=\u00e9"):
            headers = {"Stripe-Signature": signature}
            status, body = api.call("POST", path, raw='{"id": "evt_1"}', auth=headers, valid=False)
            assert (status, body["error"]["code"]) == (400, "invalid_signature"), body


# --- the WebSocket API ------------------------------------------------------------------------


@pytest.fixture
def socket(client: Client, member: Member) -> str:
    response = client.lambda_.invoke(
        "ws_connect", ws_event("$connect", "c1=", query={"token": member.access_token})
    ).payload
    assert response["statusCode"] == 200
    return "c1="


def _reply(client: Client, sockets: RecordingConnections, action: str, raw: str) -> Any:
    client.lambda_.invoke("ws_message", ws_event("$default", "c1=", body=raw))
    reply = sockets.last("c1=")
    contract.validate_reply(action, reply)
    return reply


def test_a_deeply_nested_message_is_refused_for_every_action(
    client: Client, sockets: RecordingConnections, socket: str
) -> None:
    actions = sorted(contract.client_actions())
    assert len(actions) >= 20
    for action in actions:
        for shape in (deep_array, deep_object):
            raw = json.dumps({"action": action, "ref": "r1"})[:-1] + ', "x": ' + shape(DEEP) + "}"
            reply = _reply(client, sockets, action, raw)
            assert (reply["type"], reply["code"]) == ("error", "invalid_request"), reply
            assert f"more than {MAX_JSON_DEPTH} levels" in reply["message"]


def test_a_lone_surrogate_in_any_string_field_of_a_message_is_refused_naming_the_field(
    client: Client, sockets: RecordingConnections, socket: str
) -> None:
    fields = ws_string_fields()
    assert {"title", "room_id", "user_id", "action", "ref"} <= {f for _, f in fields}
    for action, field in fields:
        for text in LONE_SURROGATES:
            message = {"action": action, field: text} if field != "action" else {field: text}
            reply = _reply(client, sockets, action, json.dumps(message))
            got = (reply["type"], reply["code"], reply.get("field"))
            assert got == ("error", "invalid_request", field), (action, field, reply)


def test_a_lone_surrogate_deep_inside_a_message_is_refused(
    client: Client, sockets: RecordingConnections, socket: str
) -> None:
    for action in sorted(contract.client_actions()):
        raw = json.dumps({"action": action, "payload": {"sdp": ["v=0", {"\udc00": "x"}]}})
        reply = _reply(client, sockets, action, raw)
        got = (reply["type"], reply["code"], reply.get("field"))
        assert got == ("error", "invalid_request", "payload"), (action, reply)


def test_a_connect_token_that_is_not_ascii_text_is_refused_with_401(client: Client) -> None:
    for token in ("\ud800", "eyJ\udfff.a.b", "\u00e9t\u00e9"):
        response = client.lambda_.invoke(
            "ws_connect", ws_event("$connect", "c2=", query={"token": token})
        ).payload
        assert response["statusCode"] == 401, token
        contract.validate_handshake_refusal(401, json.loads(response["body"]))
