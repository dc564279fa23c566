"""Failed logins per client address, in this process's memory (the per-account lockout is
stored: bot/accounts.py).

A sliding window: an address with `limit` failures within `window` is refused until the
oldest of them leaves the window; a success does not clear it (one valid account must not
reset the count for guessing at others).  Memory is bounded: at most `max_addresses` are
remembered, the stalest forgotten first.  A second console process keeps its own count.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from datetime import datetime, timedelta


class AddressThrottle:
    def __init__(self, limit: int, window: timedelta, max_addresses: int = 10_000) -> None:
        self.limit = limit
        self.window = window
        self.max_addresses = max_addresses
        self._failures: OrderedDict[str, deque[datetime]] = OrderedDict()

    def _recent(self, address: str, now: datetime) -> deque[datetime]:
        times = self._failures.get(address)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[address]
        return times

    def blocked_until(self, address: str, now: datetime) -> datetime | None:
        """When *address* may try again, or None if it may now."""
        times = self._recent(address, now)
        if len(times) < self.limit:
            return None
        return times[-self.limit] + self.window

    def failed(self, address: str, now: datetime) -> None:
        times = self._recent(address, now)
        self._failures[address] = times
        self._failures.move_to_end(address)
        times.append(now)
        while len(self._failures) > self.max_addresses:
            self._failures.popitem(last=False)
