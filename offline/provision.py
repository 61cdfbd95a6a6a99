"""Create the template's AWS resources in moto, configured from the template itself.

``provision(template, endpoint_url)`` creates every S3 bucket, SQS queue, DynamoDB
table and Secrets Manager secret of the template in a moto server on 127.0.0.1 and
returns them by logical id. Names are local and deterministic
(``inference-gateway-local-<logical id in lower case>``, or the template's own
name property); properties come from the template, so the offline stack follows it:

- buckets get their NotificationConfiguration.QueueConfigurations as real moto
  notifications (events and key filters), and, where moto takes them, encryption,
  public access block, ownership controls, versioning and lifecycle rules;
- queues get their attributes (VisibilityTimeout, MessageRetentionPeriod,
  RedrivePolicy to the dead-letter queue's ARN, FifoQueue, ContentBasedDeduplication,
  ...);
- tables get their keys, attribute definitions and indexes, on demand, with their
  time to live;
- secrets get the value given for them (the webhook secret: WEBHOOK_SECRET), their
  SecretString, or a value generated like GenerateSecretString asks.

Every other resource type is left out. Running it again against a live moto changes
nothing that is already right (and sends no second s3:TestEvent). The results feed
the template loader (:meth:`ProvisionedResource.local`), so the functions'
environments name the resources created here.

``python -m offline.provision --endpoint-url http://127.0.0.1:5000`` does the same
against a running moto.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import secrets
import string
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from offline.lambda_runtime import DUMMY_CREDENTIALS
from offline.template import (
    ACCOUNT_ID,
    DEFAULT_TEMPLATE,
    PARTITION,
    REGION,
    STACK_NAME,
    LocalResource,
    SamTemplate,
    TemplateError,
    load_template,
    parse_parameter_overrides,
)

log = logging.getLogger(__name__)

BUCKET = "AWS::S3::Bucket"
QUEUE = "AWS::SQS::Queue"
TABLE = "AWS::DynamoDB::Table"
SECRETS_MANAGER = "AWS::SecretsManager::Secret"
PROVISIONED_TYPES = (QUEUE, TABLE, SECRETS_MANAGER, BUCKET)
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# The function environment variable that names the webhook signing secret.
SIGNING_KEY_ARN_VARIABLE = "WEBHOOK_SECRET_ARN"

# AWS::SQS::Queue properties that are SetQueueAttributes attributes of the same name.
_QUEUE_ATTRIBUTES = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "SqsManagedSseEnabled",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
    "RedrivePolicy",
    "RedriveAllowPolicy",
)
# Attributes that only CreateQueue takes.
_QUEUE_CREATE_ONLY = ("FifoQueue",)


class ProvisionError(RuntimeError):
    """A resource the functions need could not be created in moto."""


@dataclass(frozen=True)
class ProvisionedResource:
    """One resource created in moto: its Ref value and its Fn::GetAtt attributes."""

    logical_id: str
    type: str
    name: str
    ref: str
    attributes: Mapping[str, str] = field(default_factory=dict)

    @property
    def arn(self) -> str:
        """Return the resource's ARN."""
        return self.attributes.get("Arn") or self.ref

    def local(self) -> LocalResource:
        """Return the stand-in the template loader resolves Ref and Fn::GetAtt with."""
        return LocalResource(self.ref, dict(self.attributes))


def check_loopback(url: str) -> None:
    """Refuse an endpoint URL that would leave this machine."""
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in LOOPBACK_HOSTS:
        raise ValueError(f"endpoint URL {url!r} is not http on 127.0.0.1")


def moto_client(service: str, endpoint_url: str, **config: Any) -> Any:
    """Make a boto3 client bound to moto, with dummy credentials and no lookups."""
    check_loopback(endpoint_url)
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    # Imported here: boto3 is slow to import and only needed once moto is up.
    import boto3  # noqa: PLC0415
    from botocore.config import Config  # noqa: PLC0415

    options: dict[str, Any] = {
        "connect_timeout": 5,
        "read_timeout": 30,
        "retries": {"mode": "standard", "total_max_attempts": 3},
    }
    options.update(config)
    if service == "s3":
        options.setdefault("s3", {"addressing_style": "path"})
    session = boto3.session.Session(
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=REGION,
    )
    make: Any = session.client
    return make(service, endpoint_url=endpoint_url, config=Config(**options))


