"""One IAM role per Lambda, with only what that function does.

Chalice writes one role for every function (and its policy knows nothing of PynamoDB's calls),
so packaging replaces it: each function gets its own role, built from its `Grants` below, and
the environment variables naming its secrets. A function with no entry here fails packaging.
The IAM replay (tests/support/iam_replay.py) checks every AWS call the integration and e2e
suites make against these roles and reports the statements no call needed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from chalicelib.adapters.dynamo.models import ALL_MODELS
from deploy.template import push_application_arn

READ = ("dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query")
WRITE = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")
# A transaction's condition on another table's row is checked with this action on that table.
CHECK = ("dynamodb:ConditionCheckItem",)
SCAN = ("dynamodb:Scan",)
# Puts and deletes of up to 25 rows per request (PynamoDB's batch_write).
BATCH_WRITE = ("dynamodb:BatchWriteItem",)
# The IVS real-time calls chalicelib/adapters/media/ivs.py makes, all on Salon's account's stages
# (every one has the stage as its resource; CreateStage with tags also authorizes TagResource).
# tests/integration/test_media_ivs_grants.py derives this set from the adapter's calls.
IVS_STAGES = (
    "ivs:CreateParticipantToken",
    "ivs:CreateStage",
    "ivs:DeleteStage",
    "ivs:DisconnectParticipant",
    "ivs:GetParticipant",
    "ivs:ListParticipants",
    "ivs:ListStageSessions",
    "ivs:TagResource",
)

# The SSM parameter (under /salon/<stage>/) holding each secret setting, by default.
PARAMETERS = {
    "SALON_JWT_SECRET": "jwt-secret",
    "SALON_STRIPE_SECRET_KEY": "stripe-secret-key",
    "SALON_STRIPE_WEBHOOK_SECRET": "stripe-webhook-secret",
    "SALON_STRIPE_CONNECT_WEBHOOK_SECRET": "stripe-connect-webhook-secret",
    "SALON_JANUS_API_SECRET": "janus-api-secret",
    "SALON_JANUS_ADMIN_SECRET": "janus-admin-secret",
}
# The public REST API charges tips and onboards creators with a Stripe restricted key
# (Accounts, Account Links, Customers, PaymentIntents: write); only payouts move money out.
RESTRICTED_STRIPE_KEY = "stripe-restricted-key"


@dataclass(frozen=True)
class Grants:
    """What one function does. Tables are named as in the models, without the stage prefix."""

    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    checks: tuple[str, ...] = ()
    scans: tuple[str, ...] = ()
    batch_writes: tuple[str, ...] = ()
    # secret setting -> its parameter's name under /salon/<stage>/
    secrets: dict[str, str] = field(default_factory=dict)
    posts_to_sockets: bool = False
    closes_sockets: bool = False
    queues_timers: bool = False
    sends_sms: bool = False
    # Opens, closes and grants rights on the media plane's IVS stages (when the plane is IVS).
    runs_stages: bool = False
    # Signs photo upload forms (S3 checks the signer may PutObject), checks and deletes photos.
    manages_photos: bool = False
    # Causes pushes: queues them for the notifications worker.
    queues_notifications: bool = False
    # Posts to a whole room: a big room's audience goes through the fan-out queue.
    queues_fanout: bool = False
    # SNS mobile push calls: on the stage's platform applications (CreatePlatformEndpoint) or
    # on their endpoints (the rest).
    push: tuple[str, ...] = ()


JWT = {"SALON_JWT_SECRET": PARAMETERS["SALON_JWT_SECRET"]}
# The functions that change rooms hold the SFU's secrets (and nothing else does).
JANUS = {name: PARAMETERS[name] for name in ("SALON_JANUS_API_SECRET", "SALON_JANUS_ADMIN_SECRET")}
PAYOUT_KEY = {"SALON_STRIPE_SECRET_KEY": PARAMETERS["SALON_STRIPE_SECRET_KEY"]}

RESTRICTED_KEY = {"SALON_STRIPE_SECRET_KEY": RESTRICTED_STRIPE_KEY}
WEBHOOK_SECRETS = {
    name: PARAMETERS[name]
    for name in ("SALON_STRIPE_WEBHOOK_SECRET", "SALON_STRIPE_CONNECT_WEBHOOK_SECRET")
}
PAYOUTS = Grants(
    reads=("creator_accounts", "enrollments", "payout_runs", "payouts"),
    writes=("creator_accounts", "ledger", "payout_runs", "payouts"),
    scans=("enrollments",),
    secrets=PAYOUT_KEY,
    # A run near its time limit hands over through the timers queue (payout_continue).
    queues_timers=True,
    # A stipend paid is pushed to its creator.
    queues_notifications=True,
)
PUSH_APPLICATION = "sns:CreatePlatformEndpoint"
ENDPOINTS = ("sns:SetEndpointAttributes", "sns:DeleteEndpoint")
# Keyed by handler (the attribute of app.py each Lambda runs; "app" is the REST API).
ROLES: dict[str, Grants] = {
    "app": Grants(
        reads=(
            "applications",
            "beta_users",
            "club_members",
            "clubs",
            "connections",
            "creator_accounts",
            "customers",
            "enrollments",
            "event_hosts",
            "event_rsvps",
            "events",
            "ledger",
            "phones",
            "push_devices",
            "push_members",
            "relations",
            "reports",
            "room_members",
            "rooms",
            "sessions",
            "sign_in_codes",
            "stripe_events",
            "tips",
            "usernames",
            "users",
        ),
        writes=(
            "applications",
            "beta_users",
            "club_members",
            "clubs",
            # DELETE /me takes the member out of their rooms (the leave rules) before it
            # erases them: the connection's room, the room and its members change.
            "connections",
            "creator_accounts",
            "customers",
            "event_hosts",
            "event_rsvps",
            "events",
            "feedback",
            "ledger",
            "phones",
            "push_devices",
            "push_members",
            "rate_limits",
            "relations",
            "reports",
            "room_members",
            "rooms",
            "sessions",
            "sign_in_codes",
            "stripe_events",
            "tips",
            "usernames",
            "users",
        ),
        # A club invitation is conditioned on the club (open; no count moves).
        checks=("clubs", "relations", "room_members", "rooms"),
        # GET /program reads the member's own payouts (a scan: see the report).
        scans=("payouts",),
        # Janus's: a member leaving a room is cut off at the SFU (DELETE /me).
        secrets={**JWT, **RESTRICTED_KEY, **WEBHOOK_SECRETS, **JANUS},
        posts_to_sockets=True,
        queues_fanout=True,
        # DELETE /me closes the member's sockets, after taking them out of their rooms.
        closes_sockets=True,
        # A room that DELETE /me ends is cleaned up later; the SFU's IVS stages on prod.
        queues_timers=True,
        runs_stages=True,
        sends_sms=True,
        manages_photos=True,
        # A tip received is pushed to its creator; devices are registered and unregistered.
        queues_notifications=True,
        push=(PUSH_APPLICATION, *ENDPOINTS),
    ),
    "ws_connect": Grants(
        reads=("sessions", "users"),
        # A suspension for a period that has ended is lifted on the member's next sign-in.
        writes=("connections", "users"),
        secrets=JWT,
    ),
    "ws_message": Grants(
        # start_event reads the event and marks it live; start_club_room reads the club, the
        # starter's place and its admins, and a members-only room's join the joiner's place.
        reads=(
            "club_members",
            "clubs",
            "connections",
            "events",
            "moderation_log",
            "relations",
            "room_members",
            "rooms",
            "users",
        ),
        # Every action spends from the socket's token buckets, on its connection row; users:
        # the rooms a member is on stage in (the hallway's index), kept with the stage.
        # clubs: a club room started is added to the club's live rooms.
        writes=(
            "clubs",
            "connections",
            "events",
            "moderation_log",
            "room_members",
            "rooms",
            "users",
        ),
        # A raised hand is conditioned on the room's round of hands (closing hands starts one).
        checks=("room_members", "rooms"),
        secrets=JANUS,
        posts_to_sockets=True,
        queues_fanout=True,
        queues_timers=True,
        runs_stages=True,
        # Pings, and followed people starting a room or going on stage.
        queues_notifications=True,
    ),
    "ws_disconnect": Grants(
        reads=("connections", "room_members", "rooms"),
        # A speaker's socket going is saved on the room item too (its copy of the stage).
        writes=("connections", "room_members", "rooms"),
        secrets=JANUS,
        posts_to_sockets=True,
        queues_fanout=True,
        queues_timers=True,
        runs_stages=True,
    ),
    # Room timers, and payout runs continued after a handover: both arrive on the timers queue.
    "timers": Grants(
        reads=tuple(sorted({"connections", "room_members", "rooms", "users", *PAYOUTS.reads})),
        writes=tuple(sorted({"connections", "room_members", "rooms", "users", *PAYOUTS.writes})),
        scans=PAYOUTS.scans,
        # An ended room's membership is deleted in batches (the cleanup timer).
        batch_writes=("room_members",),
        secrets={**PAYOUT_KEY, **JANUS},
        posts_to_sockets=True,
        queues_fanout=True,
        queues_timers=True,
        runs_stages=True,
        queues_notifications=True,
    ),
    # The push worker: settings, blocks and devices, then SNS; it queues the next page of a
    # fan-out and each follower's collapsed push.
    "notifications": Grants(
        reads=("event_rsvps", "push_devices", "push_members", "relations", "users"),
        # push_deliveries: each device claimed once per notification before the publish.
        writes=("push_deliveries", "push_devices", "push_members"),
        queues_notifications=True,
        push=("sns:Publish", "sns:DeleteEndpoint"),
    ),
    # A big room's audience, a queued chunk at a time: posts, and removes the gone sockets.
    # Posts that failed for a reason worth retrying (throttled) go back to its queue.
    "fanout": Grants(writes=("connections",), posts_to_sockets=True, queues_fanout=True),
    # SNS's endpoint events: the device an endpoint belongs to (the by_endpoint index), removed
    # when the endpoint, read again, no longer delivers; a disabled endpoint is deleted.
    "push_endpoint_events": Grants(
        reads=("push_devices",),
        writes=("push_devices",),
        push=("sns:GetEndpointAttributes", "sns:DeleteEndpoint"),
    ),
    "payouts_monthly": PAYOUTS,
    "payouts_catch_up": PAYOUTS,
    "admin_run_payouts": PAYOUTS,
    "admin_create_founder": Grants(reads=("users",), writes=("phones", "usernames", "users")),
    "admin_grant_invites": Grants(reads=("users",), writes=("users",)),
    "admin_admit": Grants(reads=("phones",), writes=("phones",), sends_sms=True),
    "admin_suspend": Grants(
        reads=("connections",), writes=("users",), posts_to_sockets=True, closes_sockets=True
    ),
    "admin_reinstate": Grants(writes=("users",)),
    "admin_beta_add": Grants(reads=("users",), writes=("beta_users",)),
    "admin_beta_remove": Grants(writes=("beta_users",)),
    "admin_beta_list": Grants(scans=("beta_users",)),
    "admin_program_applications": Grants(reads=("applications",), scans=("applications",)),
    "admin_program_approve": Grants(
        reads=("applications", "enrollments"),
        writes=("applications", "enrollments"),
        scans=("payouts",),
    ),
    "admin_program_reject": Grants(reads=("applications",), writes=("applications",)),
    "admin_program_end": Grants(
        reads=("applications", "enrollments"), writes=("enrollments",), scans=("payouts",)
    ),
    "admin_feedback_list": Grants(scans=("feedback",)),
    # The report queue (docs/runbook.md, "Reports").
    "admin_reports": Grants(reads=("reports",)),
    "admin_report_open": Grants(reads=("moderation_log", "reports", "users")),
    "admin_report_decide": Grants(
        reads=("connections", "reports", "users"),
        writes=("reports", "users"),
        posts_to_sockets=True,
        closes_sockets=True,
    ),
    "admin_moderation_log": Grants(reads=("moderation_log",)),
    # Read-only: the ledger for the period, each creator's Stripe account, and Stripe's own
    # lists of transfers, refunds and disputes (the restricted key cannot list transfers).
    "admin_reconcile": Grants(reads=("creator_accounts",), scans=("ledger",), secrets=PAYOUT_KEY),
}


def for_media_plane(grants: Grants, media_plane: str) -> Grants:
    """A stage gets what the media plane it uses needs (SALON_MEDIA_PLANE), not the other's:
    Janus's secrets, or the IVS calls."""
    if media_plane != "janus":
        grants = dataclasses.replace(
            grants, secrets={k: v for k, v in grants.secrets.items() if k not in JANUS}
        )
    if media_plane != "ivs":
        grants = dataclasses.replace(grants, runs_stages=False)
    return grants


