"""aiohttp app: localstripe's routes plus Connect, idempotency, rate limits and test routes."""

from __future__ import annotations

import argparse
import asyncio
import html
import inspect
import ipaddress
import json
import logging
import re
import threading
import time
import urllib.parse
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

import localstripe.resources
from aiohttp import web
from localstripe.errors import UserError
from localstripe.resources import random_id, store

from . import webhooks
from .connect import Account, Dispute, Transfer, create_account_link, platform_account
from .errors import API_ERROR, IDEMPOTENCY_ERROR, ApiError, invalid, missing, no_such
from .payments import ConnectPaymentIntent, ConnectRefund
from .state import STATE, Endpoint, RequestInfo, SavedAnswer, Settings, current_request

with warnings.catch_warnings():
    # Importing localstripe.server registers its plain-function handlers on its own app, which
    # aiohttp deprecates; we only reuse those handlers (wrapped, see _as_coroutine).
    warnings.filterwarnings("ignore", "Bare functions are deprecated", DeprecationWarning)
    import localstripe.server as ls_server

log = logging.getLogger("local.stripe")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_patched = False


def install_patches() -> None:
    """The two narrow monkeypatches this emulator needs; idempotent.

    1. localstripe.resources.schedule_webhook: every event localstripe creates (customer.created,
       payment_intent.succeeded, ...) goes through this module-level name, and localstripe's own
       sender signs with the event's creation time, knows no Connect endpoints and never
       retries. Rebinding the name is the only hook that reaches those events.
    2. store.dump_to_disk (on the store instance only): localstripe pickles the whole store to
       the shared file /tmp/localstripe.pickle on every write. Two emulators (or a dev stack and
       a test run) would overwrite each other's state there; this emulator keeps state in memory.
    """
    global _patched
    if _patched:
        return
    localstripe.resources.schedule_webhook = webhooks.schedule_localstripe_event
    store.dump_to_disk = lambda: None
    _patched = True


def json_response(data: Any, status: int = 200, **kwargs: Any) -> web.Response:
    return web.json_response(
        data,
        status=status,
        dumps=lambda x: json.dumps(x, indent=2, sort_keys=True) + "\n",
        **kwargs,
    )


def error_response(
    status: int, message: str, type: str = "invalid_request_error", **fields: Any
) -> web.Response:
    return json_response({"error": {"message": message, "type": type, **fields}}, status=status)


def _is_api(request: web.Request) -> bool:
    return request.path.startswith("/v1/")


# Middlewares, outermost first --------------------------------------------------------------------


@web.middleware
async def request_context_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give each request a req_ id (Request-Id header, event.request) and read its headers."""
    info = RequestInfo(
        request_id="req_" + random_id(14),
        idempotency_key=request.headers.get("Idempotency-Key"),
        account=request.headers.get("Stripe-Account") or None,
        base_url=f"{request.scheme}://{request.host}",
        api=_is_api(request),
    )
    token = current_request.set(info)
    try:
        response = await handler(request)
    finally:
        current_request.reset(token)
    if not response.prepared:
        response.headers["Request-Id"] = info.request_id
    return response


@web.middleware
async def rate_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer 429 to the next N API requests after POST /_test/rate_limit?count=N."""
    if _is_api(request) and STATE.rate_limited_requests > 0:
        STATE.rate_limited_requests -= 1
        return error_response(
            429,
            "Request rate limit exceeded. Learn more about rate limits here "
            "https://stripe.com/docs/rate-limits.",
            code="rate_limit",
            doc_url="https://stripe.com/docs/error-codes/rate-limit",
        )
    return await handler(request)


def _canonical_params(body: bytes) -> str:
    """Request parameters in a form that ignores their order (Stripe compares parameters)."""
    text = body.decode("utf-8", errors="replace")
    try:
        return json.dumps(json.loads(text), sort_keys=True)
    except ValueError:
        return json.dumps(sorted(urllib.parse.parse_qsl(text, keep_blank_values=True)))


def _should_save(status: int) -> bool:
    # Stripe saves the answer once the endpoint began executing (successes, card declines and
    # 500s); requests refused before that (validation, 404, 409, 429) are not saved.
    return status < 400 or status == 402 or status >= 500


