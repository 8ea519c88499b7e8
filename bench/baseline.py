"""The lean baseline: fetch a list of URLs with one aiohttp session and N workers, parse each
body as JSON, nothing else. What refgraph's crawl is measured against in ``make bench``.

    python bench/baseline.py URLS_FILE --base-url http://127.0.0.1:PORT --concurrency 32

URLS_FILE holds one path-and-query per line, already percent-encoded. Prints one JSON line:
``{"requests": N, "seconds": S, "statuses": {...}}``. The token comes from $LIVINGDOCS_TOKEN.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import time

import aiohttp
import yarl


async def fetch_all(base_url: str, paths: list[str], concurrency: int, token: str) -> dict:
    urls = iter([yarl.URL(base_url + path, encoded=True) for path in paths])
    statuses: collections.Counter = collections.Counter()
    connector = aiohttp.TCPConnector(limit=concurrency)
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        async def worker() -> None:
            for url in urls:  # one shared iterator: each URL is taken by exactly one worker
                async with session.get(url) as resp:
                    json.loads(await resp.read())
                    statuses[resp.status] += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return {"requests": sum(statuses.values()), "seconds": seconds, "statuses": dict(statuses)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("urls_file")
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    with open(args.urls_file, encoding="utf-8") as fh:
        paths = [line.rstrip("\n") for line in fh if line.strip()]
    result = asyncio.run(fetch_all(args.base_url, paths, args.concurrency, os.environ["LIVINGDOCS_TOKEN"]))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
