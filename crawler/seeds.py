"""Seeds: the nodes a crawl starts from, from arguments and from a seeds file.

A seeds file has one ``media:ID`` or ``document:ID`` per line. A line whose first non-blank
character is ``#`` is a comment (so an id may contain ``#``); blank lines are skipped. The
whole file is checked before any request is made.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from .model import Node

__all__ = ["SeedError", "parse_seed_lines", "read_seeds_file"]


class SeedError(ValueError):
    """A bad seed, named by file and line (or by argument)."""


def parse_seed_lines(lines: Iterable[bytes | str], name: str) -> list[Node]:
    """Nodes from the lines of a seeds file called ``name``; SeedError names ``name:line``.

    >>> parse_seed_lines(["# media to check", "", "media:a#1", "  document:42  "], "s.txt")
    [Node(kind='media', id='a#1'), Node(kind='document', id='42')]
    >>> parse_seed_lines(["media:ok", "image:1"], "s.txt")
    Traceback (most recent call last):
    ...
    crawler.seeds.SeedError: s.txt:2: unknown kind 'image' in 'image:1' (expected media:ID or document:ID)
    """
    nodes: list[Node] = []
    for number, line in enumerate(lines, start=1):
        if isinstance(line, bytes):
            try:
                line = line.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError:
                raise SeedError(f"{name}:{number}: not valid UTF-8") from None
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            nodes.append(Node.parse(text))
        except ValueError as exc:
            raise SeedError(f"{name}:{number}: {exc}") from None
    return list(dict.fromkeys(nodes))


def read_seeds_file(path: str | Path) -> list[Node]:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SeedError(f"{path}: cannot read seeds file ({exc.strerror or exc})") from None
    return parse_seed_lines(data.splitlines(), str(path))
