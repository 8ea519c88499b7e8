"""Whole crawls against the sandbox: the stored answers equal the generator's ground truth."""

from __future__ import annotations

from collections import Counter
from contextlib import closing

import pytest
from conftest import doc, media, pub

from crawler import answers
from crawler.api import NodeUnavailable
from crawler.demo import stored_edges
from crawler.engine import CrawlOptions, crawl
from crawler.model import ORIGINS, FetchResult, Node, Reference
from crawler.runner import CrawlSettings, run_crawl
from crawler.sandbox import DEFAULT_NO_DRAFTS_TOKEN, DEFAULT_TOKEN, make_app, serve
from crawler.sandbox_data import Dataset
from crawler.store import open_readonly

ALL = set(ORIGINS)


async def crawl_sandbox(db, dataset, seeds, *, version="2026-01", origins=ALL, concurrency=8, max_depth=None,
                        token=DEFAULT_TOKEN, **app_kwargs):
    app = make_app(dataset, **app_kwargs)
    async with serve(app) as url:
        settings = CrawlSettings(db=db, base_url=url, api_version=version, token=token,
                                 options=CrawlOptions(tuple(seeds), frozenset(origins), concurrency, max_depth))
        run = await run_crawl(settings)
    return run, app["stats"]


def first_pages(stats) -> Counter:
    """How often each (endpoint, node) was started: its first page has no cursor and offset 0."""
    return Counter((name, node) for name, node, q in stats.log if "after" not in q and q.get("offset", "0") == "0")


@pytest.mark.parametrize("version", ["2025-11", "2026-01"])
async def test_newsroom_crawl_equals_ground_truth(db, newsroom, version):
    seeds = [media(i) for i in newsroom.media_ids()]
    run, stats = await crawl_sandbox(db, newsroom, seeds, version=version)
    assert run.report.outcome == "complete" and not run.report.failures
    assert not stats.repeated_pages() and set(first_pages(stats).values()) == {1}
    with closing(open_readonly(db)) as conn:
        assert stored_edges(conn) == newsroom.closure_edges(seeds)
        for kind in ("media", "document"):
            got = answers.orphans_answer(conn, kind, ALL)
            assert {Node(o["kind"], o["id"]) for o in got["orphans"]} == newsroom.orphans(kind, seeds)
            assert got["unknown"] == [] and got["missing"] == []
        hubs = Counter(e.target for e in newsroom.edges).most_common(3)
        for node in [n for n, _ in hubs] + seeds[:40:7] + [Node("document", "1075")]:
            impact = answers.impact_answer(conn, node, ALL)
            assert {Node(n["kind"], n["id"]): n["depth"] for n in impact["nodes"]} == newsroom.impact(node)
            refs = answers.refs_answer(conn, node, ALL)
            assert {(r["node"], r["origin"]) for r in refs["references"]} == \
                {(str(e.source), e.origin) for e in newsroom.refs(node)}
            assert refs["counts"] == {"references": len(newsroom.refs(node)),
                                      "referrers": len({e.source for e in newsroom.refs(node)})}


async def test_requests_in_flight_reach_but_never_exceed_concurrency(db, newsroom):
    seeds = [media(i) for i in newsroom.media_ids()[:300]]
    run, stats = await crawl_sandbox(db, newsroom, seeds, concurrency=4, hold_until_in_flight=4)
    assert run.report.outcome == "complete"
    assert stats.max_in_flight == 4 and stats.hold_timeouts == 0


async def test_max_depth_bounds_the_closure(db, newsroom):
    seeds = [media(i) for i in newsroom.media_ids()[:200]]
    await crawl_sandbox(db, newsroom, seeds, max_depth=1)
    with closing(open_readonly(db)) as conn:
        crawled = {Node(k, i) for k, i in conn.execute(
            "SELECT DISTINCT n.kind, n.id FROM fetches f JOIN nodes n USING (node_id)")}
    assert crawled == newsroom.closure(seeds, max_depth=1)


