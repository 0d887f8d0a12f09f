"""docs/openapi.yaml and docs/asyncapi.yaml say what the code does, and nothing it does not.

Routes and methods, operator functions, request fields, who must authenticate, every error code
and its status, WebSocket actions and the room codes each may return, room events with their
fields and who receives them: each is read from the code and compared with the documents.
"""

from __future__ import annotations

import importlib
import inspect
import itertools
import pkgutil
import re
import typing
from collections.abc import Iterator, Sequence
from dataclasses import fields as dataclass_fields
from datetime import UTC, datetime
from enum import Enum
from typing import Any, cast

import pytest
from chalice import Chalice

import app
import chalicelib
from chalicelib.adapters import media as media_plane
from chalicelib.adapters.dynamo import rooms as room_store
from chalicelib.adapters.media.janus import JanusVideoRoom
from chalicelib.config import Settings
from chalicelib.domain import clubs as club_rules
from chalicelib.domain import events as event_rules
from chalicelib.domain import rooms as domain
from chalicelib.domain.errors import SalonError
from chalicelib.edge import schemas
from chalicelib.edge.errors import HTTP_STATUS, INTERNAL_CODE
from chalicelib.edge.validation import Field
from chalicelib.edge.websocket import REF
from chalicelib.services import rooms as room_service
from chalicelib.services.container import Services
from tests.support import contract

# The declared fields behind each request body, query string, operator event and WS action.
REQUEST_FIELDS: dict[tuple[str, str], Sequence[Field]] = {
    ("POST", "/auth/sign-in"): schemas.SIGN_IN,
    ("POST", "/auth/verify"): schemas.VERIFY,
    ("POST", "/auth/sign-up"): schemas.SIGN_UP,
    ("POST", "/auth/refresh"): schemas.REFRESH,
    ("PUT", "/waitlist/username"): schemas.RESERVE,
    ("PATCH", "/me"): schemas.EDIT_PROFILE,
    ("POST", "/me/photo/uploads"): schemas.PHOTO_UPLOAD,
    ("PUT", "/me/photo"): schemas.PHOTO,
    ("POST", "/invites"): schemas.INVITE,
    ("PUT", "/creator/send-money"): schemas.ENABLED,
    ("POST", "/tips"): schemas.TIP,
    ("POST", "/feedback"): schemas.FEEDBACK,
    ("POST", "/creator-program/applications"): schemas.APPLICATION,
    ("POST", "/reports"): schemas.REPORT,
    ("DELETE", "/me"): schemas.DELETE_ACCOUNT,
    ("POST", "/me/devices"): schemas.DEVICE,
    ("POST", "/events"): schemas.NEW_EVENT,
    ("PATCH", "/events/{event_id}"): schemas.EDIT_EVENT,
    ("PATCH", "/me/notification-settings"): schemas.PUSH_SETTINGS,
    ("POST", "/clubs"): schemas.NEW_CLUB,
    ("POST", "/clubs/{club_id}/invitations"): schemas.CLUB_INVITE,
    ("PUT", "/clubs/{club_id}/members/{user_id}/role"): schemas.CLUB_ROLE,
}
# Bodies read raw, not field by field: Stripe signs the exact bytes (app.py `_stripe_event`).
RAW_BODIES: frozenset[tuple[str, str]] = frozenset(
    {("POST", "/webhooks/stripe"), ("POST", "/webhooks/stripe-connect")}
)
QUERY_FIELDS: dict[tuple[str, str], Sequence[Field]] = {
    ("GET", "/me/blocks"): schemas.PAGE,
    ("GET", "/users/{user_id}/followers"): schemas.PAGE,
    ("GET", "/users/{user_id}/following"): schemas.PAGE,
    ("GET", "/rooms"): schemas.PAGE,
    ("GET", "/tips/quote"): schemas.QUOTE,
    ("GET", "/me/tips"): schemas.PAGE,
    ("GET", "/me/earnings"): schemas.PAGE,
    ("GET", "/me/reports"): schemas.PAGE,
    ("GET", "/events"): schemas.UPCOMING,
    ("GET", "/clubs/{club_id}/members"): schemas.PAGE,
}
# Where the room errors live: every SalonError subclass defined in these is a room code.
ROOM_ERROR_MODULES = (domain, room_service, room_store, media_plane, event_rules)
# The club codes a room action (start_club_room) may return; the club's other codes are REST's.
CLUB_ROOM_ERRORS: tuple[type[SalonError], ...] = (
    club_rules.ClubNotFoundError,
    club_rules.ClubClosedError,
    club_rules.NotAClubMemberError,
    club_rules.ClubRoomsForAdminsError,
)
ADMIN_FIELDS: dict[str, Sequence[Field]] = {
    "admin_create_founder": schemas.ADMIN_CREATE_FOUNDER,
    "admin_grant_invites": schemas.ADMIN_GRANT_INVITES,
    "admin_admit": schemas.ADMIN_ADMIT,
    "admin_suspend": schemas.ADMIN_MEMBER,
    "admin_reinstate": schemas.ADMIN_MEMBER,
    "admin_beta_add": schemas.ADMIN_MEMBER,
    "admin_beta_remove": schemas.ADMIN_MEMBER,
    "admin_beta_list": schemas.ADMIN_NOTHING,
    "admin_feedback_list": schemas.ADMIN_FEEDBACK,
    "admin_program_applications": schemas.ADMIN_APPLICATIONS,
    "admin_program_approve": schemas.ADMIN_APPROVE,
    "admin_program_reject": schemas.ADMIN_REJECT,
    "admin_program_end": schemas.ADMIN_END_ENROLLMENT,
    "admin_run_payouts": schemas.ADMIN_RUN_PAYOUTS,
    "admin_reconcile": schemas.ADMIN_RECONCILE,
    "admin_reports": schemas.ADMIN_REPORTS,
    "admin_report_open": schemas.ADMIN_REPORT,
    "admin_report_decide": schemas.ADMIN_DECIDE,
    "admin_moderation_log": schemas.ADMIN_ROOM_LOG,
}

