"""The S3 event notifications that reach the results function through its queue."""

from urllib.parse import unquote_plus

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Lenient(BaseModel):
    # S3 adds fields over time; the gateway reads only what it needs.
    model_config = ConfigDict(extra="ignore", frozen=True)


class S3Bucket(_Lenient):
    name: str = Field(min_length=1)


class S3Object(_Lenient):
    key: str = Field(min_length=1)

    @field_validator("key")
    @classmethod
    def _decode(cls, key: str) -> str:
        # S3 URL-encodes keys in notifications, with "+" for a space.
        return unquote_plus(key)


class S3Entity(_Lenient):
    bucket: S3Bucket
    object: S3Object


class S3Record(_Lenient):
    """One record of an S3 event notification."""

    event_source: str = Field(alias="eventSource")
    event_name: str = Field(alias="eventName")
    s3: S3Entity

    @property
    def location(self) -> str:
        """The object's ``s3://bucket/key`` location, key decoded."""
        return f"s3://{self.s3.bucket.name}/{self.s3.object.key}"

    @property
    def is_object_created(self) -> bool:
        """Put, Post, Copy and CompleteMultipartUpload all count."""
        return self.event_source == "aws:s3" and self.event_name.startswith(
            "ObjectCreated:"
        )


class S3Notification(_Lenient):
    """An S3 event notification; S3's test event has no records."""

    records: list[S3Record] = Field(default_factory=list, alias="Records")
    event: str | None = Field(default=None, alias="Event")

    @property
    def is_test_event(self) -> bool:
        """S3 sends this once when a notification is configured."""
        return self.event == "s3:TestEvent"
