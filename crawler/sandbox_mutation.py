"""Overnight changes to a sandbox ``Dataset``: what a nightly recrawl has to notice.

``mutate(dataset, seed=..., changes=...)`` changes the dataset in place the way a newsroom
changes overnight, the same way for the same seed, and returns the ``Change``: exactly which
references the API now shows or no longer shows, which documents were deleted or published,
and, from the ground truth before and after, which media became unused or were used again.

>>> from crawler.newsroom import generate
>>> ds = generate(media=300, documents=150, seed=2)
>>> before = set(ds.edges)
>>> change = mutate(ds, seed=1, changes=20)
>>> change.added == set(ds.edges) - before and change.removed == before - set(ds.edges)
True
>>> all_media = [Node("media", m) for m in ds.media_ids()]
>>> bool(change.became_unused(all_media)) and bool(change.used_again(all_media))
True
>>> any(d in ds.nodes or d in ds.published for d in change.deleted)
False
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from crawler.model import ORIGINS, Node, Reference
from crawler.newsroom import component_id, directive_fields, link_fields, metadata_fields
from crawler.sandbox_data import Dataset

__all__ = ["ACTIONS", "DEFAULT_CHANGES", "Change", "mutate", "change_json"]

DEFAULT_CHANGES = 50
# What a newsroom does overnight, and how often (weights): "use" and "publish" add references
# (sometimes to media nobody used), "drop" removes one, "retire" removes the last ones of a
# media entry, "revive" gives an unused one a use, "move" shifts a reference to another
# component of the same source, "delete" deletes a document.
ACTIONS = ("use", "revive", "publish", "drop", "retire", "move", "delete")
_WEIGHTS = (30, 6, 8, 24, 6, 18, 8)
_UNUSED_PICK = 0.3  # share of new uses that go to a media entry nothing showed as used


@dataclass
class Change:
    """What one ``mutate`` did, as the API shows it.

    ``added``/``removed`` are exactly the visible references that appeared and disappeared
    (a moved reference is one of each; hidden draft-to-media references are not listed),
    ``deleted`` the documents that now answer 404, ``added_nodes`` the newly published ones.
    ``before`` and ``after`` are snapshots of the dataset, the ground truth for the helpers.
    """

    added: set[Reference] = field(default_factory=set)
    removed: set[Reference] = field(default_factory=set)
    deleted: set[Node] = field(default_factory=set)
    added_nodes: set[Node] = field(default_factory=set)
    before: Dataset | None = field(default=None, repr=False, compare=False)
    after: Dataset | None = field(default=None, repr=False, compare=False)

    def became_unused(self, seeds: Iterable[Node], origins: Iterable[str] = ORIGINS) -> set[Node]:
        """Media in the closure of ``seeds`` whose visible referrers went from some to none."""
        return self._flipped(seeds, origins, was_used=True)

    def used_again(self, seeds: Iterable[Node], origins: Iterable[str] = ORIGINS) -> set[Node]:
        """Media in the closure of ``seeds`` whose visible referrers went from none to some."""
        return self._flipped(seeds, origins, was_used=False)

    def _flipped(self, seeds: Iterable[Node], origins: Iterable[str], was_used: bool) -> set[Node]:
        if self.before is None or self.after is None:
            raise ValueError("this Change carries no ground truth: only mutate() makes one that does")
        seeds, origins = list(seeds), tuple(origins)
        before, after = self.before, self.after
        # In both closures: a crawl before and a crawl after from these seeds both reached it,
        # so comparing their answers is what finds it.
        reached = before.closure(seeds, origins) & after.closure(seeds, origins)
        return {m for m in reached if m.kind == "media" and m in before.nodes and m in after.nodes
                and bool(before.refs(m, origins)) == was_used and bool(after.refs(m, origins)) != was_used}


def _twin(ref: Reference) -> Reference:
    """The same reference in the source's draft: publishing copies the draft's references."""
    return Reference(ref.source, ref.target, "draft", ref.ref_json)


def _touches(ref: Reference, doc: Node) -> bool:
    # Strings first: comparing Node dataclasses builds tuples, and deletes scan every edge.
    return ((ref.source.id == doc.id and ref.source.kind == doc.kind)
            or (ref.target.id == doc.id and ref.target.kind == doc.kind))


class _Night:
    """One mutation at work: the dataset, the seeded rng, and what was used before it.

    Every choice is ``rng.choice`` over a sorted list, never over a set, so the same seed
    changes the same things whatever the process's hash seed. References are kept in
    insertion-ordered dicts while the night runs (O(1) to add, find and remove, and still the
    served order) and written back by ``finish()``.
    """

    def __init__(self, dataset: Dataset, rng: random.Random):
        self.ds, self.rng = dataset, rng
        self.media = sorted(n for n in dataset.nodes if n.kind == "media")
        self.edges, self.hidden = dict.fromkeys(dataset.edges), dict.fromkeys(dataset.hidden_edges)
        self.uses: dict[Node, dict[Reference, None]] = defaultdict(dict)  # visible refs per media
        for e in self.edges:
            if e.target.kind == "media":
                self.uses[e.target][e] = None
        self.used_before = frozenset(self.uses)
        self._documents_cache: dict[tuple, list[Node]] = {}

    def finish(self) -> None:
        self.ds.edges[:] = self.edges
        self.ds.hidden_edges[:] = self.hidden
        self.ds.changed()

    def _documents(self, role: str | None = None, published: bool = False) -> list[Node]:
        key, ds = (role, published), self.ds
        if key not in self._documents_cache:
            self._documents_cache[key] = sorted(
                (n for n in ds.nodes if n.kind == "document" and (role is None or ds.types.get(n) == role)
                 and (not published or n in ds.published)), key=lambda n: int(n.id))
        return self._documents_cache[key]

    def _publisher(self) -> Node | None:
        docs = self._documents("article", published=True) or self._documents(published=True)
        return self.rng.choice(docs) if docs else None

    def _unused(self) -> list[Node]:
        return [m for m in self.media if not self.uses.get(m)]

    def _pick_media(self) -> Node:
        if self.rng.random() < _UNUSED_PICK and (unused := self._unused()):
            return self.rng.choice(unused)
        return self.rng.choice(self.media)

    def _media_fields(self, target: Node) -> dict[str, Any]:
        kind = self.ds.types.get(target, "image")
        if kind == "file":  # files are attached in metadata, as the generator does
            return metadata_fields(target, "file", "attachment")
        return directive_fields(self.rng, target, kind, kind)

    def _put(self, ref: Reference) -> None:
        if ref in self.edges or ref in self.hidden:
            return
        if ref.origin == "draft" and ref.target.kind == "media":  # no drafts endpoint for media
            self.hidden[ref] = None
            return
        self.edges[ref] = None
        if ref.target.kind == "media":
            self.uses[ref.target][ref] = None

    def _take(self, ref: Reference) -> bool:
        """Remove one reference; False if it was not there."""
        if ref in self.edges:
            del self.edges[ref]
            self.uses.get(ref.target, {}).pop(ref, None)
            return True
        if ref in self.hidden:
            del self.hidden[ref]
            return True
        return False

    def _add(self, source: Node, target: Node, fields: dict[str, Any]) -> None:
        """Add the reference to the source's publication and, as publishing does, its draft."""
        for origin in ("publication", "draft"):
            self._put(Reference.make(source, target, origin, fields))

    def _remove(self, refs: Iterable[Reference]) -> None:
        """Remove the references, and each publication reference's twin in the draft."""
        for ref in list(refs):
            self._take(ref)
            if ref.origin == "publication":
                self._take(_twin(ref))

    # -- the actions: each does nothing when the dataset offers it nothing to act on ----------

    def use(self) -> None:
        source = self._publisher()
        if source is not None and self.media:
            target = self._pick_media()
            self._add(source, target, self._media_fields(target))

    def revive(self) -> None:
        unused = [m for m in self._unused() if m not in self.used_before]
        source = self._publisher()
        if unused and source is not None:
            target = self.rng.choice(unused)
            self._add(source, target, self._media_fields(target))

    def publish(self) -> None:
        if not self.media:  # an article shows at least one image
            return
        ds, rng = self.ds, self.rng
        # Ids grow and are never reused, not even those of deleted documents.
        taken = [int(n.id) for n in ds.nodes | ds.deleted if n.kind == "document"]
        doc = Node("document", str(max(taken, default=999) + 1))
        authors, live = self._documents("author"), self._documents("article", published=True)
        ds.nodes.add(doc)
        ds.types[doc] = "article"
        ds.published.add(doc)
        self._documents_cache.clear()
        for _ in range(rng.randint(1, 4)):
            target = self._pick_media()
            self._add(doc, target, self._media_fields(target))
        if authors:
            author = rng.choice(authors)
            self._add(doc, author, metadata_fields(author, "document", "author"))
        for other in rng.sample(live, min(len(live), rng.randint(0, 2))):
            self._add(doc, other, link_fields(rng, other))

    def drop(self) -> None:
        refs = [e for e in self.edges if e.origin == "publication" and e.target.kind == "media"]
        if refs:
            self._remove([self.rng.choice(refs)])

    def retire(self) -> None:
        """The last references to a media entry go: one of those used least, and used before."""
        used = [m for m in self.media if self.uses.get(m) and m in self.used_before]
        if used:
            fewest = min(len(self.uses[m]) for m in used)
            self._remove(self.uses[self.rng.choice([m for m in used if len(self.uses[m]) == fewest])])

    def move(self) -> None:
        refs = [e for e in self.edges if e.origin == "publication" and '"componentId":' in e.ref_json]
        if refs:
            old = self.rng.choice(refs)
            fields = {**old.fields, "componentId": component_id(self.rng)}
            for ref in (old, _twin(old)):  # the draft's copy moves with it, if it has one
                if self._take(ref):
                    self._put(Reference.make(ref.source, ref.target, ref.origin, fields))

    def delete(self) -> None:
        """A document goes: 404 for it, and it is nobody's referrer any more."""
        docs = self._documents("article") or self._documents()
        if not docs:
            return
        doc, ds = self.rng.choice(docs), self.ds
        ds.nodes.discard(doc)
        ds.published.discard(doc)
        ds.types.pop(doc, None)
        ds.deleted.add(doc)
        self._documents_cache.clear()
        # References to it go too: the API answers 404 for it, so no crawl can list them.
        self._remove([e for edges in (self.edges, self.hidden) for e in edges if _touches(e, doc)])


