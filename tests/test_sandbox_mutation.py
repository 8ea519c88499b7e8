"""Overnight mutations of the sandbox dataset, the publications/search endpoint, and the admin
route that mutates a running sandbox.

Every server listens on 127.0.0.1 port 0 and is stopped by the test that started it; nothing
waits by sleeping.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections import Counter
from urllib.parse import quote

import aiohttp
import pytest
import yarl

from crawler.model import ENDPOINTS, Node, Reference, endpoints_for
from crawler.newsroom import generate
from crawler.sandbox import DEFAULT_NO_DRAFTS_TOKEN, DEFAULT_TOKEN, MUTATE_PATH, SEARCH, decode_cursor, make_app, serve
from crawler.sandbox_data import Dataset
from crawler.sandbox_faults import Faults
from crawler.sandbox_mutation import Change, change_json, mutate

AUTH = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
LOW = {"Authorization": f"Bearer {DEFAULT_NO_DRAFTS_TOKEN}"}
VISIBLE = {(e.origin, e.source_kind, e.target_kind) for e in ENDPOINTS}
SIZE = {"media": 600, "documents": 400}  # about 1000 nodes


def newsroom(seed: int = 3) -> Dataset:
    return generate(**SIZE, seed=seed)


def all_media(ds: Dataset) -> list[Node]:
    return [Node("media", m) for m in ds.media_ids()]


def state(ds: Dataset) -> tuple:
    return ds.nodes, ds.edges, ds.hidden_edges, ds.types, ds.published, ds.deleted


# -- mutate() --------------------------------------------------------------------------------

def test_mutation_is_deterministic_by_seed():
    a, b, c = newsroom(), newsroom(), newsroom()
    change_a, change_b, change_c = mutate(a, seed=5), mutate(b, seed=5), mutate(c, seed=6)
    assert state(a) == state(b) and change_a == change_b
    assert state(a) != state(c) and change_a != change_c


def test_mutation_does_not_depend_on_the_hash_seed():
    code = ("import hashlib; from crawler.newsroom import generate; from crawler.sandbox_mutation import mutate\n"
            "ds = generate(media=300, documents=200, seed=2); mutate(ds, seed=9)\n"
            "print(hashlib.sha256(repr((ds.edges, ds.hidden_edges, sorted(ds.nodes))).encode()).hexdigest())")
    digests = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONHASHSEED": seed}, timeout=60).stdout
               for seed in ("1", "2")}
    assert len(digests) == 1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_change_is_exactly_the_difference(seed):
    ds = newsroom(seed)
    edges, nodes = set(ds.edges), set(ds.nodes)
    change = mutate(ds, seed=seed)
    assert change.added == set(ds.edges) - edges and change.removed == edges - set(ds.edges)
    assert change.added and change.removed
    assert change.deleted == nodes - ds.nodes and change.added_nodes == ds.nodes - nodes
    assert all((e.origin, e.source.kind, e.target.kind) in VISIBLE for e in change.added | change.removed)
    assert len(ds.edges) == len(set(ds.edges)) and len(ds.hidden_edges) == len(set(ds.hidden_edges))
    assert all(e.source in ds.nodes and e.target in ds.nodes for e in ds.edges + ds.hidden_edges)
    assert ds.incoming_total(endpoints_for("media")[1], Node("media", "nope")) == 0  # indexes rebuilt


def test_every_kind_of_change_happens():
    ds = newsroom()
    before_media_refs = {e.target for e in ds.edges if e.target.kind == "media"}
    change = mutate(ds, seed=4, changes=80)
    pairs = lambda refs: Counter((e.source, e.target, e.origin) for e in refs)  # noqa: E731
    differences = []
    for key in pairs(change.added) & pairs(change.removed):  # same source, target and origin
        old = next(e for e in change.removed if (e.source, e.target, e.origin) == key)
        new = next(e for e in change.added if (e.source, e.target, e.origin) == key)
        differences.append({k for k in old.fields.keys() | new.fields.keys() if old.fields.get(k) != new.fields.get(k)})
    assert {"componentId"} in differences, "no reference moved"
    assert all(d <= {"componentId", "componentName", "directiveName", "location", "propertyName"} for d in differences)
    added_uses = {e.target for e in change.added if e.origin == "publication" and e.source not in change.added_nodes}
    assert added_uses & before_media_refs and added_uses - before_media_refs  # used and unused images
    assert any(e.source.kind == "document" and e.target.kind == "media" and e.source in ds.nodes
               for e in change.removed)
    assert change.deleted and change.added_nodes


def test_new_documents_are_published_with_references():
    ds = newsroom()
    old_ids = {int(n.id) for n in ds.nodes if n.kind == "document"}
    change = mutate(ds, seed=8, changes=100)
    assert change.added_nodes
    for doc in change.added_nodes:
        assert doc.kind == "document" and int(doc.id) > max(old_ids) and doc in ds.published
        assert any(e.source == doc and e.origin == "publication" for e in change.added)
    new_targets = {e.target.kind for e in change.added if e.source in change.added_nodes}
    assert new_targets == {"media", "document"}
    # Ids are never reused, not even after the highest one is deleted.
    newest = max(change.added_nodes, key=lambda n: int(n.id))
    ds.nodes.discard(newest)
    ds.deleted.add(newest)
    later = mutate(ds, seed=9, changes=100)
    assert all(int(n.id) > int(newest.id) for n in later.added_nodes)


def test_deleted_documents_vanish():
    ds = newsroom()
    before = {e for e in ds.edges}
    change = mutate(ds, seed=2, changes=100)
    assert change.deleted and change.deleted <= ds.deleted
    for gone in change.deleted:
        assert gone.kind == "document" and gone not in ds.nodes and gone not in ds.published
        assert gone not in ds.publications()
        assert not [e for e in ds.edges + ds.hidden_edges if gone in (e.source, e.target)]
        assert {e for e in before if e.source == gone} <= change.removed


def test_became_unused_and_used_again_match_the_ground_truth():
    ds, before = newsroom(), newsroom()
    change = mutate(ds, seed=11)
    seeds = all_media(before)
    unused, again = change.became_unused(seeds), change.used_again(seeds)
    assert unused and again and not unused & again
    assert unused == ds.orphans("media", seeds) - before.orphans("media", seeds)
    assert again == before.orphans("media", seeds) - ds.orphans("media", seeds)
    # Recomputed from the edges alone: media with referrers before and none after, and back.
    used_before = {e.target for e in before.edges if e.target.kind == "media"}
    used_after = {e.target for e in ds.edges if e.target.kind == "media"}
    assert unused == used_before - used_after and again == used_after - used_before
    some = sorted(unused)[:2] + sorted(again)[:2] + [m for m in seeds if m in used_before & used_after][:5]
    # Media that reference a seed (a video's poster image) are in its closure too.
    assert set(sorted(unused)[:2]) <= change.became_unused(some) <= unused
    assert set(sorted(again)[:2]) <= change.used_again(some) <= again


@pytest.mark.parametrize("seed", range(6))
def test_small_newsrooms_still_flip_both_ways(seed):
    ds = generate(media=250, documents=100, seed=seed)
    change = mutate(ds, seed=seed, changes=10)
    assert change.became_unused(all_media(ds)) and change.used_again(all_media(ds))


def test_nothing_to_change():
    ds = newsroom()
    snapshot = (set(ds.nodes), list(ds.edges), list(ds.hidden_edges))
    assert mutate(ds, seed=1, changes=0) == Change()
    assert (ds.nodes, ds.edges, ds.hidden_edges) == snapshot
    empty = generate(media=0, documents=0)
    assert mutate(empty, seed=1, changes=30) == Change() and not empty.nodes
    with pytest.raises(ValueError):
        mutate(ds, seed=1, changes=-1)
    with pytest.raises(ValueError, match="ground truth"):
        Change().became_unused([])


def test_change_json_round_trips():
    ds = newsroom()
    change = mutate(ds, seed=3)
    body = json.loads(json.dumps(change_json(change)))
    for name in ("added", "removed"):
        rebuilt = {Reference.make(Node.parse(e["source"]), Node.parse(e["target"]), e["origin"], e["ref"])
                   for e in body[name]}
        assert rebuilt == getattr(change, name) and body["counts"][name] == len(rebuilt)
    assert body["deleted"] == [str(n) for n in sorted(change.deleted, key=Node.sort_key)]
    assert set(body["added_nodes"]) == {str(n) for n in change.added_nodes}
    assert set(body["became_unused"]) == {str(n) for n in change.became_unused(all_media(ds))}
    assert set(body["used_again"]) == {str(n) for n in change.used_again(all_media(ds))}
    assert change_json(change) == change_json(change)


# -- publications/search ---------------------------------------------------------------------

def catalogue(n: int = 257) -> Dataset:
    """Documents 1..n, every seventh unpublished, and one media entry."""
    ds = Dataset.from_edges([Node.of("document", i) for i in range(1, n + 1)] + [Node("media", "m")], [])
    ds.published = {Node.of("document", i) for i in range(1, n + 1) if i % 7}
    ds.changed()
    return ds


def published_ids(ds: Dataset) -> list[int]:
    return sorted(int(n.id) for n in ds.published if n in ds.nodes)


async def call(session: aiohttp.ClientSession, method: str, url: str, headers=AUTH, **params):
    async with session.request(method, url, params=params, headers=headers) as resp:
        return resp.status, await resp.json()


async def search_all(session, base: str, version: str, mode: str, limit: int = 100) -> tuple[list[int], int]:
    """Every id that publications/search lists, paging by offset or cursor; and the pages."""
    url, ids, query = f"{base}/api/{version}/publications/search", [], {"fields": "id", "limit": limit}
    for pages in range(1, 1000):
        status, body = await call(session, "GET", url, **query)
        assert status == 200, body
        results = body if isinstance(body, list) else body["results"]
        assert all(set(r) == {"id"} and isinstance(r["id"], int) for r in results)
        ids += [r["id"] for r in results]
        if mode == "offset" and len(results) < limit or mode == "cursor" and body["cursor"] is None:
            return ids, pages
        query = {**query, "offset": len(ids)} if mode == "offset" else {**query, "after": body["cursor"]}
    raise AssertionError("paging does not end")


@pytest.mark.parametrize("version, mode", [("v1", "offset"), ("2025-11", "offset"), ("2026-01", "offset"),
                                           ("2026-01", "cursor")])
async def test_search_lists_exactly_the_published_documents(version, mode):
    ds = catalogue()
    app = make_app(ds)
    async with serve(app) as base, aiohttp.ClientSession() as session:
        ids, pages = await search_all(session, base, version, mode)
        _, first = await call(session, "GET", f"{base}/api/{version}/publications/search", limit=1000)
    assert ids == published_ids(ds) and len(ids) == 221 and pages == 3
    assert len(first if version != "2026-01" else first["results"]) == 100  # limit is at most 100
    if version == "2026-01":
        assert first["total"] == 221 and decode_cursor(first["cursor"]) == Node.of("document", 116)
    assert app["stats"].log[0] == (SEARCH, None, {"fields": "id", "limit": "100"})
    assert {name for name, node, _ in app["stats"].log} == {SEARCH}


async def test_search_offset_window_and_cursor():
    app = make_app(catalogue(), faults=Faults(offset_window=100))
    async with serve(app) as base, aiohttp.ClientSession() as session:
        url = f"{base}/api/2026-01/publications/search"
        refused = await call(session, "GET", url, offset=100)
        ids, _ = await search_all(session, base, "2026-01", "cursor", limit=50)
    assert refused[0] == 400 and list(refused[1]["error_details"]) == ["offset"]
    assert ids == published_ids(catalogue()) and app["stats"].faults == Counter({"offset_window": 1})


async def test_search_auth_versions_and_parameters():
    async with serve(make_app(catalogue())) as base, aiohttp.ClientSession() as session:
        url = f"{base}/api/2025-11/publications/search"
        statuses = [(await call(session, "GET", url, headers=h))[0]
                    for h in ({}, {"Authorization": "Bearer nope"}, LOW)]
        gone = [(await call(session, "GET", f"{base}/api/{v}/publications/search"))[0] for v in ("beta", "2026-03")]
        bad = [(await call(session, "GET", url, **q))[1]["error_details"] for q in ({"limit": "0"}, {"offset": "-1"})]
        no_cursor = await call(session, "GET", f"{base}/api/2026-01/publications/search", after="abc")
    assert statuses == [401, 401, 200] and gone == [410, 410]
    assert [list(d) for d in bad] == [["limit"], ["offset"]] and no_cursor[0] == 400


async def test_search_takes_transient_faults_and_no_cursor():
    app = make_app(catalogue(), faults=Faults(rate=1.0, kinds=("503",), max_per_request=1, cursor=False))
    async with serve(app) as base, aiohttp.ClientSession() as session:
        url = f"{base}/api/2026-01/publications/search"
        first, second = await call(session, "GET", url), await call(session, "GET", url)
    assert (first[0], second[0]) == (503, 200) and second[1]["cursor"] is None
    assert app["stats"].faults == Counter({"503": 1}) and len(app["stats"].log) == 1


# -- the admin route --------------------------------------------------------------------------

async def test_mutate_route_requires_the_token_and_good_parameters():
    ds = newsroom()
    edges = list(ds.edges)
    app = make_app(ds)
    async with serve(app) as base, aiohttp.ClientSession() as session:
        url = base + MUTATE_PATH
        denied = [(await call(session, "POST", url, headers=h, seed=1))[0]
                  for h in ({}, {"Authorization": "Bearer nope"}, {"Authorization": DEFAULT_TOKEN}, LOW)]
        bad = [await call(session, "POST", url, **q) for q in ({}, {"seed": "x"}, {"seed": 1, "changes": 100_000})]
    assert denied == [401, 401, 401, 403]
    assert [status for status, _ in bad] == [400] * 3
    assert [list(body["error_details"]) for _, body in bad] == [["seed"], ["seed"], ["changes"]]
    assert ds.edges == edges and app["changes"] == [] and app["stats"].requests == 0


async def test_mutate_route_changes_what_is_served():
    ds = generate(media=120, documents=60, seed=5)
    before, twin = set(ds.edges), generate(media=120, documents=60, seed=5)
    app = make_app(ds, prefix="/proxy/api")
    async with serve(app) as base, aiohttp.ClientSession() as session:
        status, body = await call(session, "POST", base + MUTATE_PATH, seed=2, changes=20)
        served = await served_graph(session, base, ds)
        gone = [(await call(session, "GET", f"{base}/api/v1/documents/{d.id}/incomingDocumentReferences"))[0]
                for d in sorted(app["changes"][0].deleted)]
        listed, _ = await search_all(session, base, "2026-01", "cursor")
    assert status == 200 and (body["seed"], body["changes"]) == (2, 20)
    assert body == {"seed": 2, "changes": 20, **change_json(mutate(twin, seed=2, changes=20))}
    assert body["counts"] == {k: len(v) for k, v in body.items() if k not in ("seed", "changes", "counts")}
    added = {Reference.make(Node.parse(e["source"]), Node.parse(e["target"]), e["origin"], e["ref"])
             for e in body["added"]}
    assert added == set(ds.edges) - before == app["changes"][0].added
    assert served == set(ds.edges)  # deleted documents are nobody's source any more
    assert gone and set(gone) == {404}
    assert listed == published_ids(ds) and not set(listed) & {int(d.id) for d in ds.deleted}
    assert app["stats"].log and all(name != "mutate" for name, _, _ in app["stats"].log)


async def served_graph(session, base: str, ds: Dataset) -> set[Reference]:
    """Every reference the API serves for every existing node (one page: the lists are short)."""
    found = set()
    for target in sorted(ds.nodes):
        for endpoint in endpoints_for(target.kind):
            # Dots too: a lone "." or ".." segment would be resolved away.
            segment = quote(target.id, safe="").replace(".", "%2E")
            url = yarl.URL(f"{base}/api/2025-11/{endpoint.collection}/{segment}/{endpoint.resource}?limit=100",
                           encoded=True)
            async with session.get(url, headers=AUTH) as resp:
                assert resp.status == 200
                body = await resp.json()
            assert len(body) < 100
            found |= {Reference.make(Node.of(endpoint.source_kind, s["id"]), target, endpoint.origin, r)
                      for s in body for r in s["references"]}
    return found


def test_mutate_route_through_serve_in_thread(sandbox):
    """A synchronous caller (the CLI's tests) can mutate the sandbox it started in a thread."""
    ds = generate(media=200, documents=100, seed=1)
    base, stats = sandbox(ds)

    async def post():
        async with aiohttp.ClientSession() as session:
            return await call(session, "POST", base + MUTATE_PATH, seed=3, changes=5)

    status, body = asyncio.run(post())
    assert status == 200 and body["counts"]["added"] + body["counts"]["removed"] > 0
    assert stats.requests == 0
