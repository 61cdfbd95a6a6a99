"""Whether a result reads as text, and its text when it is small enough to inline."""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.aws.storage import StoredObject

# Results small enough to read back inline in a status answer or a callback.
INLINE_RESULT_LIMIT = 256 * 1024
_TEXT_TYPES = ("application/json", "application/jsonlines", "application/xml")


def inline_text(stored: "StoredObject") -> str | None:
    """The result as text when it is small text, else None."""
    if stored.body is None or not is_text(stored.content_type):
        return None
    try:
        return stored.body.decode("utf-8")
    except UnicodeDecodeError:
        return None


def is_text(content_type: str | None) -> bool:
    """Tell whether a content type names text a caller can read inline."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media.startswith("text/") or media.endswith("+json") or media in _TEXT_TYPES
