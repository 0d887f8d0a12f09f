"""What a host's account deletion does to an event (domain.without_host)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chalicelib.domain.events import EventStatus, ScheduledEvent, without_host

NOW = datetime(2026, 12, 2, 18, tzinfo=UTC)
GRACE = timedelta(hours=1)


def an_event(
    host: str = "ann", *cohosts: str, starts_in: timedelta = timedelta(hours=2)
) -> ScheduledEvent:
    return ScheduledEvent(
        event_id="e1",
        host_id=host,
        title="Jazz night",
        description="",
        starts_at=NOW + starts_in,
        created_at=NOW - timedelta(days=1),
        cohost_ids=frozenset(cohosts),
    )


def test_an_upcoming_event_its_host_ran_alone_is_cancelled() -> None:
    assert without_host(an_event(), "ann", NOW, GRACE).status is EventStatus.CANCELLED


def test_a_co_host_is_dropped_and_the_event_goes_on() -> None:
    after = without_host(an_event("ann", "bob", "cy"), "bob", NOW, GRACE)
    assert (after.host_id, after.cohost_ids, after.status) == (
        "ann",
        frozenset({"cy"}),
        EventStatus.SCHEDULED,
    )


def test_the_creator_hands_the_event_to_the_first_co_host() -> None:
    after = without_host(an_event("ann", "cy", "bob"), "ann", NOW, GRACE)
    assert (after.host_id, after.cohost_ids, after.status) == (
        "bob",
        frozenset({"cy"}),
        EventStatus.SCHEDULED,
    )


def test_a_lapsed_event_keeps_its_status_and_the_id_that_names_nobody() -> None:
    lapsed = an_event(starts_in=-2 * GRACE)
    assert without_host(lapsed, "ann", NOW, GRACE) == lapsed


def test_someone_who_no_longer_hosts_it_changes_nothing() -> None:
    event = an_event("ann", "bob")
    assert without_host(event, "zed", NOW, GRACE) == event
