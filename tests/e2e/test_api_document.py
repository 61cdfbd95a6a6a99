"""The OpenAPI document and Swagger UI, as a client of the running offline stack sees them."""

import json
import urllib.request

import pytest

pytestmark = pytest.mark.stack


def get(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, response.headers["Content-Type"], response.read()


def test_document_names_the_stage_it_was_fetched_from(offline_stack):
    status, content_type, body = get(f"{offline_stack.stage_url}/openapi.json")

    assert status == 200
    assert content_type.startswith("application/json")
    assert json.loads(body)["servers"] == [{"url": offline_stack.stage_url}]


def test_swagger_ui_page_loads(offline_stack):
    status, content_type, body = get(f"{offline_stack.stage_url}/swagger")

    assert status == 200
    assert content_type.startswith("text/html")
    assert b"SwaggerUIBundle" in body
