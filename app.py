"""Salon's edge: Chalice routes and handlers. Each parses, calls a service and maps the result."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from chalice.app import (
    Chalice,
    CloudWatchEvent,
    Cron,
    Request,
    Response,
    SNSEvent,
    SQSEvent,
    WebsocketEvent,
)

from chalicelib.config import settings
from chalicelib.domain.identity import MemberStatus
from chalicelib.domain.money import InvalidSignatureError
from chalicelib.domain.program import DEFAULT_MONTHLY_CENTS, DEFAULT_MONTHS, month_of
from chalicelib.edge import observability, schemas
from chalicelib.edge.admin import admin_function
from chalicelib.edge.http import bearer_token, body, query, router, source_ip
from chalicelib.edge.queues import each_message
from chalicelib.services.container import services, utc_now

# The deployment template points these handlers at their own queues (deploy/template.py).
TIMERS_QUEUE = "salon-timers"
NOTIFICATIONS_QUEUE = "salon-notifications"
FANOUT_QUEUE = "salon-fanout.fifo"
# The SNS topic the push platform applications report endpoint events to.
PUSH_EVENTS_TOPIC = "salon-push-events"

app = Chalice(app_name="salon")
app.experimental_feature_flags.update(["WEBSOCKETS"])
route = router(app)
admin = admin_function(app)


@app.middleware("all")
def observe(event: Any, get_response: Callable[[Any], Any]) -> Any:
    return observability.around(app, event, get_response)


def request() -> Request:
    current = app.current_request
    assert current is not None  # Chalice sets it for every route
    return current


def caller() -> str:
    """The member the request's access token speaks for."""
    return services().identity.authenticate(bearer_token(request()))


def time_left(context: Any) -> Callable[[], int]:
    """How long this invocation may still run, from the Lambda context."""
    # No annotated local here: `chalice package` reads app.py with symtable and fails on one.
    return context.get_remaining_time_in_millis  # type: ignore[no-any-return]


def created(payload: dict[str, Any]) -> Response:
    return Response(body=payload, status_code=201)


# --- health --------------------------------------------------------------------------------


@route("/health", methods=["GET"])
def health() -> dict[str, str]:
    return {"status": "ok", "version": settings().version, "stage": settings().stage}


# --- sign-in -------------------------------------------------------------------------------


@route("/auth/sign-in", methods=["POST"])
def start_sign_in() -> Response:
    phone = body(request(), schemas.SIGN_IN)["phone"]
    answer = services().identity.start_sign_in(phone, source_ip(request()))
    return Response(answer, status_code=202)


@route("/auth/verify", methods=["POST"])
def verify_code() -> dict[str, Any]:
    fields = body(request(), schemas.VERIFY)
    return services().identity.verify_code(fields["phone"], fields["code"])


@route("/auth/sign-up", methods=["POST"])
def sign_up() -> Response:
    fields = body(request(), schemas.SIGN_UP)
    return created(
        services().identity.sign_up(fields["sign_up_token"], fields["name"], fields["username"])
    )


@route("/auth/refresh", methods=["POST"])
def refresh() -> dict[str, Any]:
    fields = body(request(), schemas.REFRESH)
    return services().identity.refresh(fields["refresh_token"])


@route("/auth/sign-out", methods=["POST"])
def sign_out() -> Response:
    identity = services().identity
    user_id, session_id = identity.authenticate_session(bearer_token(request()))
    identity.sign_out(user_id, session_id)
    return Response(body="", status_code=204)


@route("/waitlist/username", methods=["PUT"])
def reserve_username() -> dict[str, Any]:
    fields = body(request(), schemas.RESERVE)
    return services().identity.reserve_username(fields["sign_up_token"], fields["username"])


# --- members -------------------------------------------------------------------------------


@route("/me", methods=["GET"])
def me() -> dict[str, Any]:
    return services().identity.me(caller())