async def test_cycles_and_self_references_are_fetched_once(db):
    a, b = doc(1), doc(2)
    dataset = Dataset.from_edges([], [pub(a, b), pub(b, a), pub(a, a), pub(b, media("m"))])
    run, stats = await crawl_sandbox(db, dataset, [media("m")])
    assert set(first_pages(stats).values()) == {1} and len(first_pages(stats)) == 2 + 3 + 3
    with closing(open_readonly(db)) as conn:
        impact = answers.impact_answer(conn, media("m"), ALL)
    assert [(n["node"], n["depth"]) for n in impact["nodes"]] == [("document:2", 1), ("document:1", 2)]


async def test_a_token_without_drafts_scope_switches_drafts_off_once(db):
    dataset = Dataset.from_edges([], [pub(doc(1), media("m")), Reference.make(doc(2), doc(1), "draft", {"id": "1"})])
    run, _ = await crawl_sandbox(db, dataset, [media("m")], token=DEFAULT_NO_DRAFTS_TOKEN, concurrency=1)
    # Finished, but documents are not fully known without drafts: exit 3, not 0.
    assert run.report.outcome == "failures" and len(run.report.warnings) == 1
    assert "draft" not in run.report.origins
    with closing(open_readonly(db)) as conn:
        (message,), = conn.execute("SELECT message FROM crawls").fetchall()
        assert "drafts switched off" in message
        documents = answers.orphans_answer(conn, "document", ALL)
    # Without drafts nobody can say that document 1 is unreferenced: it is unknown, not orphan.
    assert documents["orphans"] == [] and [u["node"] for u in documents["unknown"]] == ["document:1"]


async def test_a_rejected_token_stops_the_crawl(db, newsroom):
    run, stats = await crawl_sandbox(db, newsroom, [media(i) for i in newsroom.media_ids()[:50]], token="wrong")
    assert run.report.outcome == "fatal" and "token rejected" in run.report.message
    assert stats.requests <= 8  # each worker stops after its first answer


class FailingFor:
    """A fetcher that fails one node for good and asks the sandbox-free graph for the rest."""

    def __init__(self, dataset: Dataset, broken: Node):
        self.dataset, self.broken = dataset, broken

    async def incoming(self, endpoint, node):
        if node == self.broken:
            raise NodeUnavailable("HTTP 500 after 6 attempt(s)")
        refs = [Reference.make(src, node, endpoint.origin, f) for src, fs in self.dataset.incoming(endpoint, node)
                for f in fs]
        return FetchResult(node, endpoint, "complete", refs, len({r.source for r in refs}), 1)


class ListSink:
    def __init__(self):
        self.results = []

    async def put(self, result):
        self.results.append(result)


async def test_a_node_that_fails_is_reported_not_dropped():
    dataset = Dataset.from_edges([media("unused")], [pub(doc(1), media("m"))])
    sink = ListSink()
    report = await crawl(FailingFor(dataset, media("unused")), sink,
                         CrawlOptions((media("m"), media("unused"))))
    assert report.outcome == "failures"
    assert {(f.node, f.status) for f in report.failures} == {(media("unused"), "failed")}
    assert all(r.status == "complete" for r in sink.results if r.node != media("unused"))


class InterruptAfter(FailingFor):
    """Sets the crawl's interrupt (as SIGINT would) once it has answered ``count`` fetches."""

    def __init__(self, dataset: Dataset, count: int, interrupt):
        super().__init__(dataset, broken=None)
        self.count, self.interrupt = count, interrupt

    async def incoming(self, endpoint, node):
        self.count -= 1
        if self.count == 0:
            self.interrupt.set()
        return await super().incoming(endpoint, node)


async def test_an_interrupt_ends_the_crawl_as_interrupted_keeping_what_finished(newsroom):
    import asyncio

    interrupt, sink = asyncio.Event(), ListSink()
    seeds = tuple(media(i) for i in newsroom.media_ids()[:100])
    report = await crawl(InterruptAfter(newsroom, 5, interrupt), sink, CrawlOptions(seeds, concurrency=1),
                         interrupt=interrupt)
    assert report.outcome == "interrupted" and "the rest stays unknown" in report.message
    assert len(sink.results) == 5 and report.counts["fetched"] == 5
