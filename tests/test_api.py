"""Parsing: every vendor example reply becomes exactly the right edges; URLs cannot be bent."""

from __future__ import annotations

import json

import pytest
from conftest import FIXTURES, doc, load_fixture, media

from crawler.api import MalformedPage, endpoint_url, parse_page, validate_base_url
from crawler.model import ENDPOINTS_BY_NAME, Node, Reference, canonical_json

TEASER_4 = {"id": "1", "type": "document", "location": "include-directive", "componentId": "doc-1euiflvoq0",
            "serviceName": "editable-teaser", "propertyName": "article", "componentName": "teaser-include",
            "directiveName": "teaser"}
TEASER_2 = {**TEASER_4, "componentId": "doc-1eu6i7l880"}
IMAGE = {"id": "9fKagDCiN6sb", "type": "image"}


def edge(source: Node, target: Node, origin: str, fields: dict) -> Reference:
    return Reference(source, target, origin, canonical_json(fields))


# fixture name stem -> (endpoint, the target the request was for, the exact edges expected)
EXPECTED = {
    "documents_incomingDocumentReferences": ("documents/incomingDocumentReferences", doc(1), {
        edge(doc(4), doc(1), "publication", TEASER_4), edge(doc(2), doc(1), "publication", TEASER_2)}),
    "drafts_incomingDocumentReferences": ("drafts/incomingDocumentReferences", doc(1), {
        edge(doc(4), doc(1), "draft", TEASER_4), edge(doc(2), doc(1), "draft", TEASER_2)}),
    "documents_incomingMediaReferences": ("documents/incomingMediaReferences", doc(3), {
        edge(media("98sXCahM5PEk"), doc(3), "media",
             {"id": "3", "type": "document", "location": "metadata", "propertyName": "documentLink"})}),
    "mediaLibrary_incomingMediaReferences": ("mediaLibrary/incomingMediaReferences", media("9fKagDCiN6sb"), {
        edge(media("B1LPgANhJFpo"), media("9fKagDCiN6sb"), "media",
             {**IMAGE, "location": "metadata", "propertyName": "imageLink"})}),
    "mediaLibrary_incomingDocumentReferences": ("mediaLibrary/incomingDocumentReferences", media("9fKagDCiN6sb"), {
        edge(doc(2), media("9fKagDCiN6sb"), "publication",
             {**IMAGE, "location": "image-directive", "componentId": "doc-1ev8345oj0",
              "componentName": "image", "directiveName": "image"}),
        edge(doc(2), media("9fKagDCiN6sb"), "publication",
             {**IMAGE, "location": "metadata", "propertyName": "teaserImage"}),
        edge(doc(3), media("9fKagDCiN6sb"), "publication",
             {**IMAGE, "location": "image-directive", "componentId": "doc-1euq8lq1o0",
              "componentName": "image", "directiveName": "image"}),
        edge(doc(3), media("9fKagDCiN6sb"), "publication",
             {**IMAGE, "location": "metadata", "propertyName": "teaserImage"})}),
}
OLD_IDS = {"type": "documents", "ids": ["537", "745"], "location": "metadata", "propertyName": "relatedDocuments"}


def reply_fixtures():
    return sorted(p.name for p in FIXTURES.glob("*.json") if not p.name.startswith("error."))


def test_fixtures_are_the_vendors():
    """The copies in tests/ are what a bare clone tests against; every one is covered below."""
    stems = {name.split(".")[0] for name in reply_fixtures()}
    assert stems == set(EXPECTED)
    assert len(reply_fixtures()) == 11


@pytest.mark.parametrize("name", reply_fixtures())
def test_every_fixture_parses_into_the_right_edges(name):
    fixture = load_fixture(name)
    stem = name.split(".")[0]
    endpoint_name, target, expected = EXPECTED[stem]
    if "beta" in name:
        target = doc(537)
        expected = {edge(media("k3Jd8sQpW1zA"), doc(537), "media", OLD_IDS),
                    edge(media("k3Jd8sQpW1zA"), doc(745), "media", OLD_IDS)}
    page = parse_page(fixture["body"], ENDPOINTS_BY_NAME[endpoint_name], target)
    assert set(page.references) == expected
    assert len(page.references) == len(expected)
    assert page.entries == len(fixture["body"] if isinstance(fixture["body"], list) else fixture["body"]["results"])


