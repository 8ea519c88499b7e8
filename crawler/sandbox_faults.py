"""What goes wrong in the sandbox, for which request, and how it looks on the wire.

``Faults`` is pure configuration, so a test picks its faults the way a user of
``refgraph sandbox --fault-rate`` does. Which request gets which transient fault is a hash of
(seed, request, attempt), not a draw from shared random state: the schedule is the same
whatever order concurrent workers send their requests in.

>>> faults = Faults(rate=0.5, seed=3)
>>> [faults.fault_for("/api/v1/documents/1/incomingDocumentReferences", n) for n in (1, 2, 3)]
[None, 'reset', None]
>>> Faults(retry_after=2.0).retry_after_header, Faults(retry_after=0.25).retry_after_header
('2', '0.25')
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import math
from collections import Counter
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from aiohttp import web

from crawler.defaults import FAULT_KINDS
from crawler.model import Endpoint, Node, Reference
from crawler.sandbox_data import Dataset

__all__ = ["FAULT_KINDS", "Faults", "FaultInjector", "error_response", "insert_drift"]



@dataclass(frozen=True)
class Faults:
    """Which faults a sandbox injects. The default injects none.

    Transient faults hit only requests that would be a 200 page: a share ``rate`` of them, of
    ``kinds`` (repeat a kind to weight it), at most ``max_per_request`` times for the same raw
    path and query. "429"/"503" send ``retry_after`` seconds; "slow" waits ``slow`` seconds,
    then answers normally; "reset" drops the connection after the headers; "truncated" sends
    half the JSON. Every page of a node in ``failing`` (``"media:abc"``, ``"document:12"``)
    answers 500. Offsets from ``offset_window`` on answer 400. ``cursor=False`` sends null
    cursors. ``drift`` adds a first source to a list of documents after its first page.
    """

    rate: float = 0.0
    kinds: tuple[str, ...] = FAULT_KINDS
    seed: int = 0
    retry_after: float = 1.0
    slow: float = 2.0
    max_per_request: int = 2
    failing: frozenset[str] = frozenset()
    offset_window: int | None = None
    cursor: bool = True
    drift: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"fault rate must be between 0 and 1, got {self.rate}")
        kinds = tuple(self.kinds)
        if not kinds or not set(kinds) <= set(FAULT_KINDS):
            raise ValueError(f"fault kinds must be some of {', '.join(FAULT_KINDS)}, got {', '.join(kinds) or 'none'}")
        for name in ("retry_after", "slow"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                raise ValueError(f"{name} must be a finite number of seconds >= 0")
        if self.max_per_request < 0 or (self.offset_window is not None and self.offset_window < 0):
            raise ValueError("max_per_request and offset_window must be >= 0")
        # Frozen, so normalising means setting through object: equal configurations compare equal.
        object.__setattr__(self, "kinds", kinds)
        object.__setattr__(self, "failing", frozenset(str(Node.parse(str(n))) for n in self.failing))

    def fault_for(self, key: str, attempt: int) -> str | None:
        """The transient fault for the ``attempt``-th try (from 1) of request ``key``, or None.

        Attempts past ``max_per_request`` never fault, so enough retries always get through.
        """
        if attempt > self.max_per_request or self.rate <= 0:
            return None
        digest = hashlib.sha256(f"{self.seed}\n{attempt}\n{key}".encode()).digest()
        if int.from_bytes(digest[:8], "big") >= self.rate * 2**64:
            return None
        return self.kinds[int.from_bytes(digest[8:16], "big") % len(self.kinds)]

    @property
    def retry_after_header(self) -> str:
        """``Retry-After`` as sent: whole seconds as an integer, as most servers send it."""
        value = self.retry_after
        return str(int(value)) if value == int(value) else repr(value)

    def summary(self) -> str:
        """One line for people: what this configuration does.

        >>> Faults(rate=0.1, kinds=("429", "reset"), failing=frozenset({"media:x"}), cursor=False).summary()
        'rate 0.1 of 429,reset (seed 0, Retry-After 1 s, at most 2 per request); failing media:x; no cursors'
        """
        parts = []
        if self.rate:
            parts.append(f"rate {self.rate:g} of {','.join(self.kinds)} (seed {self.seed}, Retry-After "
                         f"{self.retry_after_header} s, at most {self.max_per_request} per request)")
        if self.failing:
            parts.append("failing " + ", ".join(sorted(self.failing)))
        if self.offset_window is not None:
            parts.append(f"offset window {self.offset_window}")
        parts += [text for on, text in ((not self.cursor, "no cursors"), (self.drift, "drift")) if on]
        return "; ".join(parts) or "none"

    def fails(self, node: Node) -> bool:
        return str(node) in self.failing

    def beyond_window(self, offset: int) -> bool:
        return self.offset_window is not None and offset >= self.offset_window


def error_response(status: int, details: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    """An error in the vendor's documented shape: ``{"status", "error", "error_details"}``."""
    body = {"status": status, "error": HTTPStatus(status).phrase, "error_details": details}
    return web.json_response(body, status=status, headers=headers)