@route("/me", methods=["PATCH"])
def edit_me() -> dict[str, Any]:
    user_id = caller()
    changes = body(request(), schemas.EDIT_PROFILE)
    if (photo_url := changes.pop("photo_url", None)) is not None:
        services().photos.use_url(user_id, photo_url)
    return services().identity.update_profile(user_id, changes)


@route("/me/photo/uploads", methods=["POST"])
def start_photo_upload() -> Response:
    user_id = caller()
    content_type = body(request(), schemas.PHOTO_UPLOAD)["content_type"]
    return created(services().photos.start_upload(user_id, content_type))


@route("/me/photo", methods=["PUT"])
def use_photo() -> dict[str, Any]:
    user_id = caller()
    return services().photos.use(user_id, body(request(), schemas.PHOTO)["key"])


@route("/me/photo", methods=["DELETE"])
def remove_photo() -> dict[str, Any]:
    return services().photos.remove(caller())


@route("/me", methods=["DELETE"])
def delete_me() -> Response:
    user_id = caller()
    services().account.delete(user_id, body(request(), schemas.DELETE_ACCOUNT)["code"])
    return Response(body="", status_code=204)


@route("/me/deletion-code", methods=["POST"])
def deletion_code() -> Response:
    return Response(services().account.request_deletion_code(caller()), status_code=202)


@route("/me/export", methods=["GET"])
def export_me() -> dict[str, Any]:
    return services().account.export(caller())


@route("/reports", methods=["POST"])
def report() -> Response:
    user_id = caller()
    fields = body(request(), schemas.REPORT)
    return created(
        services().safety.report(
            user_id,
            fields["target_kind"],
            fields["target_id"],
            fields["reason"],
            fields.get("note", ""),
        )
    )


@route("/me/reports", methods=["GET"])
def my_reports() -> dict[str, Any]:
    user_id = caller()
    page = query(request(), schemas.PAGE)
    return services().safety.my_reports(user_id, page.get("limit", 50), page.get("cursor"))


@route("/me/blocks", methods=["GET"])
def my_blocks() -> dict[str, Any]:
    user_id = caller()
    page = query(request(), schemas.PAGE)
    return services().identity.blocked(user_id, page.get("limit", 50), page.get("cursor"))


@route("/invites", methods=["POST"])
def invite() -> Response:
    user_id = caller()
    phone = body(request(), schemas.INVITE)["phone"]
    return created(services().identity.invite(user_id, phone))


@route("/users/by-username/{username}", methods=["GET"])
def profile_by_username(username: str) -> dict[str, Any]:
    return with_send_money(services().identity.profile_by_username(caller(), username[:64]))


@route("/users/{user_id}", methods=["GET"])
def profile(user_id: str) -> dict[str, Any]:
    return with_send_money(services().identity.profile(caller(), schemas.path_id(user_id)))


def with_send_money(profile: dict[str, Any]) -> dict[str, Any]:
    """The profile shows the Send Money button only when the creator can be paid."""
    return {**profile, "send_money": services().payments.send_money_enabled(profile["user_id"])}


@route("/users/{user_id}/follow", methods=["PUT"])
def follow(user_id: str) -> dict[str, Any]:
    return services().identity.follow(caller(), schemas.path_id(user_id))


@route("/users/{user_id}/follow", methods=["DELETE"])
def unfollow(user_id: str) -> dict[str, Any]:
    return services().identity.unfollow(caller(), schemas.path_id(user_id))


@route("/users/{user_id}/block", methods=["PUT"])
def block(user_id: str) -> dict[str, Any]:
    return services().identity.block(caller(), schemas.path_id(user_id))


@route("/users/{user_id}/block", methods=["DELETE"])
def unblock(user_id: str) -> dict[str, Any]:
    return services().identity.unblock(caller(), schemas.path_id(user_id))


@route("/users/{user_id}/followers", methods=["GET"])
def followers(user_id: str) -> dict[str, Any]:
    caller()
    page = query(request(), schemas.PAGE)
    return services().identity.followers(
        schemas.path_id(user_id), page.get("limit", 50), page.get("cursor")
    )


