"""Swagger UI follows the deployment's setting."""

import base64
import gzip
import json
from typing import Any

import pytest

from gateway.handlers import api, api_routes
from gateway.models.settings import Settings
from tests.conftest import load_event


def json_body(response: dict[str, Any]) -> Any:
    body = response["body"]
    if response["isBase64Encoded"]:
        body = gzip.decompress(base64.b64decode(body))
    return json.loads(body)


def test_swagger_ui_turned_off_answers_not_found(monkeypatch, lambda_context):
    monkeypatch.setattr(api_routes, "settings", Settings(swagger_ui=False))

    response = api.handler(load_event("api-get-swagger"), lambda_context)

    assert response["statusCode"] == 404
    assert json_body(response)["code"] == "NotFound"


def test_document_stays_served_when_swagger_ui_is_off(monkeypatch, lambda_context):
    monkeypatch.setattr(api_routes, "settings", Settings(swagger_ui=False))

    response = api.handler(load_event("api-get-openapi"), lambda_context)

    assert response["statusCode"] == 200
    assert json_body(response)["openapi"].startswith("3.")


@pytest.mark.parametrize("value", ["false", "true"])
def test_swagger_setting_is_read_from_the_environment(monkeypatch, value):
    monkeypatch.setenv("SWAGGER_UI", value)
    from gateway.models import settings  # noqa: PLC0415

    settings.get_settings.cache_clear()
    try:
        assert settings.get_settings().swagger_ui is (value == "true")
    finally:
        settings.get_settings.cache_clear()
