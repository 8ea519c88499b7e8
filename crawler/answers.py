"""Each query command's answer as a plain, JSON-ready dict: the data, and what it rests on.

Every answer carries a ``basis``: when the data was crawled, from where, through which origins,
and what the API cannot see. Nodes not crawled completely are reported as such, never as unused.
"""

from __future__ import annotations

import json
import sqlite3

from . import queries
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
    first, last = queries.fetched_range(conn)
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
    """The ancestors of ``node`` as a networkx graph of node_ids, the (source, target, origin)
    triples it was built from, node_id -> Node, ``node``'s own node_id, and node_id -> Coverage."""
    # Imported here: networkx costs a tenth of a second to import, and refs, orphans and stats,
    # which must answer in a blink, never need it.
    from . import graph

    start, edges, ids = queries.ancestors(conn, node, origins, cutoff)
    if start is None:
        raise NodeNotStored(f"{node} is not in the database (never crawled, nor seen as a referrer)")
    by_id, coverage = queries.nodes_and_coverage(conn, ids, origins)
    return graph.build_graph(edges, [start]), edges, by_id, start, coverage


def refs_answer(conn: sqlite3.Connection, node: Node, origins: set[str]) -> dict:
    node_id = queries.node_id_of(conn, node)
    if node_id is None:
        raise NodeNotStored(f"{node} is not in the database (never crawled, nor seen as a referrer)")
    found = queries.incoming_rows(conn, [node_id], origins)
    sources = queries.nodes_by_id(conn, list({source for _, source, _, _ in found}))
    coverage = queries.coverage_of(conn, {node_id: node}, origins)
    rows = []
    for source, origin, ref_json in sorted(((sources[s], o, r) for _, s, o, r in found),
                                           key=lambda row: (row[0].sort_key(), row[1], row[2])):
        ref = json.loads(ref_json)
        rows.append({**node_json(source), "origin": origin, "type": ref.get("type"),
                     "location": ref.get("location"), "reference": ref})
    return {"node": node_json(node), "coverage": _coverage_json(node, coverage[node_id]),
            "counts": {"referrers": len({r["node"] for r in rows}), "references": len(rows)},
            "references": rows, "basis": basis(conn, origins, node.kind),
            "complete": coverage[node_id].state == "complete"}


def impact_answer(conn: sqlite3.Connection, node: Node, origins: set[str], cutoff: int | None = None) -> dict:
    from . import graph  # see _subgraph

    G, edges, by_id, start, coverage = _subgraph(conn, node, origins, cutoff)
    depths = graph.impact(G, start, cutoff)
    via = graph.impact_origins(edges, start, depths)
    # Built for hundreds of thousands of referrers: one sorted list per set of origins, shared.
    origin_lists = {found: sorted(found) for found in set(via.values())}
    order = sorted(depths, key=lambda i: (depths[i], *by_id[i].sort_key()))
    nodes = [{"kind": n.kind, "id": n.id, "node": f"{n.kind}:{n.id}", "depth": depths[i],
              "origins": origin_lists[via[i]], "state": coverage[i].state}
             for i in order for n in (by_id[i],)]
    by_origin = {o: sum(1 for n in nodes if o in n["origins"]) for o in sorted(origins)}
    incomplete = _incomplete(by_id, coverage)
    return {"node": node_json(node), "coverage": _coverage_json(node, coverage[start]), "nodes": nodes,
            "counts": {"referrers": len(nodes), "direct": sum(1 for n in nodes if n["depth"] == 1),
                       "by_origin": by_origin},
            "incomplete": incomplete, "complete": not incomplete, "cutoff": cutoff,
            "basis": basis(conn, origins, node.kind)}


def _incomplete(by_id: dict[int, Node], coverage: dict[int, queries.Coverage]) -> list[dict]:
    partial = [(by_id[i], c) for i, c in coverage.items() if c.state != "complete"]
    return [_coverage_json(n, c) for n, c in sorted(partial, key=lambda item: item[0].sort_key())]