JSON_TYPES = {str: "string", int: "integer", bool: "boolean", dict: "object", list: "array"}
# Every keyword that can refuse a value: a documented field has exactly the code's rules.
RULES = (
    "type",
    "enum",
    "const",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "items",
    "properties",
    "anyOf",
    "oneOf",
    "allOf",
    "not",
    "x-max-json-bytes",
)

OPENAPI = contract.openapi
ASYNCAPI = contract.asyncapi


def field_rules(field: Field, *, nullable: bool) -> dict[str, Any]:
    """The JSON Schema rules of a declared field. Optional fields may be null (= absent)."""
    json_type = JSON_TYPES[field.type]
    rules: dict[str, Any] = {
        "type": [json_type, "null"] if nullable and not field.required else json_type
    }
    if field.type is str:
        if field.min_length:
            rules["minLength"] = field.min_length
        if field.max_length is not None:
            rules["maxLength"] = field.max_length
        if field.pattern is not None:
            rules["pattern"] = f"^{field.pattern}$"
        if field.choices is not None:
            rules["enum"] = list(field.choices)
    if field.type is int:
        if field.minimum is not None:
            rules["minimum"] = field.minimum
        if field.maximum is not None:
            rules["maximum"] = field.maximum
    if field.type in (dict, list) and field.max_length is not None:
        # JSON Schema cannot say it: the size of the value written as JSON (validation.py).
        rules["x-max-json-bytes"] = field.max_length
    return rules


def documented_rules(document: dict[str, Any], schema: Any) -> dict[str, Any]:
    resolved = contract.resolve(document, schema)
    return {key: resolved[key] for key in RULES if key in resolved}


def assert_object_matches_fields(
    document: dict[str, Any],
    schema: Any,
    fields: Sequence[Field],
    where: str,
    extra: dict[str, Any] | None = None,
) -> None:
    schema = contract.resolve(document, schema)
    assert schema.get("type") == "object", where
    assert schema.get("additionalProperties") is False, f"{where}: unknown fields are refused"
    extra = extra or {}
    properties = schema.get("properties", {})
    assert set(properties) == {f.name for f in fields} | set(extra), where
    required = {f.name for f in fields if f.required} | set(extra)
    assert set(schema.get("required", [])) == required, where
    for field in fields:
        assert documented_rules(document, properties[field.name]) == field_rules(
            field, nullable=True
        ), f"{where}: field {field.name!r}"
    for name, rules in extra.items():
        assert documented_rules(document, properties[name]) == rules, f"{where}: {name!r}"


def chalice_routes() -> set[tuple[str, str]]:
    return {(method, path) for path, entries in app.app.routes.items() for method in entries}


def local_only() -> set[tuple[str, str]]:
    return {(op.method, op.path) for op in contract.operations() if op.spec.get("x-local-only")}


def deployed_operations() -> Iterator[contract.Operation]:
    return (op for op in contract.operations() if not op.spec.get("x-local-only"))


def all_refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from all_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from all_refs(item)


def salon_error_classes() -> list[type[SalonError]]:
    """Every SalonError subclass in chalicelib, after importing every module of it."""
    for module in pkgutil.walk_packages(chalicelib.__path__, "chalicelib."):
        importlib.import_module(module.name)
    found: list[type[SalonError]] = []
    pending = list(SalonError.__subclasses__())
    while pending:
        cls = pending.pop()
        if cls not in found:
            found.append(cls)
            pending.extend(cls.__subclasses__())
    return [cls for cls in found if cls.__module__.startswith("chalicelib.")]


# --- (e) the documents ------------------------------------------------------------------------


def test_both_documents_parse_with_their_versions() -> None:
    assert OPENAPI()["openapi"] == "3.1.0"
    assert ASYNCAPI()["asyncapi"] == "3.0.0"
    for document in (OPENAPI(), ASYNCAPI()):
        assert document["info"]["title"]
        assert document["info"]["version"]


def test_openapi_yaml_is_a_valid_openapi_3_1_document() -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(OPENAPI())


@pytest.mark.parametrize("load", [contract.openapi, contract.asyncapi], ids=["openapi", "asyncapi"])
def test_every_ref_resolves(load: Any) -> None:
    document = load()
    for ref in all_refs(document):
        contract.follow(document, ref.removeprefix("#"))


# --- (a) routes ---------------------------------------------------------------------------------


def test_every_route_is_documented_and_nothing_else() -> None:
    # The local stack registers its own routes on the app; in this process it may have.
    actual = chalice_routes() - local_only()
    documented = {(op.method, op.path) for op in deployed_operations()}
    assert actual - documented == set(), "routes missing from docs/openapi.yaml"
    assert documented - actual == set(), "docs/openapi.yaml names routes app.py does not have"


