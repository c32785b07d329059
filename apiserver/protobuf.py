"""Kubernetes protobuf request bodies (``application/vnd.kubernetes.protobuf``) decoded to JSON dicts.

kubectl's imperative commands (``create configmap``, ``create deployment``, ...) send
protobuf: the magic ``k8s\\0``, then a ``runtime.Unknown`` whose ``raw`` is the object's own
message. ``decode`` turns such a body into the dict the same object would have been as JSON, so the
rest of the server never sees protobuf. Responses stay JSON: clients that send protobuf accept it.

The JSON form follows Kubernetes' rules: proto field names are the JSON names; a zero scalar is
omitted unless its field is marked ``keep_zero``, and an ``inline`` field's members join its parent
(see ``proto/k8s/options.proto``); empty lists and maps are omitted; a present message is kept
even when empty (``"resources": {}``); bytes are base64; Quantity, IntOrString, Time, MicroTime,
Duration, FieldsV1 and RawExtension take their JSON shapes. Fields this server does not describe
are an error, never silently dropped.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable
from typing import Any

import orjson
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message
from google.protobuf.unknown_fields import UnknownFieldSet

from api.errors import BadRequest, UnsupportedMediaType
from proto.k8s import (
    apps_pb2,
    batch_pb2,
    coordination_pb2,
    core_pb2,
    options_pb2,
    policy_pb2,
    runtime_pb2,
    scheduling_pb2,
)

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"

# (apiVersion, kind) -> message class of the object in Unknown.raw.
KINDS: dict[tuple[str, str], type[Message]] = {
    ("v1", "ConfigMap"): core_pb2.ConfigMap,
    ("v1", "Secret"): core_pb2.Secret,
    ("v1", "Namespace"): core_pb2.Namespace,
    ("v1", "ServiceAccount"): core_pb2.ServiceAccount,
    ("v1", "Service"): core_pb2.Service,
    ("v1", "Pod"): core_pb2.Pod,
    ("apps/v1", "Deployment"): apps_pb2.Deployment,
    ("batch/v1", "Job"): batch_pb2.Job,
    ("batch/v1", "CronJob"): batch_pb2.CronJob,
    ("scheduling.k8s.io/v1", "PriorityClass"): scheduling_pb2.PriorityClass,
    ("coordination.k8s.io/v1", "Lease"): coordination_pb2.Lease,
    ("policy/v1", "Eviction"): policy_pb2.Eviction,
}

_META = "k8s.io.apimachinery.pkg.apis.meta.v1."
_TIME, _MICRO_TIME, _DURATION, _FIELDS_V1 = (_META + n for n in ("Time", "MicroTime", "Duration", "FieldsV1"))
_QUANTITY = "k8s.io.apimachinery.pkg.api.resource.Quantity"
_INT_OR_STRING = "k8s.io.apimachinery.pkg.util.intstr.IntOrString"
_RAW_EXTENSION = "k8s.io.apimachinery.pkg.runtime.RawExtension"

# How each field becomes JSON, worked out once per field from its descriptor and options.
_SCALAR, _MESSAGE, _INLINE, _LIST, _MAP = range(5)
Converter = Callable[[Any, str], Any]
_plans: dict[FieldDescriptor, tuple[str, int, bool, Converter | None]] = {}
_OMIT = object()  # a zero IntOrString: JSON leaves it out unless the field is keep_zero


def decode(body: bytes) -> dict:
    """The JSON dict of a protobuf-enveloped object.

    Raises BadRequest for a malformed body and UnsupportedMediaType for a kind not described here.
    """
    if not body.startswith(MAGIC):
        raise BadRequest("protobuf body does not start with the Kubernetes magic bytes 'k8s\\x00'")
    envelope = runtime_pb2.Unknown()
    _parse(envelope, body[len(MAGIC):], "the protobuf envelope")
    api_version, kind = envelope.typeMeta.apiVersion, envelope.typeMeta.kind
    if not kind or not api_version:
        raise BadRequest("protobuf body does not name the object's apiVersion and kind")
    if envelope.contentEncoding:
        raise BadRequest(f'protobuf body has content encoding "{envelope.contentEncoding}"; '
                         f"only unencoded bodies are accepted")
    if envelope.contentType not in ("", MEDIA_TYPE):
        raise BadRequest(f'protobuf envelope carries content type "{envelope.contentType}"; '
                         f"expected {MEDIA_TYPE}")
    cls = KINDS.get((api_version, kind))
    if cls is None:
        raise UnsupportedMediaType(f"{kind} ({api_version}) is not accepted as {MEDIA_TYPE}; "
                                   f"send it as application/json or application/yaml")
    msg = cls()
    _parse(msg, envelope.raw, f"{kind} ({api_version})")
    size = msg.ByteSize()
    msg.DiscardUnknownFields()
    if msg.ByteSize() != size:  # something we do not describe: find it again to name it
        fresh = cls()
        fresh.ParseFromString(envelope.raw)
        _refuse_unknown(fresh, "")
    obj: dict[str, Any] = {"apiVersion": api_version, "kind": kind}
    obj.update(_message(msg, ""))
    return obj


def _parse(msg: Message, data: bytes, what: str) -> None:
    try:
        msg.ParseFromString(data)
    except DecodeError as e:
        raise BadRequest(f"error decoding protobuf body: {what} is malformed: {e}") from None


def _refuse_unknown(msg: Message, path: str) -> None:
    """Raise BadRequest naming the first message under ``msg`` that carries fields we do not describe."""
    unknown = UnknownFieldSet(msg)
    if len(unknown):
        numbers = ", ".join(str(f.field_number) for f in unknown)
        raise BadRequest(f"{path or 'the object'}: protobuf field(s) {numbers} of {msg.DESCRIPTOR.name} "
                         f"are not understood by this server")
    for field, value in msg.ListFields():
        if field.message_type is None:
            continue
        if _plan(field)[1] == _INLINE:
            _refuse_unknown(value, path)
            continue
        sub = f"{path}.{field.name}" if path else field.name
        if not field.is_repeated:
            _refuse_unknown(value, sub)
        elif field.message_type.GetOptions().map_entry:
            if field.message_type.fields_by_name["value"].message_type is not None:
                for k, v in value.items():
                    _refuse_unknown(v, f"{sub}[{k}]")
        else:
            for i, v in enumerate(value):
                _refuse_unknown(v, f"{sub}[{i}]")


def _plan(field: FieldDescriptor) -> tuple[str, int, bool, Converter | None]:
    """(JSON name, shape, keep_zero, converter of the value or of each element; None: as is)."""
    plan = _plans.get(field)
    if plan is None:
        ext = field.GetOptions().Extensions
        keep, inline = bool(ext[options_pb2.keep_zero]), bool(ext[options_pb2.inline])
        mt = field.message_type
        if field.is_repeated and mt is not None and mt.GetOptions().map_entry:
            plan = (field.name, _MAP, keep, _element(mt.fields_by_name["value"]))
        elif field.is_repeated:
            plan = (field.name, _LIST, keep, _element(field))
        elif mt is not None:
            plan = (field.name, _INLINE if inline else _MESSAGE, keep, _converter(mt))
        else:
            plan = (field.name, _SCALAR, keep, _element(field))
        _plans[field] = plan
    return plan


def _element(field: FieldDescriptor) -> Converter | None:
    if field.message_type is not None:
        convert = _converter(field.message_type)

        def element(value: Any, path: str) -> Any:
            result = convert(value, path)
            return 0 if result is _OMIT else result
        return element
    if field.type == FieldDescriptor.TYPE_BYTES:
        return _base64
    return None


def _converter(desc: Descriptor) -> Converter:
    """The JSON form of one message type: Kubernetes' special shapes, or an object."""
    return _SPECIAL.get(desc.full_name, _message)


