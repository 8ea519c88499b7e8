"""Read the stored graph: only the part a question needs, straight from SQLite's indexes.

Questions about one node (refs, impact, path) fetch the incoming references of its ancestors
level by level through the edges_current index (target first, no JSON), and the answers hand
that subgraph to networkx. Questions with no graph algorithm in them (orphans, stats) are counted
in SQL. Current answers leave out references a later complete crawl no longer reported.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from .model import ORIGINS, Node, endpoints_for

__all__ = [
    "Coverage", "node_state", "coverage_of", "node_id_of", "ancestors", "incoming_rows", "incoming_edges",
    "references_between", "nodes_by_id", "nodes_and_coverage",
    "OrphanRows", "orphans", "coverage_counts", "last_crawl", "fetched_range", "all_nodes", "all_edges",
]

CHUNK = 500  # ids per IN (...) list, well under SQLite's variable limit


class Coverage(NamedTuple):
    """What the crawls found out about one node: its state and the fetches behind it.

    A NamedTuple, not a dataclass: an answer about a hub makes one per referrer, and a frozen
    dataclass costs several times as much to make.
    """

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


def coverage_of(conn: sqlite3.Connection, nodes: dict[int, Node], origins: set[str]) -> dict[int, Coverage]:
    """The coverage of each given node (node_id -> Node), by node_id."""
    return nodes_and_coverage(conn, list(nodes), origins)[1]


def nodes_and_coverage(conn: sqlite3.Connection, ids: list[int], origins: set[str]
                       ) -> tuple[dict[int, Node], dict[int, Coverage]]:
    """node_id -> Node and node_id -> Coverage for the given node_ids (unknown ids left out).

    Names and fetches summed up in one query, one row per node: an answer about a hub covers a
    hundred thousand nodes or more, nearly all of them complete. Only the nodes with an error
    or an endpoint not fetched have their fetches read one by one.
    """
    wanted = {kind: tuple(e.name for e in endpoints_for(kind, origins)) for kind in ("media", "document")}
    names = [*wanted["media"], *wanted["document"]]  # an endpoint serves one kind only
    nodes: dict[int, Node] = {}
    out: dict[int, Coverage] = {}
    detail: dict[int, Node] = {}
    for chunk in _chunks(ids):
        for node_id, kind, ident, fetched, oldest, referrers, missing, failed, errors in conn.execute(
                "SELECT n.node_id, n.kind, n.id, count(f.node_id), min(f.fetched_at), sum(f.referrers),"
                " max(f.status = 'missing'), max(f.status = 'failed'), count(f.error) FROM nodes AS n"
                # +endpoint: one range of a node's fetches, not one seek per endpoint
                f" LEFT JOIN fetches AS f ON f.node_id = n.node_id AND +f.endpoint IN ({_marks(names) or 'NULL'})"
                f" WHERE n.node_id IN ({_marks(chunk)}) GROUP BY n.node_id", names + chunk):
            node = nodes[node_id] = Node(kind, ident)
            if errors or fetched < len(wanted[kind]) or not fetched:
                detail[node_id] = node  # something to explain, or nothing fetched through these origins
            else:
                out[node_id] = Coverage("missing" if missing else "failed" if failed else "complete", referrers, oldest)
    out.update(_coverage_in_detail(conn, detail, wanted, origins))
    return nodes, out


def _coverage_in_detail(conn: sqlite3.Connection, nodes: dict[int, Node], wanted: dict[str, tuple[str, ...]],
                        origins: set[str]) -> dict[int, Coverage]:
    fetches: dict[int, dict[str, tuple]] = {}
    for chunk in _chunks(list(nodes)):
        for node_id, endpoint, status, fetched_at, referrers, error in conn.execute(
                "SELECT node_id, endpoint, status, fetched_at, referrers, error FROM fetches"
                f" WHERE node_id IN ({_marks(chunk)})", chunk):
            fetches.setdefault(node_id, {})[endpoint] = (status, fetched_at, referrers, error)
    out = {}
    for node_id, node in nodes.items():
        got, names = fetches.get(node_id, {}), wanted[node.kind]
        relevant = {name: got[name] for name in names if name in got}
        out[node_id] = Coverage(
            state=node_state(node.kind, origins, relevant),
            referrers=sum(f[2] for f in relevant.values()),
            fetched_at=min(f[1] for f in relevant.values()) if relevant else None,
            errors=tuple(f"{name}: {f[3]}" for name, f in sorted(relevant.items()) if f[3]),
            not_crawled=tuple(name for name in names if name not in relevant))
    return out


def incoming_rows(conn: sqlite3.Connection, target_ids: list[int], origins: set[str]) -> list[tuple]:
    """Current references into the given targets: (target_id, source_id, origin, ref_json)."""
    return _incoming(conn, target_ids, origins, "target_id, source_id, origin, ref_json")


def incoming_edges(conn: sqlite3.Connection, target_ids: list[int], origins: set[str]) -> list[tuple]:
    """(target_id, source_id, origin) of the current references into the given targets.

    These columns are all in the edges_current index, so SQLite answers from that index alone
    and never reads the references' JSON, which is most of the edges table's bytes.
    """
    return _incoming(conn, target_ids, origins, "target_id, source_id, origin")


def _origin_filter(origins: set[str]) -> list[str]:
    """The origins to name in an ``origin IN (...)`` test; none when all are wanted, so that a
    target's references are one range of the index, not one seek per origin."""
    return [] if set(origins) >= set(ORIGINS) else sorted(origins)


