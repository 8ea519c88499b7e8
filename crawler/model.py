"""The nouns of refgraph: nodes, endpoints, references. Pure; no I/O.

>>> Node.parse("media:9fKagDCiN6sb")
Node(kind='media', id='9fKagDCiN6sb')
>>> str(Node.of("document", "007"))
'document:7'
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "KINDS", "ORIGINS", "ORIGIN_OPTIONS", "STATUSES", "Node", "Endpoint", "ENDPOINTS",
    "Reference", "FetchResult", "endpoints_for", "parse_origins", "canonical_json",
]

KINDS = ("media", "document")
ORIGINS = ("publication", "draft", "media")
# The words users type in --endpoints, and the origin each one enables.
ORIGIN_OPTIONS = {"media": "media", "publications": "publication", "drafts": "draft",
                  "publication": "publication", "draft": "draft"}
# Per (node, endpoint) crawl status. "missing" is the API's 404: deleted upstream.
STATUSES = ("complete", "failed", "missing")


def _short(text: str, limit: int = 80) -> str:
    """repr() of text, cut short: an error message names an input, it does not repeat it whole."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text)} characters)"


def _has_control_chars(text: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in text)


def normalize_id(kind: str, raw: Any) -> str:
    """The canonical text of an id as it arrives in a JSON body or on a command line.

    Document ids are integers, so ``"1"``, ``"01"`` and ``1`` are one document; media ids are
    strings, kept exactly (an integer media id becomes its decimal text).

    >>> normalize_id("document", "01"), normalize_id("media", 5)
    ('1', '5')
    """
    if isinstance(raw, bool) or raw is None:
        raise ValueError(f"{kind} id must be {'an integer' if kind == 'document' else 'a string'}, got {raw!r}")
    if kind == "document":
        if isinstance(raw, int) and raw >= 0:
            return str(raw)
        if isinstance(raw, str) and raw.isascii() and raw.isdigit():
            return str(int(raw))
        raise ValueError(f"document ids are non-negative integers, got {_short(repr(raw))}")
    if kind == "media":
        if isinstance(raw, int):
            return str(raw)
        if isinstance(raw, str) and raw:
            return raw
        raise ValueError(f"media ids are non-empty strings, got {_short(repr(raw))}")
    raise ValueError(f"unknown kind {kind!r} (expected media or document)")


@dataclass(frozen=True, order=True)
class Node:
    """A document or a media-library entry. Identity is (kind, id)."""

    kind: str
    id: str

    @classmethod
    def of(cls, kind: str, raw_id: Any) -> Node:
        return cls(kind, normalize_id(kind, raw_id))

    @classmethod
    def parse(cls, text: str) -> Node:
        """Parse ``media:ID`` or ``document:ID``; ValueError says what is wrong.

        >>> Node.parse("media:a/b c")
        Node(kind='media', id='a/b c')
        >>> Node.parse("image:1")
        Traceback (most recent call last):
        ...
        ValueError: unknown kind 'image' in 'image:1' (expected media:ID or document:ID)
        """
        kind, sep, raw = text.partition(":")
        if not sep:
            raise ValueError(f"expected media:ID or document:ID, got {_short(text)}")
        if kind not in KINDS:
            raise ValueError(f"unknown kind {_short(kind)} in {_short(text)} (expected media:ID or document:ID)")
        if not raw:
            raise ValueError(f"empty id in {_short(text)}")
        if _has_control_chars(raw):
            raise ValueError(f"control character in id {_short(raw)}")
        if raw != raw.strip():
            raise ValueError(f"id {_short(raw)} starts or ends with a space")
        return cls.of(kind, raw)

    def __str__(self) -> str:
        return f"{self.kind}:{self.id}"

    def sort_key(self) -> tuple:
        """Documents by number, media by text."""
        return (self.kind, int(self.id) if self.kind == "document" else 0, self.id)


@dataclass(frozen=True)
class Endpoint:
    """One incoming-references endpoint: which targets it answers for and what sources it lists."""

    name: str
    collection: str  # the path segment before the id: mediaLibrary, documents or drafts
    resource: str  # incomingMediaReferences or incomingDocumentReferences
    target_kind: str
    source_kind: str
    origin: str