# Names ----------------------------------------------------------------------------


def _properties(template: SamTemplate, logical_id: str) -> dict[str, Any]:
    """Return a resource's raw (unresolved) properties."""
    return dict(template.resources[logical_id].get("Properties") or {})


def _is_fifo(template: SamTemplate, logical_id: str) -> bool:
    """Tell whether a queue is declared FIFO."""
    value = template.resolve(_properties(template, logical_id).get("FifoQueue", False))
    # An !If that ends in AWS::NoValue resolves to None: a standard queue.
    return value is not None and _boolean(value)


def local_name(template: SamTemplate, logical_id: str, prefix: str = STACK_NAME) -> str:
    """Return the deterministic local name of a resource (its own name property first)."""
    resource_type = str(template.resources[logical_id].get("Type", ""))
    name_property = {
        BUCKET: "BucketName",
        QUEUE: "QueueName",
        TABLE: "TableName",
        SECRETS_MANAGER: "Name",
    }.get(resource_type)
    properties = _properties(template, logical_id)
    if name_property and name_property in properties:
        return str(template.resolve(properties[name_property]))
    name = f"{prefix}-{logical_id.lower()}"
    # CloudFormation ends the generated name of a FIFO queue with .fifo, as SQS requires.
    if resource_type == QUEUE and _is_fifo(template, logical_id):
        name += ".fifo"
    return name


def provisioned_ids(template: SamTemplate) -> list[str]:
    """Return the logical ids provision() creates, in creation order."""
    ids: list[str] = []
    for resource_type in PROVISIONED_TYPES:
        for logical_id, resource in template.resources_of_type(resource_type).items():
            condition = resource.get("Condition")
            if condition and not template.condition(str(condition)):
                continue
            ids.append(logical_id)
    return ids


def planned_resources(
    template: SamTemplate, endpoint_url: str, prefix: str = STACK_NAME
) -> dict[str, ProvisionedResource]:
    """Predict provision()'s results before moto is up (secret ARNs lack their suffix)."""
    planned: dict[str, ProvisionedResource] = {}
    for logical_id in provisioned_ids(template):
        resource_type = str(template.resources[logical_id]["Type"])
        name = local_name(template, logical_id, prefix)
        planned[logical_id] = _describe(
            logical_id, resource_type, name, endpoint_url, None, None
        )
    return planned


def _describe(
    logical_id: str,
    resource_type: str,
    name: str,
    endpoint_url: str,
    url_or_arn: str | None,
    extra: Mapping[str, str] | None,
) -> ProvisionedResource:
    """Build the Ref and attributes of one resource, as CloudFormation reports them."""
    region_arn = f"arn:{PARTITION}:{{service}}:{REGION}:{ACCOUNT_ID}"
    attributes: dict[str, str] = {}
    if resource_type == BUCKET:
        ref = name
        attributes = {
            "Arn": f"arn:{PARTITION}:s3:::{name}",
            "DomainName": f"{name}.s3.amazonaws.com",
            "RegionalDomainName": f"{name}.s3.{REGION}.amazonaws.com",
        }
    elif resource_type == QUEUE:
        # moto names queue URLs after the endpoint it was called on.
        ref = url_or_arn or f"{endpoint_url.rstrip('/')}/{ACCOUNT_ID}/{name}"
        attributes = {
            "Arn": region_arn.format(service="sqs") + f":{name}",
            "QueueName": name,
            "QueueUrl": ref,
        }
    elif resource_type == TABLE:
        ref = name
        attributes = {"Arn": region_arn.format(service="dynamodb") + f":table/{name}"}
    elif resource_type == SECRETS_MANAGER:
        ref = (
            url_or_arn or region_arn.format(service="secretsmanager") + f":secret:{name}"
        )
        attributes = {"Id": ref}
    else:
        raise ProvisionError(f"{logical_id}: {resource_type} is not provisioned offline")
    attributes.update(extra or {})
    return ProvisionedResource(logical_id, resource_type, name, ref, attributes)


