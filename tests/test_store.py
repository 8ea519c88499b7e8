"""The database: identity of nodes and edges, atomic saves, refusing foreign files."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from conftest import doc, media, pub

from crawler.model import ENDPOINTS_BY_NAME, FetchResult, Reference
from crawler.store import NotARefgraphDatabase, Store, check_database, open_readonly, schema_sql

MEDIA_PUBS = ENDPOINTS_BY_NAME["mediaLibrary/incomingDocumentReferences"]


async def stored(path, results_per_crawl):
    """Save each list of results as one crawl; return the store's path."""
    store = await Store.open(path)
    try:
        for results in results_per_crawl:
            crawl_id = await store.begin_crawl(base_url="http://x", api_version="2026-01", origins=["publication"],
                                               args={}, seeds=[])
            await store.save(crawl_id, results)
    finally:
        await store.close()
    return path


def rows(path, sql):
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


def complete(target, refs):
    return FetchResult(target, MEDIA_PUBS, "complete", refs, len({r.source for r in refs}), 1)


async def test_the_same_edge_twice_is_stored_once_and_places_are_distinct(db):
    teaser = pub(doc(2), media("m"), type="image", location="metadata", propertyName="teaserImage")
    body = pub(doc(2), media("m"), type="image", location="image-directive", componentId="c1")
    await stored(db, [[complete(media("m"), [teaser, body, teaser])], [complete(media("m"), [teaser, body])]])
    assert rows(db, "SELECT count(*), count(DISTINCT source_id) FROM edges") == [(2, 1)]
    assert rows(db, "SELECT first_crawl, last_crawl FROM edges") == [(1, 2), (1, 2)]


async def test_node_identity_is_kind_and_canonical_id(db):
    one_text = Reference.make(doc("1"), media("1"), "publication", {"id": "1"})
    one_number = Reference.make(doc(1), media("1"), "publication", {"id": "1"})
    await stored(db, [[complete(media("1"), [one_text, one_number])]])
    assert sorted(rows(db, "SELECT kind, id FROM nodes")) == [("document", "1"), ("media", "1")]
    assert rows(db, "SELECT count(*) FROM edges") == [(1,)]


async def test_references_are_kept_losslessly(db):
    fields = {"id": "m", "type": "image", "location": "list-directive", "listId": 7, "deep": {"x": [1, None, "ü"]}}
    await stored(db, [[complete(media("m"), [Reference.make(doc(5), media("m"), "publication", fields)])]])
    (ref_json, ref_type, location), = rows(db, "SELECT ref_json, ref_type, location FROM edges")
    assert Reference(doc(5), media("m"), "publication", ref_json).fields == fields
    assert (ref_type, location) == ("image", "list-directive")
    assert rows(db, "SELECT media_type FROM nodes WHERE kind = 'media'") == [("image",)]


async def test_a_complete_recrawl_retires_what_it_no_longer_reports(db):
    old, kept = pub(doc(1), media("m"), componentId="a"), pub(doc(2), media("m"), componentId="b")
    await stored(db, [[complete(media("m"), [old, kept])], [complete(media("m"), [kept])]])
    assert rows(db, "SELECT n.id, e.removed_crawl FROM edges e JOIN nodes n ON n.node_id = e.source_id"
                    " ORDER BY n.id") == [("1", 2), ("2", None)]


async def test_a_failed_fetch_keeps_what_was_known(db):
    old = pub(doc(1), media("m"))
    failed = FetchResult(media("m"), MEDIA_PUBS, "failed", [], 0, 0, error="HTTP 500 after 6 attempt(s)")
    await stored(db, [[complete(media("m"), [old])], [failed]])
    assert rows(db, "SELECT removed_crawl FROM edges") == [(None,)]
    assert rows(db, "SELECT status, error FROM fetches") == [("failed", "HTTP 500 after 6 attempt(s)")]


async def test_edges_and_status_land_together(db):
    store = await Store.open(db)
    crawl_id = await store.begin_crawl(base_url="http://x", api_version="v", origins=["publication"], args={}, seeds=[])
    broken = complete(media("m"), [pub(doc(1), media("m"))])
    broken.status = "bogus"  # violates the CHECK constraint: the whole batch must roll back
    with pytest.raises(sqlite3.IntegrityError):
        await store.save(crawl_id, [complete(media("ok"), [pub(doc(2), media("ok"))]), broken])
    await store.close()
    assert rows(db, "SELECT count(*) FROM edges") == [(0,)]
    assert rows(db, "SELECT count(*) FROM fetches") == [(0,)]


async def test_wal_mode_and_markers(db):
    await stored(db, [[]])
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA application_id").fetchone() == (1380405830,)
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    check_database(db, must_exist=True)
    open_readonly(db).close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("content", [b"hello, not a database\n", b"SQLite format 3\x00" + b"\x00" * 10])
async def test_foreign_files_are_refused_untouched(tmp_path, content):
    path = tmp_path / "other.db"
    path.write_bytes(content)
    before = digest(path)
    with pytest.raises(NotARefgraphDatabase):
        await Store.open(path)
    with pytest.raises(NotARefgraphDatabase):
        open_readonly(path)
    assert digest(path) == before and sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]


async def test_a_foreign_sqlite_database_is_refused_untouched(tmp_path):
    path = tmp_path / "app.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (name TEXT)")
    before = digest(path)
    with pytest.raises(NotARefgraphDatabase, match="not a refgraph one"):
        await Store.open(path)
    assert digest(path) == before


async def test_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "future.db"
    await stored(path, [[]])
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode = DELETE")
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(NotARefgraphDatabase, match="newer refgraph"):
        open_readonly(path)


def test_schema_ships_with_the_package():
    top = Path(__file__).parent.parent / "schema.sql"
    assert schema_sql() == top.read_text(encoding="utf-8")