def _message(msg: Message, path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field, value in msg.ListFields():
        name, shape, keep, convert = _plan(field)
        if shape == _SCALAR:
            if value or keep:
                out[name] = convert(value, path) if convert else value
        elif shape == _MESSAGE:
            result = convert(value, f"{path}.{name}" if path else name)
            if result is _OMIT:
                if not keep:
                    continue
                result = 0
            out[name] = result
        elif shape == _INLINE:
            out.update(convert(value, path))
        elif shape == _LIST:
            if convert is None:
                out[name] = list(value)
            else:
                sub = f"{path}.{name}" if path else name
                out[name] = [convert(v, f"{sub}[{i}]") for i, v in enumerate(value)]
        else:
            if convert is None:
                out[name] = dict(value)
            else:
                sub = f"{path}.{name}" if path else name
                out[name] = {k: convert(v, f"{sub}[{k}]") for k, v in value.items()}
    return out


def _base64(value: bytes, path: str) -> str:
    return base64.b64encode(value).decode("ascii")


def _int_or_string(value: Message, path: str) -> Any:
    if value.type == 1:
        return value.strVal
    return value.intVal if value.intVal else _OMIT


def _time(value: Message, micro: bool) -> str | None:
    """RFC 3339 in UTC; the zero time is JSON null, as Kubernetes writes it."""
    if not value.seconds and not value.nanos:
        return None
    try:
        t = dt.datetime.fromtimestamp(value.seconds, dt.UTC)
    except (OverflowError, OSError, ValueError):
        raise BadRequest(f"protobuf time {value.seconds}s is out of range") from None
    base = t.strftime("%Y-%m-%dT%H:%M:%S")
    if micro:
        return f"{base}.{value.nanos // 1000:06d}Z"
    return base + "Z"


def _duration(nanos: int) -> str:
    """Go's time.Duration string ("1h2m3.5s", "150ms", "0s"), the JSON form of meta/v1 Duration."""
    if nanos == 0:
        return "0s"
    sign, n = ("-", -nanos) if nanos < 0 else ("", nanos)
    if n < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if n >= size:
                return sign + _trim(n, size) + unit
    hours, rest = divmod(n, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    text = _trim(rest, 1_000_000_000) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{text}"
    if minutes:
        return f"{sign}{minutes}m{text}"
    return sign + text


def _trim(n: int, size: int) -> str:
    whole, frac = divmod(n, size)
    if not frac:
        return str(whole)
    digits = len(str(size)) - 1
    return f"{whole}.{frac:0{digits}d}".rstrip("0")


def _json(raw: bytes, path: str) -> Any:
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError as e:
        raise BadRequest(f"{path}: embedded JSON is malformed: {e}") from None


def _raw_extension(raw: bytes, path: str) -> Any:
    """An embedded object: JSON as written, or a nested protobuf envelope decoded in turn."""
    if raw.startswith(MAGIC):
        return decode(raw)
    return _json(raw, path)


_SPECIAL: dict[str, Converter] = {
    _TIME: lambda v, p: _time(v, micro=False),
    _MICRO_TIME: lambda v, p: _time(v, micro=True),
    _DURATION: lambda v, p: _duration(v.duration),
    _QUANTITY: lambda v, p: v.string,
    _INT_OR_STRING: _int_or_string,
    _FIELDS_V1: lambda v, p: _json(v.Raw, p),
    _RAW_EXTENSION: lambda v, p: _raw_extension(v.raw, p),
}
