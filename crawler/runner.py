"""One crawl run: the database, the HTTP session, the writer and the engine, put together.

Used by ``refgraph crawl`` and ``refgraph demo``. Whatever happens, everything already finished
is flushed to the database and the run is recorded with its outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import gc
import io
import signal
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .api import DEFAULT_TIMEOUT, PAGE_LIMIT, open_session
from .client import Client
from .engine import CrawlOptions, CrawlReport, crawl
from .model import Node
from .progress import Reporter
from .retry import DEFAULT_BACKOFF, DEFAULT_RETRIES
from .store import BatchWriter, Store, check_database, utc_now
from .throttle import Throttle

__all__ = ["CrawlSettings", "CrawlRun", "CrawlLocked", "run_crawl"]

GC_THRESHOLD = 10_000  # new objects between collections of the youngest generation (Python's default: 700)


@dataclass(frozen=True)
class CrawlSettings:
    db: str
    base_url: str
    api_version: str
    token: str = field(repr=False)  # never printed, never stored
    options: CrawlOptions
    insecure: bool = False
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    backoff: float = DEFAULT_BACKOFF
    rate: float | None = None  # requests per second, across all workers
    page_limit: int = PAGE_LIMIT  # the API's maximum; smaller only to exercise paging in tests
    resume: int | None = None  # the crawl to carry on; its seeds come from the database
    stale_after: float | None = None  # seconds: pairs fetched completely more recently are not fetched again
    all_published: bool = False  # add every published document (publications search) to the seeds

    def recorded_args(self) -> dict[str, Any]:
        """What the crawls table keeps about this run: everything but the token."""
        o = self.options
        return {"base_url": self.base_url, "api_version": self.api_version,
                "origins": sorted(o.origins), "concurrency": o.concurrency, "max_depth": o.max_depth,
                "seeds": len(o.seeds), "insecure": self.insecure, "timeout": self.timeout,
                "retries": self.retries, "rate": self.rate, "stale_after": self.stale_after,
                "all_published": self.all_published}


@dataclass
class CrawlRun:
    crawl_id: int
    report: CrawlReport
    stats: Counter


async def run_crawl(settings: CrawlSettings, reporter: Reporter | None = None) -> CrawlRun:
    """Crawl, store, record. A Ctrl-C ends it as 'interrupted' with everything finished kept."""
    with _signals_interrupt() as interrupt, _fewer_collections():  # signals from the start: never a 'running' row
        return await _run(settings, interrupt, reporter or Reporter(io.StringIO(), quiet=True))


@contextlib.contextmanager
def _fewer_collections():
    """Run the cyclic garbage collector less often while crawling.

    A crawl's state grows by a few objects with every request (nodes seen, results waiting for
    the writer, the requests in flight), and by default every 700 new objects set off a
    collection: about 3% of a crawl's CPU went there. What was allocated before (modules, seeds)
    is frozen out of the collector's scans. Restored afterwards; a crawl inside another (tests)
    leaves the settings to the outer one.
    """
    threshold = gc.get_threshold()
    if threshold[0] >= GC_THRESHOLD:
        yield
        return
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


class CrawlLocked(Exception):
    """Another crawl is writing to this database right now."""


@contextlib.contextmanager
def _exclusive(db: str):
    """One crawl per database at a time: two would fetch everything twice and race on the
    crawl's row. The lock is the OS's, so a killed crawl never leaves it held."""
    check_database(db, must_exist=False)  # a foreign file gets no lock file beside it either
    try:
        handle = open(f"{db}.lock", "a")
    except OSError:  # an unwritable directory: Store.open will say so clearly
        yield
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise CrawlLocked(f"{db}: another refgraph crawl is writing to this database; wait for it, "
                          "or stop it and use --resume") from None
    try:
        yield
    finally:
        handle.close()


async def _run(settings: CrawlSettings, interrupt: asyncio.Event, reporter: Reporter) -> CrawlRun:
    with _exclusive(settings.db):
        return await _run_locked(settings, interrupt, reporter)


async def _run_locked(settings: CrawlSettings, interrupt: asyncio.Event, reporter: Reporter) -> CrawlRun:
    stats: Counter = Counter()
    store = await Store.open(settings.db)
    try:
        async with open_session(settings.token, insecure=settings.insecure, timeout=settings.timeout,
                                concurrency=settings.options.concurrency) as session:
            client = Client(session, settings.base_url, settings.api_version, stats=stats,
                            retries=settings.retries, backoff=settings.backoff, limit=settings.page_limit,
                            secret=settings.token, on_event=reporter.event,
                            throttle=Throttle(settings.options.concurrency, settings.rate, stats))
            run = await _crawl(settings, store, client, stats, interrupt, reporter)
    finally:
        await store.close()
    return run


async def _crawl(settings: CrawlSettings, store: Store, client: Client, stats: Counter, interrupt: asyncio.Event,
                 reporter: Reporter) -> CrawlRun:
    previous = await store.previous_base_url()
    published, warning = (await client.published_documents()) if settings.all_published else ([], None)
    crawl_id, options, replay = await _begin(store, settings, published)
    reporter.event("start", **{**settings.recorded_args(), "crawl_id": crawl_id, "seeds": len(options.seeds),
                               "resumed": settings.resume is not None, "fresh_pairs": len(replay)})
    writer = BatchWriter(store, crawl_id)
    progress = asyncio.create_task(reporter.run(stats))
    try:
        report = await crawl(client, writer, options, stats, interrupt, replay, reporter.event)
    finally:
        progress.cancel()
        reporter.finish()
    report.warnings += [w for w in [warning] if w]
    if previous not in (None, settings.base_url):
        report.warnings.append(f"this database was last crawled from {previous}; answers now mix "
                               f"both servers (use one database per installation)")
    try:
        await writer.close()
    except Exception as exc:  # e.g. disk full: the run is recorded as fatal, not as done
        report.outcome, report.message = "fatal", f"could not write to {settings.db}: {exc}"
    message = "; ".join(filter(None, [report.message, *report.warnings])) or None
    await store.finish_crawl(crawl_id, report.outcome, message, report.origins or options.origins,
                             report.flags, dict(report.counts), dict(stats))
    c = report.counts  # every key always present, so that log queries need no defaults
    reporter.event("end", crawl_id=crawl_id, outcome=report.outcome, message=message, flags=report.flags,
                   seconds=round(report.seconds, 3), nodes=stats["nodes/queued"], fetched=c["fetched"],
                   complete=c["complete"], failed=c["failed"], missing=c["missing"], references=c["edges"],
                   kept=stats["fetch/replayed"], kept_referrers=c["replayed_referrers"],
                   beyond_max_depth=c["beyond_max_depth"], requests=stats["requests/total"],
                   retries=stats["retry/count"], pushbacks=stats["throttle/pushback"])
    return CrawlRun(crawl_id, report, stats)


async def _begin(store: Store, settings: CrawlSettings, published: list[Node]) -> tuple[int, CrawlOptions, dict]:
    """The crawl's row and seeds, and what need not be fetched again: pairs still fresh
    (--stale-after), and for --resume the pairs the crawl already finished."""
    fresh = {}
    if settings.stale_after is not None:
        fresh = await store.replay(fresh_since=utc_now(ago=settings.stale_after))
    if settings.resume is None:
        options = dataclasses.replace(settings.options,
                                      seeds=tuple(dict.fromkeys([*settings.options.seeds, *published])))
        crawl_id = await store.begin_crawl(
            base_url=settings.base_url, api_version=settings.api_version, origins=options.origins,
            args=settings.recorded_args(), seeds=options.seeds)
        return crawl_id, options, fresh
    seeds = await store.crawl_seeds(settings.resume)
    done = await store.replay(crawl_id=settings.resume)
    await store.reopen_crawl(settings.resume)
    return settings.resume, dataclasses.replace(settings.options, seeds=tuple(seeds)), {**fresh, **done}


@contextlib.contextmanager
def _signals_interrupt():
    """SIGINT and SIGTERM end the crawl cleanly (recorded, flushed); a second one is abrupt."""
    interrupt = asyncio.Event()
    loop = asyncio.get_running_loop()
    caught = []

    def first(sig: int) -> None:
        interrupt.set()
        loop.remove_signal_handler(sig)  # the next one gets Python's default: stop now

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, first, sig)
            caught.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no such signal
            pass
    try:
        yield interrupt
    finally:
        for sig in caught:
            loop.remove_signal_handler(sig)