def _snapshot(ds: Dataset) -> Dataset:
    copy = Dataset(ds.nodes, ds.edges, ds.hidden_edges, ds.types, ds.published)
    copy.deleted = set(ds.deleted)
    return copy


def mutate(dataset: Dataset, *, seed: int, changes: int = DEFAULT_CHANGES) -> Change:
    """Change ``dataset`` in place by ``changes`` newsroom actions chosen by ``seed``.

    The actions are those of ``ACTIONS``; one action may change several references, and one
    that finds nothing to act on does nothing. New documents get ids above every id ever
    used; deleted ones leave ``dataset.nodes`` and ``dataset.published`` for
    ``dataset.deleted``, and every reference from or to them goes. From two actions on, the
    last two are "retire" and "revive", so that on a dataset of a few hundred nodes at least
    one media entry becomes unused and one is used again.

    >>> ds = Dataset.from_edges([Node("media", "a")], [Reference.make(
    ...     Node.of("document", 1), Node("media", "b"), "publication", {"id": "b", "type": "image"})])
    >>> change = mutate(ds, seed=0, changes=2)
    >>> all_media = [Node("media", "a"), Node("media", "b")]
    >>> sorted(map(str, change.became_unused(all_media))), sorted(map(str, change.used_again(all_media)))
    (['media:b'], ['media:a'])
    """
    if changes < 0:
        raise ValueError(f"changes must be >= 0, got {changes}")
    before = _snapshot(dataset)
    night = _Night(dataset, random.Random(seed))
    plan = night.rng.choices(ACTIONS, _WEIGHTS, k=changes)
    if changes >= 2:
        plan[-2:] = ["retire", "revive"]  # last, so that no later action undoes them
    for action in plan:
        getattr(night, action)()
    night.finish()
    after = _snapshot(dataset)
    old, new = set(before.edges), set(after.edges)
    return Change(added=new - old, removed=old - new, deleted=before.nodes - after.nodes,
                  added_nodes=after.nodes - before.nodes, before=before, after=after)


def _edges_json(refs: Iterable[Reference]) -> list[dict[str, Any]]:
    ordered = sorted(refs, key=lambda r: (r.source.sort_key(), r.target.sort_key(), r.origin, r.ref_json))
    return [{"source": str(r.source), "target": str(r.target), "origin": r.origin, "ref": r.fields}
            for r in ordered]


def _nodes_json(nodes: Iterable[Node]) -> list[str]:
    return [str(n) for n in sorted(nodes, key=Node.sort_key)]


def change_json(change: Change) -> dict[str, Any]:
    """The change as JSON-ready data: ``counts``, then each list sorted, so dumps are stable.

    ``became_unused`` and ``used_again`` take every media entry as a seed.
    """
    every = (change.before.nodes if change.before else set()) | (change.after.nodes if change.after else set())
    seeds = sorted(n for n in every if n.kind == "media")
    lists = {"added": _edges_json(change.added), "removed": _edges_json(change.removed),
             "deleted": _nodes_json(change.deleted), "added_nodes": _nodes_json(change.added_nodes),
             "became_unused": _nodes_json(change.became_unused(seeds)),
             "used_again": _nodes_json(change.used_again(seeds))}
    return {"counts": {name: len(items) for name, items in lists.items()}, **lists}
