"""Servers that misbehave, and inputs meant to hurt: one node fails, nothing leaks, no lie."""

from __future__ import annotations

import gzip
import json
import sqlite3
from pathlib import Path

import pytest
from aiohttp import web
from conftest import SECRET, doc, media, pub
from test_cli import KNOWN

from crawler.api import MAX_BODY_BYTES, NodeUnavailable, open_session
from crawler.client import Client
from crawler.model import ENDPOINTS_BY_NAME, Reference
from crawler.sandbox import serve
from crawler.sandbox_data import Dataset

MEDIA_PUBS = ENDPOINTS_BY_NAME["mediaLibrary/incomingDocumentReferences"]


def app_of(handler) -> web.Application:
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handler)
    return app


async def fetch_from(handler, **client_kwargs):
    async with serve(app_of(handler)) as url, open_session(SECRET) as session:
        return await Client(session, url, "2026-01", backoff=0.0, retries=1, secret=SECRET,
                            **client_kwargs).incoming(MEDIA_PUBS, media("m"))


def page_of(ids) -> list:
    return [{"id": i, "references": [{"id": "m", "type": "image"}]} for i in ids]


@pytest.mark.parametrize("body, reason", [
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('[{"id": 1, "references": [{"id": "m", "size": 1e400}]}]', "out of range"),
    ('[{"id": 1, "references": [{"id": "m", "size": NaN}]}]', "not a number JSON allows"),
])
async def test_bodies_that_break_parsers_fail_the_node(body, reason):
    async def handler(request):
        return web.Response(text=body, content_type="application/json")

    with pytest.raises(NodeUnavailable, match=reason):
        await fetch_from(handler)


async def test_a_gzip_bomb_is_capped_after_decompression():
    bomb = gzip.compress(b"[" + b" " * (MAX_BODY_BYTES + 10) + b"]", compresslevel=9)

    async def handler(request):
        return web.Response(body=bomb, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})

    with pytest.raises(NodeUnavailable, match="cap"):
        await fetch_from(handler)


async def test_paging_that_never_ends_fails_the_node_with_what_arrived():
    async def handler(request):
        start = int(request.query.get("offset", 0))
        return web.json_response(page_of(range(start, start + 100)))

    with pytest.raises(NodeUnavailable, match="gave up after 5 pages") as err:
        await fetch_from(handler, max_pages=5)
    assert err.value.partial.referrers == 500 and err.value.partial.status == "failed"


async def test_a_404_after_the_first_page_is_a_failure_not_a_deletion():
    async def handler(request):
        if request.query.get("offset") == "0":
            return web.json_response(page_of(range(100)))
        return web.json_response({"status": 404, "error": "Not Found"}, status=404)

    with pytest.raises(NodeUnavailable, match="later page") as err:
        await fetch_from(handler)
    assert err.value.partial.referrers == 100


@pytest.mark.parametrize("location", ["http://[bad", "http://127.0.0.1:99999/x", "", "http://user:pw@127.0.0.1/x"])
async def test_unusable_redirects_fail_the_node(location):
    async def handler(request):
        return web.Response(status=302, headers={"Location": location} if location else {})

    with pytest.raises(NodeUnavailable, match="Location"):
        await fetch_from(handler)


async def test_a_server_echoing_the_token_gets_it_nowhere():
    async def handler(request):
        token = request.headers["Authorization"].split()[1]
        if request.query.get("offset") == "0":
            return web.json_response([{"id": 1, "references": [{"id": "m", "note": token}]}])
        return web.Response(status=400, text=f"bad token {token}")

    result = await fetch_from(handler)
    assert SECRET not in result.references[0].ref_json and "[redacted]" in result.references[0].ref_json


