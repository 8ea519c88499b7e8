"""Interrupted or killed crawls, resumed: the same answers as an uninterrupted crawl."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from contextlib import closing

import pytest
from conftest import media

from crawler import answers
from crawler.demo import stored_edges
from crawler.model import ORIGINS, Node
from crawler.sandbox import DEFAULT_TOKEN
from crawler.store import open_readonly

ALL = set(ORIGINS)


def after_requests(count: int):
    """An on_request hook, and an event that is set once ``count`` requests have arrived."""
    reached, seen = threading.Event(), [0]

    def on_request():
        seen[0] += 1
        if seen[0] >= count:
            reached.set()

    return on_request, reached


def start_crawl(url, seeds, db):
    env = {**os.environ, "LIVINGDOCS_TOKEN": DEFAULT_TOKEN}
    return subprocess.Popen([sys.executable, "-m", "crawler", "crawl", "--base-url", url, "--seeds-file", seeds,
                             "--db", db, "--concurrency", "4"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def assert_truth(db, dataset, seeds):
    with closing(open_readonly(db)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert stored_edges(conn) == dataset.closure_edges(seeds)
        for kind in ("media", "document"):
            got = answers.orphans_answer(conn, kind, ALL)
            assert {Node(o["kind"], o["id"]) for o in got["orphans"]} == dataset.orphans(kind, seeds)
            assert got["unknown"] == []


def complete_pairs(db, crawl_id=1) -> set:
    with sqlite3.connect(db) as conn:
        return set(conn.execute("SELECT n.kind || ':' || n.id, f.endpoint FROM fetches f JOIN nodes n USING (node_id)"
                                " WHERE f.status = 'complete' AND f.crawl_id = ?", (crawl_id,)))


@pytest.mark.parametrize("how", ["SIGINT", "SIGKILL"])
def test_resume_after_an_interrupt_or_a_kill_finishes_with_the_truth(sandbox, newsroom, db, tmp_path, run_cli, how):
    on_request, reached = after_requests(300)
    url, stats = sandbox(newsroom, latency=0.002, on_request=on_request)
    seeds_file = tmp_path / "seeds.txt"
    newsroom.write_seeds(seeds_file)
    proc = start_crawl(url, seeds_file, db)
    try:
        assert reached.wait(timeout=60), "the crawl never got going"
        proc.send_signal(getattr(signal, how))
        proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == (130 if how == "SIGINT" else -signal.SIGKILL)
    done_before = complete_pairs(db)
    assert done_before, "nothing was stored before the interruption"
    log_before = len(stats.log)

    result = run_cli("crawl", "--resume", "--db", db)
    assert result.exit_code == 0, result.output
    assert "crawl #1 complete" in result.stderr
    refetched = {(str(node), name) for name, node, q in stats.log[log_before:] if q.get("offset", "0") == "0"
                 and "after" not in q}
    assert not refetched & done_before  # what was finished is not fetched again
    seeds = [media(i) for i in newsroom.media_ids()]
    assert_truth(db, newsroom, seeds)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT outcome, resumed FROM crawls").fetchall() == [("complete", 1)]


def test_resume_refuses_what_it_cannot_carry_on(sandbox, run_cli, db, newsroom):
    assert "no such database" in run_cli("crawl", "--resume", "--db", db).stderr
    url, _ = sandbox(newsroom)
    assert run_cli("crawl", "--base-url", url, "media:" + newsroom.media_ids()[0], "--db", db).exit_code == 0
    done = run_cli("crawl", "--resume", "--db", db)
    assert done.exit_code == 2 and "completed" in done.stderr and "nothing to resume" in done.stderr
    mixed = run_cli("crawl", "--resume", "media:x", "--endpoints", "media", "--db", db)
    assert mixed.exit_code == 2 and "leave out NODES, --endpoints" in mixed.stderr
