"""Fault injection in the sandbox, seen by a plain aiohttp client.

Every server listens on 127.0.0.1 port 0 and is stopped by the test that started it. Faults
are chosen only through ``Faults``, as ``refgraph sandbox --fault-*`` chooses them.
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass

import aiohttp
import pytest
from click.testing import CliRunner

import crawler.sandbox
from crawler import cli_sandbox
from crawler.model import Node, Reference
from crawler.sandbox import DEFAULT_TOKEN, decode_cursor, encode_cursor, make_app, serve, serve_in_thread
from crawler.sandbox_data import Dataset
from crawler.sandbox_faults import FAULT_KINDS, Faults

AUTH = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
HUB = "/api/2026-01/mediaLibrary/hub/incomingDocumentReferences"
FIRST = 101  # hub referrers are documents 101.., so a drifted source (1, 2, ...) sorts first


def doc(n: int) -> Node:
    return Node.of("document", n)


def pub(source: Node, target: Node, origin: str = "publication") -> Reference:
    ref_type = "image" if target.kind == "media" else "document"
    return Reference.make(source, target, origin, {"id": target.id, "type": ref_type,
                                                   "location": "metadata", "propertyName": "p"})


def hub(n: int = 257) -> Dataset:
    """Media "hub" used by documents FIRST..FIRST+n-1, and document 50 linked from 101..103."""
    target = Node("media", "hub")
    edges = [pub(doc(i), target) for i in range(FIRST, FIRST + n)]
    edges += [pub(doc(i), doc(50)) for i in (101, 102, 103)]
    edges += [pub(doc(i), doc(50), "draft") for i in (101, 102, 103)]
    edges += [pub(Node("media", m), target, "media") for m in ("m1", "m2", "m3")]
    return Dataset.from_edges([], edges)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    raw: bytes

    @property
    def body(self):
        return json.loads(self.raw)


@dataclass
class Client:
    base: str
    session: aiohttp.ClientSession
    app: object

    @property
    def stats(self):
        return self.app["stats"]

    async def get(self, path: str, timeout: float | None = None, **params) -> Answer:
        async with self.session.get(self.base + path, params=params, headers=AUTH,
                                    timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            return Answer(resp.status, dict(resp.headers), await resp.read())

    async def sources(self, path: str = HUB, **params) -> tuple[list[int], Answer]:
        answer = await self.get(path, **params)
        assert answer.status == 200, answer.raw
        results = answer.body["results"] if isinstance(answer.body, dict) else answer.body
        return [s["id"] for s in results], answer


@contextlib.asynccontextmanager
async def client(dataset: Dataset | None = None, **faults):
    app = make_app(dataset if dataset is not None else hub(), faults=Faults(**faults))
    async with serve(app) as base, aiohttp.ClientSession() as session:
        yield Client(base, session, app)


# -- the configuration ---------------------------------------------------------------------------

def test_default_injects_nothing():
    faults = Faults()
    assert (faults.rate, faults.kinds, faults.cursor, faults.drift) == (0.0, FAULT_KINDS, True, False)
    assert all(faults.fault_for(str(i), 1) is None for i in range(1000))
    assert faults.summary() == "none"


@pytest.mark.parametrize("kwargs", [{"rate": 1.5}, {"rate": -0.1}, {"kinds": ("404",)}, {"kinds": ()},
                                    {"retry_after": -1}, {"retry_after": float("inf")}, {"slow": -1},
                                    {"max_per_request": -1}, {"offset_window": -1},
                                    {"failing": frozenset({"page:1"})}, {"failing": frozenset({"document:x"})}])
def test_bad_configuration_is_refused(kwargs):
    with pytest.raises(ValueError):
        Faults(**kwargs)


def test_failing_nodes_are_normalised():
    assert Faults(failing=frozenset({"document:012", "media:a/b c"})) == \
        Faults(failing=frozenset({"document:12", "media:a/b c"}))


@pytest.mark.parametrize("seconds, header", [(1.0, "1"), (0, "0"), (0.0, "0"), (2.5, "2.5"), (30, "30")])
def test_retry_after_header(seconds, header):
    assert Faults(retry_after=seconds).retry_after_header == header


def test_schedule_is_a_function_of_seed_key_and_attempt():
    keys = [f"/api/v1/documents/{i}/incomingDocumentReferences" for i in range(2000)]
    a, b = Faults(rate=0.3, seed=1), Faults(rate=0.3, seed=1)
    first = [a.fault_for(k, 1) for k in keys]
    assert first == [b.fault_for(k, 1) for k in keys]
    assert first != [Faults(rate=0.3, seed=2).fault_for(k, 1) for k in keys]
    assert first != [a.fault_for(k, 2) for k in keys]  # a retry draws afresh
    drawn = Counter(first)
    assert 0.25 < 1 - drawn[None] / len(keys) < 0.35
    assert set(drawn) - {None} == set(FAULT_KINDS)
    only = Faults(rate=1.0, kinds=("429", "429", "reset"))
    assert {only.fault_for(k, 1) for k in keys} == {"429", "reset"}


def test_no_fault_past_max_per_request():
    faults = Faults(rate=1.0, max_per_request=3)
    assert [faults.fault_for("k", n) is not None for n in range(1, 7)] == [True] * 3 + [False] * 3
    assert Faults(rate=1.0, max_per_request=0).fault_for("k", 1) is None


# -- each transient fault, seen by a plain aiohttp client ------------------------------------------

async def test_429_and_503_send_retry_after():
    async with client(rate=1.0, kinds=("429",), retry_after=0) as c:
        answer = await c.get(HUB)
    assert (answer.status, answer.headers["Retry-After"]) == (429, "0")
    assert answer.body["status"] == 429 and answer.body["error"] == "Too Many Requests"
    assert "error_details" in answer.body
    async with client(rate=1.0, kinds=("503",), retry_after=2.5) as c:
        answer = await c.get(HUB)
    assert (answer.status, answer.headers["Retry-After"], answer.body["error"]) == \
        (503, "2.5", "Service Unavailable")
    assert c.stats.faults == Counter({"503": 1}) and c.stats.statuses == Counter({503: 1})


async def test_500_is_a_json_error_without_retry_after():
    async with client(rate=1.0, kinds=("500",)) as c:
        answer = await c.get(HUB)
    assert answer.status == 500 and "Retry-After" not in answer.headers
    assert (answer.body["status"], answer.body["error"]) == (500, "Internal Server Error")


async def test_reset_breaks_the_answer_off():
    async with client(rate=1.0, kinds=("reset",), max_per_request=1) as c:
        with pytest.raises(aiohttp.ClientPayloadError):
            await c.get(HUB)
        ids, _ = await c.sources(HUB)  # the same request again: past max_per_request
        assert ids[:2] == [FIRST, FIRST + 1]
    # One attempt each: the client did not resend the request behind the caller's back.
    assert c.stats.attempts == Counter({HUB: 2}) and c.stats.faults == Counter({"reset": 1})
    assert c.stats.statuses == Counter({200: 1}) and c.stats.requests == 2


async def test_truncated_is_valid_http_with_half_the_json():
    async with client() as plain:
        _, whole = await plain.sources(HUB)
    async with client(rate=1.0, kinds=("truncated",)) as c:
        answer = await c.get(HUB)
        assert answer.status == 200 and int(answer.headers["Content-Length"]) == len(answer.raw)
        with pytest.raises(json.JSONDecodeError):
            json.loads(answer.raw)
        async with c.session.get(c.base + HUB, headers=AUTH) as resp:
            with pytest.raises(json.JSONDecodeError):
                await resp.json()
    assert answer.raw == whole.raw[:len(whole.raw) // 2]
    assert c.stats.log == [] and c.stats.faults == Counter({"truncated": 2})


async def test_slow_answers_normally_after_the_wait():
    async with client(rate=1.0, kinds=("slow",), slow=0.2) as c:
        started = time.monotonic()
        ids, _ = await c.sources(HUB)
        assert time.monotonic() - started >= 0.2
    assert ids[0] == FIRST and c.stats.faults == Counter({"slow": 1})
    assert len(c.stats.log) == 1  # a slow page is still a served page


async def test_slow_exceeds_a_client_timeout_and_does_not_hold_up_shutdown():
    started = time.monotonic()
    async with client(rate=1.0, kinds=("slow",), slow=30) as c:
        with pytest.raises(TimeoutError):
            await c.get(HUB, timeout=0.1)
    assert time.monotonic() - started < 5  # the server stopped without waiting out the 30 s


@pytest.mark.parametrize("kind", FAULT_KINDS)
async def test_each_kind_then_success_past_max_per_request(kind):
    """Attempts 1..N fault (the kind's own effect), attempt N+1 of the same request succeeds."""
    effects = {"429": 429, "503": 503, "500": 500, "reset": aiohttp.ClientPayloadError,
               "slow": TimeoutError, "truncated": json.JSONDecodeError}
    async with client(rate=1.0, kinds=(kind,), max_per_request=2, slow=0.3) as c:
        for _ in range(2):
            try:
                answer = await c.get(HUB, timeout=0.1 if kind == "slow" else None, limit=5)
                seen = answer.status if answer.status != 200 else answer.body
            except Exception as exc:  # which exception is the point of the test
                seen = exc
            expected = effects[kind]
            assert seen == expected if isinstance(expected, int) else isinstance(seen, expected), seen
        ids, _ = await c.sources(HUB, limit=5)
    assert ids == list(range(FIRST, FIRST + 5))
    assert c.stats.faults == Counter({kind: 2})
    assert c.stats.attempts == Counter({f"{HUB}?limit=5": 3})


async def test_same_seed_same_faults_whatever_the_order():
    paths = [f"/api/2025-11/documents/{i}/incomingDocumentReferences" for i in range(FIRST, FIRST + 60)]

    async def statuses(order, seed):
        async with client(rate=0.4, kinds=("429", "500", "503"), seed=seed) as c:
            got = {}
            for p in order:
                got[p] = [(await c.get(p)).status for _ in range(3)]
            return got

    forward = await statuses(paths, seed=7)
    assert forward == await statuses(paths[::-1], seed=7)
    assert forward != await statuses(paths, seed=8)
    assert {s for seq in forward.values() for s in seq} == {200, 429, 500, 503}
    assert all(seq[2] == 200 for seq in forward.values())  # the third try is past max_per_request


async def test_faults_only_replace_pages():
    async with client(rate=1.0, kinds=("500",)) as c:
        unauthorized = await c.session.get(c.base + HUB)
        statuses = [unauthorized.status] + [(await c.get(p)).status for p in (
            "/api/v1/documents/999/incomingDocumentReferences", "/api/beta/documents/50/incomingDocumentReferences",
            "/api/v1/nope", HUB + "?limit=x")]
        unauthorized.release()
    assert statuses == [401, 404, 410, 404, 400] and c.stats.faults == Counter()


# -- permanent faults ----------------------------------------------------------------------------

async def test_failing_nodes_always_answer_500():
    async with client(failing=frozenset({"media:hub", "document:050"}), max_per_request=1) as c:
        failing = [(await c.get(p)).status for p in [
            HUB, HUB, HUB, "/api/v1/mediaLibrary/hub/incomingMediaReferences",
            "/api/2025-11/documents/50/incomingDocumentReferences", "/api/v1/drafts/50/incomingDocumentReferences",
            "/api/v1/documents/50/incomingMediaReferences"]]
        fine = (await c.get("/api/v1/documents/101/incomingDocumentReferences")).status
        body = (await c.get(HUB)).body
    assert failing == [500] * 7 and fine == 200
    assert body["error"] == "Internal Server Error" and c.stats.faults == Counter({"failing": 8})


async def test_offset_window_stops_offsets_not_cursors():
    async with client(offset_window=200) as c:
        before, _ = await c.sources(HUB, offset=100)
        at, past, old = await c.get(HUB, offset=200), await c.get(HUB, offset=250), \
            await c.get("/api/2025-11/mediaLibrary/hub/incomingDocumentReferences", offset=200)
        ids, answer = await c.sources(HUB)
        while answer.body["cursor"]:
            more, answer = await c.sources(HUB, after=answer.body["cursor"])
            ids += more
    assert len(before) == 100 and (at.status, past.status, old.status) == (400, 400, 400)
    assert at.body["status"] == 400 and at.body["error"] == "Bad Request" and "offset" in at.body["error_details"]
    assert ids == list(range(FIRST, FIRST + 257))
    assert c.stats.faults == Counter({"offset_window": 3})


async def test_without_cursors_clients_page_by_offset():
    async with client(cursor=False) as c:
        pages = [(await c.get(HUB, offset=o)).body for o in (0, 100, 200)]
    assert [p["cursor"] for p in pages] == [None] * 3 and {p["total"] for p in pages} == {257}
    assert [s["id"] for p in pages for s in p["results"]] == list(range(FIRST, FIRST + 257))


# -- drift ---------------------------------------------------------------------------------------

async def test_drift_inserts_one_first_source_and_cursors_see_each_source_once():
    dataset = hub()
    async with client(dataset, drift=True) as c:
        ids, answer = await c.sources(HUB)
        totals = [answer.body["total"]]
        while answer.body["cursor"]:
            more, answer = await c.sources(HUB, after=answer.body["cursor"])
            ids, totals = ids + more, totals + [answer.body["total"]]
        again, answer = await c.sources(HUB)  # a list drifts at most once
        new = await c.sources("/api/2026-01/documents/1/incomingDocumentReferences")
    assert ids == list(range(FIRST, FIRST + 257)) and totals == [257, 258, 258]
    assert again[:2] == [1, FIRST] and answer.body["total"] == 258
    assert new[0] == [] and doc(1) in dataset.nodes and doc(1) in dataset.published
    assert doc(1) in {e.source for e in dataset.refs(Node("media", "hub"))}
    assert c.stats.faults == Counter({"drift": 1})


async def test_drift_shifts_offset_paging():
    async with client(drift=True) as c:
        pages = [(await c.sources(HUB, offset=o))[0] for o in (0, 100, 200, 300)]
    ids = [i for page in pages for i in page]
    assert pages[1][0] == FIRST + 99  # the last source of page one, served again
    assert Counter(ids)[FIRST + 99] == 2 and 1 not in ids and len(set(ids)) == 257


async def test_drift_truth_includes_the_new_edge():
    dataset = hub()
    target = Node("media", "hub")
    before = dataset.closure_edges([target])
    async with client(dataset, drift=True) as c:
        await c.sources(HUB, limit=100)
    added = dataset.closure_edges([target]) - before
    assert [(e.source, e.target, e.origin) for e in added] == [(doc(1), target, "publication")]


async def test_drift_needs_more_than_one_page_and_a_list_of_documents():
    async with client(drift=True) as c:
        await c.sources("/api/v1/documents/50/incomingDocumentReferences")  # 3 sources, one page
        await c.sources("/api/v1/mediaLibrary/hub/incomingMediaReferences", limit=1)  # media sources
        await c.sources(HUB, offset=5, limit=1)  # not the first page
        assert c.stats.faults == Counter()
        draft_ids, _ = await c.sources("/api/v1/drafts/50/incomingDocumentReferences", limit=2)
        publication_ids, _ = await c.sources("/api/v1/documents/50/incomingDocumentReferences", limit=2)
        ids_after, _ = await c.sources("/api/v1/drafts/50/incomingDocumentReferences", limit=2)
    assert draft_ids == [101, 102] and publication_ids == [101, 102]
    assert ids_after == [1, 101]  # one new draft source; then document 2 for the publications
    assert c.stats.faults == Counter({"drift": 2})
    dataset = c.app["dataset"]
    assert doc(1) not in dataset.published and doc(2) in dataset.published


# -- the keyset cursor ---------------------------------------------------------------------------

@pytest.mark.parametrize("node", [doc(0), doc(101), doc(2**40), Node("media", "a/b c"), Node("media", "ü"),
                                  Node("media", ".."), Node("media", "x" * 1000), Node("media", "12345")])
def test_cursor_round_trips_and_needs_escaping(node):
    cursor = encode_cursor(node)
    assert decode_cursor(cursor) == node and {"+", "/", "="} <= set(cursor)


@pytest.mark.parametrize("text", ["", "abc", encode_cursor(doc(5))[:-2], encode_cursor(doc(5)) + "AAAA",
                                  encode_cursor(doc(5)).replace("+", " ")])
def test_other_cursors_are_refused(text):
    with pytest.raises(ValueError):
        decode_cursor(text)


async def test_cursor_of_another_list_is_400():
    async with client() as c:
        wrong_kind = await c.get(HUB, after=encode_cursor(Node("media", "m1")))
        right_kind = await c.get(HUB, after=encode_cursor(doc(150)))
    assert wrong_kind.status == 400 and "after" in wrong_kind.body["error_details"]
    assert right_kind.body["results"][0]["id"] == 151


async def test_cursor_goes_on_after_its_source_even_when_it_is_gone():
    dataset = hub()
    async with client(dataset) as c:
        first, answer = await c.sources(HUB, limit=10)
        assert decode_cursor(answer.body["cursor"]) == doc(FIRST + 9)
        dataset.edges = [e for e in dataset.edges if e.source not in (doc(FIRST + 9), doc(FIRST + 3))]
        dataset.changed()
        second, _ = await c.sources(HUB, limit=10, after=answer.body["cursor"])
    assert second == list(range(FIRST + 10, FIRST + 20))


# -- wiring: serve_in_thread and the command line ------------------------------------------------

def test_serve_in_thread_passes_faults():
    with serve_in_thread(hub(), faults=Faults(failing=frozenset({"media:hub"}))) as (base_url, stats):
        with pytest.raises(urllib.error.HTTPError) as failed:
            urllib.request.urlopen(urllib.request.Request(base_url + HUB, headers=AUTH), timeout=5)
        assert failed.value.code == 500
        failed.value.close()
    assert stats.faults == Counter({"failing": 1})


def _invoke(monkeypatch, *args):
    served = {}
    # The command imports the server where it runs it, so that other commands start without it.
    monkeypatch.setattr(crawler.sandbox, "serve_forever", lambda dataset, host, port, **kw: served.update(kw))
    result = CliRunner().invoke(cli_sandbox.sandbox, ["--media", "5", "--documents", "3", *args])
    return result, served.get("faults")


def test_command_line_chooses_faults(monkeypatch):
    result, faults = _invoke(monkeypatch, "--fault-rate", "0.25", "--fault-kinds", "429, reset",
                             "--fault-seed", "9", "--retry-after", "0", "--failing", "media:x",
                             "--failing", "document:012", "--offset-window", "300", "--no-cursor", "--drift")
    assert result.exit_code == 0, result.output
    assert faults == Faults(rate=0.25, kinds=("429", "reset"), seed=9, retry_after=0,
                            failing=frozenset({"media:x", "document:12"}), offset_window=300,
                            cursor=False, drift=True)
    result, faults = _invoke(monkeypatch)
    assert result.exit_code == 0 and faults == Faults()


@pytest.mark.parametrize("args", [["--fault-kinds", "429,404"], ["--fault-kinds", ","], ["--fault-rate", "2"],
                                  ["--failing", "page:1"], ["--retry-after", "-1"], ["--offset-window", "-5"]])
def test_command_line_refuses_bad_faults(monkeypatch, args):
    result, faults = _invoke(monkeypatch, *args)
    assert result.exit_code == 2 and faults is None

