"""A seeded newsroom for the sandbox: the same arguments always give the same dataset.

Documents (articles, pages, authors) and media (images, videos, files) with the reference
patterns of a real Livingdocs newsroom: shared logos, a long tail of images used once, unused
media, drafts that differ from their publication, cycles, and ids that need escaping.

>>> generate(media=40, documents=20, seed=3).edges == generate(media=40, documents=20, seed=3).edges
True
"""

from __future__ import annotations

import itertools
import random
import string
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from crawler.model import Node, Reference
from crawler.sandbox_data import Dataset

__all__ = ["generate", "component_id", "directive_fields", "metadata_fields", "link_fields"]

_BASE62 = string.digits + string.ascii_letters
_BASE36 = string.digits + string.ascii_lowercase
# Ids that break clients which build URLs by concatenation or decode twice (cycled in order).
_ESCAPE_TEMPLATES = ("{a}/{b}", "{a} {b}", "{a}+{b}", "{a}%2F{b}", "{a}?{b}", "{a}#{b}",
                     "{a}={b}", "{a}&{b}", "{a}ü{b}", "{a}%{b}")
_MEDIA_KINDS, _MEDIA_WEIGHTS = ("image", "video", "file"), (85, 7, 8)
# Shares that make the graph look like a newsroom, measured on the default dataset.
_AUTHOR_SHARE, _PAGE_SHARE = 0.03, 0.02
_UNPUBLISHED_SHARE, _CHANGED_DRAFT_SHARE = 0.08, 0.3
_UNUSED_SHARE, _DRAFT_ONLY_SHARE = 0.3, 0.03
_LOGO_SHARES = (0.85, 0.3, 0.1)  # of articles showing logo 0, 1, 2


class _Pool:
    """Hands out media as a newsroom reuses them: each item once, then Zipf-weighted repeats."""

    def __init__(self, rng: random.Random, items: list[Node], expected_picks: float,
                 first: Iterable[Node] = ()):
        self.rng, self.items = rng, items
        first = list(first)  # handed out before the rest, so they are surely used
        self.fresh = [n for n in items[::-1] if n not in first] + first[::-1]
        # Spread first uses over the expected picks, so early articles do not eat the pool.
        self.fresh_share = min(1.0, len(items) / max(1.0, expected_picks))
        self.cum = list(itertools.accumulate(1 / (rank + 1) ** 1.1 for rank in range(len(items))))

    def __bool__(self) -> bool:
        return bool(self.items)

    def pick(self) -> Node:
        if self.fresh and self.rng.random() < self.fresh_share:
            return self.fresh.pop()
        return self.rng.choices(self.items, cum_weights=self.cum)[0]


# The reference shapes below are public so that sandbox_mutation's overnight changes look
# exactly like what the generator wrote.

def component_id(rng: random.Random) -> str:
    return "doc-" + "".join(rng.choices(_BASE36, k=10))


def directive_fields(rng: random.Random, target: Node, kind: str, name: str) -> dict[str, Any]:
    return {"id": target.id, "type": kind, "location": f"{kind}-directive",
            "componentId": component_id(rng), "componentName": name, "directiveName": kind}


def metadata_fields(target: Node, ref_type: str, prop: str) -> dict[str, Any]:
    return {"id": target.id, "type": ref_type, "location": "metadata", "propertyName": prop}


def _teaser(rng: random.Random, target: Node) -> dict[str, Any]:
    return {"id": target.id, "type": "document", "location": "include-directive",
            "componentId": component_id(rng), "serviceName": "editable-teaser", "propertyName": "article",
            "componentName": "teaser-include", "directiveName": "teaser"}


def link_fields(rng: random.Random, target: Node) -> dict[str, Any]:
    return {"id": target.id, "type": "document", "location": "editable-directive",
            "componentId": component_id(rng), "componentName": "paragraph", "directiveName": "text"}


def _media_ids(rng: random.Random, count: int, digit_id: str) -> tuple[list[str], list[str]]:
    """(special ids, plain base62 ids): about 1.5% special, and from 12 media on at least
    ``..``, ``.`` and an all-digit id that is also a document's id."""
    n_special = min(count, max(3 if count >= 12 else 0, round(count * 0.015)))
    seen = {"..", ".", digit_id}

    def fresh() -> str:
        while (mid := "".join(rng.choices(_BASE62, k=12))) in seen:
            pass
        seen.add(mid)
        return mid

    templated = [t.format(a=m[:6], b=m[6:]) for t, m in
                 zip(itertools.cycle(_ESCAPE_TEMPLATES), (fresh() for _ in range(n_special)))]
    special = (["..", ".", digit_id] + templated)[:n_special]
    return special, [fresh() for _ in range(count - n_special)]


