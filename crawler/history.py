"""Run history: every crawl is a run; what changed between two runs.

An edge is current as of run X when it was first seen in X or before and not found removed by
X or before (a complete recrawl of its target that no longer reports it removes it).
"""

from __future__ import annotations

import json
import sqlite3

from .model import Node

__all__ = ["runs", "run_ids", "diff"]

_RUN_COLUMNS = ("crawl_id", "started_at", "finished_at", "outcome", "base_url", "api_version", "origins", "seeds",
                "fetched", "failed", "missing", "edges", "requests", "resumed", "message", "flags", "args_json",
                "stats_json")


def runs(conn: sqlite3.Connection) -> list[dict]:
    """Every run, oldest first, with its arguments (never the token), counts and outcome."""
    rows = conn.execute(f"SELECT {', '.join(_RUN_COLUMNS)} FROM crawls ORDER BY crawl_id").fetchall()
    out = []
    for row in rows:
        run = dict(zip(_RUN_COLUMNS, row))
        run["flags"] = json.loads(run["flags"]) if run["flags"] else []
        run["args"] = json.loads(run.pop("args_json"))
        run["kept"] = json.loads(run.pop("stats_json") or "{}").get("fetch/replayed", 0)
        out.append(run)
    return out


def run_ids(conn: sqlite3.Connection) -> list[int]:
    return [row[0] for row in conn.execute("SELECT crawl_id FROM crawls ORDER BY crawl_id")]


_EDGE_SELECT = """SELECT s.kind, s.id, t.kind, t.id, e.origin, e.ref_json FROM edges e
    JOIN nodes s ON s.node_id = e.source_id JOIN nodes t ON t.node_id = e.target_id"""
_CURRENT_AT = "(e.first_crawl <= {x} AND (e.removed_crawl IS NULL OR e.removed_crawl > {x}))"


def _edges(conn: sqlite3.Connection, where: str, params: tuple) -> list[dict]:
    rows = conn.execute(f"{_EDGE_SELECT} WHERE {where}", params).fetchall()
    out = [{"source": f"{sk}:{si}", "target": f"{tk}:{ti}", "origin": origin, "reference": json.loads(ref)}
           for sk, si, tk, ti, origin, ref in rows]
    return sorted(out, key=lambda e: (e["target"], e["source"], e["origin"], json.dumps(e["reference"], sort_keys=True)))


def _media_usage_changes(conn: sqlite3.Connection, a: int, b: int) -> tuple[list[Node], list[Node]]:
    """Media referenced at A and not at B (became unused), and the other way (used again);
    only media refgraph already knew at A, so that a new seed is not "used again"."""
    rows = conn.execute(
        f"""SELECT n.id,
                   EXISTS (SELECT 1 FROM edges e WHERE e.target_id = n.node_id AND {_CURRENT_AT.format(x=a)}),
                   EXISTS (SELECT 1 FROM edges e WHERE e.target_id = n.node_id AND {_CURRENT_AT.format(x=b)})
            FROM nodes n WHERE n.kind = 'media' AND n.first_crawl <= ?""", (a,)).fetchall()
    unused = [Node("media", i) for i, at_a, at_b in rows if at_a and not at_b]
    again = [Node("media", i) for i, at_a, at_b in rows if at_b and not at_a]
    return sorted(unused, key=Node.sort_key), sorted(again, key=Node.sort_key)


def diff(conn: sqlite3.Connection, a: int, b: int) -> dict:
    """References added and removed from run ``a`` to run ``b`` (a < b), and media that became
    unused or used again."""
    added = _edges(conn, f"e.first_crawl > ? AND {_CURRENT_AT.format(x='?')}", (a, b, b))
    removed = _edges(conn, "e.removed_crawl > ? AND e.removed_crawl <= ? AND e.first_crawl <= ?", (a, b, a))
    unused, again = _media_usage_changes(conn, a, b)
    return {"from": a, "to": b, "added": added, "removed": removed,
            "became_unused": [{"kind": n.kind, "id": n.id, "node": str(n)} for n in unused],
            "used_again": [{"kind": n.kind, "id": n.id, "node": str(n)} for n in again],
            "counts": {"added": len(added), "removed": len(removed), "became_unused": len(unused),
                       "used_again": len(again)}}
