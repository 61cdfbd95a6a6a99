"""The API's OpenAPI document and its Swagger UI, from the models the routes validate with.

Powertools' resolver documents each route's path, path and query parameters. What
it cannot see is added here from the same models the routes use: the SageMaker
headers (the invocation routes read them outside the resolver), the binary bodies,
the JSON answers and every error answer, the gateway's and API Gateway's own.
"""

import json
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.openapi import swagger_ui
from aws_lambda_powertools.event_handler.openapi.compat import model_json
from aws_lambda_powertools.event_handler.openapi.models import Server
from pydantic import BaseModel

from gateway.core import errors
from gateway.handlers.http_errors import status_of
from gateway.models.async_http import (
    AsyncAccepted,
    AsyncInvocationHeaders,
    InferenceStatus,
)
from gateway.models.http import ErrorBody, InvocationHeaders, SageMakerHeaders

TITLE = "SageMaker inference gateway"
VERSION = "1.0.0"
DESCRIPTION = (
    "SageMaker Runtime's invocation routes in front of a team's endpoints. Every "
    "request is signed with SigV4 for the execute-api service. Error answers carry "
    "a JSON body with a stable `code` and a `message`."
)
SCHEMAS = "#/components/schemas/"
BINARY = {"type": "string", "format": "binary"}
# OpenAPI ignores header parameters with these names; the media types say them.
MEDIA_HEADERS = frozenset({"Content-Type", "Accept", "Authorization"})

# Answers API Gateway gives before the function runs, in the same error shape.
API_GATEWAY_ERRORS: dict[int, str] = {
    403: "MISSING_AUTHENTICATION_TOKEN, INVALID_SIGNATURE, EXPIRED_TOKEN or "
    "ACCESS_DENIED: the request is not signed, or its signer may not call the API",
    413: "REQUEST_TOO_LARGE: the request is over API Gateway's limit",
    429: "THROTTLED: the stage's rate limit is reached",
    504: "INTEGRATION_TIMEOUT: the gateway did not answer within 29 s",
}
ANSWER_HEADERS = (
    "X-Amzn-Invoked-Production-Variant",
    "X-Amzn-SageMaker-Custom-Attributes",
    "X-Amzn-SageMaker-New-Session-Id",
    "X-Amzn-SageMaker-Closed-Session-Id",
)
LOCATION_HEADERS = (
    "X-Amzn-SageMaker-OutputLocation",
    "X-Amzn-SageMaker-FailureLocation",
)

# What each route can answer besides its success: the exceptions it raises.
INVOCATION_ERRORS: tuple[type[errors.GatewayError], ...] = (
    errors.RequestValidationError,
    errors.EndpointNotAllowedError,
    errors.PayloadTooLargeError,
    errors.ModelError,
    errors.ThrottledError,
    errors.ModelNotReadyError,
    errors.UpstreamFailureError,
    errors.AnswerTooLargeError,
    errors.ServiceUnavailableError,
    errors.ModelTimeoutError,
)
ASYNC_ERRORS: tuple[type[errors.GatewayError], ...] = (
    errors.RequestValidationError,
    errors.CallbackRefusedError,
    errors.InputLocationNotAllowedError,
    errors.EndpointNotAllowedError,
    errors.InferenceIdConflictError,
    errors.PayloadTooLargeError,
    errors.ModelError,
    errors.ThrottledError,
    errors.ModelNotReadyError,
    errors.UpstreamFailureError,
    errors.ServiceUnavailableError,
    errors.ModelTimeoutError,
)
STATUS_ERRORS: tuple[type[errors.GatewayError], ...] = (
    errors.RequestValidationError,
    errors.InferenceNotFoundError,
)


@dataclass(frozen=True)
class Operation:
    """What the resolver cannot tell of one route."""

    headers: type[SageMakerHeaders] | None
    body: dict[str, Any] | None
    answers: dict[int, dict[str, Any]]
    errors: tuple[type[errors.GatewayError], ...]
    models: tuple[type[BaseModel], ...] = field(default=())


def _header(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, "schema": schema or {"type": "string"}}


def _json(model: type[BaseModel]) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"{SCHEMAS}{model.__name__}"}}}


OPERATIONS: dict[tuple[str, str], Operation] = {
    ("/endpoints/{endpoint}/invocations", "post"): Operation(
        headers=InvocationHeaders,
        body={
            "required": True,
            "description": "The model's input, passed on as is (not empty). "
            "Content-Type says its format; Accept asks for the answer's.",
            "content": {"*/*": {"schema": BINARY}},
        },
        answers={
            200: {
                "description": "The model's answer, as is, in the Content-Type it chose.",
                "headers": {
                    name: _header("As SageMaker answers it.") for name in ANSWER_HEADERS
                },
                "content": {"*/*": {"schema": BINARY}},
            }
        },
        errors=INVOCATION_ERRORS,
    ),
    ("/endpoints/{endpoint}/async-invocations", "post"): Operation(
        headers=AsyncInvocationHeaders,
        body={
            "required": False,
            "description": "The model's input, unless X-Amzn-SageMaker-InputLocation "
            "names it in S3 (one of the two, not both).",
            "content": {"*/*": {"schema": BINARY}},
        },
        answers={
            202: {
                "description": "Queued. The result will appear at the output location "
                "and is sent to the callback, if one was named.",
                "headers": {
                    name: _header("Where SageMaker will write it.")
                    for name in LOCATION_HEADERS
                },
                "content": _json(AsyncAccepted),
            }
        },
        errors=ASYNC_ERRORS,
        models=(AsyncAccepted,),
    ),
    ("/inferences/{inferenceId}", "get"): Operation(
        headers=None,
        body=None,
        answers={
            200: {
                "description": "Where the async inference stands.",
                "content": _json(InferenceStatus),
            }
        },
        errors=STATUS_ERRORS,
        models=(InferenceStatus,),
    ),
}


