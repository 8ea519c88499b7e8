"""The HTTP client against servers started by each test on 127.0.0.1: paging, escaping, errors."""

from __future__ import annotations

from collections import Counter

import aiohttp
import pytest
from aiohttp import web
from conftest import doc, load_fixture, media, pub

from crawler.api import AuthRejected, FatalResponse, Forbidden, NodeMissing, NodeUnavailable, VersionGone, open_session
from crawler.client import Client
from crawler.model import ENDPOINTS_BY_NAME, Node, Reference
from crawler.sandbox import DEFAULT_NO_DRAFTS_TOKEN, DEFAULT_TOKEN, make_app, serve
from crawler.sandbox_data import Dataset

MEDIA_PUBS = ENDPOINTS_BY_NAME["mediaLibrary/incomingDocumentReferences"]
DOC_PUBS = ENDPOINTS_BY_NAME["documents/incomingDocumentReferences"]
DRAFTS = ENDPOINTS_BY_NAME["drafts/incomingDocumentReferences"]


def hub_dataset(referrers: int, target: Node | None = None) -> Dataset:
    target = target or media("hub")
    return Dataset.from_edges([], [pub(doc(i), target, type="image", location="image-directive")
                                   for i in range(1, referrers + 1)])


async def fetch(base_url, version, endpoint, node, token=DEFAULT_TOKEN, **client_kwargs):
    async with open_session(token) as session:
        return await Client(session, base_url, version, **client_kwargs).incoming(endpoint, node)


@pytest.mark.parametrize("version, paging", [("2025-11", "offset"), ("2026-01", "after")])
@pytest.mark.parametrize("referrers, pages", [(257, 3), (200, 3), (99, 1), (0, 1)])
async def test_pages_cover_every_referrer_once(version, paging, referrers, pages):
    app = make_app(hub_dataset(referrers) if referrers else Dataset.from_edges([media("hub")], []))
    async with serve(app) as url:
        result = await fetch(url, version, MEDIA_PUBS, media("hub"))
    assert result.status == "complete"
    assert {r.source for r in result.references} == {doc(i) for i in range(1, referrers + 1)}
    # An envelope that says all its sources were listed and gives no cursor needs no empty page.
    expected_pages = pages - 1 if version == "2026-01" and referrers and referrers % 100 == 0 else pages
    assert (result.referrers, result.pages) == (referrers, expected_pages)
    stats = app["stats"]
    assert stats.requests == expected_pages and not stats.repeated_pages()
    queries = [query for _, _, query in stats.log]
    assert all(q["limit"] == "100" for q in queries)
    if pages > 1:
        assert paging in queries[1]
    if paging == "after":
        # The cursor survived encoding; past the server's last cursor, offsets carry on.
        assert all(set("+/=") <= set(q["after"]) for q in queries if "after" in q)


@pytest.mark.parametrize("ident", ["a/b c", "..", ".", "ü", "x?y#z", "100%", "a+b=c&d", "%2F"])
async def test_ids_that_need_escaping_round_trip(ident):
    app = make_app(Dataset.from_edges([], [pub(doc(1), media(ident), type="image")]))
    async with serve(app) as url:
        result = await fetch(url, "2026-01", MEDIA_PUBS, media(ident))
    assert [(r.source, r.target) for r in result.references] == [(doc(1), media(ident))]
    assert [node for _, node, _ in app["stats"].log] == [media(ident)]


async def test_base_url_with_a_path_prefix():
    app = make_app(hub_dataset(3), prefix="/proxy/api")
    async with serve(app) as url:
        assert url.endswith("/proxy/api")
        result = await fetch(url, "2025-11", MEDIA_PUBS, media("hub"))
    assert result.referrers == 3


async def test_drafts_without_scope_is_forbidden_and_others_are_not():
    app = make_app(Dataset.from_edges([], [Reference.make(doc(2), doc(1), "draft", {"id": "1"}),
                                           pub(doc(3), doc(1))]))
    async with serve(app) as url:
        with pytest.raises(Forbidden) as err:
            await fetch(url, "2026-01", DRAFTS, doc(1), token=DEFAULT_NO_DRAFTS_TOKEN)
        assert err.value.endpoint is DRAFTS
        result = await fetch(url, "2026-01", DOC_PUBS, doc(1), token=DEFAULT_NO_DRAFTS_TOKEN)
    assert result.referrers == 1


