"""Load the SAM template and resolve its intrinsic functions for the offline stack.

The loader understands the CloudFormation short tags (``!Ref``, ``!Sub``, ...) and
turns them into their long forms. A :class:`SamTemplate` then resolves values the
way CloudFormation would for a stack named ``inference-gateway-local`` in
``us-east-1`` of account ``123456789012``: parameters take their template
defaults unless overridden (like ``sam local --parameter-overrides``), pseudo
parameters have fixed local values, and resources resolve to local physical
names that the offline runner may replace through ``resources``.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
PARTITION = "aws"
STACK_NAME = "inference-gateway-local"
URL_SUFFIX = "amazonaws.com"
STACK_ID = (
    f"arn:{PARTITION}:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{STACK_NAME}/"
    "00000000-0000-4000-8000-000000000000"
)

# SAM names the API it creates for Api events that carry no RestApiId.
IMPLICIT_API_ID = "ServerlessRestApi"
IMPLICIT_API_STAGE = "Prod"

DEFAULT_TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"

_NO_VALUE = object()
_INTRINSICS = (
    "Ref",
    "Condition",
    "Fn::Sub",
    "Fn::GetAtt",
    "Fn::Join",
    "Fn::Split",
    "Fn::Select",
    "Fn::If",
    "Fn::Equals",
    "Fn::Not",
    "Fn::And",
    "Fn::Or",
    "Fn::FindInMap",
    "Fn::Base64",
)
_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_OVERRIDE_LONG_FORM = re.compile(r"^ParameterKey=([^,]+),ParameterValue=(.*)$", re.DOTALL)


class TemplateError(Exception):
    """A template construct that cannot be resolved locally."""


@dataclass(frozen=True)
class LocalResource:
    """Local stand-in for a resource: its Ref value and its Fn::GetAtt attributes."""

    ref: str
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EventSpec:
    """One event source of a function (type and resolved properties)."""

    name: str
    type: str
    properties: dict[str, Any]
    # Logical id of the API an Api event belongs to (the implicit API when none is named).
    api_logical_id: str | None = None


@dataclass(frozen=True)
class FunctionSpec:
    """What the local Lambda runtime needs to run one AWS::Serverless::Function."""

    logical_id: str
    function_name: str
    handler: str
    code_uri: Path
    runtime: str
    timeout: int
    memory_size: int
    architectures: tuple[str, ...]
    environment: dict[str, str]
    events: tuple[EventSpec, ...]
    log_group_name: str


@dataclass(frozen=True)
class ApiSpec:
    """An AWS::Serverless::Api (or the implicit one) with the properties served locally."""

    logical_id: str
    stage_name: str
    binary_media_types: tuple[str, ...]
    properties: dict[str, Any]


@dataclass(frozen=True)
class Route:
    """One Api event: a method on a resource path, integrated with a function."""

    api_logical_id: str
    path: str
    method: str
    function_logical_id: str
    event_name: str


def _construct_tag(name: str) -> Callable[[yaml.SafeLoader, yaml.Node], dict[str, Any]]:
    """Build a constructor that maps a short tag to its long form."""

    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        value: Any
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
            if name == "Fn::GetAtt":
                logical_id, _, attribute = str(value).partition(".")
                value = [logical_id, attribute]
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        elif isinstance(node, yaml.MappingNode):
            value = loader.construct_mapping(node, deep=True)
        else:
            raise TemplateError(f"unsupported node for !{name}")
        return {name: value}

    return construct


class _TemplateLoader(yaml.SafeLoader):
    """SafeLoader with CloudFormation short tags and dates kept as strings."""


# CloudFormation reads values such as 2010-09-09 as strings, not dates.
_TemplateLoader.yaml_implicit_resolvers = {
    key: [entry for entry in resolvers if entry[0] != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _long_name in _INTRINSICS:
    _short = _long_name.removeprefix("Fn::")
    _TemplateLoader.add_constructor(f"!{_short}", _construct_tag(_long_name))


def load_yaml(path: Path) -> dict[str, Any]:
    """Parse a CloudFormation/SAM YAML file into plain Python values (long-form intrinsics)."""
    with path.open(encoding="utf-8") as stream:
        document = yaml.load(stream, Loader=_TemplateLoader)  # noqa: S506 - SafeLoader
    if not isinstance(document, dict):
        raise TemplateError(f"{path} is not a template mapping")
    return document


def parse_parameter_overrides(items: Iterable[str]) -> dict[str, str]:
    """Parse overrides given as ``Key=Value`` or ``ParameterKey=K,ParameterValue=V``."""
    overrides: dict[str, str] = {}
    for item in items:
        long_form = _OVERRIDE_LONG_FORM.match(item)
        if long_form:
            overrides[long_form.group(1)] = long_form.group(2)
            continue
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise TemplateError(f"bad parameter override {item!r}: expected Key=Value")
        overrides[key] = value
    return overrides


def _api_short_id(logical_id: str) -> str:
    """Give an API a stable 10-character id shaped like a real REST API id."""
    digest = hashlib.sha256(f"{STACK_NAME}/{logical_id}".encode()).hexdigest()
    return digest[:10]


def _to_string(value: Any, what: str) -> str:
    """Render a resolved scalar the way CloudFormation passes it to a string property."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise TemplateError(f"{what} resolves to {type(value).__name__}, expected a string")


