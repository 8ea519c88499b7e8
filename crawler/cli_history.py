"""``refgraph runs`` and ``refgraph diff``: the history of crawls and what changed between them."""

from __future__ import annotations

import sys

import click

from . import history, output
from .cli_common import InputError, db_option, output_options, reading


@click.command()
@db_option
@output_options()
@reading
def runs(conn, as_json, as_csv):
    """List the crawl runs: when, from where, counts and outcome.

    \b
    Example:
      refgraph runs --db refs.db
    """
    found = history.runs(conn)
    if as_json:
        sys.stdout.write(output.to_json({"runs": found}))
    elif as_csv:
        sys.stdout.write(output.to_csv(output.RUNS_CSV, [[r[k] for k in output.RUNS_CSV] for r in found]))
    else:
        click.echo("\n".join(output.runs_text(found)))


@click.command()
@click.argument("run_a", type=int, required=False)
@click.argument("run_b", type=int, required=False)
@db_option
@output_options(csv=False)
@reading
def diff(conn, run_a, run_b, as_json):
    """What changed between two runs (default: the last two).

    References added and removed, and media that became unused or used again.

    \b
    Example:
      refgraph diff --db refs.db            # the last two runs
      refgraph diff 3 5 --db refs.db --json
    """
    ids = history.run_ids(conn)
    if run_a is None and run_b is None:
        if len(ids) < 2:
            raise InputError(f"diff needs two runs; this database has {len(ids)}")
        run_a, run_b = ids[-2], ids[-1]
    elif run_b is None:
        run_b = ids[-1] if ids else None
    for run in (run_a, run_b):
        if run not in ids:
            raise InputError(f"run {run} is not in this database (runs: {', '.join(map(str, ids)) or 'none'})")
    if run_a >= run_b:
        raise InputError(f"RUN_A must be earlier than RUN_B (got {run_a} and {run_b})")
    answer = history.diff(conn, run_a, run_b)
    if as_json:
        sys.stdout.write(output.to_json(answer))
    else:
        click.echo("\n".join(output.diff_text(answer)))