def orphans_answer(conn: sqlite3.Connection, kind: str, origins: set[str]) -> dict:
    """Orphans, and apart from them: nodes referenced only by deleted sources (dangling),
    nodes deleted upstream (missing), and nodes not crawled completely (unknown)."""
    rows = queries.orphans(conn, kind, origins)
    coverage = queries.coverage_of(conn, rows.not_known, origins)
    unknown = [_coverage_json(rows.not_known[i], c) for i, c in coverage.items() if c.state != "missing"]
    missing = [_coverage_json(rows.not_known[i], c) for i, c in coverage.items() if c.state == "missing"]
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
    source_id = queries.node_id_of(conn, source)
    if source_id is None:
        raise NodeNotStored(f"{source} is not in the database (never crawled, nor seen as a referrer)")
    from . import graph  # see _subgraph

    G, _, by_id, target_id, coverage = _subgraph(conn, target, origins)
    chain = graph.reference_path(G, source_id, target_id) if source_id in G else None
    hops = []
    for a, b in zip(chain or [], (chain or [])[1:]):
        refs = [json.loads(ref_json) | {"origin": origin}
                for origin, ref_json in queries.references_between(conn, a, b, origins)]
        hops.append({"from": str(by_id[a]), "to": str(by_id[b]), "references": sorted(refs, key=json.dumps)})
    incomplete = _incomplete(by_id, coverage)
    return {"from": node_json(source), "to": node_json(target),
            "path": [str(by_id[i]) for i in chain] if chain else None, "hops": hops,
            "incomplete": incomplete, "complete": not incomplete, "basis": basis(conn, origins)}


def stats_answer(conn: sqlite3.Connection, top: int = 10) -> dict:
    """Counts over the whole database, in SQL: the references through the narrow edges_current
    index, never their JSON."""
    nodes = {k: n for k, n in conn.execute("SELECT kind, count(*) FROM nodes GROUP BY kind")}
    media_types = {t or "type unknown (never referenced)": n for t, n in conn.execute(
        "SELECT media_type, count(*) FROM nodes NOT INDEXED WHERE kind = 'media' GROUP BY media_type"
        " ORDER BY media_type IS NULL, media_type")}
    # One pass, no sort: GROUP BY origin would sort every reference by origin first.
    counted = conn.execute(
        f"SELECT {', '.join(f'count(origin = {o!r} OR NULL)' for o in ORIGINS)}"
        f" FROM {queries.current_edges(conn)} WHERE removed_crawl IS NULL").fetchone()
    edges = {o: n for o, n in sorted(zip(ORIGINS, counted)) if n}
    most = [{"node": f"media:{ident}", "kind": "media", "id": ident, "media_type": mtype,
             "referrers": referrers, "references": references}
            for ident, mtype, referrers, references in conn.execute(
                f"""SELECT n.id, n.media_type, g.referrers, g.refs
                    FROM (SELECT target_id, count(DISTINCT source_id) AS referrers, count(*) AS refs
                          FROM {queries.current_edges(conn, "e")} WHERE removed_crawl IS NULL
                          GROUP BY target_id) AS g
                    JOIN nodes AS n ON n.node_id = g.target_id
                    WHERE n.kind = 'media' ORDER BY 3 DESC, 4 DESC, n.id LIMIT ?""", (top,))]
    crawl = queries.last_crawl(conn)
    origins = set(crawl["origins"].split(",")) if crawl else {"media", "publication", "draft"}
    crawls = conn.execute("SELECT count(*) FROM crawls").fetchone()[0]
    return {"nodes": {"media": nodes.get("media", 0), "document": nodes.get("document", 0)},
            "media_types": media_types, "references": {"total": sum(edges.values()), "by_origin": edges},
            "most_referenced_media": most, "coverage": queries.coverage_counts(conn, origins), "crawls": crawls,
            "basis": basis(conn, origins)}
