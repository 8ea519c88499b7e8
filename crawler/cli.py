"""The refgraph command line: parse flags, call one function, render. No logic of its own.

Exit codes: 0 done; 1 fatal (the crawl had to stop); 2 bad usage or input; 3 done, but the
answer rests on nodes not crawled completely; 130 interrupted.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sqlite3
import sys
from contextlib import closing
from pathlib import Path

import click

from . import __version__, answers, output
from .api import DEFAULT_API_VERSION, validate_base_url
from .engine import DEFAULT_CONCURRENCY, CrawlOptions
from .export import FORMATS, load_graph, write_graph
from .model import Node, canonical_json, endpoints_for, parse_origins
from .retry import DEFAULT_RETRIES
from .runner import CrawlSettings, run_crawl
from .seeds import SeedError, read_seeds_file
from .store import NotARefgraphDatabase, open_readonly

EXIT_OK, EXIT_FATAL, EXIT_USAGE, EXIT_INCOMPLETE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
CRAWL_EXIT = {"complete": EXIT_OK, "failures": EXIT_INCOMPLETE, "fatal": EXIT_FATAL,
              "interrupted": EXIT_INTERRUPTED}
TOKEN_ENV = "LIVINGDOCS_TOKEN"


class InputError(click.ClickException):
    """Bad input (a file, an id, a URL): one line naming it, exit 2."""

    exit_code = EXIT_USAGE


class NodeType(click.ParamType):
    name = "NODE"

    def convert(self, value, param, ctx):
        if isinstance(value, Node):
            return value
        try:
            return Node.parse(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


NODE = NodeType()


def _origins(ctx, param, value):
    try:
        return set(parse_origins(value))
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


db_option = click.option(
    "--db", envvar="REFGRAPH_DB", default="refgraph.db", show_default=True, metavar="FILE",
    help="The refgraph database (env REFGRAPH_DB).")
endpoints_option = click.option(
    "--endpoints", "origins", default="media,publications,drafts", show_default=True, callback=_origins,
    metavar="LIST", help="Origins to use, from media, publications, drafts.")


def output_options(csv: bool = True):
    """--json (and --csv for lists), declared once for every command."""
    def decorate(func):
        func = click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON on stdout.")(func)
        if csv:
            func = click.option("--csv", "as_csv", is_flag=True, help="CSV on stdout (the list only).")(func)
        return func
    return decorate


def reading(func):
    """Open --db read-only for a query command; a foreign or missing file is exit 2."""
    @functools.wraps(func)
    def wrapper(db, **kwargs):
        try:
            with closing(open_readonly(db)) as conn:
                return func(conn, **kwargs)
        except NotARefgraphDatabase as exc:
            raise InputError(str(exc)) from None
        except sqlite3.DatabaseError as exc:
            raise InputError(f"{db}: unreadable database ({exc})") from None
    return wrapper


def _echo_lines(lines, err: bool = False) -> None:
    click.echo("\n".join(lines), err=err)


def _finish(answer: dict, as_json: bool, text_lines, csv_text=None, warn: list[str] = ()) -> None:
    """Data to stdout, people's notes to stderr; exit 3 when the answer is not complete."""
    # Data is written as it is: click.echo would strip escape sequences from ids off a terminal.
    if as_json:
        sys.stdout.write(output.to_json(answer))
    elif csv_text is not None:
        sys.stdout.write(csv_text)
        _echo_lines(output.basis_lines(answer["basis"]), err=True)
    else:
        _echo_lines(output.basis_lines(answer["basis"]) + [""] + text_lines)
    for line in warn:
        click.echo(f"warning: {line}", err=True)
    if answer.get("complete") is False:
        sys.exit(EXIT_INCOMPLETE)


def _incomplete_warning(answer: dict) -> list[str]:
    bad = answer.get("incomplete", [])
    if not bad:
        return []
    names = ", ".join(output.safe(b["node"]) for b in bad[:5]) + (" ..." if len(bad) > 5 else "")
    return [f"{len(bad)} node(s) in this answer were not crawled completely ({names}); "
            "there may be more referrers than shown"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="refgraph")
def cli():
    """Who references what in a Livingdocs installation.

    Crawl the Public API's incoming-references endpoints into SQLite, then ask offline what
    uses a media entry, which media nothing uses, and how things are connected.

    \b
    Example:
      export LIVINGDOCS_TOKEN=...
      refgraph crawl --base-url https://edit.example.com --seeds-file media.txt
      refgraph orphans --kind media --csv > unused.csv
    """


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


@cli.command()
@click.argument("nodes", nargs=-1, type=NODE)
@click.option("--seeds-file", metavar="FILE", help="One media:ID or document:ID per line; # starts a comment line.")
@click.option("--base-url", envvar="REFGRAPH_BASE_URL", required=True, metavar="URL",
              help="Server root, may carry a path prefix (env REFGRAPH_BASE_URL).")
