"""When to try a request again, and how long to wait first. One pure function, no I/O.

>>> should_retry(503, attempt=1, retries=5, retry_after=2.0)
2.0
>>> should_retry(404, attempt=1, retries=5) is None
True
"""

from __future__ import annotations

import email.utils
import re
import time

__all__ = ["DEFAULT_RETRIES", "TRANSIENT_STATUSES", "should_retry", "parse_retry_after"]

DEFAULT_RETRIES = 5
DEFAULT_BACKOFF = 0.5  # seconds before the first retry; doubles each time
MAX_BACKOFF = 30.0
MAX_RETRY_AFTER = 300.0  # a server asking for longer than this is not waited for longer
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})


def should_retry(
    outcome: int | str,
    attempt: int,
    retries: int,
    retry_after: float | None = None,
    backoff: float = DEFAULT_BACKOFF,
    jitter: float = 1.0,
) -> float | None:
    """Seconds to wait before attempt ``attempt + 1``, or None to give up.

    ``attempt`` counts the tries made so far; ``retries`` tries may follow the first.

    ``outcome`` is an HTTP status, or a string naming a transport fault (``"timeout"``,
    ``"connection reset"``, ``"malformed JSON"``): those are always transient. ``jitter`` in
    [0, 1] scales the exponential delay so that workers that failed together do not retry
    together; the caller draws it.

    >>> should_retry("timeout", attempt=2, retries=5, backoff=1.0, jitter=1.0)
    2.0
    >>> should_retry(500, attempt=6, retries=5) is None  # 1 try + 5 retries spent
    True
    """
    if attempt > retries:
        return None
    if isinstance(outcome, int) and outcome not in TRANSIENT_STATUSES:
        return None
    if retry_after is not None and outcome in (429, 503):
        return min(max(retry_after, 0.0), MAX_RETRY_AFTER)
    return min(backoff * 2 ** (attempt - 1), MAX_BACKOFF) * jitter


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """A Retry-After header (seconds, or an HTTP date) as seconds from now; None if unusable.

    >>> parse_retry_after("7")
    7.0
    >>> parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0)
    10.0
    """
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"[0-9]+(\.[0-9]+)?", value):  # ASCII digits only: '²'.isdigit() is True
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None or when.tzinfo is None:
        return None
    now = time.time() if now is None else now
    return max(when.timestamp() - now, 0.0)