@route("/users/{user_id}/following", methods=["GET"])
def following(user_id: str) -> dict[str, Any]:
    caller()
    page = query(request(), schemas.PAGE)
    return services().identity.following(
        schemas.path_id(user_id), page.get("limit", 50), page.get("cursor")
    )


# --- push notifications ----------------------------------------------------------------------


@route("/me/devices", methods=["POST"])
def register_device() -> Response:
    user_id = caller()
    fields = body(request(), schemas.DEVICE)
    return created(services().notifications.register(user_id, fields["platform"], fields["token"]))


@route("/me/devices", methods=["GET"])
def my_devices() -> dict[str, Any]:
    return services().notifications.devices(caller())


@route("/me/devices/{device_id}", methods=["DELETE"])
def unregister_device(device_id: str) -> Response:
    services().notifications.unregister(caller(), schemas.path_id(device_id))
    return Response(body="", status_code=204)


@route("/me/notification-settings", methods=["GET"])
def notification_settings() -> dict[str, Any]:
    return services().notifications.preferences(caller())


@route("/me/notification-settings", methods=["PATCH"])
def change_notification_settings() -> dict[str, Any]:
    user_id = caller()
    changes = body(request(), schemas.PUSH_SETTINGS, nullable=("quiet_hours",))
    return services().notifications.change_preferences(user_id, changes)


@app.on_sqs_message(queue=NOTIFICATIONS_QUEUE, batch_size=10, name="notifications")
def notifications(event: SQSEvent) -> Any:
    """Each message on its own: only a failed one comes back (each push is sent once anyway)."""
    return each_message(event, services().notifications.on_message)


@app.on_sns_message(topic=PUSH_EVENTS_TOPIC, name="push_endpoint_events")
def push_endpoint_events(event: SNSEvent) -> None:
    """SNS says an endpoint was deleted, changed or failed for good (docs/runbook.md)."""
    services().notifications.on_endpoint_event(event.message)


# --- events (scheduled rooms) -----------------------------------------------------------------


@route("/events", methods=["POST"])
def schedule_event() -> Response:
    user_id = caller()
    return created(services().events.schedule(user_id, body(request(), schemas.NEW_EVENT)))


@route("/events", methods=["GET"])
def upcoming_events() -> dict[str, Any]:
    user_id = caller()
    scope = query(request(), schemas.UPCOMING).get("scope", "following")
    return services().events.upcoming(user_id, scope)


@route("/events/{event_id}", methods=["GET"])
def scheduled_event(event_id: str) -> dict[str, Any]:
    return services().events.view(caller(), schemas.path_id(event_id))


@route("/events/{event_id}", methods=["PATCH"])
def edit_event(event_id: str) -> dict[str, Any]:
    user_id = caller()
    fields = body(request(), schemas.EDIT_EVENT)
    return services().events.edit(user_id, schemas.path_id(event_id), fields)


@route("/events/{event_id}", methods=["DELETE"])
def cancel_event(event_id: str) -> dict[str, Any]:
    return services().events.cancel(caller(), schemas.path_id(event_id))


@route("/events/{event_id}/rsvp", methods=["PUT"])
def rsvp_event(event_id: str) -> dict[str, Any]:
    return services().events.rsvp(caller(), schemas.path_id(event_id))


@route("/events/{event_id}/rsvp", methods=["DELETE"])
def unrsvp_event(event_id: str) -> dict[str, Any]:
    return services().events.unrsvp(caller(), schemas.path_id(event_id))


@route("/events/{event_id}/preview", methods=["GET"])
def event_preview(event_id: str) -> dict[str, Any]:
    """The public event link's page: no sign-in."""
    return services().events.preview(schemas.path_id(event_id))


# --- clubs ---------------------------------------------------------------------------------


@route("/clubs", methods=["POST"])
def found_club() -> Response:
    user_id = caller()
    return created(services().clubs.create(user_id, body(request(), schemas.NEW_CLUB)))


