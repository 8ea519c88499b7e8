"""The sandbox: Livingdocs' incoming-references API served from a ``Dataset``.

It is both ``refgraph sandbox`` and the fake server of every test, so it is strict where the
real API is strict (one percent-encoded id segment, bearer token, drafts scope, versions that
are gone) and it counts what clients do (requests in flight, pages fetched), so tests prove
behaviour at the server instead of sleeping.

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
import base64
import binascii
import bisect
import concurrent.futures
import contextlib
import struct
import threading
import warnings
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, unquote

from aiohttp import web

from crawler.model import ENDPOINTS, Endpoint, Node, normalize_id
from crawler.sandbox_data import Dataset
from crawler.sandbox_faults import FaultInjector, Faults, error_response

__all__ = [
    "VERSIONS", "ENVELOPE_VERSIONS", "DEFAULT_TOKEN", "DEFAULT_NO_DRAFTS_TOKEN", "DEFAULT_LIMIT",
    "MAX_LIMIT", "DEFAULT_HOLD_TIMEOUT", "ERROR_401", "ERROR_403", "Stats", "make_app",
    "encode_cursor", "decode_cursor", "serve", "serve_in_thread", "serve_forever",
]

VERSIONS = ("v1", "2025-03", "2025-05", "2025-07", "2025-09", "2025-11", "2026-01")
# From 2026-01 the body is {"total", "cursor", "results"}; before, a bare array of sources.
ENVELOPE_VERSIONS = frozenset({"2026-01"})
DEFAULT_TOKEN = "sandbox-token"
DEFAULT_NO_DRAFTS_TOKEN = "sandbox-no-drafts"
DEFAULT_LIMIT = MAX_LIMIT = 100
# Held requests give up waiting after this long, so a test that miscounts hangs 5 s, not forever.
DEFAULT_HOLD_TIMEOUT = 5.0

# The vendor's documented error bodies, verbatim.
ERROR_401 = {"status": 401, "error": "Unauthorized",
             "error_details": {"access_token": "The access token expired."}}
ERROR_403 = {"status": 403, "error": "Forbidden",
             "error_details": {"access_token": "The request requires higher privileges"}}

_ENDPOINTS = {(e.collection, e.resource): e for e in ENDPOINTS}
# b"\xfb\xff\xbf" is "+/+/" in base64 and cursors are padded to 3n+1 bytes, which ends in "==":
# every cursor holds + / and =, so a client that forgets to percent-encode it gets a 400
# instead of silently wrong pages.
_CURSOR_MAGIC = b"\xfb\xff\xbf"
_KIND_CODES = {"document": b"d", "media": b"m"}
_CODE_KINDS = {code: kind for kind, code in _KIND_CODES.items()}


def encode_cursor(last: Node) -> str:
    """The opaque ``after`` cursor: the last source served, so paging goes on after its sort key.

    A key, not an offset: sources inserted or removed before it shift nothing.
    """
    ident = last.id.encode("utf-8")
    raw = _CURSOR_MAGIC + _KIND_CODES[last.kind] + struct.pack(">I", len(ident)) + ident
    return base64.b64encode(raw + b"\0" * ((1 - len(raw)) % 3)).decode("ascii")


def decode_cursor(text: str) -> Node:
    """The source inside a cursor; ValueError for anything this sandbox did not issue."""
    try:
        raw = base64.b64decode(text, validate=True)
        (size,) = struct.unpack(">I", raw[4:8])
        node = Node.of(_CODE_KINDS[raw[3:4]], raw[8:8 + size].decode("utf-8"))
        # Only the exact text this server would issue: no other padding, no trailing bytes.
        if raw.startswith(_CURSOR_MAGIC) and encode_cursor(node) == text:
            return node
    except (binascii.Error, ValueError, KeyError, struct.error):
        pass
    raise ValueError(f"bad cursor {text!r}")


class Stats:
    """What clients did to the sandbox, for tests to assert on.

    ``log`` holds ``(endpoint name, target Node, query dict)`` for every page served (a fault
    answered instead is not). With ``hold_until_in_flight=N`` every request waits until N are
    in flight at once; then all proceed, and later ones are no longer held.
    """

    def __init__(self, hold_until_in_flight: int | None = None,
                 hold_timeout: float = DEFAULT_HOLD_TIMEOUT, on_request: Callable[[], None] | None = None):
        self.on_request = on_request  # called from the server's thread as each request arrives
        self.in_flight = 0
        self.max_in_flight = 0
        self.requests = 0
        self.statuses: Counter[int] = Counter()
        self.log: list[tuple[str, Node, dict[str, str]]] = []
        self.attempts: Counter[str] = Counter()  # raw path + query -> tries at a would-be 200
        self.faults: Counter[str] = Counter()  # injected faults by kind
        self.hold_timeouts = 0  # held requests released by the safety timeout, not by N
        self.hold_until_in_flight = hold_until_in_flight
        self.hold_timeout = hold_timeout
        self._released = asyncio.Event()

    async def arrive(self) -> None:
        if self.on_request is not None:
            self.on_request()
        self.requests += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        if self.hold_until_in_flight is None:
            return
        if self.in_flight >= self.hold_until_in_flight:
            self._released.set()
        try:
            await asyncio.wait_for(self._released.wait(), self.hold_timeout)
        except TimeoutError:
            self.hold_timeouts += 1

    def leave(self) -> None:
        self.in_flight -= 1

    def pages(self) -> Counter:
        """How often each page was fetched, keyed ``(endpoint, node, sorted query items)``."""
        return Counter((name, node, tuple(sorted(query.items()))) for name, node, query in self.log)

    def repeated_pages(self) -> list:
        return [page for page, count in self.pages().items() if count > 1]


def _not_found(path: str) -> web.Response:
    return error_response(404, {"url": path})


def _decoded(raw: list[str]) -> list[str] | None:
    """Percent-decode each segment on its own, so an id's %2F stays inside the id.

    A literal "." or ".." segment is refused: any proxy on the way would have resolved it
    away, so an id is only ever ".." when sent as %2E%2E.
    """
    if any(seg in (".", "..") for seg in raw):
        return None
    try:
        return [unquote(seg, errors="strict") for seg in raw]
    except UnicodeDecodeError:
        return None


def _bearer(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" and token else None


def _page_params(query: dict[str, str], version: str, source_kind: str) -> tuple[int, Node | None, int]:
    """(offset, the cursor's source or None, limit) from the query; ValueError names the bad parameter."""
    def number(name: str, default: int, least: int) -> int:
        text = query.get(name, str(default))
        if not (text.isascii() and text.isdigit()) or int(text) < least:
            raise ValueError(f"{name}: must be an integer >= {least}")
        return int(text)

    limit = min(number("limit", DEFAULT_LIMIT, 1), MAX_LIMIT)
    if version in ENVELOPE_VERSIONS and "after" in query:
        try:
            after = decode_cursor(query["after"])
        except ValueError:
            raise ValueError("after: not a cursor this server issued") from None
        if after.kind != source_kind:
            raise ValueError("after: a cursor of another list")
        return 0, after, limit
    return number("offset", 0, 0), None, limit


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


class _Sandbox:
    """One app's configuration and its request handler."""

    def __init__(self, dataset: Dataset, token: str, no_drafts_token: str, latency: float,
                 prefix: str, stats: Stats, faults: Faults):
        self.dataset, self.token, self.no_drafts_token = dataset, token, no_drafts_token
        self.latency, self.stats, self.faults = latency, stats, faults
        self.injector = FaultInjector(faults, stats.attempts, stats.faults)
        self.root = ["", *[p for p in prefix.split("/") if p], "api"]

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
            return _not_found(path)
        token = _bearer(request)
        if token is None or token not in (self.token, self.no_drafts_token):
            return web.json_response(ERROR_401, status=401)
        rest = _decoded(raw[len(self.root):])
        # Shaped like the vendor's example: the version shown as its route parameter.
        shown = "/".join(["/api/:apiVersion", *raw[len(self.root) + 1:]])
        if rest is not None and rest[0] not in VERSIONS:
            return error_response(410, {"apiVersion": rest[0], "supported": list(VERSIONS)})
        endpoint = _ENDPOINTS.get((rest[1], rest[3])) if rest and len(rest) == 4 else None
        if endpoint is None:
            return _not_found(shown)
        if endpoint.origin == "draft" and token == self.no_drafts_token:
            return web.json_response(ERROR_403, status=403)
        target = _target(endpoint, rest[2])
        if target is None or target not in self.dataset.nodes:
            return _not_found(shown)
        query = dict(parse_qsl(raw_query, keep_blank_values=True))
        return await self.page(request, endpoint, target, rest[0], query)

    async def page(self, request: web.Request, endpoint: Endpoint, target: Node, version: str,
                   query: dict[str, str]) -> web.StreamResponse:
        try:
            offset, after, limit = _page_params(query, version, endpoint.source_kind)
        except ValueError as exc:
            name, _, why = str(exc).partition(": ")
            return error_response(400, {name: why})
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
        if version not in ENVELOPE_VERSIONS:
            return results
        total = self.dataset.incoming_total(endpoint, target)
        # No cursor once the last source has been served: the client's signal to stop.
        more = self.faults.cursor and offset + len(results) < total
        return {"total": total, "cursor": encode_cursor(page[-1][0]) if more else None, "results": results}


def make_app(dataset: Dataset, *, token: str = DEFAULT_TOKEN,
             no_drafts_token: str = DEFAULT_NO_DRAFTS_TOKEN, latency: float = 0.0,
             hold_until_in_flight: int | None = None, hold_timeout: float = DEFAULT_HOLD_TIMEOUT,
             on_request: Callable[[], None] | None = None,
             prefix: str = "", faults: Faults | None = None) -> web.Application:
    """The API app. ``app["stats"]`` is its ``Stats``; ``prefix`` mounts it under a path.

    ``faults`` chooses what goes wrong (nothing by default); with ``drift`` the app changes
    ``dataset`` in place, so its ground truth includes what was added.
    """
    prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
    stats = Stats(hold_until_in_flight, hold_timeout, on_request)
    faults = faults if faults is not None else Faults()
    sandbox = _Sandbox(dataset, token, no_drafts_token, latency, prefix, stats, faults)
    app = web.Application()
    app.on_shutdown.append(sandbox.injector.on_shutdown)
    # Every path reaches one handler, which parses raw_path itself: aiohttp's router sees the
    # decoded path, where an id's %2F has already become a separator.
    app.router.add_route("GET", "/{tail:.*}", sandbox.handle)
    with warnings.catch_warnings():
        # Plain string keys are the documented contract (app["stats"]); aiohttp prefers AppKey.
        warnings.simplefilter("ignore", web.NotAppKeyWarning)
        app["stats"], app["dataset"], app["prefix"], app["faults"] = stats, dataset, prefix, faults
    return app


@contextlib.asynccontextmanager
async def serve(app: web.Application, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve ``app`` while the block runs; yields the base URL (with the app's prefix)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        bound = runner.addresses[0][1]
        shown = f"[{host}]" if ":" in host else host
        yield f"http://{shown}:{bound}{app.get('prefix', '')}"
    finally:
        await runner.cleanup()


async def _serve_until_stopped(app: web.Application, host: str, port: int,
                               started: concurrent.futures.Future) -> None:
    stop = asyncio.Event()
    try:
        async with serve(app, host, port) as base_url:
            started.set_result((base_url, asyncio.get_running_loop(), stop))
            await stop.wait()
    except BaseException as exc:
        if started.done():
            raise
        started.set_exception(exc)  # the caller is waiting for the URL: hand it the failure


@contextlib.contextmanager
def serve_in_thread(dataset: Dataset, *, host: str = "127.0.0.1", port: int = 0,
                    **make_app_kwargs: Any) -> Iterator[tuple[str, Stats]]:
    """Serve from a background thread with its own loop, for synchronous callers (CliRunner).

    Yields ``(base_url, stats)``; stops the server and joins the thread on exit.
    """
    app = make_app(dataset, **make_app_kwargs)
    started: concurrent.futures.Future = concurrent.futures.Future()
    thread = threading.Thread(target=asyncio.run, name="refgraph-sandbox", daemon=True,
                              args=(_serve_until_stopped(app, host, port, started),))
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
