"""The command line as scripts use it: exact outputs, JSON shapes, exit codes, no token leaks."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import csv
import io
import json
import sqlite3
import threading
from pathlib import Path

import networkx as nx
import pydot
import pytest
from aiohttp import web
from conftest import SECRET, doc, media, pub

from crawler.model import Reference
from crawler.sandbox import DEFAULT_TOKEN, make_app, serve
from crawler.sandbox_data import Dataset

M1, M2, M3, M4 = media("m1"), media("m 2/x"), media("m3"), media("m4")
# media "1" and document 1 are different nodes: no output may merge them
KNOWN = Dataset.from_edges([M2, media("1")], [
    pub(doc(1), M1, type="image", location="image-directive", componentId="c1"),
    pub(doc(1), M1, type="image", location="metadata", propertyName="teaserImage"),
    pub(doc(2), doc(1), type="document", location="include-directive", componentId="c2"),
    Reference.make(M3, M1, "media", {"id": "m1", "type": "image", "location": "metadata", "propertyName": "imageLink"}),
], hidden_edges=[Reference.make(doc(3), M4, "draft", {"id": "m4", "type": "image"})])
SEEDS = "# media to check\nmedia:m1\n\nmedia:m 2/x\n  media:m4\nmedia:1\n"


@pytest.fixture
def crawled(tmp_path, sandbox, run_cli, db):
    """KNOWN crawled into db through the CLI; returns the crawl's result."""
    url, _ = sandbox(KNOWN)
    seeds = tmp_path / "seeds.txt"
    seeds.write_text(SEEDS)
    result = run_cli("crawl", "--base-url", url, "--seeds-file", seeds, "--db", db)
    assert result.exit_code == 0, result.output
    return result


def test_crawl_reports_and_records(crawled, db):
    assert "crawl #1 complete" in crawled.stderr and "0 failed" in crawled.stderr
    with sqlite3.connect(db) as conn:
        outcome, seeds, args = conn.execute("SELECT outcome, seeds, args_json FROM crawls").fetchone()
    assert (outcome, seeds) == ("complete", 4) and json.loads(args)["origins"] == ["draft", "media", "publication"]


def test_orphans_json_shape_and_truth(crawled, run_cli, db):
    result = run_cli("orphans", "--db", db, "--json")
    answer = json.loads(result.stdout)
    assert result.exit_code == 0
    assert [(o["kind"], o["id"]) for o in answer["orphans"]] == [
        ("media", "1"), ("media", "m 2/x"), ("media", "m3"), ("media", "m4")]
    assert answer["unknown"] == [] and answer["missing"] == []
    assert any("drafts is invisible" in note for note in answer["basis"]["notes"])


def test_orphans_csv_and_text(crawled, run_cli, db):
    result = run_cli("orphans", "--db", db, "--csv")
    assert result.stdout == "kind,id\nmedia,1\nmedia,m 2/x\nmedia,m3\nmedia,m4\n"
    assert "invisible to the API" in result.stderr
    assert "invisible to the API" in run_cli("orphans", "--db", db).stdout
    assert "  document:2\n1 orphan\n" in run_cli("orphans", "--db", db, "--kind", "document").stdout


def test_impact_json_shape_and_truth(crawled, run_cli, db):
    result = run_cli("impact", "media:m1", "--db", db, "--json")
    nodes = json.loads(result.stdout)["nodes"]
    assert result.exit_code == 0
    assert [(n["kind"], n["id"], n["depth"], n["origins"]) for n in nodes] == [
        ("document", "1", 1, ["publication"]), ("media", "m3", 1, ["media"]), ("document", "2", 2, ["publication"])]


def test_refs_counts_referrers_and_references(crawled, run_cli, db):
    result = run_cli("refs", "media:m1", "--db", db, "--json")
    answer = json.loads(result.stdout)
    assert answer["counts"] == {"referrers": 2, "references": 3}
    assert sorted((r["kind"], r["id"], r["origin"], r["location"]) for r in answer["references"]) == [
        ("document", "1", "publication", "image-directive"), ("document", "1", "publication", "metadata"),
        ("media", "m3", "media", "metadata")]
    text = run_cli("refs", "media:m1", "--db", db).stdout
    assert "media:m1: 2 referrers, 3 references; crawled completely" in text