@web.middleware
async def idempotency_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Idempotency-Key on POST /v1/...: replay the saved answer, refuse other parameters."""
    key = request.headers.get("Idempotency-Key")
    if request.method != "POST" or not _is_api(request) or not key:
        return await handler(request)
    if len(key) > 255:
        return error_response(
            400,
            "Invalid Idempotency-Key: it must be at most 255 characters.",
            type=IDEMPOTENCY_ERROR,
        )
    api_key = ls_server.get_api_key(request) or ""
    scope = (api_key, request.headers.get("Stripe-Account") or "", key)
    params = _canonical_params(await request.read())
    STATE.prune_idempotency()
    saved = STATE.idempotency.get(scope)
    if saved is not None:
        if saved.method != request.method or saved.path != request.path:
            return error_response(
                400,
                "Keys for idempotent requests can only be used for the same endpoint they were "
                f"first used for ('{saved.method} {saved.path}'). Try using a key other than "
                f"'{key}' if you meant to execute a different request.",
                type=IDEMPOTENCY_ERROR,
            )
        if saved.params != params:
            return error_response(
                400,
                "Keys for idempotent requests can only be used with the same parameters they "
                f"were first used with. Try using a key other than '{key}' if you meant to "
                "execute a different request.",
                type=IDEMPOTENCY_ERROR,
            )
        if saved.status is None:
            return error_response(
                409,
                "There is currently another in-progress request using this Idempotent Key "
                "(that probably means you submitted twice, and the other request is still going "
                "through). Please retry this request later.",
                code="idempotency_key_in_use",
            )
        replay = web.Response(status=saved.status, body=saved.body, content_type=saved.content_type)
        replay.headers["Idempotent-Replayed"] = "true"
        replay.headers["Original-Request"] = saved.request_id
        return replay
    info = current_request.get()
    saved = SavedAnswer(
        method=request.method,
        path=request.path,
        params=params,
        created=time.time(),
        request_id=info.request_id if info else "",
    )
    STATE.idempotency[scope] = saved
    try:
        response = await handler(request)
    except BaseException:
        STATE.idempotency.pop(scope, None)
        raise
    body = getattr(response, "body", None)
    if (
        isinstance(response, web.Response)
        and isinstance(body, bytes)
        and _should_save(response.status)
    ):
        saved.status = response.status
        saved.body = body
        saved.content_type = response.content_type
    else:
        STATE.idempotency.pop(scope, None)
    return response


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn UserError/ApiError and crashes into Stripe's JSON error shape."""
    try:
        return await handler(request)
    except UserError as exc:
        error = exc.body.setdefault("error", {})
        if exc.code == 402 and error.get("type") == "invalid_request_error":
            error["type"] = "card_error"  # localstripe labels card declines as invalid requests
        return json_response(exc.body, status=exc.code)
    except web.HTTPException as exc:
        if _is_api(request) and exc.status in (404, 405):
            return error_response(
                404,
                f"Unrecognized request URL ({request.method}: {request.path}). Please see "
                "https://stripe.com/docs or we can help at https://support.stripe.com/.",
            )
        raise
    except Exception:
        log.exception("internal error on %s %s", request.method, request.path)
        return error_response(
            500, "An unknown error occurred (local.stripe crashed; see its log).", type=API_ERROR
        )


# What Stripe.js does from a browser with the publishable key: create a card PaymentMethod, and
# read or confirm a PaymentIntent with its client_secret (checked here to read, by the route to
# confirm).
_PUBLISHABLE_KEY_ROUTES = (
    re.compile(r"^/v1/payment_methods$"),
    re.compile(r"^/v1/payment_intents/\w+/confirm$"),
)
_PAYMENT_INTENT = re.compile(r"^/v1/payment_intents/(\w+)$")


