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


def test_parallel_callers_share_one_rate() -> None:
    """Sixteen threads through one pacer get the slots one caller would: none shared, none
    skipped (the clock stands still, so each wait is exactly the slot it reserved)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    waits: list[float] = []
    lock = threading.Lock()

    def sleep(seconds: float) -> None:
        with lock:
            waits.append(seconds)

    pacer = Pacer(10.0, sleep=sleep, clock=lambda: 0.0)
    start = threading.Barrier(16)

    def call(_: int) -> None:
        start.wait()
        for _ in range(10):
            pacer.call(lambda: None)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(call, range(16)))
    assert pacer.calls == 160
    # The first slot is now (no sleep); the other 159 are 0.1 s apart, each taken once.
    assert sorted(round(w * 10) for w in waits) == list(range(1, 160))


def test_a_429_holds_back_every_caller() -> None:
    clock = FakeTime()
    pacer = Pacer(1000.0, sleep=clock.sleep, clock=lambda: clock.now)
    answers = iter([RateLimitedError(), "ok"])

    def call() -> str:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    pacer.call(call)
    before = clock.now
    pacer.call(lambda: None)  # another caller's next slot is after the pause, not before
    assert clock.now - before == pytest.approx(0.001)
    assert clock.now >= BACKOFF_S[0]
