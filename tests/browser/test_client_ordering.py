"""The web client's rule for room events that arrive crossed or twice (`isOldNews` in
web/app.js; docs/asyncapi.yaml, "Ordering"), run in Node on the sequences the fan-out can
deliver. No browser needed: Node.js, which `make browser-deps` installs."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
NODE = shutil.which("node")


def applied(snapshot_version: int, arrivals: list[dict[str, Any]]) -> list[bool]:
    """For each arriving message, whether the client applies it."""
    assert NODE, "no Node.js: `make browser-deps` installs Debian's nodejs"
    source = (ROOT / "web" / "app.js").read_text()
    found = re.search(r"^function isOldNews\(room, message\) \{.*?^\}$", source, re.M | re.S)
    assert found, "web/app.js has no isOldNews"
    script = (
        found.group(0)
        + f"\nconst room = {{version: {snapshot_version}, versions: new Map(), seen: new Set()}};"
        + f"\nconst arrivals = {json.dumps(arrivals)};"
        + "\nconsole.log(JSON.stringify(arrivals.map((m) => !isOldNews(room, m))));"
    )
    out = subprocess.run([NODE, "-e", script], capture_output=True, text=True, check=True)
    return list(json.loads(out.stdout))


def event(kind: str, version: int, user_id: str | None = None) -> dict[str, Any]:
    return {"type": kind, "version": version, **({"user_id": user_id} if user_id else {})}


def test_events_in_order_are_all_applied() -> None:
    arrivals = [event("speaker_muted", 8, "a"), event("speaker_unmuted", 9, "a")]
    assert applied(7, arrivals) == [True, True]


def test_what_is_older_than_the_snapshot_is_dropped() -> None:
    assert applied(7, [event("speaker_muted", 6, "a"), event("speaker_muted", 5, "b")]) == [
        False,
        False,
    ]


def test_an_event_at_the_snapshots_version_is_applied() -> None:
    # A listener joined (their snapshot: version 7) and is removed: changes to listeners alone
    # do not move the room's version, so the removal carries 7 too and must reach them.
    assert applied(7, [event("member_removed", 7, "pest")]) == [True]


def test_a_retried_batch_repeats_an_event_and_the_copy_is_dropped() -> None:
    arrivals = [event("speaker_muted", 8, "a"), event("speaker_muted", 8, "a")]
    assert applied(7, arrivals) == [True, False]


def test_an_older_event_about_the_same_person_arriving_late_is_dropped() -> None:
    # Muted at 8, removed from the stage at 9: arriving crossed, the removal stands.
    arrivals = [event("moved_to_audience", 9, "a"), event("invitation_accepted", 8, "a")]
    assert applied(7, arrivals) == [True, False]


def test_crossed_events_about_different_people_are_both_applied() -> None:
    arrivals = [event("speaker_muted", 9, "b"), event("speaker_unmuted", 8, "a")]
    assert applied(7, arrivals) == [True, True]


def test_events_of_one_action_share_a_version_and_are_all_applied() -> None:
    arrivals = [event("hand_lowered", 8, "a"), event("invitation_accepted", 8, "a")]
    assert applied(7, arrivals) == [True, True]


def test_messages_without_a_version_are_never_dropped() -> None:
    assert applied(7, [{"type": "audience_count", "count": 3}] * 2) == [True, True]
