"""How soon the audio follows the room, in real browsers through Janus: the timings that
tests/browser/test_audio.py proves untimed.

The local stack (`tests.support.stack.running_stack`, Janus included) and three Chromium pages
on the reference web client, set up as the audio tests set them up
(`tests.support.live_audio`): the founder moderates, the listener is on stage, the tipper
listens. Each round measures, from the founder's or the tipper's getStats():

- **reload**: the speaker reloads their page; until the founder hears them again through a
  fresh subscription (issue 12's goal: ≤ 3 s). Baseline, the same round: **unmute**, from the
  speaker's own Unmute click (muted on stage) until the founder hears them; the same media path
  (publish, media_live, subscribe) without the page load, the socket's return and the seat's
  resumption;
- **cut-off**: the founder mutes a speaker whose page ignores it (a modified client, its
  listeners' pages modified to keep their connections too): until the audio last grows on the
  founder's and the tipper's pages (issue 12's goal: ≤ 1 s). Only the SFU can stop it: Salon
  hangs the speaker up at Janus. Baseline, the same round: **client stop**, the same mute of
  an unmodified page, which stops sending by itself.

Times are from just before the click (or the reload) to the first sample that shows audio
(every 50 ms), or to the last sample in which the bytes grew (over 3 s after the click). The
medians and the ratios to their baselines go to stdout as markdown, every sample to
build/bench/media_timing.json.

Like the browser tests it runs only with loopback alone (a network namespace):

    make bench-media                              # BENCH_MEDIA_ARGS="--rounds 9"
    unshare --net sh -c 'ip link set lo up && .venv/bin/python -m bench.media_timing --rounds 5'
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.support.browser import chromium_path, headless_chromium, only_loopback
from tests.support.live_audio import (
    Person,
    audio,
    grows,
    heard_afresh,
    in_the_room,
    last_rise,
    on_stage_and_live,
    open_live_room,
    stage_card,
    three_people,
    wait_until,
)
from tests.support.stack import running_stack

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build" / "bench" / "media_timing.json"
WATCH_S = 3.0  # how long after a mute the bytes are watched for a last rise


def heard_after(listener: Person, speaker: Person, since: float, before: Any) -> float:
    """Seconds from `since` until `listener` hears `speaker` through a subscription other than
    `before` (its handle then)."""
    heard = heard_afresh(listener, speaker, before, timeout=30)
    if not heard:
        raise SystemExit(f"{listener.username} never heard {speaker.username} again")
    return float(heard - since)


def last_rise_after(listeners: Sequence[Person], speaker: Person, since: float) -> float:
    """Seconds from `since` until the audio from `speaker` last grew on any of `listeners`'
    pages, watched for WATCH_S (0 when it never grew after `since`)."""
    rose_at = last_rise(listeners, speaker, WATCH_S)
    return 0.0 if rose_at is None else rose_at - since


def unmute(speaker: Person) -> float:
    started = time.monotonic()
    speaker.page.locator("#room-controls").get_by_role("button", name="Unmute").click()
    expect(speaker.page.get_by_text("You are live.")).to_be_visible()
    return started


def mute(founder: Person, speaker: Person) -> float:
    started = time.monotonic()
    stage_card(founder.page, speaker).get_by_role("button", name="Mute", exact=True).click()
    return started


def one_round(people: dict[str, Person]) -> dict[str, float]:
    founder, speaker, tipper = people["founder"], people["listener"], people["tipper"]
    listeners = (founder, tipper)
    for person in listeners:
        if not grows(person, speaker, "inbound_bytes"):
            raise SystemExit(f"{person.username} does not hear the speaker at the round's start")
    sample: dict[str, float] = {}

    before = audio(founder, speaker)["handle"]
    started = time.monotonic()
    speaker.page.reload()
    sample["reload"] = heard_after(founder, speaker, started, before)
    in_the_room(speaker)

    # An unmodified page, muted: it stops sending by itself (and its listeners unsubscribe).
    wait_until(lambda: all(grows(p, speaker, "inbound_bytes") for p in listeners))
    sample["client_stop"] = last_rise_after(listeners, speaker, mute(founder, speaker))
    expect(speaker.page.get_by_text("You are muted.")).to_be_visible()
    wait_until(lambda: audio(founder, speaker)["handle"] is None)

    sample["unmute"] = heard_after(founder, speaker, unmute(speaker), None)

    # A modified page ignores the mute; the others keep their connections: only Janus stops it.
    wait_until(lambda: all(grows(p, speaker, "inbound_bytes") for p in listeners))
    speaker.page.evaluate("salonDebug.media.stopPublishing = () => {}")
    for person in listeners:
        person.page.evaluate("salonDebug.media.unsubscribe = () => {}")
    sample["cut_off"] = last_rise_after(listeners, speaker, mute(founder, speaker))

    # Fresh pages for the next round (rid of the modifications), the speaker live again.
    for person in (founder, tipper, speaker):
        person.page.reload()
        in_the_room(person)
    expect(speaker.page.get_by_text("You are muted.")).to_be_visible()
    unmute(speaker)
    return sample


def table(samples: list[dict[str, float]]) -> tuple[str, dict[str, Any]]:
    def median(key: str) -> float:
        return statistics.median(s[key] for s in samples)

    rows = [
        ("reload → heard again", "reload", "unmute → heard", "unmute", 3.0),
        ("cut-off, client ignores its mute", "cut_off", "client's own stop", "client_stop", 1.0),
    ]
    lines = [
        f"{len(samples)} rounds; medians in seconds (min to max)",
        "",
        "| measured | median | range | baseline (same run) | median | ratio | goal |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    summary: dict[str, Any] = {}
    for name, key, base_name, base_key, goal in rows:
        values = [s[key] for s in samples]
        ratio = median(key) / median(base_key) if median(base_key) else float("inf")
        lines.append(
            f"| {name} | {median(key):.2f} | {min(values):.2f} to {max(values):.2f} | {base_name} "
            f"| {median(base_key):.2f} | {ratio:.2f}x | ≤ {goal:g} s |"
        )
        summary[key] = {"median_s": median(key), "baseline": base_key, "ratio": ratio}
        summary[base_key] = {"median_s": median(base_key)}
    return "\n".join(lines), summary


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    if not only_loopback():
        sys.exit("run it with loopback alone: make bench-media (a network namespace)")
    if chromium_path() is None:
        sys.exit("Chromium is missing: make browser-deps installs it")
    samples: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="media-bench-") as scratch:
        log = Path(scratch) / "stack.log"
        with (
            running_stack(log, idle_timeout_s=600) as stack,
            headless_chromium(Path(scratch)) as browser,
            three_people(browser) as people,
        ):
            open_live_room(stack, people)
            for person in ("founder", "tipper"):
                in_the_room(people[person])
            on_stage_and_live(people["founder"], people["listener"])
            for index in range(args.rounds):
                sample = one_round(people)
                samples.append(sample)
                said = ", ".join(f"{key} {value:.2f} s" for key, value in sample.items())
                print(f"round {index + 1}: {said}", flush=True)
    text, summary = table(samples)
    print(text)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"samples": samples, "summary": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
