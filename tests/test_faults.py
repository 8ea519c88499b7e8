"""Crawls through a sandbox that misbehaves on purpose: transient faults never change an answer,
permanent ones leave exactly the failing nodes unknown."""

from __future__ import annotations

import asyncio
import tempfile
from contextlib import closing
from pathlib import Path

from conftest import doc, media, pub
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_properties import graphs

from crawler import answers
from crawler.demo import stored_edges
from crawler.engine import CrawlOptions
from crawler.model import ORIGINS, Node
from crawler.runner import CrawlSettings, run_crawl
from crawler.sandbox import DEFAULT_TOKEN, make_app, serve
from crawler.sandbox_data import Dataset
from crawler.sandbox_faults import FAULT_KINDS, Faults
from crawler.store import open_readonly

ALL = set(ORIGINS)


async def crawl(db, dataset, seeds, faults, *, version="2026-01", concurrency=8, timeout=30.0, limit=100,
                max_depth=None):
    app = make_app(dataset, faults=faults)
    async with serve(app) as url:
        run = await run_crawl(CrawlSettings(
            db=db, base_url=url, api_version=version, token=DEFAULT_TOKEN, timeout=timeout, retries=5,
            backoff=0.001, page_limit=limit,
            options=CrawlOptions(tuple(seeds), frozenset(ORIGINS), concurrency, max_depth)))
    return run, app["stats"]


def orphans_of(conn, kind):
    got = answers.orphans_answer(conn, kind, ALL)
    return {Node(o["kind"], o["id"]) for o in got["orphans"]}, {Node(u["kind"], u["id"]) for u in got["unknown"]}


async def test_ten_percent_faults_of_every_kind_change_no_answer(db, newsroom):
    seeds = [media(i) for i in newsroom.media_ids()]
    faults = Faults(rate=0.10, kinds=FAULT_KINDS, seed=3, retry_after=0, slow=0.5)
    run, stats = await crawl(db, newsroom, seeds, faults, timeout=0.25)
    assert run.report.outcome == "complete", run.report.failures[:3]
    assert set(stats.faults) == set(FAULT_KINDS) and run.stats["retry/count"] >= sum(stats.faults.values()) * 0.9
    with closing(open_readonly(db)) as conn:
        assert stored_edges(conn) == newsroom.closure_edges(seeds)
        for kind in ("media", "document"):
            assert orphans_of(conn, kind) == (newsroom.orphans(kind, seeds), set())


async def test_a_server_without_cursor_drifting_under_the_crawl_is_paged_again(db):
    hub = media("hub")
    dataset = Dataset.from_edges([], [pub(doc(1000 + i), hub, type="image") for i in range(250)])
    run, stats = await crawl(db, dataset, [hub], Faults(cursor=False, drift=True))
    assert run.report.outcome == "complete" and run.stats["paging/restart"] >= 1
    with closing(open_readonly(db)) as conn:
        assert stored_edges(conn) == dataset.closure_edges([hub])  # the new referrer included


async def test_past_the_offset_window_only_a_cursor_goes_on(db, tmp_path):
    hub = media("hub")
    dataset = Dataset.from_edges([], [pub(doc(1000 + i), hub, type="image") for i in range(10_050)])
    # Only the hub is fetched (--max-depth 0): its 10 050 referrers are the point, not theirs.
    run, _ = await crawl(db, dataset, [hub], Faults(offset_window=10_000), version="2025-11", max_depth=0)
    failed = {(f.node, f.referrers) for f in run.report.failures}
    assert (hub, 10_000) in failed
    assert "does not page past offset 10000" in run.report.failures[0].error
    run, _ = await crawl(str(tmp_path / "cursor.db"), dataset, [hub], Faults(offset_window=10_000), max_depth=0)
    assert run.report.outcome == "complete"
    with closing(open_readonly(str(tmp_path / "cursor.db"))) as conn:
        assert answers.refs_answer(conn, hub, ALL)["counts"]["referrers"] == 10_050


def reachable_without(dataset: Dataset, seeds, hidden: set[Node]) -> set[Node]:
    """What a crawl can discover when the referrers of ``hidden`` nodes never arrive."""
    seen, todo = set(seeds), list(seeds)
    while todo:
        node = todo.pop()
        if node in hidden:
            continue
        for ref in dataset.refs(node):
            if ref.source not in seen:
                seen.add(ref.source)
                todo.append(ref.source)
    return seen


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs(), st.integers(0, 2**16), st.floats(0.0, 0.4), st.data())
def test_any_graph_with_any_fault_schedule(graph, fault_seed, rate, data):
    dataset, seeds = graph
    failing = set(data.draw(st.lists(st.sampled_from(sorted(dataset.nodes)), max_size=2, unique=True)))
    faults = Faults(rate=rate, kinds=("429", "503", "500", "reset", "truncated"), seed=fault_seed, retry_after=0,
                    failing=frozenset(str(n) for n in failing))
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "f.db")
        run, _ = asyncio.run(crawl(db, dataset, seeds, faults, concurrency=3, limit=2))
        discovered = reachable_without(dataset, seeds, failing)
        with closing(open_readonly(db)) as conn:
            for kind in ("media", "document"):
                orphans, unknown = orphans_of(conn, kind)
                assert unknown == {n for n in failing & discovered if n.kind == kind}
                assert orphans <= dataset.orphans(kind, seeds)  # never an orphan that is not one
                if not failing:
                    assert orphans == dataset.orphans(kind, seeds)
            if not failing:
                assert stored_edges(conn) == dataset.closure_edges(seeds)
        assert run.report.outcome == ("failures" if failing & discovered else "complete")