@click.option("--api-version", default=DEFAULT_API_VERSION, show_default=True, metavar="VERSION",
              help="API version path segment; the body shape is read from each answer.")
@endpoints_option
@click.option("--concurrency", type=click.IntRange(1, 512), default=DEFAULT_CONCURRENCY, show_default=True,
              help="Workers, and so requests in flight at most.")
@click.option("--max-depth", type=click.IntRange(min=0), default=None, metavar="N",
              help="Only fetch referrers of nodes at most N hops from a seed (default: no limit).")
@click.option("--token-file", metavar="FILE", help=f"Read the API token from FILE instead of ${TOKEN_ENV}.")
@click.option("--insecure", is_flag=True, help="Do not verify TLS certificates (prints a warning).")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="Seconds to connect, and between bytes of an answer.")
@click.option("--retries", type=click.IntRange(0, 50), default=DEFAULT_RETRIES, show_default=True,
              help="Retries of a request after a transient fault.")
@db_option
def crawl(nodes, seeds_file, base_url, api_version, origins, concurrency, max_depth, token_file,
          insecure, timeout, retries, db):
    """Crawl the referrers of NODES, transitively, into --db.

    Starts from NODES and --seeds-file, fetches who references each through every enabled
    endpoint, then who references those, until the whole upstream closure is stored.

    \b
    Example:
      export LIVINGDOCS_TOKEN=...
      refgraph crawl --base-url https://edit.example.com --api-version 2026-01 \\
                     --seeds-file media-ids.txt --db refs.db
    """
    try:
        seeds = list(dict.fromkeys([*nodes, *(read_seeds_file(seeds_file) if seeds_file else [])]))
    except SeedError as exc:
        raise InputError(str(exc)) from None
    if not seeds:
        raise click.UsageError("no seeds: give NODE arguments (media:ID, document:ID) or --seeds-file")
    for kind in sorted({s.kind for s in seeds}):
        if not endpoints_for(kind, origins):
            raise InputError(f"--endpoints {','.join(sorted(origins))}: no endpoint lists referrers of {kind} "
                             "seeds through these origins (the API has no drafts endpoint for media)")
    try:
        base_url = validate_base_url(base_url)
    except ValueError as exc:
        raise InputError(f"--base-url: {exc}") from None
    if not api_version.strip():
        raise InputError("--api-version: empty")
    settings = CrawlSettings(
        db=db, base_url=base_url, api_version=api_version.strip(), token=read_token(token_file),
        options=CrawlOptions(tuple(seeds), frozenset(origins), concurrency, max_depth),
        insecure=insecure, timeout=timeout, retries=retries)
    if insecure:
        click.echo("warning: --insecure: TLS certificates are NOT verified; anyone on the network "
                   "can read the token and forge answers", err=True)
    sys.exit(_run_and_report(settings))


def _run_and_report(settings: CrawlSettings) -> int:
    try:
        run = asyncio.run(run_crawl(settings))
    except NotARefgraphDatabase as exc:
        raise InputError(str(exc)) from None
    except sqlite3.Error as exc:  # e.g. locked by another crawl: nothing of this run was written
        click.echo(f"Error: {settings.db}: {exc} (is another crawl writing to it?)", err=True)
        sys.exit(EXIT_FATAL)
    _echo_lines(output.crawl_summary(run, settings.db), err=True)
    return CRAWL_EXIT[run.report.outcome]


@cli.command()
@click.argument("node", type=NODE)
@db_option
@endpoints_option
@output_options()
@reading
def refs(conn, node, origins, as_json, as_csv):
    """Direct references to NODE: who, through which origin, where.

    Counts say what they count: referrers (distinct sources) and references (edges).

    \b
    Example:
      refgraph refs media:9fKagDCiN6sb --db refs.db
    """
    answer = _answer(answers.refs_answer, conn, node, origins)
    rows = [[r["kind"], r["id"], r["origin"], r["type"], r["location"], canonical_json(r["reference"])]
            for r in answer["references"]] if as_csv else None
    warn = [] if answer["complete"] else [f"{output.safe(node)} was not crawled completely: counts are 'at least'"]
    _finish(answer, as_json, output.refs_text(answer),
            output.to_csv(output.REFS_CSV, rows) if as_csv else None, warn)


@cli.command()
@click.argument("node", type=NODE)
@click.option("--max-depth", type=click.IntRange(min=1), default=None, metavar="N", help="Only referrers at most N hops away.")
@db_option
@endpoints_option
@output_options()
@reading
def impact(conn, node, max_depth, origins, as_json, as_csv):
    """Everything that references NODE, directly or transitively.

    With each referrer's depth (1 = direct), grouped by the origin of its references.

    \b
    Example:
      refgraph impact media:9fKagDCiN6sb --db refs.db
    """
    answer = _answer(answers.impact_answer, conn, node, origins, max_depth)
    rows = [[n["kind"], n["id"], n["depth"], ",".join(n["origins"]), n["state"]] for n in answer["nodes"]]
    _finish(answer, as_json, output.impact_text(answer),
            output.to_csv(output.IMPACT_CSV, rows) if as_csv else None, _incomplete_warning(answer))


