"""``refgraph crawl``: from flags to a crawl run, its summary and its exit code."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
from pathlib import Path

import click

from . import output
from .cli_common import (
    CRAWL_EXIT,
    DURATION,
    EXIT_FATAL,
    NODE,
    TOKEN_ENV,
    InputError,
    db_option,
    echo_lines,
    endpoints_option,
)
from .defaults import DEFAULT_API_VERSION, DEFAULT_CONCURRENCY
from .progress import DEFAULT_INTERVAL, Reporter
from .retry import DEFAULT_BACKOFF, DEFAULT_RETRIES
from .store import NotARefgraphDatabase


def read_token(token_file: str | None) -> str:
    """The API token from --token-file, else $LIVINGDOCS_TOKEN. Never echoed anywhere."""
    if token_file:
        try:
            text, source = Path(token_file).read_text(encoding="utf-8"), token_file
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{token_file}: cannot read token file ({getattr(exc, 'strerror', None) or exc})") from None
    else:
        text, source = os.environ.get(TOKEN_ENV, ""), f"${TOKEN_ENV}"
        if not text.strip():
            raise InputError(f"no API token: set {TOKEN_ENV} or pass --token-file FILE")
    token = text.strip()
    if not token:
        raise InputError(f"{source}: the token is empty")
    if any(not 33 <= ord(ch) <= 126 for ch in token):
        raise InputError(f"{source}: the token must be one line of printable ASCII without spaces")
    return token


@click.command()
@click.argument("nodes", nargs=-1, type=NODE)
@click.option("--seeds-file", "seeds_files", metavar="FILE", multiple=True,
              help="One media:ID or document:ID per line; # starts a comment line. Repeatable.")
@click.option("--base-url", envvar="REFGRAPH_BASE_URL", metavar="URL",
              help="Server root, may carry a path prefix (env REFGRAPH_BASE_URL).")
@click.option("--api-version", default=DEFAULT_API_VERSION, show_default=True, metavar="VERSION",
              help="API version path segment; the body shape is read from each answer.")
@endpoints_option
@click.option("--concurrency", type=click.IntRange(1, 512), default=DEFAULT_CONCURRENCY, show_default=True,
              help="Workers, and so requests in flight at most.")
@click.option("--rate", type=click.FloatRange(min=0.01), default=None, metavar="R",
              help="At most R requests per second, across all workers (default: no cap).")
@click.option("--max-depth", type=click.IntRange(min=0), default=None, metavar="N",
              help="Only fetch referrers of nodes at most N hops from a seed (default: no limit).")
@click.option("--token-file", metavar="FILE", help=f"Read the API token from FILE instead of ${TOKEN_ENV}.")
@click.option("--insecure", is_flag=True, help="Do not verify TLS certificates (prints a warning).")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="Seconds to connect, and between bytes of an answer.")
@click.option("--retries", type=click.IntRange(0, 50), default=DEFAULT_RETRIES, show_default=True,
              help="Retries of a request after a transient fault.")
@click.option("--backoff", type=click.FloatRange(min=0), default=DEFAULT_BACKOFF, show_default=True, metavar="SECONDS",
              help="Wait before the first retry; doubles each time, with jitter.")
@click.option("--all-published", is_flag=True,
              help="Add every published document (the publications search) to the seeds.")
@click.option("--resume", is_flag=True, help="Carry on the last crawl in --db where it stopped.")
@click.option("--stale-after", type=DURATION, default=None, metavar="DURATION",
              help="Only fetch again what was not crawled completely within DURATION (e.g. 24h); "
                   "the rest keeps its references. Default: fetch everything.")
@click.option("--quiet", "-q", is_flag=True,
              help="No progress and no events; the summary only when something went wrong (exit code not 0).")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="json: one JSON object per event on stderr (start, retry, node_failed, status, end).")
@click.option("--progress-interval", type=click.FloatRange(min=0.1), default=DEFAULT_INTERVAL, show_default=True,
              metavar="SECONDS", help="Seconds between status lines when stderr is not a terminal.")
@db_option
@click.pass_context
def crawl(ctx, nodes, seeds_files, base_url, api_version, origins, concurrency, rate, max_depth, token_file,
          insecure, timeout, retries, backoff, all_published, resume, stale_after, quiet, log_format, progress_interval,
          db):
    """Crawl the referrers of NODES, transitively, into --db.

    Starts from NODES and --seeds-file, fetches who references each through every enabled
    endpoint, then who references those, until the whole upstream closure is stored.

    \b
    Example:
      export LIVINGDOCS_TOKEN=...
      refgraph crawl --base-url https://edit.example.com --api-version 2026-01 \\
                     --seeds-file media-ids.txt --db refs.db
      refgraph crawl --resume --db refs.db      # after an interruption
      refgraph crawl --stale-after 24h --base-url https://edit.example.com \\
                     --seeds-file media-ids.txt --db refs.db   # nightly: only what is stale
    """
    common = {"concurrency": concurrency, "db": db, "insecure": insecure, "timeout": timeout, "retries": retries,
              "backoff": backoff, "rate": rate, "stale_after": stale_after}
    # Imported here: the crawl machinery brings in the HTTP client, which the query commands,
    # defined beside this one, must not pay for at start-up.
    from .crawl_plan import PlanError, new_crawl, resumed_crawl

    try:
        if resume:
            given = [f"--{name.replace('_', '-')}" for name in ("seeds_files", "api_version", "origins", "max_depth",
                                                                 "all_published")
                     if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE]
            given = (["NODES"] if nodes else []) + [g.replace("--origins", "--endpoints").replace("-files", "-file")
                                                    for g in given]
            settings = resumed_crawl(base_url=base_url, given=given, token=read_token(token_file), **common)
        else:
            settings = new_crawl(nodes=list(nodes), seeds_files=seeds_files, base_url=base_url, api_version=api_version,
                                 origins=origins, max_depth=max_depth, token=read_token(token_file),
                                 all_published=all_published, **common)
    except PlanError as exc:
        raise InputError(str(exc)) from None
    if insecure:
        click.echo("warning: --insecure: TLS certificates are NOT verified; anyone on the network "
                   "can read the token and forge answers", err=True)
    reporter = Reporter(sys.stderr, quiet=quiet, json_logs=log_format == "json", interval=progress_interval)
    sys.exit(_run_and_report(settings, reporter))


def _run_and_report(settings, reporter: Reporter) -> int:
    from .runner import CrawlLocked, run_crawl  # see crawl()

    try:
        run = asyncio.run(run_crawl(settings, reporter))
    except NotARefgraphDatabase as exc:
        raise InputError(str(exc)) from None
    except CrawlLocked as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_FATAL)
    except sqlite3.Error as exc:  # e.g. locked by another crawl: nothing of this run was written
        click.echo(f"Error: {settings.db}: {exc} (is another crawl writing to it?)", err=True)
        sys.exit(EXIT_FATAL)
    code = CRAWL_EXIT[run.report.outcome]
    # JSON logs carry the summary in their "end" event; --quiet keeps cron mail for trouble.
    if not reporter.json_logs and not (reporter.quiet and code == 0):
        echo_lines(output.crawl_summary(run, settings.db), err=True)
    return code
