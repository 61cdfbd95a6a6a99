"""The gateway's S3 bucket: request payloads in, results and failures out."""

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from botocore.config import Config

from gateway.aws import clients

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@dataclass(frozen=True, slots=True)
class StoredObject:
    """An object's metadata and, when asked for, its bytes."""

    location: str
    size: int
    content_type: str | None
    body: bytes | None = None


def create_client() -> "S3Client":
    """Create an S3 client that signs with SigV4, as presigned URLs need."""
    config = Config(signature_version="s3v4", retries={"mode": "standard"})
    return cast("S3Client", clients.create("s3", config))


def split_location(location: str) -> tuple[str, str]:
    """Split ``s3://bucket/key`` into bucket and key."""
    if not location.startswith("s3://"):
        raise ValueError("not an s3:// location")
    bucket, _, key = location.removeprefix("s3://").partition("/")
    if not bucket or not key:
        raise ValueError("an s3:// location names a bucket and a key")
    return bucket, key


class ObjectStore:
    """Stores payloads and reads results in S3."""

    def __init__(self, client: "S3Client", bucket: str) -> None:
        self.client = client
        self._bucket = bucket

    def location_of_input(self, name: str) -> str:
        """Where a request payload called ``name`` is stored."""
        return f"s3://{self._bucket}/inputs/{name}"

    def put_input(self, name: str, body: bytes, content_type: str | None) -> str:
        """Store a request payload under ``inputs/`` and return its location."""
        return self._put(f"inputs/{name}", body, content_type)

    def put_reply(self, name: str, body: bytes, content_type: str | None) -> str:
        """Store a reply too large for a message under ``replies/``; return its location."""
        return self._put(f"replies/{name}", body, content_type)

    def describe(self, location: str, *, read_up_to: int = 0) -> StoredObject:
        """Describe an object, reading its bytes when it is at most ``read_up_to``."""
        bucket, key = split_location(location)
        head = self.client.head_object(Bucket=bucket, Key=key)
        size = int(head["ContentLength"])
        content_type = head.get("ContentType")
        body = None
        if size <= read_up_to:
            body = self.client.get_object(Bucket=bucket, Key=key)["Body"].read()
        return StoredObject(location, size, content_type, body)

    def read_start(self, location: str, limit: int) -> bytes:
        """Read at most the first ``limit`` bytes of an object."""
        bucket, key = split_location(location)
        response = self.client.get_object(
            Bucket=bucket, Key=key, Range=f"bytes=0-{limit - 1}"
        )
        return response["Body"].read()

    def _put(self, key: str, body: bytes, content_type: str | None) -> str:
        params = {"Bucket": self._bucket, "Key": key, "Body": body}
        if content_type:
            params["ContentType"] = content_type
        self.client.put_object(**params)  # type: ignore[arg-type]
        return f"s3://{self._bucket}/{key}"

    def presign(self, location: str, expires_in: int) -> str:
        """A short-lived URL that reads the object without AWS credentials."""
        bucket, key = split_location(location)
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_in
        )