def _table_logical_ids() -> dict[str, str]:
    """Short table name to the table's logical id. (The models were named with this process's
    prefix.)"""
    from chalicelib.config import settings
    from deploy.template import logical_id, short_name

    prefix = settings().table_prefix
    return {short_name(model, prefix): logical_id(model) for model in ALL_MODELS}


def _arn(logical_id: str, index: bool) -> Any:
    arn = {"Fn::GetAtt": [logical_id, "Arn"]}
    return {"Fn::Join": ["/", [arn, "index", "*"]]} if index else arn


def _sub(text: str) -> dict[str, str]:
    return {"Fn::Sub": "arn:${AWS::Partition}:" + text}


def statements(grants: Grants, stage: str, table_ids: dict[str, str], ws_stage: str) -> list[Any]:
    found: list[dict[str, Any]] = []

    def allow(sid: str, actions: tuple[str, ...], resources: list[Any]) -> None:
        if resources:
            found.append(
                {"Sid": sid, "Effect": "Allow", "Action": list(actions), "Resource": resources}
            )

    def tables(names: tuple[str, ...], index: bool) -> list[Any]:
        unknown = sorted(set(names) - set(table_ids))
        if unknown:
            raise SystemExit(f"no such tables: {unknown}")
        arns = [_arn(table_ids[n], False) for n in sorted(names)]
        return arns + ([_arn(table_ids[n], True) for n in sorted(names)] if index else [])

    allow("ReadTables", READ, tables(grants.reads, index=True))
    allow("WriteTables", WRITE, tables(grants.writes, index=False))
    allow("CheckTables", CHECK, tables(grants.checks, index=False))
    allow("ScanTables", SCAN, tables(grants.scans, index=False))
    allow("BatchWriteTables", BATCH_WRITE, tables(grants.batch_writes, index=False))
    allow(
        "ReadSecrets",
        ("ssm:GetParameter",),
        [
            _sub(f"ssm:${{AWS::Region}}:${{AWS::AccountId}}:parameter/salon/{stage}/{name}")
            for name in sorted(grants.secrets.values())
        ],
    )
    connections = "execute-api:${AWS::Region}:${AWS::AccountId}:${WebsocketAPI}/" + ws_stage
    methods = (["POST"] if grants.posts_to_sockets else []) + (
        ["DELETE"] if grants.closes_sockets else []
    )
    allow(
        "ManageOwnConnections",
        ("execute-api:ManageConnections",),
        [_sub(f"{connections}/{method}/@connections/*") for method in methods],
    )
    if grants.queues_timers:
        allow("QueueTimers", ("sqs:SendMessage",), [{"Fn::GetAtt": ["TimersQueue", "Arn"]}])
    if grants.runs_stages:
        allow("RunStages", IVS_STAGES, [_sub("ivs:${AWS::Region}:${AWS::AccountId}:stage/*")])
    if grants.manages_photos:
        photos = {"Fn::Join": ["", [{"Fn::GetAtt": ["PhotosBucket", "Arn"]}, "/photos/*"]]}
        allow("ManagePhotos", ("s3:PutObject", "s3:GetObject", "s3:DeleteObject"), [photos])
        # Without it S3 answers a HeadObject of a key never uploaded 403, not 404.
        allow("FindPhotos", ("s3:ListBucket",), [{"Fn::GetAtt": ["PhotosBucket", "Arn"]}])
    if grants.queues_fanout:
        allow("QueueFanout", ("sqs:SendMessage",), [{"Fn::GetAtt": ["FanoutQueue", "Arn"]}])
    if grants.queues_notifications:
        allow(
            "QueueNotifications",
            ("sqs:SendMessage",),
            [{"Fn::GetAtt": ["NotificationsQueue", "Arn"]}],
        )
    applications = [push_application_arn(p, stage) for p in ("APNS", "GCM")]
    endpoints = [
        _sub(f"sns:${{AWS::Region}}:${{AWS::AccountId}}:endpoint/{p}/salon-{stage}-{p.lower()}/*")
        for p in ("APNS", "GCM")
    ]
    on_applications = tuple(a for a in grants.push if a == PUSH_APPLICATION)
    on_endpoints = tuple(a for a in grants.push if a != PUSH_APPLICATION)
    if on_applications:
        allow("PushEndpoints", on_applications, applications)
    if on_endpoints:
        allow("Push", on_endpoints, endpoints)
    if grants.sends_sms:
        # SMS to a phone number has no resource ARN to name.
        allow("SignInCodesBySms", ("sns:Publish",), ["*"])
    return found


