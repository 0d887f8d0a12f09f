"""The pacer keeps Stripe calls under a rate and backs off on 429."""

from __future__ import annotations

import pytest

from chalicelib.domain.errors import RateLimitedError
from chalicelib.services.program import BACKOFF_S, Pacer


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_calls_are_spaced_to_the_rate() -> None:
    clock = FakeTime()
    pacer = Pacer(10.0, sleep=clock.sleep, clock=lambda: clock.now)
    for _ in range(5):
        pacer.call(lambda: None)
    assert clock.now == pytest.approx(0.4)  # 5 calls at 10/s: the 5th starts at 0.4 s


def test_a_429_is_retried_after_growing_pauses() -> None:
    clock = FakeTime()
    pacer = Pacer(1000.0, sleep=clock.sleep, clock=lambda: clock.now)
    answers = iter([RateLimitedError(), RateLimitedError(), "ok"])

    def call() -> str:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert pacer.call(call) == "ok"
    assert [p for p in clock.slept if p >= 0.5] == list(BACKOFF_S[:2])


def test_it_gives_up_after_the_last_backoff() -> None:
    clock = FakeTime()
    pacer = Pacer(1000.0, sleep=clock.sleep, clock=lambda: clock.now)

    def always_limited() -> None:
        raise RateLimitedError()

    with pytest.raises(RateLimitedError):
        pacer.call(always_limited)
    assert pacer.calls == len(BACKOFF_S) + 1
