"""The query figures' database: a newsroom of a million nodes and three million references,
written through the store's own write path as one complete crawl.

The shape is a newsroom's, scaled up: articles with galleries of images picked with a
power-law popularity (so a long tail is used once or never), three logos and one staff
author that a large share of articles show (the hubs, each with 100 000+ referrers), links
between articles, section pages with teasers, video posters and photographers (media to
media and media to document), drafts that reference what their publication references, and a
few nodes whose crawl failed or that were deleted upstream, so answers carry unknowns as in
life. The same arguments always give the same database.

    python -m bench.bigdb OUT.db [--nodes N] [--edges E] [--seed S]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import sqlite3
import string
import sys
import time
from array import array
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from crawler.model import ENDPOINTS, FetchResult, Node, Reference, canonical_json, endpoints_for
from crawler.newsroom import directive_fields, link_fields, metadata_fields
from crawler.store import BatchWriter, Store

__all__ = ["Plan", "plan", "fetch_results", "build"]

NODES, EDGES = 1_000_000, 3_000_000
MEDIA_SHARE = 0.75
AUTHOR_SHARE, PAGE_SHARE = 0.01, 0.004
LOGO_SHARES = (0.85, 0.45, 0.10)  # of articles showing logo 0, 1, 2
TOP_AUTHOR_SHARE = 0.45  # of articles written by the staff author
LINK_SHARE = 0.3  # of articles linking 1-3 other articles
FAILED_SHARE, MISSING_SHARE = 0.001, 0.0005  # of media whose crawl failed; of documents deleted
IMAGE_ZIPF = 0.8  # popularity exponent of gallery images
_BASE62 = string.digits + string.ascii_letters

# What an edge is, by code: (origin, how its reference object looks).
KINDS = ("image", "logo", "author", "link", "teaser", "poster", "photographer")
ORIGIN_OF = {"image": "publication", "logo": "publication", "author": "publication", "link": "publication",
             "teaser": "publication", "poster": "media", "photographer": "media"}
DRAFTED = {"author", "link", "teaser"}  # document-to-document references a draft repeats


@dataclass
class Plan:
    """Every edge as integer arrays (node index of source and target, kind code), plus the
    nodes the bench asks about. Node index i < media is media i, else document i - media."""

    media: int
    documents: int
    seed: int
    source: array = field(repr=False)
    target: array = field(repr=False)
    kind: array = field(repr=False)
    draft: array = field(repr=False)  # 1 when the edge is a draft's copy of a publication's reference
    failed: set[int] = field(repr=False, default_factory=set)  # media whose publication fetch failed
    missing: set[int] = field(repr=False, default_factory=set)  # documents deleted upstream
    picks: dict[str, str] = field(default_factory=dict)  # role -> node, for the bench's questions
    media_ids: list[str] = field(repr=False, default_factory=list)

    @property
    def edges(self) -> int:
        return len(self.source)

    def node(self, index: int) -> Node:
        if index < self.media:
            return Node("media", self.media_ids[index])
        return Node("document", str(100_000 + index - self.media))


def _media_ids(rng: random.Random, count: int) -> list[str]:
    """Distinct 12-character base62 ids: a random prefix, then the index in base62."""
    ids = []
    for index in range(count):
        digits, n = [], index
        for _ in range(6):
            n, r = divmod(n, 62)
            digits.append(_BASE62[r])
        ids.append("".join(rng.choices(_BASE62, k=6)) + "".join(reversed(digits)))
    return ids


def plan(nodes: int = NODES, edges: int = EDGES, seed: int = 1) -> Plan:
    """Decide every edge, exactly ``edges`` of them among exactly ``nodes`` nodes."""
    rng = random.Random(seed)
    media = round(nodes * MEDIA_SHARE)
    documents = nodes - media
    n_authors, n_pages = max(1, round(documents * AUTHOR_SHARE)), max(2, round(documents * PAGE_SHARE))
    doc = lambda i: media + i  # noqa: E731
    authors = [doc(i) for i in range(n_authors)]
    pages = [doc(n_authors + i) for i in range(n_pages)]
    articles = [doc(i) for i in range(n_authors + n_pages, documents)]
    logos = [0, 1, 2]
    images = list(range(3, media))
    out = Plan(media, documents, seed, array("i"), array("i"), array("b"), array("b"),
               media_ids=_media_ids(random.Random(seed + 2), media))

    def add(source: int, target: int, kind: str) -> None:
        out.source.append(source)
        out.target.append(target)
        out.kind.append(KINDS.index(kind))
        out.draft.append(0)
        if kind in DRAFTED:
            out.source.append(source)
            out.target.append(target)
            out.kind.append(KINDS.index(kind))
            out.draft.append(1)

    rest = [1 / (rank + 1) for rank in range(1, n_authors)]
    author_weights = list(itertools.accumulate([TOP_AUTHOR_SHARE / (1 - TOP_AUTHOR_SHARE) * sum(rest) or 1.0] + rest))
    for article in articles:
        for author in dict.fromkeys(rng.choices(authors, cum_weights=author_weights, k=2 if rng.random() < 0.15 else 1)):
            add(article, author, "author")
        for logo, share in zip(logos, LOGO_SHARES):
            if rng.random() < share:
                add(article, logo, "logo")
        if rng.random() < LINK_SHARE:
            for other in rng.sample(articles, rng.randint(1, 3)):
                if other != article:
                    add(article, other, "link")
    for i, page in enumerate(pages):  # the homepage teases every section page; sections tease articles
        for target in (pages[1:] if i == 0 else rng.sample(articles, 20)):
            add(page, target, "teaser")
    for image in rng.sample(images, len(images) // 50):
        add(image, rng.choice(images), "poster")
    for image in rng.sample(images, len(images) // 20):
        add(image, rng.choice(authors), "photographer")
    # Gallery images take whatever is left of the edge budget, so the total is exact.
    left = edges - len(out.source)
    if left < len(articles):
        raise ValueError(f"{edges} edges are too few for {nodes} nodes (need more than {edges - left + len(articles)})")
    image_weights = list(itertools.accumulate(1 / (rank + 1) ** IMAGE_ZIPF for rank in range(len(images))))
    shares = [rng.random() ** 2 for _ in articles]  # some articles carry big galleries, most a few images
    scale = (left - len(articles)) / sum(shares)
    counts = [1 + int(s * scale) for s in shares]
    for i in rng.sample(range(len(articles)), left - sum(counts)):
        counts[i] += 1
    for article, count in zip(articles, counts):
        for image in rng.choices(images, cum_weights=image_weights, k=count):
            out.source.append(article)
            out.target.append(image)
            out.kind.append(KINDS.index("image"))
            out.draft.append(0)
    assert len(out.source) == edges
    degree: dict[int, int] = {}
    for t in out.target:
        degree[t] = degree.get(t, 0) + 1
    # Failures and deletions fall on nodes nothing references, so every planned edge is stored:
    # an unreferenced image whose fetch failed is exactly the one an orphans answer must not list.
    unused = [i for i in images if i not in degree]
    out.failed = set(rng.sample(unused, min(len(unused), round(media * FAILED_SHARE))))
    unread = [a for a in articles if a not in degree]
    out.missing = set(rng.sample(unread, min(len(unread), round(documents * MISSING_SHARE))))
    _pick(out, degree, images, logos, authors)
    return out


def _pick(out: Plan, degree: dict[int, int], images: list[int], logos: list[int], authors: list[int]) -> None:
    """The nodes the bench asks about: a typical image (the median referrer count among used
    images), the largest hub, and the staff author."""
    used = sorted(degree[i] for i in images if i in degree)
    median = used[len(used) // 2]
    typical = next(i for i in images if degree.get(i) == median)
    hub = max(logos + authors, key=lambda i: degree.get(i, 0))
    out.picks = {"typical": str(out.node(typical)), "hub": str(out.node(hub)),
                 "author": str(out.node(authors[0])), "typical_referrers": str(median),
                 "hub_references": str(degree[hub])}


_ID, _COMPONENT = "@id@", "@" * 10  # placeholders no field maker writes itself


class _Sentinel(random.Random):
    """Makes the field makers write a placeholder where their random component id goes."""

    def choices(self, population, weights=None, *, cum_weights=None, k=1):
        return list(_COMPONENT)


def _templates() -> dict[str, tuple[str, str | None, str | None]]:
    """Per kind of edge: its reference's canonical JSON with {id} and {component} slots (made by
    the newsroom's own field makers, so the shape is theirs), its type and its location."""
    rng, target = _Sentinel(), Node("media", _ID)
    fields = {"image": directive_fields(rng, target, "image", "image"),
              "logo": directive_fields(rng, target, "image", "logo"),
              "author": metadata_fields(target, "document", "author"),
              "link": link_fields(rng, target),
              "teaser": {**link_fields(rng, target), "location": "include-directive", "componentName": "teaser"},
              "poster": metadata_fields(target, "image", "posterImage"),
              "photographer": metadata_fields(target, "document", "photographer")}
    out = {}
    for kind, f in fields.items():
        text = canonical_json(f).replace("{", "{{").replace("}", "}}")
        text = text.replace(_COMPONENT, "{component}").replace(_ID, "{id}")
        out[kind] = (text, f.get("type"), f.get("location"))
    return out