class FaultInjector:
    """One app's faults at work: attempts per request, lists already drifted, faults counted.

    ``counts`` is the app's ``stats.faults``: one count per injected fault, keyed by kind
    (``"failing"``, ``"offset_window"`` and ``"drift"`` included).
    """

    def __init__(self, faults: Faults, attempts: Counter[str], counts: Counter[str]):
        self.faults, self.attempts, self.counts = faults, attempts, counts
        self.drifted: set[tuple[str, Node]] = set()
        # Set when the server shuts down, so a slow answer does not hold up the shutdown.
        self.stopping = asyncio.Event()

    async def on_shutdown(self, app: web.Application) -> None:
        self.stopping.set()

    def refusal(self, target: Node, offset: int | None) -> web.Response | None:
        """The permanent refusal of a page (``offset`` None when paged by cursor), or None."""
        if offset is not None and self.faults.beyond_window(offset):
            self.counts["offset_window"] += 1
            return error_response(400, {"offset": f"must be below {self.faults.offset_window}; "
                                                  "page further with after=<cursor>"})
        if self.faults.fails(target):
            self.counts["failing"] += 1
            return error_response(500, {"sandbox": f"{target} always fails"})
        return None

    async def draw(self, key: str) -> str | None:
        """Count one more attempt at ``key``; its fault to answer with, if any.

        A slow fault is served here: it waits, then the page is answered normally (None).
        """
        self.attempts[key] += 1
        kind = self.faults.fault_for(key, self.attempts[key])
        if kind is None:
            return None
        self.counts[kind] += 1
        if kind != "slow":
            return kind
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), self.faults.slow)
        return None

    def first_page_served(self, dataset: Dataset, endpoint: Endpoint, target: Node, limit: int) -> None:
        """Drift: change a list of more than one page once, right after its first page went out."""
        key = (endpoint.name, target)
        if not self.faults.drift or key in self.drifted or dataset.incoming_total(endpoint, target) <= limit:
            return
        self.drifted.add(key)
        if insert_drift(dataset, endpoint, target) is not None:
            self.counts["drift"] += 1

    async def respond(self, kind: str, request: web.Request, body: Any) -> web.StreamResponse:
        """The answer for ``kind`` in place of the 200 whose JSON would have been ``body``."""
        if kind in ("429", "503"):
            return error_response(int(kind), {"sandbox": f"injected {kind}; retry after "
                                               f"{self.faults.retry_after_header} s"},
                                  {"Retry-After": self.faults.retry_after_header})
        if kind == "500":
            return error_response(500, {"sandbox": "injected transient 500"})
        raw = json.dumps(body).encode()
        if kind == "truncated":
            # Complete HTTP (Content-Length matches what is sent), incomplete JSON.
            return web.Response(body=raw[:len(raw) // 2], content_type="application/json")
        if kind == "reset":
            return await _reset(request, len(raw))
        raise ValueError(f"no answer for fault {kind!r}")


async def _reset(request: web.Request, length: int) -> web.StreamResponse:
    """Send a 200's headers, then close the connection before any of the body.

    Closing before the status line would be invisible: aiohttp's client silently resends a GET
    whose connection drops before the headers. After them it raises ClientPayloadError.
    """
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.content_length = length
    await response.prepare(request)
    if request.transport is not None:
        request.transport.close()
    return response


def _free_document_id(nodes: set[Node], below: int) -> int | None:
    """The smallest unused document id under ``below``, counting from 1 (0 as a last resort)."""
    return next((n for n in itertools.chain(range(1, below), [0])
                 if n < below and Node("document", str(n)) not in nodes), None)


def insert_drift(dataset: Dataset, endpoint: Endpoint, target: Node) -> Node | None:
    """Add a new source that sorts first in ``endpoint``'s list for ``target``; return it.

    Only lists of documents drift: a new document can take a small id, while no media id is
    sure to sort before every other. None when no free id sorts first.
    """
    rows = dataset.incoming(endpoint, target, 0, 1)
    if endpoint.source_kind != "document" or not rows:
        return None
    new_id = _free_document_id(dataset.nodes, int(rows[0][0].id))
    if new_id is None:
        return None
    source = Node("document", str(new_id))
    ref_type = dataset.types.get(target, "image") if target.kind == "media" else "document"
    prop = "teaserImage" if target.kind == "media" else "related"
    dataset.nodes.add(source)
    dataset.types[source] = "article"
    if endpoint.origin == "publication":
        dataset.published.add(source)
    dataset.edges.append(Reference.make(source, target, endpoint.origin, {
        "id": target.id, "type": ref_type, "location": "metadata", "propertyName": prop}))
    dataset.changed()
    return source
