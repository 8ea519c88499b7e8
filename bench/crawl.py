"""Crawl figures: refgraph's crawl against the lean baseline loop, at network latency and at none.

    python -m bench.crawl            # prints the figures as JSON

One sandbox process (``bench.serve``) serves a generated newsroom of 21 000 nodes on 127.0.0.1.
Each run pairs ``refgraph crawl --concurrency 32`` with ``bench/baseline.py`` fetching exactly
the URLs that crawl fetched (the sandbox hands them out), at the same concurrency; crawl and
baseline alternate, each in a process of its own, each crawl into a new database.

1. At 20 ms latency per request: requests per second of each, against the bound
   concurrency / latency = 1600 requests/s. Each is timed by its own clock around its fetching
   (the crawl's is the ``seconds`` of its JSON "end" event), so neither start-up counts.
2. At 0 ms: CPU seconds per request of each process (user + system, from its rusage; the
   server's CPU is not counted), start-up and, for the crawl, parsing and storing included.

Every figure is the median of ``runs`` runs; the raw runs are in the result beside it.

The crawl starts from every ``SEED_EVERY``-th media entry, not from all of them: the full
closure takes about 48 600 requests, 30 s at the bound, which six runs at latency could not
afford within the bench's time. Its closure is still a third of the graph (about 6 700 nodes,
17 500 requests), served from the full 21 000-node dataset.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from crawler.api import endpoint_url
from crawler.model import ENDPOINTS, Node
from crawler.sandbox import DEFAULT_TOKEN

HERE = Path(__file__).resolve().parent
MEDIA, DOCUMENTS = 14_000, 7_000  # 21 000 nodes
SEED_EVERY = 6
CONCURRENCY = 32
LATENCY = 0.020  # seconds per request, part 1
TARGET_RATE_RATIO = 0.9  # refgraph's requests/s at least this much of the baseline's
TARGET_CPU_RATIO = 1.5  # refgraph's CPU per request at most this much of the baseline's
START_TIMEOUT = 60.0  # seconds for the sandbox to build its dataset and listen
RUN_TIMEOUT = 180.0  # seconds for one crawl or baseline run


class BenchError(RuntimeError):
    """A run did not do what the comparison needs (incomplete crawl, different request counts)."""


def _stop(proc: subprocess.Popen) -> None:
    """End a process we started, politely first."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def sandbox(workdir: Path) -> Iterator[tuple[str, Path]]:
    """The sandbox process, stopped on leaving; yields its base URL and its seeds file."""
    seeds, log = workdir / "all-seeds.txt", workdir / "serve.log"
    with open(log, "w") as errors:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.serve", "--media", str(MEDIA), "--documents", str(DOCUMENTS),
             "--write-seeds", str(seeds)],
            cwd=HERE.parent, stdout=subprocess.PIPE, stderr=errors, text=True)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], START_TIMEOUT)
        base_url = proc.stdout.readline().strip() if ready else ""
        if not base_url.startswith("http://"):
            raise BenchError(f"the sandbox did not start: {log.read_text()[-2000:]}")
        yield base_url, seeds
    finally:
        _stop(proc)


