"""One target being paged through one endpoint: the sources so far, and where to go on.

Pure bookkeeping, no I/O: the client fetches, ``Paging.take`` decides whether that was the last
page and refuses pages that make no progress.
"""

from __future__ import annotations

from typing import NoReturn

from .api import NodeUnavailable, Page
from .model import Endpoint, FetchResult, Node, Reference

__all__ = ["Paging", "MAX_TARGET_BYTES"]

MAX_TARGET_BYTES = 64 << 20  # a hub with several hundred thousand referrers fits well within it


class Paging:
    """One target being paged through one endpoint: what arrived so far, and where to go on."""

    def __init__(self, node: Node, endpoint: Endpoint):
        self.node, self.endpoint = node, endpoint
        self.refs: dict[tuple, Reference] = {}
        self.sources: set[Node] = set()
        self.offset, self.cursor, self.pages, self.total = 0, None, 0, None
        self.size = 0  # bytes of reference JSON held for this target

    def result(self, status: str, error: str | None = None) -> FetchResult:
        return FetchResult(self.node, self.endpoint, status, list(self.refs.values()), len(self.sources),
                           self.pages, self.total, error)

    def fail(self, message: str) -> NoReturn:
        """Give up on this target, keeping what did arrive: its referrers are 'at least' these."""
        raise NodeUnavailable(message, self.result("failed", message))

    def take(self, page: Page, limit: int) -> bool:
        """Add a page; True when it was the last one (short or empty)."""
        self.pages += 1
        before = len(self.sources)
        for ref in page.references:
            if self.refs.setdefault((ref.source, ref.target, ref.ref_json), ref) is ref:
                self.size += len(ref.ref_json) + len(ref.source.id)
            self.sources.add(ref.source)
        if self.size > MAX_TARGET_BYTES:
            # A hostile or broken server listing new sources for ever must not take the
            # machine's memory: this target fails, keeping what it has.
            self.fail(f"over {MAX_TARGET_BYTES >> 20} MiB of references for one target after {self.pages} pages "
                      f"({len(self.sources)} referrers); refgraph holds no more for one target")
        self.total = page.total if page.total is not None else self.total
        reached_total = self.total is not None and len(self.sources) >= self.total
        short_but_more = 0 < page.entries < limit and self.total is not None and not reached_total
        if (page.entries < limit and not short_but_more) or (not page.cursor and reached_total):
            if not self.sources and self.total:
                self.fail(f"0 of {self.total} referrers: the server counts {self.total} but lists none")
            return True
        if len(self.sources) == before:
            self.fail(f"page {self.pages} repeated earlier sources only; paging made no progress")
        if page.cursor and page.cursor == self.cursor:
            self.fail(f"page {self.pages} returned the cursor it was asked with")
        self.offset += page.entries
        self.cursor = page.cursor
        return False
