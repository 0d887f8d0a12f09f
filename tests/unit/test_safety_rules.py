"""The trust and safety rules on their own: token buckets, what the moderation log records,
and report decisions."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain import moderation
from chalicelib.domain import rooms as domain
from chalicelib.domain.errors import ValidationError
from chalicelib.domain.limits import Bucket, SocketRateLimitedError
from chalicelib.domain.moderation import (
    Decision,
    Reason,
    Report,
    ReportAlreadyDecidedError,
    ReportStatus,
    TargetKind,
    decide,
    log_entries,
)

AT = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def spend_all(bucket: Bucket, times: list[float]) -> int:
    """How many messages sent at `times` (seconds, ascending) the bucket lets through."""
    tokens: float | None = None
    counted: float | None = None
    passed = 0
    for now in times:
        try:
            tokens, counted = bucket.take(tokens, counted, now), now
            passed += 1
        except SocketRateLimitedError:
            pass
    return passed


def test_a_full_bucket_lets_the_burst_through_and_refuses_the_next_with_retry_after() -> None:
    bucket = Bucket("action", burst=3, per_second=2)
    assert spend_all(bucket, [0.0] * 3) == 3
    with pytest.raises(SocketRateLimitedError) as refused:
        bucket.take(0.0, 0.0, 0.1)
    assert refused.value.details["retry_after"] == 1
    assert refused.value.code == "rate_limited"


def test_an_empty_bucket_earns_tokens_back_over_time_up_to_the_burst() -> None:
    bucket = Bucket("media", burst=4, per_second=1)
    assert bucket.take(0.0, 0.0, 2.0) == pytest.approx(1.0)  # two earned, one spent
    assert bucket.take(0.0, 0.0, 100.0) == pytest.approx(3.0)  # never more than the burst


@given(
    burst=st.integers(1, 50),
    per_second=st.integers(1, 20),
    gaps=st.lists(st.floats(0, 2, allow_nan=False), min_size=1, max_size=300),
)
def test_no_flood_gets_more_than_the_burst_plus_what_its_duration_earns(
    burst: int, per_second: int, gaps: list[float]
) -> None:
    times = []
    now = 0.0
    for gap in gaps:
        now += gap
        times.append(now)
    passed = spend_all(Bucket("action", burst, per_second), times)
    assert passed <= burst + per_second * (times[-1] - times[0]) + 1e-6
    assert passed >= min(len(times), burst)


def test_the_log_keeps_what_moderators_did_to_others_and_not_what_people_did_to_themselves() -> (
    None
):
    events: list[domain.Event] = [
        domain.SpeakerMuted(room_id="r", at=AT, user_id="sam", by_id="mod"),
        domain.SpeakerMuted(room_id="r", at=AT, user_id="sam", by_id="sam"),
        domain.MovedToAudience(room_id="r", at=AT, user_id="sam", by_id="sam"),
        domain.MovedToAudience(room_id="r", at=AT, user_id="lou", by_id="mod"),
        domain.MemberRemoved(
            room_id="r", at=AT, user_id="lou", by_id="mod", role=domain.Role.LISTENER
        ),
        domain.RoomEnded(
            room_id="r", at=AT, reason=domain.EndReason.LAST_MODERATOR_LEFT, by_id=None
        ),
        domain.RoomEnded(
            room_id="r", at=AT, reason=domain.EndReason.ENDED_BY_MODERATOR, by_id="mod"
        ),
        domain.HandRaised(room_id="r", at=AT, user_id="lou"),
    ]
    assert [(e.actor_id, e.action, e.target_id) for e in log_entries(events)] == [
        ("mod", "mute", "sam"),
        ("mod", "move_to_audience", "lou"),
        ("mod", "remove_member", "lou"),
        ("mod", "end_room", None),
    ]


def test_every_logged_action_names_a_room_event_with_an_actor() -> None:
    # The log knows room events by class name (it does not import the room rules).
    for name in moderation._LOGGED:
        event_type = getattr(domain, name)
        assert issubclass(event_type, domain.Event), name
        assert "by_id" in {f.name for f in dataclasses.fields(event_type)}, name


def report(kind: TargetKind = TargetKind.MEMBER) -> Report:
    return Report("rep", "ada", kind, "troll", Reason.SPAM, "", ReportStatus.OPEN, AT)


def test_a_suspension_applies_to_the_reported_member_for_its_days() -> None:
    decided = decide(report(), Decision.SUSPEND, None, 7, AT + timedelta(hours=1))
    assert (decided.status, decided.acted_on, decided.suspended_days) == (
        ReportStatus.DECIDED,
        "troll",
        7,
    )


def test_a_dismissal_acts_on_nobody_and_a_warning_has_no_days() -> None:
    assert decide(report(), Decision.DISMISS, "troll", 3, AT).acted_on is None
    warned = decide(report(), Decision.WARN, None, 3, AT)
    assert (warned.acted_on, warned.suspended_days) == ("troll", None)


def test_a_room_report_must_name_whom_it_acts_on_and_is_decided_once() -> None:
    with pytest.raises(ValidationError):
        decide(report(TargetKind.ROOM), Decision.WARN, None, None, AT)
    decided = decide(report(TargetKind.ROOM), Decision.WARN, "host", None, AT)
    with pytest.raises(ReportAlreadyDecidedError):
        decide(decided, Decision.DISMISS, None, None, AT)
