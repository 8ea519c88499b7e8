"""``make bench``: every figure of the speed issue, side by side with its limit.

    python -m bench [--out bench/results.json] [--runs 3] [--only crawl,storage,queries]

Prints one table and writes the JSON file: the machine and versions, then each part's
figures (medians of ``--runs`` runs, the raw runs beside them, the ratios measured in the same
run). Exit 0 when it ran, whether or not every target was met (the table says which).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

from bench import crawl, queries, storage

HERE = Path(__file__).resolve().parent
PARTS = ("crawl", "storage", "queries")


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else None
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True)
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(memory / 2**30, 1) if memory else None,
            "os": platform.platform(), "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
            "packages": {name: metadata.version(name) for name in
                         ("livingdocs-refgraph", "aiohttp", "aiosqlite", "networkx", "click")},
            "commit": commit.stdout.strip() or None, "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}


def _verdict(met: bool) -> str:
    return "met" if met else "NOT MET"


def table(results: dict) -> list[str]:
    rows = [("figure", "measured (median)", "limit / baseline", "target", "")]
    if "crawl" in results:
        lat, cpu = results["crawl"]["latency"], results["crawl"]["cpu"]
        rows.append(("crawl at 20 ms, --concurrency 32", f"{lat['crawl_requests_per_second']:.0f} req/s",
                     f"bound {lat['bound_requests_per_second']:.0f}, baseline {lat['baseline_requests_per_second']:.0f}",
                     f">= {lat['target_ratio_at_least']}x baseline (got {lat['ratio_crawl_to_baseline']:.2f}x)",
                     _verdict(lat["met"])))
        rows.append(("CPU per request at 0 ms", f"{cpu['crawl_cpu_ms_per_request']:.3f} ms",
                     f"baseline {cpu['baseline_cpu_ms_per_request']:.3f} ms",
                     f"<= {cpu['target_ratio_at_most']}x baseline (got {cpu['ratio_crawl_to_baseline']:.2f}x)",
                     _verdict(cpu["met"])))
    if "storage" in results:
        st = results["storage"]
        rows.append(("store write path", f"{st['edges_per_second']:,.0f} edges/s", f"{st['transactions']} commits",
                     f">= {st['target_edges_per_second']:,} edges/s",
                     _verdict(st["edges_per_second"] >= st["target_edges_per_second"])))
        rows.append(("database size", f"{st['bytes_per_edge']:.0f} bytes/edge", "", "(reported)", ""))
    if "queries" in results:
        db = results["queries"]["database"]
        rows.append((f"1M-node DB build ({db['edges']:,} edges)", f"{db['write_seconds']} s",
                     f"{db['edges_per_second']:,} edges/s", "(reported)", "reused" if db["reused"] else ""))
        for name, q in results["queries"]["commands"].items():
            rows.append((name, f"{q['seconds']:.2f} s, {q['peak_rss_mb']:.0f} MB", "",
                         f"< {q['target_seconds']:g} s, < {q['target_rss_mb']} MB", _verdict(q["met"])))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(HERE / "results.json"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", default=",".join(PARTS), help="comma-separated parts: " + ", ".join(PARTS))
    args = parser.parse_args()
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"--only: unknown part {sorted(unknown)[0]!r} (choose from {', '.join(PARTS)})")
    started = time.perf_counter()
    results: dict = {"machine": machine(), "runs": args.runs}
    for part, module in (("crawl", crawl), ("storage", storage), ("queries", queries)):
        if part in parts:
            print(f"bench: {part} ...", file=sys.stderr, flush=True)
            begun = time.perf_counter()
            results[part] = module.measure(args.runs)
            print(f"bench: {part} took {time.perf_counter() - begun:.0f} s", file=sys.stderr, flush=True)
    results["seconds"] = round(time.perf_counter() - started, 1)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print("\n".join(table(results)))
    print(f"\n{results['seconds']:.0f} s in all; figures in {args.out}")


if __name__ == "__main__":
    main()
