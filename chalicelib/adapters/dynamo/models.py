"""DynamoDB tables as PynamoDB models: the one definition that the deployment, the local stack
and the tests all create tables from."""

from __future__ import annotations

from pynamodb.attributes import (
    BooleanAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.attributes import TTLAttribute as _TTLAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from chalicelib.config import settings

_settings = settings()


class TTLAttribute(_TTLAttribute):
    """Expiry time. DynamoDB deletes expired items only eventually: readers filter them too."""


class _Meta:
    region = _settings.region
    billing_mode = "PAY_PER_REQUEST"


class UserModel(Model):
    """A member: profile, invite budget and standing."""

    class Meta(_Meta):
        table_name = _settings.table_name("users")

    user_id = UnicodeAttribute(hash_key=True)
    phone = UnicodeAttribute()
    username = UnicodeAttribute()
    name = UnicodeAttribute()
    bio = UnicodeAttribute(default="")
    photo_url = UnicodeAttribute(default="")
    # The S3 key of the photo Salon holds (photo_url shows it); none for an outside URL.
    photo_key = UnicodeAttribute(null=True)
    invited_by = UnicodeAttribute(null=True)
    invites_left = NumberAttribute(default=0)
    status = UnicodeAttribute(default="active")
    # A suspension for a period ends by itself at this time (none: until reinstated).
    suspended_until = UTCDateTimeAttribute(null=True)
    followers_count = NumberAttribute(default=0)
    following_count = NumberAttribute(default=0)
    created_at = UTCDateTimeAttribute()
    # The live rooms whose stage they are on: the hallway's index of where the people one
    # follows are speaking. Added and deleted (never set) in the room's own transaction, so
    # two rooms' changes commute; a room that has ended since is filtered on read.
    on_stage_in = UnicodeSetAttribute(null=True)
    # How many open clubs they founded (at most MAX_FOUNDED): moved in the club's transaction.
    clubs_founded = NumberAttribute(null=True)


class InvitedByIndex(GlobalSecondaryIndex["PhoneModel"]):
    """The numbers a member invited (their data export lists them)."""

    class Meta:
        index_name = "by_inviter"
        projection = KeysOnlyProjection()

    invited_by = UnicodeAttribute(hash_key=True)


class PhoneModel(Model):
    """What Salon knows of a phone number: invited, waitlisted, or a member's."""

    class Meta(_Meta):
        table_name = _settings.table_name("phones")

    phone = UnicodeAttribute(hash_key=True)
    status = UnicodeAttribute()  # waitlisted | invited | member
    invited_by = UnicodeAttribute(null=True)
    invited_at = UTCDateTimeAttribute(null=True)
    user_id = UnicodeAttribute(null=True)
    reserved_username = UnicodeAttribute(null=True)
    waitlisted_at = UTCDateTimeAttribute(null=True)
    by_inviter = InvitedByIndex()


class UsernameModel(Model):
    """A claim on a username (lower-cased): held by a member, or reserved by a waitlisted phone."""

    class Meta(_Meta):
        table_name = _settings.table_name("usernames")

    username = UnicodeAttribute(hash_key=True)
    user_id = UnicodeAttribute(null=True)
    # The holder's number; QUARANTINED once its member deleted their account.
    phone = UnicodeAttribute()
    claimed_at = UTCDateTimeAttribute()
    # A deleted member's name is held until then, and then released (docs/architecture.md).
    quarantined_until = UTCDateTimeAttribute(null=True)
    ttl = TTLAttribute(null=True)


class SignInCodeModel(Model):
    """The pending sign-in code of a phone number, stored hashed, under a keyed hash of the
    number (the attribute keeps its name so that existing tables keep their key)."""

    class Meta(_Meta):
        table_name = _settings.table_name("sign_in_codes")

    phone = UnicodeAttribute(hash_key=True)
    code_hash = UnicodeAttribute()
    attempts = NumberAttribute(default=0)
    expires_at = UTCDateTimeAttribute()
    used_at = UTCDateTimeAttribute(null=True)
    ttl = TTLAttribute()


class RateLimitModel(Model):
    """A fixed-window counter, e.g. sign-in starts per phone number or per source address,
    keyed by a keyed hash of what it counts and the window."""

    class Meta(_Meta):
        table_name = _settings.table_name("rate_limits")

    key = UnicodeAttribute(hash_key=True)
    hits = NumberAttribute(default=0)
    ttl = TTLAttribute()


class UserSessionsIndex(GlobalSecondaryIndex["SessionModel"]):
    """A member's sessions, to end them all when the account is deleted."""

    class Meta:
        index_name = "by_user"
        projection = KeysOnlyProjection()

    user_id = UnicodeAttribute(hash_key=True)


class SessionModel(Model):
    """A signed-in device: its rotating refresh secret (hashed) and whether it was revoked."""

    class Meta(_Meta):
        table_name = _settings.table_name("sessions")

    session_id = UnicodeAttribute(hash_key=True)
    user_id = UnicodeAttribute()
    secret_hash = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    expires_at = UTCDateTimeAttribute()
    rotated_at = UTCDateTimeAttribute(null=True)
    revoked = BooleanAttribute(default=False)
    ttl = TTLAttribute()
    by_user = UserSessionsIndex()


class InverseIndex(GlobalSecondaryIndex["RelationModel"]):
    """Who follows (or blocks) a given member."""

    class Meta:
        index_name = "inverse"
        projection = AllProjection()

    other_id = UnicodeAttribute(hash_key=True)
    inverse_edge = UnicodeAttribute(range_key=True)


class RelationModel(Model):
    """One directed edge of the social graph: `follows#<id>` or `blocks#<id>`."""

    class Meta(_Meta):
        table_name = _settings.table_name("relations")

    user_id = UnicodeAttribute(hash_key=True)
    edge = UnicodeAttribute(range_key=True)
    other_id = UnicodeAttribute()
    inverse_edge = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    inverse = InverseIndex()


class UserConnectionsIndex(GlobalSecondaryIndex["ConnectionModel"]):
    """A member's open sockets, to reach them wherever they are connected."""

    class Meta:
        index_name = "by_user"
        projection = KeysOnlyProjection()

    user_id = UnicodeAttribute(hash_key=True)
    connection_id = UnicodeAttribute(range_key=True)


class ConnectionModel(Model):
    """An open WebSocket. `$disconnect` is best-effort, so every row also expires."""

    class Meta(_Meta):
        table_name = _settings.table_name("connections")

    connection_id = UnicodeAttribute(hash_key=True)
    user_id = UnicodeAttribute()
    connected_at = UTCDateTimeAttribute()
    room_id = UnicodeAttribute(null=True)
    ttl = TTLAttribute()
    # The socket's token buckets (docs/asyncapi.yaml, `rate_limited`): tokens left and when
    # they were counted, one pair for actions and one for media actions. On the row, so every
    # Lambda that handles this socket's messages spends from the same buckets.
    action_tokens = NumberAttribute(null=True)
    action_at = NumberAttribute(null=True)
    media_tokens = NumberAttribute(null=True)
    media_at = NumberAttribute(null=True)
    by_user = UserConnectionsIndex()


class LiveRoomsIndex(GlobalSecondaryIndex["RoomModel"]):
    """Live rooms only (sparse: an ended room drops its `live` attribute), newest first.

    Keys only, so that the listener counter, written on every join, never writes the index.
    """

    class Meta:
        index_name = "live_rooms"
        projection = KeysOnlyProjection()

    live = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class RoomModel(Model):
    """A room's shared state: title, type, the ids on stage, the guest list, and counters.

    Listeners live in their own items, so a listener joining touches this item only to count.
    """

    class Meta(_Meta):
        table_name = _settings.table_name("rooms")

    room_id = UnicodeAttribute(hash_key=True)
    title = UnicodeAttribute()
    kind = UnicodeAttribute()
    creator_id = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    capacity = NumberAttribute()
    hands_allowed = BooleanAttribute(default=True)
    # Grows each time hands close: hands raised in an earlier round are down.
    hands_round = NumberAttribute(default=0)
    ended_at = UTCDateTimeAttribute(null=True)
    stage_ids = UnicodeSetAttribute(null=True)
    moderator_ids = UnicodeSetAttribute(null=True)
    # On stage and unmuted: each holds one of the room's publishing slots (max_publishers).
    publisher_ids = UnicodeSetAttribute(null=True)
    max_publishers = NumberAttribute(null=True)
    # The media plane's handle on the room (a Janus room, an IVS stage ARN).
    media_ref = UnicodeAttribute(null=True)
    invited = UnicodeSetAttribute(null=True)
    # An event's co-hosts, a club room's admins: moderators on entry.
    hosts = UnicodeSetAttribute(null=True)
    club_id = UnicodeAttribute(null=True)  # the club whose room it is
    listener_count = NumberAttribute(default=0)
    # A copy of each on-stage member's row (JSON: user id -> the row as DynamoDB stores it),
    # written in the same transaction as the rows: an action reads the room, its stage and the
    # people it touches in one request (docs/benchmarks.md, "request budgets").
    stage = UnicodeAttribute(null=True)
    # Bumped by every change to the fields above (not by listener counts): optimistic locking.
    revision = NumberAttribute(default=0)
    live = UnicodeAttribute(null=True)
    count_sent_at = NumberAttribute(null=True)
    count_flush_pending = BooleanAttribute(null=True)
    ttl = TTLAttribute(null=True)
    live_rooms = LiveRoomsIndex()


class RaisedHandsIndex(GlobalSecondaryIndex["RoomMemberModel"]):
    """Raised hands of a room in the order raised (sparse: only raised hands have the key).
    The key starts with the hands round, so a query for the current round skips hands that
    closing hands lowered without touching their items."""

    class Meta:
        index_name = "raised_hands"
        projection = KeysOnlyProjection()

    room_id = UnicodeAttribute(hash_key=True)
    hand_key = UnicodeAttribute(range_key=True)


class AudienceIndex(GlobalSecondaryIndex["RoomMemberModel"]):
    """A room's listeners in the order they joined (sparse: only listeners have the key)."""

    class Meta:
        index_name = "audience"
        projection = KeysOnlyProjection()

    room_id = UnicodeAttribute(hash_key=True)
    audience_key = UnicodeAttribute(range_key=True)


class RoomMemberModel(Model):
    """One person in one room, with the socket they joined from. Removed people keep a row
    (`removed`) so that they cannot come back."""

    class Meta(_Meta):
        table_name = _settings.table_name("room_members")

    room_id = UnicodeAttribute(hash_key=True)
    user_id = UnicodeAttribute(range_key=True)
    role = UnicodeAttribute()
    muted = BooleanAttribute(default=True)
    joined_at = UTCDateTimeAttribute()
    hand_raised_at = UTCDateTimeAttribute(null=True)
    # The room's hands round the hand was raised in; an older round's hand is down.
    hand_round = NumberAttribute(null=True)
    invited_to_speak_at = UTCDateTimeAttribute(null=True)
    connected = BooleanAttribute(default=True)
    disconnected_at = UTCDateTimeAttribute(null=True)
    connection_id = UnicodeAttribute(null=True)
    removed = BooleanAttribute(default=False)
    revision = NumberAttribute(default=0)
    hand_key = UnicodeAttribute(null=True)
    audience_key = UnicodeAttribute(null=True)
    ttl = TTLAttribute(null=True)
    raised_hands = RaisedHandsIndex()
    audience = AudienceIndex()


class StripeAccountIndex(GlobalSecondaryIndex["CreatorAccountModel"]):
    """Connect webhooks name the account, not the member."""

    class Meta:
        index_name = "by_stripe_account"
        projection = KeysOnlyProjection()

    stripe_account_id = UnicodeAttribute(hash_key=True)


class CreatorAccountModel(Model):
    """A creator's Stripe connected account as Salon last saw it, and their Send Money switch."""

    class Meta(_Meta):
        table_name = _settings.table_name("creator_accounts")

    user_id = UnicodeAttribute(hash_key=True)
    stripe_account_id = UnicodeAttribute()
    charges_enabled = BooleanAttribute(default=False)
    payouts_enabled = BooleanAttribute(default=False)
    details_submitted = BooleanAttribute(default=False)
    requirements_due = NumberAttribute(default=0)
    send_money = BooleanAttribute(default=False)
    earnings_cents = NumberAttribute(default=0)
    updated_at = UTCDateTimeAttribute()
    by_stripe_account = StripeAccountIndex()


class CustomerModel(Model):
    """A sender's Stripe customer and saved card: entered on the first tip only."""

    class Meta(_Meta):
        table_name = _settings.table_name("customers")

    user_id = UnicodeAttribute(hash_key=True)
    stripe_customer_id = UnicodeAttribute()
    payment_method_id = UnicodeAttribute(null=True)


class BetaUserModel(Model):
    """Who may send money while the feature is in beta."""

    class Meta(_Meta):
        table_name = _settings.table_name("beta_users")

    user_id = UnicodeAttribute(hash_key=True)
    added_at = UTCDateTimeAttribute()


class FeedbackModel(Model):
    """What beta users told us."""

    class Meta(_Meta):
        table_name = _settings.table_name("feedback")

    feedback_id = UnicodeAttribute(hash_key=True)
    user_id = UnicodeAttribute()
    text = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()


class TipsBySenderIndex(GlobalSecondaryIndex["TipModel"]):
    class Meta:
        index_name = "by_sender"
        projection = AllProjection()

    sender_id = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class TipsByPaymentIntentIndex(GlobalSecondaryIndex["TipModel"]):
    class Meta:
        index_name = "by_payment_intent"
        projection = KeysOnlyProjection()

    payment_intent_id = UnicodeAttribute(hash_key=True)


class TipModel(Model):
    """One tip: who, to whom, how much, and its PaymentIntent. Keyed by the sender's
    idempotency key, so a double submit finds the tip it already made."""

    class Meta(_Meta):
        table_name = _settings.table_name("tips")

    tip_id = UnicodeAttribute(hash_key=True)
    sender_id = UnicodeAttribute()
    creator_id = UnicodeAttribute()
    amount_cents = NumberAttribute()
    fee_cents = NumberAttribute()
    total_cents = NumberAttribute()
    currency = UnicodeAttribute()
    status = UnicodeAttribute()
    payment_intent_id = UnicodeAttribute(null=True)
    failure_message = UnicodeAttribute(null=True)
    # Charge cents of the refunds the ledger has recorded: the version their shares are cut on.
    refunded_cents = NumberAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    by_sender = TipsBySenderIndex()
    by_payment_intent = TipsByPaymentIntentIndex()


class EntriesByCreatorIndex(GlobalSecondaryIndex["LedgerEntryModel"]):
    class Meta:
        index_name = "by_creator"
        projection = AllProjection()

    creator_id = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class LedgerEntryModel(Model):
    """One money movement, immutable, keyed by the Stripe object it records: written once."""

    class Meta(_Meta):
        table_name = _settings.table_name("ledger")

    entry_id = UnicodeAttribute(hash_key=True)
    kind = UnicodeAttribute()
    creator_id = UnicodeAttribute()
    sender_id = UnicodeAttribute(null=True)
    amount_cents = NumberAttribute()
    currency = UnicodeAttribute()
    tip_id = UnicodeAttribute(null=True)
    payment_intent_id = UnicodeAttribute(null=True)
    charge_id = UnicodeAttribute(null=True)
    refund_id = UnicodeAttribute(null=True)
    dispute_id = UnicodeAttribute(null=True)
    transfer_id = UnicodeAttribute(null=True)
    # The Stripe object's own amount (a refund's or dispute's charge cents), for reconciling.
    stripe_amount_cents = NumberAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    by_creator = EntriesByCreatorIndex()


class StripeEventModel(Model):
    """Stripe events already processed: deliveries repeat, for up to three days."""

    class Meta(_Meta):
        table_name = _settings.table_name("stripe_events")

    event_id = UnicodeAttribute(hash_key=True)
    type = UnicodeAttribute()
    processed_at = UTCDateTimeAttribute()
    ttl = TTLAttribute()


class ApplicationModel(Model):
    """A member's application to the creator program (one at a time)."""

    class Meta(_Meta):
        table_name = _settings.table_name("applications")

    user_id = UnicodeAttribute(hash_key=True)
    pitch = UnicodeAttribute()
    links = UnicodeAttribute(default="[]")  # a JSON list of URLs
    status = UnicodeAttribute()  # pending | approved | rejected
    reason = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    decided_at = UTCDateTimeAttribute(null=True)


class EnrollmentModel(Model):
    """A creator in the program: a monthly amount from a start month, for some months."""

    class Meta(_Meta):
        table_name = _settings.table_name("enrollments")

    user_id = UnicodeAttribute(hash_key=True)
    monthly_cents = NumberAttribute()
    start_month = UnicodeAttribute()  # YYYY-MM
    months = NumberAttribute()
    last_month = UnicodeAttribute()  # YYYY-MM, moved earlier when ended early
    created_at = UTCDateTimeAttribute()
    ended_at = UTCDateTimeAttribute(null=True)


class PayoutModel(Model):
    """The exactly-once guard of one stipend: creator and month. Outlives Stripe's 24-hour
    idempotency keys; `claimed_by` leases it to one run at a time."""

    class Meta(_Meta):
        table_name = _settings.table_name("payouts")

    payout_id = UnicodeAttribute(hash_key=True)  # <user id>#<YYYY-MM>
    user_id = UnicodeAttribute()
    month = UnicodeAttribute()
    amount_cents = NumberAttribute()
    status = UnicodeAttribute()  # pending | paid | skipped
    reason = UnicodeAttribute(null=True)
    transfer_id = UnicodeAttribute(null=True)
    claimed_by = UnicodeAttribute(null=True)
    claimed_at = UTCDateTimeAttribute(null=True)
    attempts = NumberAttribute(default=0)
    updated_at = UTCDateTimeAttribute()


class PayoutRunModel(Model):
    """What one payout run did, for the operator: paid, skipped (why), failed, total."""

    class Meta(_Meta):
        table_name = _settings.table_name("payout_runs")

    run_id = UnicodeAttribute(hash_key=True)
    month = UnicodeAttribute()
    status = UnicodeAttribute()  # running | done
    cursor = UnicodeAttribute(null=True)
    paid = NumberAttribute(default=0)
    skipped = NumberAttribute(default=0)
    failed = NumberAttribute(default=0)
    already_paid = NumberAttribute(default=0)
    total_cents = NumberAttribute(default=0)
    reasons = UnicodeAttribute(default="{}")  # JSON: reason -> count
    invocations = NumberAttribute(default=0)
    started_at = UTCDateTimeAttribute()
    finished_at = UTCDateTimeAttribute(null=True)


class ReportsByReporterIndex(GlobalSecondaryIndex["ReportModel"]):
    """The reports a member made, newest first: their outcomes and their data export."""

    class Meta:
        index_name = "by_reporter"
        projection = AllProjection()

    reporter_id = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class ReportsByStatusIndex(GlobalSecondaryIndex["ReportModel"]):
    """The operators' queue: reports by status, oldest first."""

    class Meta:
        index_name = "by_status"
        projection = AllProjection()

    status = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class ReportModel(Model):
    """A member's report of another member or of a room, and the operator's decision."""

    class Meta(_Meta):
        table_name = _settings.table_name("reports")

    report_id = UnicodeAttribute(hash_key=True)
    reporter_id = UnicodeAttribute()
    target_kind = UnicodeAttribute()  # member | room
    target_id = UnicodeAttribute()
    reason = UnicodeAttribute()
    note = UnicodeAttribute(default="")
    status = UnicodeAttribute()  # open | decided
    created_at = UTCDateTimeAttribute()
    decision = UnicodeAttribute(null=True)  # dismiss | warn | suspend
    suspended_days = NumberAttribute(null=True)  # none with `suspend`: indefinitely
    acted_on = UnicodeAttribute(null=True)  # the member the decision applied to
    decided_at = UTCDateTimeAttribute(null=True)
    by_reporter = ReportsByReporterIndex()
    by_status = ReportsByStatusIndex()


class ModerationLogModel(Model):
    """What a room's moderators did, and when: never audio, SDP or what was said. Expires."""

    class Meta(_Meta):
        table_name = _settings.table_name("moderation_log")

    room_id = UnicodeAttribute(hash_key=True)
    entry_key = UnicodeAttribute(range_key=True)  # <at, ISO>#<id>: in order
    actor_id = UnicodeAttribute()
    action = UnicodeAttribute()
    target_id = UnicodeAttribute(null=True)
    at = UTCDateTimeAttribute()
    ttl = TTLAttribute()


class DevicesByEndpointIndex(GlobalSecondaryIndex["PushDeviceModel"]):
    """The device an SNS endpoint belongs to: SNS's endpoint events name only the endpoint."""

    class Meta:
        index_name = "by_endpoint"
        projection = KeysOnlyProjection()

    endpoint_arn = UnicodeAttribute(hash_key=True)


class PushDeviceModel(Model):
    """A member's device that receives push: its SNS endpoint, keyed by a digest of the token
    (the token itself lives only in SNS)."""

    class Meta(_Meta):
        table_name = _settings.table_name("push_devices")

    user_id = UnicodeAttribute(hash_key=True)
    device_id = UnicodeAttribute(range_key=True)
    platform = UnicodeAttribute()
    endpoint_arn = UnicodeAttribute()
    registered_at = UTCDateTimeAttribute()
    by_endpoint = DevicesByEndpointIndex()


class PushMemberModel(Model):
    """A member's push settings, how many pushes this hour (the cap), and the burst of
    followed people talking being collected into one push."""

    class Meta(_Meta):
        table_name = _settings.table_name("push_members")

    user_id = UnicodeAttribute(hash_key=True)
    muted = UnicodeSetAttribute(null=True)
    quiet_from = UnicodeAttribute(null=True)
    quiet_to = UnicodeAttribute(null=True)
    time_zone = UnicodeAttribute(null=True)
    window = NumberAttribute(null=True)  # epoch hour the count is for
    sent = NumberAttribute(null=True)
    counted = UnicodeSetAttribute(null=True)  # the notifications `sent` counts, this hour
    burst_actors = UnicodeSetAttribute(null=True)
    burst_id = UnicodeAttribute(null=True)  # set by the first of a burst
    burst_room_id = UnicodeAttribute(null=True)  # the first's room: where the push leads
    burst_title = UnicodeAttribute(null=True)


class PushDeliveryModel(Model):
    """One notification sent to one device: written before the publish, on the condition that
    it is new, so a retried batch (SQS delivers at least once) never pushes it twice."""

    class Meta(_Meta):
        table_name = _settings.table_name("push_deliveries")

    delivery_id = UnicodeAttribute(hash_key=True)  # <notification id>#<device id>
    ttl = TTLAttribute()


class EventModel(Model):
    """A scheduled room: its hosts, time, status, the room it became and how many RSVP'd."""

    class Meta(_Meta):
        table_name = _settings.table_name("events")

    event_id = UnicodeAttribute(hash_key=True)
    host_id = UnicodeAttribute()
    cohost_ids = UnicodeSetAttribute(null=True)
    title = UnicodeAttribute()
    description = UnicodeAttribute(default="")
    starts_at = UTCDateTimeAttribute()
    created_at = UTCDateTimeAttribute()
    status = UnicodeAttribute()  # scheduled | live | cancelled (lapsed is derived)
    room_id = UnicodeAttribute(null=True)
    rsvp_count = NumberAttribute(default=0)
    revision = NumberAttribute(default=1)
    club_id = UnicodeAttribute(null=True)  # the club it is held in


class EventHostModel(Model):
    """One row per host (creator and co-hosts) of an event, and one for its club
    (`club#<club_id>`), sorted by start time: a member's upcoming events, those of the people
    they follow and those of their clubs are queries on this."""

    class Meta(_Meta):
        table_name = _settings.table_name("event_hosts")

    user_id = UnicodeAttribute(hash_key=True)
    starts_event = UnicodeAttribute(range_key=True)  # "<starts_at UTC ISO>#<event_id>"
    event_id = UnicodeAttribute()


class RsvpsByMemberIndex(GlobalSecondaryIndex["EventRsvpModel"]):
    """A member's RSVPs, to remove them all when the account is deleted."""

    class Meta:
        index_name = "by_member"
        projection = KeysOnlyProjection()

    user_id = UnicodeAttribute(hash_key=True)
    event_id = UnicodeAttribute(range_key=True)


class EventRsvpModel(Model):
    """A member who asked to be notified when the event starts."""

    class Meta(_Meta):
        table_name = _settings.table_name("event_rsvps")

    event_id = UnicodeAttribute(hash_key=True)
    user_id = UnicodeAttribute(range_key=True)
    created_at = UTCDateTimeAttribute()
    by_member = RsvpsByMemberIndex()


class ClubModel(Model):
    """A club: its name, admins' and members' counts, and its live rooms."""

    class Meta(_Meta):
        table_name = _settings.table_name("clubs")

    club_id = UnicodeAttribute(hash_key=True)
    name = UnicodeAttribute()
    description = UnicodeAttribute(default="")
    founder_id = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    members_start_rooms = BooleanAttribute(default=False)
    status = UnicodeAttribute()  # open | closed
    admin_count = NumberAttribute(default=1)
    member_count = NumberAttribute(default=1)
    follower_count = NumberAttribute(default=0)
    # Rooms started in the club; ended ones are filtered on read and pruned at the next start.
    live_room_ids = UnicodeSetAttribute(null=True)
    revision = NumberAttribute(default=1)


class ClubsOfUserIndex(GlobalSecondaryIndex["ClubMemberModel"]):
    """The clubs a member belongs to, is invited to or follows (the hallway, their list)."""

    class Meta:
        index_name = "by_user"
        projection = AllProjection()

    user_id = UnicodeAttribute(hash_key=True)
    club_id = UnicodeAttribute(range_key=True)


class ClubRosterIndex(GlobalSecondaryIndex["ClubMemberModel"]):
    """A club's admins, invitees and members (sparse: a follower alone has no key), by role."""

    class Meta:
        index_name = "roster"
        projection = KeysOnlyProjection()

    club_id = UnicodeAttribute(hash_key=True)
    roster_key = UnicodeAttribute(range_key=True)  # "<role>#<user_id>"


class ClubMemberModel(Model):
    """One person's place in one club: a role (admin, member, invited) and/or a follow. The row
    goes when it holds neither."""

    class Meta(_Meta):
        table_name = _settings.table_name("club_members")

    club_id = UnicodeAttribute(hash_key=True)
    user_id = UnicodeAttribute(range_key=True)
    role = UnicodeAttribute(null=True)
    following = BooleanAttribute(default=False)
    invited_by = UnicodeAttribute(null=True)
    since = UTCDateTimeAttribute(null=True)
    roster_key = UnicodeAttribute(null=True)
    by_user = ClubsOfUserIndex()
    roster = ClubRosterIndex()


ALL_MODELS: tuple[type[Model], ...] = (
    UserModel,
    PhoneModel,
    UsernameModel,
    SignInCodeModel,
    RateLimitModel,
    SessionModel,
    RelationModel,
    ConnectionModel,
    RoomModel,
    RoomMemberModel,
    CreatorAccountModel,
    CustomerModel,
    BetaUserModel,
    FeedbackModel,
    TipModel,
    LedgerEntryModel,
    StripeEventModel,
    ApplicationModel,
    EnrollmentModel,
    PayoutModel,
    PayoutRunModel,
    ReportModel,
    ModerationLogModel,
    PushDeviceModel,
    PushMemberModel,
    PushDeliveryModel,
    EventModel,
    EventHostModel,
    EventRsvpModel,
    ClubModel,
    ClubMemberModel,
)
