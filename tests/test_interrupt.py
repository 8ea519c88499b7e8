"""A real process, a real signal: the crawl ends as interrupted, recorded, the database sound."""

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
from crawler.model import ORIGINS
from crawler.sandbox import DEFAULT_TOKEN
from crawler.store import open_readonly


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_mid_crawl_is_recorded_as_interrupted(sandbox, newsroom, db, tmp_path, sig):
    arrived = threading.Event()
    # Answers take a while, so the signal lands while requests are in flight.
    url, stats = sandbox(newsroom, latency=0.05, on_request=arrived.set)
    seeds = tmp_path / "seeds.txt"
    newsroom.write_seeds(seeds)
    env = {**os.environ, "LIVINGDOCS_TOKEN": DEFAULT_TOKEN}
    proc = subprocess.Popen([sys.executable, "-m", "crawler", "crawl", "--base-url", url, "--seeds-file", seeds,
                             "--db", db], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert arrived.wait(timeout=60), "the crawl never reached the server"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in err
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        (outcome,), = conn.execute("SELECT outcome FROM crawls").fetchall()
        # No fetch is complete without its references: every stored complete fetch of a seed
        # holds exactly the references the sandbox has for it.
        rows = conn.execute("SELECT n.id, f.endpoint FROM fetches f JOIN nodes n USING (node_id)"
                            " WHERE n.kind = 'media' AND f.status = 'complete'").fetchall()
    assert outcome == "interrupted"
    with closing(open_readonly(db)) as conn:
        unknown = answers.orphans_answer(conn, "media", set(ORIGINS))["unknown"]
    assert len(unknown) > 0  # not everything was crawled: the rest is unknown, not unused
    complete = {media(i) for i, _ in rows}
    with closing(open_readonly(db)) as conn:
        for node in list(complete)[:50]:
            got = answers.refs_answer(conn, node, set(ORIGINS))
            if got["complete"]:
                assert got["counts"]["references"] == len(newsroom.refs(node))
