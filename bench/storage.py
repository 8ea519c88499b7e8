"""Storage figures: edges per second through the store's own write path, and bytes per edge.

The fetch results are made exactly as the crawler makes them (the sandbox's answers parsed
by ``crawler.api.parse_page``, one result per node and endpoint of the crawl's closure), then
written through ``BatchWriter`` and ``Store.save`` into a new database with every index in
place, so the figure is the crawl's own write path without the network.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from crawler.api import parse_page
from crawler.model import FetchResult, Node, endpoints_for
from crawler.newsroom import generate
from crawler.store import BatchWriter, Store

MEDIA, DOCUMENTS = 14_000, 7_000  # the crawl bench's newsroom
TARGET_EDGES_PER_SECOND = 25_000


def crawl_results(media: int, documents: int, seed: int = 1) -> list[FetchResult]:
    """What a complete crawl of the newsroom from every media id hands to the store."""
    dataset = generate(media=media, documents=documents, seed=seed)
    seeds = [Node("media", m) for m in dataset.media_ids()]
    results = []
    for node in sorted(dataset.closure(seeds), key=Node.sort_key):
        for endpoint in endpoints_for(node.kind):
            listed = dataset.incoming(endpoint, node)
            body = [{"id": int(s.id) if s.kind == "document" else s.id, "references": refs} for s, refs in listed]
            page = parse_page(body, endpoint, node)
            results.append(FetchResult(node, endpoint, "complete", page.references, len(listed),
                                       max(1, -(-len(listed) // 100)), len(listed)))
    return results


async def write(path: Path, results: list[FetchResult]) -> dict:
    """Write ``results`` as one crawl would; the seconds cover the writes and the last commit."""
    store = await Store.open(path)
    saves = 0
    save = store.save

    async def counted(crawl_id, batch):
        nonlocal saves
        saves += 1
        await save(crawl_id, batch)

    store.save = counted
    try:
        crawl_id = await store.begin_crawl(base_url="http://bench", api_version="2026-01",
                                           origins=("media", "publication", "draft"), args={}, seeds=[])
        started = time.perf_counter()
        writer = BatchWriter(store, crawl_id)
        for result in results:
            await writer.put(result)
        await writer.close()
        seconds = time.perf_counter() - started
        await store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        await store.close()
    return {"seconds": seconds, "transactions": saves}


def _one(results: list[FetchResult]) -> dict:
    edges = sum(len(r.references) for r in results)
    with tempfile.TemporaryDirectory(prefix="refgraph-bench-") as tmp:
        path = Path(tmp) / "storage.db"
        figures = asyncio.run(write(path, results))
        size = os.path.getsize(path)
    return {"edges": edges, "fetches": len(results), "seconds": round(figures["seconds"], 3),
            "transactions": figures["transactions"], "edges_per_second": round(edges / figures["seconds"]),
            "bytes_per_edge": round(size / edges, 1), "db_bytes": size}


def measure(runs: int = 3, media: int = MEDIA, documents: int = DOCUMENTS) -> dict:
    """Medians of ``runs`` writes of the same crawl results into a new database each."""
    results = crawl_results(media, documents)
    samples = [_one(results) for _ in range(runs)]
    return {"media": media, "documents": documents, "edges": samples[0]["edges"], "fetches": samples[0]["fetches"],
            "transactions": samples[0]["transactions"],
            "edges_per_second": statistics.median(s["edges_per_second"] for s in samples),
            "bytes_per_edge": statistics.median(s["bytes_per_edge"] for s in samples),
            "target_edges_per_second": TARGET_EDGES_PER_SECOND, "runs": samples}


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
