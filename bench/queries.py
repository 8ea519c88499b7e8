"""Query figures: whole ``refgraph`` commands against a database of a million nodes.

    python -m bench.queries          # prints the figures as JSON

The database is ``bench.bigdb``'s (1 000 000 nodes, 3 000 000 references, hubs of 100 000+
referrers), written through the store. Building it takes minutes, so it is kept in
``bench/.data`` under a name made of its parameters and of the code that writes it, and used
again while none of that changes.

Each command runs in a process of its own, output to /dev/null, as a user's script would run
it: the wall time covers process start, imports, the query and the output; the peak RSS is the
process's own (rusage ``ru_maxrss``).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from bench import bigdb  # its defaults; it runs in a process of its own

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / ".data"
RUNS = 3
TIMEOUT = 300.0  # seconds for one command
RSS_LIMIT_MB = 1536

# (name, arguments after the database, target seconds)
COMMANDS = (
    ("refs, typical node", ["refs", "{typical}"], 0.5),
    ("impact, typical node", ["impact", "{typical}"], 0.5),
    ("impact, largest hub", ["impact", "{hub}"], 5.0),
    ("orphans --kind media", ["orphans", "--kind", "media"], 5.0),
    ("stats", ["stats"], 5.0),
    ("export --format graphml", ["export", "--format", "graphml"], 60.0),
)


def _code_hash() -> str:
    """What the database depends on: the writer, the schema and the plan."""
    digest = hashlib.sha256()
    for path in (HERE / "bigdb.py", ROOT / "schema.sql", ROOT / "crawler" / "store.py", ROOT / "crawler" / "model.py"):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def database(nodes: int = bigdb.NODES, edges: int = bigdb.EDGES, seed: int = 1) -> tuple[Path, dict]:
    """The bench database and what it holds, built unless a current one is kept."""
    DATA.mkdir(exist_ok=True)
    path = DATA / f"bigdb-{nodes}-{edges}-{seed}-{_code_hash()}.db"
    info_path = path.with_suffix(".json")
    if path.exists() and info_path.exists():
        return path, {**json.loads(info_path.read_text()), "reused": True}
    for old in DATA.glob("bigdb-*"):
        old.unlink()
    building = path.with_name(path.name + ".building")
    for leftover in DATA.glob(building.name + "*"):
        leftover.unlink()
    # In a process of its own, so that the bench does not keep the plan's memory afterwards.
    built = subprocess.run([sys.executable, "-m", "bench.bigdb", str(building), "--nodes", str(nodes),
                            "--edges", str(edges), "--seed", str(seed)], cwd=ROOT, capture_output=True, text=True)
    if built.returncode != 0:
        raise RuntimeError(f"building {building.name} failed: {built.stderr.strip()[-1000:]}")
    info = json.loads(built.stdout)
    info["db_bytes"] = building.stat().st_size
    building.rename(path)
    info_path.write_text(json.dumps(info))
    return path, {**info, "reused": False}


def run_command(argv: list[str]) -> dict:
    """Run one command to /dev/null through ``bench.timed``: its wall seconds, peak RSS and exit."""
    try:
        done = subprocess.run([sys.executable, "-m", "bench.timed", "--", *argv], cwd=ROOT, capture_output=True,
                              text=True, timeout=TIMEOUT, check=True)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{' '.join(argv)}: still running after {TIMEOUT:.0f} s") from None
    figures = json.loads(done.stdout)
    if figures["exit"] not in (0, 3):  # 3: an answer that says some nodes are unknown
        raise RuntimeError(f"{' '.join(argv)}: exit {figures['exit']}: {figures['stderr'].strip()}")
    return {k: figures[k] for k in ("seconds", "peak_rss_mb", "exit")}


def measure(runs: int = RUNS) -> dict:
    path, info = database()
    refgraph = shutil.which("refgraph", path=str(Path(sys.executable).parent)) or "refgraph"
    picks = info["picks"]
    figures = {}
    for name, args, target in COMMANDS:
        argv = [refgraph, *(a.format(**picks) for a in args), "--db", str(path)]
        samples = [run_command(argv) for _ in range(runs)]
        seconds = statistics.median(s["seconds"] for s in samples)
        rss = statistics.median(s["peak_rss_mb"] for s in samples)
        figures[name] = {
            "command": " ".join(["refgraph", *(a.format(**picks) for a in args), "--db", path.name]),
            "seconds": round(seconds, 3), "peak_rss_mb": round(rss, 1), "target_seconds": target,
            "target_rss_mb": RSS_LIMIT_MB, "met": seconds < target and rss < RSS_LIMIT_MB,
            "exit": samples[0]["exit"], "runs": [{k: round(v, 3) for k, v in s.items()} for s in samples]}
    return {"database": {k: info[k] for k in ("nodes", "edges", "fetches", "failed", "missing", "picks",
                                              "write_seconds", "edges_per_second", "db_bytes", "reused")},
            "commands": figures}


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
