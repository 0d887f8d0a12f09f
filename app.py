"""Salon's edge: Chalice routes and handlers. Each parses, calls a service and maps the result."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalice.app import Chalice, Response, WebsocketEvent

from chalicelib.config import settings
from chalicelib.edge import observability, websocket
from chalicelib.edge.http import router
from chalicelib.services.container import services

app = Chalice(app_name="salon")
app.experimental_feature_flags.update(["WEBSOCKETS"])
route = router(app)


@app.middleware("all")
def observe(event: Any, get_response: Callable[[Any], Any]) -> Any:
    return observability.around(app, event, get_response)


@route("/health", methods=["GET"])
def health() -> dict[str, str]:
    return {"status": "ok", "version": settings().version, "stage": settings().stage}


@app.on_ws_connect()
def ws_connect(event: WebsocketEvent) -> Response | None:
    return websocket.admit(services().realtime, event)


@app.on_ws_message()
def ws_message(event: WebsocketEvent) -> None:
    websocket.receive(services().realtime, event)


@app.on_ws_disconnect()
def ws_disconnect(event: WebsocketEvent) -> None:
    services().realtime.disconnect(event.connection_id)
