"""Dev-only local emulator of an API Gateway WebSocket API and its @connections API."""

import asyncio
import base64
import logging
import secrets
import string
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web

__all__ = ["Invoke", "LocalWebSocketGateway"]

Invoke = Callable[[str, dict[str, Any]], dict[str, Any] | None]
"""(route_key, event) -> Lambda proxy response dict (or None), called in a worker thread."""

logger = logging.getLogger("salon.local.gateway")

CONNECT = "$connect"
DISCONNECT = "$disconnect"
DEFAULT = "$default"

# Close codes and the reasons API Gateway reports for them in the $disconnect event.
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_NO_STATUS = 1005
CLOSE_ABNORMAL = 1006
CLOSE_TOO_BIG = 1009
_REASONS: dict[int, str] = {
    CLOSE_NORMAL: "Connection Closed Normally",
    CLOSE_GOING_AWAY: "Going away",
    CLOSE_NO_STATUS: "No status code",
    CLOSE_ABNORMAL: "Connection Closed Abnormally",
    CLOSE_TOO_BIG: "Message too big",
}

_ID_ALPHABET = string.ascii_letters + string.digits
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# How long stop() waits for the $disconnect invocations of the sockets it closes.
_STOP_GRACE_S = 10.0


def _new_id() -> str:
    """An id shaped like API Gateway's connection/request ids: 15 chars then '='."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(15)) + "="


def _clf_time(epoch_s: float) -> str:
    """Format like API Gateway's requestTime: 13/Dec/2020:10:17:47 +0000."""
    t = time.gmtime(epoch_s)
    return (
        f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:"
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"
    )


