"""The sandbox dataset, its ground truth, and the fake API that serves it.

Every server here listens on 127.0.0.1 port 0 and is stopped by the test that started it.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import aiohttp
import pytest
import yarl

from crawler.model import ENDPOINTS_BY_NAME, Node, Reference, endpoints_for
from crawler.newsroom import generate
from crawler.sandbox import (
    DEFAULT_NO_DRAFTS_TOKEN,
    DEFAULT_TOKEN,
    decode_cursor,
    encode_cursor,
    make_app,
    serve,
    serve_in_thread,
)
from crawler.sandbox_data import Dataset

FIXTURES = Path(__file__).parent / "fixtures" / "api"
DOC_MEDIA = ENDPOINTS_BY_NAME["mediaLibrary/incomingDocumentReferences"]
MEDIA_MEDIA = ENDPOINTS_BY_NAME["mediaLibrary/incomingMediaReferences"]
DOC_DOC = ENDPOINTS_BY_NAME["documents/incomingDocumentReferences"]
DRAFT_DOC = ENDPOINTS_BY_NAME["drafts/incomingDocumentReferences"]


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def doc(n: int) -> Node:
    return Node.of("document", n)


def media(mid: str) -> Node:
    return Node.of("media", mid)


def ref(source: Node, target: Node, origin: str, **fields) -> Reference:
    ref_type = fields.pop("type", "image" if target.kind == "media" else "document")
    return Reference.make(source, target, origin, {"id": target.id, "type": ref_type, **fields})


# -- a tiny graph to check the ground truth by hand --------------------------------------------
#
#   M1 "a/b c" <- D1 (publication, twice: image directive and teaserImage)
#   M1         <- M2 ".." (media, imageLink)
#   D1 <- D2 (publication teaser);  D2 <- D1 (draft link: a cycle only with drafts)
#   D2 <- D2 (publication self link);  D3 <- D4 (draft link)
#   M4 "12345" <- D3 only in a draft (hidden);  M3 "ü" unused

M1, M2, M3, M4 = media("a/b c"), media(".."), media("ü"), media("12345")
D1, D2, D3, D4 = doc(1), doc(2), doc(3), doc(4)
E1 = ref(D1, M1, "publication", location="image-directive", componentId="doc-1",
         componentName="image", directiveName="image")
E2 = ref(D1, M1, "publication", location="metadata", propertyName="teaserImage")
E3 = ref(M2, M1, "media", location="metadata", propertyName="imageLink")
E4 = ref(D2, D1, "publication", location="include-directive", componentId="doc-2")
E5 = ref(D1, D2, "draft", location="editable-directive", componentId="doc-3")
E6 = ref(D2, D2, "publication", location="editable-directive", componentId="doc-4")
E7 = ref(D4, D3, "draft", location="editable-directive", componentId="doc-5")
H1 = ref(D3, M4, "draft", location="image-directive", componentId="doc-6")


@pytest.fixture
def tiny() -> Dataset:
    return Dataset.from_edges([M3], [E1, E2, E3, E4, E5, E6, E7], hidden_edges=[H1])


@pytest.fixture(scope="module")
def newsroom() -> Dataset:
    return generate()


# -- the generator -------------------------------------------------------------------------------

def test_generate_is_deterministic_per_seed():
    a, b, c = generate(media=300, documents=150, seed=7), generate(media=300, documents=150, seed=7), \
        generate(media=300, documents=150, seed=8)
    assert (a.nodes, a.edges, a.hidden_edges, a.types) == (b.nodes, b.edges, b.hidden_edges, b.types)
    assert a.edges != c.edges


@pytest.mark.parametrize("n_media, n_docs", [(3000, 1500), (5, 3), (0, 0), (13000, 7000)])
def test_generate_sizes(n_media, n_docs):
    started = time.perf_counter()
    ds = generate(media=n_media, documents=n_docs)
    assert time.perf_counter() - started < 10  # about 1 s at 20k nodes; generous for slow CI
    assert Counter(n.kind for n in ds.nodes) == Counter(media=n_media, document=n_docs) - Counter()
    assert all(e.source in ds.nodes and e.target in ds.nodes for e in ds.edges + ds.hidden_edges)


def test_generate_refuses_negative_sizes():
    with pytest.raises(ValueError):
        generate(media=-1)


def test_newsroom_media_reuse(newsroom):
    in_degree = Counter(e.target for e in newsroom.edges if e.target.kind == "media")
    logo, uses = in_degree.most_common(1)[0]
    assert uses >= 1000 and newsroom.media_type(logo) == "image"
    articles = [n for n, t in newsroom.types.items() if t == "article"]
    assert len({e.source for e in newsroom.refs(logo)}) > len(articles) / 2
    # Most used images are used once; a third or so of all media is never referenced at all.
    pub = Counter(e.target for e in newsroom.edges if e.origin == "publication" and e.target.kind == "media")
    assert sum(1 for n in pub.values() if n == 1) > len(pub) / 2
    referenced = {e.target for e in newsroom.edges + newsroom.hidden_edges}
    unused = [m for m in newsroom.media_ids() if media(m) not in referenced]
    assert 0.30 <= len(unused) / 3000 <= 0.40
    assert Counter(newsroom.media_type(media(m)) for m in newsroom.media_ids()).most_common(1)[0][0] == "image"
    assert {newsroom.media_type(media(m)) for m in newsroom.media_ids()} == {"image", "video", "file"}


def test_newsroom_ids_need_escaping(newsroom):
    ids = newsroom.media_ids()
    special = [m for m in ids if not (m.isascii() and m.isalnum())]
    assert 0.01 <= (len(special) + 1) / len(ids) <= 0.02  # +1: the all-digit id is special too
    assert ids.count("..") == 1 and ids.count(".") == 1
    for char in "/ +%?#=&ü":
        assert any(char in m for m in ids), char
    assert any("%2F" in m for m in ids)  # a trap for clients that decode twice
    assert all(m == m.strip() and m.isprintable() for m in ids)
    digits = [m for m in ids if m.isdigit()]
    assert len(digits) == 1 and doc(int(digits[0])) in newsroom.nodes
    used = {e.target.id for e in newsroom.edges}
    assert ".." in used and any("/" in m for m in used)


def test_newsroom_reference_shapes(newsroom):
    for e in newsroom.edges + newsroom.hidden_edges:
        assert e.fields["id"] == e.target.id and e.location and e.ref_type
    by_location = Counter(e.location for e in newsroom.edges)
    assert {"image-directive", "video-directive", "include-directive", "editable-directive",
            "metadata", "list-directive"} <= set(by_location)
    assert any(e.fields.get("listId") == 7 for e in newsroom.edges if e.location == "list-directive")
    props = {(e.source.kind, e.target.kind, e.fields.get("propertyName")) for e in newsroom.edges}
    assert {("media", "media", "posterImage"), ("media", "media", "imageLink"),
            ("media", "document", "photographer"), ("document", "document", "author"),
            ("document", "media", "teaserImage")} <= props
    pairs = Counter((e.source, e.target) for e in newsroom.edges if e.origin == "publication")
    assert any(n == 2 and t.kind == "media" for (s, t), n in pairs.items())


def test_newsroom_cycles_and_drafts(newsroom):
    pub = {(e.source, e.target) for e in newsroom.edges if e.origin == "publication"}
    assert any(s == t for s, t in pub)
    assert any((t, s) in pub for s, t in pub if s != t)
    assert Counter(e.origin for e in newsroom.edges).keys() == {"publication", "draft", "media"}
    assert all(e.origin == "draft" and e.source.kind == "document" and e.target.kind == "media"
               for e in newsroom.hidden_edges)
    draft_only = newsroom.draft_only_media()
    assert draft_only and all(not newsroom.refs(m) for m in draft_only)
    unpublished = {n for n in newsroom.nodes if n.kind == "document"} - newsroom.published
    draft_sources = {e.source for e in newsroom.edges if e.origin == "draft"}
    assert unpublished & draft_sources
    assert not unpublished & {e.source for e in newsroom.edges if e.origin == "publication"}
    # Every document has a draft; most published ones match their publication, some do not.
    content: dict = {}
    for e in newsroom.edges + newsroom.hidden_edges:
        if e.source.kind == "document":
            content.setdefault((e.origin, e.source), set()).add((e.target, e.ref_json))
    same = [content.get(("publication", d)) == content.get(("draft", d)) for d in newsroom.published]
    assert len(newsroom.published) / 2 < same.count(True) < len(newsroom.published)


# -- ground truth, on the tiny graph -----------------------------------------------------------

def test_closure(tiny):
    assert tiny.closure([M1]) == {M1, D1, M2, D2}
    assert tiny.closure([M1], origins={"publication"}) == {M1, D1, D2}
    assert tiny.closure([M1], max_depth=1) == {M1, D1, M2}
    assert tiny.closure([M1], max_depth=0) == {M1}
    assert tiny.closure([media("nope")]) == {media("nope")}
    with pytest.raises(ValueError):
        tiny.closure([M1], origins={"publications"})


def test_closure_edges(tiny):
    assert tiny.closure_edges([M1]) == {E1, E2, E3, E4, E5, E6}
    assert tiny.closure_edges([M1], origins={"publication", "media"}) == {E1, E2, E3, E4, E6}
    assert tiny.closure_edges([D3]) == {E7}
    assert tiny.closure_edges([M4]) == set()


def test_refs_and_impact(tiny):
    assert tiny.refs(M1) == {E1, E2, E3}
    assert tiny.refs(M1, origins={"media"}) == {E3}
    assert tiny.refs(M4) == set()
    assert tiny.impact(M1) == {D1: 1, M2: 1, D2: 2}
    assert tiny.impact(D2) == {D1: 1}
    assert tiny.impact(D2, origins={"publication"}) == {}
    assert tiny.impact(D1) == {D2: 1}


def test_orphans(tiny):
    all_media = [M1, M2, M3, M4]
    assert tiny.orphans("media", all_media) == {M2, M3, M4}
    assert tiny.orphans("document", all_media) == set()
    assert tiny.orphans("document", [D3]) == {D4}
    assert tiny.orphans("document", [D3], origins={"publication"}) == {D3}
    assert tiny.orphans("media", [media("nope")]) == set()
    assert tiny.draft_only_media() == {M4}


def test_incoming_is_served_shape(tiny):
    assert tiny.incoming(DOC_MEDIA, M1) == [(D1, [
        {"id": "a/b c", "type": "image", "location": "image-directive", "componentId": "doc-1",
         "componentName": "image", "directiveName": "image"},
        {"id": "a/b c", "type": "image", "location": "metadata", "propertyName": "teaserImage"}])]
    assert list(tiny.incoming(DOC_MEDIA, M1)[0][1][0])[:3] == ["id", "type", "location"]
    assert tiny.incoming(MEDIA_MEDIA, M1) == [(M2, [E3.fields])]
    assert tiny.incoming(DRAFT_DOC, D2) == [(D1, [E5.fields])]
    assert tiny.incoming(DOC_DOC, D2) == [(D2, [E6.fields])]
    assert tiny.incoming(DOC_MEDIA, M4) == [] and tiny.incoming_total(DOC_MEDIA, M1) == 1


def test_from_edges_refuses_invisible_edges():
    with pytest.raises(ValueError, match="hidden_edges"):
        Dataset.from_edges([], [H1])


def test_dataset_can_change(tiny):
    assert tiny.incoming_total(DOC_MEDIA, M3) == 0
    tiny.edges.append(ref(D2, M3, "publication", location="metadata", propertyName="teaserImage"))
    tiny.changed()
    assert tiny.incoming_total(DOC_MEDIA, M3) == 1 and tiny.orphans("media", [M3]) == set()


def test_write_seeds(tiny, tmp_path):
    path = tmp_path / "seeds.txt"
    tiny.write_seeds(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("# ")
    assert lines[1:] == ["media:..", "media:12345", "media:a/b c", "media:ü"]
    assert [Node.parse(line) for line in lines[1:]] == sorted([M1, M2, M3, M4], key=lambda n: n.id)


# -- the app -------------------------------------------------------------------------------------

AUTH = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}


async def _get(session: aiohttp.ClientSession, url: str, headers=AUTH) -> tuple[int, object]:
    # encoded=True: the test writes exactly the bytes the server must receive.
    async with session.get(yarl.URL(url, encoded=True), headers=headers) as resp:
        return resp.status, await resp.json()


def fetch(app_or_dataset, *paths: str, headers=AUTH) -> list[tuple[int, object]]:
    """GET each path (appended to the base URL) from a fresh server on port 0."""
    app = app_or_dataset if not isinstance(app_or_dataset, Dataset) else make_app(app_or_dataset)

    async def main():
        async with serve(app) as base, aiohttp.ClientSession() as session:
            return [await _get(session, base + p, headers) for p in paths]
    return asyncio.run(main())


def _hub(n: int = 257) -> Dataset:
    """One image with ``n`` referring documents, 1..n."""
    hub = media("hub")
    return Dataset.from_edges([], [ref(doc(i), hub, "publication", location="metadata",
                                       propertyName="teaserImage") for i in range(1, n + 1)])


@pytest.mark.parametrize("name", ["mediaLibrary_incomingDocumentReferences",
                                  "mediaLibrary_incomingMediaReferences"])
@pytest.mark.parametrize("version", ["2025-11", "2026-01"])
def test_serves_the_vendor_examples(name, version):
    body = fixture(f"{name}.2025-11")["body"]
    endpoint = ENDPOINTS_BY_NAME[name.replace("_", "/")]
    edges = [Reference.make(Node.of(endpoint.source_kind, s["id"]), media(r["id"]), endpoint.origin, r)
             for s in body for r in s["references"]]
    path = f"/api/{version}/mediaLibrary/9fKagDCiN6sb/{endpoint.resource}"
    [(status, got)] = fetch(Dataset.from_edges([], edges), path)
    expected = body if version == "2025-11" else {"total": len(body), "cursor": None, "results": body}
    assert (status, got) == (200, expected)


@pytest.mark.parametrize("version", ["v1", "2025-03", "2025-05", "2025-07", "2025-09", "2025-11"])
def test_old_versions_answer_a_bare_array(tiny, version):
    [(status, body)] = fetch(tiny, f"/api/{version}/documents/2/incomingDocumentReferences")
    assert (status, body) == (200, [{"id": 2, "references": [E6.fields]}])


def test_offset_paging_covers_every_source_once():
    pages = fetch(_hub(), *[f"/api/2025-11/mediaLibrary/hub/incomingDocumentReferences?offset={o}"
                            for o in (0, 100, 200, 300)])
    assert [(status, len(body)) for status, body in pages] == [(200, 100), (200, 100), (200, 57), (200, 0)]
    assert [s["id"] for _, body in pages for s in body] == list(range(1, 258))
    [(_, small)] = fetch(_hub(), "/api/v1/mediaLibrary/hub/incomingDocumentReferences?limit=7&offset=250")
    assert [s["id"] for s in small] == list(range(251, 258))
    [(_, clamped)] = fetch(_hub(), "/api/v1/mediaLibrary/hub/incomingDocumentReferences?limit=1000")
    assert len(clamped) == 100


def test_cursor_paging_covers_every_source_once():
    app = make_app(_hub())

    async def crawl():
        seen, cursors, url = [], [], "/api/2026-01/mediaLibrary/hub/incomingDocumentReferences"
        async with serve(app) as base, aiohttp.ClientSession() as session:
            status, body = await _get(session, base + url)
            while True:
                assert status == 200 and body["total"] == 257
                seen += [s["id"] for s in body["results"]]
                if body["cursor"] is None:
                    return seen, cursors
                cursors.append(body["cursor"])
                # params= percent-encodes the cursor, as every client must.
                async with session.get(base + url, params={"after": body["cursor"]}, headers=AUTH) as resp:
                    status, body = resp.status, await resp.json()

    seen, cursors = asyncio.run(crawl())
    assert seen == list(range(1, 258)) and len(cursors) == 2
    assert all({"+", "/", "="} <= set(c) for c in cursors)
    assert [decode_cursor(c) for c in cursors] == [doc(100), doc(200)]  # the last source served


def test_cursor_must_be_percent_encoded():
    raw = encode_cursor(doc(100))
    quoted = raw.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
    url = "/api/2026-01/mediaLibrary/hub/incomingDocumentReferences?after="
    (bad, bad_body), (good, good_body), (junk, _) = fetch(_hub(), url + raw, url + quoted, url + "abc")
    assert (bad, junk, good) == (400, 400, 200)
    assert bad_body["error"] == "Bad Request" and "after" in bad_body["error_details"]
    assert [s["id"] for s in good_body["results"]][:1] == [101]


@pytest.mark.parametrize("query", ["limit=x", "limit=0", "limit=-1", "offset=x", "offset=-3", "limit="])
def test_bad_paging_parameters_are_400(query):
    [(status, body)] = fetch(_hub(3), f"/api/v1/mediaLibrary/hub/incomingDocumentReferences?{query}")
    name = query.partition("=")[0]
    assert status == 400 and body["status"] == 400 and body["error"] == "Bad Request"
    assert list(body["error_details"]) == [name]


def test_past_the_end_is_empty_without_cursor():
    [(status, body)] = fetch(_hub(3), "/api/2026-01/mediaLibrary/hub/incomingDocumentReferences?offset=9")
    assert (status, body) == (200, {"total": 3, "cursor": None, "results": []})


def test_escaped_ids_round_trip(tiny):
    base = "/api/2025-11/mediaLibrary/{}/incoming{}References"
    answers = fetch(tiny, base.format("a%2Fb%20c", "Document"), base.format("%2E%2E", "Media"),
                    base.format("%C3%BC", "Document"), base.format("12345", "Document"),
                    base.format("a/b%20c", "Document"), base.format("..", "Media"),
                    "/api/2025-11/drafts/4/incomingDocumentReferences")
    assert answers[0] == (200, [{"id": 1, "references": [E1.fields, E2.fields]}])
    assert answers[1] == (200, [])  # ".." is a source, not a target of media references
    assert answers[2] == (200, []) and answers[3] == (200, [])
    assert [status for status, _ in answers[4:6]] == [404, 404]
    assert answers[6] == (200, [])
    [(status, body)] = fetch(tiny, base.format("a%2Fb%20c", "Media"))
    assert (status, body) == (200, [{"id": "..", "references": [E3.fields]}])


def test_ids_reach_the_right_kind():
    both = Dataset.from_edges([], [ref(doc(12345), media("12345"), "publication", location="metadata"),
                                   ref(media("12345"), doc(12345), "media", location="metadata")])
    answers = fetch(both, "/api/v1/mediaLibrary/12345/incomingDocumentReferences",
                    "/api/v1/documents/12345/incomingMediaReferences",
                    "/api/v1/documents/012345/incomingMediaReferences",
                    "/api/v1/documents/abc/incomingMediaReferences",
                    "/api/v1/documents/-1/incomingMediaReferences")
    assert answers[0][1][0]["id"] == 12345 and answers[1][1][0]["id"] == "12345"
    assert answers[2] == answers[1]
    assert [status for status, _ in answers[3:]] == [404, 404]


def test_error_bodies(tiny):
    drafts = "/api/2025-11/drafts/2/incomingDocumentReferences"
    no_auth = fetch(tiny, drafts, headers={})
    wrong = fetch(tiny, drafts, headers={"Authorization": "Bearer nope"})
    basic = fetch(tiny, drafts, headers={"Authorization": f"Basic {DEFAULT_TOKEN}"})
    bare = fetch(tiny, drafts, headers={"Authorization": DEFAULT_TOKEN})
    assert no_auth == wrong == basic == bare == [(401, fixture("error.401")["body"])]
    low = {"Authorization": f"Bearer {DEFAULT_NO_DRAFTS_TOKEN}"}
    assert fetch(tiny, drafts, headers=low) == [(403, fixture("error.403")["body"])]
    assert fetch(tiny, "/api/2025-11/documents/2/incomingDocumentReferences", headers=low)[0][0] == 200
    assert fetch(tiny, "/api/v1/foo") == [(404, fixture("error.404")["body"])]
    (unknown, body), (outside, _), (slash, _) = fetch(
        tiny, "/api/v1/documents/99/incomingDocumentReferences", "/other",
        "/api/v1/documents/2/incomingDocumentReferences/")
    assert (unknown, outside, slash) == (404, 404, 404)
    assert body == {"status": 404, "error": "Not Found",
                    "error_details": {"url": "/api/:apiVersion/documents/99/incomingDocumentReferences"}}


@pytest.mark.parametrize("version", ["beta", "2024-11", "2026-03"])
def test_unserved_versions_are_gone(tiny, version):
    [(status, body)] = fetch(tiny, f"/api/{version}/documents/2/incomingDocumentReferences")
    assert status == 410 and body["status"] == 410 and body["error"] == "Gone"
    assert body["error_details"]["apiVersion"] == version


def test_path_prefix(tiny):
    app = make_app(tiny, prefix="/proxy/api/")

    async def main():
        async with serve(app) as base, aiohttp.ClientSession() as session:
            assert yarl.URL(base).path == "/proxy/api"
            root = str(yarl.URL(base).origin())
            return (await _get(session, base + "/api/2026-01/documents/2/incomingDocumentReferences"),
                    await _get(session, root + "/api/2026-01/documents/2/incomingDocumentReferences"))

    (status, body), (bare, _) = asyncio.run(main())
    assert (status, body["total"], bare) == (200, 1, 404)


def test_stats_count_requests_and_pages(tiny):
    app = make_app(tiny)
    paths = ["/api/v1/documents/2/incomingDocumentReferences?limit=5",
             "/api/v1/documents/2/incomingDocumentReferences?limit=5",
             "/api/v1/drafts/2/incomingDocumentReferences", "/api/v1/nope"]
    fetch(app, *paths)
    stats = app["stats"]
    assert (stats.requests, stats.in_flight, stats.max_in_flight) == (4, 0, 1)
    assert stats.statuses == Counter({200: 3, 404: 1})
    assert stats.log == [(DOC_DOC.name, D2, {"limit": "5"}), (DOC_DOC.name, D2, {"limit": "5"}),
                         (DRAFT_DOC.name, D2, {})]
    assert stats.repeated_pages() == [(DOC_DOC.name, D2, (("limit", "5"),))]


def test_hold_until_in_flight_releases_together(tiny):
    app = make_app(tiny, hold_until_in_flight=3)
    url = "/api/v1/mediaLibrary/a%2Fb%20c/incomingDocumentReferences"

    async def main():
        async with serve(app) as base, aiohttp.ClientSession() as session:
            together = await asyncio.gather(*[_get(session, base + url) for _ in range(3)])
            return together, await _get(session, base + url)  # no longer held once released

    together, after = asyncio.run(main())
    stats = app["stats"]
    assert [s for s, _ in together] == [200] * 3 and after[0] == 200
    assert (stats.max_in_flight, stats.hold_timeouts, stats.in_flight) == (3, 0, 0)


def test_hold_has_a_safety_timeout(tiny):
    app = make_app(tiny, hold_until_in_flight=2, hold_timeout=0.05)
    assert fetch(app, "/api/v1/documents/2/incomingDocumentReferences")[0][0] == 200
    assert (app["stats"].hold_timeouts, app["stats"].max_in_flight) == (1, 1)


def test_latency_is_served(tiny):
    started = time.perf_counter()
    fetch(make_app(tiny, latency=0.05), "/api/v1/documents/2/incomingDocumentReferences")
    assert time.perf_counter() - started >= 0.05


def test_serve_in_thread_for_synchronous_callers(tiny):
    with serve_in_thread(tiny, no_drafts_token="low") as (base_url, stats):
        assert threading.current_thread() is threading.main_thread()
        request = urllib.request.Request(base_url + "/api/2026-01/mediaLibrary/%2E%2E/incomingMediaReferences",
                                         headers=AUTH)
        with urllib.request.urlopen(request) as resp:
            assert json.load(resp) == {"total": 0, "cursor": None, "results": []}
        low = urllib.request.Request(base_url + "/api/v1/drafts/2/incomingDocumentReferences",
                                     headers={"Authorization": "Bearer low"})
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(low)
        assert denied.value.code == 403
        denied.value.close()
    assert stats.requests == 2 and stats.log == [(MEDIA_MEDIA.name, M2, {})]
    assert not any(t.name == "refgraph-sandbox" for t in threading.enumerate())
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(base_url + "/api/v1/foo", timeout=2)


def _quote_segment(text: str) -> str:
    # quote() leaves "." alone; a lone dot segment would be resolved away, so encode dots too.
    from urllib.parse import quote
    return quote(text, safe="").replace(".", "%2E")


@pytest.mark.parametrize("version", ["2025-11", "2026-01"])
def test_served_graph_equals_the_dataset(version):
    ds = generate(media=120, documents=60, seed=5)
    requests = [(e, t) for t in sorted(ds.nodes) for e in endpoints_for(t.kind)]
    paths = [f"/api/{version}/{e.collection}/{_quote_segment(t.id)}/{e.resource}?limit=100"
             for e, t in requests]
    found = set()
    for (endpoint, target), (status, body) in zip(requests, fetch(ds, *paths), strict=True):
        results = body if version == "2025-11" else body["results"]
        assert status == 200 and (version == "2025-11" or body["cursor"] is None)
        found |= {Reference.make(Node.of(endpoint.source_kind, s["id"]), target, endpoint.origin, r)
                  for s in results for r in s["references"]}
    assert found == set(ds.edges)
    assert {e.origin for e in found} == {"publication", "draft", "media"}
