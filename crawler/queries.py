"""Read the stored graph: only the part a question needs, straight from SQLite's indexes.

Questions about one node (refs, impact, path) fetch the incoming references of its ancestors
level by level through the edges' primary key, which is clustered on target, and hand that
subgraph to networkx. Questions with no graph algorithm in them (orphans, stats) are counted
in SQL. Current answers leave out references a later complete crawl no longer reported.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import networkx as nx

from .model import Node, endpoints_for

__all__ = [
    "Coverage", "node_state", "coverage_of", "node_id_of", "ancestors_graph", "incoming_rows",
    "OrphanRows", "orphans", "last_crawl", "fetched_range", "all_nodes", "all_edges",
]

CHUNK = 500  # ids per IN (...) list, well under SQLite's variable limit


@dataclass(frozen=True)
class Coverage:
    """What the crawls found out about one node: its state and the fetches behind it."""

    state: str  # complete | failed | missing | not crawled
    referrers: int  # distinct referrers the fetches reported; "at least" unless complete
    fetched_at: str | None  # the oldest fetch the answer rests on
    errors: tuple[str, ...] = ()
    not_crawled: tuple[str, ...] = ()  # endpoints never fetched for this node


def node_state(kind: str, origins: Iterable[str], fetches: dict[str, tuple]) -> str:
    """complete only when every endpoint for this kind and these origins finished.

    ``fetches`` maps endpoint name -> (status, ...). A 404 anywhere means deleted upstream.

    >>> node_state("media", {"media", "publication"},
    ...            {"mediaLibrary/incomingMediaReferences": ("complete",)})
    'not crawled'
    """
    statuses = [fetches.get(e.name, (None,))[0] for e in endpoints_for(kind, set(origins))]
    if "missing" in statuses:
        return "missing"
    if "failed" in statuses:
        return "failed"
    if not statuses or None in statuses:
        return "not crawled"
    return "complete"


def _chunks(items: list, size: int = CHUNK) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _marks(items: list) -> str:
    return ",".join("?" * len(items))


def node_id_of(conn: sqlite3.Connection, node: Node) -> int | None:
    row = conn.execute("SELECT node_id FROM nodes WHERE kind = ? AND id = ?", (node.kind, node.id)).fetchone()
    return row[0] if row else None


def coverage_of(conn: sqlite3.Connection, nodes: dict[int, Node], origins: set[str]) -> dict[Node, Coverage]:
    """The coverage of each given node (node_id -> Node)."""
    fetches: dict[int, dict[str, tuple]] = {i: {} for i in nodes}
    ids = list(nodes)
    for chunk in _chunks(ids):
        for node_id, endpoint, status, fetched_at, referrers, error in conn.execute(
                "SELECT node_id, endpoint, status, fetched_at, referrers, error FROM fetches"
                f" WHERE node_id IN ({_marks(chunk)})", chunk):
            fetches[node_id][endpoint] = (status, fetched_at, referrers, error)
    out = {}
    for node_id, node in nodes.items():
        relevant = {e.name: fetches[node_id][e.name] for e in endpoints_for(node.kind, origins)
                    if e.name in fetches[node_id]}
        times = [f[1] for f in relevant.values()]
        out[node] = Coverage(
            state=node_state(node.kind, origins, relevant),
            referrers=sum(f[2] for f in relevant.values()),
            fetched_at=min(times) if times else None,
            errors=tuple(f"{name}: {f[3]}" for name, f in sorted(relevant.items()) if f[3]),
            not_crawled=tuple(e.name for e in endpoints_for(node.kind, origins) if e.name not in relevant))
    return out


def incoming_rows(conn: sqlite3.Connection, target_ids: list[int], origins: set[str]) -> list[tuple]:
    """Current references into the given targets: (target_id, source_id, origin, ref_json)."""
    rows: list[tuple] = []
    origin_list = sorted(origins)
    for chunk in _chunks(target_ids):
        rows.extend(conn.execute(
            "SELECT target_id, source_id, origin, ref_json FROM edges"
            f" WHERE target_id IN ({_marks(chunk)}) AND origin IN ({_marks(origin_list)})"
            " AND removed_crawl IS NULL", chunk + origin_list))
    return rows


def _nodes_by_id(conn: sqlite3.Connection, ids: list[int]) -> dict[int, Node]:
    out = {}
    for chunk in _chunks(ids):
        for node_id, kind, ident in conn.execute(
                f"SELECT node_id, kind, id FROM nodes WHERE node_id IN ({_marks(chunk)})", chunk):
            out[node_id] = Node(kind, ident)
    return out


def ancestors_graph(conn: sqlite3.Connection, node: Node, origins: set[str],
                    cutoff: int | None = None) -> tuple[nx.MultiDiGraph, dict[int, Node]]:
    """``node`` and everything referencing it, up to ``cutoff`` hops, as a MultiDiGraph.

    Edges point from referrer to referenced, one edge per reference, with ``origin`` and
    ``ref_json`` attributes. Also returns node_id -> Node for every node in the graph.
    """
    start = node_id_of(conn, node)
    graph = nx.MultiDiGraph()
    if start is None:
        return graph, {}
    graph.add_node(start)
    frontier, seen, depth = [start], {start}, 0
    while frontier and (cutoff is None or depth < cutoff):
        depth += 1
        found = []
        for target_id, source_id, origin, ref_json in incoming_rows(conn, frontier, origins):
            graph.add_edge(source_id, target_id, origin=origin, ref_json=ref_json)
            if source_id not in seen:
                seen.add(source_id)
                found.append(source_id)
        frontier = found
    nodes = _nodes_by_id(conn, list(graph.nodes))
    return nx.relabel_nodes(graph, nodes), nodes


@dataclass
class OrphanRows:
    orphans: list[Node]  # crawled completely, referenced by nothing
    dangling: list[Node]  # crawled completely, referenced only by sources deleted upstream (404)
    referenced: int  # crawled completely and referenced by a source that exists
    not_known: dict[int, Node]  # every other node of the kind, by node_id: its coverage says why


def orphans(conn: sqlite3.Connection, kind: str, origins: set[str]) -> OrphanRows:
    """Sort the nodes of ``kind`` by what the crawls know of their referrers, in SQL."""
    names = [e.name for e in endpoints_for(kind, origins)]
    if not names:  # no endpoint lists referrers of this kind through these origins: all unknown
        rows = conn.execute("SELECT node_id, id FROM nodes WHERE kind = ?", (kind,)).fetchall()
        return OrphanRows([], [], 0, {node_id: Node(kind, ident) for node_id, ident in rows})
    origin_list = sorted(origins)
    complete = (f"(SELECT count(*) FROM fetches f WHERE f.node_id = n.node_id AND f.status = 'complete'"
                f" AND f.endpoint IN ({_marks(names)}))")
    current = f"e.target_id = n.node_id AND e.removed_crawl IS NULL AND e.origin IN ({_marks(origin_list)})"
    live_source = "NOT EXISTS (SELECT 1 FROM fetches m WHERE m.node_id = e.source_id AND m.status = 'missing')"
    rows = conn.execute(
        f"""SELECT n.node_id, n.id, {complete} = ?,
                   EXISTS (SELECT 1 FROM edges e WHERE {current}),
                   EXISTS (SELECT 1 FROM edges e WHERE {current} AND {live_source})
            FROM nodes n WHERE n.kind = ?""",
        [*names, len(names), *origin_list, *origin_list, kind]).fetchall()
    out = OrphanRows([], [], 0, {})
    for node_id, ident, is_complete, referenced, by_live in rows:
        node = Node(kind, ident)
        if not is_complete:
            out.not_known[node_id] = node
        elif not referenced:
            out.orphans.append(node)
        elif not by_live:
            out.dangling.append(node)
        else:
            out.referenced += 1
    out.orphans.sort(key=Node.sort_key)
    out.dangling.sort(key=Node.sort_key)
    return out


def last_crawl(conn: sqlite3.Connection) -> dict | None:
    """The latest crawl's row, flags decoded; None before the first crawl."""
    row = conn.execute(
        "SELECT crawl_id, started_at, finished_at, base_url, api_version, origins, outcome, message, flags"
        " FROM crawls ORDER BY crawl_id DESC LIMIT 1").fetchone()
    if row is None:
        return None
    keys = ("crawl_id", "started_at", "finished_at", "base_url", "api_version", "origins", "outcome", "message")
    return {**dict(zip(keys, row)), "flags": json.loads(row[-1]) if row[-1] else []}


def fetched_range(conn: sqlite3.Connection, kind: str | None = None) -> tuple[str | None, str | None]:
    """Oldest and newest fetch time, overall or for one kind: when the answers were crawled."""
    sql = "SELECT min(f.fetched_at), max(f.fetched_at) FROM fetches f"
    if kind is None:
        return conn.execute(sql).fetchone()
    return conn.execute(sql + " JOIN nodes n USING (node_id) WHERE n.kind = ?", (kind,)).fetchone()


def all_nodes(conn: sqlite3.Connection) -> Iterator[tuple]:
    """(node_id, kind, id, media_type) of every node."""
    return conn.execute("SELECT node_id, kind, id, media_type FROM nodes ORDER BY node_id")


def all_edges(conn: sqlite3.Connection) -> Iterator[tuple]:
    """(source_id, target_id, origin, ref_type, location, ref_json) of every current reference."""
    return conn.execute(
        "SELECT source_id, target_id, origin, ref_type, location, ref_json FROM edges"
        " WHERE removed_crawl IS NULL ORDER BY target_id, source_id, origin, ref_hash")