async def _publishable_key_call(request: web.Request) -> bool:
    if request.method == "GET" and (match := _PAYMENT_INTENT.match(request.path)):
        intent = store.get("payment_intent:" + match.group(1))
        secret = request.query.get("client_secret")
        return (
            request.query.get("key", "").startswith("pk_")
            and intent is not None
            and secret == intent.client_secret
        )
    if request.method != "POST" or not any(r.match(request.path) for r in _PUBLISHABLE_KEY_ROUTES):
        return False
    data = await ls_server.get_post_data(request, remove_auth=False) or {}
    key = data.get("key")
    if not (isinstance(key, str) and key.startswith("pk_")):
        return False
    return not request.path.endswith("/confirm") or isinstance(data.get("client_secret"), str)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """localstripe's key check, except for the dev-only /_test/ routes (opened by browsers) and
    Stripe.js's publishable-key calls."""
    if request.path.startswith("/_test/") or await _publishable_key_call(request):
        return await handler(request)
    response: web.StreamResponse = await ls_server.auth_middleware(request, handler)
    return response


@web.middleware
async def stripe_account_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A Stripe-Account header must name a connected account of this platform."""
    account = request.headers.get("Stripe-Account")
    if account and _is_api(request) and store.get("account:" + account) is None:
        raise ApiError(
            403,
            f"The provided key does not have access to account '{account}' (or that account "
            "does not exist). Application access may have been revoked.",
            code="account_invalid",
        )
    return await handler(request)


# Route helpers ---------------------------------------------------------------------------------


async def _params(request: web.Request) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if request.method == "POST":
        data.update(await ls_server.get_post_data(request) or {})
    data.update(ls_server.unflatten_data(request.query) or {})
    return data


def api(func: Callable[..., Any], *, url: str | None = None) -> Handler:
    """Wrap `func(**path params, **request params)` returning a StripeObject (or a dict)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        data = await _params(request)
        private = [k for k in data if k.startswith("_")]
        if private:
            raise ApiError(400, f"Received unknown parameter: {private[0]}", param=private[0])
        expand = data.pop("expand", None)
        if url is not None:
            data["url"] = url
        data.update(request.match_info)
        signature = inspect.signature(func)
        try:
            signature.bind(**data)
        except TypeError:
            unknown = sorted(set(data) - set(signature.parameters))
            if unknown:
                raise ApiError(
                    400, f"Received unknown parameter: {unknown[0]}", param=unknown[0]
                ) from None
            named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
            required = [
                name
                for name, p in signature.parameters.items()
                if p.kind in named and p.default is p.empty and name not in data
            ]
            raise missing(required[0] if required else "?") from None
        result = func(**data)
        if isinstance(result, web.StreamResponse):
            return result
        if isinstance(result, dict):
            return json_response(result)
        if hasattr(result, "export") and not hasattr(result, "_export"):
            return json_response(result.export())
        return json_response(result._export(expand=expand))

    return handle


# /_config and /_test routes --------------------------------------------------------------------


async def config_webhook(request: web.Request) -> web.Response:
    """POST /_config/webhooks/{name}: url, secret, optional events[] and connect=true."""
    name = request.match_info["name"]
    data = await _params(request)
    url, secret = data.get("url"), data.get("secret")
    events = data.get("events")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise invalid("url")
    if not isinstance(secret, str) or not secret:
        raise missing("secret")
    if events is not None and not isinstance(events, list):
        raise invalid("events", "events must be a list (events[]=...)")
    connect = _truthy(data.get("connect", False))
    STATE.endpoints[name] = Endpoint(
        name=name, url=url, secret=secret, connect=connect, events=events
    )
    return json_response(_endpoint_export(STATE.endpoints[name]))


def _truthy(value: Any) -> bool:
    return localstripe.resources.try_convert_to_bool(value) is True


def _endpoint_export(endpoint: Endpoint) -> dict[str, Any]:
    return {
        "name": endpoint.name,
        "url": endpoint.url,
        "connect": endpoint.connect,
        "events": endpoint.events,
    }


async def list_webhooks(request: web.Request) -> web.Response:
    return json_response([_endpoint_export(e) for e in STATE.endpoints.values()])


async def delete_webhook(request: web.Request) -> web.Response:
    STATE.endpoints.pop(request.match_info["name"], None)
    return web.Response(status=204)


async def flush_data(request: web.Request) -> web.Response:
    """DELETE /_config/data: forget every object, key, endpoint and switch."""
    reset()
    return web.Response(status=204)


def reset() -> None:
    """Empty localstripe's store and this emulator's state (settings are kept)."""
    store.clear()
    STATE.reset()


