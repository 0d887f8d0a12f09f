"""Refuses requests over AWS's size limits before they reach the emulator, as AWS would.

moto does not check every limit AWS does: it applies a TransactWriteItems of 150 items, which
DynamoDB refuses (at most 100). Code tested only against moto could then fail on AWS for large
inputs alone (a room ending with a big stage, a long batch). So every botocore call made in a
process with this installed is checked against its service model's `max` on lists and maps,
plus the cross-table totals the models cannot state (DynamoDB's BatchGetItem: 100 keys,
BatchWriteItem: 25 requests, summed over tables), and answers ValidationException as AWS does.
Dev and test tooling, never deployed: installed with moto in tests/conftest.py and local/stack.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

# What DynamoDB's documentation states and its service model cannot (a map's values summed).
TOTALS = {
    ("dynamodb", "BatchGetItem"): ("Keys", 100),
    ("dynamodb", "BatchWriteItem"): (None, 25),
}
_installed = False


def violations(shape: Any, value: Any, path: str = "") -> Iterator[str]:
    """Each place in `value` (request parameters) longer than its shape's `max`."""
    if shape is None or value is None:
        return
    kind, limit = shape.type_name, shape.metadata.get("max")
    if kind in ("list", "map") and limit is not None and len(value) > limit:
        yield f"{path or 'the request'} has {len(value)} members, at most {limit} are allowed"
    if kind == "structure" and isinstance(value, dict):
        for name, member in shape.members.items():
            if name in value:
                yield from violations(member, value[name], f"{path}.{name}".lstrip("."))
    elif kind == "list" and isinstance(value, list):
        for index, item in enumerate(value):
            yield from violations(shape.member, item, f"{path}[{index}]")
    elif kind == "map" and isinstance(value, dict):
        for key, item in value.items():
            yield from violations(shape.value, item, f"{path}.{key}")


def total_violation(service: str, operation: str, params: dict[str, Any]) -> str | None:
    rule = TOTALS.get((service, operation))
    if rule is None:
        return None
    field, limit = rule
    tables = params.get("RequestItems") or {}
    total = sum(len(v[field] if field else v) for v in tables.values())
    if total > limit:
        return f"RequestItems holds {total} items over its tables, at most {limit} are allowed"
    return None


def check(client: Any, operation: str, params: dict[str, Any]) -> None:
    """Raise the ClientError AWS answers with when `params` break a size limit."""
    from botocore.exceptions import ClientError

    model = client.meta.service_model
    service = model.endpoint_prefix
    shape = model.operation_model(operation).input_shape
    problems = [*violations(shape, params), total_violation(service, operation, params)]
    problems = [p for p in problems if p]
    if problems:
        error = {"Code": "ValidationException", "Message": "; ".join(problems)}
        raise ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}, operation)


def install() -> None:
    """Check every botocore call of this process (once per process)."""
    global _installed
    if _installed:
        return
    import botocore.client

    original = botocore.client.BaseClient._make_api_call

    def checked(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        check(self, operation_name, api_params)
        return original(self, operation_name, api_params)

    botocore.client.BaseClient._make_api_call = checked  # type: ignore[method-assign]
    _installed = True
