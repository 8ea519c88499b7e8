"""The query commands: they read the database (never write it) and answer offline."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
import tempfile
from pathlib import Path

import click

from . import answers, guard, output
from .cli_common import (
    DURATION,
    NODE,
    InputError,
    answer_or_unknown,
    db_option,
    endpoints_option,
    finish,
    incomplete_warning,
    output_options,
    reader_gone,
    reading,
)
from .export import FORMATS
from .export import export as export_graph
from .model import canonical_json, endpoints_for


@click.command()
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
    require_endpoints(node.kind, origins)
    answer = answer_or_unknown(answers.refs_answer, conn, node, origins)
    rows = [[r["kind"], r["id"], r["origin"], r["type"], r["location"], canonical_json(r["reference"])]
            for r in answer["references"]] if as_csv else None
    state = answer["coverage"]["state"]
    warn = ([] if answer["complete"] else
            [f"{output.safe(node)} was deleted upstream (the API answered 404)"] if state == "missing" else
            [f"{output.safe(node)} was not crawled completely: counts are 'at least'"])
    finish(answer, as_json, output.refs_text(answer),
            output.to_csv(output.REFS_CSV, rows) if as_csv else None, warn)


@click.command()
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
    require_endpoints(node.kind, origins)
    answer = answer_or_unknown(answers.impact_answer, conn, node, origins, max_depth)
    rows = [[n["kind"], n["id"], n["depth"], ",".join(n["origins"]), n["state"]] for n in answer["nodes"]] if as_csv else []
    finish(answer, as_json, [] if as_json or as_csv else output.impact_text(answer),
            output.to_csv(output.IMPACT_CSV, rows) if as_csv else None, incomplete_warning(answer))


@click.command()
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
    require_endpoints(kind, origins)
    answer = answers.orphans_answer(conn, kind, origins)
    rows = [[o["kind"], o["id"]] for o in answer["orphans"]] if as_csv else []
    warn = [f"{len(answer['unknown'])} {kind} node(s) are unknown (not crawled completely) and are not "
            "listed as orphans"] if answer["unknown"] and as_csv else []
    finish(answer, as_json, [] if as_json or as_csv else output.orphans_text(answer),
            output.to_csv(output.ORPHANS_CSV, rows) if as_csv else None, warn)


@click.command()
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
    require_endpoints(target.kind, origins)
    answer = answer_or_unknown(answers.path_answer, conn, source, target, origins)
    finish(answer, as_json, output.path_text(answer), None, incomplete_warning(answer))


@click.command()
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
    finish(answer, as_json, output.stats_text(answer))


@click.command()
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
    if out_path is not None and _is_database_file(Path(out_path), conn):
        raise InputError(f"--output {out_path}: that is the database itself")
    if out_path is None:
        try:
            export_graph(conn, fmt, sys.stdout)
            sys.stdout.flush()
        except BrokenPipeError:
            reader_gone()  # here, before click takes it for an error (exit 1)
        return
    try:
        _write_whole(Path(out_path), lambda out: export_graph(conn, fmt, out))
    except OSError as exc:
        raise InputError(f"{out_path}: cannot write ({exc.strerror or exc})") from None


def require_endpoints(kind: str, origins: set[str]) -> None:
    """A question about referrers of ``kind`` that no endpoint of these origins lists has no
    answer at all: refused, rather than answered as 'not crawled'."""
    if not endpoints_for(kind, origins):
        raise InputError(f"--endpoints {','.join(sorted(origins))}: no endpoint lists referrers of {kind} "
                         "through these origins (the API has no drafts endpoint for media)")


def _write_whole(path: Path, write) -> None:
    """Write a regular file through a temporary one beside it, renamed over it at the end: a
    failed export leaves what was there before, never half a file. A device or pipe (for
    instance /dev/null) is written to directly."""
    if path.exists() and not path.is_file():
        with open(path, "w", encoding="utf-8", newline="") as out:
            write(out)
        return
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with open(fd, "w", encoding="utf-8", newline="") as out:
            write(out)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _is_database_file(path: Path, conn: sqlite3.Connection) -> bool:
    """``path`` is the database or one of its side files, by name or as the same file (a hard
    link, a symbolic link)."""
    main = Path(conn.execute("PRAGMA database_list").fetchone()[2]).resolve()
    files = [main, *(main.with_name(main.name + suffix) for suffix in ("-wal", "-shm", "-journal", ".lock"))]
    if path.resolve() in files:
        return True
    with contextlib.suppress(OSError):
        return any(f.exists() and os.path.samefile(path, f) for f in files)
    return False


@click.command("check-delete")
@click.argument("nodes", nargs=-1, required=True, type=NODE)
@click.option("--max-age", type=DURATION, default="24h", show_default=True, metavar="DURATION",
              help="An 'unused' older than this is stale, not safe.")
@db_option
@endpoints_option
@output_options(csv=False)
@reading
def check_delete(conn, nodes, max_age, origins, as_json):
    """Exit 0 only if every NODE is safe to delete: crawled recently and referenced by nothing.

    Exit 1 when something references a node (who, by origin, is printed), 3 when the answer is
    unknown or stale (and why). For editors' tooling to call before deleting media.

    \b
    Example:
      refgraph check-delete media:9fKagDCiN6sb --db refs.db && delete-media 9fKagDCiN6sb
    """
    for node in nodes:
        require_endpoints(node.kind, origins)
    answer = guard.check_delete(conn, list(dict.fromkeys(nodes)), origins, max_age)
    if as_json:
        sys.stdout.write(output.to_json(answer))
    else:
        click.echo("\n".join(output.guard_text(answer) + output.basis_lines(answer["basis"])))
    sys.exit(answer["exit"])
