"""The shared throttle: backing off together, recovering, and the rate cap."""

from __future__ import annotations

import asyncio

from crawler.retry import MAX_RETRY_AFTER, should_retry
from crawler.throttle import Throttle


async def settle():
    for _ in range(5):
        await asyncio.sleep(0)


async def test_pushback_halves_what_may_be_in_flight_until_successes_recover():
    throttle = Throttle(concurrency=4)
    for _ in range(2):
        await throttle.acquire()
    throttle.push_back()  # a 429
    throttle.push_back()  # another answer of the same overload: no second halving
    assert throttle.limit == 2
    third = asyncio.create_task(throttle.acquire())
    await settle()
    assert not third.done()  # two in flight already: the third waits
    throttle.release(ok=True)
    await settle()
    assert third.done()
    throttle.release(ok=True)
    throttle.release(ok=True)
    for _ in range(12):  # additive increase: back to the ceiling, never above it
        await throttle.acquire()
        throttle.release(ok=True)
    assert throttle.limit == 4


async def test_the_rate_cap_spaces_request_starts():
    loop = asyncio.get_running_loop()
    throttle, starts = Throttle(concurrency=8, rate=200.0), []
    for _ in range(10):
        await throttle.acquire()
        starts.append(loop.time())
        throttle.release(ok=True)
    # Starts are planned 1/R apart; the event loop may wake a timer a hair early, so the
    # cap is checked over the whole run, not on each gap.
    assert starts[-1] - starts[0] >= 9 / 200 * 0.95


def test_retry_after_is_capped_and_other_faults_back_off_exponentially():
    assert should_retry(429, 1, 5, retry_after=10_000) == MAX_RETRY_AFTER
    assert [should_retry(500, n, 5, backoff=1.0) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]
    assert should_retry(403, 1, 5) is None and should_retry(500, 6, 5) is None