def test_the_local_only_routes_are_the_ones_the_local_stack_registers() -> None:
    from local.stack import _register_local_routes

    probe = Chalice(app_name="probe")
    _register_local_routes(probe)
    registered = {(m, path) for path, entries in probe.routes.items() for m in entries}
    assert registered == local_only()


def test_the_documented_routes_authenticate_exactly_where_the_code_does() -> None:
    for op in deployed_operations():
        view = inspect.unwrap(app.app.routes[op.path][op.method].view_function)
        source = inspect.getsource(view)
        authenticates = "caller()" in source or "authenticate_session" in source
        security = op.spec.get("security", OPENAPI().get("security", []))
        documented = any("bearerAuth" in requirement for requirement in security)
        assert documented == authenticates, f"{op.method} {op.path}: security"
        if authenticates:
            assert contract.documented_error_codes(op.method, op.path, 401) >= {
                "not_authenticated",
                "session_revoked",
            }, f"{op.method} {op.path}"
            assert "account_suspended" in contract.documented_error_codes(
                op.method, op.path, 403
            ), f"{op.method} {op.path}"


def test_every_operation_documents_internal_errors_and_its_path_parameters() -> None:
    for op in deployed_operations():
        assert contract.documented_error_codes(op.method, op.path, 500) == {"internal_error"}
        parameters = [contract.resolve(OPENAPI(), p) for p in op.spec.get("parameters", [])]
        in_path = {p["name"] for p in parameters if p["in"] == "path"}
        assert in_path == set(contract.path_parameters(op.path)), f"{op.method} {op.path}"
        assert all(p["required"] for p in parameters if p["in"] == "path")


def test_request_bodies_have_exactly_the_declared_fields() -> None:
    with_body = {(op.method, op.path) for op in deployed_operations() if "requestBody" in op.spec}
    assert with_body == set(REQUEST_FIELDS) | RAW_BODIES
    for method, path in RAW_BODIES:
        body = contract.resolve(OPENAPI(), contract.operation(method, path).spec["requestBody"])
        assert body["required"] is True, f"{method} {path}"
        # Not parsed field by field, so never `invalid_request`: a body that is not Stripe's
        # fails the signature, a signed one that is not an event is `invalid_event`.
        assert contract.documented_error_codes(method, path, 400) == {
            "invalid_signature",
            "invalid_event",
        }
    for (method, path), fields in REQUEST_FIELDS.items():
        op = contract.operation(method, path)
        body = contract.resolve(OPENAPI(), op.spec["requestBody"])
        assert body["required"] is True
        schema = body["content"]["application/json"]["schema"]
        assert_object_matches_fields(OPENAPI(), schema, fields, f"{method} {path}")
        # Anything that fails is a 400 the operation must document.
        assert "invalid_request" in contract.documented_error_codes(method, path, 400)


def test_query_strings_have_exactly_the_declared_fields() -> None:
    for op in deployed_operations():
        parameters = [contract.resolve(OPENAPI(), p) for p in op.spec.get("parameters", [])]
        query = {p["name"]: p for p in parameters if p["in"] == "query"}
        fields = QUERY_FIELDS.get((op.method, op.path), ())
        assert set(query) == {f.name for f in fields}, f"{op.method} {op.path}"
        for field in fields:
            parameter = query[field.name]
            assert parameter.get("required", False) == field.required
            rules = documented_rules(OPENAPI(), parameter["schema"])
            assert rules == field_rules(field, nullable=False), f"{op.path} ?{field.name}"
        if fields:
            assert "invalid_request" in contract.documented_error_codes(op.method, op.path, 400)


def schemas_named(source: str, pattern: str) -> list[Sequence[Field]]:
    """The `schemas.X` tuples a piece of app.py passes where `pattern` says (X a group)."""
    return [getattr(schemas, name) for name in re.findall(pattern, source)]


def test_the_field_tables_name_the_schemas_the_code_uses() -> None:
    """REQUEST_FIELDS, QUERY_FIELDS, RAW_BODIES and ADMIN_FIELDS, read from app.py itself."""
    for path, entries in app.app.routes.items():
        for method, entry in entries.items():
            source = inspect.getsource(inspect.unwrap(entry.view_function))
            bodies = schemas_named(source, r"\bbody\(request\(\), schemas\.(\w+)[,)]")
            queries = schemas_named(source, r"\bquery\(request\(\), schemas\.(\w+)\)")
            key = (method, path)
            assert len(bodies) <= 1 and len(queries) <= 1, f"{method} {path}"
            if bodies:
                assert REQUEST_FIELDS.get(key) is bodies[0], f"REQUEST_FIELDS[{key}]"
            else:
                assert key not in REQUEST_FIELDS, f"{method} {path} reads no declared body"
            if key in RAW_BODIES:
                assert "_stripe_event(" in source, f"{method} {path} reads Stripe's raw body"
            if queries:
                assert QUERY_FIELDS.get(key) is queries[0], f"QUERY_FIELDS[{key}]"
            else:
                assert key not in QUERY_FIELDS, f"{method} {path} reads no declared query"
    assert "current.raw_body" in inspect.getsource(app._stripe_event)
    # Chalice wraps the operators' functions: their decorators are read from app.py.
    decorated = re.findall(r"@admin\(schemas\.(\w+)\)\ndef (\w+)\(", inspect.getsource(app))
    declared = {name: schema for schema, name in decorated}
    admin_names = {name for name in app.app.handler_map if name.startswith("admin_")}
    assert set(declared) == admin_names, "every operator function is declared with @admin"
    for name, schema in declared.items():
        assert ADMIN_FIELDS.get(name) is getattr(schemas, schema), f"ADMIN_FIELDS[{name!r}]"