@route("/clubs", methods=["GET"])
def my_clubs() -> dict[str, Any]:
    return services().clubs.mine(caller())


@route("/clubs/{club_id}", methods=["GET"])
def club(club_id: str) -> dict[str, Any]:
    return services().clubs.view(caller(), schemas.path_id(club_id))


@route("/clubs/{club_id}/close", methods=["POST"])
def close_club(club_id: str) -> dict[str, Any]:
    return services().clubs.close(caller(), schemas.path_id(club_id))


@route("/clubs/{club_id}/members", methods=["GET"])
def club_members(club_id: str) -> dict[str, Any]:
    user_id = caller()
    page = query(request(), schemas.PAGE)
    return services().clubs.members(
        user_id, schemas.path_id(club_id), page.get("limit", 50), page.get("cursor")
    )


@route("/clubs/{club_id}/invitations", methods=["POST"])
def invite_to_club(club_id: str) -> dict[str, Any]:
    user_id = caller()
    target = body(request(), schemas.CLUB_INVITE)["user_id"]
    return services().clubs.invite(user_id, schemas.path_id(club_id), target)


@route("/clubs/{club_id}/membership", methods=["PUT"])
def accept_club_invitation(club_id: str) -> dict[str, Any]:
    return services().clubs.accept(caller(), schemas.path_id(club_id))


@route("/clubs/{club_id}/membership", methods=["DELETE"])
def leave_club(club_id: str) -> dict[str, Any]:
    return services().clubs.leave(caller(), schemas.path_id(club_id))


@route("/clubs/{club_id}/members/{user_id}", methods=["DELETE"])
def remove_from_club(club_id: str, user_id: str) -> dict[str, Any]:
    actor = caller()
    return services().clubs.remove(actor, schemas.path_id(club_id), schemas.path_id(user_id))


@route("/clubs/{club_id}/members/{user_id}/role", methods=["PUT"])
def set_club_role(club_id: str, user_id: str) -> dict[str, Any]:
    actor = caller()
    role = body(request(), schemas.CLUB_ROLE)["role"]
    return services().clubs.set_role(
        actor, schemas.path_id(club_id), schemas.path_id(user_id), role
    )


@route("/clubs/{club_id}/follow", methods=["PUT"])
def follow_club(club_id: str) -> dict[str, Any]:
    return services().clubs.follow(caller(), schemas.path_id(club_id), True)


@route("/clubs/{club_id}/follow", methods=["DELETE"])
def unfollow_club(club_id: str) -> dict[str, Any]:
    return services().clubs.follow(caller(), schemas.path_id(club_id), False)


# --- rooms ---------------------------------------------------------------------------------


@route("/rooms", methods=["GET"])
def hallway() -> dict[str, Any]:
    user_id = caller()
    page = query(request(), schemas.PAGE)
    return services().rooms.hallway(user_id, page.get("limit", 20), page.get("cursor"))


# A big room's posts, a chunk of connections a message (chalicelib/services/fanout.py), from a
# FIFO queue. Two chunks a batch at most: more Lambdas post at once; 16 of them post faster than
# the account's @connections quota allows (docs/benchmarks.md).
@app.on_sqs_message(queue=FANOUT_QUEUE, batch_size=2, name="fanout", maximum_concurrency=16)
def fanout(event: SQSEvent) -> Any:
    return each_message(event, lambda body, _: services().fanout.on_message(body), fifo=True)


@app.on_sqs_message(queue=TIMERS_QUEUE, batch_size=10, name="timers")
def timers(event: SQSEvent) -> None:
    for record in event:
        report = services().on_timer(json.loads(record.body), time_left(event.context))
        if report is not None:
            observability.payout_run(report)


# --- Send Money ----------------------------------------------------------------------------


@route("/creator/onboarding", methods=["POST"])
def start_onboarding() -> dict[str, Any]:
    return services().payments.start_onboarding(caller())


