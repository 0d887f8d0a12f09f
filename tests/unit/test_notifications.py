"""The push rules of the domain: settings, quiet hours on the member's clock, what a burst says."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain import notifications as push
from chalicelib.domain.errors import ValidationError
from chalicelib.domain.notifications import Preferences, PushKind

NIGHTS = Preferences(quiet_from="22:00", quiet_to="07:00", time_zone="Europe/Paris")


@pytest.mark.parametrize(
    ("utc", "quiet"),
    [
        (datetime(2026, 12, 2, 20, 59, tzinfo=UTC), False),  # 21:59 in Paris
        (datetime(2026, 12, 2, 21, 0, tzinfo=UTC), True),  # 22:00
        (datetime(2026, 12, 3, 3, 0, tzinfo=UTC), True),  # 04:00, past midnight
        (datetime(2026, 12, 3, 5, 59, tzinfo=UTC), True),  # 06:59
        (datetime(2026, 12, 3, 6, 0, tzinfo=UTC), False),  # 07:00
    ],
)
def test_quiet_hours_span_midnight_on_the_members_clock(utc: datetime, quiet: bool) -> None:
    assert NIGHTS.is_quiet(utc) is quiet


def test_quiet_hours_follow_daylight_saving_time() -> None:
    # 22:00 in Paris is 20:00 UTC in summer and 21:00 UTC in winter.
    assert NIGHTS.is_quiet(datetime(2026, 7, 1, 20, 30, tzinfo=UTC))
    assert not NIGHTS.is_quiet(datetime(2026, 12, 1, 20, 30, tzinfo=UTC))


def test_a_day_window_does_not_wrap() -> None:
    lunch = Preferences(quiet_from="12:00", quiet_to="13:00", time_zone="UTC")
    assert lunch.is_quiet(datetime(2026, 12, 2, 12, 30, tzinfo=UTC))
    assert not lunch.is_quiet(datetime(2026, 12, 2, 23, 30, tzinfo=UTC))


@given(st.datetimes(timezones=st.just(UTC)))
def test_no_quiet_hours_is_never_quiet(at: datetime) -> None:
    assert not Preferences().is_quiet(at)
    assert not Preferences(quiet_from="09:00", quiet_to="09:00").is_quiet(at)


def test_changing_settings_changes_only_what_is_sent() -> None:
    changed = push.change_preferences(NIGHTS, {"receive": {"tip": False}})
    assert changed.muted == {PushKind.TIP}
    assert (changed.quiet_from, changed.time_zone) == ("22:00", "Europe/Paris")
    again = push.change_preferences(changed, {"receive": {"tip": True, "ping": False}})
    assert again.muted == {PushKind.PING}
    cleared = push.change_preferences(again, {"quiet_hours": None})
    assert cleared.quiet_from is None and not cleared.is_quiet(datetime.now(UTC))


@pytest.mark.parametrize(
    "changes",
    [
        {"time_zone": "Nowhere/Special"},
        {"time_zone": ""},
        {"time_zone": 3},
        {"quiet_hours": {"from": "7:00", "to": "08:00"}},
        {"quiet_hours": {"from": "07:00", "to": "08:00", "extra": "x"}},
        {"quiet_hours": "22-07"},
        {"receive": {"everything": True}},
        {"receive": ["tip"]},
    ],
)
def test_bad_settings_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        push.change_preferences(Preferences(), changes)


def test_a_burst_of_one_names_them_and_a_bigger_one_counts() -> None:
    one = push.talking(1, "Ann", "r1", "Jazz")
    three = push.talking(3, "Ann", "r1", "Jazz")
    assert (one.title, one.data) == ("Ann is talking", {"room_id": "r1"})
    assert three.title == "3 people you follow are talking"


def test_only_followed_people_talking_collapse() -> None:
    assert {k for k in PushKind if k.collapses} == {PushKind.ROOM_STARTED, PushKind.ON_STAGE}


def test_the_cap_counts_by_the_hour() -> None:
    start = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)
    assert push.hour_window(start) == push.hour_window(start.replace(minute=59))
    assert push.hour_window(start.replace(hour=17)) == push.hour_window(start) + 1


ENDPOINT = "arn:aws:sns:us-east-1:123456789012:endpoint/GCM/salon-prod-gcm/3f08fd15-d349-3d82"


@pytest.mark.parametrize("kind", ["EndpointDeleted", "EndpointUpdated", "DeliveryFailure"])
def test_endpoint_events_name_their_kind_and_endpoint(kind: str) -> None:
    message = json.dumps({"EventType": kind, "EndpointArn": ENDPOINT, "Service": "SNS"})
    assert push.endpoint_event(message) == push.EndpointEvent(kind, ENDPOINT)


@pytest.mark.parametrize(
    "message",
    [
        "",
        "null",
        json.dumps({"EventType": "EndpointCreated", "EndpointArn": ENDPOINT}),
        json.dumps({"EventType": "EndpointUpdated"}),
        json.dumps({"EventType": "EndpointUpdated", "EndpointArn": ENDPOINT + "/extra"}),
        json.dumps({"EventType": "EndpointUpdated", "EndpointArn": 7}),
    ],
)
def test_anything_else_is_not_an_endpoint_event(message: str) -> None:
    assert push.endpoint_event(message) is None