ENDPOINTS = (
    Endpoint("mediaLibrary/incomingMediaReferences", "mediaLibrary", "incomingMediaReferences",
             "media", "media", "media"),
    Endpoint("mediaLibrary/incomingDocumentReferences", "mediaLibrary", "incomingDocumentReferences",
             "media", "document", "publication"),
    Endpoint("documents/incomingMediaReferences", "documents", "incomingMediaReferences",
             "document", "media", "media"),
    Endpoint("documents/incomingDocumentReferences", "documents", "incomingDocumentReferences",
             "document", "document", "publication"),
    Endpoint("drafts/incomingDocumentReferences", "drafts", "incomingDocumentReferences",
             "document", "document", "draft"),
)
ENDPOINTS_BY_NAME = {e.name: e for e in ENDPOINTS}


def parse_origins(text: str) -> frozenset[str]:
    """``"media,publications"`` -> the origins it enables; ValueError names a bad word.

    >>> sorted(parse_origins("drafts, publications"))
    ['draft', 'publication']
    """
    words = [w.strip() for w in text.split(",") if w.strip()]
    if not words:
        raise ValueError("no endpoints given (choose from media, publications, drafts)")
    bad = [w for w in words if w not in ORIGIN_OPTIONS]
    if bad:
        raise ValueError(f"unknown origin {bad[0]!r} (choose from media, publications, drafts)")
    return frozenset(ORIGIN_OPTIONS[w] for w in words)


def endpoints_for(kind: str, origins: frozenset[str] | set[str] = frozenset(ORIGINS)) -> tuple[Endpoint, ...]:
    """The endpoints that list referrers of a node of this kind, limited to the given origins.

    >>> [e.name for e in endpoints_for("media")]
    ['mediaLibrary/incomingMediaReferences', 'mediaLibrary/incomingDocumentReferences']
    """
    return tuple(e for e in ENDPOINTS if e.target_kind == kind and e.origin in origins)


def canonical_json(value: Any) -> str:
    """Byte-stable JSON: the same reference always has the same text (and so the same edge)."""
    return _CANONICAL.encode(value)


# One encoder for every reference: json.dumps with options builds a new one per call.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


_FROM_JSON: Any = object()  # Reference's ref_type and location when not given: read from ref_json


def _text_field(fields: Mapping[str, Any], name: str) -> str | None:
    value = fields.get(name)
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class Reference:
    """One edge: ``source`` references ``target`` at one place, seen through one origin.

    ``ref_json`` is the reference object exactly as the API gave it (canonical JSON), so fields
    refgraph does not know, and unknown ``location`` values, are kept. ``ref_type`` and
    ``location`` are its ``type`` and ``location`` when they are strings; ``make`` takes them
    from the fields it already holds, so the crawl never parses a reference twice.

    >>> ref = Reference(Node("document", "1"), Node("media", "x"), "publication", '{"location":7,"type":"image"}')
    >>> ref.ref_type, ref.location, ref == Reference.make(ref.source, ref.target, ref.origin, ref.fields)
    ('image', None, True)
    """

    source: Node
    target: Node
    origin: str
    ref_json: str
    ref_type: str | None = field(default=_FROM_JSON, compare=False, repr=False)
    location: str | None = field(default=_FROM_JSON, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.ref_type is _FROM_JSON or self.location is _FROM_JSON:
            fields = self.fields
            object.__setattr__(self, "ref_type", _text_field(fields, "type"))
            object.__setattr__(self, "location", _text_field(fields, "location"))

    @property
    def fields(self) -> dict[str, Any]:
        return json.loads(self.ref_json)

    @classmethod
    def make(cls, source: Node, target: Node, origin: str, fields: Mapping[str, Any]) -> Reference:
        return cls(source, target, origin, canonical_json(fields if isinstance(fields, dict) else dict(fields)),
                   _text_field(fields, "type"), _text_field(fields, "location"))


@dataclass
class FetchResult:
    """What one (node, endpoint) fetch ended as; the store saves it in one transaction.

    ``status`` is one of STATUSES. A failed fetch may still carry the references of the pages
    that did arrive: they are true, only not the whole answer, so ``referrers`` is "at least".
    """

    node: Node
    endpoint: Endpoint
    status: str
    references: list[Reference]
    referrers: int = 0
    pages: int = 0
    total: int | None = None
    error: str | None = None

    @property
    def sources(self) -> set[Node]:
        return {ref.source for ref in self.references}