def test_documented_examples_match_their_schemas() -> None:
    for op in contract.operations():
        if "requestBody" in op.spec:
            body = contract.resolve(OPENAPI(), op.spec["requestBody"])
            for example in body["content"]["application/json"].get("examples", {}).values():
                contract.validate_request(op.method, op.path, example["value"])
        for status, response in op.spec["responses"].items():
            media = contract.resolve(OPENAPI(), response).get("content", {})
            for example in media.get("application/json", {}).get("examples", {}).values():
                value = contract.resolve(OPENAPI(), example)["value"]
                contract.validate_response(op.method, op.path, int(status), value)
    for name, schema in OPENAPI()["components"]["schemas"].items():
        for example in schema.get("examples", []):
            contract.check(
                contract.OPENAPI_URI, contract.pointer("components", "schemas", name), example, name
            )


# --- (b) operators' functions -------------------------------------------------------------------


def test_every_operator_function_is_documented_and_nothing_else() -> None:
    functions = {name for name in app.app.handler_map if name.startswith("admin_")}
    assert functions == set(OPENAPI()["x-admin-functions"])
    assert functions == set(ADMIN_FIELDS)


@pytest.mark.parametrize("name", sorted(ADMIN_FIELDS))
def test_operator_events_have_exactly_the_declared_fields(name: str) -> None:
    spec = contract.admin_function(name)
    assert_object_matches_fields(OPENAPI(), spec["event"], ADMIN_FIELDS[name], name)
    contract.validate_admin_event(name, spec["example"]["event"])
    assert {"invalid_request", "internal_error"} <= set(spec["errors"])
    refusal = {"ok": False, "error": {"code": spec["errors"][0], "message": "No."}}
    contract.validate_admin_answer(name, refusal)


# --- (c) error codes ----------------------------------------------------------------------------


def test_every_error_code_in_the_code_is_documented_with_its_status_and_no_other() -> None:
    catalog = contract.error_catalog()
    assert len(catalog) == len(OPENAPI()["x-error-codes"]), "a code is listed twice"
    classes = salon_error_classes()
    assert len(classes) > 20  # the walk found the modules
    codes = {cls.code for cls in classes} | {INTERNAL_CODE}
    assert codes - set(catalog) == set(), "error codes missing from x-error-codes"
    assert set(catalog) - codes == set(), "x-error-codes lists codes no error class has"
    for cls in classes:
        entry = catalog[cls.code]
        assert entry["status"] == HTTP_STATUS[cls.kind], f"{cls.__qualname__} ({cls.code})"
    assert catalog[INTERNAL_CODE]["status"] == 500


def test_every_code_the_documents_name_is_in_the_catalog_with_the_right_status() -> None:
    catalog = contract.error_catalog()
    for op in contract.operations():
        for status in op.spec["responses"]:
            if int(status) >= 400:
                for code in contract.documented_error_codes(op.method, op.path, int(status)):
                    assert catalog[code]["status"] == int(status), f"{op.path} {status} {code}"
    for name, spec in OPENAPI()["x-admin-functions"].items():
        assert set(spec["errors"]) <= set(catalog), name
    refusals = ASYNCAPI()["channels"]["connection"]["x-handshake-refusals"]
    for status, codes in refusals.items():
        assert all(catalog[code]["status"] == int(status) for code in codes), status
    ws_codes = ASYNCAPI()["components"]["schemas"]["ErrorCode"]["examples"]
    assert all("websocket" in catalog[code]["where"] for code in ws_codes)


# --- (d) the WebSocket API ----------------------------------------------------------------------


def message_directions() -> dict[str, str]:
    """components/messages name -> 'client' or 'server', from the operations."""
    document = ASYNCAPI()
    directions: dict[str, str] = {}

    def mark(refs: list[dict[str, str]], side: str) -> None:
        for ref in refs:
            _, location = contract.follow(document, ref["$ref"].removeprefix("#"))
            name = location.rsplit("/", 1)[-1]
            assert directions.setdefault(name, side) == side, f"{name} goes both ways"

    for name, operation in document["operations"].items():
        side = "client" if operation["action"] == "receive" else "server"
        mark(operation["messages"], side)
        if "reply" in operation:
            assert operation["action"] == "receive", f"{name}: only client actions have replies"
            mark(operation["reply"]["messages"], "server")
    return directions


def test_every_message_has_a_direction_and_is_in_the_right_union() -> None:
    document = ASYNCAPI()
    directions = message_directions()
    assert set(directions) == set(document["components"]["messages"])
    schemas_of = {"client": "ClientMessage", "server": "ServerMessage"}
    for side, union in schemas_of.items():
        members = {ref["$ref"] for ref in document["components"]["schemas"][union]["oneOf"]}
        payloads = {
            document["components"]["messages"][name]["payload"]["$ref"]
            for name, direction in directions.items()
            if direction == side
        }
        assert members == payloads, union


