"""Export the whole current graph.

Node ids in every format are ``kind:id`` strings; each reference is one edge with its origin,
type, location and the reference's JSON. GraphML and CSV are streamed straight from SQLite, a
row at a time, so that a database of millions of references exports in bounded memory; GEXF,
node-link JSON and DOT go through networkx's writers (and pydot's), which need the whole graph
in memory first.
"""

from __future__ import annotations

import csv
import json
import re
import sqlite3
from collections.abc import Iterator
from typing import IO
from xml.sax.saxutils import escape, quoteattr

from . import output, queries

__all__ = ["FORMATS", "STREAMED", "load_graph", "write_graph", "export"]

FORMATS = ("graphml", "gexf", "json", "csv", "dot")
STREAMED = ("graphml", "csv")

# Node attributes, then edge attributes: (GraphML key, attribute name, for).
_GRAPHML_KEYS = (("d0", "kind", "node"), ("d1", "ident", "node"), ("d2", "label", "node"),
                 ("d3", "media_type", "node"), ("d4", "origin", "edge"), ("d5", "reference", "edge"),
                 ("d6", "ref_type", "edge"), ("d7", "location", "edge"))
_GRAPHML_HEAD = (
    '<graphml xmlns="http://graphml.graphdrawing.org/xmlns" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
    ' xsi:schemaLocation="http://graphml.graphdrawing.org/xmlns'
    ' http://graphml.graphdrawing.org/xmlns/1.0/graphml.xsd">\n'
    + "".join(f'  <key id="{key}" for="{kind}" attr.name="{name}" attr.type="string" />\n'
              for key, name, kind in _GRAPHML_KEYS)
    + '  <graph edgedefault="directed">\n')
_GRAPHML_TAIL = "  </graph>\n</graphml>\n"
# What XML 1.0 cannot hold at all (most control characters, lone surrogates, U+FFFE/U+FFFF).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_clean(value: str) -> str:
    """Characters XML cannot hold escaped as in the terminal output (``\\x1b``), so that the
    file stays well-formed."""
    return _NOT_XML.sub(lambda m: output.escaped(m.group()), value)


def _xml_text(value: str) -> str:
    return escape(_xml_clean(value))


def _names(conn: sqlite3.Connection) -> dict[int, tuple[str, str, str | None]]:
    """node_id -> (kind:id, kind, media type) for every node."""
    return {node_id: (f"{kind}:{ident}", kind, media_type)
            for node_id, kind, ident, media_type in queries.all_nodes(conn)}


def _graphml(conn: sqlite3.Connection) -> Iterator[str]:
    yield _GRAPHML_HEAD
    names = _names(conn)
    xml_ids = {}
    for node_id, (name, kind, media_type) in names.items():
        xml_ids[node_id] = quoteattr(_xml_clean(name))
        ident = _xml_text(name[len(kind) + 1:])
        typed = f'      <data key="d3">{_xml_text(media_type)}</data>\n' if media_type else ""
        yield (f"    <node id={xml_ids[node_id]}>\n      <data key=\"d0\">{kind}</data>\n"
               f'      <data key="d1">{ident}</data>\n      <data key="d2">{_xml_text(name)}</data>\n'
               f"{typed}    </node>\n")
    del names
    for source_id, target_id, origin, ref_type, location, ref_json in queries.all_edges(conn):
        parts = [f"    <edge source={xml_ids[source_id]} target={xml_ids[target_id]}>\n"
                 f'      <data key="d4">{origin}</data>\n      <data key="d5">{_xml_text(ref_json)}</data>\n']
        if ref_type is not None:
            parts.append(f'      <data key="d6">{_xml_text(ref_type)}</data>\n')
        if location is not None:
            parts.append(f'      <data key="d7">{_xml_text(location)}</data>\n')
        parts.append("    </edge>\n")
        yield "".join(parts)
    yield _GRAPHML_TAIL


def _csv(conn: sqlite3.Connection, out: IO[str]) -> None:
    names = {node_id: name for node_id, (name, _, _) in _names(conn).items()}
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["source", "target", "origin", "type", "location", "reference"])
    writer.writerows([names[source_id], names[target_id], origin, ref_type or "", location or "", ref_json]
                     for source_id, target_id, origin, ref_type, location, ref_json in queries.all_edges(conn))


def export(conn: sqlite3.Connection, fmt: str, out: IO[str]) -> None:
    """Write the database's current graph to the text stream ``out`` in one of FORMATS."""
    if fmt == "graphml":
        out.writelines(_graphml(conn))
    elif fmt == "csv":
        _csv(conn, out)
    else:
        write_graph(load_graph(conn), fmt, out)


def load_graph(conn: sqlite3.Connection):
    """Every node and every current reference in the database, as a networkx MultiDiGraph."""
    import networkx as nx  # only the formats that need the graph in memory pay for the import

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


def _write_dot(graph, out: IO[str]) -> None:
    # pydot reads a ':' in a node name as a port, so nodes get plain names and a label.
    import networkx as nx
    from networkx.drawing.nx_pydot import to_pydot

    index = {name: f"n{i}" for i, name in enumerate(graph.nodes)}
    plain = nx.relabel_nodes(graph, index)
    for key in index.values():
        data = plain.nodes[key]
        for attr in ("label", "kind", "ident", "media_type"):
            if attr in data:
                data[attr] = json.dumps(data[attr], ensure_ascii=False)
    for _, _, data in plain.edges(data=True):
        data["reference"] = json.dumps(data["reference"], ensure_ascii=False)
        for attr in ("origin", "ref_type", "location"):
            if attr in data:
                data[attr] = json.dumps(data[attr], ensure_ascii=False)
    out.write(to_pydot(plain).to_string())


def _xml_safe(graph):
    """The graph with every id and attribute XML can hold, cleaned as the streamed GraphML is
    (``_xml_clean``), so that networkx's GEXF writer also writes a well-formed file."""
    import networkx as nx

    def clean(value):
        return _xml_clean(value) if isinstance(value, str) and _NOT_XML.search(value) else value

    for *_, data in (*graph.nodes(data=True), *graph.edges(data=True)):
        data.update({k: clean(v) for k, v in data.items()})
    if not any(_NOT_XML.search(n) for n in graph.nodes):
        return graph
    return nx.relabel_nodes(graph, {n: clean(n) for n in graph.nodes})


def write_graph(graph, fmt: str, out: IO[str]) -> None:
    """Write a networkx ``graph`` to the text stream ``out`` as GEXF, node-link JSON or DOT."""
    import networkx as nx

    if fmt == "gexf":
        out.write("\n".join(nx.generate_gexf(_xml_safe(graph))) + "\n")
    elif fmt == "json":
        json.dump(nx.node_link_data(graph, edges="edges"), out, sort_keys=True, ensure_ascii=False)
        out.write("\n")
    elif fmt == "dot":
        _write_dot(graph, out)
    else:
        raise ValueError(f"unknown export format {fmt!r} (choose from {', '.join(FORMATS)})")
