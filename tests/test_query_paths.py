"""The paths the queries take through the database (issue 5): the narrow edges_current index
instead of the wide rows, counts in SQL equal to node-by-node answers, and GraphML streamed
from SQLite equal to what networkx writes."""

from __future__ import annotations

import io
import sqlite3
from collections import Counter

import networkx as nx
import pytest
from conftest import doc, media

from crawler import answers, export, queries
from crawler.model import ENDPOINTS_BY_NAME, ORIGINS, FetchResult, Node, Reference, endpoints_for
from crawler.store import Store, open_readonly

ALL = set(ORIGINS)


def ref(source: Node, target: Node, origin: str, **fields) -> Reference:
    return Reference.make(source, target, origin, {"id": target.id, **fields})


def result(target: Node, endpoint: str, refs: list[Reference], status: str = "complete") -> FetchResult:
    referrers = len({r.source for r in refs})
    return FetchResult(target, ENDPOINTS_BY_NAME[endpoint], status, refs, referrers, 1,
                       referrers if status == "complete" else None, None if status == "complete" else "HTTP 500")


# A small newsroom with every state: a page teasing an article (publication and draft), the
# article showing two images, a video's poster image, an orphan, a media entry whose fetch
# failed, one never crawled, and a deleted document still referencing an image.
PAGE, ARTICLE, GONE = doc(1), doc(2), doc(3)
IMG, LOGO, VIDEO, ORPHAN, FAILED, LATE = (media(i) for i in ("img", "logo", "video", "orphan", "failed", "late"))
TEASE = [ref(PAGE, ARTICLE, "publication", type="document", location="include-directive"),
         ref(PAGE, ARTICLE, "draft", type="document", location="include-directive")]
SHOWS = [ref(ARTICLE, IMG, "publication", type="image", location="image-directive", componentId="c1"),
         ref(ARTICLE, IMG, "publication", type="image", location="image-directive", componentId="c2"),
         ref(ARTICLE, LOGO, "publication", type="image", location="image-directive"),
         ref(GONE, LOGO, "publication", type="image")]
POSTER = [ref(VIDEO, IMG, "media", type="image", location="metadata")]


def crawl_results() -> list[FetchResult]:
    by_target: dict[Node, list[Reference]] = {}
    for r in TEASE + SHOWS + POSTER:
        by_target.setdefault(r.target, []).append(r)
    out = []
    for node in (PAGE, ARTICLE, IMG, LOGO, VIDEO, ORPHAN, FAILED):
        for endpoint in endpoints_for(node.kind):
            refs = [r for r in by_target.get(node, []) if r.origin == endpoint.origin and r.source.kind == endpoint.source_kind]
            status = "failed" if node == FAILED and endpoint.origin == "publication" else "complete"
            out.append(result(node, endpoint.name, refs, status))
    out += [FetchResult(GONE, e, "missing", [], error="not found (HTTP 404)") for e in endpoints_for("document")]
    out.append(result(LATE, "mediaLibrary/incomingMediaReferences", []))  # its publication endpoint: never
    return out


async def stored(path, results: list[FetchResult], outcome: str = "complete"):
    """``results`` saved as one finished crawl into a new database at ``path``."""
    store = await Store.open(path)
    try:
        crawl_id = await store.begin_crawl(base_url="http://x", api_version="2026-01", origins=ALL, args={}, seeds=[])
        await store.save(crawl_id, results)
        await store.finish_crawl(crawl_id, outcome, None, ALL, [], {}, {})
    finally:
        await store.close()
    return path


@pytest.fixture
async def newsroom_db(tmp_path):
    return await stored(tmp_path / "paths.db", crawl_results(), "failures")


def plans(conn: sqlite3.Connection, run) -> list[str]:
    """The query plan of every statement ``run`` makes."""
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        run()
    finally:
        conn.set_trace_callback(None)
    return [" / ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql))
            for sql in statements if sql.lstrip().upper().startswith("SELECT")]


@pytest.mark.parametrize("origins", [ALL, {"publication"}])
def test_walks_and_orphans_never_read_the_wide_rows(newsroom_db, origins):
    conn = open_readonly(newsroom_db)
    touching = [p for p in plans(conn, lambda: (answers.impact_answer(conn, IMG, origins),
                                                 queries.orphans(conn, "media", origins)))
                if " edges" in p]
    assert touching and all("COVERING INDEX edges_current" in p for p in touching), touching
    assert not any("SCAN edges" in p and "INDEX" not in p for p in touching)


