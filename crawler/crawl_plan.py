"""From what the user asked to the settings of one crawl run: a new crawl, or --resume.

Everything here is checked before the first request, so bad input never costs a request and
never touches the database.
"""

from __future__ import annotations

import json
from contextlib import closing

from .api import validate_base_url
from .engine import CrawlOptions
from .model import Node, endpoints_for
from .queries import last_crawl
from .runner import CrawlSettings
from .seeds import SeedError, read_seeds_file
from .store import NotARefgraphDatabase, open_readonly

__all__ = ["PlanError", "new_crawl", "resumed_crawl"]


class PlanError(ValueError):
    """The crawl cannot start as asked; the message names the input."""


def new_crawl(*, nodes: list[Node], seeds_files: tuple[str, ...], base_url: str | None, api_version: str,
              origins: set[str], concurrency: int, max_depth: int | None, **settings) -> CrawlSettings:
    """Settings for a fresh crawl from NODES and --seeds-file."""
    try:
        seeds = list(dict.fromkeys([*nodes, *(node for path in seeds_files for node in read_seeds_file(path))]))
    except SeedError as exc:
        raise PlanError(str(exc)) from None
    if not seeds and not settings.get("all_published"):
        raise PlanError("no seeds: give NODE arguments (media:ID, document:ID), --seeds-file or --all-published")
    for kind in sorted({s.kind for s in seeds}):
        if not endpoints_for(kind, origins):
            raise PlanError(f"--endpoints {','.join(sorted(origins))}: no endpoint lists referrers of {kind} "
                            "seeds through these origins (the API has no drafts endpoint for media)")
    if not base_url:
        raise PlanError("--base-url is needed (or $REFGRAPH_BASE_URL)")
    try:
        base_url = validate_base_url(base_url)
    except ValueError as exc:
        raise PlanError(f"--base-url: {exc}") from None
    if not api_version.strip():
        raise PlanError("--api-version: empty")
    return CrawlSettings(base_url=base_url, api_version=api_version.strip(),
                         options=CrawlOptions(tuple(seeds), frozenset(origins), concurrency, max_depth), **settings)


def resumed_crawl(*, db: str, base_url: str | None, given: list[str], concurrency: int, **settings) -> CrawlSettings:
    """Settings that carry on the database's last crawl where it stopped, with its own seeds,
    server, version, origins and depth. ``given`` names flags the user passed that a resumed
    crawl cannot take."""
    if given:
        raise PlanError(f"--resume carries on the last crawl with its own seeds and settings; "
                        f"leave out {', '.join(given)}")
    try:
        with closing(open_readonly(db)) as conn:
            crawl = last_crawl(conn)
            args = json.loads(conn.execute("SELECT args_json FROM crawls WHERE crawl_id = ?",
                                           (crawl["crawl_id"],)).fetchone()[0]) if crawl else {}
    except NotARefgraphDatabase as exc:
        raise PlanError(str(exc)) from None
    if crawl is None:
        raise PlanError(f"{db}: no crawl to resume")
    if crawl["outcome"] == "complete":
        raise PlanError(f"{db}: crawl #{crawl['crawl_id']} completed at {crawl['finished_at']}; nothing to resume")
    if base_url and _normal(base_url) != crawl["base_url"]:
        raise PlanError(f"--base-url is not the server of crawl #{crawl['crawl_id']} ({crawl['base_url']})")
    options = CrawlOptions((), frozenset(crawl["origins"].split(",")), concurrency, args.get("max_depth"))
    if settings.get("stale_after") is None:  # a resumed incremental crawl stays incremental
        settings["stale_after"] = args.get("stale_after")
    return CrawlSettings(db=db, base_url=crawl["base_url"], api_version=crawl["api_version"], options=options,
                         resume=crawl["crawl_id"], **settings)


def _normal(base_url: str) -> str | None:
    try:
        return validate_base_url(base_url)
    except ValueError:
        return None
