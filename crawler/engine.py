"""The crawl: a queue of (node, endpoint) and a fixed pool of workers. No HTTP, no SQL.

Each worker asks the fetcher for one endpoint's referrers of one node, hands the result to the
sink (the database writer) and enqueues every referrer it has not seen, so the crawl ends with
the full upstream closure of the seeds. Concurrency is the number of workers, and a worker has
one request in flight at a time, so requests in flight never exceed it.

A resumed crawl passes ``replay``: the referrers of (node, endpoint) pairs it already finished.
Those are not fetched again; their referrers are discovered as if they had just arrived.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from .api import AuthRejected, FatalResponse, Forbidden, NodeMissing, NodeUnavailable, VersionGone
from .defaults import DEFAULT_CONCURRENCY
from .flags import crawl_flags
from .model import ORIGINS, Endpoint, FetchResult, Node, endpoints_for

__all__ = ["DEFAULT_CONCURRENCY", "DEFAULT_GRACE", "CrawlOptions", "CrawlReport", "crawl"]

DEFAULT_GRACE = 5.0  # seconds that requests in flight may still finish after an interrupt
# Errors after which no further answer can be trusted: the crawl stops and says why.
STOPPING_ERRORS = (AuthRejected, VersionGone, FatalResponse, Forbidden)

Replay = Mapping[tuple[Node, str], Sequence[Node]]
OnEvent = Callable[..., None]  # on_event(kind, **fields): for logs, never for steering


class Fetcher(Protocol):
    async def incoming(self, endpoint: Endpoint, node: Node) -> FetchResult: ...


class Sink(Protocol):
    async def put(self, result: FetchResult) -> None: ...


@dataclass(frozen=True)
class CrawlOptions:
    seeds: tuple[Node, ...]
    origins: frozenset[str] = frozenset(ORIGINS)
    concurrency: int = DEFAULT_CONCURRENCY
    max_depth: int | None = None  # hops from a seed whose referrers are still fetched
    grace: float = DEFAULT_GRACE


@dataclass
class CrawlReport:
    outcome: str  # complete | failures | suspect | fatal | interrupted
    message: str | None = None
    counts: Counter = field(default_factory=Counter)
    failures: list[FetchResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    origins: frozenset[str] = frozenset()
    seconds: float = 0.0


class _Crawl:
    def __init__(self, fetcher: Fetcher, sink: Sink, options: CrawlOptions, stats: Counter,
                 interrupt: asyncio.Event | None, replay: Replay, on_event: OnEvent):
        self.fetcher, self.sink, self.options, self.stats = fetcher, sink, options, stats
        self.on_event = on_event
        self.interrupt = interrupt or asyncio.Event()
        self.replay = replay
        self.origins = set(options.origins)
        self.queue: asyncio.Queue[tuple[Node, Endpoint, int]] = asyncio.Queue()
        self.enqueued: set[Node] = set()
        self.beyond_depth: set[Node] = set()  # referrers found past --max-depth: stored, not crawled
        # Per seed: endpoints finished completely, and the referrers they listed (for the flags).
        self.seed_tally: dict[Node, list[int]] = {seed: [0, 0] for seed in options.seeds}
        self.report = CrawlReport("complete")
        self.stopped = asyncio.Event()
        self.busy = 0  # workers inside a fetch
        self.idle = asyncio.Event()

    def discover(self, node: Node, depth: int) -> None:
        """Queue every endpoint of nodes not seen before, in the same step that marks them seen."""
        pending = [(node, depth)]
        while pending:
            node, depth = pending.pop()
            if node in self.enqueued:
                continue
            if self.options.max_depth is not None and depth > self.options.max_depth:
                self.beyond_depth.add(node)
                continue
            self.beyond_depth.discard(node)
            self.enqueued.add(node)
            self.stats["nodes/queued"] += 1
            for endpoint in endpoints_for(node.kind, self.origins):
                sources = self.replay.get((node, endpoint.name))
                if sources is None:
                    self.queue.put_nowait((node, endpoint, depth))
                    self.stats["pairs/queued"] += 1
                    continue
                self.stats["fetch/replayed"] += 1
                self.report.counts["replayed_referrers"] += len(sources)
                self.tally(node, len(sources))
                pending.extend((source, depth + 1) for source in sources)

    async def run(self) -> CrawlReport:
        started = time.monotonic()
        for seed in self.options.seeds:
            self.discover(seed, 0)
        workers = [asyncio.create_task(self.work()) for _ in range(max(self.options.concurrency, 1))]
        try:
            await self.wait_until_done()
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            self.report.seconds = time.monotonic() - started
        self.conclude()
        return self.report

    async def wait_until_done(self) -> None:
        waiters = [asyncio.create_task(self.queue.join()), asyncio.create_task(self.stopped.wait()),
                   asyncio.create_task(self.interrupt.wait())]
        try:
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            except asyncio.CancelledError:  # cancelled from outside, as Ctrl-C does: an interrupt
                asyncio.current_task().uncancel()
                self.interrupt.set()
            if self.interrupt.is_set() and self.busy:
                # Take no new work; let what is in flight finish for a moment, so it is not lost.
                self.idle.clear()
                try:
                    await asyncio.wait_for(self.idle.wait(), self.options.grace)
                except TimeoutError:
                    pass
        finally:
            for task in waiters:
                task.cancel()

    async def work(self) -> None:
        while True:
            node, endpoint, depth = await self.queue.get()
            fetching = endpoint.origin in self.origins and not (self.stopped.is_set() or self.interrupt.is_set())
            try:
                if fetching:
                    self.busy += 1
                    await self.fetch(node, endpoint, depth)
            except STOPPING_ERRORS as exc:
                self.stop(str(exc))
            except Exception as exc:  # the writer failed: nothing more can be stored
                self.stop(f"could not store results: {type(exc).__name__}: {exc}")
            finally:
                if fetching:
                    self.busy -= 1
                    if not self.busy:
                        self.idle.set()
                self.queue.task_done()

    def stop(self, message: str) -> None:
        if not self.stopped.is_set():
            self.report.outcome, self.report.message = "fatal", message
            self.stopped.set()

    async def fetch(self, node: Node, endpoint: Endpoint, depth: int) -> None:
        try:
            result = await self.fetcher.incoming(endpoint, node)
        except NodeMissing as exc:
            result = FetchResult(node, endpoint, "missing", [], error=str(exc))
        except NodeUnavailable as exc:
            result = exc.partial or FetchResult(node, endpoint, "failed", [], error=str(exc))
        except Forbidden as exc:
            if endpoint.origin != "draft":
                raise
            self.switch_off_drafts(str(exc))
            return
        except STOPPING_ERRORS:
            raise
        except Exception as exc:  # an answer nobody foresaw: this node is unknown, the crawl goes on
            result = FetchResult(node, endpoint, "failed", [], error=f"unexpected {type(exc).__name__}: {exc}"[:500])
        await self.sink.put(result)
        self.count(result)
        for source in sorted(result.sources):
            self.discover(source, depth + 1)

    def switch_off_drafts(self, reason: str) -> None:
        """A token without the drafts scope: go on without drafts, and say so once."""
        if "draft" in self.origins:
            self.origins.discard("draft")
            self.report.warnings.append(
                f"drafts switched off for this crawl ({reason}); documents are unknown while drafts are "
                "looked at: ask with --endpoints media,publications to leave drafts out")

    def count(self, result: FetchResult) -> None:
        self.stats[f"fetch/{result.status}"] += 1
        self.report.counts["fetched"] += 1
        self.report.counts[result.status] += 1
        self.report.counts["edges"] += len(result.references)
        if result.status == "failed":
            self.report.failures.append(result)
            self.on_event("node_failed", node=str(result.node), endpoint=result.endpoint.name, error=result.error,
                          referrers_at_least=result.referrers)
        if result.status == "complete":
            self.tally(result.node, result.referrers)

    def tally(self, node: Node, referrers: int) -> None:
        if node in self.seed_tally:
            self.seed_tally[node][0] += 1
            self.seed_tally[node][1] += referrers

    def conclude(self) -> None:
        """The outcome, from what happened; flags when the result looks like a catastrophe."""
        report, counts = self.report, self.report.counts
        counts["beyond_max_depth"] = len(self.beyond_depth)
        report.origins = frozenset(self.origins)
        if self.interrupt.is_set() and report.outcome != "fatal":
            # What finished is already with the sink; the rest is simply not known yet.
            report.outcome = "interrupted"
            report.message = "interrupted; finished fetches are stored, the rest stays unknown"
        if report.outcome != "complete":
            return
        known = [tally for seed, tally in self.seed_tally.items()
                 if tally[0] == len(endpoints_for(seed.kind, self.origins))]
        report.flags = crawl_flags(counts["fetched"] + self.stats["fetch/replayed"], counts["missing"],
                                   counts["edges"] + counts["replayed_referrers"],
                                   len(known), sum(1 for _, referrers in known if not referrers))
        if report.failures or "draft" in self.options.origins - self.origins:
            report.outcome = "failures"  # drafts switched off: documents are not fully known
        elif report.flags:
            report.outcome = "suspect"


async def crawl(fetcher: Fetcher, sink: Sink, options: CrawlOptions, stats: Counter | None = None,
                interrupt: asyncio.Event | None = None, replay: Replay | None = None,
                on_event: OnEvent | None = None) -> CrawlReport:
    """Crawl the upstream closure of ``options.seeds``; every result goes to ``sink``.

    Setting ``interrupt`` (or cancelling) ends the crawl as 'interrupted' instead of raising.
    """
    stats = stats if stats is not None else Counter()
    return await _Crawl(fetcher, sink, options, stats, interrupt, replay or {}, on_event or _ignore).run()


def _ignore(kind: str, **fields) -> None:
    pass
