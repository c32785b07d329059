"""Typed failures of the image store; the CRI service maps them onto gRPC codes.

``InvalidReference`` -> INVALID_ARGUMENT, ``ImageNotFound`` -> NOT_FOUND, ``PullError`` -> the
registry's reason (``status`` carries the registry's HTTP status when there was one, 0 otherwise;
``code`` its error code such as ``MANIFEST_UNKNOWN`` or ``UNAUTHORIZED``).
"""

from __future__ import annotations


class ImageError(Exception):
    """Base of the image store's errors."""


class InvalidReference(ImageError, ValueError):
    """A malformed image reference."""


class ImageNotFound(ImageError, LookupError):
    """No such image in the store."""


class PullError(ImageError):
    """A pull or an import failed; nothing of it was kept."""

    def __init__(self, message: str, *, status: int = 0, code: str = ""):
        super().__init__(message)
        self.status = status
        self.code = code

    @property
    def not_found(self) -> bool:
        """The registry does not have the repository, tag or digest."""
        return self.status == 404 or self.code in ("MANIFEST_UNKNOWN", "NAME_UNKNOWN", "BLOB_UNKNOWN")

    @property
    def unauthorized(self) -> bool:
        return self.status in (401, 403) or self.code in ("UNAUTHORIZED", "DENIED")
