"""Results that look like a catastrophe are flagged, not trusted.

A crawl that sees no reference at all, or in which nearly every node comes back unreferenced,
is far likelier to have asked the wrong server, prefix or version (or a proxy that answers
``[]`` to everything) than to have found a newsroom that uses nothing. Acting on such an
"unused" would delete content readers still see, so the answer carries a flag.
"""

from __future__ import annotations

__all__ = ["MIN_NODES", "UNREFERENCED_SHARE", "crawl_flags", "orphan_flags"]

MIN_NODES = 20  # below this, a high share of unreferenced nodes proves nothing
UNREFERENCED_SHARE = 0.95


def crawl_flags(fetched: int, missing: int, references: int, seeds_known: int, seeds_unreferenced: int) -> list[str]:
    """Why a finished crawl's result should not be trusted as it is (empty: no reason).

    >>> crawl_flags(fetched=40, missing=0, references=0, seeds_known=20, seeds_unreferenced=20)[0]
    'the crawl saw no reference at all'
    >>> crawl_flags(fetched=40, missing=0, references=90, seeds_known=30, seeds_unreferenced=10)
    []
    """
    flags = []
    if fetched < MIN_NODES:  # a handful of 404s or unreferenced nodes is an answer, not a pattern
        return flags
    if missing == fetched:
        flags.append("every fetch answered 404: check --base-url (the server root, without /api/VERSION) "
                     "and --api-version")
    elif not references:
        flags.append("the crawl saw no reference at all")
    if seeds_known >= MIN_NODES and seeds_unreferenced >= UNREFERENCED_SHARE * seeds_known:
        flags.append(f"{seeds_unreferenced} of {seeds_known} seeds came back unreferenced")
    return flags


def orphan_flags(orphans: int, referenced: int) -> list[str]:
    """Why an orphans answer should not be trusted as it is.

    >>> orphan_flags(orphans=98, referenced=2)
    ['98 of 100 nodes crawled completely are unreferenced']
    """
    known = orphans + referenced
    if known >= MIN_NODES and orphans >= UNREFERENCED_SHARE * known:
        return [f"{orphans} of {known} nodes crawled completely are unreferenced"]
    return []