def _int_param(data: dict[str, Any], name: str, default: int) -> int:
    value = localstripe.resources.try_convert_to_int(data.get(name, default))
    if not isinstance(value, int) or value < 0:
        raise invalid(name)
    return value


async def test_rate_limit(request: web.Request) -> web.Response:
    """POST /_test/rate_limit?count=N: the next N /v1 requests answer 429."""
    STATE.rate_limited_requests = _int_param(await _params(request), "count", 1)
    return json_response({"rate_limited_requests": STATE.rate_limited_requests})


async def test_fail_transfers(request: web.Request) -> web.Response:
    """POST /_test/transfers/fail?count=N&code=...: the next N POST /v1/transfers fail."""
    data = await _params(request)
    count = _int_param(data, "count", 1)
    code = str(data.get("code") or "balance_insufficient")
    STATE.transfer_failures = [code] * count
    return json_response({"failing_transfers": count, "code": code})


def _account_action(action: str) -> Callable[..., Any]:
    def run(id: str, **params: Any) -> Account:
        account = Account._api_retrieve(id)
        if action == "complete":
            account._complete_onboarding()
        elif action == "submit":
            account._submit_details()
        else:
            due = params.get("currently_due") or ["external_account", "individual.verification"]
            if not isinstance(due, list):
                due = [str(due)]
            account._restrict([str(d) for d in due])
        return account

    return run


def _open_dispute(id: str, amount: Any = None, reason: Any = None) -> Dispute:
    return Dispute._open(id, amount, reason)


def _close_dispute(id: str, status: Any = "lost") -> Dispute:
    return Dispute._api_retrieve(id)._close(str(status))


def _authenticate(id: str, outcome: Any = "success") -> ConnectPaymentIntent:
    """POST /_test/payment_intents/{id}/authenticate?outcome=success|failure (3DS done)."""
    pi = ConnectPaymentIntent._api_retrieve(id)
    if outcome not in ("success", "failure"):
        raise invalid("outcome")
    result: ConnectPaymentIntent = ConnectPaymentIntent._api_authenticate(
        id, client_secret=pi.client_secret, success=outcome == "success"
    )
    return result


def _resend_event(id: str) -> dict[str, Any]:
    count = webhooks.redeliver(id)
    if count < 0:
        raise no_such("event", id)
    return {"event": id, "endpoints": count}


async def list_deliveries(request: web.Request) -> web.Response:
    """GET /_test/webhook_deliveries[?event=evt_...]: every delivery attempt so far."""
    event = request.query.get("event")
    rows = [d.export() for d in STATE.deliveries if event is None or d.event_id == event]
    return json_response({"object": "list", "data": rows})


async def clear_deliveries(request: web.Request) -> web.Response:
    STATE.deliveries.clear()
    return web.Response(status=204)


async def forget_idempotency_keys(request: web.Request) -> web.Response:
    """DELETE /_test/idempotency_keys: as if 24 h had passed and Stripe pruned every key."""
    STATE.idempotency.clear()
    return web.Response(status=204)


_LINK_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Stripe Connect onboarding (local)</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
<h1>Onboarding for {account}</h1>
<p>Local stand-in for Stripe's hosted onboarding. Choose how this onboarding ends.</p>
<form method="post"><button name="action" value="complete">Finish onboarding</button>
 (charges and payouts enabled, nothing due)</form>
<form method="post"><button name="action" value="submit">Submit, pending verification</button>
 (details submitted, nothing enabled yet)</form>
<form method="post"><button name="action" value="leave">Leave without finishing</button>
 (back to return_url; nothing changes)</form>
<form method="post"><button name="action" value="refresh">Link expired</button>
 (goes to refresh_url)</form>
