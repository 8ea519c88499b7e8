"""The sandbox: Livingdocs' incoming-references API served from a ``Dataset``.

It is both ``refgraph sandbox`` and the fake server of every test, so it is strict where the
real API is strict (one percent-encoded id segment, bearer token, drafts scope, versions that
are gone) and it counts what clients do (requests in flight, pages fetched), so tests prove
behaviour at the server instead of sleeping. Besides the five incoming endpoints it serves
``publications/search`` (every published document, ``{"id": 123}`` each) and one admin route,
``POST /_sandbox/mutate?seed=N&changes=M``, which changes the dataset overnight-style (see
``crawler.sandbox_mutation``) and answers what changed. The wire details (versions, paging,
cursors, stats, ``serve``) live in ``crawler.sandbox_http`` and are re-exported here.

Faults (429, 503, resets, slow and truncated answers, failing nodes, an offset window, no
cursors, content that changes mid-crawl) are chosen by a ``Faults`` configuration; see
``crawler.sandbox_faults``. Run it in a test::

    async with serve(make_app(dataset, faults=Faults(rate=0.3))) as base_url:
        ...  # GET {base_url}/api/2026-01/mediaLibrary/{id}/incomingDocumentReferences

>>> decode_cursor(encode_cursor(Node("media", "a/b c")))
Node(kind='media', id='a/b c')
>>> sorted(set(encode_cursor(Node("document", "200"))) & set("+/="))
['+', '/', '=']
"""

from __future__ import annotations

import asyncio
import bisect
import concurrent.futures
import contextlib
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from crawler.model import ENDPOINTS, Endpoint, Node, normalize_id
from crawler.sandbox_data import Dataset
from crawler.sandbox_faults import FaultInjector, Faults, error_response
from crawler.sandbox_http import (
    DEFAULT_HOLD_TIMEOUT,
    DEFAULT_LIMIT,
    ENVELOPE_VERSIONS,
    ERROR_401,
    ERROR_403,
    MAX_LIMIT,
    VERSIONS,
    Stats,
    bad_parameter,
    bearer_token,
    decode_cursor,
    decode_segments,
    encode_cursor,
    envelope,
    not_found,
    page_params,
    serve,
    serve_until_stopped,
)
from crawler.sandbox_mutation import DEFAULT_CHANGES, Change, change_json, mutate

__all__ = [
    "VERSIONS", "ENVELOPE_VERSIONS", "DEFAULT_TOKEN", "DEFAULT_NO_DRAFTS_TOKEN", "DEFAULT_LIMIT",
    "MAX_LIMIT", "DEFAULT_HOLD_TIMEOUT", "ERROR_401", "ERROR_403", "SEARCH", "MUTATE_PATH",
    "MAX_CHANGES", "Stats", "make_app", "encode_cursor", "decode_cursor", "serve",
    "serve_in_thread", "serve_forever",
]

DEFAULT_TOKEN = "sandbox-token"
DEFAULT_NO_DRAFTS_TOKEN = "sandbox-no-drafts"
# The name publications/search pages are logged under in Stats.log (with node None).
SEARCH = "publications/search"
# The admin route, under the app's prefix and outside /api, so no client mistakes it for the API.
MUTATE_PATH = "/_sandbox/mutate"
# A mutation runs on the server's loop (so it falls between requests, never inside a page);
# the cap keeps one request from stalling the server for long.
MAX_CHANGES = 1000
_MAX_SEED = 2**63 - 1

_ENDPOINTS = {(e.collection, e.resource): e for e in ENDPOINTS}


class _SortKeys:
    """The sort keys of one served list, read one at a time: bisect needs log(n), not a copy."""

    def __init__(self, dataset: Dataset, endpoint: Endpoint, target: Node):
        self.dataset, self.endpoint, self.target = dataset, endpoint, target

    def __len__(self) -> int:
        return self.dataset.incoming_total(self.endpoint, self.target)

    def __getitem__(self, index: int) -> tuple:
        return self.dataset.incoming(self.endpoint, self.target, index, 1)[0][0].sort_key()


def _target(endpoint: Endpoint, raw_id: str) -> Node | None:
    """The node a decoded path id names, or None when it cannot name one."""
    try:
        return Node(endpoint.target_kind, normalize_id(endpoint.target_kind, raw_id))
    except ValueError:
        return None


def _admin_int(query: Mapping[str, str], name: str, default: int | None, most: int) -> int:
    """A non-negative integer parameter of the admin route; ValueError names it."""
    text = query.get(name)
    if text is None and default is not None:
        return default
    if text is None or not (text.isascii() and text.isdigit()) or int(text) > most:
        raise ValueError(f"{name}: must be an integer from 0 to {most}")
    return int(text)


