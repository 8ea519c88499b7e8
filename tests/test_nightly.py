"""The nightly loop: incremental recrawls, the delete guard, logs fit for cron, configuration."""

from __future__ import annotations

import io
import json
import sqlite3
from collections import Counter

import pytest
from conftest import doc, media, pub
from test_cli import KNOWN, SEEDS

from crawler.model import Reference
from crawler.progress import Reporter
from crawler.sandbox_data import Dataset


@pytest.fixture
def known_db(tmp_path, sandbox, run_cli, db):
    url, stats = sandbox(KNOWN)
    seeds = tmp_path / "seeds.txt"
    seeds.write_text(SEEDS)
    assert run_cli("crawl", "--base-url", url, "--seeds-file", seeds, "--db", db).exit_code == 0
    return db, url, stats, seeds


def test_stale_after_fetches_only_what_is_stale_or_new(known_db, run_cli):
    db, url, stats, seeds = known_db
    before = stats.requests
    again = run_cli("crawl", "--base-url", url, "--seeds-file", seeds, "--stale-after", "1h", "--db", db)
    assert again.exit_code == 0 and stats.requests == before  # everything was fresh
    newcomer = run_cli("crawl", "--base-url", url, "--seeds-file", seeds, "media:never-seen", "--stale-after", "1h",
                       "--db", db)
    assert newcomer.exit_code == 0  # the new seed is not in the sandbox: missing, which is no failure
    assert stats.requests == before + 2  # only the new seed, through its two endpoints
    full = run_cli("crawl", "--base-url", url, "--seeds-file", seeds, "--stale-after", "0s", "--db", db)
    assert full.exit_code == 0 and stats.requests > before + 2  # nothing is fresh within 0 s
    with sqlite3.connect(db) as conn:
        assert [r[0] for r in conn.execute("SELECT outcome FROM crawls")] == ["complete"] * 4


@pytest.mark.parametrize("nodes, code, verdicts", [
    (["media:m 2/x"], 0, ["unused"]),
    (["media:m1"], 1, ["used"]),
    (["media:m1", "media:m 2/x"], 1, ["used", "unused"]),
    (["media:nope"], 3, ["unknown"]),
    (["media:m 2/x", "media:nope"], 3, ["unused", "unknown"]),
])
def test_check_delete_exit_codes(known_db, run_cli, nodes, code, verdicts):
    db = known_db[0]
    result = run_cli("check-delete", *nodes, "--db", db, "--json")
    answer = json.loads(result.stdout)
    assert result.exit_code == code and [n["verdict"] for n in answer["nodes"]] == verdicts
    assert answer["safe"] is (code == 0)


def test_check_delete_says_who_and_what_it_looked_at(known_db, run_cli):
    db = known_db[0]
    used = run_cli("check-delete", "media:m1", "--db", db)
    assert "media:m1  USED" in used.stdout and "via publication: document:1" in used.stdout
    assert "via media: media:m3" in used.stdout and "verdict: NOT safe: still referenced" in used.stdout
    unused = run_cli("check-delete", "media:m 2/x", "--db", db)
    assert "verdict: safe to delete" in unused.stdout and "invisible to the API" in unused.stdout
    stale = run_cli("check-delete", "media:m 2/x", "--max-age", "0s", "--db", db)
    assert stale.exit_code == 3 and "STALE" in stale.stdout


def test_check_delete_on_drafts_only_and_on_deleted_referrers(sandbox, run_cli, db):
    ghost = doc(9)
    dataset = Dataset.from_edges([], [Reference.make(doc(2), doc(1), "draft", {"id": "1"}), pub(ghost, media("a"))])
    dataset.nodes.discard(ghost)
    dataset.changed()
    url, _ = sandbox(dataset)
    assert run_cli("crawl", "--base-url", url, "document:1", "media:a", "--db", db).exit_code == 0
    drafts = json.loads(run_cli("check-delete", "document:1", "--db", db, "--json").stdout)
    assert (drafts["exit"], drafts["nodes"][0]["verdict"]) == (1, "used-by-drafts-only")
    dangling = json.loads(run_cli("check-delete", "media:a", "--db", db, "--json").stdout)
    assert (dangling["exit"], dangling["nodes"][0]["verdict"]) == (3, "dangling")


def test_json_logs_parse_and_hold_the_summary(tmp_path, sandbox, run_cli, db):
    url, stats = sandbox(KNOWN)
    result = run_cli("crawl", "--base-url", url, "media:m1", "media:m 2/x", "--log-format", "json", "--db", db)
    events = [json.loads(line) for line in result.stderr.splitlines()]
    assert events[0]["event"] == "start" and events[-1]["event"] == "end"
    end = events[-1]
    assert end["outcome"] == "complete" and end["requests"] == stats.requests and end["fetched"] == stats.requests
    assert all("sandbox-token" not in line for line in result.stderr.splitlines())


def test_status_line_and_quiet():
    stats = Counter({"pairs/queued": 50, "fetch/complete": 20, "fetch/failed": 2, "requests/total": 30,
                     "retry/count": 4})
    line = Reporter(io.StringIO(), tty=False).status(stats)
    assert line.startswith("22 done, 28 queued, 2 failed, ") and "4 retries" in line and "ETA" in line
    quiet = io.StringIO()
    Reporter(quiet, quiet=True, json_logs=True).event("retry", node="media:x")
    assert quiet.getvalue() == ""