# Provisioning -----------------------------------------------------------------------


def webhook_secret_ids(template: SamTemplate) -> list[str]:
    """Return the secrets a function names in WEBHOOK_SECRET_ARN (as !Ref)."""
    found: list[str] = []
    globals_env = (
        ((template.document.get("Globals") or {}).get("Function") or {}).get(
            "Environment"
        )
        or {}
    ).get("Variables") or {}
    sources = [globals_env]
    for resource in template.resources_of_type("AWS::Serverless::Function").values():
        properties = resource.get("Properties") or {}
        sources.append((properties.get("Environment") or {}).get("Variables") or {})
    for variables in sources:
        value = variables.get(SIGNING_KEY_ARN_VARIABLE)
        if isinstance(value, dict) and isinstance(value.get("Ref"), str):
            logical_id = value["Ref"]
            resource = template.resources.get(logical_id) or {}
            if resource.get("Type") == SECRETS_MANAGER and logical_id not in found:
                found.append(logical_id)
    return found


def provision(
    template: SamTemplate,
    endpoint_url: str,
    *,
    secret_values: Mapping[str, str] | None = None,
    prefix: str = STACK_NAME,
) -> dict[str, ProvisionedResource]:
    """Create (or bring up to date) the template's buckets, queues, tables and secrets."""
    return _Provisioner(template, endpoint_url, secret_values or {}, prefix).run()


