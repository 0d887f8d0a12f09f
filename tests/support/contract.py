"""The wire contract (docs/openapi.yaml, docs/asyncapi.yaml) as assertions for tests.

Each `validate_*` raises AssertionError naming the operation, the place in the body and the rule
broken when a request, response or message does not match the documents, so a test that drives
the API can check every body it gets back with one call.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from jsonschema import Draft7Validator, Draft202012Validator, validators
from jsonschema.exceptions import ValidationError, best_match
from jsonschema.protocols import Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7, DRAFT202012

DOCS = Path(__file__).resolve().parents[2] / "docs"
OPENAPI_PATH = DOCS / "openapi.yaml"
ASYNCAPI_PATH = DOCS / "asyncapi.yaml"
OPENAPI_URI = "urn:salon:openapi"
ASYNCAPI_URI = "urn:salon:asyncapi"
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
EMPTY_BODIES = (None, "", b"")


class Operation(NamedTuple):
    method: str  # upper case, as Chalice spells it
    path: str  # the template, as in openapi.yaml
    spec: dict[str, Any]


# --- the documents ------------------------------------------------------------------------------


def _load(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        document = yaml.safe_load(handle)
    assert isinstance(document, dict), f"{path} is not a YAML mapping"
    return document


@lru_cache(maxsize=1)
def openapi() -> dict[str, Any]:
    return _load(OPENAPI_PATH)


@lru_cache(maxsize=1)
def asyncapi() -> dict[str, Any]:
    return _load(ASYNCAPI_PATH)


@lru_cache(maxsize=1)
def _registry() -> Registry[Any]:
    # OpenAPI 3.1 schemas are JSON Schema 2020-12; AsyncAPI 3.0 schemas are a draft-07 superset.
    return Registry().with_resources(
        [
            (OPENAPI_URI, Resource.from_contents(openapi(), default_specification=DRAFT202012)),
            (ASYNCAPI_URI, Resource.from_contents(asyncapi(), default_specification=DRAFT7)),
        ]
    )


def escape(token: str) -> str:
    """One JSON Pointer reference token."""
    return token.replace("~", "~0").replace("/", "~1")


def pointer(*tokens: str) -> str:
    return "".join("/" + escape(token) for token in tokens)


def _at(document: Mapping[str, Any], location: str) -> Any:
    node: Any = document
    for raw in location.split("/")[1:]:
        token = raw.replace("~1", "/").replace("~0", "~")
        node = node[int(token)] if isinstance(node, list) else node[token]
    return node


def follow(document: Mapping[str, Any], location: str) -> tuple[Any, str]:
    """The node at a JSON Pointer, following local `$ref`s; and where it really is."""
    node = _at(document, location)
    seen = {location}
    while isinstance(node, dict) and isinstance(node.get("$ref"), str):
        ref = node["$ref"]
        assert ref.startswith("#/"), f"only local $refs are supported, not {ref!r}"
        location = ref[1:]
        assert location not in seen, f"$ref loop at {ref}"
        seen.add(location)
        node = _at(document, location)
    return node, location


def resolve(document: Mapping[str, Any], node: Any) -> Any:
    """`node` itself, or what its local `$ref` names."""
    if isinstance(node, dict) and isinstance(node.get("$ref"), str):
        return follow(document, node["$ref"][1:])[0]
    return node


def _max_json_bytes(
    validator: Validator, limit: int, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    """`x-max-json-bytes`: the size of a value written as JSON, as the code measures it."""
    if isinstance(instance, (dict, list)):
        size = len(json.dumps(instance))
        if size > limit:
            yield ValidationError(f"is {size} bytes as JSON, more than {limit}")


# AsyncAPI schemas, plus the one rule JSON Schema cannot say (edge/validation.py measures it).
AsyncApiValidator = validators.extend(Draft7Validator, {"x-max-json-bytes": _max_json_bytes})


@lru_cache(maxsize=256)
def _validator(uri: str, location: str) -> Validator:
    if uri == ASYNCAPI_URI:
        return AsyncApiValidator(
            {"$ref": f"{uri}#{location}"},
            registry=_registry(),
            format_checker=Draft7Validator.FORMAT_CHECKER,
        )
    return Draft202012Validator(
        {"$ref": f"{uri}#{location}"},
        registry=_registry(),
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def _show(value: Any) -> str:
    try:
        text = json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 1500 else text[:1500] + "..."


def check(uri: str, location: str, instance: Any, what: str) -> None:
    """Validate `instance` against the schema at `location` of a document, or fail clearly."""
    error = best_match(_validator(uri, location).iter_errors(instance))
    if error is not None:
        raise AssertionError(
            f"{what} does not match the contract: {error.message}\n"
            f"  at {error.json_path} of the body, rule {'/'.join(map(str, error.schema_path))}\n"
            f"  schema: {'docs/asyncapi.yaml' if uri == ASYNCAPI_URI else 'docs/openapi.yaml'}"
            f"#{location}\n  body: {_show(instance)}"
        )


# --- REST operations ----------------------------------------------------------------------------


def operations() -> Iterator[Operation]:
    for path, item in openapi()["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                yield Operation(method.upper(), path, item[method])


def _segments(path: str) -> list[str]:
    return path.split("?", 1)[0].strip("/").split("/")


def _matches(template: str, concrete: str) -> bool:
    wanted, given = _segments(template), _segments(concrete)
    if len(wanted) != len(given):
        return False
    return all(
        (w.startswith("{") and w.endswith("}") and g != "") or w == g
        for w, g in zip(wanted, given, strict=True)
    )


def _specificity(template: str) -> tuple[int, ...]:
    # Literal segments win over parameters, the earlier the better (as API Gateway routes).
    return tuple(0 if s.startswith("{") else 1 for s in _segments(template))


def operation_for(method: str, concrete_path: str) -> Operation:
    """The documented operation a request goes to, e.g. `/users/abc/follow` to its template."""
    paths = openapi()["paths"]
    candidates = [template for template in paths if _matches(template, concrete_path)]
    assert candidates, f"no path in docs/openapi.yaml matches {concrete_path!r}"
    template = max(candidates, key=_specificity)
    spec = paths[template].get(method.lower())
    assert spec is not None, (
        f"docs/openapi.yaml has {template} but no {method.upper()} on it (for {concrete_path!r})"
    )
    return Operation(method.upper(), template, spec)


def operation(method: str, path: str) -> Operation:
    """The operation of a template path (`/users/{user_id}`) or of a concrete one."""
    item = openapi()["paths"].get(path)
    if item is not None and method.lower() in item:
        return Operation(method.upper(), path, item[method.lower()])
    return operation_for(method, path)


def _location(op: Operation, *tokens: str) -> str:
    return pointer("paths", op.path, op.method.lower(), *tokens)


def _response(op: Operation, status: int) -> tuple[dict[str, Any], str]:
    responses = op.spec.get("responses", {})
    for key in (str(status), f"{str(status)[0]}XX", "default"):
        if key in responses:
            node, location = follow(openapi(), _location(op, "responses", key))
            return node, location
    raise AssertionError(
        f"{op.method} {op.path} answered {status}, which docs/openapi.yaml does not document "
        f"(it documents {', '.join(sorted(responses))})"
    )


def error_catalog() -> dict[str, dict[str, Any]]:
    """`x-error-codes` of openapi.yaml, by code."""
    return {entry["code"]: entry for entry in openapi()["x-error-codes"]}


def example_error_codes(media: Mapping[str, Any]) -> set[str]:
    codes = set()
    for example in (media.get("examples") or {}).values():
        value = resolve(openapi(), example)["value"]
        codes.add(value["error"]["code"])
    return codes


def documented_error_codes(method: str, path: str, status: int) -> set[str]:
    """The error codes an operation documents for a status (the codes of its examples)."""
    response, _ = _response(operation(method, path), status)
    media = (response.get("content") or {}).get("application/json") or {}
    return example_error_codes(media)


def validate_response(method: str, path_template: str, status: int, body: Any) -> None:
    """`body` is what docs/openapi.yaml promises for this operation and status.

    An error body's code must also be one the operation lists for that status, and the status
    the one `x-error-codes` gives the code.
    """
    op = operation(method, path_template)
    where = f"{op.method} {op.path} {status}"
    response, location = _response(op, status)
    content = response.get("content")
    if not content:
        assert body in EMPTY_BODIES, f"{where} documents no body, but one came: {_show(body)}"
        return
    media = content.get("application/json")
    assert media is not None, f"{where} documents no application/json body"
    check(OPENAPI_URI, location + pointer("content", "application/json", "schema"), body, where)
    if status >= 400 and isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = body["error"].get("code")
        codes = example_error_codes(media)
        assert code in codes, (
            f"{where}: error code {code!r} is not documented for this operation and status "
            f"(documented: {sorted(codes)}); body: {_show(body)}"
        )
        _check_code_status(code, status, where)


def _check_code_status(code: str, status: int, where: str) -> None:
    entry = error_catalog().get(code)
    assert entry is not None, f"{where}: error code {code!r} is not in x-error-codes"
    assert entry["status"] == status, (
        f"{where}: error code {code!r} came with {status}, but x-error-codes says {entry['status']}"
    )


def validate_request(method: str, path_template: str, body: Any) -> None:
    """`body` is a request body docs/openapi.yaml accepts for this operation."""
    op = operation(method, path_template)
    where = f"{op.method} {op.path} request"
    if "requestBody" not in op.spec:
        assert body in EMPTY_BODIES, f"{where}: the operation takes no body, got {_show(body)}"
        return
    request_body, location = follow(openapi(), _location(op, "requestBody"))
    if body in EMPTY_BODIES:
        assert not request_body.get("required"), f"{where}: a body is required"
        return
    check(OPENAPI_URI, location + pointer("content", "application/json", "schema"), body, where)


# --- operators' functions -----------------------------------------------------------------------


def admin_function(name: str) -> dict[str, Any]:
    functions = openapi().get("x-admin-functions", {})
    assert name in functions, f"x-admin-functions of docs/openapi.yaml has no {name!r}"
    spec: dict[str, Any] = functions[name]
    return spec


def validate_admin_event(name: str, event: Any) -> None:
    admin_function(name)
    check(OPENAPI_URI, pointer("x-admin-functions", name, "event"), event, f"{name} event")


def validate_admin_answer(name: str, answer: Any) -> None:
    """An operator function's answer: its result, or a refusal with a code it documents."""
    spec = admin_function(name)
    check(OPENAPI_URI, pointer("x-admin-functions", name, "answer"), answer, f"{name} answer")
    if isinstance(answer, dict) and answer.get("ok") is False:
        code = answer["error"]["code"]
        assert code in spec["errors"], (
            f"{name}: error code {code!r} is not among its documented errors {spec['errors']}"
        )
        assert code in error_catalog(), f"{name}: error code {code!r} is not in x-error-codes"


