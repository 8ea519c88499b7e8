"""Shared fixtures: known graphs, the sandbox on 127.0.0.1 (started and stopped by each test),
and a helper to run the CLI in-process."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from crawler.cli import cli
from crawler.model import Node, Reference
from crawler.newsroom import generate
from crawler.sandbox import DEFAULT_TOKEN, serve_in_thread
from crawler.sandbox_data import Dataset

FIXTURES = Path(__file__).parent / "fixtures" / "api"
SECRET = "s3cr3t-token-must-never-show-up"


def load_fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def pub(source: Node, target: Node, **fields) -> Reference:
    """A publication reference from source (a document) to target, with the given fields."""
    return Reference.make(source, target, "publication", {"id": target.id, **fields})


def doc(i: int) -> Node:
    return Node.of("document", i)


def media(i: str) -> Node:
    return Node("media", i)


@pytest.fixture(scope="session")
def newsroom() -> Dataset:
    """A generated newsroom of a few thousand nodes (shared, read-only)."""
    return generate(media=1200, documents=600, seed=7)


@pytest.fixture
def sandbox():
    """Start a sandbox server in a thread for the test; yields a function that serves a dataset."""
    stack = []

    def start(dataset: Dataset, **kwargs):
        cm = serve_in_thread(dataset, **kwargs)
        stack.append(cm)
        return cm.__enter__()

    yield start
    while stack:
        stack.pop().__exit__(None, None, None)


@pytest.fixture
def run_cli(monkeypatch):
    """Invoke the CLI in-process; LIVINGDOCS_TOKEN is the sandbox token unless the test says."""
    monkeypatch.delenv("REFGRAPH_DB", raising=False)
    monkeypatch.delenv("REFGRAPH_BASE_URL", raising=False)

    def run(*args, token: str | None = DEFAULT_TOKEN, env: dict | None = None):
        environ = {"LIVINGDOCS_TOKEN": token} if token is not None else {}
        if token is None:
            monkeypatch.delenv("LIVINGDOCS_TOKEN", raising=False)
        environ.update(env or {})
        return CliRunner().invoke(cli, [str(a) for a in args], env=environ, catch_exceptions=False)

    return run


@pytest.fixture
def db(tmp_path) -> str:
    return os.fspath(tmp_path / "refs.db")
