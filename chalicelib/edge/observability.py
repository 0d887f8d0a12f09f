"""Structured logs and metrics, wired once at the edge for every kind of invocation.

Traces come from Lambda's and API Gateway's active tracing (the template turns both on), not
from an SDK in the package: see "Tracing" in docs/architecture.md.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from chalice.app import Chalice, Request, WebsocketEvent

SERVICE = "salon"

# Loggers named salon.* propagate to this one and come out as JSON with the same keys.
logger = Logger(service=SERVICE, level=os.environ.get("POWERTOOLS_LOG_LEVEL", "INFO"))
metrics = Metrics(
    namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Salon"), service=SERVICE
)


def correlation_id(event: Any) -> str | None:
    if isinstance(event, WebsocketEvent):
        return str(event.connection_id)
    if isinstance(event, Request):
        request_id = event.context.get("requestId")
        return str(request_id) if request_id else None
    return None


def around(app: Chalice, event: Any, get_response: Callable[[Any], Any]) -> Any:
    context = getattr(app, "lambda_context", None)
    if context is not None:
        logger.append_keys(
            function_name=getattr(context, "function_name", None),
            function_request_id=getattr(context, "aws_request_id", None),
            cold_start=_cold_start(),
        )
    logger.set_correlation_id(correlation_id(event))
    try:
        return get_response(event)
    finally:
        if metrics.metric_set:
            metrics.flush_metrics()


_warm = False


def _cold_start() -> bool:
    global _warm
    cold, _warm = not _warm, True
    return cold


def count(name: str, value: float = 1, **dimensions: str) -> None:
    """One EMF metric, flushed with the invocation's others."""
    from aws_lambda_powertools.metrics import MetricUnit

    if dimensions:
        # Dimensions apply to the whole metric set; keep them few and low-cardinality.
        for key, dimension in dimensions.items():
            metrics.add_dimension(name=key, value=dimension)
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


@contextmanager
def counting(error: type[Exception], name: str) -> Iterator[None]:
    """Counts `name` each time the block raises `error`, which goes on to its usual answer."""
    try:
        yield
    except error:
        count(name)
        raise


def payout_run(report: dict[str, Any]) -> None:
    """A finished payout run's outcome, as metrics an operator can alarm on (a run that
    continues in another invocation reports when it is done)."""
    if report.get("status") != "done":
        return
    for key, name in (
        ("paid", "PayoutsPaid"),
        ("skipped", "PayoutsSkipped"),
        ("failed", "PayoutsFailed"),
    ):
        count(name, int(report.get(key, 0)))
    count("PayoutCents", int(report.get("total_cents", 0)))
