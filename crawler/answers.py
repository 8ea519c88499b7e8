"""Each query command's answer as a plain, JSON-ready dict: the data, and what it rests on.

Every answer carries a ``basis``: when the data was crawled, from where, through which origins,
and what the API cannot see. Nodes not crawled completely are reported as such, never as unused.
"""

from __future__ import annotations

import json
import sqlite3

from . import graph, queries
from .flags import orphan_flags
from .model import ORIGINS, Node, endpoints_for

__all__ = ["refs_answer", "impact_answer", "orphans_answer", "path_answer", "stats_answer", "NodeNotStored"]

DRAFT_MEDIA_NOTE = ("media used only in unpublished drafts is invisible to the API (there is no drafts "
                    "endpoint for media): such media shows as unreferenced here")


class NodeNotStored(LookupError):
    """The node is not in the database: never crawled, nor seen as a referrer."""


def node_json(node: Node) -> dict:
    return {"kind": node.kind, "id": node.id, "node": str(node)}


def basis(conn: sqlite3.Connection, origins: set[str], kind: str | None = None) -> dict:
    first, last = queries.fetched_range(conn, kind)
    notes = []
    left_out = sorted(set(ORIGINS) - set(origins) - ({"draft"} if kind == "media" else set()))
    if left_out:
        notes.append(f"references through {', '.join(left_out)} are left out of this answer (--endpoints): "
                     "'nothing references' means nothing through the origins looked at")
    if kind in (None, "media"):
        notes.append(DRAFT_MEDIA_NOTE)
    if "publication" in origins:
        notes.append("publication references come from a search index and are eventually consistent; "
                     "references from document lists are not reported by the API")
    return {"crawl": queries.last_crawl(conn), "fetched_from": first, "fetched_to": last,
            "origins": sorted(origins), "notes": notes}


def _coverage_json(node: Node, cov: queries.Coverage) -> dict:
    return {**node_json(node), "state": cov.state, "referrers_at_least": cov.referrers,
            "fetched_at": cov.fetched_at, "errors": list(cov.errors), "not_crawled": list(cov.not_crawled)}


def _subgraph(conn, node: Node, origins: set[str], cutoff: int | None = None):
    G, by_id = queries.ancestors_graph(conn, node, origins, cutoff)
    if not by_id:
        raise NodeNotStored(f"{node} is not in the database (never crawled, nor seen as a referrer)")
    return G, queries.coverage_of(conn, by_id, origins)


def refs_answer(conn: sqlite3.Connection, node: Node, origins: set[str]) -> dict:
    G, coverage = _subgraph(conn, node, origins, cutoff=1)
    rows = []
    for source, origin, ref_json in graph.referrers(G, node):
        ref = json.loads(ref_json)
        rows.append({**node_json(source), "origin": origin, "type": ref.get("type"),
                     "location": ref.get("location"), "reference": ref})
    return {"node": node_json(node), "coverage": _coverage_json(node, coverage[node]),
            "counts": {"referrers": len({r["node"] for r in rows}), "references": len(rows)},
            "references": rows, "basis": basis(conn, origins, node.kind),
            "complete": coverage[node].state == "complete"}


def impact_answer(conn: sqlite3.Connection, node: Node, origins: set[str], cutoff: int | None = None) -> dict:
    G, coverage = _subgraph(conn, node, origins, cutoff)
    depths = graph.impact(G, node, cutoff)
    via = graph.impact_origins(G, node, depths)
    nodes = [{**node_json(n), "depth": d, "origins": sorted(via[n]), "state": coverage[n].state}
             for n, d in sorted(depths.items(), key=lambda item: (item[1], item[0].sort_key()))]
    by_origin = {o: sum(1 for n in nodes if o in n["origins"]) for o in sorted(origins)}
    incomplete = [_coverage_json(n, c) for n, c in sorted(coverage.items(), key=lambda i: i[0].sort_key())
                  if c.state != "complete"]
    return {"node": node_json(node), "coverage": _coverage_json(node, coverage[node]), "nodes": nodes,
            "counts": {"referrers": len(nodes), "direct": sum(1 for n in nodes if n["depth"] == 1),
                       "by_origin": by_origin},
            "incomplete": incomplete, "complete": not incomplete, "cutoff": cutoff,
            "basis": basis(conn, origins, node.kind)}


