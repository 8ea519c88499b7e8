"""The commands that bring their own API: ``refgraph sandbox`` and ``refgraph demo``."""

from __future__ import annotations

import asyncio
import sys

import click

from .demo import report_lines, run_demo
from .engine import DEFAULT_CONCURRENCY
from .newsroom import generate
from .sandbox import DEFAULT_NO_DRAFTS_TOKEN, DEFAULT_TOKEN, VERSIONS, serve_forever
from .store import NotARefgraphDatabase

EXIT_USAGE, EXIT_FATAL = 2, 1


def dataset_options(func):
    for option in reversed([
        click.option("--media", type=click.IntRange(0, 5_000_000), default=3000, show_default=True,
                     help="Media entries to generate."),
        click.option("--documents", type=click.IntRange(0, 5_000_000), default=1500, show_default=True,
                     help="Documents to generate."),
        click.option("--seed", type=int, default=1, show_default=True, help="Random seed: same seed, same newsroom."),
    ]):
        func = option(func)
    return func


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@dataset_options
@click.option("--latency", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Seconds each answer waits, to imitate a network.")
@click.option("--write-seeds", metavar="FILE", help="Write every media id as a seeds file, then serve.")
def sandbox(host, port, media, documents, seed, latency, write_seeds):
    """Serve a generated newsroom as the Livingdocs API.

    The five incoming-references endpoints, with both body shapes by version, offset and
    cursor paging, bearer auth, the documented 401/403/404 bodies, and 410 for versions it
    does not serve.

    \b
    Example:
      refgraph sandbox --port 8080 --write-seeds media.txt &
      LIVINGDOCS_TOKEN=sandbox-token refgraph crawl --base-url http://127.0.0.1:8080 \\
          --seeds-file media.txt --db sandbox.db
    """
    dataset = generate(media=media, documents=documents, seed=seed)

    def ready(base_url: str) -> None:
        # Seeds are written once the port is bound: a crawl that waits for the file finds a server.
        if write_seeds:
            try:
                dataset.write_seeds(write_seeds)
            except OSError as exc:
                error = click.ClickException(f"{write_seeds}: cannot write seeds ({exc.strerror or exc})")
                error.exit_code = EXIT_USAGE
                raise error from None
            click.echo(f"wrote {len(dataset.media_ids())} media seeds to {write_seeds}", err=True)
        click.echo(f"sandbox API at {base_url} (versions {', '.join(VERSIONS)}); "
                   f"token '{DEFAULT_TOKEN}', without drafts scope '{DEFAULT_NO_DRAFTS_TOKEN}'; "
                   "Ctrl-C stops it", err=True)

    try:
        serve_forever(dataset, host, port, ready=ready, latency=latency)
    except OSError as exc:
        click.echo(f"Error: cannot listen on {host}:{port} ({exc.strerror or exc})", err=True)
        sys.exit(EXIT_USAGE)


@click.command()
@click.option("--db", default="refgraph-demo.db", show_default=True, metavar="FILE",
              help="Where the demo crawl is stored (queried afterwards like any other).")
@dataset_options
@click.option("--concurrency", type=click.IntRange(1, 512), default=DEFAULT_CONCURRENCY, show_default=True,
              help="Workers, and so requests in flight at most.")
def demo(db, media, documents, seed, concurrency):
    """Crawl the built-in sandbox and print a checked report.

    Starts the sandbox in-process, crawls it from every media id into --db, and prints
    counts, the most-used media, orphans and an impact example. The report ends by checking
    the stored answers against the sandbox's ground truth.

    \b
    Example:
      refgraph demo && refgraph orphans --db refgraph-demo.db --csv | head
    """
    try:
        result = asyncio.run(run_demo(db, media=media, documents=documents, seed=seed, concurrency=concurrency))
    except NotARefgraphDatabase as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    click.echo("\n".join(report_lines(result, db)))
    if result.mismatches or result.run.report.outcome != "complete":
        sys.exit(EXIT_FATAL)
