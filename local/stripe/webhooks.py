"""Events and their signed, retried delivery to platform and Connect webhook endpoints."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from typing import Any

import aiohttp
from localstripe.resources import Event, StripeObject, store

from .state import MAX_DELIVERY_LOG, STATE, Delivery, Endpoint, current_account, current_request

log = logging.getLogger("local.stripe.webhooks")

USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    """The Stripe-Signature header value: HMAC-SHA256 of "{t}.{body}" with the endpoint secret."""
    signed = b"%d." % timestamp + payload
    digest = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def _matching_endpoints(event_type: str, account: str | None) -> list[Endpoint]:
    return [e for e in STATE.endpoints.values() if e.wants(event_type, account is not None)]


def finish_event(event: Event, account: str | None) -> None:
    """Add what localstripe's Event lacks: api_version, request, pending_webhooks, account."""
    info = current_request.get()
    if info is not None and not info.api:
        info = None  # caused by a test route, like Stripe's own automatic events
    event.api_version = STATE.settings.api_version
    event.request = {
        "id": info.request_id if info else None,
        "idempotency_key": info.idempotency_key if info else None,
    }
    if account is not None:
        event.account = account
    event.pending_webhooks = len(_matching_endpoints(event.type, account))


def emit(
    type: str,
    obj: StripeObject,
    *,
    account: str | None = None,
    previous_attributes: dict[str, Any] | None = None,
) -> Event:
    """Create, store and deliver an event about `obj` (a snapshot taken now).

    `account` marks a Connect event (delivered to Connect endpoints only). When it is not given,
    the account named by the current request's Stripe-Account header is used, as in Stripe.
    """
    event = Event(type, obj)
    if previous_attributes:
        event.data["previous_attributes"] = previous_attributes
    finish_event(event, account if account is not None else current_account())
    dispatch(event)
    return event


def schedule_localstripe_event(event: Event) -> None:
    """Replacement for localstripe.resources.schedule_webhook (see server.install_patches)."""
    finish_event(event, current_account())
    dispatch(event)


def dispatch(event: Event, only: list[Endpoint] | None = None) -> int:
    """Start delivering `event` to every endpoint that wants it; return how many there are."""
    account = getattr(event, "account", None)
    endpoints = only if only is not None else _matching_endpoints(event.type, account)
    if not endpoints:
        return 0
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        log.warning("no running loop: event %s (%s) not delivered", event.id, event.type)
        return 0
    payload = json.dumps(event._export(), indent=2, sort_keys=True).encode("utf-8")
    for endpoint in endpoints:
        task = loop.create_task(_deliver(endpoint, event.id, event.type, payload))
        STATE.tasks.add(task)
        task.add_done_callback(STATE.tasks.discard)
    return len(endpoints)


def redeliver(event_id: str) -> int:
    """Send a stored event again to every endpoint that wants it (Stripe's "Resend")."""
    event = store.get("event:" + event_id)
    if event is None:
        return -1
    return dispatch(event)


def _record(delivery: Delivery) -> None:
    STATE.deliveries.append(delivery)
    if len(STATE.deliveries) > MAX_DELIVERY_LOG:
        del STATE.deliveries[: len(STATE.deliveries) - MAX_DELIVERY_LOG]


async def _deliver(endpoint: Endpoint, event_id: str, event_type: str, payload: bytes) -> None:
    settings = STATE.settings
    delays = (settings.webhook_initial_delay, *settings.webhook_retry_delays)
    timeout = aiohttp.ClientTimeout(total=settings.webhook_timeout)
    for attempt, delay in enumerate(delays, start=1):
        if delay > 0:
            await asyncio.sleep(delay)
        # Signed at send time, like Stripe: each retry carries a fresh timestamp, so a receiver's
        # 300 s tolerance applies to the attempt, not to the event's age.
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": USER_AGENT,
            "Stripe-Signature": sign(payload, endpoint.secret, int(time.time())),
        }
        status: int | None = None
        error: str | None = None
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session:
                async with session.post(endpoint.url, data=payload, headers=headers) as response:
                    status = response.status
                    await response.read()
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        _record(
            Delivery(
                event_id=event_id,
                event_type=event_type,
                endpoint=endpoint.name,
                url=endpoint.url,
                attempt=attempt,
                status=status,
                error=error,
                at=time.time(),
            )
        )
        if status is not None and 200 <= status < 300:
            log.info("event %s (%s) delivered to %s", event_id, event_type, endpoint.name)
            return
        log.info(
            "event %s (%s) to %s failed (attempt %d): %s",
            event_id,
            event_type,
            endpoint.name,
            attempt,
            error or status,
        )
    log.warning("event %s (%s) to %s: giving up", event_id, event_type, endpoint.name)