class _Sandbox:
    """One app's configuration and its request handlers."""

    def __init__(self, dataset: Dataset, token: str, no_drafts_token: str, latency: float,
                 prefix: str, stats: Stats, faults: Faults):
        self.dataset, self.token, self.no_drafts_token = dataset, token, no_drafts_token
        self.latency, self.stats, self.faults = latency, stats, faults
        self.injector = FaultInjector(faults, stats.attempts, stats.faults)
        self.root = ["", *[p for p in prefix.split("/") if p], "api"]
        self.changes: list[Change] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            await self.stats.arrive()
            if self.latency:
                await asyncio.sleep(self.latency)
            response = await self.answer(request)
        finally:
            self.stats.leave()
        if not response.prepared:  # prepared here means a reset: it never completed, so no status
            self.stats.statuses[response.status] += 1
        return response

    async def answer(self, request: web.Request) -> web.StreamResponse:
        path, _, raw_query = request.raw_path.partition("?")
        raw = path.split("/")
        if raw[:len(self.root)] != self.root or len(raw) == len(self.root):
            return not_found(path)
        token = bearer_token(request)
        if token is None or token not in (self.token, self.no_drafts_token):
            return web.json_response(ERROR_401, status=401)
        rest = decode_segments(raw[len(self.root):])
        # Shaped like the vendor's example: the version shown as its route parameter.
        shown = "/".join(["/api/:apiVersion", *raw[len(self.root) + 1:]])
        if rest is not None and rest[0] not in VERSIONS:
            return error_response(410, {"apiVersion": rest[0], "supported": list(VERSIONS)})
        query = dict(parse_qsl(raw_query, keep_blank_values=True))
        if rest is not None and rest[1:] == ["publications", "search"]:
            return await self.search(request, rest[0], query)
        endpoint = _ENDPOINTS.get((rest[1], rest[3])) if rest and len(rest) == 4 else None
        if endpoint is None:
            return not_found(shown)
        if endpoint.origin == "draft" and token == self.no_drafts_token:
            return web.json_response(ERROR_403, status=403)
        target = _target(endpoint, rest[2])
        if target is None or target not in self.dataset.nodes:
            return not_found(shown)
        return await self.page(request, endpoint, target, rest[0], query)

    async def page(self, request: web.Request, endpoint: Endpoint, target: Node, version: str,
                   query: dict[str, str]) -> web.StreamResponse:
        try:
            offset, after, limit = page_params(query, version, endpoint.source_kind)
        except ValueError as exc:
            return bad_parameter(exc)
        if after is not None:
            offset = bisect.bisect_right(_SortKeys(self.dataset, endpoint, target), after.sort_key())
        refusal = self.injector.refusal(target, None if after else offset)
        if refusal is not None:
            return refusal
        fault = await self.injector.draw(request.raw_path)
        body = self.body(version, endpoint, target, offset, limit)
        if fault is not None:
            return await self.injector.respond(fault, request, body)
        self.stats.log.append((endpoint.name, target, query))
        response = web.json_response(body)  # serialised now, before the list drifts
        if offset == 0 and after is None:
            self.injector.first_page_served(self.dataset, endpoint, target, limit)
        return response

    def body(self, version: str, endpoint: Endpoint, target: Node, offset: int, limit: int) -> Any:
        page = self.dataset.incoming(endpoint, target, offset, limit)
        results = [{"id": int(source.id) if source.kind == "document" else source.id,
                    "references": refs} for source, refs in page]
        total = self.dataset.incoming_total(endpoint, target)
        return envelope(version, results, total=total, last=page[-1][0] if page else None,
                        more=self.faults.cursor and offset + len(results) < total)

    async def search(self, request: web.Request, version: str, query: dict[str, str]) -> web.StreamResponse:
        """``publications/search``: published documents by id, each as ``{"id": 123}``.

        Only ids, whatever ``fields`` asks for: the sandbox knows nothing else about a document.
        """
        try:
            offset, after, limit = page_params(query, version, "document")
        except ValueError as exc:
            return bad_parameter(exc)
        listed = self.dataset.publications()
        if after is not None:
            offset = bisect.bisect_right(listed, after.sort_key(), key=Node.sort_key)
        elif self.faults.beyond_window(offset):
            # As the incoming endpoints refuse it; failing nodes do not apply, a search has none.
            self.stats.faults["offset_window"] += 1
            return error_response(400, {"offset": f"must be below {self.faults.offset_window}; "
                                                  "page further with after=<cursor>"})
        fault = await self.injector.draw(request.raw_path)
        page = listed[offset:offset + limit]
        body = envelope(version, [{"id": int(n.id)} for n in page], total=len(listed),
                        last=page[-1] if page else None,
                        more=self.faults.cursor and offset + len(page) < len(listed))
        if fault is not None:
            return await self.injector.respond(fault, request, body)
        self.stats.log.append((SEARCH, None, query))
        return web.json_response(body)

    async def mutate(self, request: web.Request) -> web.Response:
        """``POST /_sandbox/mutate?seed=N&changes=M``: an overnight change, answered as JSON."""
        token = bearer_token(request)
        if token is None or token not in (self.token, self.no_drafts_token):
            return web.json_response(ERROR_401, status=401)
        if token != self.token:  # a token that may not read drafts may not rewrite the newsroom
            return web.json_response(ERROR_403, status=403)
        try:
            seed = _admin_int(request.query, "seed", None, _MAX_SEED)
            changes = _admin_int(request.query, "changes", DEFAULT_CHANGES, MAX_CHANGES)
        except ValueError as exc:
            return bad_parameter(exc)
        change = mutate(self.dataset, seed=seed, changes=changes)
        self.changes.append(change)
        return web.json_response({"seed": seed, "changes": changes, **change_json(change)})


