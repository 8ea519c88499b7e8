"""Fetch every page of one (node, endpoint), retrying transient faults.

The only module that sends requests. Paging: ``after=<cursor>`` when the server gives a cursor,
else ``offset``; stop on a short or empty page; sources are deduplicated across pages because
offsets can repeat sources while content changes.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

import aiohttp
import yarl

from .api import (
    MAX_BODY_BYTES,
    MAX_PAGES,
    MAX_REDIRECTS,
    PAGE_LIMIT,
    ApiError,
    AuthRejected,
    FatalResponse,
    Forbidden,
    MalformedPage,
    NodeMissing,
    NodeUnavailable,
    VersionGone,
    page_url,
    parse_page,
    parse_search_page,
    search_url,
    target_url,
)
from .model import Endpoint, FetchResult, Node, Reference
from .paging import Paging
from .retry import DEFAULT_BACKOFF, DEFAULT_RETRIES, parse_retry_after, should_retry
from .throttle import Throttle

__all__ = ["Client"]

# What one attempt can end as, besides a page: a redirect to follow, or a transient fault
# (an HTTP status or a transport fault's name) with the server's Retry-After, if any.
Fault = tuple[int | str, float | None]
PUSHBACK_STATUSES = (429, 503)  # the server says it is overloaded: the whole crawl slows down
# Search-backed servers list no further than this offset; past it only a cursor goes on.
OFFSET_WINDOW = 10_000
MAX_RESTARTS = 3  # pagings started over because the content moved, before giving up


class Client:
    """Incoming references of one node through one endpoint, all pages, as a FetchResult.

    Counts into ``stats`` (slash keys: ``requests/total``, ``requests/status/503``,
    ``retry/count``); the caller reads them, they never steer anything.
    """

    def __init__(self, session: aiohttp.ClientSession, base_url: str, version: str, *,
                 stats: Counter | None = None, retries: int = DEFAULT_RETRIES,
                 backoff: float = DEFAULT_BACKOFF, limit: int = PAGE_LIMIT,
                 rng: random.Random | None = None, secret: str | None = None, max_pages: int = MAX_PAGES,
                 throttle: Throttle | None = None, on_event: Callable[..., None] | None = None):
        self.session = session
        self.base_url = base_url
        self.version = version
        self.stats = stats if stats is not None else Counter()
        self.retries = retries
        self.backoff = backoff
        self.limit = limit
        self.max_pages = max_pages
        self.throttle = throttle or Throttle(concurrency=1_000_000, stats=self.stats)
        self.on_event = on_event or (lambda kind, **fields: None)
        self.rng = rng or random.Random()
        self._origin = yarl.URL(base_url).origin()
        # A server that echoes the token back must not get it into errors or the database.
        self._secret_text = secret or None
        self._secret = secret.encode() if secret else None

    async def incoming(self, endpoint: Endpoint, node: Node) -> FetchResult:
        """All referrers of ``node`` through ``endpoint``.

        Raises NodeMissing (404), NodeUnavailable (with the pages that did arrive), or one of
        the errors that stop a crawl (AuthRejected, VersionGone, Forbidden, FatalResponse).
        """
        try:
            return self._scrub_result(await self._incoming(endpoint, node))
        except ApiError as exc:
            raise self._scrub_error(exc) from None

    async def _incoming(self, endpoint: Endpoint, node: Node) -> FetchResult:
        for _ in range(MAX_RESTARTS):
            paging = Paging(node, endpoint)
            if await self._page_through(paging):
                return paging.result("complete")
            self.stats["paging/restart"] += 1
        paging.fail(f"{len(paging.sources)} of {paging.total} referrers: the list kept changing or falling short "
                    f"of the server's own total while being paged ({MAX_RESTARTS} tries)")

    def _scrub(self, text: str) -> str:
        """The token out of any text a server could have put it in (decoded JSON, paths, hosts)."""
        secret = self._secret_text
        return text.replace(secret, "[redacted]") if secret and secret in text else text

    def _scrub_result(self, result: FetchResult) -> FetchResult:
        secret = self._secret_text
        if secret and result.references and any(secret in r.ref_json or secret in r.source.id for r in result.references):
            result.references = [Reference(Node(r.source.kind, self._scrub(r.source.id)), r.target, r.origin,
                                           self._scrub(r.ref_json)) for r in result.references]
        result.error = self._scrub(result.error) if result.error else result.error
        return result

    def _scrub_error(self, exc: ApiError) -> ApiError:
        exc.args = tuple(self._scrub(str(a)) for a in exc.args)
        if isinstance(exc, NodeUnavailable) and exc.partial is not None:
            exc.partial = self._scrub_result(exc.partial)
        return exc

    async def published_documents(self) -> tuple[list[Node], str | None]:
        """Every published document, from the publications search; and a warning when the list
        cannot be complete (a server without cursor stops at offset 10000)."""
        found: dict[Node, None] = {}
        offset, cursor, total = 0, None, None
        while True:
            if cursor is None and offset >= OFFSET_WINDOW and (total is None or len(found) < total):
                return list(found), (f"the publications search gives no cursor and stops at offset {OFFSET_WINDOW}: "
                                     f"{len(found)} of {total if total is not None else 'more'} published documents "
                                     "listed; the rest are not seeds of this crawl")
            query = {"fields": "id", "limit": self.limit, **({"after": cursor} if cursor else {"offset": offset})}
            try:
                page = await self._fetch_page(search_url(self.base_url, self.version, query), None, None,
                                              parse=parse_search_page)
            except (NodeMissing, NodeUnavailable) as exc:
                raise FatalResponse(self._scrub(f"could not list the published documents: {exc}")) from None
            except ApiError as exc:
                raise self._scrub_error(exc) from None
            total = page.total if page.total is not None else total
            before = len(found)
            found.update(dict.fromkeys(page.sources))
            if page.entries < self.limit or (not page.cursor and total is not None and len(found) >= total):
                return list(found), None
            if len(found) == before:
                return list(found), (f"the publications search repeated itself at offset {offset}: "
                                     f"{len(found)} published documents listed, perhaps not all")
            offset, cursor = offset + page.entries, page.cursor

    async def _page_through(self, p: Paging) -> bool:
        """Fetch every page into ``p``; False when the content moved under offset paging and the
        target must be paged again from the start."""
        target = target_url(self.base_url, self.version, p.endpoint, p.node)
        while True:
            if p.pages >= self.max_pages:
                p.fail(f"gave up after {p.pages} pages ({len(p.sources)} referrers): the server keeps listing new sources")
            if p.cursor is None and p.offset >= OFFSET_WINDOW:
                if p.total is not None and len(p.sources) >= p.total:
                    return True
                p.fail(f"{len(p.sources)} of {p.total if p.total is not None else 'more'} referrers: the server gives "
                       f"no cursor and does not page past offset {OFFSET_WINDOW}")
            url = page_url(target, self.limit, p.offset, p.cursor)
            try:
                page = await self._fetch_page(url, p.endpoint, p.node, first=p.pages == 0)
            except NodeUnavailable as exc:
                p.fail(str(exc))
            if p.cursor is None and None not in (p.total, page.total) and page.total != p.total:
                return False  # offsets shifted: sources would be skipped or repeated
            if p.take(page, self.limit):
                # Fewer sources than the server's own count: a smaller page size than asked for,
                # or content changed under a cursor. Page again; never call it complete.
                return p.total is None or len(p.sources) >= p.total

    async def _fetch_page(self, url: yarl.URL, endpoint: Endpoint | None, node: Node | None, first: bool = True,
                          parse: Callable[[Any], Any] | None = None) -> Any:
        attempt, redirects = 0, 0
        while True:
            try:
                outcome = await self._attempt(url, endpoint, node, parse)
            except NodeMissing as exc:
                if first:
                    raise
                # It answered a moment ago: deleted while being paged, or a flaky route. Either
                # way the referrers are not all known.
                raise NodeUnavailable(f"{exc} on a later page") from None
            if not isinstance(outcome, tuple | yarl.URL):
                return outcome
            if isinstance(outcome, yarl.URL):
                redirects += 1
                if redirects > MAX_REDIRECTS:
                    raise NodeUnavailable(f"more than {MAX_REDIRECTS} redirects from {url.path}")
                url = outcome
                continue
            attempt += 1
            fault, retry_after = outcome
            delay = should_retry(fault, attempt, self.retries, retry_after, self.backoff, self.rng.random())
            if delay is None:
                raise NodeUnavailable(f"{_describe(fault)} after {attempt} attempt(s)")
            self.stats["retry/count"] += 1
            self.on_event("retry", node=str(node), endpoint=endpoint.name, fault=_describe(fault), attempt=attempt,
                          delay=round(delay, 3))
            if fault in PUSHBACK_STATUSES:
                self.throttle.push_back()  # the whole crawl slows down; this request waits as told
            await asyncio.sleep(delay)

    async def _attempt(self, url: yarl.URL, endpoint: Endpoint | None, node: Node | None,
                       parse: Callable[[Any], Any] | None) -> Any:
        await self.throttle.acquire()
        outcome: Any = None
        try:
            outcome = await self._request(url, endpoint, node, parse)
            return outcome
        finally:
            self.throttle.release(ok=not isinstance(outcome, tuple | type(None)))

    async def _request(self, url: yarl.URL, endpoint: Endpoint | None, node: Node | None,
                       parse: Callable[[Any], Any] | None) -> Any:
        try:
            async with self.session.get(url, allow_redirects=False) as resp:
                self.stats["requests/total"] += 1
                self.stats[f"requests/status/{resp.status}"] += 1
                if resp.status == 200:
                    return await self._read_page(resp, parse or (lambda body: parse_page(body, endpoint, node)))
                if resp.status in (301, 302, 303, 307, 308):
                    return self._redirect_target(resp)
                await self._raise_permanent(resp, endpoint, node)
                return resp.status, parse_retry_after(resp.headers.get("Retry-After"))
        except aiohttp.ClientConnectorCertificateError as exc:
            raise FatalResponse(f"TLS certificate of {url.host} could not be verified ({exc.certificate_error}); "
                                "pass --insecure only if you trust this network") from None
        except TimeoutError:
            self.stats["faults/timeout"] += 1
            return "timeout", None
        except aiohttp.ClientPayloadError:
            self.stats["faults/truncated"] += 1
            return "truncated body", None
        except aiohttp.ClientError as exc:
            self.stats["faults/connection"] += 1
            return f"connection error ({type(exc).__name__})", None

    async def _read_page(self, resp: aiohttp.ClientResponse, parse: Callable[[Any], Any]) -> Any:
        raw = self._redact(await _read_capped(resp))
        try:
            body = _DECODER.decode(raw.decode(json.detect_encoding(raw), "surrogatepass"))  # as json.loads does
            return parse(body)
        except MalformedPage as exc:
            raise NodeUnavailable(f"unexpected answer from {resp.url.path}: {exc}") from None
        except RecursionError:
            raise NodeUnavailable(f"unexpected answer from {resp.url.path}: JSON nested too deeply") from None
        except ValueError:  # truncated or garbled in transit: worth another try
            self.stats["faults/malformed"] += 1
            return "malformed JSON", None

    def _redact(self, data: bytes) -> bytes:
        if self._secret and self._secret in data:
            return data.replace(self._secret, b"[redacted]")
        return data

    def _redirect_target(self, resp: aiohttp.ClientResponse) -> yarl.URL:
        location = resp.headers.get("Location", "")
        try:
            target = resp.url.join(yarl.URL(location, encoded=True))
            origin, credentials = target.origin(), target.user or target.password
        except (ValueError, TypeError):  # yarl parses lazily: a bad port shows up only here
            raise NodeUnavailable(f"HTTP {resp.status} with an unusable Location header") from None
        if not location or credentials:
            raise NodeUnavailable(f"HTTP {resp.status} with an unusable Location header")
        if origin != self._origin:
            raise FatalResponse(f"the server redirected to {target.origin()}; refgraph does not send "
                                f"the token to another host (use that as --base-url if you trust it)")
        return target

    async def _raise_permanent(self, resp: aiohttp.ClientResponse, endpoint: Endpoint | None, node: Node | None) -> None:
        status = resp.status
        if status == 401:
            raise AuthRejected(f"token rejected (expired or wrong): HTTP 401 from {resp.url.host}")
        if status == 403:
            raise Forbidden(endpoint, f"HTTP 403 on {_where(endpoint, resp)}: the token's scope does not allow it")
        if status == 404:
            raise NodeMissing(f"{node or resp.url.path} not found (HTTP 404 on {_where(endpoint, resp)})")
        if status == 410:
            raise VersionGone(f"API version {self.version} is gone on this server; try a newer --api-version")
        if status not in (429, 500, 502, 503, 504):
            head = self._redact(await resp.content.read(200)).decode("utf-8", "replace")
            raise NodeUnavailable(f"HTTP {status} from {resp.url.path}: {head!r}")


async def _read_capped(resp: aiohttp.ClientResponse) -> bytes:
    """The body, decompressed, refusing more than MAX_BODY_BYTES (Content-Length counts the
    compressed bytes, so only counting what arrives protects against a gzip bomb)."""
    chunks, size, declared = [], 0, resp.content_length or 0  # read once: aiohttp parses the header per access
    async for chunk in resp.content.iter_chunked(1 << 16):
        size += len(chunk)
        chunks.append(chunk)
        if size > MAX_BODY_BYTES or declared > MAX_BODY_BYTES:
            head = chunks[0][:60].decode("utf-8", "replace")
            raise NodeUnavailable(f"answer from {resp.url.path} is over the {MAX_BODY_BYTES}-byte cap; "
                                  f"it begins {head!r}")
    return b"".join(chunks)


def _reject_constant(name: str):
    raise MalformedPage(f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise MalformedPage(f"number {text[:40]} is out of range")
    return value


# One decoder for every answer: json.loads with hooks would build a new one per page.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)


def _where(endpoint: Endpoint | None, resp: aiohttp.ClientResponse) -> str:
    return endpoint.name if endpoint is not None else resp.url.path


def _describe(fault: int | str) -> str:
    return f"HTTP {fault}" if isinstance(fault, int) else fault