class _Provisioner:
    """One provisioning run against one moto server."""

    def __init__(
        self,
        template: SamTemplate,
        endpoint_url: str,
        secret_values: Mapping[str, str],
        prefix: str,
    ) -> None:
        check_loopback(endpoint_url)
        self.endpoint_url = endpoint_url
        self.secret_values = secret_values
        self.prefix = prefix
        # A private copy: Ref and Fn::GetAtt must see what is created as it is created.
        self.template = copy.copy(template)
        self.template.local_resources = dict(template.local_resources)
        self.done: dict[str, ProvisionedResource] = planned_resources(
            template, endpoint_url, prefix
        )
        self._remember_all()
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        """Return a cached client for one service."""
        if service not in self._clients:
            self._clients[service] = moto_client(service, self.endpoint_url)
        return self._clients[service]

    def _remember(self, resource: ProvisionedResource) -> None:
        """Record a resource and let the template resolve references to it."""
        self.done[resource.logical_id] = resource
        self.template.local_resources[resource.logical_id] = resource.local()

    def _remember_all(self) -> None:
        """Let the template resolve every planned resource."""
        for resource in self.done.values():
            self.template.local_resources[resource.logical_id] = resource.local()

    def properties(self, logical_id: str) -> dict[str, Any]:
        """Return a resource's properties with intrinsics resolved."""
        resolved = self.template.resolve(_properties(self.template, logical_id))
        return dict(resolved or {})

    def run(self) -> dict[str, ProvisionedResource]:
        """Create everything, queues first: others name their ARNs."""
        steps: dict[str, Callable[[str], None]] = {
            QUEUE: self.queue,
            TABLE: self.table,
            SECRETS_MANAGER: self.secret,
            BUCKET: self.bucket,
        }
        ids = provisioned_ids(self.template)
        queues = [i for i in ids if self.done[i].type == QUEUE]
        for logical_id in ids:
            steps[self.done[logical_id].type](logical_id)
        # Redrive policies name other queues' ARNs, which all exist only now.
        for logical_id in queues:
            self.queue_redrive(logical_id)
        log.info("provisioned %d resources in moto", len(ids))
        return {logical_id: self.done[logical_id] for logical_id in ids}

    # SQS --------------------------------------------------------------------------

    def _queue_attributes(self, logical_id: str) -> dict[str, str]:
        """Translate queue properties into SQS attributes (without the redrive policy)."""
        properties = self.properties(logical_id)
        attributes: dict[str, str] = {}
        for name in (*_QUEUE_CREATE_ONLY, *_QUEUE_ATTRIBUTES):
            if name in properties and name not in ("RedrivePolicy", "RedriveAllowPolicy"):
                attributes[name] = _attribute_text(properties[name])
        return attributes

    def queue(self, logical_id: str) -> None:
        """Create one queue or bring its attributes up to date."""
        from botocore.exceptions import ClientError  # noqa: PLC0415

        sqs = self.client("sqs")
        name = self.done[logical_id].name
        attributes = self._queue_attributes(logical_id)
        try:
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        except ClientError as error:
            if not _is_missing(error):
                raise
            url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        else:
            settable = {
                k: v for k, v in attributes.items() if k not in _QUEUE_CREATE_ONLY
            }
            if settable:
                sqs.set_queue_attributes(QueueUrl=url, Attributes=settable)
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self._remember(
            _describe(logical_id, QUEUE, name, self.endpoint_url, url, {"Arn": arn})
        )

    def queue_redrive(self, logical_id: str) -> None:
        """Set a queue's RedrivePolicy and RedriveAllowPolicy once every queue exists."""
        properties = self.properties(logical_id)
        attributes = {
            name: _attribute_text(properties[name])
            for name in ("RedrivePolicy", "RedriveAllowPolicy")
            if name in properties
        }
        if attributes:
            self.client("sqs").set_queue_attributes(
                QueueUrl=self.done[logical_id].ref, Attributes=attributes
            )

    # DynamoDB ---------------------------------------------------------------------

    def table(self, logical_id: str) -> None:
        """Create one table on demand (if missing) and set its time to live."""
        from botocore.exceptions import ClientError  # noqa: PLC0415

        dynamodb = self.client("dynamodb")
        name = self.done[logical_id].name
        properties = self.properties(logical_id)
        try:
            description = dynamodb.describe_table(TableName=name)["Table"]
        except ClientError as error:
            if not _is_missing(error):
                raise
            description = dynamodb.create_table(**_table_request(name, properties))[
                "TableDescription"
            ]
        else:
            log.debug("table already exists: %s", name)
        ttl = properties.get("TimeToLiveSpecification")
        if ttl:
            self._table_ttl(name, ttl)
        pitr = properties.get("PointInTimeRecoverySpecification") or {}
        if _boolean(pitr.get("PointInTimeRecoveryEnabled", False)):
            _best_effort(
                "point-in-time recovery",
                lambda: dynamodb.update_continuous_backups(
                    TableName=name,
                    PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
                ),
            )
        extra = {"Arn": str(description["TableArn"])}
        if description.get("LatestStreamArn"):
            extra["StreamArn"] = str(description["LatestStreamArn"])
        self._remember(_describe(logical_id, TABLE, name, self.endpoint_url, None, extra))

    def _table_ttl(self, name: str, ttl: Mapping[str, Any]) -> None:
        """Turn the table's time to live on, unless it already is as asked."""
        dynamodb = self.client("dynamodb")
        wanted_on = _boolean(ttl.get("Enabled", False))
        attribute = str(ttl.get("AttributeName", ""))
        current = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        is_on = current.get("TimeToLiveStatus") in ("ENABLED", "ENABLING")
        if is_on == wanted_on and (
            not wanted_on or current.get("AttributeName") == attribute
        ):
            return
        if not wanted_on and not is_on:
            return
        dynamodb.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={
                "Enabled": wanted_on,
                "AttributeName": attribute or str(current.get("AttributeName", "")),
            },
        )

    # Secrets Manager --------------------------------------------------------------

    def secret(self, logical_id: str) -> None:
        """Create one secret, or set its value when one is given for it."""
        from botocore.exceptions import ClientError  # noqa: PLC0415

        client = self.client("secretsmanager")
        name = self.done[logical_id].name
        properties = self.properties(logical_id)
        given = self.secret_values.get(logical_id)
        try:
            arn = str(client.describe_secret(SecretId=name)["ARN"])
        except ClientError as error:
            if not _is_missing(error):
                raise
            value = given if given is not None else _secret_value(properties)
            request: dict[str, Any] = {"Name": name, "SecretString": value}
            if properties.get("Description"):
                request["Description"] = str(properties["Description"])
            arn = str(client.create_secret(**request)["ARN"])
        else:
            current = client.get_secret_value(SecretId=arn).get("SecretString")
            if given is not None and current != given:
                client.put_secret_value(SecretId=arn, SecretString=given)
        self._remember(
            _describe(logical_id, SECRETS_MANAGER, name, self.endpoint_url, arn, None)
        )

    # S3 ---------------------------------------------------------------------------

    def bucket(self, logical_id: str) -> None:
        """Create one bucket with its notifications (and what else moto accepts)."""
        from botocore.exceptions import ClientError  # noqa: PLC0415

        s3 = self.client("s3")
        name = self.done[logical_id].name
        properties = self.properties(logical_id)
        try:
            s3.head_bucket(Bucket=name)
        except ClientError as error:
            if not _is_missing(error):
                raise
            s3.create_bucket(Bucket=name)
        self._bucket_settings(name, properties)
        notification = properties.get("NotificationConfiguration") or {}
        self._bucket_notifications(logical_id, name, notification)
        self._remember(_describe(logical_id, BUCKET, name, self.endpoint_url, None, None))

    def _bucket_settings(self, name: str, properties: Mapping[str, Any]) -> None:
        """Apply the optional bucket settings moto supports; none is required offline."""
        s3 = self.client("s3")
        encryption = properties.get("BucketEncryption")
        if encryption:
            rules = [
                {
                    "ApplyServerSideEncryptionByDefault": dict(
                        rule.get("ServerSideEncryptionByDefault") or {}
                    ),
                    **(
                        {"BucketKeyEnabled": _boolean(rule["BucketKeyEnabled"])}
                        if "BucketKeyEnabled" in rule
                        else {}
                    ),
                }
                for rule in encryption.get("ServerSideEncryptionConfiguration") or []
            ]
            _best_effort(
                "bucket encryption",
                lambda: s3.put_bucket_encryption(
                    Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules}
                ),
            )
        block = properties.get("PublicAccessBlockConfiguration")
        if block:
            _best_effort(
                "public access block",
                lambda: s3.put_public_access_block(
                    Bucket=name,
                    PublicAccessBlockConfiguration={
                        key: _boolean(value) for key, value in block.items()
                    },
                ),
            )
        ownership = properties.get("OwnershipControls")
        if ownership:
            _best_effort(
                "ownership controls",
                lambda: s3.put_bucket_ownership_controls(
                    Bucket=name, OwnershipControls={"Rules": ownership.get("Rules") or []}
                ),
            )
        versioning = properties.get("VersioningConfiguration")
        if versioning:
            _best_effort(
                "versioning",
                lambda: s3.put_bucket_versioning(
                    Bucket=name,
                    VersioningConfiguration={"Status": str(versioning.get("Status"))},
                ),
            )
        lifecycle = properties.get("LifecycleConfiguration")
        if lifecycle:
            rules = [_lifecycle_rule(rule) for rule in lifecycle.get("Rules") or []]
            _best_effort(
                "lifecycle rules",
                lambda: s3.put_bucket_lifecycle_configuration(
                    Bucket=name, LifecycleConfiguration={"Rules": rules}
                ),
            )

    def _bucket_notifications(
        self, logical_id: str, name: str, notification: Mapping[str, Any]
    ) -> None:
        """Make the template's queue notifications real (only when they changed)."""
        for unsupported in ("TopicConfigurations", "LambdaConfigurations"):
            if notification.get(unsupported):
                log.warning(
                    "bucket notification kind not provisioned offline: %s %s",
                    logical_id,
                    unsupported,
                )
        wanted: dict[str, Any] = {}
        queues = [
            _queue_notification(entry)
            for entry in notification.get("QueueConfigurations") or []
        ]
        if queues:
            wanted["QueueConfigurations"] = queues
        eventbridge = notification.get("EventBridgeConfiguration") or {}
        if _boolean(eventbridge.get("EventBridgeEnabled", False)):
            wanted["EventBridgeConfiguration"] = {}
        s3 = self.client("s3")
        current = s3.get_bucket_notification_configuration(Bucket=name)
        if _notification_key(current) == _notification_key(wanted):
            return
        # moto sends an s3:TestEvent to each queue when this is set, as S3 does.
        s3.put_bucket_notification_configuration(
            Bucket=name, NotificationConfiguration=wanted
        )


