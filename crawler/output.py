"""Render answers: one small function per command and format. JSON and CSV are byte-stable.

Text is for people at a terminal; ids from a server are escaped so that none can move the
cursor or recolour the terminal.
"""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from collections.abc import Iterable
from typing import Any

__all__ = [
    "safe", "to_json", "to_csv", "table", "basis_lines", "refs_text", "impact_text", "orphans_text",
    "path_text", "stats_text", "crawl_summary", "runs_text", "diff_text", "REFS_CSV", "IMPACT_CSV", "ORPHANS_CSV",
    "RUNS_CSV",
]


# Control (C0, C1), format (bidi overrides, zero-width) and line/paragraph separators: what a
# hostile id could use to move the cursor, rewrite the terminal or reorder what is shown.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def _escape(ch: str) -> str:
    if unicodedata.category(ch) not in _UNSAFE_CATEGORIES:
        return ch
    return escaped(ch)


def escaped(ch: str) -> str:
    """One character as a visible escape: ``\\x1b``, ``\\u202e``."""
    return f"\\x{ord(ch):02x}" if ord(ch) < 256 else f"\\u{ord(ch):04x}"


def safe(text: Any) -> str:
    """Text fit for a terminal: control, format and separator characters escaped.

    >>> safe("media:a\\x1b[31m"), safe("x\\u202egnp.exe")
    ('media:a\\\\x1b[31m', 'x\\\\u202egnp.exe')
    """
    text = str(text)
    if text.isprintable():
        return text
    return "".join(_escape(ch) for ch in text)


def plural(count: int, word: str) -> str:
    """A count and a word that agree.

    >>> plural(1, "referrer"), plural(2, "reference")
    ('1 referrer', '2 references')
    """
    return f"{count} {word}{'' if count == 1 else 's'}"