def orphans_answer(conn: sqlite3.Connection, kind: str, origins: set[str]) -> dict:
    """Orphans, and apart from them: nodes referenced only by deleted sources (dangling),
    nodes deleted upstream (missing), and nodes not crawled completely (unknown)."""
    rows = queries.orphans(conn, kind, origins)
    coverage = queries.coverage_of(conn, rows.not_known, origins)
    unknown = [_coverage_json(n, c) for n, c in coverage.items() if c.state != "missing"]
    missing = [_coverage_json(n, c) for n, c in coverage.items() if c.state == "missing"]
    order = lambda item: Node(item["kind"], item["id"]).sort_key()  # noqa: E731
    crawl = queries.last_crawl(conn)
    flags = (crawl["flags"] if crawl else []) + orphan_flags(len(rows.orphans), rows.referenced + len(rows.dangling))
    return {"kind": kind, "orphans": [node_json(n) for n in rows.orphans],
            "dangling": [node_json(n) for n in rows.dangling],
            "unknown": sorted(unknown, key=order), "missing": sorted(missing, key=order),
            "referenced": rows.referenced, "flags": flags, "suspect": bool(flags),
            "endpoints": [e.name for e in endpoints_for(kind, origins)],
            "basis": basis(conn, origins, kind)}


def path_answer(conn: sqlite3.Connection, source: Node, target: Node, origins: set[str]) -> dict:
    if queries.node_id_of(conn, source) is None:
        raise NodeNotStored(f"{source} is not in the database (never crawled, nor seen as a referrer)")
    G, coverage = _subgraph(conn, target, origins)
    chain = graph.reference_path(G, source, target) if source in G else None
    hops = []
    for a, b in zip(chain or [], (chain or [])[1:]):
        refs = [json.loads(d["ref_json"]) | {"origin": d["origin"]} for d in G.get_edge_data(a, b).values()]
        hops.append({"from": str(a), "to": str(b), "references": sorted(refs, key=json.dumps)})
    incomplete = [_coverage_json(n, c) for n, c in sorted(coverage.items(), key=lambda i: i[0].sort_key())
                  if c.state != "complete"]
    return {"from": node_json(source), "to": node_json(target),
            "path": [str(n) for n in chain] if chain else None, "hops": hops,
            "incomplete": incomplete, "complete": not incomplete, "basis": basis(conn, origins)}


def stats_answer(conn: sqlite3.Connection, top: int = 10) -> dict:
    nodes = {k: n for k, n in conn.execute("SELECT kind, count(*) FROM nodes GROUP BY kind")}
    media_types = {t or "type unknown (never referenced)": n for t, n in conn.execute(
        "SELECT media_type, count(*) FROM nodes WHERE kind = 'media' GROUP BY media_type"
        " ORDER BY media_type IS NULL, media_type")}
    edges = {o: n for o, n in conn.execute(
        "SELECT origin, count(*) FROM edges WHERE removed_crawl IS NULL GROUP BY origin ORDER BY 1")}
    most = [{"node": f"media:{ident}", "kind": "media", "id": ident, "media_type": mtype,
             "referrers": referrers, "references": references}
            for ident, mtype, referrers, references in conn.execute(
                """SELECT n.id, n.media_type, count(DISTINCT e.source_id), count(*) FROM edges e
                   JOIN nodes n ON n.node_id = e.target_id
                   WHERE n.kind = 'media' AND e.removed_crawl IS NULL
                   GROUP BY e.target_id ORDER BY 3 DESC, 4 DESC, n.id LIMIT ?""", (top,))]
    crawl = queries.last_crawl(conn)
    origins = set(crawl["origins"].split(",")) if crawl else {"media", "publication", "draft"}
    coverage = {}
    for kind in ("media", "document"):
        rest = queries.orphans(conn, kind, origins).not_known
        states = [c.state for c in queries.coverage_of(conn, rest, origins).values()]
        coverage[kind] = {"complete": nodes.get(kind, 0) - len(rest),
                          **{s: states.count(s) for s in ("failed", "missing", "not crawled")}}
    crawls = conn.execute("SELECT count(*) FROM crawls").fetchone()[0]
    return {"nodes": {"media": nodes.get("media", 0), "document": nodes.get("document", 0)},
            "media_types": media_types, "references": {"total": sum(edges.values()), "by_origin": edges},
            "most_referenced_media": most, "coverage": coverage, "crawls": crawls,
            "basis": basis(conn, origins)}