# Translations -------------------------------------------------------------------


def _boolean(value: Any) -> bool:
    """Read a template boolean (YAML true or the strings true/false)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise TemplateError(f"{value!r} is not a boolean")


def _attribute_text(value: Any) -> str:
    """Render a queue property as the string SetQueueAttributes takes."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _is_missing(error: Any) -> bool:
    """Tell whether a ClientError says the resource does not exist."""
    code = str(error.response.get("Error", {}).get("Code", ""))
    return code in (
        "404",
        "NoSuchBucket",
        "NotFound",
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
        "ResourceNotFoundException",
    )


def _best_effort(what: str, call: Callable[[], Any]) -> None:
    """Apply a setting the functions do not depend on; warn when moto refuses it."""
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    try:
        call()
    except (BotoCoreError, ClientError) as error:
        log.warning("optional setting not applied in moto: %s (%s)", what, error)


def _table_request(name: str, properties: Mapping[str, Any]) -> dict[str, Any]:
    """Translate AWS::DynamoDB::Table properties into an on-demand CreateTable request."""
    request: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": list(properties.get("AttributeDefinitions") or []),
        "KeySchema": list(properties.get("KeySchema") or []),
        # Capacity means nothing offline: every table is on demand.
        "BillingMode": "PAY_PER_REQUEST",
    }
    for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        indexes = properties.get(kind) or []
        if indexes:
            request[kind] = [
                {
                    key: value
                    for key, value in index.items()
                    if key in ("IndexName", "KeySchema", "Projection")
                }
                for index in indexes
            ]
    stream = properties.get("StreamSpecification") or {}
    if stream.get("StreamViewType"):
        request["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": str(stream["StreamViewType"]),
        }
    sse = properties.get("SSESpecification") or {}
    if "SSEEnabled" in sse:
        request["SSESpecification"] = {"Enabled": _boolean(sse["SSEEnabled"])}
    return request