class SamTemplate:
    """A SAM template with intrinsics resolved for the offline stack."""

    def __init__(
        self,
        document: Mapping[str, Any],
        base_dir: Path,
        parameter_overrides: Mapping[str, str] | None = None,
        resources: Mapping[str, LocalResource] | None = None,
    ) -> None:
        self.document = document
        self.base_dir = base_dir.resolve()
        self.resources: dict[str, dict[str, Any]] = dict(document.get("Resources") or {})
        self.parameters = self._resolve_parameters(dict(parameter_overrides or {}))
        self.local_resources: dict[str, LocalResource] = dict(resources or {})
        self._conditions_raw: dict[str, Any] = dict(document.get("Conditions") or {})
        self._conditions: dict[str, bool] = {}
        self._mappings: dict[str, Any] = dict(document.get("Mappings") or {})
        globals_section = document.get("Globals") or {}
        self._function_globals: dict[str, Any] = dict(
            globals_section.get("Function") or {}
        )
        self._api_globals: dict[str, Any] = dict(globals_section.get("Api") or {})

    # Parameters -----------------------------------------------------------------

    def _resolve_parameters(
        self, overrides: dict[str, str]
    ) -> dict[str, str | list[str]]:
        """Apply overrides to the template's parameter defaults and check constraints."""
        declared: dict[str, Any] = dict(self.document.get("Parameters") or {})
        unknown = sorted(set(overrides) - set(declared))
        if unknown:
            raise TemplateError(
                f"unknown parameter(s) in overrides: {', '.join(unknown)}"
            )
        values: dict[str, str | list[str]] = {}
        for name, declared_as in declared.items():
            declaration = declared_as or {}
            if name in overrides:
                raw = overrides[name]
            elif "Default" in declaration:
                raw = _to_string(declaration["Default"], f"default of parameter {name}")
            else:
                raise TemplateError(
                    f"parameter {name} has no default; pass --parameter-overrides {name}=..."
                )
            _check_parameter(name, declaration, raw)
            param_type = str(declaration.get("Type", "String"))
            if param_type == "CommaDelimitedList" or param_type.startswith("List<"):
                values[name] = raw.split(",") if raw else []
            else:
                values[name] = raw
        return values

    # Resources ------------------------------------------------------------------

    def resources_of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        """Return the template's resources of one type, by logical id (raw properties)."""
        return {
            logical_id: resource
            for logical_id, resource in self.resources.items()
            if isinstance(resource, dict) and resource.get("Type") == resource_type
        }

    def physical_name(self, logical_id: str) -> str:
        """Return the Ref value of a resource (local override or the default local name)."""
        local = self.local_resources.get(logical_id)
        if local is not None:
            return local.ref
        return self._default_ref(logical_id)

    def _resource(self, logical_id: str) -> dict[str, Any]:
        """Return one resource declaration or fail with a clear message."""
        resource = self.resources.get(logical_id)
        if not isinstance(resource, dict):
            raise TemplateError(f"no resource or parameter named {logical_id}")
        return resource

    def _named(self, logical_id: str, name_property: str, fallback: str) -> str:
        """Use a resource's explicit name property when it has one."""
        properties = self._resource(logical_id).get("Properties") or {}
        if name_property in properties:
            return _to_string(self.resolve(properties[name_property]), name_property)
        return fallback

    def _default_ref(self, logical_id: str) -> str:
        """Name a resource locally the way its Ref would read once deployed."""
        resource_type = str(self._resource(logical_id).get("Type", ""))
        generated = f"{STACK_NAME}-{logical_id}"
        if resource_type in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            # sam local names functions after their logical id.
            return self._named(logical_id, "FunctionName", logical_id)
        if resource_type in ("AWS::Serverless::Api", "AWS::ApiGateway::RestApi"):
            return _api_short_id(logical_id)
        if resource_type == "AWS::Logs::LogGroup":
            return self._named(logical_id, "LogGroupName", generated)
        if resource_type == "AWS::S3::Bucket":
            return self._named(logical_id, "BucketName", generated.lower())
        if resource_type in ("AWS::DynamoDB::Table", "AWS::Serverless::SimpleTable"):
            return self._named(logical_id, "TableName", generated)
        if resource_type == "AWS::SQS::Queue":
            name = self._named(logical_id, "QueueName", generated)
            return f"https://sqs.{REGION}.{URL_SUFFIX}/{ACCOUNT_ID}/{name}"
        if resource_type == "AWS::SNS::Topic":
            name = self._named(logical_id, "TopicName", generated)
            return f"arn:{PARTITION}:sns:{REGION}:{ACCOUNT_ID}:{name}"
        return generated

    def attribute(self, logical_id: str, attribute: str) -> Any:
        """Return Fn::GetAtt of a resource (local override or a default for known types)."""
        local = self.local_resources.get(logical_id)
        if local is not None and attribute in local.attributes:
            return local.attributes[attribute]
        resource_type = str(self._resource(logical_id).get("Type", ""))
        ref = self.physical_name(logical_id)
        arn_prefix = f"arn:{PARTITION}"
        defaults: dict[str, dict[str, str]] = {
            "AWS::Serverless::Function": {
                "Arn": f"{arn_prefix}:lambda:{REGION}:{ACCOUNT_ID}:function:{ref}",
            },
            "AWS::Serverless::Api": {"RootResourceId": _api_short_id(f"{logical_id}/")},
            "AWS::Logs::LogGroup": {
                "Arn": f"{arn_prefix}:logs:{REGION}:{ACCOUNT_ID}:log-group:{ref}:*",
            },
            "AWS::S3::Bucket": {
                "Arn": f"{arn_prefix}:s3:::{ref}",
                "DomainName": f"{ref}.s3.{URL_SUFFIX}",
                "RegionalDomainName": f"{ref}.s3.{REGION}.{URL_SUFFIX}",
            },
            "AWS::DynamoDB::Table": {
                "Arn": f"{arn_prefix}:dynamodb:{REGION}:{ACCOUNT_ID}:table/{ref}",
            },
            "AWS::SQS::Queue": {
                "Arn": f"{arn_prefix}:sqs:{REGION}:{ACCOUNT_ID}:{ref.rsplit('/', 1)[-1]}",
                "QueueName": ref.rsplit("/", 1)[-1],
                "QueueUrl": ref,
            },
            "AWS::SNS::Topic": {"TopicArn": ref, "TopicName": ref.rsplit(":", 1)[-1]},
        }
        value = defaults.get(resource_type, {}).get(attribute)
        if value is None:
            raise TemplateError(
                f"no local value for !GetAtt {logical_id}.{attribute}; "
                "give it through LocalResource attributes"
            )
        return value

    # Conditions -----------------------------------------------------------------

    def condition(self, name: str) -> bool:
        """Evaluate a named condition of the Conditions section."""
        if name not in self._conditions:
            if name not in self._conditions_raw:
                raise TemplateError(f"no condition named {name}")
            result = self.resolve(self._conditions_raw[name])
            if not isinstance(result, bool):
                raise TemplateError(f"condition {name} does not evaluate to a boolean")
            self._conditions[name] = result
        return self._conditions[name]

    # Intrinsics -----------------------------------------------------------------

    def resolve(self, value: Any) -> Any:
        """Resolve every intrinsic function inside a value (AWS::NoValue entries dropped)."""
        resolved = self._resolve(value)
        return None if resolved is _NO_VALUE else resolved

    def _resolve(self, value: Any) -> Any:
        """Resolve one value, returning the _NO_VALUE marker for AWS::NoValue."""
        if isinstance(value, list):
            items = (self._resolve(item) for item in value)
            return [item for item in items if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key in _INTRINSICS:
                return self._intrinsic(key, argument)
        resolved: dict[str, Any] = {}
        for key, item in value.items():
            resolved_item = self._resolve(item)
            if resolved_item is not _NO_VALUE:
                resolved[key] = resolved_item
        return resolved

    def _intrinsic(self, name: str, argument: Any) -> Any:
        """Evaluate one intrinsic function given in long form."""
        if name == "Ref":
            return self._ref(str(argument))
        if name == "Condition":
            return self.condition(str(argument))
        if name == "Fn::If":
            condition_name, if_true, if_false = argument
            return self._resolve(if_true if self.condition(condition_name) else if_false)
        arguments = self._resolve(argument)
        handlers: dict[str, Callable[[Any], Any]] = {
            "Fn::Sub": self._sub,
            "Fn::GetAtt": self._get_att,
            "Fn::Join": _join,
            "Fn::Split": _split,
            "Fn::Select": _select,
            "Fn::Equals": lambda args: str(args[0]) == str(args[1]),
            "Fn::Not": lambda args: not _boolean(args[0]),
            "Fn::And": lambda args: all(_boolean(arg) for arg in args),
            "Fn::Or": lambda args: any(_boolean(arg) for arg in args),
            "Fn::FindInMap": self._find_in_map,
            "Fn::Base64": _base64,
        }
        return handlers[name](arguments)

    def _ref(self, name: str) -> Any:
        """Resolve Ref of a parameter, pseudo parameter or resource."""
        pseudo: dict[str, Any] = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": PARTITION,
            "AWS::StackName": STACK_NAME,
            "AWS::StackId": STACK_ID,
            "AWS::URLSuffix": URL_SUFFIX,
            "AWS::NotificationARNs": [],
        }
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        return self.physical_name(name)

    def _get_att(self, argument: Any) -> Any:
        """Resolve Fn::GetAtt given as [LogicalId, Attribute]."""
        if isinstance(argument, str):
            argument = argument.split(".", 1)
        logical_id, attribute = argument
        return self.attribute(str(logical_id), str(attribute))

    def _sub(self, argument: Any) -> str:
        """Resolve Fn::Sub in its string and [string, variables] forms."""
        if isinstance(argument, str):
            text, variables = argument, {}
        else:
            text, variables = argument[0], dict(argument[1])

        def replace(match: re.Match[str]) -> str:
            """Substitute one ${...} reference."""
            expression = match.group(1)
            if expression.startswith("!"):
                return "${" + expression[1:] + "}"
            if expression in variables:
                return _to_string(variables[expression], f"${{{expression}}}")
            if "." in expression and not expression.startswith("AWS::"):
                logical_id, attribute = expression.split(".", 1)
                value = self.attribute(logical_id, attribute)
            else:
                value = self._ref(expression)
            if isinstance(value, list):
                raise TemplateError(
                    f"${{{expression}}} is a list; Fn::Sub needs a string"
                )
            return _to_string(value, f"${{{expression}}}")

        return _SUB_VARIABLE.sub(replace, str(text))

    def _find_in_map(self, arguments: Sequence[Any]) -> Any:
        """Resolve Fn::FindInMap [MapName, TopLevelKey, SecondLevelKey]."""
        map_name, top_key, second_key = (str(argument) for argument in arguments)
        try:
            return self._mappings[map_name][top_key][second_key]
        except KeyError as error:
            raise TemplateError(
                f"Fn::FindInMap {map_name}/{top_key}/{second_key} not found"
            ) from error

    # Serverless resources -------------------------------------------------------

    def functions(self) -> list[FunctionSpec]:
        """Return every AWS::Serverless::Function with Globals.Function applied."""
        return [
            self.function(logical_id)
            for logical_id in self.resources_of_type("AWS::Serverless::Function")
        ]

    def function(self, logical_id: str) -> FunctionSpec:
        """Return one AWS::Serverless::Function with Globals.Function applied."""
        resource = self.resources.get(logical_id)
        if (
            not isinstance(resource, dict)
            or resource.get("Type") != "AWS::Serverless::Function"
        ):
            names = ", ".join(self.resources_of_type("AWS::Serverless::Function"))
            raise TemplateError(
                f"no function {logical_id} in the template (functions: {names})"
            )
        own: dict[str, Any] = dict(resource.get("Properties") or {})
        merged: dict[str, Any] = {**self._function_globals, **own}
        variables = {
            **((self._function_globals.get("Environment") or {}).get("Variables") or {}),
            **((own.get("Environment") or {}).get("Variables") or {}),
        }
        environment = {
            key: _to_string(
                self.resolve(value), f"{logical_id} environment variable {key}"
            )
            for key, value in variables.items()
        }
        code_uri = self.resolve(merged.get("CodeUri", "."))
        if not isinstance(code_uri, str):
            raise TemplateError(
                f"{logical_id}: only a local CodeUri directory runs offline"
            )
        function_name = self.physical_name(logical_id)
        logging_config = self.resolve(merged.get("LoggingConfig") or {})
        log_group = logging_config.get("LogGroup") or f"/aws/lambda/{function_name}"
        handler = self.resolve(merged.get("Handler"))
        if not isinstance(handler, str):
            raise TemplateError(f"{logical_id} has no Handler")
        return FunctionSpec(
            logical_id=logical_id,
            function_name=function_name,
            handler=handler,
            code_uri=(self.base_dir / code_uri).resolve(),
            runtime=str(self.resolve(merged.get("Runtime", ""))),
            timeout=int(self.resolve(merged.get("Timeout", 3))),
            memory_size=int(self.resolve(merged.get("MemorySize", 128))),
            architectures=tuple(self.resolve(merged.get("Architectures", ["x86_64"]))),
            environment=environment,
            events=tuple(self._events(logical_id, own.get("Events") or {})),
            log_group_name=str(log_group),
        )

    def _events(self, logical_id: str, events: Mapping[str, Any]) -> list[EventSpec]:
        """Resolve a function's events, keeping the logical id of each Api event's API."""
        specs: list[EventSpec] = []
        for name, event in events.items():
            event_type = str(event.get("Type", ""))
            raw: dict[str, Any] = dict(event.get("Properties") or {})
            api_id: str | None = None
            if event_type == "Api":
                rest_api = raw.pop("RestApiId", None)
                if rest_api is None:
                    api_id = IMPLICIT_API_ID
                elif isinstance(rest_api, dict) and "Ref" in rest_api:
                    api_id = str(rest_api["Ref"])
                else:
                    raise TemplateError(f"{logical_id}.{name}: RestApiId must be a !Ref")
            properties = self.resolve(raw)
            if api_id is not None:
                properties["RestApiId"] = api_id
            specs.append(EventSpec(name, event_type, properties, api_id))
        return specs

    def apis(self) -> list[ApiSpec]:
        """Return the REST APIs that Api events use, explicit or implicit."""
        used = {route.api_logical_id for route in self.routes()}
        specs: list[ApiSpec] = []
        for logical_id in self.resources_of_type("AWS::Serverless::Api"):
            own = self.resources[logical_id].get("Properties") or {}
            specs.append(self._api_spec(logical_id, {**self._api_globals, **own}, None))
        if IMPLICIT_API_ID in used and IMPLICIT_API_ID not in self.resources:
            specs.append(
                self._api_spec(IMPLICIT_API_ID, self._api_globals, IMPLICIT_API_STAGE)
            )
        return specs

    def _api_spec(
        self, logical_id: str, raw: Mapping[str, Any], stage: str | None
    ) -> ApiSpec:
        """Resolve one API's properties."""
        properties = self.resolve(dict(raw))
        stage_name = stage or properties.get("StageName")
        if not stage_name:
            raise TemplateError(f"{logical_id} has no StageName")
        # CloudFormation escapes "/" in media types as "~1".
        binary = tuple(
            str(media_type).replace("~1", "/")
            for media_type in properties.get("BinaryMediaTypes") or []
        )
        return ApiSpec(logical_id, str(stage_name), binary, properties)

    def routes(self) -> list[Route]:
        """Return every Api event route of every function."""
        routes: list[Route] = []
        for function in self.functions():
            for event in function.events:
                if event.type != "Api" or event.api_logical_id is None:
                    continue
                routes.append(
                    Route(
                        api_logical_id=event.api_logical_id,
                        path=str(event.properties["Path"]),
                        method=str(event.properties["Method"]).upper(),
                        function_logical_id=function.logical_id,
                        event_name=event.name,
                    )
                )
        return routes

    def outputs(self) -> dict[str, Any]:
        """Return the Outputs section with values resolved."""
        outputs: dict[str, Any] = {}
        for name, output in (self.document.get("Outputs") or {}).items():
            condition = output.get("Condition")
            if condition and not self.condition(condition):
                continue
            outputs[name] = self.resolve(output.get("Value"))
        return outputs


