"""The crawl: a queue of (node, endpoint) and a fixed pool of workers. No HTTP, no SQL.

Each worker asks the fetcher for one endpoint's referrers of one node, hands the result to the
sink (the database writer) and enqueues every referrer it has not seen, so the crawl ends with
the full upstream closure of the seeds. Concurrency is the number of workers, and a worker has
one request in flight at a time, so requests in flight never exceed it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

from .api import AuthRejected, FatalResponse, Forbidden, NodeMissing, NodeUnavailable, VersionGone
from .model import ORIGINS, Endpoint, FetchResult, Node, endpoints_for

__all__ = ["DEFAULT_CONCURRENCY", "CrawlOptions", "CrawlReport", "crawl"]

DEFAULT_CONCURRENCY = 16
# Errors after which no further answer can be trusted: the crawl stops and says why.
STOPPING_ERRORS = (AuthRejected, VersionGone, FatalResponse, Forbidden)


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


@dataclass
class CrawlReport:
    outcome: str  # complete | failures | fatal | interrupted
    message: str | None = None
    counts: Counter = field(default_factory=Counter)
    failures: list[FetchResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    origins: frozenset[str] = frozenset()
    seconds: float = 0.0


class _Crawl:
    def __init__(self, fetcher: Fetcher, sink: Sink, options: CrawlOptions, stats: Counter,
                 interrupt: asyncio.Event | None):
        self.fetcher, self.sink, self.options, self.stats = fetcher, sink, options, stats
        self.interrupt = interrupt or asyncio.Event()
        self.origins = set(options.origins)
        self.queue: asyncio.Queue[tuple[Node, Endpoint, int]] = asyncio.Queue()
        self.enqueued: set[Node] = set()
        self.beyond_depth: set[Node] = set()  # referrers found past --max-depth: stored, not crawled
        self.report = CrawlReport("complete")
        self.stopped = asyncio.Event()

    def discover(self, node: Node, depth: int) -> None:
        """Queue every endpoint of a node not seen before, in the same step that marks it seen."""
        max_depth = self.options.max_depth
        if node in self.enqueued:
            return
        if max_depth is not None and depth > max_depth:
            self.beyond_depth.add(node)
            return
        self.beyond_depth.discard(node)
        self.enqueued.add(node)
        self.stats["nodes/queued"] += 1
        for endpoint in endpoints_for(node.kind, self.origins):
            self.queue.put_nowait((node, endpoint, depth))

    async def run(self) -> CrawlReport:
        started = time.monotonic()
        for seed in self.options.seeds:
            self.discover(seed, 0)
        workers = [asyncio.create_task(self.work()) for _ in range(max(self.options.concurrency, 1))]
        waiters = [asyncio.create_task(self.queue.join()), asyncio.create_task(self.stopped.wait()),
                   asyncio.create_task(self.interrupt.wait())]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            asyncio.current_task().uncancel()
            self.interrupt.set()
        finally:
            for task in workers + waiters:
                task.cancel()
            await asyncio.gather(*workers, *waiters, return_exceptions=True)
            self.report.seconds = time.monotonic() - started
            self.report.counts["beyond_max_depth"] = len(self.beyond_depth)
            self.report.origins = frozenset(self.origins)
        if self.interrupt.is_set() and self.report.outcome != "fatal":
            # What finished is already with the sink; the rest is simply not known yet.
            self.report.outcome = "interrupted"
            self.report.message = "interrupted; finished fetches are stored, the rest stays unknown"
        if self.report.outcome == "complete" and self.report.failures:
            self.report.outcome = "failures"
        self.flag_catastrophe()
        return self.report

    def flag_catastrophe(self) -> None:
        """Every node deleted upstream is far likelier a wrong --base-url or version: say so."""
        counts = self.report.counts
        if self.report.outcome == "complete" and counts["fetched"] and counts["missing"] == counts["fetched"]:
            self.report.outcome = "failures"
            self.report.message = ("every fetch answered 404: check --base-url (the server root, without "
                                   "/api/VERSION) and --api-version; nothing is known about these nodes")

    async def work(self) -> None:
        while True:
            node, endpoint, depth = await self.queue.get()
            try:
                if endpoint.origin in self.origins and not (self.stopped.is_set() or self.interrupt.is_set()):
                    await self.fetch(node, endpoint, depth)
            except STOPPING_ERRORS as exc:
                self.stop(str(exc))
            except Exception as exc:  # the writer failed: nothing more can be stored
                self.stop(f"could not store results: {type(exc).__name__}: {exc}")
            finally:
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


async def crawl(fetcher: Fetcher, sink: Sink, options: CrawlOptions, stats: Counter | None = None,
                interrupt: asyncio.Event | None = None) -> CrawlReport:
    """Crawl the upstream closure of ``options.seeds``; every result goes to ``sink``.

    Setting ``interrupt`` (or cancelling) ends the crawl as 'interrupted' instead of raising.
    """
    return await _Crawl(fetcher, sink, options, stats if stats is not None else Counter(), interrupt).run()