def _secret_value(properties: Mapping[str, Any]) -> str:
    """Return a secret's SecretString, or generate one as GenerateSecretString asks."""
    if "SecretString" in properties:
        return str(properties["SecretString"])
    spec = properties.get("GenerateSecretString") or {}
    alphabet = ""
    if not _boolean(spec.get("ExcludeUppercase", False)):
        alphabet += string.ascii_uppercase
    if not _boolean(spec.get("ExcludeLowercase", False)):
        alphabet += string.ascii_lowercase
    if not _boolean(spec.get("ExcludeNumbers", False)):
        alphabet += string.digits
    if not _boolean(spec.get("ExcludePunctuation", False)):
        alphabet += string.punctuation
    if _boolean(spec.get("IncludeSpace", False)):
        alphabet += " "
    excluded = set(str(spec.get("ExcludeCharacters", "")))
    alphabet = "".join(char for char in alphabet if char not in excluded)
    if not alphabet:
        raise ProvisionError("GenerateSecretString leaves no characters to use")
    length = int(spec.get("PasswordLength", 32))
    value = "".join(secrets.choice(alphabet) for _ in range(length))
    template = spec.get("SecretStringTemplate")
    key = spec.get("GenerateStringKey")
    if template and key:
        document = json.loads(str(template))
        document[str(key)] = value
        return json.dumps(document)
    return value


