"""What every refgraph command shares: exit codes, option decorators, node arguments, and
writing an answer (data to stdout, people's notes to stderr)."""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import sqlite3
import sys
from contextlib import closing
from typing import NoReturn

import click

from . import answers, output
from .model import Node, parse_origins
from .store import NotARefgraphDatabase, open_readonly

EXIT_OK, EXIT_FATAL, EXIT_USAGE, EXIT_INCOMPLETE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
CRAWL_EXIT = {"complete": EXIT_OK, "failures": EXIT_INCOMPLETE, "suspect": EXIT_INCOMPLETE, "fatal": EXIT_FATAL,
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
        if _undecodable(value):
            self.fail(f"{value.encode('utf-8', 'surrogateescape')!r} is not valid UTF-8", param, ctx)
        try:
            return Node.parse(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


NODE = NodeType()


def reader_gone() -> NoReturn:
    """The reader of stdout stopped reading (``| head``): not an error of ours, exit 0. Point
    stdout at devnull so that Python's final flush does not complain again."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(EXIT_OK)


def _undecodable(text: str) -> bool:
    """True for text holding bytes that were not UTF-8 (argv keeps them as lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


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


@contextlib.contextmanager
def _without_cycle_collection():
    """A query is a short process that builds hundreds of thousands of objects (a hub's
    referrers, their rows and answers) and drops none of them before it ends: the cyclic
    garbage collector's passes over them found nothing and took a third of the time.
    Reference counting still frees what the answer no longer needs."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def reading(func):
    """Open --db read-only for a query command; a foreign or missing file is exit 2."""
    @functools.wraps(func)
    def wrapper(db, **kwargs):
        try:
            with closing(open_readonly(db)) as conn, _without_cycle_collection():
                # One read transaction: every statement of the answer sees the same snapshot,
                # even while a crawl commits (an export reads nodes, then references).
                conn.execute("BEGIN")
                try:
                    return func(conn, **kwargs)
                finally:
                    conn.rollback()
        except NotARefgraphDatabase as exc:
            raise InputError(str(exc)) from None
        except sqlite3.DatabaseError as exc:
            raise InputError(f"{db}: unreadable database ({exc})") from None
    return wrapper


def echo_lines(lines, err: bool = False) -> None:
    click.echo("\n".join(lines), err=err)


def finish(answer: dict, as_json: bool, text_lines, csv_text=None, warn: list[str] = ()) -> None:
    """Data to stdout, people's notes to stderr; exit 3 when the answer is not complete."""
    # Data is written as it is: click.echo would strip escape sequences from ids off a terminal.
    if as_json:
        sys.stdout.write(output.to_json(answer))
    elif csv_text is not None:
        sys.stdout.write(csv_text)
        echo_lines(output.basis_lines(answer["basis"]), err=True)
    else:
        echo_lines(output.basis_lines(answer["basis"]) + [""] + text_lines)
    for line in warn:
        click.echo(f"warning: {line}", err=True)
    if answer.get("complete") is False:
        sys.exit(EXIT_INCOMPLETE)


def incomplete_warning(answer: dict) -> list[str]:
    bad = answer.get("incomplete", [])
    if not bad:
        return []
    names = ", ".join(output.safe(b["node"]) for b in bad[:5]) + (" ..." if len(bad) > 5 else "")
    return [f"{len(bad)} node(s) in this answer were not crawled completely ({names}); "
            "there may be more referrers than shown"]


def answer_or_unknown(func, conn, *args):
    try:
        return func(conn, *args)
    except answers.NodeNotStored as exc:
        click.echo(f"Error: {output.safe(exc)}", err=True)
        sys.exit(EXIT_INCOMPLETE)


class Duration(click.ParamType):
    """``90``, ``90s``, ``30m``, ``24h`` or ``7d``, as seconds.

    >>> Duration().convert("24h", None, None), Duration().convert("90", None, None)
    (86400.0, 90.0)
    """

    name = "DURATION"
    UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

    def convert(self, value, param, ctx):
        if isinstance(value, int | float):
            return float(value)
        text = str(value).strip().lower()
        number, unit = (text[:-1], text[-1]) if text[-1:] in self.UNITS else (text, "s")
        try:
            seconds = float(number) * self.UNITS[unit]
        except ValueError:
            self.fail(f"{value!r} is not a duration like 90s, 30m, 24h or 7d", param, ctx)
        if seconds < 0 or seconds != seconds:
            self.fail(f"{value!r} is not a duration like 90s, 30m, 24h or 7d", param, ctx)
        return seconds


DURATION = Duration()