def _post(url: str) -> object:
    request = urllib.request.Request(url, method="POST", headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"})
    with urllib.request.urlopen(request, timeout=60) as resp:
        return json.load(resp)


def set_latency(base_url: str, seconds: float) -> None:
    _post(f"{base_url}/_bench/latency?seconds={seconds}")


def served(base_url: str) -> list[str]:
    """The page URLs the sandbox served since last asked."""
    return _post(f"{base_url}/_bench/served")


def warm_up(base_url: str, seed_line: str) -> None:
    """One page, so the sandbox builds its index before the first measured run, not in it."""
    url = endpoint_url(base_url, "2026-01", ENDPOINTS[0], Node.parse(seed_line), {"limit": 1})
    request = urllib.request.Request(str(url), headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"})
    with urllib.request.urlopen(request, timeout=60) as resp:
        resp.read()
    served(base_url)


def _env() -> dict[str, str]:
    """The token in the environment (never on a command line); no REFGRAPH_* setting of the
    caller's may change the crawl. Bytecode is cached as an installed refgraph has it: with
    PYTHONDONTWRITEBYTECODE every crawl would compile its modules again, in its CPU time."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REFGRAPH_") and k != "PYTHONDONTWRITEBYTECODE"}
    env["LIVINGDOCS_TOKEN"] = DEFAULT_TOKEN
    return env


def run_child(argv: list[str], workdir: Path) -> tuple[str, str, float, float, int]:
    """Run a process to its end: (stdout, stderr, wall seconds, CPU seconds, exit code).

    CPU is the child's own user + system time: the difference in RUSAGE_CHILDREN across its
    wait. The sandbox, our only other child, is still running and so is not in it.
    """
    out_path, err_path = workdir / "child.out", workdir / "child.err"
    with open(out_path, "w") as out, open(err_path, "w") as err:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=HERE.parent, env=_env(), stdout=out, stderr=err)
        try:
            code = proc.wait(RUN_TIMEOUT)
        finally:
            _stop(proc)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return out_path.read_text(), err_path.read_text(), wall, cpu, code


def _refgraph() -> list[str]:
    """The installed console script beside this Python, else the same entry point as a module."""
    script = Path(sys.executable).with_name("refgraph")
    return [str(script)] if script.exists() else [sys.executable, "-m", "crawler"]


def run_crawl(base_url: str, seeds: Path, workdir: Path, run: int) -> dict:
    """One crawl into a new database; its figures from the JSON "end" event and its rusage."""
    db = workdir / f"crawl-{run}.db"
    argv = [*_refgraph(), "crawl", "--base-url", base_url, "--seeds-file", str(seeds), "--db", str(db),
            "--concurrency", str(CONCURRENCY), "--log-format", "json", "--quiet"]
    try:
        _, err, wall, cpu, code = run_child(argv, workdir)
    finally:
        for leftover in workdir.glob(f"crawl-{run}.db*"):
            leftover.unlink()
    end = [e for e in map(_json_or_none, err.splitlines()) if isinstance(e, dict) and e.get("event") == "end"]
    if code != 0 or not end or end[-1]["outcome"] != "complete" or end[-1]["failed"]:
        raise BenchError(f"crawl run {run} did not complete (exit {code}): {err[-2000:]}")
    requests, seconds = end[-1]["requests"], end[-1]["seconds"]
    return {"requests": requests, "seconds": seconds, "requests_per_second": round(requests / seconds, 1),
            "wall_seconds": round(wall, 3), "cpu_seconds": round(cpu, 3),
            "cpu_ms_per_request": round(cpu / requests * 1000, 4), "nodes": end[-1]["nodes"]}


def run_baseline(base_url: str, urls: list[str], workdir: Path) -> dict:
    """The lean loop over ``urls``; its figures from its own output and its rusage."""
    urls_file = workdir / "urls.txt"
    urls_file.write_text("\n".join(urls) + "\n", encoding="utf-8")
    argv = [sys.executable, str(HERE / "baseline.py"), str(urls_file), "--base-url", base_url,
            "--concurrency", str(CONCURRENCY)]
    out, err, wall, cpu, code = run_child(argv, workdir)
    result = _json_or_none(out.strip())
    if code != 0 or not isinstance(result, dict):
        raise BenchError(f"baseline run failed (exit {code}): {err[-2000:]}")
    requests, seconds = result["requests"], result["seconds"]
    if result["statuses"] != {"200": len(urls)}:
        raise BenchError(f"baseline answers were not all 200: {result['statuses']}")
    return {"requests": requests, "seconds": round(seconds, 3), "requests_per_second": round(requests / seconds, 1),
            "wall_seconds": round(wall, 3), "cpu_seconds": round(cpu, 3),
            "cpu_ms_per_request": round(cpu / requests * 1000, 4)}


def _json_or_none(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return None


def paired_runs(base_url: str, seeds: Path, workdir: Path, runs: int) -> tuple[list[dict], list[dict]]:
    """Crawl, then the baseline over the URLs that crawl fetched, ``runs`` times; every crawl
    must fetch the same URLs, and the baseline as many as the crawl."""
    crawls, baselines, first = [], [], None
    for run in range(runs):
        crawl = run_crawl(base_url, seeds, workdir, run)
        urls = served(base_url)
        if len(urls) != crawl["requests"]:
            raise BenchError(f"crawl run {run} counts {crawl['requests']} requests, the sandbox served {len(urls)}")
        first = first or sorted(urls)
        if sorted(urls) != first:
            raise BenchError(f"crawl run {run} fetched other URLs than run 0")
        baseline = run_baseline(base_url, urls, workdir)
        if baseline["requests"] != crawl["requests"]:
            raise BenchError(f"baseline made {baseline['requests']} requests, the crawl {crawl['requests']}")
        served(base_url)  # the baseline's own pages: forget them before the next crawl
        crawls.append(crawl)
        baselines.append(baseline)
    return crawls, baselines


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def latency_figures(crawls: list[dict], baselines: list[dict]) -> dict:
    crawl, baseline = _median(crawls, "requests_per_second"), _median(baselines, "requests_per_second")
    ratio = crawl / baseline
    return {"latency_ms": LATENCY * 1000, "concurrency": CONCURRENCY,
            "bound_requests_per_second": round(CONCURRENCY / LATENCY, 1),
            "crawl_requests_per_second": crawl, "baseline_requests_per_second": baseline,
            "crawl_share_of_bound": round(crawl / (CONCURRENCY / LATENCY), 3),
            "ratio_crawl_to_baseline": round(ratio, 3), "target_ratio_at_least": TARGET_RATE_RATIO,
            "met": ratio >= TARGET_RATE_RATIO, "crawl_runs": crawls, "baseline_runs": baselines}


def cpu_figures(crawls: list[dict], baselines: list[dict]) -> dict:
    crawl, baseline = _median(crawls, "cpu_ms_per_request"), _median(baselines, "cpu_ms_per_request")
    ratio = crawl / baseline
    return {"latency_ms": 0, "concurrency": CONCURRENCY,
            "crawl_cpu_ms_per_request": crawl, "baseline_cpu_ms_per_request": baseline,
            "ratio_crawl_to_baseline": round(ratio, 3), "target_ratio_at_most": TARGET_CPU_RATIO,
            "met": ratio <= TARGET_CPU_RATIO, "crawl_runs": crawls, "baseline_runs": baselines}


def measure(runs: int = 3) -> dict:
    """Both crawl figures, each the median of ``runs`` alternating crawl and baseline runs."""
    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="refgraph-bench-crawl-"))
    try:
        with sandbox(workdir) as (base_url, all_seeds):
            lines = [line for line in all_seeds.read_text(encoding="utf-8").splitlines() if line.startswith("media:")]
            seeds = workdir / "seeds.txt"
            seeds.write_text("\n".join(lines[::SEED_EVERY]) + "\n", encoding="utf-8")
            warm_up(base_url, lines[0])
            set_latency(base_url, LATENCY)
            at_latency = paired_runs(base_url, seeds, workdir, runs)
            set_latency(base_url, 0.0)
            at_zero = paired_runs(base_url, seeds, workdir, runs)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    crawls = at_latency[0] + at_zero[0]
    return {
        "graph": {"nodes": MEDIA + DOCUMENTS, "media": MEDIA, "documents": DOCUMENTS,
                  "seeds": len(lines[::SEED_EVERY]), "seed_every_nth_media": SEED_EVERY,
                  "crawled_nodes": crawls[0]["nodes"], "requests_per_run": crawls[0]["requests"]},
        "runs": runs,
        "latency": latency_figures(*at_latency),
        "cpu": cpu_figures(*at_zero),
        "seconds": round(time.perf_counter() - started, 1),
    }


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
