"""The Livingdocs Public API client: URLs, paging, parsing both body shapes, retries.

Knows HTTP; knows no queue and no SQL. Transient faults never leave this module: they are
retried, and what still fails becomes one of the errors below, named for what the caller does.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import yarl

from .defaults import DEFAULT_API_VERSION
from .model import Endpoint, FetchResult, Node, Reference

__all__ = [
    "DEFAULT_API_VERSION", "PAGE_LIMIT", "ApiError", "AuthRejected", "VersionGone", "Forbidden",
    "FatalResponse", "NodeMissing", "NodeUnavailable", "MalformedPage", "Page", "parse_page",
    "endpoint_url", "target_url", "page_url", "validate_base_url", "open_session", "search_url", "parse_search_page",
]

PAGE_LIMIT = 100
DEFAULT_TIMEOUT = 30.0
TOTAL_TIMEOUT_FACTOR = 10  # one request may take at most this many --timeout in all
MAX_BODY_BYTES = 32 * 1024 * 1024  # a hostile or broken server cannot make us hold more
MAX_REDIRECTS = 3
# One target's pages at most (a million referrers): a server that never stops listing new
# sources ends as a failed node, not as a crawl that never ends.
MAX_PAGES = 10_000


class ApiError(Exception):
    """Base of every error this module raises. Messages never contain the token."""


class AuthRejected(ApiError):
    """401: the token is wrong or expired. The crawl stops."""


class VersionGone(ApiError):
    """410: the server no longer serves this API version. The crawl stops."""


class Forbidden(ApiError):
    """403: the token's scope does not cover this endpoint."""

    def __init__(self, endpoint: Endpoint, message: str):
        super().__init__(message)
        self.endpoint = endpoint


class FatalResponse(ApiError):
    """An answer that no retry can fix and that would be wrong for every node (e.g. a redirect
    to another host, where the token must not go). The crawl stops."""


class NodeMissing(ApiError):
    """404: the node does not exist (deleted upstream)."""


class NodeUnavailable(ApiError):
    """This (node, endpoint) could not be fetched completely; ``partial`` holds what did arrive."""

    def __init__(self, message: str, partial: FetchResult | None = None):
        super().__init__(message)
        self.partial = partial


class MalformedPage(ValueError):
    """A 200 answer whose JSON is not an incoming-references page."""


@dataclass
class Page:
    references: list[Reference]
    entries: int  # sources listed on the page, before deduplication: decides "short page"
    cursor: str | None
    total: int | None
    sources: list[Node] = field(default_factory=list)  # a search page's documents


def _preview(value: Any, limit: int = 120) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text[:limit] + ("..." if len(text) > limit else "")


def _unwrap(body: Any) -> tuple[list, int | None, str | None]:
    """(entries, total, cursor) of either body shape: a bare array (up to 2025-11) or
    ``{"total", "cursor", "results"}`` (from 2026-01). The shape is read from the body."""
    if isinstance(body, list):
        return body, None, None
    if isinstance(body, dict) and isinstance(body.get("results"), list):
        total = body.get("total") if type(body.get("total")) is int else None
        cursor = body.get("cursor") if isinstance(body.get("cursor"), str) else None
        return body["results"], total, cursor
    raise MalformedPage(f"expected a JSON array or an object with 'results', got {_preview(body)}")


def parse_page(body: Any, endpoint: Endpoint, target: Node) -> Page:
    """Parse one answer of ``endpoint`` for ``target`` into references, in either body shape.

    Up to 2025-11 the body is a bare array of sources; from 2026-01 it is
    ``{"total", "cursor", "results"}``. The shape is read from the body, not the version.
    """
    entries, total, cursor = _unwrap(body)
    references: list[Reference] = []
    for index, entry in enumerate(entries):
        references.extend(_parse_source(entry, index, endpoint, target))
    return Page(references, len(entries), cursor or None, total)


def _parse_source(entry: Any, index: int, endpoint: Endpoint, target: Node) -> list[Reference]:
    if not isinstance(entry, dict) or "id" not in entry:
        raise MalformedPage(f"source #{index} is not an object with an id: {_preview(entry)}")
    try:
        source = Node.of(endpoint.source_kind, entry["id"])
    except ValueError as exc:
        raise MalformedPage(f"source #{index}: {exc}") from None
    refs = entry.get("references")
    if refs is None or refs == []:
        # Listed as a referrer without details: it still references the target.
        return [Reference.make(source, target, endpoint.origin, {})]
    if not isinstance(refs, list) or not all(isinstance(r, dict) for r in refs):
        raise MalformedPage(f"source {source}: references is not a list of objects: {_preview(refs)}")
    out = []
    for ref in refs:
        for ref_target in _targets_of(ref, target):
            out.append(Reference.make(source, ref_target, endpoint.origin, ref))
    return out


def _targets_of(ref: dict, target: Node) -> list[Node]:
    """The nodes one reference object points at.

    The endpoint lists references *to the target*, so the target is always one of them; the
    reference's own ``id`` stays in its JSON. Before release 2023-09 a reference of type
    ``documents`` carried an ``ids`` array: each id in it is an edge of its own.
    """
    ids = ref.get("ids")
    if ref.get("type") != "documents" or not isinstance(ids, list):
        return [target]
    try:
        nodes = [Node.of(target.kind, raw) for raw in ids]
    except ValueError as exc:
        raise MalformedPage(f"reference ids: {exc}") from None
    return list(dict.fromkeys([target, *nodes]))