def current_edges(conn: sqlite3.Connection, alias: str = "edges") -> str:
    """The edges table as ``alias``, read through edges_current where the database has it.

    SQLite cannot tell that the primary key, which starts with the same columns, reads rows ten
    times wider; a database written by an older refgraph gets the index at its next crawl.
    """
    found = conn.execute("SELECT 1 FROM sqlite_schema WHERE type = 'index' AND name = 'edges_current'").fetchone()
    return f"edges AS {alias}" + (" INDEXED BY edges_current" if found else "")


def _incoming(conn: sqlite3.Connection, target_ids: list[int], origins: set[str], columns: str) -> list[tuple]:
    rows: list[tuple] = []
    origin_list = _origin_filter(origins)
    only = f" AND origin IN ({_marks(origin_list)})" if origin_list else ""
    table = current_edges(conn) if "ref_json" not in columns else "edges"
    for chunk in _chunks(target_ids):
        rows.extend(conn.execute(
            f"SELECT {columns} FROM {table} WHERE target_id IN ({_marks(chunk)}){only} AND removed_crawl IS NULL",
            chunk + origin_list))
    return rows


def references_between(conn: sqlite3.Connection, source: int, target: int, origins: set[str]) -> list[tuple]:
    """(origin, ref_json) of every current reference from ``source`` to ``target``."""
    origin_list = sorted(origins)
    return conn.execute(
        "SELECT origin, ref_json FROM edges WHERE target_id = ? AND source_id = ?"
        f" AND origin IN ({_marks(origin_list)}) AND removed_crawl IS NULL ORDER BY origin, ref_json",
        [target, source, *origin_list]).fetchall()


def nodes_by_id(conn: sqlite3.Connection, ids: list[int]) -> dict[int, Node]:
    out = {}
    for chunk in _chunks(ids):
        for node_id, kind, ident in conn.execute(
                f"SELECT node_id, kind, id FROM nodes WHERE node_id IN ({_marks(chunk)})", chunk):
            out[node_id] = Node(kind, ident)
    return out


def ancestors(conn: sqlite3.Connection, node: Node, origins: set[str],
              cutoff: int | None = None) -> tuple[int | None, list[tuple[int, int, str]], list[int]]:
    """``node``'s node_id, and everything referencing it up to ``cutoff`` hops: the references
    as (source_id, target_id, origin), and the node_id of every node met, ``node``'s first.

    The walk goes level by level through the edges_current index, so a question costs what
    its own ancestors cost, whatever the size of the database; (None, [], []) when the node
    is not stored.
    """
    start = node_id_of(conn, node)
    if start is None:
        return None, [], []
    edges: list[tuple[int, int, str]] = []
    seen = {start: None}  # a dict, to keep the order met
    frontier, depth = [start], 0
    while frontier and (cutoff is None or depth < cutoff):
        depth += 1
        rows = incoming_edges(conn, frontier, origins)
        edges.extend((source, target, origin) for target, source, origin in rows)
        frontier = [source for source in dict.fromkeys(source for _, source, _ in rows) if source not in seen]
        seen.update(dict.fromkeys(frontier))
    return start, edges, list(seen)


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
    origin_list = _origin_filter(origins)
    complete = (f"(SELECT count(*) FROM fetches f WHERE f.node_id = n.node_id AND f.status = 'complete'"
                f" AND f.endpoint IN ({_marks(names)}))")
    current = "e.target_id = n.node_id AND e.removed_crawl IS NULL" + (
        f" AND e.origin IN ({_marks(origin_list)})" if origin_list else "")
    # Not correlated: SQLite lists the deleted nodes once (from the fetches_missing index).
    live_source = "e.source_id NOT IN (SELECT node_id FROM fetches WHERE status = 'missing')"
    edges = current_edges(conn, "e")
    # Nodes in rowid order (NOT INDEXED), not in id order through the (kind, id) index: the
    # probes then walk fetches and edges_current in their own order instead of at random.
    rows = conn.execute(
        f"""SELECT n.node_id, n.id, {complete} = ?,
                   EXISTS (SELECT 1 FROM {edges} WHERE {current}),
                   EXISTS (SELECT 1 FROM {edges} WHERE {current} AND {live_source})
            FROM nodes AS n NOT INDEXED WHERE n.kind = ?""",
        [*names, len(names), *origin_list, *origin_list, kind]).fetchall()
    orphan_ids: list[str] = []
    dangling_ids: list[str] = []
    out = OrphanRows([], [], 0, {})
    for node_id, ident, is_complete, referenced, by_live in rows:
        if not is_complete:
            out.not_known[node_id] = Node(kind, ident)
        elif not referenced:
            orphan_ids.append(ident)
        elif not by_live:
            dangling_ids.append(ident)
        else:
            out.referenced += 1
    # Node.sort_key's order, sorting the ids themselves: a Python key per node is what would
    # cost most for hundreds of thousands of orphans.
    order = (lambda ident: (int(ident), ident)) if kind == "document" else None
    out.orphans = [Node(kind, ident) for ident in sorted(orphan_ids, key=order)]
    out.dangling = [Node(kind, ident) for ident in sorted(dangling_ids, key=order)]
    return out


