"""The refgraph command line: parse flags, call one function, render. No logic of its own.

Exit codes: 0 done; 1 fatal (the crawl had to stop); 2 bad usage or input; 3 done, but the
answer rests on nodes not crawled completely (or looks like a catastrophe); 130 interrupted.
"""

from __future__ import annotations

import os
import sys

import click

from . import __version__
from .cli_common import EXIT_FATAL, EXIT_INCOMPLETE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, InputError, reader_gone  # noqa: F401
from .cli_crawl import crawl
from .cli_history import diff, runs
from .cli_query import check_delete, export, impact, orphans, path, refs, stats
from .cli_sandbox import demo, sandbox
from .config import ConfigError, add_envvars, load_config, unknown_envvars


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="refgraph")
@click.option("--config", envvar="REFGRAPH_CONFIG", metavar="FILE",
              help="TOML file of option defaults (env REFGRAPH_CONFIG). Every option can also be set "
                   "as REFGRAPH_<OPTION>, e.g. REFGRAPH_CONCURRENCY=32.")
@click.pass_context
def cli(ctx, config):
    """Who references what in a Livingdocs installation.

    Crawl the Public API's incoming-references endpoints into SQLite, then ask offline what
    uses a media entry, which media nothing uses, and how things are connected.

    \b
    Example:
      export LIVINGDOCS_TOKEN=...
      refgraph crawl --base-url https://edit.example.com --seeds-file media.txt
      refgraph orphans --kind media --csv > unused.csv
      refgraph --config refgraph.toml crawl --stale-after 24h
    """
    for name in unknown_envvars(cli, dict(os.environ)):
        click.echo(f"warning: {name} is set but no refgraph option reads it (a typo?)", err=True)
    if config:
        try:
            ctx.default_map = load_config(config, cli)
        except ConfigError as exc:
            raise InputError(str(exc)) from None


for command in (crawl, refs, impact, orphans, path, stats, export, check_delete, runs, diff, sandbox, demo):
    cli.add_command(command)
add_envvars(cli)


def _command_of(exc: click.UsageError) -> str:
    ctx = exc.ctx
    return f"{ctx.info_name} " if ctx is not None and ctx.parent is not None else ""


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
        reader_gone()