# --- the WebSocket API --------------------------------------------------------------------------


def _asyncapi_schema(name: str) -> str:
    schemas = asyncapi()["components"]["schemas"]
    assert name in schemas, f"docs/asyncapi.yaml has no components/schemas/{name}"
    return pointer("components", "schemas", name)


def _members(union: str, key: str) -> dict[str, str]:
    """The schemas of a union by their discriminating constant: name -> JSON Pointer."""
    document = asyncapi()
    members: dict[str, str] = {}
    for ref in document["components"]["schemas"][union]["oneOf"]:
        schema, location = follow(document, ref["$ref"].removeprefix("#"))
        name = schema["properties"][key]["const"]
        assert name not in members, f"{union}: two schemas for {key} {name!r}"
        members[name] = location
    return members


@lru_cache(maxsize=1)
def client_actions() -> dict[str, str]:
    """Every documented action, with the location of its schema."""
    return _members("ClientMessage", "action")


@lru_cache(maxsize=1)
def all_server_types() -> dict[str, str]:
    """Every documented server message `type`, with the location of its schema."""
    return _members("ServerMessage", "type")


@lru_cache(maxsize=1)
def driven_elsewhere() -> dict[str, str]:
    """The server `type`s another test drives and checks, with that test's path
    (`x-contract-test` of their message): the money messages, which Stripe's webhooks cause."""
    document = asyncapi()
    found: dict[str, str] = {}
    for message in document["components"]["messages"].values():
        test = message.get("x-contract-test")
        if test is not None:
            payload = resolve(document, message["payload"])
            found[payload["properties"]["type"]["const"]] = str(test)
    return found


