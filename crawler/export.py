"""Export the whole current graph through networkx's writers (and pydot for DOT).

Node ids in every format are ``kind:id`` strings; each reference is one edge with its origin,
type, location and the reference's JSON.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from typing import IO

import networkx as nx

from . import output, queries

__all__ = ["FORMATS", "load_graph", "write_graph"]

FORMATS = ("graphml", "gexf", "json", "csv", "dot")


def load_graph(conn: sqlite3.Connection) -> nx.MultiDiGraph:
    """Every node and every current reference in the database."""
    graph = nx.MultiDiGraph()
    names = {}
    for node_id, kind, ident, media_type in queries.all_nodes(conn):
        names[node_id] = f"{kind}:{ident}"
        # Not "id": the GEXF writer would take it for the node's id, and media:1 and document:1
        # would collapse; "label" is what graph tools show.
        attrs = {"kind": kind, "ident": ident, "label": names[node_id]}
        if media_type:
            attrs["media_type"] = media_type
        graph.add_node(names[node_id], **attrs)
    for source_id, target_id, origin, ref_type, location, ref_json in queries.all_edges(conn):
        attrs = {"origin": origin, "reference": ref_json}
        if ref_type is not None:
            attrs["ref_type"] = ref_type  # GEXF reserves an edge's "type" for directed/undirected
        if location is not None:
            attrs["location"] = location
        graph.add_edge(names[source_id], names[target_id], **attrs)
    return graph


def _write_dot(graph: nx.MultiDiGraph, out: IO[str]) -> None:
    # pydot reads a ':' in a node name as a port, so nodes get plain names and a label.
    from networkx.drawing.nx_pydot import to_pydot

    index = {name: f"n{i}" for i, name in enumerate(graph.nodes)}
    plain = nx.relabel_nodes(graph, index)
    for key in index.values():
        data = plain.nodes[key]
        for attr in ("label", "kind", "ident", "media_type"):
            if attr in data:
                data[attr] = json.dumps(data[attr])
    for _, _, data in plain.edges(data=True):
        data["reference"] = json.dumps(data["reference"])
        for attr in ("origin", "ref_type", "location"):
            if attr in data:
                data[attr] = json.dumps(data[attr])
    out.write(to_pydot(plain).to_string())


def _write_csv(graph: nx.MultiDiGraph, out: IO[str]) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["source", "target", "origin", "type", "location", "reference"])
    for source, target, data in graph.edges(data=True):
        writer.writerow([source, target, data["origin"], data.get("ref_type", ""), data.get("location", ""),
                         data["reference"]])


def _xml_safe(graph: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """XML 1.0 cannot hold most control characters: ids that carry them are escaped as in the
    terminal output (``\\x1b``), so that the file stays well-formed."""
    def clean(value):
        return output.safe(value) if isinstance(value, str) and not value.isprintable() else value

    if all(n.isprintable() for n in graph.nodes):
        return graph
    out = nx.relabel_nodes(graph, {n: clean(n) for n in graph.nodes})
    for _, data in out.nodes(data=True):
        data.update({k: clean(v) for k, v in data.items()})
    return out


def write_graph(graph: nx.MultiDiGraph, fmt: str, out: IO[str]) -> None:
    """Write ``graph`` to the text stream ``out`` in one of FORMATS."""
    if fmt in ("graphml", "gexf"):
        graph = _xml_safe(graph)
    if fmt == "graphml":
        out.write("\n".join(nx.generate_graphml(graph)) + "\n")
    elif fmt == "gexf":
        out.write("\n".join(nx.generate_gexf(graph)) + "\n")
    elif fmt == "json":
        json.dump(nx.node_link_data(graph, edges="edges"), out, sort_keys=True, ensure_ascii=False)
        out.write("\n")
    elif fmt == "csv":
        _write_csv(graph, out)
    elif fmt == "dot":
        _write_dot(graph, out)
    else:
        raise ValueError(f"unknown export format {fmt!r} (choose from {', '.join(FORMATS)})")