class _Newsroom:
    """Builds the dataset in steps; every random choice comes from one seeded ``rng``."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.types: dict[Node, str] = {}
        self.published: set[Node] = set()
        self.roles: dict[str, list[Node]] = defaultdict(list)
        self.media_refs: list[tuple[Node, Node, dict]] = []

    def add_documents(self, count: int) -> None:
        n_authors = max(1, round(count * _AUTHOR_SHARE)) if count >= 3 else 0
        n_pages = max(1, round(count * _PAGE_SHARE)) if count >= 3 else 0
        for i in range(count):
            node = Node.of("document", 1000 + i)
            role = "author" if i < n_authors else "page" if i < n_authors + n_pages else "article"
            self.types[node] = role
            self.roles[role].append(node)
            if role != "article" or self.rng.random() >= _UNPUBLISHED_SHARE:
                self.published.add(node)
        self.live = [n for n in self.roles["article"] if n in self.published]
        self.authors = _Pool(self.rng, self.roles["author"], len(self.roles["article"]))

    def add_media(self, count: int) -> None:
        docs = self.roles["article"] or [Node.of("document", 12345)]
        special, plain = _media_ids(self.rng, count, docs[len(docs) // 2].id)
        kinds = self.rng.choices(_MEDIA_KINDS, _MEDIA_WEIGHTS, k=len(plain))
        self.types.update({Node("media", m): "image" for m in special})  # escapes need use
        self.types.update({Node("media", m): k for m, k in zip(plain, kinds, strict=True)})
        images = [Node("media", m) for m, k in zip(plain, kinds, strict=True) if k == "image"]
        self.logos = images[:3] if len(images) >= 100 else images[:1]
        rest = images[len(self.logos):]
        n_draft, n_unused = round(len(rest) * _DRAFT_ONLY_SHARE), round(len(rest) * _UNUSED_SHARE)
        # Two in three escaped ids are used (so crawls fetch their referrers), the rest are
        # orphans; the step of 3 against a cycle of 10 templates gives each kind both fates.
        escaped = [Node("media", m) for i, m in enumerate(special) if i % 3 != 1]
        used = rest[n_draft + n_unused:] + escaped
        self.rng.shuffle(used)  # so the escaped ids are not all the most popular ones
        n_articles, n_videos = len(self.roles["article"]), kinds.count("video")
        expected = 2.6 * n_articles + 0.7 * len(self.roles["author"]) + n_videos
        self.images = _Pool(self.rng, used, expected, first=escaped)
        self.draft_images = _Pool(self.rng, rest[:n_draft], 0.2 * n_articles)
        self.videos = self._kind_pool(plain, kinds, "video", 0.6, 0.1 * n_articles)
        self.files = self._kind_pool(plain, kinds, "file", 0.5, 0.05 * n_articles)

    def _kind_pool(self, ids: list[str], kinds: list[str], kind: str, used_share: float,
                   picks: float) -> _Pool:
        nodes = [Node("media", m) for m, k in zip(ids, kinds, strict=True) if k == kind]
        return _Pool(self.rng, nodes[:round(len(nodes) * used_share)], picks)

    def _article_media(self) -> list[tuple[Node, dict]]:
        rng, refs = self.rng, []
        count = rng.choices(range(1, 6), (25, 30, 25, 12, 8))[0]
        lead = [self.images.pick() for _ in range(count)] if self.images else []
        for img in lead:
            fields = directive_fields(rng, img, "image", "image")
            if rng.random() < 0.005:  # an unknown nested field a lossless store must keep
                fields["focalPoint"] = {"x": 0.5, "y": 0.3}
            refs.append((img, fields))
        # The teaser image is usually the lead image: one source, two references, one target.
        teaser = lead[0] if self.images and rng.random() < 0.7 else (self.logos or [None])[0]
        if teaser is not None:
            refs.append((teaser, metadata_fields(teaser, "image", "teaserImage")))
        for logo, share in zip(self.logos, _LOGO_SHARES, strict=False):  # at most 3 logos
            if rng.random() < share:
                refs.append((logo, directive_fields(rng, logo, "image", "logo")))
        if self.videos and rng.random() < 0.1:
            video = self.videos.pick()
            refs.append((video, directive_fields(rng, video, "video", "video")))
        if self.files and rng.random() < 0.05:
            file = self.files.pick()
            refs.append((file, metadata_fields(file, "file", "attachment")))
        return refs

    def _article_documents(self, doc: Node) -> list[tuple[Node, dict]]:
        rng, authors = self.rng, []
        if self.authors:  # a byline, sometimes two; a few staff writers write most articles
            authors = [self.authors.pick() for _ in range(2 if rng.random() < 0.15 else 1)]
        refs = [(a, metadata_fields(a, "document", "author")) for a in dict.fromkeys(authors)]
        if self.live and rng.random() < 0.3:
            for other in rng.sample(self.live, min(len(self.live), rng.randint(1, 3))):
                if other != doc:
                    refs.append((other, link_fields(rng, other)))
        return refs

    def _author(self) -> list[tuple[Node, dict]]:
        if not self.images or self.rng.random() >= 0.7:
            return []
        portrait = self.images.pick()
        return [(portrait, metadata_fields(portrait, "image", "portrait"))]

    def _page(self, index: int) -> list[tuple[Node, dict]]:
        rng = self.rng
        if index == 0:  # the homepage: the latest articles and every section page
            chosen = self.live[-30:] + self.roles["page"][1:]
        else:
            chosen = rng.sample(self.live, min(len(self.live), rng.randint(8, 20)))
        refs = [(target, _teaser(rng, target)) for target in chosen]
        if index < 3 and self.live:  # a location and a field the crawler has never heard of
            target = rng.choice(self.live)
            refs.append((target, {**_teaser(rng, target), "location": "list-directive",
                                  "componentName": "teaser-list", "listId": 7 + index}))
        refs += [(logo, directive_fields(rng, logo, "image", "logo")) for logo in self.logos[:1]]
        return refs

    def _edited(self, refs: list[tuple[Node, dict]]) -> list[tuple[Node, dict]]:
        """A draft with unpublished changes: something removed, a new image or link added."""
        rng, refs = self.rng, list(refs)
        if len(refs) > 1 and rng.random() < 0.5:
            del refs[rng.randrange(len(refs))]
        if self.draft_images and rng.random() < 0.6:
            img = self.draft_images.pick()
            refs.append((img, directive_fields(rng, img, "image", "image")))
        if self.roles["article"] and rng.random() < 0.3:
            other = rng.choice(self.roles["article"])
            refs.append((other, link_fields(rng, other)))
        return refs

    def _content(self) -> dict[Node, list[tuple[Node, dict]]]:
        """What each document references, before publishing and drafting are decided."""
        content = {doc: self._author() for doc in self.roles["author"]}
        content.update({doc: self._page(i) for i, doc in enumerate(self.roles["page"])})
        content.update({doc: self._article_media() + self._article_documents(doc)
                        for doc in self.roles["article"]})
        if len(self.live) >= 2:  # a self-reference and a two-node cycle, whatever the seed
            a, b = self.live[:2]
            content[a] += [(a, link_fields(self.rng, a)), (b, link_fields(self.rng, b))]
            content[b] += [(a, link_fields(self.rng, a))]
        return content

    def write_documents(self) -> tuple[dict, dict]:
        """(publication refs, draft refs) per document; every document has a draft."""
        content = self._content()
        pub = {d: refs for d, refs in content.items() if d in self.published}
        drafts = {}
        for doc, refs in content.items():
            # Unpublished articles and changed drafts are where draft-only images live.
            unchanged = doc in pub and self.rng.random() >= _CHANGED_DRAFT_SHARE
            drafts[doc] = refs if unchanged else self._edited(refs)
        return pub, drafts

    def write_media_links(self) -> None:
        rng = self.rng
        for node in sorted(n for n, t in self.types.items() if n.kind == "media"):
            kind = self.types[node]
            if kind == "video" and self.images and rng.random() < 0.9:
                img = self.images.pick()
                self.media_refs.append((node, img, metadata_fields(img, "image", "posterImage")))
            if kind == "image" and self.images and rng.random() < 0.03:
                img = self.images.pick()
                if img != node:
                    self.media_refs.append((node, img, metadata_fields(img, "image", "imageLink")))
            if kind == "image" and self.authors and rng.random() < 0.2:
                who = self.authors.pick()
                self.media_refs.append((node, who, metadata_fields(who, "document", "photographer")))

    def dataset(self, pub: dict, drafts: dict) -> Dataset:
        edges = [Reference.make(d, t, "publication", f) for d, refs in pub.items() for t, f in refs]
        edges += [Reference.make(s, t, "media", f) for s, t, f in self.media_refs]
        hidden = []
        for doc, refs in drafts.items():
            for target, fields in refs:
                ref = Reference.make(doc, target, "draft", fields)
                (hidden if target.kind == "media" else edges).append(ref)
        return Dataset(self.types, edges, hidden, self.types, self.published)


def generate(*, media: int = 3000, documents: int = 1500, seed: int = 1) -> Dataset:
    """A newsroom-like dataset; the same arguments always give the same dataset."""
    if media < 0 or documents < 0:
        raise ValueError("media and documents must be >= 0")
    room = _Newsroom(random.Random(seed))
    room.add_documents(documents)
    room.add_media(media)
    pub, drafts = room.write_documents()
    room.write_media_links()
    return room.dataset(pub, drafts)
