"""Property: for any small graph, version and page size, crawl(sandbox(G)) stores exactly G's
upstream closure of the seeds, and the orphans are exactly the true ones."""

from __future__ import annotations

import asyncio
import tempfile
from contextlib import closing
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crawler import answers
from crawler.demo import stored_edges
from crawler.engine import CrawlOptions
from crawler.model import ORIGINS, Node, Reference
from crawler.runner import CrawlSettings, run_crawl
from crawler.sandbox import DEFAULT_TOKEN, make_app, serve
from crawler.sandbox_data import Dataset
from crawler.store import open_readonly

MEDIA_IDS = ["a", "b/c", "..", "d e", "1", "f+g=", "ü", "x'); DROP TABLE edges;--"]
# (origin, source kind, target kind) that an endpoint can show
SHAPES = [("publication", "document", "document"), ("publication", "document", "media"),
          ("draft", "document", "document"), ("media", "media", "document"), ("media", "media", "media")]


@st.composite
def graphs(draw):
    docs = [Node("document", str(i)) for i in range(1, draw(st.integers(1, 5)) + 1)]
    media = [Node("media", i) for i in draw(st.lists(st.sampled_from(MEDIA_IDS), min_size=1, max_size=5, unique=True))]
    pools = {"document": docs, "media": media}
    edges = []
    for _ in range(draw(st.integers(0, 14))):
        origin, source_kind, target_kind = draw(st.sampled_from(SHAPES))
        source, target = draw(st.sampled_from(pools[source_kind])), draw(st.sampled_from(pools[target_kind]))
        place = draw(st.integers(0, 2))  # the same pair at up to three places
        edges.append(Reference.make(source, target, origin, {"id": target.id, "componentId": f"c{place}"}))
    nodes = docs + media
    seeds = draw(st.lists(st.sampled_from(nodes), min_size=1, max_size=4, unique=True))
    return Dataset.from_edges(nodes, edges), seeds


async def crawl(dataset, seeds, version, limit, db):
    async with serve(make_app(dataset)) as url:
        return await run_crawl(CrawlSettings(db=db, base_url=url, api_version=version, token=DEFAULT_TOKEN,
                                             options=CrawlOptions(tuple(seeds), frozenset(ORIGINS), 3),
                                             page_limit=limit))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs(), st.sampled_from(["2025-11", "2026-01"]), st.integers(1, 4))
def test_crawl_of_any_graph_equals_its_truth(graph, version, limit):
    dataset, seeds = graph
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "p.db")
        run = asyncio.run(crawl(dataset, seeds, version, limit, db))
        assert run.report.outcome == "complete"
        with closing(open_readonly(db)) as conn:
            assert stored_edges(conn) == dataset.closure_edges(seeds)
            for kind in ("media", "document"):
                got = answers.orphans_answer(conn, kind, set(ORIGINS))
                assert {Node(o["kind"], o["id"]) for o in got["orphans"]} == dataset.orphans(kind, seeds)
            for node in seeds:
                impact = answers.impact_answer(conn, node, set(ORIGINS))
                assert {Node(n["kind"], n["id"]): n["depth"] for n in impact["nodes"]} == dataset.impact(node)