def test_every_example_message_matches_its_own_schema_and_its_union() -> None:
    document = ASYNCAPI()
    directions = message_directions()
    for name, message in document["components"]["messages"].items():
        assert message.get("examples"), f"{name} has no example"
        payload = contract.pointer("components", "messages", name, "payload")
        for example in message["examples"]:
            # YAML 1.1 reads `name: off` as false: names must stay strings.
            assert isinstance(example.get("name"), str), f"{name}: an example's name"
            contract.check(contract.ASYNCAPI_URI, payload, example["payload"], name)
            if directions[name] == "client":
                contract.validate_client_message(example["payload"])
            else:
                contract.validate_server_message(example["payload"])
    for example in document["components"]["schemas"]["HandshakeRefusal"]["examples"]:
        status = 403 if example["error"]["code"] == "account_suspended" else 401
        contract.validate_handshake_refusal(status, example)


def test_every_websocket_action_is_documented_with_exactly_its_fields() -> None:
    document = ASYNCAPI()
    # The actions the deployed wiring registers (ping, and whatever else the container adds).
    realtime = Services(Settings.from_env()).realtime
    union = document["components"]["schemas"]["ClientMessage"]["oneOf"]
    by_action = {}
    for ref in union:
        schema = contract.resolve(document, ref)
        by_action[schema["properties"]["action"]["const"]] = schema
    assert set(by_action) == set(realtime.actions), "every action, and nothing else"
    for name in by_action:
        action = realtime.actions[name]
        assert_object_matches_fields(
            document,
            by_action[name],
            (*action.fields, REF),
            f"action {name}",
            extra={"action": {"const": name}},
        )


def registered_actions() -> set[str]:
    return set(Services(Settings.from_env()).realtime.actions)


def room_error_codes() -> dict[str, type[SalonError]]:
    """Every room error code, from the modules that define them."""
    modules = {module.__name__ for module in ROOM_ERROR_MODULES}
    codes = {cls.code: cls for cls in salon_error_classes() if cls.__module__ in modules}
    return codes | {cls.code: cls for cls in CLUB_ROOM_ERRORS}


def test_every_action_has_an_operation_with_its_replies_and_room_codes() -> None:
    catalog = contract.error_catalog()
    room_codes = set(ASYNCAPI()["components"]["schemas"]["RoomErrorCode"]["enum"])
    for name in registered_actions():
        operation = contract.action_operation(name)
        assert operation["action"] == "receive", name
        assert "error" in contract.reply_types(name), f"{name}: may be refused"
        assert len(contract.reply_types(name)) == 2, f"{name}: one reply type, and error"
        errors = operation.get("x-errors")
        assert isinstance(errors, list), f"{name}: x-errors lists its room codes"
        assert len(errors) == len(set(errors)), f"{name}: a code listed twice"
        assert set(errors) <= room_codes, f"{name}: x-errors are room codes"
        for code in errors:
            assert {"rooms", "websocket"} & set(catalog[code]["where"]), f"{name}: {code}"
    for code in contract.common_error_codes():
        assert "websocket" in catalog[code]["where"], code


def test_ack_names_exactly_the_actions_answered_with_ack() -> None:
    acked = {name for name in registered_actions() if "ack" in contract.reply_types(name)}
    schema = contract.resolve(ASYNCAPI(), {"$ref": "#/components/schemas/Ack"})
    assert set(schema["properties"]["action"]["enum"]) == acked


def test_every_room_error_code_is_documented_and_returned_by_some_action() -> None:
    codes = room_error_codes()
    assert len(codes) > 25  # the walk found the modules
    room_codes = ASYNCAPI()["components"]["schemas"]["RoomErrorCode"]
    assert set(room_codes["enum"]) == set(codes), "RoomErrorCode is every room code"
    catalog = contract.error_catalog()
    for code, cls in codes.items():
        assert catalog[code]["status"] == HTTP_STATUS[cls.kind], code
        assert "rooms" in catalog[code]["where"], code
    returned = set().union(
        *(contract.action_operation(name)["x-errors"] for name in registered_actions())
    )
    not_sent = set(room_codes["x-not-sent"])
    assert returned & not_sent == set(), "a code cannot be both returned and not sent"
    assert returned | not_sent == set(codes), "each room code: some action's, or not sent"
    described = room_codes["description"]
    assert all(f"`{code}`" in described for code in set(codes) - not_sent)


def event_classes() -> list[type[domain.Event]]:
    found: list[type[domain.Event]] = []
    pending = list(domain.Event.__subclasses__())
    while pending:
        cls = pending.pop()
        if cls not in found:
            found.append(cls)
            pending.extend(cls.__subclasses__())
    return sorted(found, key=lambda cls: cls.name)


def sample_events(cls: type[domain.Event]) -> Iterator[domain.Event]:
    """An instance of the event for every value of each of its enum and bool fields."""
    hints = typing.get_type_hints(cls)
    choices: dict[str, list[Any]] = {}
    for f in dataclass_fields(cls):
        hint = hints[f.name]
        if hint is datetime:
            choices[f.name] = [datetime(2026, 11, 26, 21, tzinfo=UTC)]
        elif isinstance(hint, type) and issubclass(hint, Enum):
            choices[f.name] = list(hint)
        elif hint is bool:
            choices[f.name] = [True, False]
        elif hint is int:
            choices[f.name] = [8000]
        elif hint is str:
            choices[f.name] = [f"{f.name}-1"]  # distinct per field: tells user_id from by_id
        elif hint == str | None:
            choices[f.name] = [f"{f.name}-1", None]
        else:
            raise AssertionError(f"{cls.__name__}.{f.name}: no sample for {hint}")
    for values in itertools.product(*choices.values()):
        yield cls(**dict(zip(choices, values, strict=True)))