def fetch_results(p: Plan) -> Iterator[FetchResult]:
    """One complete crawl's results, node by node and endpoint by endpoint, as the crawler hands
    them to the store: failed fetches keep what arrived, deleted documents answer 404."""
    templates = [_templates()[kind] for kind in KINDS]
    nodes = [p.node(i) for i in range(p.media + p.documents)]
    order = sorted(range(p.edges), key=p.target.__getitem__)
    by_endpoint = {(e.origin, e.source_kind, e.target_kind): e for e in ENDPOINTS}
    endpoints = {kind: endpoints_for(kind) for kind in ("media", "document")}
    position = 0
    for index in range(p.media + p.documents):
        node = nodes[index]
        incoming: dict[str, list[Reference]] = {e.name: [] for e in endpoints[node.kind]}
        while position < len(order) and p.target[order[position]] == index:
            edge = order[position]
            position += 1
            code = p.kind[edge]
            origin = "draft" if p.draft[edge] else ORIGIN_OF[KINDS[code]]
            source = nodes[p.source[edge]]
            endpoint = by_endpoint[(origin, source.kind, node.kind)]
            text, ref_type, location = templates[code]
            ref_json = text.format(id=node.id, component=f"{edge:010x}")  # one per edge: none collapse
            incoming[endpoint.name].append(Reference(source, node, origin, ref_json, ref_type, location))
        for endpoint in endpoints[node.kind]:
            refs = incoming[endpoint.name]
            referrers = len({r.source for r in refs})
            pages = max(1, -(-referrers // 100))
            if index in p.missing:
                yield FetchResult(node, endpoint, "missing", [], error=f"{node} not found (HTTP 404)")
            elif index in p.failed and endpoint.origin == "publication":
                yield FetchResult(node, endpoint, "failed", refs, referrers, 0, None, "HTTP 500 after 6 attempt(s)")
            else:
                yield FetchResult(node, endpoint, "complete", refs, referrers, pages, referrers)


async def write(path: Path, p: Plan) -> dict:
    """Store the plan as one crawl, through BatchWriter and Store.save."""
    store = await Store.open(path)
    try:
        crawl_id = await store.begin_crawl(
            base_url="http://bench.invalid", api_version="2026-01", origins=("draft", "media", "publication"),
            args={"bench": {"media": p.media, "documents": p.documents, "edges": p.edges, "seed": p.seed}},
            seeds=[p.node(i) for i in range(p.media + p.documents)])
        writer = BatchWriter(store, crawl_id)
        fetched = failed = missing = 0
        for n, result in enumerate(fetch_results(p)):
            await writer.put(result)
            if n % 64 == 0:
                # Let the writer take its turn: put() returns at once while the queue has room,
                # and the writer's statements go on only when this loop yields.
                await asyncio.sleep(0)
            fetched += 1
            failed += result.status == "failed"
            missing += result.status == "missing"
        await writer.close()
        outcome = "failures" if failed else "complete"
        await store.finish_crawl(crawl_id, outcome, None, ("draft", "media", "publication"), [],
                                 {"fetched": fetched, "failed": failed, "missing": missing, "edges": p.edges},
                                 {"requests/total": fetched})
        await store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        await store.close()
    return {"fetches": fetched, "failed": failed, "missing": missing}


def build(path: Path, nodes: int = NODES, edges: int = EDGES, seed: int = 1) -> dict:
    """Make the database at ``path`` (which must not exist); what it holds and how long it took."""
    started = time.perf_counter()
    p = plan(nodes, edges, seed)
    planned = time.perf_counter()
    figures = asyncio.run(write(path, p))
    done = time.perf_counter()
    with closing(sqlite3.connect(path)) as conn:
        stored = conn.execute("SELECT (SELECT count(*) FROM nodes), (SELECT count(*) FROM edges)").fetchone()
    if stored != (nodes, p.edges):
        raise AssertionError(f"{path}: stored {stored[0]} nodes and {stored[1]} edges, planned {nodes} and {p.edges}")
    return {"nodes": nodes, "edges": p.edges, "seed": seed, **figures, "picks": p.picks,
            "plan_seconds": round(planned - started, 1), "write_seconds": round(done - planned, 1),
            "edges_per_second": round(p.edges / (done - planned))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--nodes", type=int, default=NODES)
    parser.add_argument("--edges", type=int, default=EDGES)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if Path(args.out).exists():
        sys.exit(f"{args.out}: exists; refusing to add a second bench crawl to it")
    print(json.dumps(build(Path(args.out), args.nodes, args.edges, args.seed)))


if __name__ == "__main__":
    main()
