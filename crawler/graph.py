"""Graph questions as small pure networkx functions.

Graphs here are DiGraphs whose edges point from referrer to referenced, one edge per pair
that has at least one reference, without attributes: enough for depths and paths, and cheap
enough that a hub's hundreds of thousands of references make a graph in a second. Which
origins the references came through is read from the (source, target, origin) triples the
graph was built from (see ``queries.ancestors``).
"""

from __future__ import annotations

import networkx as nx

__all__ = ["impact", "impact_origins", "reference_path", "build_graph"]


def build_graph(edges, nodes=()) -> nx.DiGraph:
    """A graph from (source, target, origin) triples, one edge per (source, target), and of
    ``nodes`` whether or not an edge touches them.

    >>> G = build_graph([("document:1", "media:x", "publication"), ("document:1", "media:x", "draft")])
    >>> G.number_of_edges()
    1
    """
    graph = nx.DiGraph()
    graph.add_nodes_from(nodes)
    graph.add_edges_from({(source, target): None for source, target, _ in edges})  # each pair once
    return graph


def impact(G: nx.DiGraph, node, cutoff: int | None = None) -> dict:
    """Everything that references ``node`` directly or transitively, with its depth.

    Parameters
    ----------
    G : graph with edges from referrer to referenced
    node : the node whose deletion is in question
    cutoff : only referrers at most this many hops away

    Returns
    -------
    dict mapping each referrer to its shortest distance (1 = references ``node`` itself).
    ``node`` is never in it, even when it references itself.

    Examples
    --------
    >>> G = build_graph([("page", "article", "publication"),
    ...                  ("article", "image", "publication"),
    ...                  ("article", "article", "publication")])
    >>> impact(G, "image")
    {'article': 1, 'page': 2}
    >>> impact(G, "image", cutoff=1)
    {'article': 1}
    """
    if node not in G:
        return {}
    depths = nx.single_source_shortest_path_length(G.reverse(copy=False), node, cutoff=cutoff)
    depths.pop(node, None)
    return dict(sorted(depths.items(), key=lambda item: item[1]))


def impact_origins(edges, node, depths: dict) -> dict:
    """For each referrer in ``depths``, the origins of the references that put it at its depth
    (those into ``node`` or into a referrer one hop closer), as a frozenset; ``edges`` are
    (source, target, origin) triples. Referrers with the same origins share one frozenset.

    >>> edges = [("a", "x", "publication"), ("a", "x", "draft"), ("m", "a", "media"), ("m", "x", "draft")]
    >>> impact_origins(edges, "x", impact(build_graph(edges), "x")) == {"a": {"draft", "publication"}, "m": {"draft"}}
    True
    """
    level = {node: 0, **depths}
    found: dict = {}
    for source, target, origin in edges:
        depth = depths.get(source)
        if depth is not None and level.get(target) == depth - 1:
            found.setdefault(source, set()).add(origin)
    shared: dict[frozenset, frozenset] = {}
    return {referrer: shared.setdefault(key := frozenset(found.get(referrer, ())), key) for referrer in depths}


def reference_path(G: nx.DiGraph, source, target) -> list | None:
    """The shortest chain of references from ``source`` to ``target``, or None.

    >>> G = build_graph([("page", "article", "publication"), ("article", "image", "publication")])
    >>> reference_path(G, "page", "image")
    ['page', 'article', 'image']
    >>> reference_path(G, "image", "page") is None
    True
    """
    try:
        return nx.shortest_path(G, source, target)
    except (nx.NetworkXNoPath, nx.NodeNotFound):
        return None

