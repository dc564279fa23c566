"""Waiting between retries of something that failed (the database, a service).

Exponential with a cap and "full jitter" (each wait drawn between 0 and the exponential
bound): several gateways that lost the same database do not come back at the same instant.
"""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    """``next()`` gives the wait before the next try; ``reset()`` after a success."""

    def __init__(self, base_s: float = 0.5, cap_s: float = 30.0,
                 rand: Callable[[], float] = random.random) -> None:
        if base_s <= 0 or cap_s < base_s:
            raise ValueError("backoff needs 0 < base_s <= cap_s")
        self.base_s = base_s
        self.cap_s = cap_s
        self.rand = rand
        self.failures = 0

    @property
    def bound_s(self) -> float:
        """The longest the next wait can be."""
        return min(self.cap_s, self.base_s * 2 ** min(self.failures, 30))

    def next(self) -> float:
        wait = max(self.base_s / 10, self.rand() * self.bound_s)
        self.failures += 1
        return wait

    def reset(self) -> None:
        self.failures = 0