def _iso8601(epoch_s: float) -> str:
    return (
        datetime.fromtimestamp(epoch_s, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def _single_and_multi(
    items: Iterable[tuple[str, str]],
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Split (name, value) pairs the way API Gateway does: last value wins, plus all values."""
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in items:
        single[name] = value
        multi.setdefault(name, []).append(value)
    return single, multi


def _header(response: Mapping[str, Any], name: str) -> str | None:
    """A header from a Lambda proxy response (headers or multiValueHeaders), case-insensitive."""
    wanted = name.lower()
    for key, value in (response.get("headers") or {}).items():
        if key.lower() == wanted:
            return str(value)
    for key, values in (response.get("multiValueHeaders") or {}).items():
        if key.lower() == wanted and values:
            return str(values[0])
    return None


def _error(status: int, error_type: str, message: str | None) -> web.Response:
    """An error the boto3 rest-json parser maps to the modeled exception `error_type`."""
    return web.json_response(
        {"message": message}, status=status, headers={"x-amzn-ErrorType": error_type}
    )


def _gone() -> web.Response:
    return _error(410, "GoneException", None)


@dataclass(eq=False)
class _Connection:
    connection_id: str
    ws: web.WebSocketResponse
    source_ip: str
    user_agent: str | None
    connected_at: float  # epoch seconds
    last_active_at: float  # epoch seconds, last frame from the client
    last_active_mono: float  # time.monotonic() of the same
    expires_mono: float  # time.monotonic() at which the maximum duration is reached
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    close_code: int | None = None
    close_reason: str | None = None

    def touch(self) -> None:
        self.last_active_at = time.time()
        self.last_active_mono = time.monotonic()


class LocalWebSocketGateway:
    """Serves a WebSocket API and its @connections management API on one local port.

    Every connection's lifecycle is handed to `invoke` as API Gateway Lambda proxy events
    (`$connect`, `$default`, `$disconnect`); `invoke` runs in a thread pool so it may call
    back into the management API (boto3 `apigatewaymanagementapi` at `management_url`).
    """

    def __init__(
        self,
        invoke: Invoke,
        *,
        host: str = "127.0.0.1",
        port: int = 8001,
        stage: str = "dev",
        api_id: str = "local",
        idle_timeout_s: float = 600.0,
        max_connection_s: float = 7200.0,
        max_message_bytes: int = 128 * 1024,
        workers: int = 32,
    ) -> None:
        if idle_timeout_s <= 0 or max_connection_s <= 0:
            raise ValueError("timeouts must be positive")
        if max_message_bytes <= 0 or workers <= 0:
            raise ValueError("max_message_bytes and workers must be positive")
        self._invoke = invoke
        self._host = host
        self._port = port
        self._stage = stage
        self._api_id = api_id
        self._idle_timeout_s = idle_timeout_s
        self._max_connection_s = max_connection_s
        self._max_message_bytes = max_message_bytes
        self._workers = workers
        self._connections: dict[str, _Connection] = {}
        self._in_flight: set[asyncio.Future[None]] = set()
        self._executor: ThreadPoolExecutor | None = None
        self._runner: web.AppRunner | None = None
        self._stopping = False

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> int:
        """Bind the host and port (0 picks a free port) and return the actual port."""
        if self._runner is not None:
            raise RuntimeError("gateway already started")
        self._stopping = False
        self._executor = ThreadPoolExecutor(
            max_workers=self._workers, thread_name_prefix="local-gateway"
        )
        app = web.Application()
        stage = self._stage
        connections = "/@connections/{connection_id}"
        # Only under the stage, as on AWS: a post to another stage's @connections is a 404.
        app.router.add_post(f"/{stage}" + connections, self._post_to_connection)
        app.router.add_get(f"/{stage}" + connections, self._get_connection)
        app.router.add_delete(f"/{stage}" + connections, self._delete_connection)
        for path in ("/", f"/{stage}", f"/{stage}/"):
            app.router.add_get(path, self._websocket)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            self._executor.shutdown(wait=False)
            self._executor = None
            raise
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        logger.info("local WebSocket gateway listening on %s", self.websocket_url)
        return self._port

    async def stop(self) -> None:
        """Close every socket (each gets its $disconnect), then the server and the pool."""
        if self._runner is None:
            return
        self._stopping = True
        conns = list(self._connections.values())
        await asyncio.gather(
            *(self._close(c, CLOSE_GOING_AWAY, _REASONS[CLOSE_GOING_AWAY]) for c in conns),
            return_exceptions=True,
        )
        # Wait for the connection handlers (and any $connect still running) to finish,
        # so every $disconnect has been invoked before the pool goes away.
        pending = [f for f in self._in_flight if not f.done()]
        if pending:
            _, still = await asyncio.wait(pending, timeout=_STOP_GRACE_S)
            if still:
                logger.warning("%d connection handler(s) did not finish in time", len(still))
        runner, self._runner = self._runner, None
        await runner.cleanup()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        logger.info("local WebSocket gateway stopped")

    @property
    def port(self) -> int:
        return self._port

    @property
    def management_url(self) -> str:
        """The endpoint_url for boto3's `apigatewaymanagementapi` client."""
        return f"http://{self._netloc}/{self._stage}"

    @property
    def websocket_url(self) -> str:
        return f"ws://{self._netloc}/{self._stage}"

    @property
    def _netloc(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"{host}:{self._port}"

    # ------------------------------------------------------------------ invoking

    async def _call(self, route_key: str, event: dict[str, Any]) -> dict[str, Any] | None:
        if self._executor is None:
            raise RuntimeError("gateway is not running")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._invoke, route_key, event)

    def _request_context(
        self,
        route_key: str,
        event_type: str,
        connection_id: str,
        connected_at: float,
        source_ip: str,
        user_agent: str | None,
    ) -> dict[str, Any]:
        now = time.time()
        request_id = _new_id()
        return {
            "routeKey": route_key,
            "messageId": None,  # set for MESSAGE events
            "eventType": event_type,
            "extendedRequestId": request_id,
            "requestTime": _clf_time(now),
            "messageDirection": "IN",
            "stage": self._stage,
            "connectedAt": int(connected_at * 1000),
            "requestTimeEpoch": int(now * 1000),
            "identity": {
                "accessKey": None,
                "accountId": None,
                "caller": None,
                "cognitoAuthenticationProvider": None,
                "cognitoAuthenticationType": None,
                "cognitoIdentityId": None,
                "cognitoIdentityPoolId": None,
                "principalOrgId": None,
                "sourceIp": source_ip,
                "user": None,
                "userAgent": user_agent,
                "userArn": None,
            },
            "requestId": request_id,
            "domainName": self._netloc,
            "connectionId": connection_id,
            "apiId": self._api_id,
        }

    def _connect_event(
        self, request: web.Request, connection_id: str, connected_at: float, source_ip: str
    ) -> dict[str, Any]:
        headers, multi_headers = _single_and_multi(request.headers.items())
        query, multi_query = _single_and_multi(request.query.items())
        context = self._request_context(
            CONNECT,
            "CONNECT",
            connection_id,
            connected_at,
            source_ip,
            request.headers.get("User-Agent"),
        )
        return {
            "headers": headers,
            "multiValueHeaders": multi_headers,
            "queryStringParameters": query or None,
            "multiValueQueryStringParameters": multi_query or None,
            "requestContext": context,
            "isBase64Encoded": False,
        }

    def _message_event(self, conn: _Connection, data: str | bytes) -> dict[str, Any]:
        context = self._request_context(
            DEFAULT,
            "MESSAGE",
            conn.connection_id,
            conn.connected_at,
            conn.source_ip,
            conn.user_agent,
        )
        context["messageId"] = _new_id()
        if isinstance(data, bytes):
            return {
                "requestContext": context,
                "body": base64.b64encode(data).decode("ascii"),
                "isBase64Encoded": True,
            }
        return {"requestContext": context, "body": data, "isBase64Encoded": False}

    def _disconnect_event(
        self,
        connection_id: str,
        connected_at: float,
        source_ip: str,
        user_agent: str | None,
        code: int,
        reason: str,
    ) -> dict[str, Any]:
        context = self._request_context(
            DISCONNECT, "DISCONNECT", connection_id, connected_at, source_ip, user_agent
        )
        context["disconnectStatusCode"] = code
        context["disconnectReason"] = reason
        # API Gateway sends these (mostly empty) headers with $disconnect.
        headers = {"Host": self._netloc, "x-api-key": "", "X-Forwarded-For": "", "x-restapi": ""}
        return {
            "headers": headers,
            "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "requestContext": context,
            "isBase64Encoded": False,
        }

    async def _invoke_disconnect(
        self,
        connection_id: str,
        connected_at: float,
        source_ip: str,
        user_agent: str | None,
        code: int,
        reason: str,
    ) -> None:
        event = self._disconnect_event(
            connection_id, connected_at, source_ip, user_agent, code, reason
        )
        try:
            await self._call(DISCONNECT, event)
        except Exception:
            logger.exception("%s handler failed for connection %s", DISCONNECT, connection_id)

    # ------------------------------------------------------------------ WebSocket side

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        # stop() waits on this until the handler (and its $disconnect) is done.
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._in_flight.add(done)
        try:
            return await self._serve_websocket(request)
        finally:
            self._in_flight.discard(done)
            done.set_result(None)

    async def _serve_websocket(self, request: web.Request) -> web.StreamResponse:
        probe = web.WebSocketResponse()
        if not probe.can_prepare(request).ok:
            return web.Response(
                status=426, text="Upgrade Required", headers={"Upgrade": "websocket"}
            )
        if self._stopping:
            return web.json_response({"message": "Service Unavailable"}, status=503)

        connection_id = _new_id()
        connected_at = time.time()
        source_ip = request.remote or ""
        user_agent = request.headers.get("User-Agent")
        event = self._connect_event(request, connection_id, connected_at, source_ip)
        try:
            response = await self._call(CONNECT, event)
        except Exception:
            logger.exception("%s handler failed for connection %s", CONNECT, connection_id)
            return web.json_response({"message": "Internal server error"}, status=500)
        response = response or {}
        status = int(response.get("statusCode") or 200)
        if not 200 <= status < 300:
            logger.info("connection %s rejected by %s with %d", connection_id, CONNECT, status)
            return self._rejection(status, response)

        protocol = _header(response, "Sec-WebSocket-Protocol")
        ws = web.WebSocketResponse(
            autoping=False,  # pings reset the idle timer, so see them here
            compress=False,
            max_msg_size=self._max_message_bytes,
            protocols=(protocol,) if protocol else (),
            timeout=5.0,
        )
        try:
            if self._stopping:
                raise ConnectionAbortedError("gateway stopping")
            await ws.prepare(request)
        except (ConnectionError, RuntimeError) as exc:
            # $connect succeeded, so the app may have stored the connection: tell it.
            logger.info("connection %s lost during the handshake (%s)", connection_id, exc)
            await self._invoke_disconnect(
                connection_id,
                connected_at,
                source_ip,
                user_agent,
                CLOSE_ABNORMAL,
                _REASONS[CLOSE_ABNORMAL],
            )
            return ws if ws.prepared else web.Response(status=503)

        now_mono = time.monotonic()
        conn = _Connection(
            connection_id=connection_id,
            ws=ws,
            source_ip=source_ip,
            user_agent=user_agent,
            connected_at=connected_at,
            last_active_at=time.time(),
            last_active_mono=now_mono,
            expires_mono=now_mono + self._max_connection_s,
        )
        self._connections[connection_id] = conn
        logger.info("connection %s opened from %s", connection_id, source_ip)
        try:
            await self._receive_loop(conn)
        finally:
            self._connections.pop(connection_id, None)
            if not ws.closed:
                try:
                    await ws.close(code=conn.close_code or CLOSE_GOING_AWAY)
                except (ConnectionError, RuntimeError):  # the transport is already gone
                    logger.debug("close of %s failed", connection_id, exc_info=True)
            code = conn.close_code or CLOSE_ABNORMAL
            reason = conn.close_reason if conn.close_reason is not None else _REASONS.get(code, "")
            logger.info("connection %s closed (%d %s)", connection_id, code, reason)
            await self._invoke_disconnect(
                connection_id, connected_at, source_ip, user_agent, code, reason
            )
        return ws

    @staticmethod
    def _rejection(status: int, response: Mapping[str, Any]) -> web.Response:
        body = response.get("body")
        if body is None or body == "":
            return web.Response(status=status)
        if response.get("isBase64Encoded"):
            raw = base64.b64decode(str(body))
        else:
            raw = str(body).encode("utf-8")
        content_type = _header(response, "Content-Type")
        headers = {"Content-Type": content_type} if content_type else None
        return web.Response(status=status, body=raw, headers=headers)

    async def _receive_loop(self, conn: _Connection) -> None:
        ws = conn.ws
        while True:
            now = time.monotonic()
            idle_deadline = conn.last_active_mono + self._idle_timeout_s
            if now >= conn.expires_mono or now >= idle_deadline:
                await self._close(conn, CLOSE_GOING_AWAY, _REASONS[CLOSE_GOING_AWAY])
                return
            try:
                msg = await ws.receive(timeout=min(idle_deadline, conn.expires_mono) - now)
            except TimeoutError:
                continue  # the deadlines are checked at the top of the loop

            if msg.type is WSMsgType.TEXT:
                conn.touch()
                await self._handle_message(conn, msg.data)
            elif msg.type is WSMsgType.BINARY:
                conn.touch()
                await self._handle_message(conn, msg.data)
            elif msg.type is WSMsgType.PING:
                conn.touch()
                try:
                    await ws.pong(msg.data)
                except ConnectionError:
                    pass
            elif msg.type is WSMsgType.PONG:
                conn.touch()
            elif msg.type is WSMsgType.CLOSE:
                # Client-initiated close; aiohttp has already answered it.
                if conn.close_code is None:
                    code = int(msg.data) or CLOSE_NO_STATUS
                    conn.close_code = code
                    conn.close_reason = msg.extra or _REASONS.get(code, "")
                return
            elif msg.type is WSMsgType.ERROR:
                # e.g. a message over max_msg_size: aiohttp closed the socket with exc.code.
                if conn.close_code is None:
                    code = getattr(msg.data, "code", None) or CLOSE_ABNORMAL
                    conn.close_code = int(code)
                    conn.close_reason = _REASONS.get(code, "")
                return
            else:  # CLOSING / CLOSED: closed by us (_close) or the transport dropped
                if conn.close_code is None:
                    conn.close_code = CLOSE_ABNORMAL
                    conn.close_reason = _REASONS[CLOSE_ABNORMAL]
                return

    async def _handle_message(self, conn: _Connection, data: str | bytes) -> None:
        try:
            await self._call(DEFAULT, self._message_event(conn, data))
        except Exception:
            # API Gateway would log an integration error and send nothing to the client.
            # Never log the message itself: it may carry SDP or ICE candidates.
            logger.exception("%s handler failed for connection %s", DEFAULT, conn.connection_id)

    async def _close(self, conn: _Connection, code: int, reason: str) -> None:
        """Server-initiated close; the connection's own handler then invokes $disconnect."""
        if conn.close_code is None:
            conn.close_code = code
            conn.close_reason = reason
        self._connections.pop(conn.connection_id, None)
        try:
            await conn.ws.close(code=code, message=reason.encode("utf-8"))
        except Exception:  # already closed or transport gone
            logger.debug("close of %s failed", conn.connection_id, exc_info=True)

    # ------------------------------------------------------------------ @connections API

    def _lookup(self, request: web.Request) -> _Connection | None:
        # aiohttp matches on the decoded path: boto3's "abc%3D" arrives here as "abc=".
        connection_id = request.match_info["connection_id"]
        conn = self._connections.get(connection_id)
        if conn is None or conn.close_code is not None or conn.ws.closed:
            return None
        return conn

    async def _read_body(self, request: web.Request) -> bytes | None:
        """The request body, or None when it is over the message size limit."""
        limit = self._max_message_bytes
        if request.content_length is not None and request.content_length > limit:
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = await request.content.read(64 * 1024)
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    async def _post_to_connection(self, request: web.Request) -> web.StreamResponse:
        data = await self._read_body(request)
        if data is None:
            return _error(
                413,
                "PayloadTooLargeException",
                f"Message is larger than {self._max_message_bytes} bytes",
            )
        conn = self._lookup(request)
        if conn is None:
            return _gone()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        try:
            async with conn.send_lock:
                if text is not None:
                    await conn.ws.send_str(text)
                else:
                    await conn.ws.send_bytes(data)
        except (ConnectionError, RuntimeError):
            return _gone()
        return web.Response(status=200)

    async def _get_connection(self, request: web.Request) -> web.StreamResponse:
        conn = self._lookup(request)
        if conn is None:
            return _gone()
        # Wire names as in the service model (boto3 maps them to ConnectedAt, Identity, ...).
        return web.json_response(
            {
                "connectedAt": _iso8601(conn.connected_at),
                "identity": {"sourceIp": conn.source_ip, "userAgent": conn.user_agent},
                "lastActiveAt": _iso8601(conn.last_active_at),
            }
        )

    async def _delete_connection(self, request: web.Request) -> web.StreamResponse:
        conn = self._lookup(request)
        if conn is None:
            return _gone()
        await self._close(conn, CLOSE_NORMAL, _REASONS[CLOSE_NORMAL])
        return web.Response(status=204)