def test_room_events_are_documented_with_their_fields() -> None:
    classes = event_classes()
    assert len(classes) > 15  # the walk found them
    types = contract.server_types()
    # The payload schemas of the messages of the `room_events` operation: exactly the events.
    in_operation = set()
    for ref in ASYNCAPI()["operations"]["room_events"]["messages"]:
        message = contract.follow(ASYNCAPI(), ref["$ref"].removeprefix("#"))[0]
        in_operation.add(contract.follow(ASYNCAPI(), message["payload"]["$ref"][1:])[1])
    assert in_operation == {types[cls.name] for cls in classes if cls.name in types}
    for cls in classes:
        assert cls.name in types, f"{cls.__name__} ({cls.name!r}) is not in ServerMessage"
        schema = contract.resolve(ASYNCAPI(), {"$ref": "#" + types[cls.name]})
        wire = {"type", "version", *(f.name for f in dataclass_fields(cls))}
        assert set(schema["properties"]) == wire, cls.name
        assert set(schema["required"]) == wire, f"{cls.name}: every field is always sent"
        assert schema.get("additionalProperties") is False, cls.name
        for event in sample_events(cls):
            contract.validate_server_message(event.to_message(7))


def test_room_events_say_who_receives_them_as_the_code_does() -> None:
    for cls in event_classes():
        documented = contract.server_message_spec(cls.name).get("x-audience")
        assert documented is not None, f"{cls.name}: x-audience"
        for event in sample_events(cls):
            wire = event.to_dict()
            spec = contract.event_audience(wire)
            assert spec is not None
            told = {getattr(event, field) for field in spec.get("users", [])}
            actual = (event.audience.scope.value, set(event.audience.user_ids))
            assert actual == (spec["scope"], told), f"{cls.name} {wire}"
            assert spec["scope"] in {s.value for s in domain.Scope}, cls.name
        if "by_role" in documented:
            assert set(documented["by_role"]) == {r.value for r in domain.Role}, cls.name


class Recorded:
    """The sockets of the payments service's notices: every user has one, `<user>-socket`."""

    def __init__(self) -> None:
        self.sent: dict[str, list[dict[str, Any]]] = {}

    def for_user(self, user_id: str) -> list[str]:
        return [f"{user_id}-socket"]

    def post(self, connection_id: str, message: dict[str, Any]) -> bool:
        self.sent.setdefault(connection_id.removesuffix("-socket"), []).append(message)
        return True


def money_notices(*, sender_known: bool, stripe_code: str | None) -> dict[str, list[Any]]:
    """What the payments service pushes for a paid tip and a failed attempt, by recipient:
    `creator`, `sender`, and `room` (what it hands the rooms service to announce)."""
    from chalicelib.adapters.dynamo.money import Tip
    from chalicelib.domain.identity import Profile
    from chalicelib.domain.money import TipStatus
    from chalicelib.services.payments import Payments

    at = datetime(2026, 11, 26, 21, tzinfo=UTC)
    tip = Tip(
        "9f86d081884c7d659a2feaa0c55ad015", "fan", "host", 500, 46, 546, "usd",
        TipStatus.PROCESSING, "pi_1", at,
    )  # fmt: skip
    sender = Profile("fan", "fan", "Fan", "", "", None, 0, 0, at)

    class People:
        def profiles(self, user_ids: list[str]) -> dict[str, Profile]:
            return {"fan": sender} if sender_known else {}

    class Repo:
        def tip_for_payment_intent(self, payment_intent_id: str) -> Tip:
            return tip

        def update_tip(self, *args: Any, **kwargs: Any) -> None:
            pass

    sockets = Recorded()
    announced: list[tuple[str, dict[str, Any]]] = []
    fakes: dict[str, Any] = {"repo": Repo(), "people": People(), "stripe": None}
    payments = Payments(
        **fakes,
        connections=cast(Any, sockets),
        poster=cast(Any, sockets),
        settings=Settings.from_env(),
        clock=lambda: at,
        new_id=str,
        on_stage_notice=lambda user_id, notice: announced.append((user_id, notice)),
    )
    payments._notify_tip(tip)
    error = {"message": "Your card was declined.", "code": stripe_code} if stripe_code else {}
    payments._payment_failed({"id": "pi_1", "last_payment_error": error}, {})
    assert [user_id for user_id, _ in announced] == ["host"], "announced in the creator's room"
    # The rooms service adds the room (chalicelib/services/rooms.py `announce_if_on_stage`).
    room = [{**notice, "room_id": "r1"} for _, notice in announced]
    return {"creator": sockets.sent.pop("host"), "sender": sockets.sent.pop("fan"), "room": room}


@pytest.mark.parametrize(("sender_known", "stripe_code"), [(True, "card_declined"), (False, None)])
def test_the_money_messages_are_documented_with_their_fields_and_recipients(
    sender_known: bool, stripe_code: str | None
) -> None:
    by_recipient = money_notices(sender_known=sender_known, stripe_code=stripe_code)
    sent = set()
    for to, messages in by_recipient.items():
        for message in messages:
            contract.validate_server_message(message)
            recipients = contract.recipients(message["type"])
            assert recipients is not None, message["type"]
            assert recipients["to"] == to, message
            assert contract.event_audience(message) is None, "not a room event"
            sent.add(message["type"])
    # Exactly the documented money messages; each names the test that drives it for real.
    assert sent == set(contract.driven_elsewhere())
    for test in set(contract.driven_elsewhere().values()):
        source = (contract.DOCS.parent / test).read_text(encoding="utf-8")
        assert "validate_server_message" in source, test
    documented = {
        name
        for name in contract.all_server_types()
        if contract.server_message_spec(name).get("x-recipients") is not None
    }
    assert documented == sent