def test_envelope_shape_gives_cursor_and_total():
    body = load_fixture("documents_incomingDocumentReferences.2026-01.json")["body"]
    page = parse_page(body, ENDPOINTS_BY_NAME["documents/incomingDocumentReferences"], doc(1))
    assert (page.cursor, page.total) == ("eyJhIjpbIjE3NjUyNjIxODYuMjgyIiw2NCw2NF19", 5)
    bare = load_fixture("documents_incomingDocumentReferences.2025-11.json")["body"]
    assert parse_page(bare, ENDPOINTS_BY_NAME["documents/incomingDocumentReferences"], doc(1)).cursor is None


def test_unknown_fields_and_locations_are_kept_losslessly():
    ref = {"id": "x", "type": "image", "location": "list-directive", "listId": 7, "nested": {"a": [1, None]}}
    page = parse_page([{"id": 5, "references": [ref], "extra": True}],
                      ENDPOINTS_BY_NAME["mediaLibrary/incomingDocumentReferences"], media("x"))
    assert [r.fields for r in page.references] == [ref]
    assert page.references[0].location == "list-directive"


def test_document_ids_as_text_or_number_are_one_node():
    endpoint = ENDPOINTS_BY_NAME["documents/incomingDocumentReferences"]
    page = parse_page([{"id": "7", "references": [{"id": "1"}]}, {"id": 7, "references": [{"id": 1}]}], endpoint, doc(1))
    assert {r.source for r in page.references} == {doc(7)}


def test_media_source_with_numeric_id_is_media_not_document():
    page = parse_page([{"id": 1, "references": []}], ENDPOINTS_BY_NAME["documents/incomingMediaReferences"], doc(9))
    assert [r.source for r in page.references] == [media("1")]


def test_a_referrer_without_reference_details_still_references_the_target():
    page = parse_page([{"id": 3}], ENDPOINTS_BY_NAME["mediaLibrary/incomingDocumentReferences"], media("m"))
    assert [(r.source, r.target) for r in page.references] == [(doc(3), media("m"))]


@pytest.mark.parametrize("body", [
    {"results": "nope"}, {"data": []}, "text", 42, None, [{"references": []}], [{"id": None}],
    [{"id": "not-a-number", "references": []}], [{"id": 1, "references": "x"}], [{"id": 1, "references": [3]}],
    [{"id": True, "references": []}],
])
def test_wrong_shapes_are_refused_with_a_preview(body):
    with pytest.raises(MalformedPage) as err:
        parse_page(body, ENDPOINTS_BY_NAME["documents/incomingDocumentReferences"], doc(1))
    assert len(str(err.value)) < 300


@pytest.mark.parametrize("ident, segment", [
    ("a/b c", "a%2Fb%20c"), ("..", "%2E%2E"), (".", "%2E"), ("x?y#z", "x%3Fy%23z"), ("100%", "100%25"),
    ("ü", "%C3%BC"), ("a+b=c&d", "a%2Bb%3Dc%26d"), ("...", "%2E%2E%2E"),
])
def test_ids_are_one_percent_encoded_segment(ident, segment):
    url = endpoint_url("https://h.example/proxy/api", "2026-01", ENDPOINTS_BY_NAME["mediaLibrary/incomingMediaReferences"],
                       media(ident), {"limit": 100, "after": "ab+/c=="})
    assert url.raw_path == f"/proxy/api/api/2026-01/mediaLibrary/{segment}/incomingMediaReferences"
    assert url.raw_query_string == "limit=100&after=ab%2B%2Fc%3D%3D"


@pytest.mark.parametrize("text", ["ftp://h", "not a url", "http://", "https://h/x?y=1", "https://u:p@h/"])
def test_bad_base_urls_are_refused(text):
    with pytest.raises(ValueError):
        validate_base_url(text)


def test_error_fixtures_are_the_documented_bodies():
    for code in (401, 403, 404):
        fixture = load_fixture(f"error.{code}.json")
        assert fixture["status"] == fixture["body"]["status"] == code
        assert json.dumps(fixture["body"])
