"""Graph questions as small pure networkx functions.

Graphs here are MultiDiGraphs whose edges point from referrer to referenced, one edge per
reference, with ``origin`` and ``ref_json`` attributes (see ``queries.ancestors_graph``).
"""

from __future__ import annotations

import networkx as nx

from .model import Node

__all__ = ["impact", "impact_origins", "referrers", "reference_path", "build_graph"]


def build_graph(edges) -> nx.MultiDiGraph:
    """A graph from (source, target, origin, ref_json) tuples.

    >>> G = build_graph([(Node("document", "1"), Node("media", "x"), "publication", "{}")])
    >>> G.number_of_edges()
    1
    """
    graph = nx.MultiDiGraph()
    for source, target, origin, ref_json in edges:
        graph.add_edge(source, target, origin=origin, ref_json=ref_json)
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
    >>> G = build_graph([("page", "article", "publication", "{}"),
    ...                  ("article", "image", "publication", "{}"),
    ...                  ("article", "article", "publication", "{}")])
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

    >>> G = build_graph([("a", "x", "publication", "{}"), ("a", "x", "draft", "{}"),
    ...                  ("m", "a", "media", "{}")])
    >>> impact_origins(G, "x", impact(G, "x")) == {"a": {"draft", "publication"}, "m": {"media"}}
    True
    """
    level = {node: 0, **depths}
    out = {}
    for referrer, depth in depths.items():
        out[referrer] = {data["origin"] for _, target, data in G.out_edges(referrer, data=True)
                         if level.get(target) == depth - 1}
    return out


def referrers(G: nx.MultiDiGraph, node) -> list[tuple]:
    """Direct references into ``node``: (source, origin, ref_json), sorted.

    >>> referrers(build_graph([("b", "x", "media", "{}"), ("a", "x", "publication", "{}")]), "x")
    [('a', 'publication', '{}'), ('b', 'media', '{}')]
    """
    if node not in G:
        return []
    rows = [(source, data["origin"], data["ref_json"]) for source, _, data in G.in_edges(node, data=True)]
    return sorted(rows, key=lambda row: (_key(row[0]), row[1], row[2]))


def reference_path(G: nx.MultiDiGraph, source, target) -> list | None:
    """The shortest chain of references from ``source`` to ``target``, or None.

    >>> G = build_graph([("page", "article", "publication", "{}"), ("article", "image", "publication", "{}")])
    >>> reference_path(G, "page", "image")
    ['page', 'article', 'image']
    >>> reference_path(G, "image", "page") is None
    True
    """
    try:
        return nx.shortest_path(G, source, target)
    except (nx.NetworkXNoPath, nx.NodeNotFound):
        return None


def _key(node):
    return node.sort_key() if isinstance(node, Node) else (str(node),)