def coverage_counts(conn: sqlite3.Connection, origins: set[str]) -> dict[str, dict[str, int]]:
    """How many nodes of each kind are complete, failed, missing or not crawled, as node_state
    decides: one pass over the fetches in their own (node_id) order. An endpoint serves one
    kind only, so a node's fetches tell its kind; nodes without them were not crawled."""
    expected = {kind: [e.name for e in endpoints_for(kind, origins)] for kind in ("media", "document")}
    media, names = expected["media"], expected["media"] + expected["document"]
    is_media = f"min(endpoint) IN ({_marks(media) or 'NULL'})"
    rows = conn.execute(
        f"""SELECT kind, state, count(*) FROM (
                SELECT CASE WHEN {is_media} THEN 'media' ELSE 'document' END AS kind,
                       CASE WHEN max(status = 'missing') THEN 'missing' WHEN max(status = 'failed') THEN 'failed'
                            WHEN count(status = 'complete' OR NULL) = CASE WHEN {is_media} THEN ? ELSE ? END
                            THEN 'complete' ELSE 'not crawled' END AS state
                FROM fetches WHERE endpoint IN ({_marks(names) or 'NULL'}) GROUP BY node_id)
            GROUP BY kind, state""",
        [*media, *media, len(media), len(expected["document"]), *names]).fetchall()
    out = {kind: dict.fromkeys(("complete", "failed", "missing", "not crawled"), 0) for kind in expected}
    for kind, state, count in rows:
        out[kind][state] = count
    for kind, total in conn.execute("SELECT kind, count(*) FROM nodes GROUP BY kind"):
        out[kind]["not crawled"] += total - sum(out[kind].values())
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


def fetched_range(conn: sqlite3.Connection) -> tuple[str | None, str | None]:
    """Oldest and newest fetch in the database: when the answers were crawled.

    Crawls never overlap (one writer per database, --resume carries on only the last crawl),
    so the oldest fetch belongs to the oldest crawl still holding fetches and the newest to the
    newest: four index probes, whatever the size of the database.
    """
    first_crawl = conn.execute("SELECT min(crawl_id) FROM fetches").fetchone()[0]
    if first_crawl is None:
        return None, None
    last_crawl = conn.execute("SELECT max(crawl_id) FROM fetches").fetchone()[0]
    first = conn.execute("SELECT min(fetched_at) FROM fetches WHERE crawl_id = ?", (first_crawl,)).fetchone()[0]
    last = conn.execute("SELECT max(fetched_at) FROM fetches WHERE crawl_id = ?", (last_crawl,)).fetchone()[0]
    return first, last


def all_nodes(conn: sqlite3.Connection) -> Iterator[tuple]:
    """(node_id, kind, id, media_type) of every node."""
    return conn.execute("SELECT node_id, kind, id, media_type FROM nodes ORDER BY node_id")


def all_edges(conn: sqlite3.Connection) -> Iterator[tuple]:
    """(source_id, target_id, origin, ref_type, location, ref_json) of every current reference."""
    return conn.execute(
        "SELECT source_id, target_id, origin, ref_type, location, ref_json FROM edges"
        " WHERE removed_crawl IS NULL ORDER BY target_id, origin, source_id, ref_hash")  # the table's own order
