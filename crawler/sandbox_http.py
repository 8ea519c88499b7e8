"""The sandbox's wire format: versions, paging parameters, cursors, auth, request stats, serving.

Nothing here knows the dataset; ``crawler.sandbox`` builds the API from these parts. Split
from it so each stays one screenful of ideas.

>>> decode_cursor(encode_cursor(Node("media", "a/b c")))
Node(kind='media', id='a/b c')
>>> sorted(set(encode_cursor(Node("document", "200"))) & set("+/="))
['+', '/', '=']
>>> envelope("2025-11", [{"id": 1}], total=3, last=Node("document", "1"), more=True)
[{'id': 1}]
>>> envelope("2026-01", [{"id": 1}], total=1, last=Node("document", "1"), more=False)
{'total': 1, 'cursor': None, 'results': [{'id': 1}]}
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import concurrent.futures
import contextlib
import struct
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from crawler.model import Node
from crawler.sandbox_faults import error_response

__all__ = [
    "VERSIONS", "ENVELOPE_VERSIONS", "DEFAULT_LIMIT", "MAX_LIMIT", "DEFAULT_HOLD_TIMEOUT",
    "ERROR_401", "ERROR_403", "Stats", "encode_cursor", "decode_cursor", "not_found",
    "decode_segments", "bearer_token", "page_params", "bad_parameter", "envelope", "serve",
    "serve_until_stopped",
]

VERSIONS = ("v1", "2025-03", "2025-05", "2025-07", "2025-09", "2025-11", "2026-01")
# From 2026-01 the body is {"total", "cursor", "results"}; before, a bare array of sources.
ENVELOPE_VERSIONS = frozenset({"2026-01"})
DEFAULT_LIMIT = MAX_LIMIT = 100
# Held requests give up waiting after this long, so a test that miscounts hangs 5 s, not forever.
DEFAULT_HOLD_TIMEOUT = 5.0

# The vendor's documented error bodies, verbatim.
ERROR_401 = {"status": 401, "error": "Unauthorized",
             "error_details": {"access_token": "The access token expired."}}
ERROR_403 = {"status": 403, "error": "Forbidden",
             "error_details": {"access_token": "The request requires higher privileges"}}

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
    answered instead is not); a page of ``publications/search`` has no target, so it is logged
    as ``("publications/search", None, query)``. With ``hold_until_in_flight=N`` every request
    waits until N are in flight at once; then all proceed, and later ones are no longer held.
    Admin requests (``POST /_sandbox/mutate``) are not API traffic and are not counted.
    """

    def __init__(self, hold_until_in_flight: int | None = None,
                 hold_timeout: float = DEFAULT_HOLD_TIMEOUT, on_request: Callable[[], None] | None = None):
        self.on_request = on_request  # called from the server's thread as each request arrives
        self.in_flight = 0
        self.max_in_flight = 0
        self.requests = 0
        self.statuses: Counter[int] = Counter()
        self.log: list[tuple[str, Node | None, dict[str, str]]] = []
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


def bad_parameter(exc: ValueError) -> web.Response:
    """400 naming the parameter: ``ValueError("limit: must be ...")`` -> ``{"limit": "must be ..."}``."""
    name, _, why = str(exc).partition(": ")
    return error_response(400, {name: why})


def not_found(path: str) -> web.Response:
    return error_response(404, {"url": path})


def decode_segments(raw: list[str]) -> list[str] | None:
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


def bearer_token(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" and token else None


def page_params(query: dict[str, str], version: str, source_kind: str) -> tuple[int, Node | None, int]:
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


def envelope(version: str, results: list, *, total: int, last: Node | None, more: bool) -> Any:
    """The body of a list page in ``version``'s shape; a cursor after ``last`` only if ``more``.

    No cursor once the last item has been served: the client's signal to stop.
    """
    if version not in ENVELOPE_VERSIONS:
        return results
    cursor = encode_cursor(last) if more and last is not None else None
    return {"total": total, "cursor": cursor, "results": results}


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


async def serve_until_stopped(app: web.Application, host: str, port: int,
                              started: concurrent.futures.Future) -> None:
    """Serve ``app`` until the event handed out through ``started`` is set (serve_in_thread)."""
    stop = asyncio.Event()
    try:
        async with serve(app, host, port) as base_url:
            started.set_result((base_url, asyncio.get_running_loop(), stop))
            await stop.wait()
    except BaseException as exc:
        if started.done():
            raise
        started.set_exception(exc)  # the caller is waiting for the URL: hand it the failure
