"""The commands that bring their own API: ``refgraph sandbox`` and ``refgraph demo``."""

from __future__ import annotations

import asyncio
import functools
import sys

import click

from .defaults import DEFAULT_CONCURRENCY, FAULT_KINDS
from .model import Node
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


def _fault_kinds(ctx, param, value: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in value.split(",") if k.strip())
    if not kinds or not set(kinds) <= set(FAULT_KINDS):
        raise click.BadParameter(f"{value!r}: name some of {','.join(FAULT_KINDS)}")
    return kinds


def _nodes(ctx, param, values: tuple[str, ...]) -> frozenset[str]:
    try:
        return frozenset(str(Node.parse(v)) for v in values)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


_FAULT_OPTIONS = [
    click.option("--fault-rate", type=click.FloatRange(0, 1), default=0.0, show_default=True,
                 help="Share of page requests answered with a transient fault."),
    click.option("--fault-kinds", default=",".join(FAULT_KINDS), show_default=True, metavar="LIST",
                 callback=_fault_kinds, help="Comma-separated transient faults to draw from."),
    click.option("--fault-seed", type=int, default=0, show_default=True,
                 help="Seed of the fault schedule: same seed, same faults for the same requests."),
    click.option("--retry-after", type=click.FloatRange(min=0), default=1.0, show_default=True,
                 metavar="SECONDS", help="Retry-After sent with injected 429 and 503 answers."),
    click.option("--failing", multiple=True, metavar="NODE", callback=_nodes,
                 help="A node (media:ID or document:ID) whose every request answers 500; repeatable."),
    click.option("--offset-window", type=click.IntRange(min=0), metavar="N",
                 help="Answer 400 to offset=N or beyond, like search-backed servers (cursors go on)."),
    click.option("--no-cursor", is_flag=True, help="Send \"cursor\": null in 2026-01 bodies: clients page by offset."),
    click.option("--drift", is_flag=True,
                 help="After a list's first page, add a referrer that sorts first, once per list."),
]


def _faults(fault_rate, fault_kinds, fault_seed, retry_after, failing, offset_window, no_cursor, drift):
    # The sandbox modules are imported where they are used: they bring in aiohttp's server,
    # which the other commands must not pay for at start-up.
    from .sandbox_faults import Faults

    return Faults(rate=fault_rate, kinds=fault_kinds, seed=fault_seed, retry_after=retry_after,
                  failing=failing, offset_window=offset_window, cursor=not no_cursor, drift=drift)


def fault_options(func):
    """Add the options that choose a ``Faults``; the command gets it as ``faults``."""
    names = ("fault_rate", "fault_kinds", "fault_seed", "retry_after", "failing", "offset_window",
             "no_cursor", "drift")

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        kwargs["faults"] = _faults(**{name: kwargs.pop(name) for name in names})
        return func(*args, **kwargs)

    for option in reversed(_FAULT_OPTIONS):
        wrapper = option(wrapper)
    return wrapper


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@dataset_options
@click.option("--latency", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Seconds each answer waits, to imitate a network.")
@click.option("--write-seeds", metavar="FILE", help="Write every media id as a seeds file, then serve.")
@fault_options
def sandbox(host, port, media, documents, seed, latency, write_seeds, faults):
    """Serve a generated newsroom as the Livingdocs API.

    The five incoming-references endpoints, with both body shapes by version, offset and
    cursor paging, bearer auth, the documented 401/403/404 bodies, and 410 for versions it
    does not serve. The --fault options make it misbehave, to test a client's resilience:
    transient 429/503/500, dropped connections, slow and truncated answers, nodes that
    always fail, an offset window, no cursors, and content that changes mid-crawl.
    It lists published documents at /api/VERSION/publications/search, and for the full
    token POST /_sandbox/mutate?seed=N&changes=M changes the newsroom as a night would
    (references added, dropped and moved; documents published and deleted) and answers
    with what changed, to try a recrawl against.

    \b
    Example:
      refgraph sandbox --port 8080 --write-seeds media.txt &
      LIVINGDOCS_TOKEN=sandbox-token refgraph crawl --base-url http://127.0.0.1:8080 \\
          --seeds-file media.txt --db sandbox.db
      curl -X POST -H 'Authorization: Bearer sandbox-token' \\
          'http://127.0.0.1:8080/_sandbox/mutate?seed=1&changes=50'
    """
    from .newsroom import generate  # see _faults
    from .sandbox import DEFAULT_NO_DRAFTS_TOKEN, DEFAULT_TOKEN, MUTATE_PATH, VERSIONS, serve_forever
    from .sandbox_faults import Faults

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
                   f"POST {base_url}{MUTATE_PATH}?seed=N&changes=M changes it overnight-style; "
                   "Ctrl-C stops it", err=True)
        if faults != Faults():
            click.echo(f"injecting faults: {faults.summary()}", err=True)

    try:
        serve_forever(dataset, host, port, ready=ready, latency=latency, faults=faults)
    except OSError as exc:
        click.echo(f"Error: cannot listen on {host}:{port} ({exc.strerror or exc})", err=True)
        sys.exit(EXIT_USAGE)


@click.command()
@click.option("--db", default="refgraph-demo.db", show_default=True, metavar="FILE",
              help="Where the demo crawl is stored (queried afterwards like any other).")
@dataset_options
@click.option("--concurrency", type=click.IntRange(1, 512), default=DEFAULT_CONCURRENCY, show_default=True,
              help="Workers, and so requests in flight at most.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="The crawl's --timeout (a 'slow' fault waits 2 s).")
@fault_options
def demo(db, media, documents, seed, concurrency, timeout, faults):
    """Crawl the built-in sandbox and print a checked report.

    Starts the sandbox in-process, crawls it from every media id into --db, and prints
    counts, the most-used media, orphans and an impact example. The report ends by checking
    the stored answers against the sandbox's ground truth.

    \b
    Example:
      refgraph demo && refgraph orphans --db refgraph-demo.db --csv | head
      refgraph demo --fault-rate 0.1 --retry-after 0.5 --timeout 1   # through 10% faults
    """
    from .demo import report_lines, run_demo  # see _faults

    try:
        result = asyncio.run(run_demo(db, media=media, documents=documents, seed=seed, concurrency=concurrency,
                                      faults=faults, timeout=timeout))
    except NotARefgraphDatabase as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    click.echo("\n".join(report_lines(result, db)))
    if result.mismatches or result.run.report.outcome != "complete":
        sys.exit(EXIT_FATAL)