def test_path_and_stats(crawled, run_cli, db):
    result = run_cli("path", "document:2", "media:m1", "--db", db, "--json")
    assert json.loads(result.stdout)["path"] == ["document:2", "document:1", "media:m1"]
    assert json.loads(run_cli("path", "media:m1", "document:2", "--db", db, "--json").stdout)["path"] is None
    stats = json.loads(run_cli("stats", "--db", db, "--json").stdout)
    assert stats["nodes"] == {"media": 5, "document": 2}
    assert stats["references"] == {"total": 4, "by_origin": {"media": 1, "publication": 3}}
    assert stats["most_referenced_media"][0] | {"media_type": None} == {
        "node": "media:m1", "kind": "media", "id": "m1", "media_type": None, "referrers": 2, "references": 3}


@pytest.mark.parametrize("fmt", ["graphml", "gexf", "json", "csv", "dot"])
def test_export_formats_read_back(crawled, run_cli, db, fmt, tmp_path):
    out = tmp_path / f"g.{fmt}"
    assert run_cli("export", "--format", fmt, "--db", db, "-o", out).exit_code == 0
    text = out.read_text(encoding="utf-8")
    if fmt == "graphml":
        g = nx.read_graphml(out)
    elif fmt == "gexf":
        g = nx.read_gexf(out)
    elif fmt == "json":
        g = nx.node_link_graph(json.loads(text), edges="edges")
    elif fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        g = nx.MultiDiGraph([(r["source"], r["target"]) for r in rows])
        g.add_nodes_from(["media:m 2/x", "media:m4", "media:1"])  # csv lists references only
    else:
        (parsed,) = pydot.graph_from_dot_data(text)
        g = nx.MultiDiGraph([(e.get_source(), e.get_destination()) for e in parsed.get_edges()])
        g.add_nodes_from(n.get_name() for n in parsed.get_nodes())
    assert (g.number_of_nodes(), g.number_of_edges()) == (7, 4)
    if fmt == "gexf":  # GEXF's edge type is directed/undirected, not the reference's type
        assert ' type="image"' not in text and 'label="media:1"' in text


def test_token_never_shows_up(tmp_path, sandbox, run_cli, db):
    url, _ = sandbox(KNOWN, token=SECRET)
    token_file = tmp_path / "token"
    token_file.write_text(SECRET + "\n")
    result = run_cli("crawl", "--base-url", url, "--token-file", token_file, "media:m1", "--db", db, token=None)
    assert result.exit_code == 0, result.output
    rejected = run_cli("crawl", "--base-url", url, "media:m1", "--db", db, token=SECRET + "x")
    assert rejected.exit_code == 1 and "token rejected" in rejected.stderr
    for text in (result.output, rejected.output):
        assert SECRET not in text
    for path in Path(db).parent.glob("refs.db*"):
        assert SECRET.encode() not in path.read_bytes()


@pytest.mark.parametrize("content, message", [
    ("media:ok\nimage:1\n", "seeds.txt:2: unknown kind 'image'"),
    ("# ok\n\ndocument:12x\n", "seeds.txt:3: document ids are non-negative integers"),
    ("media:\n", "seeds.txt:1: empty id"),
    ("9fKagDCiN6sb\n", "seeds.txt:1: expected media:ID or document:ID"),
])
def test_a_bad_seed_line_stops_before_any_request(tmp_path, sandbox, run_cli, db, content, message):
    url, stats = sandbox(KNOWN)
    seeds = tmp_path / "seeds.txt"
    seeds.write_text(content)
    result = run_cli("crawl", "--base-url", url, "--seeds-file", seeds, "--db", db)
    assert result.exit_code == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert stats.requests == 0 and not Path(db).exists()