def to_json(answer: dict) -> str:
    return json.dumps(answer, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def to_csv(header: list[str], rows: Iterable[Iterable[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def table(header: list[str], rows: list[list[Any]], indent: str = "  ") -> list[str]:
    """Rows in columns padded to their widest cell, every cell made safe for a terminal.

    >>> table(["N", "NODE"], [[1, "media:a"], [12, None]])
    ['  N   NODE', '  1   media:a', '  12']
    """
    return column_table(header, [list(column) for column in zip(*rows)] if rows else [[] for _ in header], indent)


def column_table(header: list[str], columns: list[list[Any]], indent: str = "  ") -> list[str]:
    """``table`` of data given column by column: an answer about a hub has hundreds of
    thousands of rows, and one format per line is what it can afford."""
    cells = [[name, *_column_text(column)] for name, column in zip(header, columns)]
    line = indent + "  ".join(f"{{:<{max(map(len, column))}}}" for column in cells)
    return [line.format(*row).rstrip() for row in zip(*cells)]


def _column_text(column: list[Any]) -> list[str]:
    if all(c.__class__ is int for c in column):
        return list(map(str, column))
    return [c if c.__class__ is str and c.isprintable() else _cell(c) for c in column]


def _cell(value: Any) -> str:
    if value.__class__ is str and value.isprintable():
        return value
    return "" if value is None else safe(value)


def basis_lines(basis: dict) -> list[str]:
    crawl = basis.get("crawl")
    if crawl is None:
        lines = ["based on: no crawl recorded in this database"]
    else:
        lines = [f"based on: fetches from {basis['fetched_from'] or '-'} to {basis['fetched_to'] or '-'}; "
                 f"last crawl #{crawl['crawl_id']} of {safe(crawl['base_url'])} (API {safe(crawl['api_version'])}), "
                 f"{crawl['outcome']}"]
    lines.append("origins looked at: " + ", ".join(basis["origins"]))
    return lines + [f"note: {note}" for note in basis["notes"]]


def _detail(ref: dict) -> str:
    skip = {"id", "type", "location", "origin"}
    return ", ".join(f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in sorted(ref.items()) if k not in skip)


def _state_line(cov: dict) -> str:
    if cov["state"] == "complete":
        return f"crawled completely (fetched {cov['fetched_at']})"
    why = "; ".join([*cov["errors"], *(f"{e}: not crawled" for e in cov["not_crawled"])])
    return f"NOT crawled completely ({cov['state']}{': ' + why if why else ''})"


REFS_CSV = ["kind", "id", "origin", "type", "location", "reference"]


def refs_text(a: dict) -> list[str]:
    counts, cov = a["counts"], a["coverage"]
    at_least = "" if a["complete"] else "at least "
    lines = [f"{safe(a['node']['node'])}: {at_least}{plural(counts['referrers'], 'referrer')}, "
             f"{at_least}{plural(counts['references'], 'reference')}; {_state_line(cov)}"]
    rows = [[r["node"], r["origin"], r["type"], r["location"], _detail(r["reference"])] for r in a["references"]]
    if rows:
        lines += table(["REFERRER", "ORIGIN", "TYPE", "LOCATION", "DETAIL"], rows)
    return lines


IMPACT_CSV = ["kind", "id", "depth", "origins", "state"]


def impact_text(a: dict) -> list[str]:
    counts = a["counts"]
    lines = [f"impact of {safe(a['node']['node'])}: {plural(counts['referrers'], 'node')} "
             f"{'references' if counts['referrers'] == 1 else 'reference'} it ({counts['direct']} directly); "
             f"{_state_line(a['coverage'])}"]
    if len([o for o in counts["by_origin"].values() if o]) > 1:
        lines.append("(a node that references through several origins is listed under each)")
    for origin in ("publication", "draft", "media"):
        members = [x for x in a["nodes"] if origin in x["origins"]]
        if members:
            lines.append(f"via {origin} references ({len(members)}):")
            lines += column_table(["DEPTH", "NODE", "STATE"], [[x["depth"] for x in members],
                                                               [x["node"] for x in members], [x["state"] for x in members]])
    if not a["nodes"]:
        lines.append("  nothing references it" + ("" if a["complete"] else " that refgraph could see"))
    return lines


ORPHANS_CSV = ["kind", "id"]


def orphans_text(a: dict) -> list[str]:
    lines = [f"WARNING: THIS RESULT LOOKS WRONG: {safe(flag)}. Do not delete on its word." for flag in a["flags"]]
    lines.append(f"orphans: {a['kind']} that nothing references, among those crawled completely "
                 f"({plural(len(a['endpoints']), 'endpoint')} each)")
    lines += [f"  {safe(o['node'])}" for o in a["orphans"]]
    lines.append(plural(len(a["orphans"]), "orphan"))
    if a["dangling"]:
        lines.append(f"{len(a['dangling'])} referenced only by sources deleted upstream (404), neither used nor orphan:")
        lines += [f"  {safe(d['node'])}" for d in a["dangling"]]
    if a["unknown"]:
        lines.append(f"{len(a['unknown'])} unknown (not crawled completely: never counted as orphans):")
        lines += [f"  {safe(u['node'])}  {_state_line(u)}" for u in a["unknown"]]
    if a["missing"]:
        lines.append(f"{len(a['missing'])} missing (the API answered 404: deleted upstream):")
        lines += [f"  {safe(m['node'])}" for m in a["missing"]]
    return lines


def path_text(a: dict) -> list[str]:
    if a["path"] is None:
        return [f"no chain of references leads from {safe(a['from']['node'])} to {safe(a['to']['node'])}"
                + ("" if a["complete"] else " among the nodes crawled completely")]
    lines = [" -> ".join(safe(n) for n in a["path"]) + f"  ({len(a['hops'])} hops)"]
    for hop in a["hops"]:
        how = "; ".join(f"{r['origin']} {r.get('location') or ''} {_detail(r)}".strip() for r in hop["references"])
        lines.append(f"  {safe(hop['from'])} references {safe(hop['to'])}: {safe(how)}")
    return lines


def stats_text(a: dict) -> list[str]:
    types = ", ".join(f"{t} {n}" for t, n in a["media_types"].items())
    refs = a["references"]
    lines = [f"nodes: {a['nodes']['media']} media ({types or 'none'}), {a['nodes']['document']} documents",
             f"references: {refs['total']} (" + ", ".join(f"{o} {n}" for o, n in refs["by_origin"].items()) + ")",
             f"crawls recorded: {a['crawls']}", "crawl coverage:"]
    lines += table(["KIND", "COMPLETE", "FAILED", "MISSING", "NOT CRAWLED"],
                   [[k, c["complete"], c["failed"], c["missing"], c["not crawled"]] for k, c in a["coverage"].items()])
    if a["most_referenced_media"]:
        lines.append("most-referenced media:")
        lines += table(["MEDIA", "TYPE", "REFERRERS", "REFERENCES"],
                       [[m["node"], m["media_type"], m["referrers"], m["references"]] for m in a["most_referenced_media"]])
    return lines


def crawl_summary(run, db: str, shown: int = 20) -> list[str]:
    """The end of every crawl: what was done, what failed, where to look next."""
    report, stats, counts = run.report, run.stats, run.report.counts
    outcome = {"failures": "finished with failures", "suspect": "finished, SUSPECT"}.get(report.outcome, report.outcome)
    lines = [f"crawl #{run.crawl_id} {outcome} in {report.seconds:.1f} s: "
             f"{stats['nodes/queued']} nodes, {counts['fetched']} fetches ({counts['complete']} complete, "
             f"{counts['failed']} failed, {counts['missing']} missing), {counts['edges']} references, "
             f"{stats['requests/total']} requests, {stats['retry/count']} retries"]
    if stats["fetch/replayed"]:
        lines.append(f"kept: {stats['fetch/replayed']} fetches still fresh (--stale-after) or finished before "
                     f"(--resume), with {counts['replayed_referrers']} referrers, were not fetched again")
    if report.message:
        lines.append(f"{'stopped' if report.outcome == 'fatal' else 'note'}: {safe(report.message)}")
    lines += [f"warning: {safe(w)}" for w in report.warnings]
    for flag in report.flags:
        lines.append(f"WARNING: THIS RESULT LOOKS WRONG: {safe(flag)}. Check the server, prefix, version "
                     "and token before acting on any 'unused'.")
    if counts["beyond_max_depth"]:
        lines.append(f"note: {plural(counts['beyond_max_depth'], 'referrer')} past --max-depth were stored but "
                     "not crawled: they are unknown in every answer")
    for failure in report.failures[:shown]:
        lines.append(f"failed: {safe(failure.node)} {failure.endpoint.name}: {safe(failure.error)}")
    if len(report.failures) > shown:
        lines.append(f"... and {len(report.failures) - shown} more failed fetches")
    if report.failures:
        lines.append("failed nodes are 'unknown' in every answer, never unused; crawl again to fill them in")
    if report.outcome != "fatal":
        lines.append(f"next: refgraph stats --db {db}   refgraph orphans --db {db}")
    return lines


RUNS_CSV = ["crawl_id", "started_at", "finished_at", "outcome", "seeds", "fetched", "failed", "missing", "edges",
            "requests", "base_url", "api_version", "origins"]


def runs_text(runs: list[dict]) -> list[str]:
    if not runs:
        return ["no runs recorded"]
    rows = [[r["crawl_id"], r["started_at"], r["finished_at"] or "-", r["outcome"] + ("*" if r["flags"] else ""),
             r["seeds"], r["fetched"], r["kept"], r["failed"], r["missing"], r["edges"], r["requests"],
             f"{r['base_url']} {r['api_version']}"] for r in runs]
    lines = table(["RUN", "STARTED", "FINISHED", "OUTCOME", "SEEDS", "FETCHED", "KEPT", "FAILED", "MISSING",
                   "REFERENCES", "REQUESTS", "SERVER"], rows, indent="")
    lines.append("FETCHED and REFERENCES: fetched in that run; KEPT: fresh fetches replayed, not fetched again")
    if any(r["flags"] for r in runs):
        lines.append("* flagged: the result looked like a catastrophe")
    lines += [f"run #{r['crawl_id']}: {safe(r['message'])}" for r in runs if r["message"]]
    lines += [f"run #{r['crawl_id']}: {safe(flag)}" for r in runs for flag in r["flags"]]
    return lines


def diff_text(d: dict) -> list[str]:
    c = d["counts"]
    lines = [f"from run #{d['from']} to run #{d['to']}: {plural(c['added'], 'reference')} added, "
             f"{c['removed']} removed; {c['became_unused']} media became unused, {c['used_again']} used again"]
    for title, key in (("added", "added"), ("removed", "removed")):
        if d[key]:
            lines.append(f"{title}:")
            lines += table(["SOURCE", "TARGET", "ORIGIN", "LOCATION"],
                           [[e["source"], e["target"], e["origin"], e["reference"].get("location")] for e in d[key]])
    for title, key in (("became unused", "became_unused"), ("used again", "used_again")):
        if d[key]:
            lines.append(f"{title}:")
            lines += [f"  {safe(n['node'])}" for n in d[key]]
    return lines


def guard_text(a: dict) -> list[str]:
    lines = []
    for n in a["nodes"]:
        lines.append(f"{safe(n['node'])}  {n['verdict'].upper()}: {safe(n['reason'])}")
        for origin, sources in sorted(n["referrers"].items()):
            shown = ", ".join(safe(s) for s in sources[:8]) + (f" (+{len(sources) - 8} more)" if len(sources) > 8 else "")
            lines.append(f"    via {origin}: {shown}")
    for flag in a["flags"]:
        lines.append(f"WARNING: the last crawl looks wrong: {safe(flag)}")
    verdict = {0: "safe to delete", 1: "NOT safe: still referenced", 3: "NOT safe: unknown or stale"}[a["exit"]]
    return lines + [f"verdict: {verdict}"]