def _lifecycle_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    """Translate a CloudFormation lifecycle rule into the S3 API's shape."""
    result: dict[str, Any] = {"Status": str(rule.get("Status", "Enabled"))}
    if rule.get("Id"):
        result["ID"] = str(rule["Id"])
    prefix = rule.get("Prefix")
    result["Filter"] = {"Prefix": str(prefix)} if prefix is not None else {}
    expiration: dict[str, Any] = {}
    if "ExpirationInDays" in rule:
        expiration["Days"] = int(rule["ExpirationInDays"])
    if "ExpiredObjectDeleteMarker" in rule:
        expiration["ExpiredObjectDeleteMarker"] = _boolean(
            rule["ExpiredObjectDeleteMarker"]
        )
    if expiration:
        result["Expiration"] = expiration
    abort = rule.get("AbortIncompleteMultipartUpload")
    if abort:
        result["AbortIncompleteMultipartUpload"] = {
            "DaysAfterInitiation": int(abort["DaysAfterInitiation"])
        }
    if "NoncurrentVersionExpirationInDays" in rule:
        result["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": int(rule["NoncurrentVersionExpirationInDays"])
        }
    noncurrent = rule.get("NoncurrentVersionExpiration")
    if noncurrent:
        result["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": int(noncurrent["NoncurrentDays"]),
            **(
                {"NewerNoncurrentVersions": int(noncurrent["NewerNoncurrentVersions"])}
                if "NewerNoncurrentVersions" in noncurrent
                else {}
            ),
        }
    return result


def _queue_notification(entry: Mapping[str, Any]) -> dict[str, Any]:
    """Translate one QueueConfiguration into the S3 API's shape."""
    result: dict[str, Any] = {
        "QueueArn": str(entry["Queue"]),
        "Events": [str(entry["Event"])],
    }
    rules = ((entry.get("Filter") or {}).get("S3Key") or {}).get("Rules") or []
    if rules:
        result["Filter"] = {
            "Key": {
                "FilterRules": [
                    {"Name": str(rule["Name"]), "Value": str(rule["Value"])}
                    for rule in rules
                ]
            }
        }
    return result


def _notification_key(config: Mapping[str, Any]) -> tuple[Any, ...]:
    """Reduce a notification configuration to what matters, to compare two of them."""
    queues = sorted(
        (
            str(entry.get("QueueArn")),
            tuple(sorted(entry.get("Events") or [])),
            tuple(
                sorted(
                    (str(rule["Name"]).lower(), str(rule["Value"]))
                    for rule in ((entry.get("Filter") or {}).get("Key") or {}).get(
                        "FilterRules"
                    )
                    or []
                )
            ),
        )
        for entry in config.get("QueueConfigurations") or []
    )
    return (tuple(queues), "EventBridgeConfiguration" in config)


# Command line -------------------------------------------------------------------


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m offline.provision",
        description="Create the template's buckets, queues, tables and secrets in moto.",
    )
    parser.add_argument("--endpoint-url", default="http://127.0.0.1:5000")
    parser.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE)
    parser.add_argument(
        "--parameter-overrides", nargs="+", default=[], metavar="KEY=VALUE"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Provision and print the resources as JSON (logical id -> Ref and attributes)."""
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    # The same default as the offline stack, so both agree on the webhook secret.
    from offline.webhook_receiver import secret_from_env  # noqa: PLC0415

    try:
        template = load_template(
            args.template, parse_parameter_overrides(args.parameter_overrides)
        )
        secret = secret_from_env()
        created = provision(
            template,
            args.endpoint_url,
            secret_values=dict.fromkeys(webhook_secret_ids(template), secret),
        )
    except (TemplateError, ValueError, ProvisionError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    report = {
        logical_id: {"type": item.type, "ref": item.ref, **item.attributes}
        for logical_id, item in created.items()
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