@cli.command()
@click.option("--kind", type=click.Choice(["media", "document"]), default="media", show_default=True)
@db_option
@endpoints_option
@output_options()
@reading
def orphans(conn, kind, origins, as_json, as_csv):
    """Nodes crawled completely that nothing references.

    Nodes not crawled completely are listed apart as unknown, never as orphans. Media used only
    in unpublished drafts is invisible to the API and so shows as unreferenced.

    \b
    Example:
      refgraph orphans --kind media --db refs.db --csv > unused.csv
    """
    if not endpoints_for(kind, origins):
        raise InputError(f"--endpoints {','.join(sorted(origins))}: no endpoint lists referrers of {kind} "
                         "through these origins (the API has no drafts endpoint for media)")
    answer = answers.orphans_answer(conn, kind, origins)
    rows = [[o["kind"], o["id"]] for o in answer["orphans"]]
    warn = [f"{len(answer['unknown'])} {kind} node(s) are unknown (not crawled completely) and are not "
            "listed as orphans"] if answer["unknown"] and as_csv else []
    _finish(answer, as_json, output.orphans_text(answer),
            output.to_csv(output.ORPHANS_CSV, rows) if as_csv else None, warn)


@cli.command()
@click.argument("source", type=NODE)
@click.argument("target", type=NODE)
@db_option
@endpoints_option
@output_options(csv=False)
@reading
def path(conn, source, target, origins, as_json):
    """The shortest chain of references from SOURCE to TARGET.

    SOURCE references a node that references ... TARGET.

    \b
    Example:
      refgraph path document:1001 media:9fKagDCiN6sb --db refs.db
    """
    answer = _answer(answers.path_answer, conn, source, target, origins)
    _finish(answer, as_json, output.path_text(answer), None, _incomplete_warning(answer))


@cli.command()
@click.option("--top", type=click.IntRange(1, 1000), default=10, show_default=True, help="How many most-referenced media.")
@db_option
@output_options(csv=False)
@reading
def stats(conn, top, as_json):
    """Counts by kind and origin, top media, crawl coverage.

    \b
    Example:
      refgraph stats --db refs.db
    """
    answer = answers.stats_answer(conn, top)
    _finish(answer, as_json, output.stats_text(answer))


@cli.command()
@click.option("--format", "fmt", type=click.Choice(FORMATS), required=True, help="Output format.")
@click.option("--output", "-o", "out_path", metavar="FILE", help="Write here instead of stdout.")
@db_option
@reading
def export(conn, fmt, out_path):
    """Export the whole current graph (one edge per reference).

    \b
    Example:
      refgraph export --format graphml --db refs.db -o refs.graphml
    """
    if out_path is not None and Path(out_path).resolve() in _database_files(conn):
        raise InputError(f"--output {out_path}: that is the database itself")
    graph = load_graph(conn)
    if out_path is None:
        write_graph(graph, fmt, sys.stdout)
        return
    try:
        with open(out_path, "w", encoding="utf-8", newline="") as out:
            write_graph(graph, fmt, out)
    except OSError as exc:
        raise InputError(f"{out_path}: cannot write ({exc.strerror or exc})") from None


def _database_files(conn: sqlite3.Connection) -> set[Path]:
    main = Path(conn.execute("PRAGMA database_list").fetchone()[2]).resolve()
    return {main, *(main.with_name(main.name + suffix) for suffix in ("-wal", "-shm", "-journal"))}


def _command_of(exc: click.UsageError) -> str:
    ctx = exc.ctx
    return f"{ctx.info_name} " if ctx is not None and ctx.parent is not None else ""


def _answer(func, conn, *args):
    try:
        return func(conn, *args)
    except answers.NodeNotStored as exc:
        click.echo(f"Error: {output.safe(exc)}", err=True)
        sys.exit(EXIT_INCOMPLETE)


from .cli_sandbox import demo, sandbox  # noqa: E402

cli.add_command(sandbox)
cli.add_command(demo)


def main() -> None:
    """The console script: click without its standalone handling, so that a usage error is one
    line, and Ctrl-C is exit 130 wherever it lands (click would say "Aborted!" and exit 1)."""
    try:
        cli.main(prog_name="refgraph", standalone_mode=False)
    except click.UsageError as exc:
        click.echo(f"Error: {exc.format_message()} (see refgraph {_command_of(exc)}--help)", err=True)
        sys.exit(EXIT_USAGE)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, click.Abort):
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:
        # The reader stopped reading (| head): not an error of ours. Point stdout at devnull so
        # that Python's final flush does not complain again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(EXIT_OK)
