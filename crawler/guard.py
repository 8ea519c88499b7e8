"""The delete guard: may these nodes be deleted? Only a fresh, complete "nothing references
it" says yes; anything else is "used" (who, by origin) or "unknown" (and why).
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from . import answers, queries
from .model import Node
from .progress import clock as _clock

__all__ = ["SAFE", "USED", "UNKNOWN", "check_delete"]

SAFE, USED, UNKNOWN = 0, 1, 3  # the exit codes scripts act on


def _age_seconds(stamp: str) -> float:
    when = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return (datetime.now(UTC) - when).total_seconds()


def _verdict(node: Node, cov: queries.Coverage | None, refs: list[dict], max_age: float) -> dict:
    """One node's verdict: unused, used, used-by-drafts-only, dangling, stale, missing or unknown."""
    if cov is None:
        return {"verdict": "unknown", "reason": "not in the database: never crawled, nor seen as a referrer"}
    if cov.state == "missing":
        return {"verdict": "missing", "reason": "the API answered 404: already deleted upstream"}
    if cov.state != "complete":
        why = "; ".join([*cov.errors, *(f"{e}: not crawled" for e in cov.not_crawled)]) or cov.state
        return {"verdict": "unknown", "reason": f"not crawled completely ({why})"}
    age = _age_seconds(cov.fetched_at)
    if age > max_age:
        seen = f"{len(refs)} referrer(s)" if refs else "no referrer"
        return {"verdict": "stale", "reason": f"crawled {_clock(age)} ago at {cov.fetched_at}, older than --max-age "
                                              f"{_clock(max_age)} ({seen} then); crawl it again"}
    live = [r for r in refs if r["source_state"] != "missing"]
    if live:
        drafts_only = all(r["origin"] == "draft" for r in live)
        return {"verdict": "used-by-drafts-only" if drafts_only else "used",
                "reason": "referenced only by unpublished drafts" if drafts_only else "referenced"}
    if refs:
        return {"verdict": "dangling", "reason": "referenced only by sources that answer 404 (deleted upstream); "
                                                 "the search index may not have caught up"}
    return {"verdict": "unused", "reason": f"nothing references it (crawled completely at {cov.fetched_at})"}


def _referrers(conn: sqlite3.Connection, node: Node, origins: set[str]) -> tuple[queries.Coverage | None, list[dict]]:
    start, edges, ids = queries.ancestors(conn, node, origins, cutoff=1)
    if start is None:
        return None, []
    by_id, coverage = queries.nodes_and_coverage(conn, ids, origins)
    refs = [{"node": str(by_id[source]), "origin": origin, "source_state": coverage[source].state}
            for source, _, origin in edges]
    unique = {(r["node"], r["origin"]): r for r in refs}
    return coverage[start], sorted(unique.values(), key=lambda r: (r["origin"], r["node"]))


def check_delete(conn: sqlite3.Connection, nodes: list[Node], origins: set[str], max_age: float) -> dict:
    """The guard's answer for ``nodes``; ``exit`` is SAFE only when every node is unused."""
    crawl = queries.last_crawl(conn)
    results = []
    for node in nodes:
        cov, refs = _referrers(conn, node, origins)
        verdict = _verdict(node, cov, refs, max_age)
        by_origin: dict[str, list[str]] = {}
        for ref in refs:
            by_origin.setdefault(ref["origin"], []).append(ref["node"])
        results.append({**answers.node_json(node), **verdict, "referrers": by_origin,
                        "fetched_at": cov.fetched_at if cov else None})
    verdicts = {r["verdict"] for r in results}
    code = USED if verdicts & {"used", "used-by-drafts-only"} else SAFE if verdicts <= {"unused"} else UNKNOWN
    flags = crawl["flags"] if crawl else []
    if code == SAFE and flags:
        code = UNKNOWN
    return {"nodes": results, "exit": code, "safe": code == SAFE, "flags": flags, "max_age_seconds": max_age,
            "basis": answers.basis(conn, origins, nodes[0].kind if len({n.kind for n in nodes}) == 1 else None)}