@lru_cache(maxsize=8)
def document_json(app: APIGatewayRestResolver, server_url: str) -> str:
    """The OpenAPI document of ``app``'s routes, served from ``server_url``."""
    return json.dumps(document(app, server_url), separators=(",", ":"))


def document(app: APIGatewayRestResolver, server_url: str) -> dict[str, Any]:
    """Build the OpenAPI document: the resolver's, completed from the models."""
    schema = app.get_openapi_schema(
        title=TITLE,
        version=VERSION,
        description=DESCRIPTION,
        servers=[Server(url=server_url)],
    )
    spec: dict[str, Any] = json.loads(
        model_json(schema, by_alias=True, exclude_none=True)
    )

    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        schemas.pop(name, None)
    schemas["ErrorBody"] = _model_schema(ErrorBody)

    for (path, method), operation in OPERATIONS.items():
        _complete(spec["paths"][path][method], operation, schemas)

    spec["components"]["securitySchemes"] = {
        "sigv4": {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "AWS Signature Version 4 for the execute-api service.",
            "x-amazon-apigateway-authtype": "awsSigv4",
        }
    }
    spec["security"] = [{"sigv4": []}]
    return spec


def _complete(
    spec: dict[str, Any], operation: Operation, schemas: dict[str, Any]
) -> None:
    if operation.headers is not None:
        spec.setdefault("parameters", []).extend(header_parameters(operation.headers))
    if operation.body is not None:
        spec["requestBody"] = operation.body
    for model in operation.models:
        schemas[model.__name__] = _model_schema(model)

    answers: dict[str, Any] = {
        str(status): dict(answer) for status, answer in operation.answers.items()
    }
    answers.update(error_responses(operation.errors))
    spec["responses"] = dict(sorted(answers.items()))


def header_parameters(model: type[SageMakerHeaders]) -> list[dict[str, Any]]:
    """Describe a header model's fields as OpenAPI header parameters."""
    schema = model.model_json_schema(by_alias=True)
    parameters = []
    for name, prop in schema["properties"].items():
        if name in MEDIA_HEADERS:
            continue
        value = _without_null(prop)
        parameters.append(
            {
                "name": name,
                "in": "header",
                "required": name in schema.get("required", ()),
                "description": prop.get("description") or f"SageMaker's {name}.",
                "schema": value,
            }
        )
    return parameters


def error_responses(
    raised: tuple[type[errors.GatewayError], ...],
) -> dict[str, dict[str, Any]]:
    """Error answers by status: the gateway's codes, then API Gateway's own."""
    codes: dict[int, list[str]] = {500: ["InternalFailure"]}
    # Any route: a path parameter that decodes to something no route takes ("a/b").
    answered: tuple[type[errors.GatewayError], ...] = (*raised, errors.RouteNotFoundError)
    for error_type in answered:
        names = codes.setdefault(status_of(error_type), [])
        if error_type.code not in names:
            names.append(error_type.code)

    descriptions = {status: ", ".join(names) for status, names in codes.items()}
    for status, text in API_GATEWAY_ERRORS.items():
        known = descriptions.get(status)
        descriptions[status] = f"{known}; from API Gateway: {text}" if known else text

    responses: dict[str, dict[str, Any]] = {}
    for status in sorted(descriptions):
        response: dict[str, Any] = {
            "description": descriptions[status],
            "content": _json(ErrorBody),
        }
        if status == 429:
            response["headers"] = {
                "Retry-After": _header("Seconds to wait.", {"type": "integer"})
            }
        responses[str(status)] = response
    return responses


def swagger_page(document_text: str) -> str:
    """Swagger UI for the document, its script and style inline (no CDN needed)."""
    script, style = _swagger_assets()
    return swagger_ui.generate_swagger_html(
        document_text.replace("</", "<\\/"), script, style, "", None
    )


@cache
def _swagger_assets() -> tuple[str, str]:
    folder = Path(swagger_ui.__file__).parent
    script = (folder / "swagger-ui-bundle.min.js").read_text(encoding="utf-8")
    style = (folder / "swagger-ui.min.css").read_text(encoding="utf-8")
    return script, style


def _model_schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema(by_alias=True, mode="serialization")


def _without_null(prop: dict[str, Any]) -> dict[str, Any]:
    variants = [v for v in prop.get("anyOf", ()) if v.get("type") != "null"]
    value = dict(variants[0]) if len(variants) == 1 else dict(prop)
    for key in ("anyOf", "default", "title", "description"):
        value.pop(key, None)
    return value