</body></html>
"""


def _usable_link(token: str) -> Any:
    link = STATE.account_links.get(token)
    if link is None:
        raise web.HTTPNotFound(text="unknown account link")
    return link


async def account_link_page(request: web.Request) -> web.StreamResponse:
    """GET /_test/account_links/{token}: the page an AccountLink url opens."""
    link = _usable_link(request.match_info["token"])
    if link.used or link.expires_at < time.time():
        raise web.HTTPSeeOther(link.refresh_url)
    return web.Response(
        text=_LINK_PAGE.format(account=html.escape(link.account)), content_type="text/html"
    )


async def account_link_action(request: web.Request) -> web.StreamResponse:
    """POST /_test/account_links/{token} action=complete|submit|leave|refresh."""
    link = _usable_link(request.match_info["token"])
    action = (await _params(request)).get("action", "complete")
    if link.used or link.expires_at < time.time() or action == "refresh":
        raise web.HTTPSeeOther(link.refresh_url)
    link.used = True
    account = Account._api_retrieve(link.account)
    if action == "complete":
        account._complete_onboarding()
    elif action == "submit":
        account._submit_details()
    raise web.HTTPSeeOther(link.return_url)


# App -----------------------------------------------------------------------------------------


def _own_routes() -> list[tuple[str, str, Handler]]:
    pi, refund = ConnectPaymentIntent, ConnectRefund
    return [
        # Connect accounts and onboarding
        ("POST", "/v1/accounts", api(Account._api_create)),
        ("GET", "/v1/accounts", api(Account._api_list_all, url="/v1/accounts")),
        ("GET", "/v1/accounts/{id}", api(Account._api_retrieve)),
        ("POST", "/v1/accounts/{id}", api(Account._api_update)),
        ("DELETE", "/v1/accounts/{id}", api(Account._api_delete)),
        ("GET", "/v1/account", api(lambda **_: platform_account())),
        ("POST", "/v1/account_links", api(create_account_link)),
        # Transfers and reversals
        ("POST", "/v1/transfers", api(Transfer._api_create)),
        ("GET", "/v1/transfers", api(Transfer._api_list_all, url="/v1/transfers")),
        ("GET", "/v1/transfers/{id}", api(Transfer._api_retrieve)),
        ("POST", "/v1/transfers/{id}", api(Transfer._api_update)),
        ("POST", "/v1/transfers/{id}/reversals", api(Transfer._api_create_reversal)),
        ("GET", "/v1/transfers/{id}/reversals", api(Transfer._api_list_reversals)),
        ("GET", "/v1/transfers/{transfer}/reversals/{id}", api(Transfer._api_retrieve_reversal)),
        ("POST", "/v1/transfers/{transfer}/reversals/{id}", api(Transfer._api_update_reversal)),
        # Disputes
        ("GET", "/v1/disputes", api(Dispute._api_list_all, url="/v1/disputes")),
        ("GET", "/v1/disputes/{id}", api(Dispute._api_retrieve)),
        ("POST", "/v1/disputes/{id}", api(Dispute._api_update)),
        ("POST", "/v1/disputes/{id}/close", api(Dispute._api_close)),
        # Replacements of localstripe routes
        ("POST", "/v1/payment_intents", api(pi._api_create)),
        ("POST", "/v1/payment_intents/{id}/confirm", api(pi._api_confirm_ext)),
        ("POST", "/v1/payment_intents/{id}/cancel", api(pi._api_cancel_ext)),
        ("POST", "/v1/refunds", api(refund._api_create)),
        ("GET", "/v1/refunds", api(refund._api_list_all, url="/v1/refunds")),
        ("POST", "/_config/webhooks/{name}", config_webhook),
        ("GET", "/_config/webhooks", list_webhooks),
        ("DELETE", "/_config/webhooks/{name}", delete_webhook),
        ("DELETE", "/_config/data", flush_data),
        # Dev-only test routes
        ("GET", "/_test/account_links/{token}", account_link_page),
        ("POST", "/_test/account_links/{token}", account_link_action),
        ("POST", "/_test/accounts/{id}/complete_onboarding", api(_account_action("complete"))),
        ("POST", "/_test/accounts/{id}/submit_details", api(_account_action("submit"))),
        ("POST", "/_test/accounts/{id}/restrict", api(_account_action("restrict"))),
        ("POST", "/_test/charges/{id}/dispute", api(_open_dispute)),
        ("POST", "/_test/disputes/{id}/close", api(_close_dispute)),
        ("POST", "/_test/payment_intents/{id}/authenticate", api(_authenticate)),
        ("POST", "/_test/transfers/fail", test_fail_transfers),
        ("POST", "/_test/rate_limit", test_rate_limit),
        ("POST", "/_test/events/{id}/resend", api(_resend_event)),
        ("GET", "/_test/webhook_deliveries", list_deliveries),
        ("DELETE", "/_test/webhook_deliveries", clear_deliveries),
        ("DELETE", "/_test/idempotency_keys", forget_idempotency_keys),
    ]


def _as_coroutine(handler: Callable[[web.Request], Any]) -> Handler:
    """localstripe's GET/DELETE handlers are plain functions, which aiohttp deprecates."""
    if inspect.iscoroutinefunction(handler):
        return handler

    async def call(request: web.Request) -> web.StreamResponse:
        response: web.StreamResponse = handler(request)
        return response

    return call