@route("/creator/account", methods=["GET"])
def payout_account() -> dict[str, Any]:
    return services().payments.payout_account(caller())


@route("/creator/send-money", methods=["PUT"])
def set_send_money() -> dict[str, Any]:
    user_id = caller()
    enabled = body(request(), schemas.ENABLED)["enabled"]
    return services().payments.set_send_money(user_id, enabled)


@route("/tips/quote", methods=["GET"])
def tip_quote() -> dict[str, Any]:
    user_id = caller()
    fields = query(request(), schemas.QUOTE)
    return services().payments.quote(user_id, fields["creator_id"], fields["amount_cents"])


@route("/tips", methods=["POST"])
def send_tip() -> Response:
    user_id = caller()
    fields = body(request(), schemas.TIP)
    return created(
        services().payments.send(
            user_id, fields["creator_id"], fields["amount_cents"], fields["idempotency_key"]
        )
    )


@route("/tips/{tip_id}", methods=["GET"])
def tip_status(tip_id: str) -> dict[str, Any]:
    return services().payments.tip_status(caller(), schemas.path_id(tip_id))


@route("/me/tips", methods=["GET"])
def tips_sent() -> dict[str, Any]:
    user_id = caller()
    page = query(request(), schemas.PAGE)
    return services().payments.sent(user_id, page.get("limit", 50), page.get("cursor"))


@route("/me/earnings", methods=["GET"])
def earnings() -> dict[str, Any]:
    user_id = caller()
    page = query(request(), schemas.PAGE)
    return services().payments.earnings(user_id, page.get("limit", 50), page.get("cursor"))


@route("/feedback", methods=["POST"])
def send_feedback() -> Response:
    user_id = caller()
    return created(services().payments.feedback(user_id, body(request(), schemas.FEEDBACK)["text"]))


@route("/webhooks/stripe", methods=["POST"])
def stripe_webhook() -> dict[str, str]:
    return _stripe_event(connect=False)


@route("/webhooks/stripe-connect", methods=["POST"])
def stripe_connect_webhook() -> dict[str, str]:
    return _stripe_event(connect=True)


def _stripe_event(connect: bool) -> dict[str, str]:
    current, svc = request(), services()
    with observability.counting(InvalidSignatureError, "WebhookSignatureFailures"):
        event = svc.stripe.verify(
            current.raw_body, current.headers.get("stripe-signature"), svc.webhook_secret(connect)
        )
    outcome = svc.payments.handle_event(event)
    observability.count("StripeEvents", outcome=outcome)
    return {"received": "true", "outcome": outcome}


# --- creator program -------------------------------------------------------------------------


@route("/creator-program/applications", methods=["POST"])
def apply_to_program() -> Response:
    user_id = caller()
    fields = body(request(), schemas.APPLICATION)
    return created(services().program.apply(user_id, fields["pitch"], fields.get("links", [])))


@route("/creator-program/me", methods=["GET"])
def program_status() -> dict[str, Any]:
    return services().program.status(caller())


@app.schedule(Cron(0, 6, 1, "*", "?", "*"), name="payouts_monthly")
def payouts_monthly(event: CloudWatchEvent) -> None:
    """The 1st of the month, 06:00 UTC: pay the month's stipends."""
    observability.payout_run(services().program.run(None, None, time_left(event.context)))


@app.schedule(Cron(0, 6, "2-28", "*", "?", "*"), name="payouts_catch_up")
def payouts_catch_up(event: CloudWatchEvent) -> None:
    """Every other morning: pay whoever the month's earlier runs skipped (already paid: no-op)."""
    observability.payout_run(services().program.run(None, None, time_left(event.context)))


# --- operators (invoked from the AWS console; see docs/runbook.md) ---------------------------