def test_answers_are_the_same_on_a_database_without_the_narrow_index(newsroom_db, tmp_path):
    conn = open_readonly(newsroom_db)
    before = [answers.impact_answer(conn, IMG, ALL), answers.orphans_answer(conn, "media", ALL),
              answers.stats_answer(conn), answers.refs_answer(conn, LOGO, ALL)]
    conn.close()
    with sqlite3.connect(newsroom_db) as rw:
        rw.execute("DROP INDEX edges_current")
    conn = open_readonly(newsroom_db)
    assert queries.current_edges(conn) == "edges AS edges"
    after = [answers.impact_answer(conn, IMG, ALL), answers.orphans_answer(conn, "media", ALL),
             answers.stats_answer(conn), answers.refs_answer(conn, LOGO, ALL)]
    assert after == before


def test_known_answers(newsroom_db):
    conn = open_readonly(newsroom_db)
    impact = answers.impact_answer(conn, IMG, ALL)
    assert [(n["node"], n["depth"], n["origins"]) for n in impact["nodes"]] == [
        ("document:2", 1, ["publication"]), ("media:video", 1, ["media"]), ("document:1", 2, ["draft", "publication"])]
    assert impact["counts"]["direct"] == 2 and impact["complete"]
    orphans = answers.orphans_answer(conn, "media", ALL)
    assert [o["node"] for o in orphans["orphans"]] == ["media:orphan", "media:video"]
    assert [u["node"] for u in orphans["unknown"]] == ["media:failed", "media:late"]
    assert orphans["referenced"] == 2 and orphans["dangling"] == []
    refs = answers.refs_answer(conn, IMG, ALL)
    assert refs["counts"] == {"referrers": 2, "references": 3}
    path = answers.path_answer(conn, PAGE, IMG, ALL)
    assert path["path"] == ["document:1", "document:2", "media:img"]
    assert [len(hop["references"]) for hop in path["hops"]] == [2, 2]


@pytest.mark.parametrize("origins", [ALL, {"publication", "media"}, {"draft"}])
def test_coverage_counts_equal_the_node_by_node_states(newsroom_db, origins):
    conn = open_readonly(newsroom_db)
    nodes = queries.nodes_by_id(conn, [row[0] for row in conn.execute("SELECT node_id FROM nodes")])
    states = queries.coverage_of(conn, nodes, origins)
    expected = {kind: Counter() for kind in ("media", "document")}
    for node_id, cov in states.items():
        expected[nodes[node_id].kind][cov.state] += 1
    counted = queries.coverage_counts(conn, origins)
    assert {k: {s: n for s, n in v.items() if n} for k, v in counted.items()} == {k: dict(v) for k, v in expected.items()}
    if origins == ALL:
        assert counted["media"] == {"complete": 4, "failed": 1, "missing": 0, "not crawled": 1}
        assert counted["document"] == {"complete": 2, "failed": 0, "missing": 1, "not crawled": 0}


def test_fetched_range_spans_every_crawl_still_holding_fetches(newsroom_db):
    conn = open_readonly(newsroom_db)
    first, last = queries.fetched_range(conn)
    assert (first, last) == conn.execute("SELECT min(fetched_at), max(fetched_at) FROM fetches").fetchone()


def networkx_graphml(conn: sqlite3.Connection) -> nx.MultiDiGraph:
    buffer = io.StringIO("\n".join(nx.generate_graphml(export.load_graph(conn))))
    return nx.read_graphml(buffer)


def same_graph(a: nx.MultiDiGraph, b: nx.MultiDiGraph) -> bool:
    """Same nodes, attributes and edges; networkx also writes its multi-edge key as an edge id,
    which the streamed file leaves out (GraphML edge ids are optional, and networkx's repeat)."""
    def edges(g):
        return Counter((u, v, tuple(sorted((k, x) for k, x in d.items() if k != "id"))) for u, v, d in g.edges(data=True))
    return dict(a.nodes(data=True)) == dict(b.nodes(data=True)) and edges(a) == edges(b)


async def test_streamed_graphml_is_what_networkx_writes(tmp_path):
    odd = [media('a"b'), media("x&y<z>"), media("ünï cödé 🖼"), doc(7)]
    refs = [ref(doc(7), odd[0], "publication", type="image", location="image-directive", caption='<b>"&"</b>'),
            ref(odd[1], odd[0], "media", type="image"),
            ref(doc(7), odd[2], "publication", note="no type, no location")]
    path = await stored(tmp_path / "odd.db", [result(odd[0], "mediaLibrary/incomingDocumentReferences", refs[:1]),
                                              result(odd[0], "mediaLibrary/incomingMediaReferences", refs[1:2]),
                                              result(odd[2], "mediaLibrary/incomingDocumentReferences", refs[2:])])
    conn = open_readonly(path)
    out = io.StringIO()
    export.export(conn, "graphml", out)
    streamed = nx.read_graphml(io.StringIO(out.getvalue()))
    assert (streamed.number_of_nodes(), streamed.number_of_edges()) == (4, 3)
    assert same_graph(streamed, networkx_graphml(conn))