def test_the_room_snapshot_has_the_fields_the_code_puts_in_it() -> None:
    at = datetime(2026, 11, 26, 21, tzinfo=UTC)
    room, _ = domain.create_room("r1", "host", "Jazz", domain.RoomType.OPEN, at)
    view = domain.snapshot(room, "host")
    schema = contract.resolve(ASYNCAPI(), {"$ref": "#/components/schemas/RoomSnapshot"})
    # The service adds the type, the audience's cursor, the viewer's way to the audio
    # (rooms.py `_view`) and the echoed ref.
    assert set(schema["properties"]) == {*view, "type", "audience_cursor", "media", "ref"}
    assert set(schema["required"]) == set(schema["properties"]) - {"raised_hands", "media", "ref"}
    assert "raised_hands" not in domain.snapshot(room, "someone else")


def test_the_room_limits_are_the_ones_the_code_uses() -> None:
    limits = ASYNCAPI()["channels"]["connection"]["x-rooms"]
    assert limits["capacity"] == Settings.room_capacity == domain.DEFAULT_CAPACITY
    assert limits["reconnect_grace_seconds"] == Settings.reconnect_grace_s
    assert limits["audience_count_interval_seconds"] == Settings.audience_count_interval_s
    smallest = Settings.audience_count_interval_s
    assert [(tier["below"], tier["seconds"]) for tier in limits["audience_count_intervals"]] == [
        (below, max(smallest, s)) for below, s in domain.COUNT_INTERVALS
    ]
    assert limits["audience_page_size"] == domain.DEFAULT_PAGE_SIZE
    assert limits["max_signal_bytes"] == Settings.max_signal_bytes
    assert limits["max_publishers"] == Settings.max_publishers == domain.DEFAULT_MAX_PUBLISHERS
    assert limits["janus_max_listeners"] == Settings.janus_max_listeners
    schemas = ASYNCAPI()["components"]["schemas"]
    assert schemas["RoomTitle"]["maxLength"] == domain.MAX_TITLE_LENGTH
    assert schemas["RoomKind"]["enum"] == [k.value for k in domain.RoomType]
    assert schemas["Role"]["enum"] == [r.value for r in domain.Role]
    assert schemas["Sdp"]["maxLength"] == Settings.max_signal_bytes


@pytest.mark.parametrize("may_publish", [True, False])
def test_the_janus_credentials_are_the_documented_media_access(may_publish: bool) -> None:
    limits = media_plane.Limits(max_publishers=12, max_listeners=400)
    plane = JanusVideoRoom("http://127.0.0.1:1", "http://127.0.0.1:2", str, str, limits)
    access = plane.credentials("r1", "u1", "c1=", may_publish)
    # As the room view's `media` and as the pushed `media_credentials` (rooms.py `_sync_media`).
    contract.check(contract.ASYNCAPI_URI, "/components/schemas/MediaAccess", access, "media")
    contract.validate_server_message({"type": "media_credentials", "room_id": "r1", **access})
    with pytest.raises(AssertionError, match="does not match"):
        contract.validate_server_message(
            {"type": "media_credentials", "room_id": "r1", **access, "kind": "ivs"}
        )


def test_the_connection_limits_are_the_ones_the_code_and_the_local_gateway_use() -> None:
    from local.gateway import LocalWebSocketGateway
    from local.stack import StackConfig

    limits = ASYNCAPI()["channels"]["connection"]["x-connection"]
    assert limits["max_message_bytes"] == Settings.max_ws_message_bytes
    assert limits["idle_timeout_seconds"] == StackConfig.idle_timeout_s
    gateway = inspect.signature(LocalWebSocketGateway.__init__).parameters
    assert limits["max_duration_seconds"] == gateway["max_connection_s"].default
    assert limits["ping_every_seconds"] * 2 <= limits["idle_timeout_seconds"]


# --- tests/support/contract.py itself -----------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "concrete", "template"),
    [
        ("PUT", "/users/abc/follow", "/users/{user_id}/follow"),
        ("GET", "/users/abc", "/users/{user_id}"),
        ("GET", "/users/by-username/Bob", "/users/by-username/{username}"),
        ("GET", "/users/by-username", "/users/{user_id}"),
        ("GET", "/users/abc/followers?limit=3&cursor=x", "/users/{user_id}/followers"),
        ("GET", "/me", "/me"),
        ("PATCH", "/me", "/me"),
    ],
)
def test_operation_for_finds_the_template_of_a_concrete_path(
    method: str, concrete: str, template: str
) -> None:
    found = contract.operation_for(method, concrete)
    assert (found.method, found.path) == (method, template)


@pytest.mark.parametrize(
    ("method", "concrete"), [("GET", "/nowhere"), ("POST", "/users/abc"), ("GET", "/users//x")]
)
def test_operation_for_refuses_what_is_not_documented(method: str, concrete: str) -> None:
    with pytest.raises(AssertionError):
        contract.operation_for(method, concrete)


FOLLOW = {"user_id": "abc", "you_follow": True}