def build_app() -> web.Application:
    """A fresh aiohttp app: our routes first, then every localstripe route we do not replace."""
    install_patches()
    app = web.Application(
        middlewares=[
            request_context_middleware,
            rate_limit_middleware,
            idempotency_middleware,
            error_middleware,
            auth_middleware,
            stripe_account_middleware,
        ]
    )
    app.on_response_prepare.append(ls_server.add_cors_headers)
    own = _own_routes()
    taken: set[tuple[str, str]] = set()
    for method, path, handler in own:
        app.router.add_route(method, path, handler)
        taken.add((method, path))
    # localstripe builds its routes on its module-level app at import; reuse their handlers.
    for route in ls_server.app.router.routes():
        resource = route.resource
        if resource is None or route.method == "HEAD":
            continue
        if (route.method, resource.canonical) not in taken:
            app.router.add_route(route.method, resource.canonical, _as_coroutine(route.handler))
    app.on_shutdown.append(_cancel_deliveries)
    return app


async def _cancel_deliveries(app: web.Application) -> None:
    tasks = list(STATE.tasks)
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)


def _check_loopback(host: str) -> None:
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise ValueError(f"local.stripe only listens on loopback (127.0.0.1 or ::1), not {host!r}")


async def start(
    host: str = "127.0.0.1", port: int = 8420, settings: Settings | None = None
) -> web.AppRunner:
    """Start the emulator in the running loop; `runner.addresses[0][1]` is the bound port."""
    _check_loopback(host)
    if settings is not None:
        STATE.settings = settings
    runner = web.AppRunner(build_app(), access_log=logging.getLogger("local.stripe.access"))
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    log.info("local.stripe listening on http://%s:%d", host, bound_port(runner))
    return runner


def bound_port(runner: web.AppRunner) -> int:
    return int(runner.addresses[0][1])


def serve_in_thread(
    host: str = "127.0.0.1", port: int = 0, settings: Settings | None = None
) -> tuple[int, Callable[[], None]]:
    """Run the emulator in a daemon thread; return (port, stop). stop() is safe to call twice."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def boot() -> None:
        try:
            box["runner"] = await start(host, port, settings)
        except (OSError, ValueError, RuntimeError) as exc:  # re-raised in the caller's thread
            box["error"] = exc
        finally:
            ready.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(boot())
        if "runner" in box:
            loop.run_forever()
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    thread = threading.Thread(target=run, name="local.stripe", daemon=True)
    thread.start()
    ready.wait()
    if "error" in box:
        thread.join()
        raise box["error"]
    runner: web.AppRunner = box["runner"]
    stopped = threading.Event()

    def stop() -> None:
        if stopped.is_set():
            return
        stopped.set()
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)

    return bound_port(runner), stop


def _delays(text: str) -> tuple[float, ...]:
    return tuple(float(x) for x in text.split(",") if x.strip())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m local.stripe",
        description="localstripe with Stripe Connect, idempotency and test routes (dev only).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--api-version", default=Settings.api_version)
    parser.add_argument(
        "--webhook-delay",
        type=float,
        default=Settings.webhook_initial_delay,
        help="seconds before the first delivery attempt",
    )
    parser.add_argument(
        "--webhook-retry-delays",
        type=_delays,
        default="1,4,16",
        help="comma-separated pauses before each retry (default 1,4,16)",
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    try:
        _check_loopback(args.host)
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    settings = Settings(
        api_version=args.api_version,
        webhook_initial_delay=args.webhook_delay,
        webhook_retry_delays=args.webhook_retry_delays,
    )

    async def run() -> None:
        runner = await start(args.host, args.port, settings)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