@pytest.mark.parametrize("args, token, message", [
    (["media:x"], None, "no API token"),
    (["media:x", "--token-file", "/no/such/file"], None, "/no/such/file: cannot read token file"),
    (["media:x"], "two words", "token must be one line"),
    (["media:x", "--base-url", "ftp://x"], DEFAULT_TOKEN, "--base-url: not an http(s) URL"),
    (["media:x", "--endpoints", "media,images"], DEFAULT_TOKEN, "unknown origin 'images'"),
    (["bogus"], DEFAULT_TOKEN, "expected media:ID or document:ID"),
    ([], DEFAULT_TOKEN, "no seeds"),
])
def test_bad_input_is_exit_2_with_one_clear_line(run_cli, db, args, token, message):
    base = [] if "--base-url" in args else ["--base-url", "http://127.0.0.1:9"]
    result = run_cli("crawl", *base, *args, "--db", db, token=token)
    assert result.exit_code == 2 and message in result.stderr


def test_a_foreign_file_as_db_is_refused_and_untouched(tmp_path, run_cli):
    foreign = tmp_path / "notes.db"
    foreign.write_text("my notes\n")
    for args in (["crawl", "media:x", "--base-url", "http://127.0.0.1:9"], ["orphans"], ["stats"], ["impact", "media:x"]):
        result = run_cli(*args, "--db", foreign)
        assert result.exit_code == 2 and "not a refgraph database" in result.stderr
    assert foreign.read_text() == "my notes\n" and sorted(p.name for p in tmp_path.iterdir()) == ["notes.db"]


def test_gone_version_is_fatal(sandbox, run_cli, db):
    url, _ = sandbox(KNOWN)
    result = run_cli("crawl", "--base-url", url, "--api-version", "2019-01", "media:m1", "--db", db)
    assert result.exit_code == 1 and "API version 2019-01 is gone" in result.stderr


def test_insecure_warns(sandbox, run_cli, db):
    url, _ = sandbox(KNOWN)
    result = run_cli("crawl", "--base-url", url, "--insecure", "media:m1", "--db", db)
    assert result.exit_code == 0 and "TLS certificates are NOT verified" in result.stderr


@contextlib.contextmanager
def app_in_thread(app: web.Application):
    """Serve any aiohttp app from a thread for the synchronous CLI; stopped on exit."""
    ready: concurrent.futures.Future = concurrent.futures.Future()

    async def main():
        stop = asyncio.Event()
        async with serve(app) as url:
            ready.set_result((url, asyncio.get_running_loop(), stop))
            await stop.wait()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    url, loop, stop = ready.result(timeout=10)
    try:
        yield url
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join()


def test_failed_nodes_give_exit_3_and_stay_unknown(run_cli, db):
    """One media entry answers with a body of the wrong shape: it fails, the rest goes on."""
    (sandbox_route,) = [r for r in make_app(KNOWN).router.routes() if r.method == "GET"]

    async def handler(request):
        if "m%202" in request.raw_path:
            return web.json_response({"surprise": True})
        return await sandbox_route.handler(request)

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handler)
    with app_in_thread(app) as url:
        result = run_cli("crawl", "--base-url", url, "media:m1", "media:m 2/x", "--db", db)
    assert result.exit_code == 3 and "failed: media:m 2/x" in result.stderr and "surprise" in result.stderr
    answer = json.loads(run_cli("orphans", "--db", db, "--json").stdout)
    assert [o["id"] for o in answer["orphans"]] == ["m3"]
    assert [(u["id"], u["state"]) for u in answer["unknown"]] == [("m 2/x", "failed")]
    refs = run_cli("refs", "media:m 2/x", "--db", db)
    assert refs.exit_code == 3 and "NOT crawled completely (failed" in refs.stdout


@pytest.mark.parametrize("status, code, message", [
    (403, 1, "HTTP 403 on mediaLibrary/"),
    (401, 1, "token rejected (expired or wrong)"),
    (410, 1, "API version 2026-01 is gone on this server; try a newer --api-version"),
])
def test_permanent_answers_stop_the_crawl_with_their_message(run_cli, db, status, code, message):
    async def handler(request):
        return web.json_response({"status": status, "error": "x", "error_details": {}}, status=status)

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handler)
    with app_in_thread(app) as url:
        result = run_cli("crawl", "--base-url", url, "media:m1", "--db", db)
    assert result.exit_code == code and message in result.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT outcome FROM crawls").fetchone() == ("fatal",)