@lru_cache(maxsize=1)
def server_types() -> dict[str, str]:
    """The documented server message `type`s of rooms and the connection, with the location of
    their schema: every `type` but those driven elsewhere (`driven_elsewhere()`), so exactly
    what tests/integration/test_room_contract.py must see (or exempt). Validation knows every
    type (`all_server_types()`)."""
    return {k: v for k, v in all_server_types().items() if k not in driven_elsewhere()}


def _validate_member(side: str, message: Any, members: dict[str, str], union: str) -> None:
    what = _named(side, message)
    key = "action" if side == "client" else "type"
    name = message.get(key) if isinstance(message, dict) else None
    location = members.get(name) if isinstance(name, str) else None
    assert location is not None, (
        f"{what}: docs/asyncapi.yaml documents no {key} {name!r} "
        f"(documented: {', '.join(sorted(members))}); body: {_show(message)}"
    )
    # Against its own schema first, for a precise complaint; then the union must agree.
    check(ASYNCAPI_URI, location, message, what)
    check(ASYNCAPI_URI, _asyncapi_schema(union), message, what)


def validate_client_message(message: Any) -> None:
    """A message a client may send: the schema of its `action` (and `ClientMessage`)."""
    _validate_member("client", message, client_actions(), "ClientMessage")


def validate_server_message(message: Any) -> None:
    """A message Salon may send: the schema of its `type` (and `ServerMessage`); an error's
    code must be a documented one."""
    _validate_member("server", message, all_server_types(), "ServerMessage")
    if message.get("type") == "error":
        assert message["code"] in error_catalog(), (
            f"WebSocket error code {message['code']!r} is not in x-error-codes"
        )


