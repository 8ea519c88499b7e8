"""The sandbox's data and the ground truth a correct crawl must find.

``Dataset`` serves references in the order the API lists them and answers "what should a
crawl have found?". ``crawler.newsroom.generate()`` builds a realistic one.

>>> ds = Dataset.from_edges([], [Reference.make(Node.of("document", 1), Node.of("media", "a"),
...                                             "publication", {"id": "a", "type": "image"})])
>>> sorted(str(n) for n in ds.closure([Node.of("media", "a")]))
['document:1', 'media:a']
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from crawler.model import ENDPOINTS, ORIGINS, Endpoint, Node, Reference

__all__ = ["Dataset"]

_ALL_ORIGINS = frozenset(ORIGINS)
# The endpoint that lists an edge, by (origin, source kind, target kind). A draft's reference to
# a media entry has none (there is no drafts endpoint for media), so it can only be hidden.
_ENDPOINT_OF = {(e.origin, e.source_kind, e.target_kind): e for e in ENDPOINTS}
# The vendor's examples list these keys first; JSON does not care, people reading dumps do.
_LEADING_KEYS = ("id", "type", "location")


def _origins(origins: Iterable[str]) -> frozenset[str]:
    chosen = frozenset(origins)
    if not chosen <= _ALL_ORIGINS:
        raise ValueError(f"unknown origins {sorted(chosen - _ALL_ORIGINS)} (expected {ORIGINS})")
    return chosen


def _served(ref: Reference) -> dict[str, Any]:
    fields = ref.fields
    return {**{k: fields[k] for k in _LEADING_KEYS if k in fields}, **fields}


class Dataset:
    """Nodes and references as the API would show them, plus the ones it cannot show.

    A plain, mutable object: change ``nodes``/``edges``/``hidden_edges`` freely, then call
    ``changed()`` so the served lists and the ground truth are rebuilt. ``deleted`` remembers
    documents removed from ``nodes`` (see ``crawler.sandbox_mutation``), so their ids are
    never handed out again.
    """

    def __init__(self, nodes: Iterable[Node], edges: Iterable[Reference],
                 hidden_edges: Iterable[Reference] = (), types: Mapping[Node, str] | None = None,
                 published: Iterable[Node] | None = None):
        self.nodes: set[Node] = set(nodes)
        # dict.fromkeys: drop exact duplicates but keep order, which is the order refs are served.
        self.edges: list[Reference] = list(dict.fromkeys(edges))
        self.hidden_edges: list[Reference] = list(dict.fromkeys(hidden_edges))
        self.types: dict[Node, str] = dict(types or {})
        self.published: set[Node] = (set(published) if published is not None
                                     else {n for n in self.nodes if n.kind == "document"})
        self.deleted: set[Node] = set()
        self._cache: dict[str, Any] = {}

    @classmethod
    def from_edges(cls, nodes: Iterable[Node], edges: Iterable[Reference],
                   hidden_edges: Iterable[Reference] = (),
                   media_types: Mapping[Node, str] | None = None) -> Dataset:
        """A small known graph for tests: every edge end exists; media are images unless told.

        Pass ``edges`` as a list to fix the order of references within a source.
        """
        edges, hidden = list(edges), list(hidden_edges)
        for e in edges:
            if (e.origin, e.source.kind, e.target.kind) not in _ENDPOINT_OF:
                raise ValueError(f"no endpoint can show {e.source} -> {e.target} ({e.origin}); "
                                 "pass it in hidden_edges")
        every = set(nodes) | {n for e in edges + hidden for n in (e.source, e.target)}
        types = {n: "image" if n.kind == "media" else "article" for n in every}
        types.update(media_types or {})
        return cls(every, edges, hidden, types)

    def changed(self) -> None:
        """Forget derived indexes after nodes or edges were changed."""
        self._cache.clear()

    # -- what the API serves ---------------------------------------------------------------

    def media_ids(self) -> list[str]:
        return sorted(n.id for n in self.nodes if n.kind == "media")

    def media_type(self, node: Node) -> str:
        """``image``, ``video`` or ``file``; KeyError for anything but an existing media entry."""
        if node.kind != "media":
            raise KeyError(node)
        return self.types[node]

    def _index(self) -> dict[tuple[str, Node], list[tuple[Node, list[Reference]]]]:
        if "index" not in self._cache:
            grouped: dict = defaultdict(lambda: defaultdict(list))
            for e in self.edges:
                endpoint = _ENDPOINT_OF[(e.origin, e.source.kind, e.target.kind)]
                grouped[(endpoint.name, e.target)][e.source].append(e)
            # Sources in a fixed order, so offsets page the same way on every request.
            self._cache["index"] = {key: sorted(by_source.items(), key=lambda kv: kv[0].sort_key())
                                    for key, by_source in grouped.items()}
        return self._cache["index"]

    def incoming_total(self, endpoint: Endpoint, target: Node) -> int:
        return len(self._index().get((endpoint.name, target), ()))

    def incoming(self, endpoint: Endpoint, target: Node, offset: int = 0,
                 limit: int | None = None) -> list[tuple[Node, list[dict[str, Any]]]]:
        """``(source, [reference object, ...])`` pairs exactly as served, in a stable order."""
        rows = self._index().get((endpoint.name, target), [])
        stop = None if limit is None else offset + limit
        return [(source, [_served(r) for r in refs]) for source, refs in rows[offset:stop]]

    def publications(self) -> list[Node]:
        """The published documents that exist, in the order ``publications/search`` lists them.

        >>> Dataset.from_edges([Node.of("document", 10), Node.of("document", 9)], []).publications()
        [Node(kind='document', id='9'), Node(kind='document', id='10')]
        """
        if "publications" not in self._cache:
            listed = [n for n in self.published if n in self.nodes and n.kind == "document"]
            self._cache["publications"] = sorted(listed, key=Node.sort_key)
        return self._cache["publications"]

    def write_seeds(self, path: str | Path) -> None:
        """Every media id as ``media:ID``, one a line, under a comment line."""
        lines = ["# refgraph seeds: every media entry of the sandbox dataset"]
        lines += [f"media:{m}" for m in self.media_ids()]
        Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")

    # -- ground truth, on the edges the API can show -----------------------------------------

    def _by_target(self) -> dict[Node, list[Reference]]:
        if "by_target" not in self._cache:
            by_target: dict[Node, list[Reference]] = defaultdict(list)
            for e in self.edges:
                by_target[e.target].append(e)
            self._cache["by_target"] = by_target
        return self._cache["by_target"]

    def refs(self, node: Node, origins: Iterable[str] = ORIGINS) -> set[Reference]:
        """The visible references that point at ``node``."""
        chosen = _origins(origins)
        return {e for e in self._by_target().get(node, ()) if e.origin in chosen}

    def _depths(self, seeds: Iterable[Node], origins: Iterable[str],
                max_depth: int | None) -> dict[Node, int]:
        """Breadth first up the referrers, so each node gets its shortest depth."""
        chosen, by_target = _origins(origins), self._by_target()
        depth = {seed: 0 for seed in seeds}
        frontier = deque(depth)
        while frontier:
            node = frontier.popleft()
            if max_depth is not None and depth[node] >= max_depth:
                continue
            for e in by_target.get(node, ()):
                if e.origin in chosen and e.source not in depth:
                    depth[e.source] = depth[node] + 1
                    frontier.append(e.source)
        return depth

    def closure(self, seeds: Iterable[Node], origins: Iterable[str] = ORIGINS,
                max_depth: int | None = None) -> set[Node]:
        """The seeds plus every node that references them, transitively (up to ``max_depth``)."""
        return set(self._depths(seeds, origins, max_depth))

    def closure_edges(self, seeds: Iterable[Node],
                      origins: Iterable[str] = ORIGINS) -> set[Reference]:
        """Exactly the edges a correct crawl from ``seeds`` stores."""
        chosen = _origins(origins)
        nodes = self.closure(seeds, chosen)
        return {e for e in self.edges if e.origin in chosen and e.target in nodes}

    def impact(self, node: Node, origins: Iterable[str] = ORIGINS) -> dict[Node, int]:
        """Every node that reaches ``node`` by references, with its shortest depth (1 = direct)."""
        depth = self._depths([node], origins, None)
        del depth[node]  # even when it references itself: a node is not its own ancestor
        return depth

    def orphans(self, kind: str, seeds: Iterable[Node],
                origins: Iterable[str] = ORIGINS) -> set[Node]:
        """Existing nodes of ``kind`` in the closure that nothing visible references.

        Seeds that do not exist are not orphans: the API answers 404 for them, not "unused".
        """
        chosen, by_target = _origins(origins), self._by_target()
        return {n for n in self.closure(seeds, chosen)
                if n.kind == kind and n in self.nodes
                and not any(e.origin in chosen for e in by_target.get(n, ()))}

    def draft_only_media(self) -> set[Node]:
        """Media referenced only from drafts: the API shows no referrer, yet deleting them hurts."""
        hidden = {e.target for e in self.hidden_edges if e.target.kind == "media"}
        return hidden - set(self._by_target())
