"""``refgraph demo``: crawl a generated newsroom served in-process, report, and check the
answers against the sandbox's ground truth.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from contextlib import closing
from dataclasses import dataclass, field

from . import answers, output
from .engine import CrawlOptions
from .model import ORIGINS, Node, Reference
from .newsroom import generate
from .runner import CrawlRun, CrawlSettings, run_crawl
from .sandbox import DEFAULT_TOKEN, make_app, serve
from .sandbox_data import Dataset
from .sandbox_faults import Faults
from .store import open_readonly

__all__ = ["DemoResult", "run_demo", "report_lines"]

ALL = set(ORIGINS)


@dataclass
class DemoResult:
    run: CrawlRun
    dataset: Dataset
    seeds: list[Node]
    seconds: float
    mismatches: list[str]
    faults: Counter = field(default_factory=Counter)  # what the sandbox injected, by kind


async def run_demo(db: str, *, media: int, documents: int, seed: int, concurrency: int,
                   api_version: str = "2026-01", faults: Faults | None = None, timeout: float = 30.0) -> DemoResult:
    dataset = generate(media=media, documents=documents, seed=seed)
    seeds = [Node("media", i) for i in dataset.media_ids()]
    app = make_app(dataset, faults=faults)
    async with serve(app) as base_url:
        settings = CrawlSettings(db=db, base_url=base_url, api_version=api_version, token=DEFAULT_TOKEN,
                                 timeout=timeout, options=CrawlOptions(tuple(seeds), frozenset(ORIGINS), concurrency))
        started = time.monotonic()
        run = await run_crawl(settings)
        seconds = time.monotonic() - started
    return DemoResult(run, dataset, seeds, seconds, compare_with_truth(db, dataset, seeds), app["stats"].faults)


def stored_edges(conn) -> set[Reference]:
    rows = conn.execute(
        "SELECT s.kind, s.id, t.kind, t.id, e.origin, e.ref_json FROM edges e"
        " JOIN nodes s ON s.node_id = e.source_id JOIN nodes t ON t.node_id = e.target_id"
        " WHERE e.removed_crawl IS NULL")
    return {Reference(Node(sk, si), Node(tk, ti), o, j) for sk, si, tk, ti, o, j in rows}


def compare_with_truth(db: str, dataset: Dataset, seeds: list[Node]) -> list[str]:
    """What the stored answers get wrong, by the generator's ground truth (empty: all right)."""
    wrong = []
    with closing(open_readonly(db)) as conn:
        if stored_edges(conn) != dataset.closure_edges(seeds):
            wrong.append("stored references differ from the true references")
        for kind in ("media", "document"):
            found = answers.orphans_answer(conn, kind, ALL)
            if {Node(o["kind"], o["id"]) for o in found["orphans"]} != dataset.orphans(kind, seeds):
                wrong.append(f"{kind} orphans differ from the truth")
        example = impact_example(dataset)
        got = answers.impact_answer(conn, example, ALL) if example else {"nodes": []}
        if example and {Node(n["kind"], n["id"]): n["depth"] for n in got["nodes"]} != dataset.impact(example):
            wrong.append(f"impact of {example} differs from the truth")
    return wrong


def impact_example(dataset: Dataset) -> Node | None:
    """A media entry whose impact fits on a screen and reaches furthest up (then: most origins,
    fewest referrers, id)."""
    candidates = sorted({e.target for e in dataset.edges if e.target.kind == "media"}, key=Node.sort_key)
    scored = [(max(d.values()), -len(d), n) for n in candidates[:400] if 0 < len(d := dataset.impact(n)) <= 12]
    return max(scored, key=lambda s: (s[0], s[1], s[2].sort_key()))[2] if scored else None


def report_lines(result: DemoResult, db: str) -> list[str]:
    run, stats = result.run, result.run.stats
    requests = stats["requests/total"]
    lines = [f"refgraph demo: crawled a generated newsroom ({len(result.dataset.nodes)} nodes) "
             f"from {len(result.seeds)} media seeds",
             f"crawl: {result.seconds:.1f} s, {requests} requests ({requests / max(result.seconds, 1e-9):.0f}/s), "
             f"{stats['retry/count']} retries, outcome {run.report.outcome}, stored in {db}"]
    if result.faults:
        lines.append("faults injected: " + ", ".join(f"{k} {n}" for k, n in sorted(result.faults.items()))
                     + f"; the server pushed back {stats['throttle/pushback']} times, and the crawl slowed down")
    lines.append("")
    with closing(open_readonly(db)) as conn:
        lines += output.stats_text(answers.stats_answer(conn, top=5)) + [""]
        orphans = answers.orphans_answer(conn, "media", ALL)
        lines += _orphan_lines(orphans, result.dataset)
        example = impact_example(result.dataset)
        if example is not None:
            impact = output.impact_text(answers.impact_answer(conn, example, ALL))
            lines += ["", f"impact example (refgraph impact {example} --db {db}):"] + impact[:26]
            if len(impact) > 26:
                lines.append(f"  ... {len(impact) - 26} more lines")
    verdict = "yes" if not result.mismatches else "NO: " + "; ".join(result.mismatches)
    return lines + ["", f"answers match the sandbox's ground truth: {verdict}"]


def _orphan_lines(orphans: dict, dataset: Dataset) -> list[str]:
    listed = {Node(o["kind"], o["id"]) for o in orphans["orphans"]}
    hidden = listed & dataset.draft_only_media()
    lines = [f"orphans: {len(listed)} media nothing references "
             f"({len(orphans['unknown'])} unknown, {len(orphans['missing'])} missing); first ten:"]
    lines += [f"  {output.safe(o['node'])}" for o in orphans["orphans"][:10]]
    lines.append(f"caution: {len(hidden)} of these are used in unpublished drafts, which the API cannot "
                 "show (the sandbox knows; a real server will not tell you)")
    return lines


def summary_json(result: DemoResult) -> str:
    return json.dumps({"seconds": round(result.seconds, 3), "requests": result.run.stats["requests/total"],
                       "outcome": result.run.report.outcome, "mismatches": result.mismatches})