def test_config_file_environment_and_command_line_in_that_order(known_db, run_cli, tmp_path):
    db = known_db[0]
    config = tmp_path / "refgraph.toml"
    config.write_text(f'db = "{db}"\n[orphans]\nendpoints = "media"\n')
    from_file = json.loads(run_cli("--config", config, "orphans", "--json").stdout)
    assert from_file["endpoints"] == ["mediaLibrary/incomingMediaReferences"]
    from_env = json.loads(run_cli("--config", config, "orphans", "--json", env={"REFGRAPH_ENDPOINTS": "publications"}
                                  ).stdout)
    assert from_env["endpoints"] == ["mediaLibrary/incomingDocumentReferences"]
    from_flag = json.loads(run_cli("--config", config, "orphans", "--json", "--endpoints", "media,publications",
                                   env={"REFGRAPH_ENDPOINTS": "publications"}).stdout)
    assert len(from_flag["endpoints"]) == 2


@pytest.mark.parametrize("content, message", [
    ('[crawl]\nconcurency = 3\n', "'concurency' is not an option of refgraph crawl"),
    ('token = "abc"\n', "does not belong in a config file"),
    ('[nightly]\ndb = "x"\n', "[nightly] is not a refgraph command"),
    ('db = \n', "not valid TOML"),
])
def test_a_bad_config_file_is_named(run_cli, tmp_path, content, message):
    config = tmp_path / "bad.toml"
    config.write_text(content)
    result = run_cli("--config", config, "stats")
    assert result.exit_code == 2 and message in result.stderr and "abc" not in result.stderr


def _mutate(url: str, seed: int, changes: int) -> dict:
    import urllib.request

    request = urllib.request.Request(f"{url}/_sandbox/mutate?seed={seed}&changes={changes}", method="POST",
                                     headers={"Authorization": "Bearer sandbox-token"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def _edge_key(edge: dict) -> tuple:
    return edge["source"], edge["target"], edge["origin"], json.dumps(edge.get("reference", edge.get("ref")),
                                                                     sort_keys=True)


@pytest.mark.parametrize("incremental", [False, True])
def test_two_nights_diff_and_orphans_equal_the_true_change(tmp_path, sandbox, run_cli, db, incremental):
    from crawler.model import Node
    from crawler.newsroom import generate

    dataset = generate(media=400, documents=200, seed=11)
    seeds_file = tmp_path / "seeds.txt"
    dataset.write_seeds(seeds_file)
    seeds = [Node("media", i) for i in dataset.media_ids()]
    url, stats = sandbox(dataset)
    assert run_cli("crawl", "--base-url", url, "--seeds-file", seeds_file, "--db", db).exit_code == 0
    before_edges = dataset.closure_edges(seeds)
    change = _mutate(url, seed=5, changes=40)
    after_edges = dataset.closure_edges(seeds)
    first_night = stats.requests
    args = ["--stale-after", "0s"] if incremental else []
    second = run_cli("crawl", "--base-url", url, "--seeds-file", seeds_file, *args, "--db", db)
    assert second.exit_code == 0, second.stderr
    diff = json.loads(run_cli("diff", "--db", db, "--json").stdout)
    true_added = {(str(e.source), str(e.target), e.origin, json.dumps(e.fields, sort_keys=True))
                  for e in after_edges - before_edges}
    # References into nodes the second crawl no longer reaches are not checked again: they keep
    # their last known state, with its date. Every other removal must be seen.
    reached = dataset.closure(seeds)
    true_removed = {(str(e.source), str(e.target), e.origin, json.dumps(e.fields, sort_keys=True))
                    for e in before_edges - after_edges if e.target in reached}
    assert {_edge_key(e) for e in diff["added"]} == true_added and true_added
    assert {_edge_key(e) for e in diff["removed"]} == true_removed and true_removed
    assert {n["node"] for n in diff["became_unused"]} >= set(change["became_unused"]) & {str(s) for s in seeds}
    orphans = json.loads(run_cli("orphans", "--db", db, "--json").stdout)
    assert {Node(o["kind"], o["id"]) for o in orphans["orphans"]} == dataset.orphans("media", seeds)
    assert stats.requests > first_night


def test_config_paths_are_relative_to_the_file_and_env_typos_are_named(known_db, run_cli, tmp_path, monkeypatch):
    db = known_db[0]
    home = tmp_path / "cfg"
    home.mkdir()
    (home / "refgraph.toml").write_text(f'db = "{"../" + db.split("/")[-1]}"\n')
    monkeypatch.chdir(tmp_path.parent)  # cron starts elsewhere: the path must still find the database
    result = run_cli("--config", home / "refgraph.toml", "stats", "--json", env={"REFGRAPH_CONCURENCY": "3"})
    assert result.exit_code == 0 and json.loads(result.stdout)["nodes"]["media"] == 5
    assert "REFGRAPH_CONCURENCY is set but no refgraph option reads it" in result.stderr


def test_quiet_is_silent_when_all_went_well_and_speaks_when_not(sandbox, run_cli, db):
    url, _ = sandbox(KNOWN)
    ok = run_cli("crawl", "--base-url", url, "media:m1", "--quiet", "--db", db)
    assert ok.exit_code == 0 and ok.stderr == "" and ok.stdout == ""
    gone = run_cli("crawl", "--base-url", url, "media:m1", "--quiet", "--api-version", "2019-01", "--db", db)
    assert gone.exit_code == 1 and "is gone" in gone.stderr
