"""Pace requests across all workers: a rate cap, and backing off together when pushed back.

When the server answers 429 or 503 it is overloaded: every worker hammering on its own retry
schedule would keep it so. The request that was pushed back waits as Retry-After says; the
throttle halves the requests the whole crawl allows in flight, and each success then adds back
a little (additive increase, multiplicative decrease), so the crawl recovers gradually once the
server does. (Pausing every worker for every Retry-After would stall a crawl whose server
answers a steady few percent of requests with 429, one pause after another.)
"""

from __future__ import annotations

import asyncio
from collections import Counter

__all__ = ["Throttle"]

CUT_INTERVAL = 1.0  # seconds: pushbacks closer together than this count as one overload


class Throttle:
    """Admission for every request of a crawl.

    >>> import asyncio
    >>> async def demo():
    ...     t = Throttle(concurrency=8)
    ...     await t.acquire(); t.release(ok=False); t.push_back()   # a 429
    ...     halved = t.limit
    ...     for _ in range(4):
    ...         await t.acquire(); t.release(ok=True)
    ...     return halved, round(t.limit, 2)   # about one more per window of successes
    >>> asyncio.run(demo())
    (4.0, 4.92)
    """

    def __init__(self, concurrency: int, rate: float | None = None, stats: Counter | None = None):
        self.ceiling = float(max(concurrency, 1))
        self.limit = self.ceiling  # requests allowed in flight now; the workers cap it anyway
        self.rate = rate
        self.stats = stats if stats is not None else Counter()
        self.in_flight = 0
        self._next_start = 0.0  # the rate cap: when the next request may go out
        self._next_cut = 0.0  # when a pushback may halve the limit again
        self._changed = asyncio.Event()

    async def acquire(self) -> None:
        """Wait for a slot under the limit, and for the rate cap."""
        while self.in_flight >= int(self.limit):
            self._changed.clear()
            await self._changed.wait()
        self.in_flight += 1
        if self.rate:
            now = asyncio.get_running_loop().time()  # only here: on Python 3.11 it costs a getpid() call
            start = max(now, self._next_start)
            self._next_start = start + 1.0 / self.rate
            if start > now:
                await asyncio.sleep(start - now)

    def release(self, ok: bool) -> None:
        """A request ended; each success lets one more in flight per ``limit`` successes."""
        self.in_flight -= 1
        if ok and self.limit < self.ceiling:
            self.limit = min(self.ceiling, self.limit + 1.0 / self.limit)
        self._changed.set()

    def push_back(self) -> None:
        """The server is overloaded (429/503): halve what the whole crawl may have in flight."""
        now = asyncio.get_running_loop().time()
        if now >= self._next_cut:
            # At most once a second: the answers already in flight when the server pushed back
            # tell of the same overload, and must not halve the crawl again and again.
            self.limit = max(1.0, self.limit / 2)
            self._next_cut = now + CUT_INTERVAL
        self.stats["throttle/pushback"] += 1
        lowest = self.stats.get("throttle/lowest_limit")
        self.stats["throttle/lowest_limit"] = int(self.limit if lowest is None else min(lowest, self.limit))
        self._changed.set()