def action_operation(action: str) -> dict[str, Any]:
    """The `receive` operation of a client action."""
    document = asyncapi()
    found: list[dict[str, Any]] = []
    for candidate in document["operations"].values():
        if candidate["action"] != "receive":
            continue
        for ref in candidate["messages"]:
            message = follow(document, ref["$ref"].removeprefix("#"))[0]
            payload = resolve(document, message["payload"])
            if payload["properties"]["action"].get("const") == action:
                found.append(candidate)
    assert len(found) == 1, f"docs/asyncapi.yaml has {len(found)} operations for {action!r}"
    return found[0]


def reply_types(action: str) -> set[str]:
    """The `type`s an action may be answered with (its reply, or `error`)."""
    document = asyncapi()
    types = set()
    for ref in action_operation(action)["reply"]["messages"]:
        message = follow(document, ref["$ref"].removeprefix("#"))[0]
        types.add(resolve(document, message["payload"])["properties"]["type"]["const"])
    return types


def common_error_codes() -> set[str]:
    """The codes any action may be refused with."""
    return set(asyncapi()["channels"]["connection"]["x-common-errors"])


def action_error_codes(action: str) -> set[str]:
    """Every code an action may be refused with: its `x-errors` and the common ones."""
    return set(action_operation(action).get("x-errors", [])) | common_error_codes()


def validate_reply(action: str, reply: Any) -> None:
    """The answer to an action: a documented message, of a type the action replies with, and
    for a refusal a code the action documents."""
    validate_server_message(reply)
    assert reply["type"] in reply_types(action), (
        f"{action} was answered {reply['type']!r}; docs/asyncapi.yaml documents "
        f"{sorted(reply_types(action))}"
    )
    if reply["type"] == "error":
        assert reply["code"] in action_error_codes(action), (
            f"{action} was refused with {reply['code']!r}, which its operation does not list "
            f"(x-errors and x-common-errors: {sorted(action_error_codes(action))})"
        )


def server_message_spec(type_: str) -> dict[str, Any]:
    """The components/messages entry whose payload is the schema of a server `type`."""
    document = asyncapi()
    location = all_server_types()[type_]
    for message in document["components"]["messages"].values():
        if follow(document, message["payload"]["$ref"].removeprefix("#"))[1] == location:
            spec: dict[str, Any] = message
            return spec
    raise AssertionError(f"no message in docs/asyncapi.yaml carries the {type_!r} schema")


def event_audience(message: Mapping[str, Any]) -> dict[str, Any] | None:
    """Who a room event is documented to reach (`x-audience`, for its `role` if it depends on
    it); None for a message that is not a room event."""
    audience = server_message_spec(str(message["type"])).get("x-audience")
    if audience is None:
        return None
    if "by_role" in audience:
        by_role: dict[str, Any] = audience["by_role"][message["role"]]
        return by_role
    found: dict[str, Any] = audience
    return found


def recipients(type_: str) -> dict[str, Any] | None:
    """Whose sockets a message that is not a room event goes to (`x-recipients`: `to` the tip's
    `creator` or `sender`, or the `room`, and `when`); None for a message without one."""
    found: dict[str, Any] | None = server_message_spec(type_).get("x-recipients")
    return found


def validate_handshake_refusal(status: int, body: Any) -> None:
    """The body of a refused `$connect`, with a code documented for its status."""
    check(ASYNCAPI_URI, _asyncapi_schema("HandshakeRefusal"), body, f"$connect {status}")
    refusals = asyncapi()["channels"]["connection"]["x-handshake-refusals"]
    codes = refusals.get(str(status), [])
    assert body["error"]["code"] in codes, (
        f"$connect refused with {status} {body['error']['code']!r}; documented for {status}: "
        f"{codes}"
    )
    _check_code_status(body["error"]["code"], status, "$connect")


def _named(side: str, message: Any) -> str:
    if isinstance(message, dict):
        name = message.get("action") if side == "client" else message.get("type")
        if isinstance(name, str):
            return f"{side} message {name!r}"
    return f"{side} message"


# --- small helpers for tests --------------------------------------------------------------------


def path_parameters(template: str) -> list[str]:
    return re.findall(r"{([^}]+)}", template)
