"""The refgraph database: opening it safely, and the one writer a crawl goes through.

A crawl writes through a single aiosqlite connection, a batch of finished fetches per
transaction. A fetch's references and its status land in the same transaction, so no node is
ever marked complete without all of its edges. Queries read with the standard sqlite3 module
(``open_readonly``): they make many small reads, and a thread hop per read buys them nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib.resources
import json
import sqlite3
import urllib.parse
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite

from .model import FetchResult, Node

__all__ = [
    "APPLICATION_ID", "SCHEMA_VERSION", "NotARefgraphDatabase", "schema_sql", "check_database",
    "open_readonly", "Store", "BatchWriter", "utc_now", "ref_hash",
]

APPLICATION_ID = 1380405830  # 'RGRF'; schema.sql sets it
SCHEMA_VERSION = 1
SQLITE_MAGIC = b"SQLite format 3\x00"
WRITER_BATCH = 2048  # fetches per transaction, at most
WRITER_QUEUE = 4096
# A transaction rewrites every page it touches in the WAL, so a commit per few fetches writes
# the same pages over and over: the writer lets a batch fill for this long first. A crash
# loses at most this much finished work, which --resume fetches again.
WRITER_LINGER = 0.2  # seconds


class NotARefgraphDatabase(Exception):
    """The --db path is not a database refgraph may use; nothing was written to it."""


def utc_now(ago: float = 0.0) -> str:
    """ISO 8601 in UTC, to the second: now, or ``ago`` seconds before now."""
    return (datetime.now(UTC) - timedelta(seconds=ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def schema_sql() -> str:
    """schema.sql, shipped inside the package (a link to the top-level file in the source tree)."""
    return importlib.resources.files("crawler").joinpath("schema.sql").read_text(encoding="utf-8")


def ref_hash(ref_json: str) -> int:
    """64 bits of a reference's JSON, as SQLite's signed integer: the edge's identity."""
    digest = hashlib.blake2b(ref_json.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def check_database(path: str | Path, *, must_exist: bool) -> None:
    """Refuse anything but a refgraph database (or, when creating, a new or empty file).

    Reads the SQLite header directly, so a foreign file is never opened by SQLite, let alone
    written to. The schema is applied before the file turns to WAL mode, so a refgraph
    database's header carries its application_id even after a crash.
    """
    p = Path(path)
    if not p.exists():
        if must_exist:
            raise NotARefgraphDatabase(f"{path}: no such database (run 'refgraph crawl' first, or pass --db)")
        if not p.parent.is_dir():
            raise NotARefgraphDatabase(f"{path}: directory {p.parent} does not exist")
        return
    if not p.is_file():
        raise NotARefgraphDatabase(f"{path}: not a file")
    with open(p, "rb") as fh:
        header = fh.read(100)
    if not header and not must_exist:
        return
    if not header.startswith(SQLITE_MAGIC) or len(header) < 100:
        raise NotARefgraphDatabase(f"{path}: not a refgraph database (not an SQLite file)")
    app_id = int.from_bytes(header[68:72], "big")
    version = int.from_bytes(header[60:64], "big")
    if app_id != APPLICATION_ID:
        raise NotARefgraphDatabase(f"{path}: an SQLite database, but not a refgraph one; refusing to touch it")
    if version > SCHEMA_VERSION:
        raise NotARefgraphDatabase(f"{path}: made by a newer refgraph (schema {version}, this one knows {SCHEMA_VERSION})")


def open_readonly(path: str | Path) -> sqlite3.Connection:
    """A connection that cannot write, to an existing refgraph database, for queries.

    Opened read-write with query_only where the file allows it, so that SQLite can tidy its WAL
    side files on close; a file the user may only read is opened read-only.
    """
    check_database(path, must_exist=True)
    # surrogateescape: a path of bytes that are not UTF-8 (from argv) names its file exactly
    base = "file:" + urllib.parse.quote(str(Path(path).resolve()), errors="surrogateescape")
    try:
        conn = sqlite3.connect(base + "?mode=rw", uri=True)
        conn.execute("PRAGMA query_only = 1")
        conn.execute("SELECT count(*) FROM crawls").fetchone()
    except sqlite3.OperationalError:
        conn = sqlite3.connect(base + "?mode=ro", uri=True)
        conn.execute("PRAGMA query_only = 1")
    return conn


# Each statement below writes a whole batch from one JSON array parameter, unpacked by SQLite's
# json_each: executemany would take the GIL back for every row it binds, and with the event
# loop busy in the main thread that handoff, not SQLite, is what a crawl's writes cost.
# CROSS JOIN keeps json_each the outer loop, so every node is found through its index.
def _at(i: int) -> str:
    return f"json_extract(j.value, '$[{i}]')"


# [[kind, id, media type or null], ...]: a type the references give replaces the stored one.
_NODE_UPSERT = f"""
INSERT INTO nodes (kind, id, media_type, first_crawl)
SELECT {_at(0)}, {_at(1)}, {_at(2)}, :crawl FROM json_each(:rows) AS j WHERE true
ON CONFLICT (kind, id) DO UPDATE SET media_type = excluded.media_type
WHERE excluded.media_type IS NOT NULL AND media_type IS NOT excluded.media_type
"""
# A complete fetch is the whole truth about a target's referrers through one origin: every
# current edge is marked removed first, and the upsert that follows, in the same transaction,
# brings back what the fetch still reports. What stays removed is kept as history, left out of
# every current answer. (Comparing crawl ids instead would keep what a failed fetch stored
# earlier in the same, resumed, crawl.) [[kind, id, origin], ...]
_EDGE_RETIRE = f"""
UPDATE edges SET removed_crawl = :crawl WHERE removed_crawl IS NULL AND (target_id, origin) IN (
    SELECT n.node_id, {_at(2)} FROM json_each(:rows) AS j
    CROSS JOIN nodes AS n ON n.kind = {_at(0)} AND n.id = {_at(1)})
"""
# [[target kind, target id, origin, source kind, source id, ref_hash, type, location, ref_json], ...]
_EDGE_UPSERT = f"""
INSERT INTO edges (target_id, origin, source_id, ref_hash, ref_type, location, ref_json, first_crawl, last_crawl)
SELECT t.node_id, {_at(2)}, s.node_id, {_at(5)}, {_at(6)}, {_at(7)}, {_at(8)}, :crawl, :crawl
FROM json_each(:rows) AS j
CROSS JOIN nodes AS t ON t.kind = {_at(0)} AND t.id = {_at(1)}
CROSS JOIN nodes AS s ON s.kind = {_at(3)} AND s.id = {_at(4)}
WHERE true
ON CONFLICT (target_id, origin, source_id, ref_hash)
DO UPDATE SET last_crawl = excluded.last_crawl, removed_crawl = NULL
"""
# [[kind, id, endpoint, origin, status, referrers, pages, total, error], ...]
_FETCH_UPSERT = f"""
INSERT INTO fetches (node_id, endpoint, origin, status, crawl_id, fetched_at, referrers, pages, total, error)
SELECT n.node_id, {_at(2)}, {_at(3)}, {_at(4)}, :crawl, :now, {_at(5)}, {_at(6)}, {_at(7)}, {_at(8)}
FROM json_each(:rows) AS j CROSS JOIN nodes AS n ON n.kind = {_at(0)} AND n.id = {_at(1)}
WHERE true
ON CONFLICT (node_id, endpoint) DO UPDATE SET
    origin = excluded.origin, status = excluded.status, crawl_id = excluded.crawl_id,
    fetched_at = excluded.fetched_at, referrers = excluded.referrers, pages = excluded.pages,
    total = excluded.total, error = excluded.error
"""


def _rows(rows: list) -> str:
    return json.dumps(rows, ensure_ascii=False, separators=(",", ":"))


class Store:
    """The crawl's single writer connection."""

    def __init__(self, conn: aiosqlite.Connection, path: str):
        self.conn = conn
        self.path = path

    @classmethod
    async def open(cls, path: str | Path) -> Store:
        check_database(path, must_exist=False)
        try:
            conn = await aiosqlite.connect(str(path))
        except sqlite3.Error as exc:
            raise NotARefgraphDatabase(f"{path}: cannot open the database ({exc})") from None
        try:
            await conn.executescript(schema_sql())
            await conn.execute("PRAGMA journal_mode = WAL")
            await conn.execute("PRAGMA synchronous = NORMAL")  # WAL keeps it consistent on crash
        except sqlite3.Error as exc:
            await conn.close()
            raise NotARefgraphDatabase(f"{path}: cannot write to the database ({exc})") from None
        except BaseException:
            await conn.close()
            raise
        return cls(conn, str(path))

    async def close(self) -> None:
        await self.conn.close()

    async def previous_base_url(self) -> str | None:
        async with self.conn.execute("SELECT base_url FROM crawls ORDER BY crawl_id DESC LIMIT 1") as cursor:
            row = await cursor.fetchone()
        return row[0] if row else None

    async def begin_crawl(self, *, base_url: str, api_version: str, origins: Iterable[str],
                          args: dict[str, Any], seeds: Iterable[Node]) -> int:
        seeds = list(seeds)
        cursor = await self.conn.execute(
            "INSERT INTO crawls (started_at, base_url, api_version, origins, args_json, seeds)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (utc_now(), base_url, api_version, ",".join(sorted(origins)),
             json.dumps(args, sort_keys=True), len(seeds)))
        crawl_id = cursor.lastrowid
        await self.conn.executemany("INSERT OR IGNORE INTO nodes (kind, id, first_crawl) VALUES (?, ?, ?)",
                                    [(n.kind, n.id, crawl_id) for n in seeds])
        await self.conn.executemany(
            "INSERT OR IGNORE INTO crawl_seeds (crawl_id, node_id)"
            " SELECT ?, node_id FROM nodes WHERE kind = ? AND id = ?", [(crawl_id, n.kind, n.id) for n in seeds])
        await self.conn.commit()
        return crawl_id

    async def reopen_crawl(self, crawl_id: int) -> None:
        await self.conn.execute("UPDATE crawls SET outcome = 'running', finished_at = NULL, resumed = resumed + 1"
                                " WHERE crawl_id = ?", (crawl_id,))
        await self.conn.commit()

    async def crawl_seeds(self, crawl_id: int) -> list[Node]:
        async with self.conn.execute(
                "SELECT n.kind, n.id FROM crawl_seeds s JOIN nodes n USING (node_id) WHERE s.crawl_id = ?",
                (crawl_id,)) as cursor:
            return [Node(kind, ident) async for kind, ident in cursor]

    async def replay(self, *, crawl_id: int | None = None, fresh_since: str | None = None
                     ) -> dict[tuple[Node, str], list[Node]]:
        """The referrers of every (node, endpoint) that need not be fetched again: those a crawl
        finished completely (to resume it), or those fetched completely since a time (for
        --stale-after, with their current references)."""
        if crawl_id is not None:
            fetch_where, edge_where, param = "f.crawl_id = ?", "e.last_crawl = f.crawl_id", crawl_id
        else:
            fetch_where, edge_where, param = "f.fetched_at > ?", "e.removed_crawl IS NULL", fresh_since
        out: dict[tuple[Node, str], list[Node]] = {}
        async with self.conn.execute(
                "SELECT n.kind, n.id, f.endpoint FROM fetches f JOIN nodes n USING (node_id)"
                f" WHERE f.status = 'complete' AND {fetch_where}", (param,)) as cursor:
            async for kind, ident, endpoint in cursor:
                out[(Node(kind, ident), endpoint)] = []
        async with self.conn.execute(
                "SELECT t.kind, t.id, f.endpoint, s.kind, s.id FROM fetches f"
                " JOIN edges e ON e.target_id = f.node_id AND e.origin = f.origin"
                " JOIN nodes t ON t.node_id = e.target_id JOIN nodes s ON s.node_id = e.source_id"
                f" WHERE f.status = 'complete' AND {fetch_where} AND {edge_where}", (param,)) as cursor:
            async for t_kind, t_id, endpoint, s_kind, s_id in cursor:
                out[(Node(t_kind, t_id), endpoint)].append(Node(s_kind, s_id))
        return out

    async def save(self, crawl_id: int, results: list[FetchResult]) -> None:
        """Write finished fetches, their nodes and references in one transaction."""
        nodes: dict[tuple[str, str], str | None] = {}
        edges, fetches, retire = [], [], []
        for r in results:
            nodes.setdefault((r.node.kind, r.node.id), None)
            for ref in r.references:
                source, target = ref.source, ref.target
                nodes.setdefault((source.kind, source.id), None)
                if target.kind == "media" and ref.ref_type:
                    nodes[(target.kind, target.id)] = ref.ref_type
                else:
                    nodes.setdefault((target.kind, target.id), None)
                edges.append((target.kind, target.id, ref.origin, source.kind, source.id, ref_hash(ref.ref_json),
                              ref.ref_type, ref.location, ref.ref_json))
            fetches.append((r.node.kind, r.node.id, r.endpoint.name, r.endpoint.origin, r.status, r.referrers,
                            r.pages, r.total, r.error))
            if r.status in ("complete", "missing"):  # a deleted node is listed by no one any more
                retire.append((r.node.kind, r.node.id, r.endpoint.origin))
        params = {"crawl": crawl_id}
        try:
            await self.conn.execute(_NODE_UPSERT, {**params, "rows": _rows([[*key, t] for key, t in sorted(nodes.items())])})
            await self.conn.execute(_EDGE_RETIRE, {**params, "rows": _rows(retire)})
            await self.conn.execute(_EDGE_UPSERT, {**params, "rows": _rows(edges)})
            await self.conn.execute(_FETCH_UPSERT, {**params, "now": utc_now(), "rows": _rows(fetches)})
            await self.conn.commit()
        except BaseException:
            await self.conn.rollback()
            raise

    async def finish_crawl(self, crawl_id: int, outcome: str, message: str | None, origins: Iterable[str],
                           flags: list[str], counts: dict[str, int], stats: dict[str, int]) -> None:
        """Close the run's row; ``origins`` are those in force at the end (drafts may have been
        switched off on the way). Counts add up over the sessions of a resumed crawl."""
        await self.conn.execute(
            "UPDATE crawls SET finished_at = ?, outcome = ?, message = ?, origins = ?, flags = ?,"
            " fetched = fetched + ?, failed = failed + ?, missing = missing + ?, edges = edges + ?,"
            " requests = requests + ?, stats_json = ? WHERE crawl_id = ?",
            (utc_now(), outcome, message, ",".join(sorted(origins)), json.dumps(flags) if flags else None,
             counts.get("fetched", 0), counts.get("failed", 0), counts.get("missing", 0), counts.get("edges", 0),
             stats.get("requests/total", 0), json.dumps(stats, sort_keys=True), crawl_id))
        await self.conn.commit()


