"""The bench's sandbox process: ``refgraph sandbox``'s app, plus two routes for the bench.

Run as ``python -m bench.serve --media M --documents D --latency S --write-seeds FILE``; it
writes every media id to FILE as seeds and then prints its base URL as the first line on
stdout once it listens.

- ``POST /_bench/served`` answers the page URLs it served (path and query, as the client sent
  them) in order, and forgets them: the baseline loop fetches exactly what the crawl fetched.
- ``POST /_bench/latency?seconds=S`` sets the delay before every answer, so that one process
  (one dataset, built once) serves both the latency and the CPU measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from aiohttp import web

from crawler.api import endpoint_url
from crawler.model import ENDPOINTS_BY_NAME
from crawler.newsroom import generate
from crawler.sandbox import make_app, serve

SERVED_PATH = "/_bench/served"
LATENCY_PATH = "/_bench/latency"


def served_urls(app: web.Application) -> list[str]:
    """Every page the app served, as a path and query, in order; the log starts afresh."""
    stats = app["stats"]
    urls = [str(endpoint_url("", "2026-01", ENDPOINTS_BY_NAME[name], node, query))
            for name, node, query in stats.log if node is not None]
    stats.log.clear()
    return urls


def bench_app(dataset, latency: float) -> web.Application:
    """The sandbox app with the bench routes. The delay is a middleware of ours rather than the
    sandbox's own ``latency`` (fixed when the app is made), so the bench can change it."""
    app = make_app(dataset)
    delay = {"seconds": latency}

    @web.middleware
    async def latency_middleware(request: web.Request, handler):
        if delay["seconds"] and not request.path.startswith("/_bench/"):
            await asyncio.sleep(delay["seconds"])
        return await handler(request)

    async def served(request: web.Request) -> web.Response:
        return web.json_response(served_urls(app))

    async def set_latency(request: web.Request) -> web.Response:
        delay["seconds"] = float(request.query["seconds"])
        return web.json_response(delay)

    app.middlewares.append(latency_middleware)
    app.router.add_route("POST", SERVED_PATH, served)
    app.router.add_route("POST", LATENCY_PATH, set_latency)
    return app


async def main(args: argparse.Namespace) -> None:
    dataset = generate(media=args.media, documents=args.documents, seed=args.seed)
    async with serve(bench_app(dataset, args.latency), "127.0.0.1", 0) as base_url:
        dataset.write_seeds(args.write_seeds)
        print(base_url, flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--media", type=int, required=True)
    parser.add_argument("--documents", type=int, required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before every answer")
    parser.add_argument("--write-seeds", required=True)
    try:
        asyncio.run(main(parser.parse_args()))
    except KeyboardInterrupt:
        sys.exit(0)