def validate_base_url(text: str) -> str:
    """The base URL without a trailing slash; ValueError says what is wrong.

    >>> validate_base_url("https://edit.example.com/proxy/api/")
    'https://edit.example.com/proxy/api'
    """
    try:
        url = yarl.URL(text.strip())
        shown = repr(str(url.with_user(None)) if url.user or url.password else text)  # never echo a password
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a URL ({exc})") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"not an http(s) URL with a host: {shown}")
    if url.user or url.password:
        raise ValueError(f"credentials do not belong in the URL (the token comes from $LIVINGDOCS_TOKEN): {shown}")
    if url.query_string or url.fragment:
        raise ValueError(f"base URL must not carry a query or fragment: {shown}")
    return str(url).rstrip("/")


# The characters quote() never encodes (RFC 3986 "unreserved").
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]+")


def _segment(text: str) -> str:
    """One path segment that no id can escape: '/' is encoded, and '.' and '..' are too,
    because servers and proxies resolve them as 'here' and 'up'.

    >>> _segment("a/b c"), _segment(".."), _segment("x.y-z_1~")
    ('a%2Fb%20c', '%2E%2E', 'x.y-z_1~')
    """
    if _UNRESERVED.fullmatch(text) and text.strip("."):
        return text  # most ids: nothing quote() would change, found for a fraction of its cost
    quoted = urllib.parse.quote(text, safe="")
    return quoted.replace(".", "%2E") if set(text) == {"."} else quoted


def endpoint_url(base_url: str, version: str, endpoint: Endpoint, node: Node,
                 query: dict[str, Any]) -> yarl.URL:
    """The URL of one page; every id and query value percent-encoded.

    >>> from crawler.model import ENDPOINTS
    >>> str(endpoint_url("http://h/p", "2026-01", ENDPOINTS[0], Node("media", "a/b c"), {"after": "x+/="}))
    'http://h/p/api/2026-01/mediaLibrary/a%2Fb%20c/incomingMediaReferences?after=x%2B%2F%3D'
    """
    return yarl.URL(target_url(base_url, version, endpoint, node) + _query_string(query), encoded=True)


def target_url(base_url: str, version: str, endpoint: Endpoint, node: Node) -> str:
    """The URL of one target's endpoint, percent-encoded, without a query: what every page of
    that target shares, so a crawl encodes it once per target rather than once per page."""
    return "/".join((base_url, "api", _segment(version), endpoint.collection, _segment(node.id), endpoint.resource))


def page_url(target: str, limit: int, offset: int, cursor: str | None = None) -> yarl.URL:
    """One page of ``target_url``: what endpoint_url gives for ``{"limit", "after"}`` with a cursor,
    else ``{"limit", "offset"}``, for less (it runs for every page of a crawl).

    >>> from crawler.model import ENDPOINTS
    >>> target = target_url("http://h", "2026-01", ENDPOINTS[0], Node("media", "a"))
    >>> str(page_url(target, 100, 200)), page_url(target, 100, 0, "x+/=").raw_query_string
    ('http://h/api/2026-01/mediaLibrary/a/incomingMediaReferences?limit=100&offset=200', 'limit=100&after=x%2B%2F%3D')
    """
    # Integers need no percent-encoding: only the cursor, text the server chose, does.
    query = f"?limit={limit:d}&after={urllib.parse.quote(cursor, safe='')}" if cursor else f"?limit={limit:d}&offset={offset:d}"
    return yarl.URL(target + query, encoded=True)


def _query_string(query: dict[str, Any]) -> str:
    """``?k=v&...`` with every key and value percent-encoded, or "" (urlencode's output, for
    less: this runs for every page of a crawl)."""
    quote = urllib.parse.quote
    return "?" + "&".join(f"{quote(k, safe='')}={quote(str(v), safe='')}" for k, v in query.items()) if query else ""


def open_session(token: str, *, insecure: bool = False, timeout: float = DEFAULT_TIMEOUT,
                 concurrency: int = 100) -> aiohttp.ClientSession:
    """The one session of a crawl: bearer token, TLS verified unless ``insecure``."""
    # ssl=True is aiohttp's own verifying context (the system CAs), built once when it is
    # imported: a context of our own would load the CA store again at every start.
    connector = aiohttp.TCPConnector(ssl=not insecure, limit=max(concurrency, 1))
    return aiohttp.ClientSession(
        connector=connector,
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        # sock_read bounds the wait for each byte; total stops a server that drips bytes for ever.
        timeout=aiohttp.ClientTimeout(total=timeout * TOTAL_TIMEOUT_FACTOR, connect=timeout, sock_read=timeout),
        raise_for_status=False,
        trust_env=False,
    )


def search_url(base_url: str, version: str, query: dict[str, Any]) -> yarl.URL:
    """The publications search: every published document, a page at a time.

    >>> str(search_url("http://h", "2026-01", {"fields": "id", "limit": 100}))
    'http://h/api/2026-01/publications/search?fields=id&limit=100'
    """
    return yarl.URL(f"{base_url}/api/{_segment(version)}/publications/search" + _query_string(query), encoded=True)


def parse_search_page(body: Any) -> Page:
    """A page of the publications search as document nodes (in ``Page.references``' place, the
    ids go in ``sources``); either body shape, each result ``{"id": N}`` or with
    ``systemdata.documentId``.

    >>> parse_search_page({"results": [{"id": 7}, {"systemdata": {"documentId": "8"}}], "total": 2}).sources
    [Node(kind='document', id='7'), Node(kind='document', id='8')]
    """
    entries, total, cursor = _unwrap(body)
    nodes = []
    for index, entry in enumerate(entries):
        raw = entry.get("id", (entry.get("systemdata") or {}).get("documentId")) if isinstance(entry, dict) else None
        try:
            nodes.append(Node.of("document", raw))
        except ValueError as exc:
            raise MalformedPage(f"publication #{index}: {exc}") from None
    return Page([], len(entries), cursor or None, total, sources=nodes)
