"""The cost of an hour of listening, as `bench/cost.py` measures it, stays under the issue's
$0.02 per 1,000 listener-minutes, and the bench keeps running against the code as it is (it
once broke unnoticed when the fan-out queue landed). Counts and list prices, never times."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LISTENERS = 300  # above the inline maximum (250): the stage changes go through the fan-out


def test_an_hour_in_a_room_past_the_inline_posts_costs_under_two_cents_per_1000_listener_minutes(
    tmp_path: Path,
) -> None:
    out = tmp_path / "cost.json"
    subprocess.run(
        [sys.executable, "-m", "bench.cost", "--listeners", str(LISTENERS), "--json", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )
    figures = json.loads(out.read_text())[str(LISTENERS)]
    stage_change = figures["measured"]["accept_speaker_invite"]
    # Everyone in the room hears of it (listeners, host, speaker and the newcomer the bench
    # joined), and all but the actor and the moderators through the fan-out function.
    assert stage_change["posts"] == LISTENERS + 5
    assert 0 < stage_change["fanout_posts"] < stage_change["posts"]
    assert stage_change["chunks"] > 0
    dollars = figures["dollars_per_1000_listener_minutes"]
    assert set(dollars) == {"messages", "connection minutes", "Lambda", "DynamoDB", "SQS"}
    assert all(value > 0 for value in dollars.values())
    assert sum(dollars.values()) <= 0.02