def test_ids_reach_csv_byte_for_byte_and_terminals_escaped(tmp_path, sandbox, run_cli, db):
    evil = media("evil\x1b]0;pwned\x07\x1b[2J\u202e")
    dataset = Dataset.from_edges([], [Reference.make(evil, media("m1"), "media", {"id": "m1"})])
    url, _ = sandbox(dataset)
    assert run_cli("crawl", "--base-url", url, "media:m1", "--db", db).exit_code == 0
    csv_out = run_cli("orphans", "--db", db, "--csv").stdout
    assert csv_out == f"kind,id\nmedia,{evil.id}\n"
    text = run_cli("orphans", "--db", db).stdout
    assert "\x1b" not in text and "\u202e" not in text and "evil\\x1b]0;pwned\\x07\\x1b[2J\\u202e" in text
    graphml = tmp_path / "g.graphml"
    assert run_cli("export", "--format", "graphml", "--db", db, "-o", graphml).exit_code == 0
    import networkx as nx
    assert nx.read_graphml(graphml).number_of_nodes() == 2


def test_every_fetch_answering_404_is_not_a_success(sandbox, run_cli, db):
    url, _ = sandbox(KNOWN)
    seeds = [f"media:m{i}" for i in range(25)]  # a pattern needs numbers: one 404 is just a deleted node
    result = run_cli("crawl", "--base-url", url + "/wrong/prefix", *seeds, "--db", db)
    assert result.exit_code == 3 and "every fetch answered 404: check --base-url" in result.stderr
    assert "THIS RESULT LOOKS WRONG" in result.stderr


def test_seeds_whose_kind_no_enabled_endpoint_covers_are_refused(run_cli, db):
    result = run_cli("crawl", "--base-url", "http://127.0.0.1:9", "media:m1", "--endpoints", "drafts", "--db", db)
    assert result.exit_code == 2 and "no endpoint lists referrers of media" in result.stderr


def test_orphans_through_no_endpoint_is_refused(crawled_db, run_cli):
    result = run_cli("orphans", "--db", crawled_db, "--endpoints", "drafts", "--csv")
    assert result.exit_code == 2 and result.stdout == ""


def test_a_filtered_answer_says_what_it_left_out(crawled_db, run_cli):
    answer = json.loads(run_cli("orphans", "--db", crawled_db, "--endpoints", "media", "--json").stdout)
    assert [o["id"] for o in answer["orphans"]] == ["1", "m 2/x", "m3", "m4"]
    assert any("references through publication are left out" in n for n in answer["basis"]["notes"])


def test_export_refuses_to_overwrite_the_database(crawled_db, run_cli):
    before = Path(crawled_db).read_bytes()
    result = run_cli("export", "--format", "csv", "--db", crawled_db, "-o", crawled_db)
    assert result.exit_code == 2 and Path(crawled_db).read_bytes() == before


def test_a_damaged_database_is_a_clear_error(crawled_db, run_cli):
    data = Path(crawled_db).read_bytes()
    Path(crawled_db).write_bytes(data[:4096])
    result = run_cli("crawl", "--base-url", "http://127.0.0.1:9", "media:x", "--db", crawled_db)
    assert result.exit_code == 2 and crawled_db in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_small_demos_work(run_cli, tmp_path):
    for media_count, documents in ((0, 0), (1, 1), (0, 5)):
        result = run_cli("demo", "--db", tmp_path / f"d{media_count}{documents}.db", "--media", media_count,
                         "--documents", documents)
        assert result.exit_code == 0 and "ground truth: yes" in result.stdout


@pytest.fixture
def crawled_db(sandbox, run_cli, db):
    url, _ = sandbox(KNOWN)
    seeds = ["media:m1", "media:m 2/x", "media:m4", "media:1"]
    assert run_cli("crawl", "--base-url", url, *seeds, "--db", db).exit_code == 0
    with sqlite3.connect(db) as conn:  # fold the WAL in, so that the file alone is the database
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return db