def make_app(dataset: Dataset, *, token: str = DEFAULT_TOKEN,
             no_drafts_token: str = DEFAULT_NO_DRAFTS_TOKEN, latency: float = 0.0,
             hold_until_in_flight: int | None = None, hold_timeout: float = DEFAULT_HOLD_TIMEOUT,
             on_request: Callable[[], None] | None = None,
             prefix: str = "", faults: Faults | None = None) -> web.Application:
    """The API app. ``app["stats"]`` is its ``Stats``; ``prefix`` mounts it under a path.

    ``faults`` chooses what goes wrong (nothing by default); with ``drift`` the app changes
    ``dataset`` in place, so its ground truth includes what was added. So does
    ``POST {prefix}/_sandbox/mutate`` (full token only), which appends each ``Change`` to
    ``app["changes"]``: change a served dataset through it, and the change falls between
    requests on the server's loop instead of racing them from another thread.
    """
    prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
    stats = Stats(hold_until_in_flight, hold_timeout, on_request)
    faults = faults if faults is not None else Faults()
    sandbox = _Sandbox(dataset, token, no_drafts_token, latency, prefix, stats, faults)
    app = web.Application()
    app.on_shutdown.append(sandbox.injector.on_shutdown)
    app.router.add_route("POST", prefix + MUTATE_PATH, sandbox.mutate)
    # Every other path reaches one handler, which parses raw_path itself: aiohttp's router sees
    # the decoded path, where an id's %2F has already become a separator.
    app.router.add_route("GET", "/{tail:.*}", sandbox.handle)
    with warnings.catch_warnings():
        # Plain string keys are the documented contract (app["stats"]); aiohttp prefers AppKey.
        warnings.simplefilter("ignore", web.NotAppKeyWarning)
        app["stats"], app["dataset"], app["prefix"], app["faults"] = stats, dataset, prefix, faults
        app["changes"] = sandbox.changes
    return app


@contextlib.contextmanager
def serve_in_thread(dataset: Dataset, *, host: str = "127.0.0.1", port: int = 0,
                    **make_app_kwargs: Any) -> Iterator[tuple[str, Stats]]:
    """Serve from a background thread with its own loop, for synchronous callers (CliRunner).

    Yields ``(base_url, stats)``; stops the server and joins the thread on exit.
    """
    app = make_app(dataset, **make_app_kwargs)
    started: concurrent.futures.Future = concurrent.futures.Future()
    thread = threading.Thread(target=asyncio.run, name="refgraph-sandbox", daemon=True,
                              args=(serve_until_stopped(app, host, port, started),))
    thread.start()
    try:
        base_url, loop, stop = started.result()
    except BaseException:
        thread.join()
        raise
    try:
        yield base_url, app["stats"]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join()


def serve_forever(dataset: Dataset, host: str = "127.0.0.1", port: int = 8080, *,
                  ready: Callable[[str], None] | None = None, **make_app_kwargs: Any) -> None:
    """Serve until Ctrl-C. Prints nothing; ``ready(base_url)`` lets the caller announce it."""
    async def run() -> None:
        async with serve(make_app(dataset, **make_app_kwargs), host, port) as base_url:
            if ready is not None:
                ready(base_url)
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