def lambda_runtime_statements(function: dict[str, Any], handler: str) -> list[Any]:
    """What Lambda itself does with the role, not the code: logs, traces, the SQS source."""
    found: list[Any] = [
        {
            "Sid": "Logs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [
                _sub("logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/lambda/*"),
                _sub("logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/lambda/*:*"),
            ],
        }
    ]
    if function["Properties"].get("Tracing") == "Active":
        found.append(
            {
                "Sid": "Traces",
                "Effect": "Allow",
                # X-Ray has no resource-level permissions for these.
                "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
                "Resource": "*",
            }
        )
    for event in function["Properties"].get("Events", {}).values():
        if event["Type"] == "SQS":
            found.append(
                {
                    "Sid": "ReadOwnQueue",
                    "Effect": "Allow",
                    "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
                    "Resource": [event["Properties"]["Queue"]],
                }
            )
    return found


def assign_roles(template: dict[str, Any], stage: str) -> None:
    """Give every function its own role and its secrets' parameter names; drop Chalice's
    shared role."""
    resources = template["Resources"]
    table_ids = _table_logical_ids()
    ws_stage = resources["WebsocketAPIStage"]["Properties"]["StageName"]
    functions = {k: r for k, r in resources.items() if r["Type"] == "AWS::Serverless::Function"}
    unknown = sorted(
        f["Properties"]["Handler"]
        for f in functions.values()
        if f["Properties"]["Handler"].removeprefix("app.") not in ROLES
    )
    if unknown:
        raise SystemExit(f"functions with no role in deploy/roles.py: {unknown}")
    for logical_id, function in functions.items():
        handler = function["Properties"]["Handler"].removeprefix("app.")
        variables = function["Properties"].setdefault("Environment", {}).setdefault("Variables", {})
        grants = for_media_plane(ROLES[handler], variables.get("SALON_MEDIA_PLANE", ""))
        role_id = f"{logical_id}Role"
        resources[role_id] = {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                },
                "Policies": [
                    {
                        "PolicyName": f"{logical_id}Policy",
                        "PolicyDocument": {
                            "Version": "2012-10-17",
                            "Statement": lambda_runtime_statements(function, handler)
                            + statements(grants, stage, table_ids, ws_stage),
                        },
                    }
                ],
            },
        }
        function["Properties"]["Role"] = {"Fn::GetAtt": [role_id, "Arn"]}
        for setting, parameter in grants.secrets.items():
            variables[f"{setting}_PARAMETER"] = f"/salon/{stage}/{parameter}"
    del resources["DefaultRole"]