def test_validate_response_accepts_what_the_contract_promises() -> None:
    contract.validate_response("PUT", "/users/{user_id}/follow", 200, FOLLOW)
    contract.validate_response("PUT", "/users/abc/follow", 200, FOLLOW)
    contract.validate_response("POST", "/auth/sign-out", 204, None)
    contract.validate_response(
        "PUT",
        "/users/abc/follow",
        403,
        {"error": {"code": "blocked", "message": "No."}},
    )


@pytest.mark.parametrize(
    ("status", "body", "complaint"),
    [
        (200, {"user_id": "abc"}, "'you_follow' is a required property"),
        (200, {**FOLLOW, "extra": 1}, "Additional properties"),
        (200, {**FOLLOW, "user_id": "a b"}, "does not match"),
        (201, FOLLOW, "does not document"),
        (403, {"error": {"code": "no_invites_left", "message": "No."}}, "not documented"),
        (404, {"error": {"code": "member_not_found"}}, "'message' is a required property"),
        (400, {"message": "Missing Authentication Token"}, "does not match the contract"),
    ],
)
def test_validate_response_names_what_is_wrong(status: int, body: Any, complaint: str) -> None:
    with pytest.raises(AssertionError, match=complaint):
        contract.validate_response("PUT", "/users/{user_id}/follow", status, body)


def test_validate_response_checks_the_status_of_an_error_code() -> None:
    # `blocked` is documented for 403 only; the same body under 404 is refused.
    with pytest.raises(AssertionError, match="not documented"):
        contract.validate_response(
            "PUT", "/users/abc/follow", 404, {"error": {"code": "blocked", "message": "No."}}
        )


def test_validate_request_checks_the_body() -> None:
    contract.validate_request("POST", "/auth/sign-in", {"phone": "+14155550101"})
    contract.validate_request("PATCH", "/me", {"bio": None})
    for bad in ({}, {"phone": 1}, {"phone": "+1" * 20}, {"phone": "+1", "x": 1}):
        with pytest.raises(AssertionError, match="POST /auth/sign-in request"):
            contract.validate_request("POST", "/auth/sign-in", bad)
    with pytest.raises(AssertionError, match="takes no body"):
        contract.validate_request("GET", "/me", {"x": 1})
    with pytest.raises(AssertionError, match="pattern"):
        contract.validate_request("PATCH", "/me", {"photo_url": "http://example.com/a.png"})


def test_validate_messages_check_both_directions() -> None:
    contract.validate_client_message({"action": "ping", "ref": "r"})
    contract.validate_server_message({"type": "pong", "at": "2026-11-26T09:12:00+00:00"})
    contract.validate_server_message({"type": "error", "code": "unknown_action", "message": "?"})
    for bad in ({"action": "fly"}, {"action": "ping", "ref": "x" * 65}, {"ref": "r"}):
        with pytest.raises(AssertionError, match="client message"):
            contract.validate_client_message(bad)
    for bad in ({"type": "pong"}, {"type": "nope"}, {"type": "pong", "at": "yesterday"}):
        with pytest.raises(AssertionError, match="server message"):
            contract.validate_server_message(bad)
    with pytest.raises(AssertionError, match="x-error-codes"):
        contract.validate_server_message({"type": "error", "code": "made_up", "message": "?"})


def test_validate_messages_pick_the_schema_of_the_type_or_action() -> None:
    contract.validate_client_message({"action": "join_room", "room_id": "r1"})
    contract.validate_server_message({"type": "left", "room_id": "r1", "ref": "x"})
    with pytest.raises(AssertionError, match="server message 'left' does not match"):
        contract.validate_server_message({"type": "left"})
    with pytest.raises(AssertionError, match="documents no action 'fly'"):
        contract.validate_client_message({"action": "fly"})
    with pytest.raises(AssertionError, match="'user_id' is a required property"):
        contract.validate_client_message({"action": "invite_to_speak"})
    big = "x" * (Settings.max_signal_bytes + 1)
    with pytest.raises(AssertionError, match="is too long"):
        contract.validate_client_message({"action": "media_publish", "sdp": big})
    with pytest.raises(AssertionError, match="does not match"):
        contract.validate_client_message({"action": "media_answer", "handle": "01", "sdp": "v=0"})


def test_validate_reply_checks_the_reply_type_and_the_action_codes() -> None:
    contract.validate_reply("raise_hand", {"type": "ack", "action": "raise_hand"})
    refusal = {"type": "error", "code": "hands_closed", "message": "No."}
    contract.validate_reply("raise_hand", refusal)
    with pytest.raises(AssertionError, match="does not list"):
        contract.validate_reply("lower_hand", refusal)
    with pytest.raises(AssertionError, match="was answered 'left'"):
        contract.validate_reply("raise_hand", {"type": "left", "room_id": "r1"})
    assert contract.event_audience({"type": "hand_raised"}) == {"scope": "moderators"}
    assert contract.event_audience({"type": "member_left", "role": "listener"}) == {
        "scope": "count_only"
    }
    assert contract.event_audience({"type": "audience_count"}) is None


def test_validate_handshake_refusal_checks_code_and_status() -> None:
    refusal = {"error": {"code": "account_suspended", "message": "This account is suspended."}}
    contract.validate_handshake_refusal(403, refusal)
    with pytest.raises(AssertionError, match="documented for 401"):
        contract.validate_handshake_refusal(401, refusal)
