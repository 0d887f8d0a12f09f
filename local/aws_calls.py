"""Records every AWS call the app makes, tagged with the Lambda function making it, as the
IAM action and resource ARN that AWS would authorize (dev and test tooling, never deployed).

Each call is kept as {"function", "action", "resource", "call"}: "function" is the handler
(the attribute of app.py a Lambda runs: "app" for the REST API), or None outside any handler.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import functools
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ACCOUNT = "123456789012"

_current: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "salon_lambda_function", default=None
)
_lock = threading.Lock()
_records: list[dict[str, Any]] = []
_sink: Path | None = None
_installed = False
# Settings the code turns into an address: the template must give each function that reads one
# what it needs, and the address must be one the template defines.
WATCHED_SETTINGS = frozenset({"management_url", "timers_queue_url"})
# The id the @connections ARN carries when the endpoint is not execute-api's own host.
_local_api_id = "local"


def current_function() -> str | None:
    return _current.get()


def records() -> list[dict[str, Any]]:
    with _lock:
        return list(_records)


def take() -> list[dict[str, Any]]:
    with _lock:
        taken = list(_records)
        _records.clear()
        return taken


def install(sink: Path | None = None, local_api_id: str = "local") -> None:
    """Patch botocore, Chalice's handlers and thread pools, once per process. With `sink`,
    every record is also appended to that file as one JSON line (for a stack subprocess)."""
    global _installed, _sink, _local_api_id
    _sink, _local_api_id = sink, local_api_id
    if _installed:
        return
    _installed = True
    import botocore.client
    from chalice import app as chalice_app

    original_call = botocore.client.BaseClient._make_api_call

    def make_api_call(client: Any, operation: str, params: dict[str, Any]) -> Any:
        _record(client, operation, params)
        return original_call(client, operation, params)

    botocore.client.BaseClient._make_api_call = make_api_call

    chalice_app.Chalice.__call__ = _tagged(  # type: ignore[method-assign]
        chalice_app.Chalice.__call__, lambda _: "app"
    )
    for handler_class in (chalice_app.EventSourceHandler, chalice_app.WebsocketEventSourceHandler):
        handler_class.__call__ = _tagged(  # type: ignore[method-assign]
            handler_class.__call__, _handler_name
        )

    # Work a handler hands to a pool (parallel posts) is still that handler's.
    original_submit = concurrent.futures.ThreadPoolExecutor.submit

    def submit(pool: Any, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        context = contextvars.copy_context()
        return original_submit(pool, context.run, fn, *args, **kwargs)

    concurrent.futures.ThreadPoolExecutor.submit = submit  # type: ignore[method-assign]

    # The settings from which the code builds a URL: who reads them, from which template env.
    from chalicelib.config import Settings

    original_getattribute = Settings.__getattribute__

    def getattribute(settings: Any, name: str) -> Any:
        if name in WATCHED_SETTINGS:
            _append([{"function": _current.get(), "setting": name}])
        return original_getattribute(settings, name)

    Settings.__getattribute__ = getattribute  # type: ignore[method-assign]

    # A secret is a setting each function must be given: record which function reads which.
    from chalicelib.adapters import secrets

    original_secret = secrets.secret

    def secret(value: str, parameter: str, name: str) -> str:
        _append([{"function": _current.get(), "setting": name}])
        return original_secret(value, parameter, name)

    secrets.secret = secret


def _handler_name(handler: Any) -> str | None:
    import app as app_module

    for name, candidate in app_module.app.handler_map.items():
        if candidate is handler:
            return str(name)
    return None


def _tagged(call: Callable[..., Any], name_of: Callable[[Any], str | None]) -> Any:
    @functools.wraps(call)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        token = _current.set(name_of(self) or _current.get())
        try:
            return call(self, *args, **kwargs)
        finally:
            _current.reset(token)

    return wrapper


def _record(client: Any, operation: str, params: dict[str, Any]) -> None:
    service = client.meta.service_model.signing_name or client.meta.service_model.service_name
    region = client.meta.region_name or "us-east-1"
    function = _current.get()
    entries = []
    for action, resource in authorizations(
        client.meta.service_model.service_name,
        service,
        operation,
        params,
        region,
        client.meta.endpoint_url,
    ):
        entry = {
            "function": function,
            "action": action,
            "resource": resource,
            "call": f"{client.meta.service_model.service_name}.{operation}",
        }
        entries.append(entry)
    _append(entries)


def _append(entries: list[dict[str, Any]]) -> None:
    if not entries:
        return
    with _lock:
        _records.extend(entries)
        if _sink is not None:
            with _sink.open("a") as out:
                out.write("".join(json.dumps(e) + "\n" for e in entries))


def read_sink(path: Path, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """The records a subprocess appended to `path` after byte `offset`, and the new offset."""
    if not path.exists():
        return [], offset
    with path.open("rb") as source:
        source.seek(offset)
        data = source.read()
    complete = data[: data.rfind(b"\n") + 1]
    found = [json.loads(line) for line in complete.decode().splitlines() if line]
    return found, offset + len(complete)


# --- IAM's view of a call ------------------------------------------------------------------

_TRANSACT_WRITE = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}
_CONNECTION_METHODS = {
    "PostToConnection": "POST",
    "GetConnection": "GET",
    "DeleteConnection": "DELETE",
}


def authorizations(
    service_name: str,
    signing_name: str,
    operation: str,
    params: dict[str, Any],
    region: str,
    endpoint_url: str,
) -> Iterator[tuple[str, str]]:
    """The (action, resource ARN) pairs IAM checks for one API call."""
    if service_name == "dynamodb":
        yield from _dynamodb(operation, params, region)
    elif service_name == "ssm":
        names = params.get("Names") or [params.get("Name") or params.get("Path", "")]
        for name in names:
            yield f"ssm:{operation}", f"arn:aws:ssm:{region}:{ACCOUNT}:parameter/{name.lstrip('/')}"
    elif service_name == "sqs" and "QueueUrl" in params:
        queue = str(params["QueueUrl"]).rstrip("/").rsplit("/", 1)[-1]
        # SQS authorizes SendMessageBatch, DeleteMessageBatch and ChangeMessageVisibilityBatch
        # as their single forms (no policy can name the batch actions).
        yield f"sqs:{operation.removesuffix('Batch')}", f"arn:aws:sqs:{region}:{ACCOUNT}:{queue}"
    elif service_name == "sns" and operation == "Publish":
        yield "sns:Publish", str(params.get("TopicArn") or params.get("TargetArn") or "*")
    elif service_name == "sns" and "PlatformApplicationArn" in params:
        yield f"sns:{operation}", str(params["PlatformApplicationArn"])
    elif service_name == "sns" and "EndpointArn" in params:
        yield f"sns:{operation}", str(params["EndpointArn"])
    elif service_name == "apigatewaymanagementapi":
        url = urlsplit(endpoint_url)
        host = url.hostname or ""
        api_id = host.split(".", 1)[0] if ".execute-api." in host else _local_api_id
        stage = url.path.strip("/")
        method = _CONNECTION_METHODS.get(operation, operation)
        yield (
            "execute-api:ManageConnections",
            f"arn:aws:execute-api:{region}:{ACCOUNT}:{api_id}/{stage}/{method}"
            f"/@connections/{params.get('ConnectionId', '')}",
        )
    elif service_name == "s3" and "Key" in params:
        # HeadObject is authorized as GetObject (there is no s3:HeadObject action), and its
        # answer for a missing key is 404 only with ListBucket on the bucket (403 otherwise).
        action = {"HeadObject": "GetObject"}.get(operation, operation)
        yield f"s3:{action}", f"arn:aws:s3:::{params['Bucket']}/{params['Key']}"
        if operation == "HeadObject":
            yield "s3:ListBucket", f"arn:aws:s3:::{params['Bucket']}"
    elif service_name == "ivs-realtime":
        yield from _ivs_realtime(operation, params, region)
    else:
        yield f"{signing_name}:{operation}", "*"


def _ivs_realtime(operation: str, params: dict[str, Any], region: str) -> Iterator[tuple[str, str]]:
    """Every stage call is authorized on its stage; a new stage has no id yet (stage/*), and
    creating it with tags is also a TagResource on it."""
    stage = params.get("stageArn") or params.get("arn") or f"arn:aws:ivs:{region}:{ACCOUNT}:stage/*"
    yield f"ivs:{operation}", str(stage)
    if operation == "CreateStage" and params.get("tags"):
        yield "ivs:TagResource", str(stage)


def _table_arn(region: str, table: str, index: str | None = None) -> str:
    arn = f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{table}"
    return f"{arn}/index/{index}" if index else arn


def _dynamodb(operation: str, params: dict[str, Any], region: str) -> Iterator[tuple[str, str]]:
    if operation == "TransactWriteItems":
        for item in params["TransactItems"]:
            ((kind, body),) = item.items()
            yield f"dynamodb:{_TRANSACT_WRITE[kind]}", _table_arn(region, body["TableName"])
    elif operation == "TransactGetItems":
        for item in params["TransactItems"]:
            yield "dynamodb:GetItem", _table_arn(region, item["Get"]["TableName"])
    elif operation in ("BatchGetItem", "BatchWriteItem"):
        for table in params["RequestItems"]:
            yield f"dynamodb:{operation}", _table_arn(region, table)
    elif "TableName" in params:
        yield (
            f"dynamodb:{operation}",
            _table_arn(region, params["TableName"], params.get("IndexName")),
        )
    else:
        yield f"dynamodb:{operation}", "*"