def _check_parameter(name: str, declaration: Mapping[str, Any], value: str) -> None:
    """Enforce a parameter's constraints as CloudFormation would on deploy."""
    allowed = declaration.get("AllowedValues")
    if allowed is not None and value not in [_to_string(item, name) for item in allowed]:
        raise TemplateError(f"parameter {name}={value!r} is not one of {allowed}")
    pattern = declaration.get("AllowedPattern")
    if pattern is not None and re.fullmatch(str(pattern), value) is None:
        raise TemplateError(f"parameter {name}={value!r} does not match {pattern}")
    if str(declaration.get("Type", "String")) == "Number":
        try:
            number = float(value)
        except ValueError as error:
            raise TemplateError(f"parameter {name}={value!r} is not a number") from error
        if "MinValue" in declaration and number < float(declaration["MinValue"]):
            raise TemplateError(
                f"parameter {name}={value} is below {declaration['MinValue']}"
            )
        if "MaxValue" in declaration and number > float(declaration["MaxValue"]):
            raise TemplateError(
                f"parameter {name}={value} is above {declaration['MaxValue']}"
            )
    if "MinLength" in declaration and len(value) < int(declaration["MinLength"]):
        raise TemplateError(
            f"parameter {name} is shorter than {declaration['MinLength']}"
        )
    if "MaxLength" in declaration and len(value) > int(declaration["MaxLength"]):
        raise TemplateError(f"parameter {name} is longer than {declaration['MaxLength']}")


