"""Token buckets: how many actions a socket may send at once, and how fast it earns more."""

from __future__ import annotations

import math
from dataclasses import dataclass

from chalicelib.domain.errors import RateLimitedError


class SocketRateLimitedError(RateLimitedError):
    """Too many messages on one socket; `retry_after` (whole seconds) says when one fits."""

    default_message = "Too many messages; wait before sending more."


@dataclass(frozen=True)
class Bucket:
    """Holds at most `burst` tokens and earns `per_second`; every message spends one."""

    name: str
    burst: int
    per_second: float

    def take(self, tokens: float | None, counted_at: float | None, now: float) -> float:
        """The tokens left after spending one, from what was left at `counted_at` (None: a
        full bucket). Raises SocketRateLimitedError when not one is left."""
        if tokens is None or counted_at is None:
            available = float(self.burst)
        else:
            earned = max(0.0, now - counted_at) * self.per_second
            available = min(float(self.burst), tokens + earned)
        if available < 1.0:
            wait = (1.0 - available) / self.per_second if self.per_second > 0 else 3600.0
            retry_after = max(1, math.ceil(wait))
            raise SocketRateLimitedError(
                f"Too many {self.name} messages; try again in {retry_after} s.",
                retry_after=retry_after,
            )
        return available - 1.0
