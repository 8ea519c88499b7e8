"""Graph questions as small pure networkx functions.

Graphs here are MultiDiGraphs whose edges point from referrer to referenced, one edge per
(referrer, referenced, origin), keyed by the origin (see ``queries.ancestors``): enough for
depths, paths and origins, so that a hub's hundreds of thousands of references fit in memory
without their JSON.
"""

from __future__ import annotations

import networkx as nx

__all__ = ["impact", "impact_origins", "reference_path", "build_graph"]


def build_graph(edges, nodes=()) -> nx.MultiDiGraph:
    """A graph from (source, target, origin) tuples, a repeated triple being one edge, and of
    ``nodes`` whether or not an edge touches them.

    >>> G = build_graph([("document:1", "media:x", "publication"), ("document:1", "media:x", "publication"),
    ...                  ("document:1", "media:x", "draft")])
    >>> G.number_of_edges()
    2
    """
    graph = nx.MultiDiGraph()
    graph.add_nodes_from(nodes)
    graph.add_edges_from(edges)
    return graph


def impact(G: nx.MultiDiGraph, node, cutoff: int | None = None) -> dict:
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


def impact_origins(G: nx.MultiDiGraph, node, depths: dict) -> dict:
    """For each referrer in ``depths``, the origins of the references that put it at its depth
    (those into ``node`` or into a referrer one hop closer).

    >>> G = build_graph([("a", "x", "publication"), ("a", "x", "draft"), ("m", "a", "media")])
    >>> impact_origins(G, "x", impact(G, "x")) == {"a": {"draft", "publication"}, "m": {"media"}}
    True
    """
    level = {node: 0, **depths}
    out = {}
    for referrer, depth in depths.items():
        out[referrer] = {origin for _, target, origin in G.out_edges(referrer, keys=True)
                         if level.get(target) == depth - 1}
    return out


def reference_path(G: nx.MultiDiGraph, source, target) -> list | None:
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

