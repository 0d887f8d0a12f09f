"""HTTP plumbing: routes whose errors become JSON, request bodies, and who is asking."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from chalice.app import Chalice, Request, Response

from chalicelib.domain.errors import NotAuthenticatedError, SalonError
from chalicelib.edge.errors import error_payload, http_status, internal_payload
from chalicelib.edge.schemas import NoSuchPathError
from chalicelib.edge.validation import Field, check_text, is_text, parse_json_object, validate

logger = logging.getLogger("salon.http")

View = TypeVar("View", bound=Callable[..., Any])

ACCEPTED_CONTENT_TYPES = ["application/json", "text/plain", "application/x-www-form-urlencoded"]
JSON_HEADERS: dict[str, str | list[str]] = {"Content-Type": "application/json"}


def error_response(error: SalonError) -> Response:
    return Response(
        body={"error": error_payload(error)}, status_code=http_status(error), headers=JSON_HEADERS
    )


def _map_errors(view: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            # Path parameters are ids and names: one that is not whole text names nothing.
            if any(not is_text(value) for value in kwargs.values()):
                raise NoSuchPathError()
            return view(*args, **kwargs)
        except SalonError as error:
            return error_response(error)
        except Exception:
            logger.exception("request failed")
            return Response(
                body={"error": internal_payload()}, status_code=500, headers=JSON_HEADERS
            )

    return wrapper


def router(app: Chalice) -> Callable[..., Callable[[View], View]]:
    """`app.route`, with every error turned into a JSON body with a stable code."""

    def route(path: str, **options: Any) -> Callable[[View], View]:
        # Bodies are parsed as JSON whatever the client declared, so that a missing or wrong
        # Content-Type gets Salon's own clear error rather than Chalice's 415.
        options.setdefault("content_types", ACCEPTED_CONTENT_TYPES)

        def register(view: View) -> View:
            app.route(path, **options)(_map_errors(view))
            return view

        return register

    return route


def body(
    request: Request, fields: Sequence[Field], *, nullable: Sequence[str] = ()
) -> dict[str, Any]:
    """The request's JSON object, checked against the declared fields; a `nullable` field sent
    as null is kept as None (it means "clear it")."""
    document = parse_json_object(request.raw_body)
    clean = validate(document, fields)
    return clean | {n: None for n in nullable if n in document and document[n] is None}


def query(request: Request, fields: Sequence[Field]) -> dict[str, Any]:
    params: Mapping[str, str] = request.query_params or {}
    for name, value in params.items():
        check_text(name, "")
        check_text(value, name)
    typed: dict[str, Any] = {}
    for f in fields:
        if f.name in params and f.type is int:
            try:
                typed[f.name] = int(params[f.name])
            except ValueError:
                typed[f.name] = params[f.name]  # validate() names the field and the problem
        elif f.name in params:
            typed[f.name] = params[f.name]
    return validate({**params, **typed}, fields)


def bearer_token(request: Request) -> str:
    header = str(request.headers.get("authorization", ""))
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticatedError("Send 'Authorization: Bearer <access token>'.")
    return token.strip()


def source_ip(request: Request) -> str:
    identity = request.context.get("identity") or {}
    return str(identity.get("sourceIp") or "unknown")