def _boolean(value: Any) -> bool:
    """Read a condition operand, which must already be a boolean."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise TemplateError(f"condition operand {value!r} is not a boolean")


def _join(arguments: Sequence[Any]) -> str:
    """Resolve Fn::Join [delimiter, [values]]."""
    delimiter, values = arguments
    if not isinstance(values, list):
        raise TemplateError("Fn::Join needs a list of values")
    return str(delimiter).join(_to_string(item, "Fn::Join item") for item in values)


def _split(arguments: Sequence[Any]) -> list[str]:
    """Resolve Fn::Split [delimiter, string]."""
    delimiter, text = arguments
    return str(text).split(str(delimiter))


def _select(arguments: Sequence[Any]) -> Any:
    """Resolve Fn::Select [index, [values]]."""
    index, values = arguments
    try:
        return values[int(index)]
    except (IndexError, ValueError, TypeError) as error:
        raise TemplateError(f"Fn::Select index {index!r} is out of range") from error


def _base64(argument: Any) -> str:
    """Resolve Fn::Base64 of a string."""
    return base64.b64encode(_to_string(argument, "Fn::Base64").encode()).decode()


def load_template(
    path: Path | str = DEFAULT_TEMPLATE,
    parameter_overrides: Mapping[str, str] | None = None,
    resources: Mapping[str, LocalResource] | None = None,
) -> SamTemplate:
    """Load a SAM template file, applying parameter overrides and local resources."""
    template_path = Path(path).resolve()
    document = load_yaml(template_path)
    return SamTemplate(document, template_path.parent, parameter_overrides, resources)