@admin(schemas.ADMIN_CREATE_FOUNDER)
def admin_create_founder(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return services().identity.create_founder(
        event["phone"], event["name"], event["username"], event["invites"]
    )


@admin(schemas.ADMIN_GRANT_INVITES)
def admin_grant_invites(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return services().identity.grant_invites(event["user_id"], event["count"])


@admin(schemas.ADMIN_ADMIT)
def admin_admit(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return services().identity.admit(event["phone"])


@admin(schemas.ADMIN_MEMBER)
def admin_suspend(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = services().identity.set_status(event["user_id"], MemberStatus.SUSPENDED)
    services().realtime.drop_user(event["user_id"])
    return result


@admin(schemas.ADMIN_MEMBER)
def admin_reinstate(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return services().identity.set_status(event["user_id"], MemberStatus.ACTIVE)


@admin(schemas.ADMIN_MEMBER)
def admin_beta_add(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return services().payments.beta_add(event["user_id"])


@admin(schemas.ADMIN_MEMBER)
def admin_beta_remove(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return services().payments.beta_remove(event["user_id"])


@admin(schemas.ADMIN_NOTHING)
def admin_beta_list(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return services().payments.beta_list()


@admin(schemas.ADMIN_APPLICATIONS)
def admin_program_applications(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return services().program.applications(event.get("status"))


@admin(schemas.ADMIN_APPROVE)
def admin_program_approve(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return services().program.approve(
        event["user_id"],
        event.get("monthly_cents", DEFAULT_MONTHLY_CENTS),
        event.get("start_month"),
        event.get("months", DEFAULT_MONTHS),
    )


@admin(schemas.ADMIN_REJECT)
def admin_program_reject(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return services().program.reject(event["user_id"], event.get("reason"))


@admin(schemas.ADMIN_END_ENROLLMENT)
def admin_program_end(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return services().program.end(event["user_id"], event.get("last_month"))


@admin(schemas.ADMIN_RUN_PAYOUTS)
def admin_run_payouts(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """By hand from the console; `dry_run` lists what would be paid and pays nothing."""
    program = services().program
    if event.get("dry_run"):
        return program.dry_run(event.get("month") or month_of(utc_now()))
    report = program.run(event.get("month"), None, time_left(context))
    observability.payout_run(report)
    return report


@admin(schemas.ADMIN_RECONCILE)
def admin_reconcile(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Every difference between Salon's ledger and Stripe for [from, to) (docs/runbook.md)."""
    from chalicelib.services.reconcile import parse_period

    return services().reconciliation.run(*parse_period(event["from"], event["to"]))


@admin(schemas.ADMIN_FEEDBACK)
def admin_feedback_list(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return services().payments.feedback_list(event.get("limit", 100))


@admin(schemas.ADMIN_REPORTS)
def admin_reports(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The report queue, oldest first (docs/runbook.md, "Reports")."""
    return services().safety.queue(
        event.get("status", "open"), event.get("limit", 50), event.get("cursor")
    )


@admin(schemas.ADMIN_REPORT)
def admin_report_open(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return services().safety.open(event["report_id"])


@admin(schemas.ADMIN_DECIDE)
def admin_report_decide(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return services().safety.decide(
        event["report_id"], event["decision"], event.get("user_id"), event.get("days")
    )


@admin(schemas.ADMIN_ROOM_LOG)
def admin_moderation_log(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return services().safety.room_log(event["room_id"], event.get("cursor"))


# --- WebSocket -------------------------------------------------------------------------------
# The socket's edge (and through it the connections table's models) is imported by the socket
# functions when they first run, not by every function's cold start (bench/cold_import).


@app.on_ws_connect()
def ws_connect(event: WebsocketEvent) -> Response | None:
    from chalicelib.edge import websocket

    return websocket.admit(services().realtime, event)


@app.on_ws_message()
def ws_message(event: WebsocketEvent) -> None:
    from chalicelib.edge import websocket

    websocket.receive(services().realtime, event)


@app.on_ws_disconnect()
def ws_disconnect(event: WebsocketEvent) -> None:
    services().realtime.disconnect(event.connection_id)