async def test_streamed_graphml_stays_well_formed_with_control_characters(tmp_path):
    evil = media("evil\x1b[2J\x07\ufffe")
    path = await stored(tmp_path / "evil.db", [result(IMG, "mediaLibrary/incomingMediaReferences", [ref(evil, IMG, "media")])])
    out = io.StringIO()
    export.export(open_readonly(path), "graphml", out)
    graph = nx.read_graphml(io.StringIO(out.getvalue()))
    assert sorted(graph.nodes) == ["media:evil\\x1b[2J\\x07\\ufffe", "media:img"]
    assert graph.number_of_edges() == 1


def digest(path) -> bytes:
    import hashlib
    return hashlib.sha256(open(path, "rb").read()).digest()


def test_export_refuses_a_hard_link_to_the_database(newsroom_db, run_cli, tmp_path):
    link = tmp_path / "looks-like-output.graphml"
    import os
    os.link(newsroom_db, link)
    before = digest(newsroom_db)
    result = run_cli("export", "--format", "graphml", "--db", str(newsroom_db), "-o", str(link))
    assert result.exit_code == 2 and "that is the database itself" in result.stderr
    assert digest(newsroom_db) == before


def test_a_failed_export_leaves_the_old_file_whole(newsroom_db, run_cli, tmp_path, monkeypatch):
    out = tmp_path / "keep.graphml"
    out.write_text("precious\n")

    def half_then_fail(conn, fmt, stream):
        stream.write("<graphml>")
        raise sqlite3.DatabaseError("database disk image is malformed")

    monkeypatch.setattr("crawler.cli_query.export_graph", half_then_fail)
    result = run_cli("export", "--format", "graphml", "--db", str(newsroom_db), "-o", str(out))
    assert result.exit_code == 2 and "unreadable database" in result.stderr
    assert out.read_text() == "precious\n" and not list(tmp_path.glob(".keep.graphml.*"))


def test_export_reads_one_snapshot_while_a_crawl_commits(newsroom_db, run_cli, monkeypatch):
    """A reference committed between the export's read of the nodes and of the references,
    into a node the export has not listed, is not half-seen."""
    real = queries.all_nodes

    def nodes_then_a_commit(conn):
        rows = list(real(conn))
        with sqlite3.connect(newsroom_db) as writer:
            writer.execute("INSERT INTO nodes (kind, id) VALUES ('media', 'new')")
            writer.execute("INSERT INTO edges (target_id, origin, source_id, ref_hash, ref_json, first_crawl, last_crawl)"
                           " SELECT n.node_id, 'media', n.node_id, 1, '{}', 1, 1 FROM nodes n WHERE n.id = 'new'")
        return iter(rows)

    monkeypatch.setattr(queries, "all_nodes", nodes_then_a_commit)
    result = run_cli("export", "--format", "graphml", "--db", str(newsroom_db))
    assert result.exit_code == 0, result.output
    assert "media:new" not in result.stdout and result.stdout.count("<edge ") == 7


def test_bytes_that_are_not_utf8_are_one_line_errors(newsroom_db, run_cli):
    result = run_cli("refs", "media:\udcff", "--db", str(newsroom_db))
    assert result.exit_code == 2 and result.stderr.splitlines()[-1].endswith("b'media:\\xff' is not valid UTF-8")


@pytest.mark.parametrize("command", [["refs", "media:img"], ["impact", "media:img"], ["check-delete", "media:img"],
                                     ["path", "document:1", "media:img"]])
def test_no_endpoint_for_the_kind_is_refused_not_answered_unknown(newsroom_db, run_cli, command):
    result = run_cli(*command, "--endpoints", "drafts", "--db", str(newsroom_db))
    assert result.exit_code == 2 and "no endpoint lists referrers of media" in result.stderr


async def test_gexf_stays_well_formed_with_characters_xml_cannot_hold(tmp_path):
    evil = media("evil\x1b\ufffe")
    path = await stored(tmp_path / "evil.db", [result(IMG, "mediaLibrary/incomingMediaReferences",
                                                      [ref(evil, IMG, "media", note="odd \ufffe")])])
    out = io.StringIO()
    export.export(open_readonly(path), "gexf", out)
    graph = nx.read_gexf(io.StringIO(out.getvalue()))
    assert sorted(graph.nodes(data="label")) == [("media:evil\\x1b\\ufffe", "media:evil\\x1b\\ufffe"),
                                                 ("media:img", "media:img")]
    assert [data["reference"] for *_, data in graph.edges(data=True)] == ['{"id":"img","note":"odd \\ufffe"}']
