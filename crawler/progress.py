"""What a running crawl tells people and log shippers, on stderr.

On a terminal: one live line (done / queued / failed, requests per second, retries, elapsed, ETA).
Not on a terminal: the same as a status line every ``interval`` seconds, fit for cron mail.
With ``--log-format json``: one JSON object per event (start, retry, node failed, status, end)
instead, for log shippers. ``--quiet`` silences all but the end. It only reads counters: it never
steers the crawl.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from typing import TextIO

from .store import utc_now

__all__ = ["Reporter", "DEFAULT_INTERVAL", "clock"]

DEFAULT_INTERVAL = 30.0  # seconds between status lines when stderr is not a terminal
LIVE_INTERVAL = 0.5


class Reporter:
    def __init__(self, stream: TextIO, *, quiet: bool = False, json_logs: bool = False,
                 interval: float = DEFAULT_INTERVAL, tty: bool | None = None):
        self.stream, self.quiet, self.json_logs = stream, quiet, json_logs
        self.tty = stream.isatty() if tty is None else tty
        self.interval = LIVE_INTERVAL if self.tty and not json_logs else interval
        self.started = time.monotonic()
        self._live = False  # a live line is on screen and must be cleared before other output

    def event(self, kind: str, **fields) -> None:
        """A JSON log line for ``kind`` (with --log-format json; nothing otherwise)."""
        if self.json_logs and (not self.quiet or kind == "end"):
            self._write(json.dumps({"time": utc_now(), "event": kind, **fields}, sort_keys=True, default=str) + "\n")

    def numbers(self, stats: Counter) -> dict:
        """The figures of a status line, every key always present."""
        done = sum(stats[f"fetch/{s}"] for s in ("complete", "failed", "missing"))
        elapsed = time.monotonic() - self.started
        queued = max(stats["pairs/queued"] - done, 0)
        eta = elapsed / done * queued if done >= 20 else None
        return {"done": done, "queued": queued, "failed": stats["fetch/failed"], "requests": stats["requests/total"],
                "requests_per_second": round(stats["requests/total"] / elapsed, 1) if elapsed > 0 else 0.0,
                "retries": stats["retry/count"], "elapsed": round(elapsed, 1),
                "eta": round(eta, 1) if eta is not None else None}

    def status(self, stats: Counter) -> str:
        n = self.numbers(stats)
        eta = f", ETA {clock(n['eta'])}" if n["eta"] is not None else ""
        return (f"{n['done']} done, {n['queued']} queued, {n['failed']} failed, {n['requests_per_second']:.0f} req/s, "
                f"{n['retries']} retries, {clock(n['elapsed'])} elapsed{eta}")

    async def run(self, stats: Counter) -> None:
        """Report every ``interval`` until cancelled."""
        if self.quiet:
            return
        while True:
            await asyncio.sleep(self.interval)
            line = self.status(stats)
            if self.json_logs:
                self.event("status", **self.numbers(stats))
            elif self.tty:
                self._write(f"\r\x1b[K{line}")
                self._live = True
            else:
                self._write(f"{utc_now()} refgraph: {line}\n")

    def _write(self, text: str) -> None:
        if self._live and not text.startswith("\r"):
            self.stream.write("\r\x1b[K")
            self._live = False
        self.stream.write(text)
        self.stream.flush()

    def finish(self) -> None:
        if self._live:
            self._write("")


def clock(seconds: float) -> str:
    """Hours, minutes and seconds.

    >>> clock(3725)
    '1:02:05'
    """
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
