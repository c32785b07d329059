"""Typed API errors and their Kubernetes ``Status`` form.

The server raises these and renders them with ``to_status``; clients turn a ``Status`` body back
into the same type with ``from_status``, so both sides catch ``NotFound`` rather than parse text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Cause:
    """One reason an object was refused: ``field`` is a JSON path such as ``spec.containers[0].name``."""

    type: str          # FieldValueRequired, FieldValueInvalid, FieldValueNotSupported, ...
    message: str
    field: str = ""

    def to_dict(self) -> dict[str, str]:
        d = {"reason": self.type, "message": self.message}
        if self.field:
            d["field"] = self.field
        return d


class StatusError(Exception):
    """An error the API reports as a ``Status`` object. Subclasses fix ``code`` and ``reason``."""

    code = 500
    reason = "InternalError"

    def __init__(self, message: str, *, kind: str = "", name: str = "", group: str = "",
                 causes: list[Cause] | None = None, retry_after: int | None = None,
                 uid: str = ""):
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.name = name
        self.group = group
        self.causes = list(causes or [])
        self.retry_after = retry_after
        self.uid = uid

    def to_status(self) -> dict[str, Any]:
        details: dict[str, Any] = {}
        if self.name:
            details["name"] = self.name
        if self.group:
            details["group"] = self.group
        if self.kind:
            details["kind"] = self.kind
        if self.uid:
            details["uid"] = self.uid
        if self.causes:
            details["causes"] = [c.to_dict() for c in self.causes]
        if self.retry_after is not None:
            details["retryAfterSeconds"] = self.retry_after
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if details:
            status["details"] = details
        return status

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class BadRequest(StatusError):
    code, reason = 400, "BadRequest"


class Unauthorized(StatusError):
    code, reason = 401, "Unauthorized"


class Forbidden(StatusError):
    code, reason = 403, "Forbidden"


class NotFound(StatusError):
    code, reason = 404, "NotFound"


class MethodNotAllowed(StatusError):
    code, reason = 405, "MethodNotAllowed"


class NotAcceptable(StatusError):
    code, reason = 406, "NotAcceptable"


class AlreadyExists(StatusError):
    code, reason = 409, "AlreadyExists"


class Conflict(StatusError):
    code, reason = 409, "Conflict"


class Gone(StatusError):
    """The requested resourceVersion is older than what storage keeps (compacted)."""

    code, reason = 410, "Expired"


class RequestEntityTooLarge(StatusError):
    code, reason = 413, "RequestEntityTooLarge"


class UnsupportedMediaType(StatusError):
    code, reason = 415, "UnsupportedMediaType"


class Invalid(StatusError):
    code, reason = 422, "Invalid"


class TooManyRequests(StatusError):
    code, reason = 429, "TooManyRequests"


class InternalError(StatusError):
    code, reason = 500, "InternalError"


class ServiceUnavailable(StatusError):
    code, reason = 503, "ServiceUnavailable"


class Timeout(StatusError):
    code, reason = 504, "Timeout"


_BY_REASON: dict[str, type[StatusError]] = {
    cls.reason: cls
    for cls in (BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, NotAcceptable,
                AlreadyExists, Conflict, Gone, RequestEntityTooLarge, UnsupportedMediaType, Invalid,
                TooManyRequests, InternalError, ServiceUnavailable, Timeout)
}
_BY_CODE: dict[int, type[StatusError]] = {}
for _cls in _BY_REASON.values():
    _BY_CODE.setdefault(_cls.code, _cls)
_BY_REASON["Gone"] = Gone


def not_found(resource: str, name: str, group: str = "") -> NotFound:
    """Kubernetes' wording: ``pods "x" not found`` (``deployments.apps "x" not found``)."""
    qualified = f"{resource}.{group}" if group else resource
    return NotFound(f'{qualified} "{name}" not found', kind=resource, name=name, group=group)


def already_exists(resource: str, name: str, group: str = "") -> AlreadyExists:
    qualified = f"{resource}.{group}" if group else resource
    return AlreadyExists(f'{qualified} "{name}" already exists', kind=resource, name=name, group=group)


def conflict(resource: str, name: str, group: str = "", why: str = "") -> Conflict:
    qualified = f"{resource}.{group}" if group else resource
    why = why or "the object has been modified; please apply your changes to the latest version and try again"
    return Conflict(f'Operation cannot be fulfilled on {qualified} "{name}": {why}',
                    kind=resource, name=name, group=group)


def invalid(kind: str, name: str, causes: list[Cause], group: str = "") -> Invalid:
    """Kubernetes' wording: ``Pod "x" is invalid: spec.containers[0].image: Required value``."""
    summary = ", ".join(f"{c.field}: {c.message}" if c.field else c.message for c in causes)
    qualified = f"{kind}.{group}" if group else kind
    if len(causes) > 1:
        summary = "[" + summary + "]"
    return Invalid(f'{qualified} "{name}" is invalid: {summary}', kind=kind, name=name, group=group,
                   causes=causes)


def from_status(status: dict[str, Any], http_code: int | None = None) -> StatusError:
    """The typed error for a ``Status`` body (as a client receives it)."""
    reason = status.get("reason") or ""
    code = status.get("code") or http_code or 500
    cls = _BY_REASON.get(reason) or _BY_CODE.get(int(code)) or StatusError
    details = status.get("details") or {}
    causes = [Cause(c.get("reason", ""), c.get("message", ""), c.get("field", ""))
              for c in details.get("causes") or []]
    err = cls(status.get("message") or reason or f"HTTP {code}", kind=details.get("kind", ""),
              name=details.get("name", ""), group=details.get("group", ""), causes=causes,
              retry_after=details.get("retryAfterSeconds"), uid=details.get("uid", ""))
    if cls is StatusError:
        err.code = int(code)
        err.reason = reason or "Unknown"
    return err