def test_mixing_servers_in_one_database_is_warned(sandbox, run_cli, db):
    first, _ = sandbox(Dataset.from_edges([], [pub(doc(1), media("m1"))]))
    second, _ = sandbox(Dataset.from_edges([], [pub(doc(1), media("m1"))]))
    run_cli("crawl", "--base-url", first, "media:m1", "--db", db)
    result = run_cli("crawl", "--base-url", second, "media:m1", "--db", db)
    assert f"last crawled from {first}" in result.stderr


def test_a_crawl_that_sees_no_reference_is_flagged_not_trusted(sandbox, run_cli, db):
    lonely = [media(f"m{i}") for i in range(25)]
    url, _ = sandbox(Dataset.from_edges(lonely, []))
    result = run_cli("crawl", "--base-url", url, *lonely, "--db", db)
    assert result.exit_code == 3
    assert "THIS RESULT LOOKS WRONG: the crawl saw no reference at all" in result.stderr
    assert "25 of 25 seeds came back unreferenced" in result.stderr
    answer = json.loads(run_cli("orphans", "--db", db, "--json").stdout)
    assert answer["suspect"] is True and len(answer["orphans"]) == 25
    assert "the crawl saw no reference at all" in answer["flags"]
    assert "THIS RESULT LOOKS WRONG" in run_cli("orphans", "--db", db).stdout


def test_sources_deleted_upstream_leave_their_targets_dangling(sandbox, run_cli, db):
    ghost, kept = doc(9), doc(8)
    dataset = Dataset.from_edges([], [pub(ghost, media("a")), pub(kept, media("b")), pub(ghost, media("b"))])
    dataset.nodes.discard(ghost)  # the API still lists it as a referrer, but it answers 404 itself
    dataset.changed()
    url, _ = sandbox(dataset)
    assert run_cli("crawl", "--base-url", url, "media:a", "media:b", "--db", db).exit_code == 0
    answer = json.loads(run_cli("orphans", "--db", db, "--json").stdout)
    assert answer["orphans"] == [] and [d["id"] for d in answer["dangling"]] == ["a"]
    assert [m["node"] for m in json.loads(run_cli("orphans", "--kind", "document", "--db", db, "--json").stdout)[
        "missing"]] == ["document:9"]


async def test_a_token_echoed_inside_json_escapes_is_scrubbed_too():
    async def handler(request):
        token = request.headers["Authorization"].split()[1]
        escaped = "".join(f"\\u{ord(c):04x}" for c in token)
        if request.query.get("offset") == "0":
            return web.Response(text=f'[{{"id": 1, "references": [{{"id": "m", "note": "{escaped}"}}]}}]',
                                content_type="application/json")
        return web.json_response([])

    result = await fetch_from(handler)
    assert SECRET not in result.references[0].ref_json and "[redacted]" in result.references[0].ref_json


async def test_pages_short_of_the_servers_total_are_never_complete():
    async def handler(request):  # serves 50 a page whatever is asked, and says 250 exist
        start = int(request.query.get("offset", 0))
        return web.json_response({"total": 250, "cursor": None, "results": page_of(range(start, min(start + 50, 250)))})

    result = await fetch_from(handler)
    assert result.status == "complete" and result.referrers == 250

    async def liar(request):  # says 250, lists 50, then nothing
        start = int(request.query.get("offset", 0))
        return web.json_response({"total": 250, "results": page_of(range(50)) if start == 0 else []})

    with pytest.raises(NodeUnavailable, match="50 of 250 referrers"):
        await fetch_from(liar)


def test_one_crawl_per_database_at_a_time(sandbox, run_cli, db):
    import fcntl

    url, stats = sandbox(KNOWN)
    with open(f"{db}.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running crawl holds it
        result = run_cli("crawl", "--base-url", url, "media:m1", "--db", db)
    assert result.exit_code == 1 and "another refgraph crawl is writing" in result.stderr and stats.requests == 0
    assert run_cli("crawl", "--base-url", url, "media:m1", "--db", db).exit_code == 0