async def test_permanent_answers_raise_what_the_caller_must_do():
    app = make_app(hub_dataset(1))
    async with serve(app) as url:
        with pytest.raises(AuthRejected, match="token rejected"):
            await fetch(url, "2026-01", MEDIA_PUBS, media("hub"), token="wrong")
        with pytest.raises(VersionGone, match="API version 2019-01 is gone"):
            await fetch(url, "2019-01", MEDIA_PUBS, media("hub"))
        with pytest.raises(NodeMissing):
            await fetch(url, "2026-01", MEDIA_PUBS, media("no-such-id"))


def replay(handler) -> web.Application:
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handler)
    return app


@pytest.mark.parametrize("code, error", [(401, AuthRejected), (403, Forbidden), (404, NodeMissing)])
async def test_documented_error_bodies(code, error):
    fixture = load_fixture(f"error.{code}.json")

    async def handler(request):
        return web.json_response(fixture["body"], status=fixture["status"])

    async with serve(replay(handler)) as url:
        with pytest.raises(error):
            await fetch(url, "2026-01", MEDIA_PUBS, media("x"))


async def test_overlapping_pages_are_deduplicated():
    """Offsets repeat sources when content moves under the crawl; each edge is kept once."""
    windows = {"0": range(0, 100), "100": range(50, 150), "200": range(150, 170)}

    async def handler(request):
        ids = windows[request.query["offset"]]
        return web.json_response([{"id": i, "references": [{"id": "m", "type": "image"}]} for i in ids])

    async with serve(replay(handler)) as url:
        result = await fetch(url, "2025-11", MEDIA_PUBS, media("m"))
    assert result.referrers == 170 and len(result.references) == 170 and result.pages == 3


async def test_transient_faults_are_retried_and_counted():
    hits = Counter()

    async def handler(request):
        hits["n"] += 1
        if hits["n"] <= 2:
            return web.json_response({"status": 503}, status=503, headers={"Retry-After": "0"})
        return web.json_response([{"id": 1, "references": []}])

    stats = Counter()
    async with serve(replay(handler)) as url:
        result = await fetch(url, "2025-11", MEDIA_PUBS, media("m"), stats=stats)
    assert hits["n"] == 3 and stats["retry/count"] == 2 and result.referrers == 1


async def test_giving_up_keeps_the_pages_that_arrived():
    async def handler(request):
        if request.query.get("offset") == "0":
            return web.json_response([{"id": i, "references": []} for i in range(100)])
        return web.json_response({"status": 500}, status=500)

    async with serve(replay(handler)) as url:
        with pytest.raises(NodeUnavailable) as err:
            await fetch(url, "2025-11", MEDIA_PUBS, media("m"), retries=2, backoff=0.0)
    partial = err.value.partial
    assert partial.status == "failed" and partial.referrers == 100 and "HTTP 500 after 3 attempt(s)" in partial.error


async def test_wrong_shape_fails_with_a_preview_of_the_body():
    async def handler(request):
        return web.json_response({"unexpected": "shape"})

    async with serve(replay(handler)) as url:
        with pytest.raises(NodeUnavailable, match="unexpected"):
            await fetch(url, "2026-01", MEDIA_PUBS, media("m"))


async def test_no_token_goes_to_another_host_on_redirect():
    seen = []

    async def elsewhere(request):
        seen.append(request.headers.get("Authorization"))
        return web.json_response([])

    async with serve(replay(elsewhere)) as other:
        async def handler(request):
            raise web.HTTPFound(other.replace("127.0.0.1", "localhost") + request.path_qs)

        async with serve(replay(handler)) as url:
            with pytest.raises(FatalResponse, match="does not send the token"):
                await fetch(url, "2026-01", MEDIA_PUBS, media("m"))
    assert seen == []


async def test_tls_is_verified_by_default():
    async with open_session("t") as session:
        assert session.connector._ssl is not False
    async with open_session("t", insecure=True) as session:
        assert session.connector._ssl is False
    assert isinstance(aiohttp.ClientTimeout(), aiohttp.ClientTimeout)