class BatchWriter:
    """Takes finished fetches from the workers and writes them in batches, in its own task."""

    def __init__(self, store: Store, crawl_id: int, batch: int = WRITER_BATCH, linger: float = WRITER_LINGER):
        self.store = store
        self.crawl_id = crawl_id
        self.batch = batch
        self.linger = linger
        self._flush = asyncio.Event()  # cuts the linger short: a full batch waits, or the end
        self.queue: asyncio.Queue[FetchResult | None] = asyncio.Queue(WRITER_QUEUE)
        self.task = asyncio.create_task(self._run(), name="refgraph-writer")

    async def put(self, result: FetchResult) -> None:
        if not self.task.done() and not self.queue.full():
            self.queue.put_nowait(result)
            if self.queue.qsize() >= self.batch:
                self._flush.set()
            return
        # Full queue: wait for room, but not for ever if the writer has died meanwhile.
        putting = asyncio.ensure_future(self.queue.put(result))
        await asyncio.wait({putting, self.task}, return_when=asyncio.FIRST_COMPLETED)
        if not putting.done():
            putting.cancel()
        if self.task.done():
            self.task.result()  # the writer died: its error is the crawl's error
            raise RuntimeError("the database writer stopped")

    async def close(self) -> None:
        """Write everything queued, then stop."""
        if not self.task.done():
            await self.queue.put(None)
            self._flush.set()
        await self.task

    async def _run(self) -> None:
        while True:
            item = await self.queue.get()
            batch, done = ([item] if item is not None else []), item is None
            done = self._drain(batch) if not done else done
            if not done and len(batch) < self.batch:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._flush.wait(), self.linger)
                self._flush.clear()
                done = self._drain(batch)
            if batch:
                await self.store.save(self.crawl_id, batch)
            if done:
                return

    def _drain(self, batch: list[FetchResult]) -> bool:
        """Move what is queued into ``batch``, up to the batch size; True at the end marker."""
        while len(batch) < self.batch and not self.queue.empty():
            item = self.queue.get_nowait()
            if item is None:
                return True
            batch.append(item)
        return False
