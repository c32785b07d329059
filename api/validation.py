"""Semantic validation: the rules on top of the JSON schema, with Kubernetes' messages and paths.

``validate_create`` and ``validate_update`` return a list of ``Cause`` (empty when the object is
valid); the server wraps a non-empty list with ``api.errors.invalid``. A cause's message is what
Kubernetes prints after the field path (``Invalid value: "Foo": a lowercase RFC 1123 ...``), and
its type the Kubernetes cause reason (``FieldValueInvalid``, ...). Objects are expected to have
been defaulted already, as the server does before validating; neither function mutates its input.
Structural checks (types, unknown fields) belong to ``api.schema``.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache, wraps
from typing import Any

import orjson

from api import quantity
from api.errors import Cause
from api.registry import ResourceInfo
from api.selectors import (
    DNS1123_LABEL_FMT,
    DNS1123_SUBDOMAIN_FMT,
    DNS1123_SUBDOMAIN_MSG,
    from_label_selector,
    go_quote,
    label_value_errors,
    max_len_error,
    qualified_name_errors,
    regex_error,
)

REQUIRED, INVALID, NOT_SUPPORTED = "FieldValueRequired", "FieldValueInvalid", "FieldValueNotSupported"
DUPLICATE, FORBIDDEN, TOO_LONG = "FieldValueDuplicate", "FieldValueForbidden", "FieldValueTooLong"
NOT_FOUND, TOO_MANY = "FieldValueNotFound", "FieldValueTooMany"

IMMUTABLE = "field is immutable"
TOTAL_ANNOTATION_SIZE = 256 * 1024
MAX_SECRET_SIZE = 1024 * 1024
MAX_INT32 = 2147483647

# ---------------------------------------------------------------------------------------------
# Names


def _text_rule(fn: Callable[[str], tuple[str, ...]]) -> Callable[[Any], tuple[str, ...]]:
    """A cached name rule that passes over non-strings (a wrong type is the schema's to report)."""
    cached = lru_cache(maxsize=4096)(fn)

    @wraps(fn)
    def check(value: Any) -> tuple[str, ...]:
        return cached(value) if isinstance(value, str) else ()
    return check


DNS1123_LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or "
                     "'-', and must start and end with an alphanumeric character")
DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
DNS1035_LABEL_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start "
                     "with an alphabetic character, and end with an alphanumeric character")
_DNS1123_LABEL_RE = re.compile(f"^{DNS1123_LABEL_FMT}$")
_DNS1123_SUBDOMAIN_RE = re.compile(f"^{DNS1123_SUBDOMAIN_FMT}$")
_DNS1035_LABEL_RE = re.compile(f"^{DNS1035_LABEL_FMT}$")
_PORT_NAME_CHARS_RE = re.compile(r"^[-a-z0-9]+$")
_PORT_NAME_LETTER_RE = re.compile(r"[a-z]")
_CONFIG_KEY_FMT = "[-._a-zA-Z0-9]+"
_CONFIG_KEY_RE = re.compile(f"^{_CONFIG_KEY_FMT}$")
_PERCENT_RE = re.compile(r"^[0-9]+%$")


@_text_rule
def dns1123_label_errors(value: str) -> tuple[str, ...]:
    errs = []
    if len(value) > 63:
        errs.append(max_len_error(63))
    if not _DNS1123_LABEL_RE.match(value):
        errs.append(regex_error(DNS1123_LABEL_MSG, DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return tuple(errs)


@_text_rule
def dns1123_subdomain_errors(value: str) -> tuple[str, ...]:
    errs = []
    if len(value) > 253:
        errs.append(max_len_error(253))
    if not _DNS1123_SUBDOMAIN_RE.match(value):
        errs.append(regex_error(DNS1123_SUBDOMAIN_MSG, DNS1123_SUBDOMAIN_FMT, "example.com"))
    return tuple(errs)


@_text_rule
def dns1035_label_errors(value: str) -> tuple[str, ...]:
    errs = []
    if len(value) > 63:
        errs.append(max_len_error(63))
    if not _DNS1035_LABEL_RE.match(value):
        errs.append(regex_error(DNS1035_LABEL_MSG, DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return tuple(errs)


def _as_prefix(fn: Callable[[str], tuple[str, ...]]) -> Callable[[str, bool], tuple[str, ...]]:
    """A name rule that, for generateName prefixes, tolerates a trailing '-'."""
    def check(value: str, prefix: bool = False) -> tuple[str, ...]:
        if prefix and value.endswith("-"):
            value = value[:-1] + "a"
        return fn(value)
    return check


name_is_dns_subdomain = _as_prefix(dns1123_subdomain_errors)
name_is_dns_label = _as_prefix(dns1123_label_errors)
name_is_dns1035_label = _as_prefix(dns1035_label_errors)

# How each kind's metadata.name is checked (DNS-1123 subdomain when not listed).
NAME_RULES: dict[str, Callable[[str, bool], tuple[str, ...]]] = {
    "Namespace": name_is_dns_label,
    "Service": name_is_dns1035_label,
    "StatefulSet": name_is_dns_label,  # pods are named after it, with an ordinal suffix
}


@_text_rule
def port_name_errors(port: str) -> tuple[str, ...]:
    errs = []
    if len(port) > 15:
        errs.append(max_len_error(15))
    if not _PORT_NAME_CHARS_RE.match(port):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not _PORT_NAME_LETTER_RE.search(port):
        errs.append("must contain at least one letter (a-z)")
    if "--" in port:
        errs.append("must not contain consecutive hyphens")
    if port and (port[0] == "-" or port[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return tuple(errs)


@_text_rule
def config_key_errors(key: str) -> tuple[str, ...]:
    errs = []
    if len(key) > 253:
        errs.append(max_len_error(253))
    if not _CONFIG_KEY_RE.match(key):
        errs.append(regex_error("a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                                _CONFIG_KEY_FMT, "key.name", "KEY_NAME", "key-name"))
    if key == ".":
        errs.append("must not be '.'")
    elif key == "..":
        errs.append("must not be '..'")
    elif key.startswith(".."):
        errs.append("must not start with '..'")
    return tuple(errs)


def _range_error(lo: int, hi: int) -> str:
    return f"must be between {lo} and {hi}, inclusive"


def _dict(v: Any) -> dict:
    """``v`` when it is a dict, else an empty one: wrong shapes are the schema's to report."""
    return v if isinstance(v, dict) else {}


def _list(v: Any) -> list:
    return v if isinstance(v, list) else []


def _str(v: Any) -> str:
    return v if isinstance(v, str) else ""


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# ---------------------------------------------------------------------------------------------
# Cause construction


def go_value(v: Any) -> str:
    """A value roughly as Go's ``%#v``/``%v`` prints it in a Kubernetes field error."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return str(v)
    if isinstance(v, str):
        return go_quote(v)
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return "[]string{" + ", ".join(go_quote(x) for x in v) + "}"
    if isinstance(v, dict) and all(isinstance(x, str) for x in v.values()):
        return "map[string]string{" + ", ".join(f"{go_quote(k)}:{go_quote(v[k])}" for k in sorted(v)) + "}"
    return orjson.dumps(v, option=orjson.OPT_SORT_KEYS).decode()


def _fmt_selector(sel: Any) -> str:
    if not isinstance(sel, dict):
        return "nil"
    labels = sel.get("matchLabels")
    exprs = sel.get("matchExpressions")
    labels_s = go_value(labels) if labels else "map[string]string(nil)"
    if exprs:
        parts = []
        for e in exprs:
            values = e.get("values")
            values_s = go_value(values) if values else "[]string(nil)"
            parts.append(f"v1.LabelSelectorRequirement{{Key:{go_quote(str(e.get('key', '')))}, "
                         f"Operator:{go_quote(str(e.get('operator', '')))}, Values:{values_s}}}")
        exprs_s = "[]v1.LabelSelectorRequirement{" + ", ".join(parts) + "}"
    else:
        exprs_s = "[]v1.LabelSelectorRequirement(nil)"
    return f"v1.LabelSelector{{MatchLabels:{labels_s}, MatchExpressions:{exprs_s}}}"


class Errors(list):
    """A list of ``Cause`` with constructors named after Kubernetes' field error kinds."""

    def required(self, path: str, detail: str = "") -> None:
        self.append(Cause(REQUIRED, "Required value" + (f": {detail}" if detail else ""), path))

    def invalid(self, path: str, value: Any, detail: str = "", *, shown: str | None = None) -> None:
        body = f"Invalid value: {shown if shown is not None else go_value(value)}"
        self.append(Cause(INVALID, body + (f": {detail}" if detail else ""), path))

    def not_supported(self, path: str, value: Any, valid: Iterable[str]) -> None:
        choices = ", ".join(go_quote(v) for v in valid)
        msg = f"Unsupported value: {go_value(value)}"
        if choices:
            msg += f": supported values: {choices}"
        self.append(Cause(NOT_SUPPORTED, msg, path))

    def duplicate(self, path: str, value: Any) -> None:
        self.append(Cause(DUPLICATE, f"Duplicate value: {go_value(value)}", path))

    def forbidden(self, path: str, detail: str) -> None:
        self.append(Cause(FORBIDDEN, f"Forbidden: {detail}", path))

    def too_long(self, path: str, max_bytes: int) -> None:
        self.append(Cause(TOO_LONG, f"Too long: may not be more than {max_bytes} bytes", path))

    def not_found(self, path: str, value: Any) -> None:
        self.append(Cause(NOT_FOUND, f"Not found: {go_value(value)}", path))

    def each(self, path: str, value: Any, messages: Iterable[str]) -> None:
        for m in messages:
            self.invalid(path, value, m)

    def nonnegative(self, path: str, value: Any) -> None:
        if _is_int(value) and value < 0:
            self.invalid(path, value, "must be greater than or equal to 0")

    def immutable(self, path: str, new: Any, old: Any, *, shown: str | None = None) -> None:
        if new != old:
            self.invalid(path, new, IMMUTABLE, shown=shown)


def _key(path: str, key: str) -> str:
    return f"{path}[{key}]"


# ---------------------------------------------------------------------------------------------
# Metadata


def validate_labels(labels: Any, path: str, errs: Errors) -> None:
    if not isinstance(labels, dict):
        return
    for k, v in labels.items():
        errs.each(path, k, qualified_name_errors(k))
        if isinstance(v, str):
            errs.each(path, v, label_value_errors(v))


def validate_annotations(annotations: Any, path: str, errs: Errors) -> None:
    if not isinstance(annotations, dict):
        return
    total = 0
    for k, v in annotations.items():
        errs.each(path, k, qualified_name_errors(k.lower()))
        total += len(k) + (len(v) if isinstance(v, str) else 0)
    if total > TOTAL_ANNOTATION_SIZE:
        errs.too_long(path, TOTAL_ANNOTATION_SIZE)


def _validate_owner_references(refs: Any, path: str, errs: Errors) -> None:
    # Kubernetes names these fields without the reference's index.
    if not isinstance(refs, list):
        return
    first_controller = ""
    for ref in refs:
        if not isinstance(ref, dict):
            continue
        for f, what in (("apiVersion", "version"), ("kind", "kind"), ("name", "name"), ("uid", "uid")):
            if not ref.get(f):
                errs.invalid(f"{path}.{f}", ref.get(f) or "", f"{what} must not be empty")
        if ref.get("controller"):
            current = f"{ref.get('kind', '')}/{ref.get('name', '')}"
            if first_controller:
                errs.invalid(path, refs, "Only one reference can have Controller set to true. Found \"true\" in "
                             f"references for {first_controller} and {current}", shown="[]v1.OwnerReference{...}")
            else:
                first_controller = current


def validate_object_meta(resource: ResourceInfo, obj: dict, errs: Errors) -> None:
    md = obj.get("metadata")
    if not isinstance(md, dict):
        errs.required("metadata.name", "name or generateName is required")
        return
    rule = NAME_RULES.get(resource.kind, name_is_dns_subdomain)
    generate = md.get("generateName")
    if generate:
        errs.each("metadata.generateName", generate, rule(generate, True))
    name = md.get("name")
    if not name:
        errs.required("metadata.name", "name or generateName is required")
    else:
        errs.each("metadata.name", name, rule(name, False))
    ns = md.get("namespace")
    if resource.namespaced:
        if not ns:
            errs.required("metadata.namespace")
        else:
            errs.each("metadata.namespace", ns, dns1123_label_errors(ns))
    elif ns:
        errs.forbidden("metadata.namespace", "not allowed on this type")
    validate_labels(md.get("labels"), "metadata.labels", errs)
    validate_annotations(md.get("annotations"), "metadata.annotations", errs)
    for f in _list(md.get("finalizers")):
        if isinstance(f, str):
            errs.each("metadata.finalizers", f, qualified_name_errors(f))
    _validate_owner_references(md.get("ownerReferences"), "metadata.ownerReferences", errs)


def validate_object_meta_update(new: dict, old: dict, errs: Errors) -> None:
    nmd, omd = _dict(new.get("metadata")), _dict(old.get("metadata"))
    for f in ("name", "namespace", "uid", "creationTimestamp"):
        if nmd.get(f) != omd.get(f):
            errs.invalid(f"metadata.{f}", nmd.get(f), IMMUTABLE)


# ---------------------------------------------------------------------------------------------
# Label selectors in specs

_SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def validate_label_selector(sel: Any, path: str, errs: Errors) -> None:
    if not isinstance(sel, dict):
        return
    validate_labels(sel.get("matchLabels"), f"{path}.matchLabels", errs)
    for i, expr in enumerate(_list(sel.get("matchExpressions"))):
        if not isinstance(expr, dict):
            continue
        p = f"{path}.matchExpressions[{i}]"
        op, values = expr.get("operator"), _list(expr.get("values"))
        if op in ("In", "NotIn"):
            if not values:
                errs.required(f"{p}.values", "must be specified when `operator` is 'In' or 'NotIn'")
        elif op in ("Exists", "DoesNotExist"):
            if values:
                errs.forbidden(f"{p}.values", "may not be specified when `operator` is 'Exists' or "
                               "'DoesNotExist'")
        else:
            errs.invalid(f"{p}.operator", op, "not a valid selector operator")
        errs.each(f"{p}.key", expr.get("key", ""), qualified_name_errors(expr.get("key") or ""))
        for j, v in enumerate(values):
            if isinstance(v, str):
                errs.each(f"{p}.values[{j}]", v, label_value_errors(v))


def _selector_is_empty(sel: Any) -> bool:
    return not (sel.get("matchLabels") or sel.get("matchExpressions"))


def _selector_matches(sel: dict, labels: Any) -> bool:
    try:
        return from_label_selector(sel).matches(labels if isinstance(labels, dict) else {})
    except Exception:  # noqa: BLE001 - an invalid selector was reported already
        return True


# ---------------------------------------------------------------------------------------------
# Pods

RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
PROTOCOLS = ("SCTP", "TCP", "UDP")
_STANDARD_CONTAINER_RESOURCES = frozenset({"cpu", "memory", "ephemeral-storage"})
_ENV_NAME_OK = re.compile(r"^[\x20-\x3c\x3e-\x7e]+$")  # printable ASCII except '='
_PROBE_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")


def _validate_port_num_or_name(v: Any, path: str, errs: Errors) -> None:
    if _is_int(v):
        if not 1 <= v <= 65535:
            errs.invalid(path, v, _range_error(1, 65535))
    elif isinstance(v, str):
        if not v:
            errs.required(path)
        else:
            errs.each(path, v, port_name_errors(v))


def _validate_container_ports(ports: Any, path: str, errs: Errors) -> None:
    names: set[str] = set()
    for i, port in enumerate(_list(ports)):
        if not isinstance(port, dict):
            continue
        p = f"{path}[{i}]"
        name = port.get("name")
        if name:
            msgs = port_name_errors(name)
            if msgs:
                errs.each(f"{p}.name", name, msgs)
            elif name in names:
                errs.duplicate(f"{p}.name", name)
            else:
                names.add(name)
        cp = port.get("containerPort")
        if not cp:
            errs.required(f"{p}.containerPort")
        elif _is_int(cp) and not 1 <= cp <= 65535:
            errs.invalid(f"{p}.containerPort", cp, _range_error(1, 65535))
        hp = port.get("hostPort")
        if _is_int(hp) and hp != 0 and not 1 <= hp <= 65535:
            errs.invalid(f"{p}.hostPort", hp, _range_error(1, 65535))
        proto = port.get("protocol")
        if not proto:
            errs.required(f"{p}.protocol")
        elif proto not in PROTOCOLS:
            errs.not_supported(f"{p}.protocol", proto, PROTOCOLS)


def _overcommit_allowed(name: str) -> bool:
    return name in _STANDARD_CONTAINER_RESOURCES


_STANDARD_RESOURCES = frozenset({
    "cpu", "memory", "ephemeral-storage", "storage", "pods", "services", "replicationcontrollers",
    "resourcequotas", "secrets", "configmaps", "persistentvolumeclaims", "services.nodeports",
    "services.loadbalancers", "requests.cpu", "requests.memory", "requests.storage",
    "requests.ephemeral-storage", "limits.cpu", "limits.memory", "limits.ephemeral-storage",
})


def _validate_resource_name(name: str, path: str, errs: Errors) -> None:
    msgs = qualified_name_errors(name)
    if msgs:
        errs.each(path, name, msgs)
        return
    if "/" in name:
        return  # a fully qualified (extended or kubernetes.io) resource
    if name not in _STANDARD_RESOURCES and not name.split(".")[-1].startswith("hugepages-"):
        errs.invalid(path, name, "must be a standard resource type or fully qualified")
    if name not in _STANDARD_CONTAINER_RESOURCES and not name.startswith("hugepages-"):
        errs.invalid(path, name, "must be a standard resource for containers")


def validate_resources(res: Any, path: str, errs: Errors) -> None:
    if not isinstance(res, dict):
        return
    parsed: dict[str, dict[str, Any]] = {"limits": {}, "requests": {}}
    for part in ("limits", "requests"):
        for name, q in _dict(res.get(part)).items():
            if not _resource_ok(name, q):
                _resource_errors(name, q, _key(f"{path}.{part}", name), errs)
                if not quantity.is_valid(q):
                    continue
            parsed[part][name] = (quantity.parse(q), quantity.canonical(q))
    named = set(_dict(res.get("limits"))) | set(_dict(res.get("requests")))
    if any(n.startswith("hugepages-") for n in named) and not named & {"cpu", "memory"}:
        errs.forbidden(path, "HugePages require cpu or memory")
    limits = parsed["limits"]
    for name, (v, text) in parsed["requests"].items():
        if name in limits:
            lv, ltext = limits[name]
            if v != lv and not _overcommit_allowed(name):
                errs.invalid(f"{path}.requests", text, f"must be equal to {name} limit of {ltext}")
            elif v > lv:
                errs.invalid(f"{path}.requests", text, f"must be less than or equal to {name} limit of {ltext}")
        elif not _overcommit_allowed(name):
            errs.required(f"{path}.limits", "Limit must be set for non overcommitable resources")


@lru_cache(maxsize=1024)
def _resource_ok_cached(name: str, q: str) -> bool:
    errs = Errors()
    _resource_errors(name, q, "", errs)
    return not errs


def _resource_ok(name: Any, q: Any) -> bool:
    """Whether one entry of a resource list has nothing to report (remembered per name and text:
    the same few are in almost every container)."""
    if isinstance(name, str) and isinstance(q, str):
        return _resource_ok_cached(name, q)
    errs = Errors()
    _resource_errors(name, q, "", errs)
    return not errs


def _resource_errors(name: Any, q: Any, p: str, errs: Errors) -> None:
    _validate_resource_name(name, p, errs)
    try:
        v = quantity.parse(q)
    except ValueError:
        errs.invalid(p, q, quantity.FORMAT_MESSAGE)
        return
    if v < 0:
        errs.invalid(p, quantity.canonical(q), "must be greater than or equal to 0")
    elif not _overcommit_allowed(name) and not name.startswith("hugepages-") and v.denominator != 1:
        errs.invalid(p, quantity.canonical(q), "must be an integer")


def _validate_probe(probe: Any, path: str, errs: Errors, *, must_succeed_once: bool) -> None:
    if not isinstance(probe, dict):
        return
    handlers = [h for h in _PROBE_HANDLERS if probe.get(h) is not None]
    if not handlers:
        errs.required(path, "must specify a handler type")
    elif len(handlers) > 1:
        errs.forbidden(f"{path}.{handlers[1]}", "may not specify more than 1 handler type")
    for f in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold",
              "failureThreshold"):
        errs.nonnegative(f"{path}.{f}", probe.get(f))
    if must_succeed_once and probe.get("successThreshold") not in (None, 1):
        errs.invalid(f"{path}.successThreshold", probe["successThreshold"], "must be 1")
    http = probe.get("httpGet")
    if isinstance(http, dict):
        _validate_port_num_or_name(http.get("port"), f"{path}.httpGet.port", errs)
        if http.get("scheme") not in (None, "HTTP", "HTTPS"):
            errs.not_supported(f"{path}.httpGet.scheme", http["scheme"], ("HTTP", "HTTPS"))
    tcp = probe.get("tcpSocket")
    if isinstance(tcp, dict):
        _validate_port_num_or_name(tcp.get("port"), f"{path}.tcpSocket.port", errs)
    grpc = probe.get("grpc")
    if isinstance(grpc, dict):
        port = grpc.get("port")
        if not _is_int(port) or not 1 <= port <= 65535:
            errs.invalid(f"{path}.grpc.port", port, _range_error(1, 65535))
    exec_ = probe.get("exec")
    if isinstance(exec_, dict) and not exec_.get("command"):
        errs.required(f"{path}.exec.command")


def _validate_env(env: Any, path: str, errs: Errors) -> None:
    for i, var in enumerate(_list(env)):
        if not isinstance(var, dict):
            continue
        name = var.get("name")
        source = var.get("valueFrom")
        if source is None and isinstance(name, str) and name and _ENV_NAME_OK.match(name):
            continue                                    # the common case: nothing to report
        p = f"{path}[{i}]"
        if not name:
            errs.required(f"{p}.name")
        elif isinstance(name, str) and not _ENV_NAME_OK.match(name):
            errs.invalid(f"{p}.name", name, "a valid environment variable name must consist only of "
                         "printable ASCII characters other than '='")
        if isinstance(source, dict):
            kinds = [k for k in ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef")
                     if source.get(k) is not None]
            if var.get("value"):
                errs.invalid(f"{p}.valueFrom", "", "may not be specified when `value` is not empty")
            if not kinds:
                errs.invalid(f"{p}.valueFrom", "", "must specify one of: `fieldRef`, `resourceFieldRef`, "
                             "`configMapKeyRef` or `secretKeyRef`")
            elif len(kinds) > 1:
                errs.invalid(f"{p}.valueFrom", "", "may not have more than one field specified at a time")
            for ref in ("configMapKeyRef", "secretKeyRef"):
                r = source.get(ref)
                if isinstance(r, dict) and not r.get("key"):
                    errs.required(f"{p}.valueFrom.{ref}.key")


def _validate_container(c: dict, path: str, volumes: set[str], errs: Errors, *,
                        init: bool, template: bool) -> None:
    image = c.get("image")
    if not image:
        errs.required(f"{path}.image")
    elif not template and isinstance(image, str) and image != image.strip():
        errs.invalid(f"{path}.image", image, "must not have leading or trailing whitespace")
    policy = c.get("imagePullPolicy")
    if not policy:
        errs.required(f"{path}.imagePullPolicy")
    elif policy not in PULL_POLICIES:
        errs.not_supported(f"{path}.imagePullPolicy", policy, PULL_POLICIES)
    tmp = c.get("terminationMessagePolicy")
    if not tmp:
        errs.required(f"{path}.terminationMessagePolicy", "must be 'File' or 'FallbackToLogsOnError'")
    elif tmp not in ("File", "FallbackToLogsOnError"):
        errs.invalid(f"{path}.terminationMessagePolicy", tmp, "must be 'File' or 'FallbackToLogsOnError'")
    _validate_container_ports(c.get("ports"), f"{path}.ports", errs)
    _validate_env(c.get("env"), f"{path}.env", errs)
    validate_resources(c.get("resources"), f"{path}.resources", errs)
    restart = c.get("restartPolicy")
    if restart is not None:
        if not init:
            errs.forbidden(f"{path}.restartPolicy", "may not be set for non-init containers")
        elif restart != "Always":
            errs.not_supported(f"{path}.restartPolicy", restart, ("Always",))
    sidecar = init and restart == "Always"
    if init and not sidecar:
        for probe in ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe"):
            if c.get(probe) is not None:
                errs.forbidden(f"{path}.{probe}", "may not be set for init containers without "
                               "restartPolicy=Always")
    else:
        _validate_probe(c.get("livenessProbe"), f"{path}.livenessProbe", errs, must_succeed_once=True)
        _validate_probe(c.get("readinessProbe"), f"{path}.readinessProbe", errs, must_succeed_once=False)
        _validate_probe(c.get("startupProbe"), f"{path}.startupProbe", errs, must_succeed_once=True)
    mount_paths: set[str] = set()
    for i, m in enumerate(_list(c.get("volumeMounts"))):
        if not isinstance(m, dict):
            continue
        p = f"{path}.volumeMounts[{i}]"
        name = m.get("name")
        if not name:
            errs.required(f"{p}.name")
        if name not in volumes:
            errs.not_found(f"{p}.name", name or "")
        mp = m.get("mountPath")
        if not mp:
            errs.required(f"{p}.mountPath")
        elif mp in mount_paths:
            errs.invalid(f"{p}.mountPath", mp, "must be unique")
        else:
            mount_paths.add(mp)
        for f in ("subPath", "subPathExpr"):
            sub = m.get(f)
            if not sub:
                continue
            # Kubernetes names these paths without the mount's index.
            if sub.startswith("/"):
                errs.invalid(f"{path}.volumeMounts.{f}", sub, "must be a relative path")
            if ".." in sub.split("/"):
                errs.invalid(f"{path}.volumeMounts.{f}", sub, "must not contain '..'")
        if m.get("subPath") and m.get("subPathExpr"):
            errs.invalid(f"{p}.subPathExpr", m["subPathExpr"], "subPathExpr and subPath are mutually exclusive")


_VOLUME_SOURCES = (
    "hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "secret", "nfs",
    "iscsi", "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder", "cephfs", "flocker",
    "downwardAPI", "fc", "azureFile", "configMap", "vsphereVolume", "quobyte", "azureDisk",
    "photonPersistentDisk", "projected", "portworxVolume", "scaleIO", "storageos", "csi", "ephemeral",
    "image",
)


def _validate_volumes(volumes: Any, path: str, errs: Errors) -> set[str]:
    names: set[str] = set()
    for i, v in enumerate(_list(volumes)):
        if not isinstance(v, dict):
            continue
        p = f"{path}[{i}]"
        name = v.get("name")
        if not name:
            errs.required(f"{p}.name")
        else:
            msgs = dns1123_label_errors(name)
            if msgs:
                errs.each(f"{p}.name", name, msgs)
            elif name in names:
                errs.duplicate(f"{p}.name", name)
            else:
                names.add(name)
        sources = [s for s in _VOLUME_SOURCES if v.get(s) is not None]
        if not sources:
            errs.required(p, "must specify a volume type")
        elif len(sources) > 1:
            errs.forbidden(f"{p}.{sources[1]}", "may not specify more than 1 volume type")
        for key in ("configMap", "secret"):
            src = v.get(key)
            if isinstance(src, dict):
                mode = src.get("defaultMode")
                if _is_int(mode) and not 0 <= mode <= 0o777:
                    errs.invalid(f"{p}.{key}.defaultMode", mode,
                                 "must be a number between 0 and 0777 (octal), both inclusive")
        pvc = v.get("persistentVolumeClaim")
        if isinstance(pvc, dict) and not pvc.get("claimName"):
            errs.required(f"{p}.persistentVolumeClaim.claimName")
        host = v.get("hostPath")
        if isinstance(host, dict) and not host.get("path"):
            errs.required(f"{p}.hostPath.path")
    return names


def _go_toleration(t: dict) -> str:
    seconds = t.get("tolerationSeconds")
    shown = "(*int64)(nil)" if seconds is None else f"&{seconds}"
    return (f"core.Toleration{{Key:{go_quote(str(t.get('key') or ''))}, "
            f"Operator:{go_quote(str(t.get('operator') or ''))}, Value:{go_quote(str(t.get('value') or ''))}, "
            f"Effect:{go_quote(str(t.get('effect') or ''))}, TolerationSeconds:{shown}}}")


def _validate_tolerations(tolerations: Any, path: str, errs: Errors) -> None:
    for i, t in enumerate(_list(tolerations)):
        if not isinstance(t, dict):
            continue
        p = f"{path}[{i}]"
        key, op, effect = t.get("key"), t.get("operator") or "", t.get("effect")
        if key:
            errs.each(f"{p}.key", key, qualified_name_errors(key))
        elif op != "Exists":
            errs.invalid(f"{p}.operator", op, "operator must be Exists when `key` is empty, which means "
                         "\"match all values and all keys\"")
        if t.get("tolerationSeconds") is not None and effect != "NoExecute":
            errs.invalid(f"{p}.effect", effect or "", "effect must be 'NoExecute' when `tolerationSeconds` "
                         "is set")
        if op in ("Equal", ""):
            value = t.get("value") or ""
            msgs = label_value_errors(value) if isinstance(value, str) else []
            if msgs:
                errs.invalid(f"{p}.operator", value, ";".join(msgs))
        elif op == "Exists":
            if t.get("value"):
                errs.invalid(f"{p}.operator", t, "value must be empty when `operator` is 'Exists'",
                             shown=_go_toleration(t))
        else:
            errs.not_supported(f"{p}.operator", op, ("Equal", "Exists"))
        if effect and effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            errs.not_supported(f"{p}.effect", effect, ("NoSchedule", "PreferNoSchedule", "NoExecute"))


def _validate_affinity(affinity: Any, path: str, errs: Errors) -> None:
    if not isinstance(affinity, dict):
        return
    for kind in ("podAffinity", "podAntiAffinity"):
        a = affinity.get(kind)
        if not isinstance(a, dict):
            continue
        p = f"{path}.{kind}"
        for i, term in enumerate(_list(a.get("requiredDuringSchedulingIgnoredDuringExecution"))):
            tp = f"{p}.requiredDuringSchedulingIgnoredDuringExecution[{i}]"
            _validate_affinity_term(term, tp, errs)
        for i, w in enumerate(_list(a.get("preferredDuringSchedulingIgnoredDuringExecution"))):
            wp = f"{p}.preferredDuringSchedulingIgnoredDuringExecution[{i}]"
            if isinstance(w, dict):
                weight = w.get("weight")
                if _is_int(weight) and not 1 <= weight <= 100:
                    errs.invalid(f"{wp}.weight", weight, _range_error(1, 100))
                _validate_affinity_term(w.get("podAffinityTerm"), f"{wp}.podAffinityTerm", errs)


def _validate_affinity_term(term: Any, path: str, errs: Errors) -> None:
    if not isinstance(term, dict):
        return
    validate_label_selector(term.get("labelSelector"), f"{path}.labelSelector", errs)
    validate_label_selector(term.get("namespaceSelector"), f"{path}.namespaceSelector", errs)
    if not term.get("topologyKey"):
        errs.required(f"{path}.topologyKey", "can not be empty")
    else:
        errs.each(f"{path}.topologyKey", term["topologyKey"], qualified_name_errors(term["topologyKey"]))


def _check_host_ports(c: dict, path: str, used: set[str], errs: Errors) -> None:
    for j, port in enumerate(_list(c.get("ports"))):
        if not isinstance(port, dict) or not port.get("hostPort"):
            continue
        key = f"{port.get('protocol') or ''}/{port.get('hostIP') or ''}/{port['hostPort']}"
        if key in used:
            errs.duplicate(f"{path}.ports[{j}].hostPort", key)
        used.add(key)


def validate_pod_spec(spec: Any, path: str, errs: Errors, *, template: bool = False) -> None:
    """A pod's or pod template's spec (``path`` is ``spec`` or ``spec.template.spec``)."""
    if not isinstance(spec, dict):
        errs.required(path)
        return
    volumes = _validate_volumes(spec.get("volumes"), f"{path}.volumes", errs)
    containers = _list(spec.get("containers"))
    if not containers:
        errs.required(f"{path}.containers")
    # Regular containers first: an init container reusing one of their names is the duplicate.
    seen: set[str] = set()
    for key, init in (("containers", False), ("initContainers", True)):
        host_ports: set[str] = set()
        for i, c in enumerate(_list(spec.get(key))):
            if not isinstance(c, dict):
                continue
            p = f"{path}.{key}[{i}]"
            name = c.get("name")
            if not name:
                errs.required(f"{p}.name")
            else:
                errs.each(f"{p}.name", name, dns1123_label_errors(name))
                if isinstance(name, str):
                    if name in seen:
                        errs.duplicate(f"{p}.name", name)
                    seen.add(name)
            _validate_container(c, p, volumes, errs, init=init, template=template)
            if init:  # init containers run one at a time: conflicts only within one
                host_ports = set()
            _check_host_ports(c, p, host_ports, errs)
    restart = spec.get("restartPolicy")
    if not restart:
        errs.required(f"{path}.restartPolicy")
    elif restart not in RESTART_POLICIES:
        errs.not_supported(f"{path}.restartPolicy", restart, RESTART_POLICIES)
    dns = spec.get("dnsPolicy")
    if not dns:
        errs.required(f"{path}.dnsPolicy")
    elif dns not in DNS_POLICIES:
        errs.not_supported(f"{path}.dnsPolicy", dns, DNS_POLICIES)
    elif dns == "None" and not spec.get("dnsConfig"):
        errs.required(f"{path}.dnsConfig", "must provide `dnsConfig` when `dnsPolicy` is None")
    validate_labels(spec.get("nodeSelector"), f"{path}.nodeSelector", errs)
    sa = spec.get("serviceAccountName")
    if sa:
        errs.each(f"{path}.serviceAccountName", sa, dns1123_subdomain_errors(sa))
    node = spec.get("nodeName")
    if node:
        errs.each(f"{path}.nodeName", node, dns1123_subdomain_errors(node))
    for f in ("hostname", "subdomain"):
        v = spec.get(f)
        if v:
            errs.each(f"{path}.{f}", v, dns1123_label_errors(v))
    ads = spec.get("activeDeadlineSeconds")
    if _is_int(ads) and not 1 <= ads <= MAX_INT32:
        errs.invalid(f"{path}.activeDeadlineSeconds", ads, _range_error(1, MAX_INT32))
    _validate_tolerations(spec.get("tolerations"), f"{path}.tolerations", errs)
    _validate_affinity(spec.get("affinity"), f"{path}.affinity", errs)
    for i, tsc in enumerate(_list(spec.get("topologySpreadConstraints"))):
        if not isinstance(tsc, dict):
            continue
        p = f"{path}.topologySpreadConstraints[{i}]"
        skew = tsc.get("maxSkew")
        if _is_int(skew) and skew <= 0:
            errs.invalid(f"{p}.maxSkew", skew, "must be greater than zero")
        if not tsc.get("topologyKey"):
            errs.required(f"{p}.topologyKey", "can not be empty")
        wus = tsc.get("whenUnsatisfiable")
        if wus not in ("DoNotSchedule", "ScheduleAnyway"):
            errs.not_supported(f"{p}.whenUnsatisfiable", wus, ("DoNotSchedule", "ScheduleAnyway"))
        validate_label_selector(tsc.get("labelSelector"), f"{p}.labelSelector", errs)
    gates = [g.get("name") or "" for g in _list(spec.get("schedulingGates")) if isinstance(g, dict)]
    for i, g in enumerate(gates):
        errs.each(f"{path}.schedulingGates[{i}]", g, qualified_name_errors(g))
        if g in gates[:i]:
            errs.duplicate(f"{path}.schedulingGates[{i}]", g)
    if spec.get("hostNetwork"):
        # Pods must repeat the container port as host port; templates may leave it for defaulting.
        for i, c in enumerate(containers):
            for j, port in enumerate((_list(c.get("ports"))) if isinstance(c, dict) else ()):
                if not isinstance(port, dict):
                    continue
                hp, cp = port.get("hostPort") or 0, port.get("containerPort")
                if (not template or hp) and hp != cp:
                    errs.invalid(f"{path}.containers[{i}].ports[{j}].hostPort", hp,
                                 "must match `containerPort` when `hostNetwork` is true")
    pcn = spec.get("priorityClassName")
    if pcn:
        errs.each(f"{path}.priorityClassName", pcn, dns1123_subdomain_errors(pcn))
    pp = spec.get("preemptionPolicy")
    if pp is not None and pp not in ("PreemptLowerPriority", "Never"):
        errs.not_supported(f"{path}.preemptionPolicy", pp, ("PreemptLowerPriority", "Never"))
    for i, alias in enumerate(_list(spec.get("hostAliases"))):
        if not isinstance(alias, dict):
            continue
        if not _is_ip(alias.get("ip")):
            errs.invalid(f"{path}.hostAliases[{i}].ip", alias.get("ip"), _IP_MESSAGE)
        for j, host in enumerate(_list(alias.get("hostnames"))):
            errs.each(f"{path}.hostAliases[{i}].hostnames[{j}]", host, dns1123_subdomain_errors(host))


def _validate_pod_template(template: Any, path: str, errs: Errors) -> None:
    if not isinstance(template, dict):
        errs.required(path)
        return
    md = _dict(template.get("metadata"))
    # Kubernetes names a template's labels and annotations without "metadata".
    validate_labels(md.get("labels"), f"{path}.labels", errs)
    validate_annotations(md.get("annotations"), f"{path}.annotations", errs)
    validate_pod_spec(template.get("spec"), f"{path}.spec", errs, template=True)


def _validate_pod(obj: dict, errs: Errors) -> None:
    validate_pod_spec(obj.get("spec"), "spec", errs)


_POD_UPDATE_MESSAGE = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions "
    "to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was "
    "previously negative)"
)


def _diff(old: Any, new: Any, path: str, out: list[str]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for k in sorted(set(old) | set(new)):
            _diff(old.get(k), new.get(k), f"{path}.{k}", out)
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            _diff(a, b, f"{path}[{i}]", out)
    elif old != new:
        out.append(f"- {path}: {orjson.dumps(old).decode()}\n+ {path}: {orjson.dumps(new).decode()}")


def _with_image_of(c: Any, old: Any) -> Any:
    """Container ``c`` with ``old``'s image (the one field a pod update may change)."""
    if not isinstance(c, dict) or not isinstance(old, dict):
        return c
    c = {k: v for k, v in c.items() if k != "image"}
    if "image" in old:
        c["image"] = old["image"]
    return c


def _validate_pod_update(new: dict, old: dict, errs: Errors) -> None:
    nspec, ospec = _dict(new.get("spec")), _dict(old.get("spec"))
    for key in ("containers", "initContainers"):
        if len(_list(nspec.get(key))) != len(_list(ospec.get(key))):
            errs.forbidden(f"spec.{key}", "pod updates may not add or remove containers")
            return
    nads, oads = nspec.get("activeDeadlineSeconds"), ospec.get("activeDeadlineSeconds")
    if nads is not None:
        if _is_int(nads) and not 0 <= nads <= MAX_INT32:
            errs.invalid("spec.activeDeadlineSeconds", nads, _range_error(0, MAX_INT32))
            return
        if oads is not None and _is_int(nads) and oads < nads:
            errs.invalid("spec.activeDeadlineSeconds", nads, "must be less than or equal to previous value")
            return
    elif oads is not None:
        errs.invalid("spec.activeDeadlineSeconds", None, "must not update from a positive integer to nil "
                     "value")
    new_tols = [t for t in _list(nspec.get("tolerations")) if isinstance(t, dict)]
    for t in _list(ospec.get("tolerations")):
        if not isinstance(t, dict):
            continue
        base = {k: v for k, v in t.items() if k != "tolerationSeconds"}
        if not any({k: v for k, v in n.items() if k != "tolerationSeconds"} == base for n in new_tols):
            errs.forbidden("spec.tolerations", "existing toleration can not be modified except its "
                           "tolerationSeconds")
            break
    old_gates = {g.get("name") for g in _list(ospec.get("schedulingGates")) if isinstance(g, dict)}
    for g in _list(nspec.get("schedulingGates")):
        if isinstance(g, dict) and g.get("name") not in old_gates:
            errs.forbidden("spec.schedulingGates", "only deletion is allowed, but found new scheduling gate "
                           f"'{g.get('name')}'")
    if nspec == ospec:
        return
    munged = dict(nspec)
    for key in ("containers", "initContainers"):
        if key in munged:
            munged[key] = [_with_image_of(c, o) for c, o in zip(_list(munged[key]), _list(ospec.get(key)),
                                                                 strict=False)]
    for key in ("activeDeadlineSeconds", "schedulingGates", "tolerations"):
        munged.pop(key, None)
        if key in ospec:
            munged[key] = ospec[key]
    ogp, ngp = ospec.get("terminationGracePeriodSeconds"), munged.get("terminationGracePeriodSeconds")
    if _is_int(ogp) and ogp < 0 and ngp == 1:
        munged["terminationGracePeriodSeconds"] = ogp
    if old_gates:
        # A gated pod may gain node selector entries (not lose or change them).
        nsel, osel = _dict(munged.get("nodeSelector")), _dict(ospec.get("nodeSelector"))
        if all(nsel.get(k) == v for k, v in osel.items()):
            munged.pop("nodeSelector", None)
            if "nodeSelector" in ospec:
                munged["nodeSelector"] = ospec["nodeSelector"]
    if munged != ospec:
        lines: list[str] = []
        _diff(ospec, munged, "spec", lines)
        errs.forbidden("spec", _POD_UPDATE_MESSAGE + "\n" + "\n".join(lines))


# ---------------------------------------------------------------------------------------------
# Workloads


def _int_or_percent(v: Any, path: str, errs: Errors) -> int:
    """The number in an int-or-percent field (a percent's digits), reporting malformed values."""
    if _is_int(v):
        errs.nonnegative(path, v)
        return v
    if isinstance(v, str):
        if not _PERCENT_RE.match(v):
            errs.invalid(path, v, "a valid percent string must be a numeric string followed by an ending "
                         "'%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')")
            return int(v) if v.isdigit() else 0
        return int(v[:-1])
    return 0


def _over_100_percent(v: Any, path: str, errs: Errors) -> None:
    if isinstance(v, str) and _PERCENT_RE.match(v) and int(v[:-1]) > 100:
        errs.invalid(path, v, "must not be greater than 100%")


def _go_strategy(struct: str, rolling_struct: str, strategy: dict) -> str:
    """A workload strategy as Go prints the internal struct in an error."""
    ru = strategy.get("rollingUpdate")
    inner = f"(*apps.{rolling_struct})(nil)" if ru is None else f"&apps.{rolling_struct}{{...}}"
    return f"apps.{struct}{{Type:{go_quote(str(strategy.get('type') or ''))}, RollingUpdate:{inner}}}"


def _validate_selector_and_template(spec: dict, errs: Errors, kind_word: str, *,
                                    deadline_forbidden: str, full_template: bool = True) -> None:
    """Selector present, valid, non-empty and matching the template's labels; the pod template
    valid (StatefulSets: only its labels and annotations, as Kubernetes checks them); restart
    policy Always; no activeDeadlineSeconds."""
    sel = spec.get("selector")
    if sel is None:
        errs.required("spec.selector")
    else:
        validate_label_selector(sel, "spec.selector", errs)
        if isinstance(sel, dict) and _selector_is_empty(sel):
            errs.invalid("spec.selector", sel, f"empty selector is invalid for {kind_word}",
                         shown=_fmt_selector(sel))
    template = spec.get("template")
    if not isinstance(template, dict):
        errs.required("spec.template")
        return
    md = _dict(template.get("metadata"))
    labels = _dict(md.get("labels"))
    if isinstance(sel, dict) and not _selector_is_empty(sel) and not _selector_matches(sel, labels):
        errs.invalid("spec.template.metadata.labels", labels, "`selector` does not match template `labels`")
    if full_template:
        _validate_pod_template(template, "spec.template", errs)
    else:
        validate_labels(md.get("labels"), "spec.template.labels", errs)
        validate_annotations(md.get("annotations"), "spec.template.annotations", errs)
    pod_spec = _dict(template.get("spec"))
    policy = pod_spec.get("restartPolicy")
    if policy != "Always" and (policy or not full_template):
        errs.not_supported("spec.template.spec.restartPolicy", policy or "", ("Always",))
    if pod_spec.get("activeDeadlineSeconds") is not None:
        errs.forbidden("spec.template.spec.activeDeadlineSeconds", deadline_forbidden)


def _validate_deployment(obj: dict, errs: Errors) -> None:
    spec = _dict(obj.get("spec"))
    errs.nonnegative("spec.replicas", spec.get("replicas"))
    _validate_selector_and_template(spec, errs, "deployment",
                                    deadline_forbidden="activeDeadlineSeconds in ReplicaSet is not Supported")
    strategy = _dict(spec.get("strategy"))
    stype = strategy.get("type")
    ru = strategy.get("rollingUpdate")
    if stype == "Recreate":
        if ru is not None:
            errs.forbidden("spec.strategy.rollingUpdate",
                           "may not be specified when strategy `type` is 'Recreate'")
    elif stype == "RollingUpdate":
        if not isinstance(ru, dict):
            errs.required("spec.strategy.rollingUpdate", "this should be defaulted and never be nil")
        else:
            p = "spec.strategy.rollingUpdate"
            unavailable = _int_or_percent(ru.get("maxUnavailable"), f"{p}.maxUnavailable", errs)
            surge = _int_or_percent(ru.get("maxSurge"), f"{p}.maxSurge", errs)
            if unavailable == 0 and surge == 0:
                errs.invalid(f"{p}.maxUnavailable", ru.get("maxUnavailable"), "may not be 0 when `maxSurge` is 0")
            _over_100_percent(ru.get("maxUnavailable"), f"{p}.maxUnavailable", errs)
    else:
        shown = _go_strategy("DeploymentStrategy", "RollingUpdateDeployment", strategy)
        errs.append(Cause(NOT_SUPPORTED, f'Unsupported value: {shown}: supported values: "Recreate", '
                          '"RollingUpdate"', "spec.strategy"))
    for f in ("minReadySeconds", "revisionHistoryLimit", "progressDeadlineSeconds"):
        errs.nonnegative(f"spec.{f}", spec.get(f))
    pds, mrs = spec.get("progressDeadlineSeconds"), spec.get("minReadySeconds") or 0
    if _is_int(pds) and _is_int(mrs) and pds <= mrs:
        errs.invalid("spec.progressDeadlineSeconds", pds, "must be greater than minReadySeconds")


def _validate_replicaset(obj: dict, errs: Errors) -> None:
    spec = _dict(obj.get("spec"))
    errs.nonnegative("spec.replicas", spec.get("replicas"))
    errs.nonnegative("spec.minReadySeconds", spec.get("minReadySeconds"))
    # Kubernetes reuses the Deployment wording for ReplicaSets' empty selector.
    _validate_selector_and_template(spec, errs, "deployment",
                                    deadline_forbidden="activeDeadlineSeconds in ReplicaSet is not Supported")


def _validate_daemonset(obj: dict, errs: Errors) -> None:
    spec = _dict(obj.get("spec"))
    _validate_selector_and_template(spec, errs, "daemonset",
                                    deadline_forbidden="activeDeadlineSeconds in DaemonSet is not Supported")
    errs.nonnegative("spec.minReadySeconds", spec.get("minReadySeconds"))
    strategy = _dict(spec.get("updateStrategy"))
    stype = strategy.get("type")
    ru = strategy.get("rollingUpdate")
    if stype == "RollingUpdate":
        if not isinstance(ru, dict):
            errs.required("spec.updateStrategy.rollingUpdate")
        else:
            p = "spec.updateStrategy.rollingUpdate"
            unavailable = _int_or_percent(ru.get("maxUnavailable"), f"{p}.maxUnavailable", errs)
            surge = _int_or_percent(ru.get("maxSurge"), f"{p}.maxSurge", errs)
            _over_100_percent(ru.get("maxUnavailable"), f"{p}.maxUnavailable", errs)
            _over_100_percent(ru.get("maxSurge"), f"{p}.maxSurge", errs)
            if unavailable and surge:
                errs.invalid(f"{p}.maxSurge", ru.get("maxSurge"), "may not be set when maxUnavailable is non-zero")
            elif not unavailable and not surge:
                errs.required(f"{p}.maxUnavailable", "cannot be 0 when maxSurge is 0")
    elif stype != "OnDelete":
        shown = _go_strategy("DaemonSetUpdateStrategy", "RollingUpdateDaemonSet", strategy)
        errs.append(Cause(NOT_SUPPORTED, f'Unsupported value: {shown}: supported values: "RollingUpdate", '
                          '"OnDelete"', "spec.updateStrategy"))
    errs.nonnegative("spec.revisionHistoryLimit", spec.get("revisionHistoryLimit"))


def _validate_statefulset(obj: dict, errs: Errors) -> None:
    spec = _dict(obj.get("spec"))
    pmp = spec.get("podManagementPolicy")
    if not pmp:
        errs.required("spec.podManagementPolicy")
    elif pmp not in ("OrderedReady", "Parallel"):
        errs.invalid("spec.podManagementPolicy", pmp, "must be 'OrderedReady' or 'Parallel'")
    strategy = _dict(spec.get("updateStrategy"))
    stype = strategy.get("type")
    ru = strategy.get("rollingUpdate")
    if not stype:
        errs.required("spec.updateStrategy")
    elif stype == "RollingUpdate":
        if isinstance(ru, dict):
            errs.nonnegative("spec.updateStrategy.rollingUpdate.partition", ru.get("partition"))
    elif stype == "OnDelete":
        if ru is not None:
            errs.invalid("spec.updateStrategy.rollingUpdate", ru, "only allowed for updateStrategy 'RollingUpdate'")
    else:
        errs.invalid("spec.updateStrategy", strategy, "must be 'RollingUpdate' or 'OnDelete'",
                     shown=_go_strategy("StatefulSetUpdateStrategy", "RollingUpdateStatefulSetStrategy", strategy))
    policy = _dict(spec.get("persistentVolumeClaimRetentionPolicy"))
    for f in ("whenDeleted", "whenScaled"):
        if policy.get(f) not in (None, "Retain", "Delete"):
            errs.not_supported(f"spec.persistentVolumeClaimRetentionPolicy.{f}", policy[f], ("Retain", "Delete"))
    errs.nonnegative("spec.replicas", spec.get("replicas"))
    errs.nonnegative("spec.minReadySeconds", spec.get("minReadySeconds"))
    errs.nonnegative("spec.ordinals.start", (_dict(spec.get("ordinals"))).get("start"))
    service = spec.get("serviceName")
    if service:
        errs.each("spec.serviceName", service, dns1123_label_errors(service))
    _validate_selector_and_template(spec, errs, "statefulset", full_template=False,
                                    deadline_forbidden="activeDeadlineSeconds in StatefulSet is not Supported")


def _validate_job_spec(spec: dict, prefix: str, errs: Errors, *, selector_required: bool) -> None:
    for f in ("parallelism", "completions", "backoffLimit"):
        errs.nonnegative(f"{prefix}.{f}", spec.get(f))
    errs.nonnegative(f"{prefix}.activeDeadlineSeconds", spec.get("activeDeadlineSeconds"))
    ttl = spec.get("ttlSecondsAfterFinished")
    errs.nonnegative(f"{prefix}.ttlSecondsAfterFinished", ttl)
    mode = spec.get("completionMode")
    if mode not in (None, "NonIndexed", "Indexed"):
        errs.not_supported(f"{prefix}.completionMode", mode, ("NonIndexed", "Indexed"))
    if mode == "Indexed" and spec.get("completions") is None:
        errs.required(f"{prefix}.completions", "when completion mode is Indexed")
    prp = spec.get("podReplacementPolicy")
    if prp not in (None, "TerminatingOrFailed", "Failed"):
        errs.not_supported(f"{prefix}.podReplacementPolicy", prp, ("Failed", "TerminatingOrFailed"))
    sel = spec.get("selector")
    template = spec.get("template")
    if sel is None:
        if selector_required:
            errs.required(f"{prefix}.selector")
    else:
        validate_label_selector(sel, f"{prefix}.selector", errs)
        labels = _dict(_dict(_dict(template).get("metadata")).get("labels"))
        if isinstance(sel, dict) and not _selector_matches(sel, labels):
            errs.invalid(f"{prefix}.template.metadata.labels", labels,
                         "`selector` does not match template `labels`")
    if not isinstance(template, dict):
        errs.required(f"{prefix}.template")
        return
    _validate_pod_template(template, f"{prefix}.template", errs)
    policy = (_dict(template.get("spec"))).get("restartPolicy")
    if policy not in ("OnFailure", "Never"):
        errs.not_supported(f"{prefix}.template.spec.restartPolicy", policy, ("OnFailure", "Never"))


_CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"


def _validate_job(obj: dict, errs: Errors) -> None:
    spec = _dict(obj.get("spec"))
    _validate_job_spec(spec, "spec", errs, selector_required=True)
    md = _dict(obj.get("metadata"))
    uid, name = md.get("uid"), md.get("name") or ""
    sel = spec.get("selector")
    if not spec.get("manualSelector") and uid and isinstance(sel, dict):
        # Without manualSelector the selector must select exactly what the server generates.
        expected = {"controller-uid": uid, _CONTROLLER_UID_LABEL: uid, "job-name": name,
                    "batch.kubernetes.io/job-name": name}
        if not _selector_matches(sel, expected):
            errs.invalid("spec.selector", sel, "`selector` not auto-generated", shown=_fmt_selector(sel))


_CRON_FIELDS = (("minute", 0, 59, None), ("hour", 0, 23, None), ("day of month", 1, 31, None),
                ("month", 1, 12, ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT",
                                  "NOV", "DEC")),
                ("day of week", 0, 6, ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")))
_CRON_DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_DURATION_RE = re.compile(r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$")


def cron_schedule_error(schedule: str) -> str | None:
    """Why a CronJob schedule does not parse (standard 5-field syntax or a descriptor), or None."""
    s = schedule.strip()
    if not s:
        return "empty spec string"
    if s.startswith("@"):
        if s in _CRON_DESCRIPTORS:
            return None
        if s.startswith("@every "):
            return None if _DURATION_RE.match(s[7:].strip()) else f"failed to parse duration {s}"
        return f"unrecognized descriptor: {s}"
    fields = s.split()
    if len(fields) != 5:
        return f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]"
    for text, (_, lo, hi, names) in zip(fields, _CRON_FIELDS, strict=True):
        for part in text.split(","):
            err = _cron_range_error(part, lo, hi, names)
            if err:
                return err
    return None


def _cron_number(text: str, names: tuple[str, ...] | None, lo: int) -> int:
    if names and text.upper() in names:
        return names.index(text.upper()) + lo
    if not text.isdigit():
        raise ValueError(f"failed to parse int from {text}: strconv.Atoi: parsing {go_quote(text)}: "
                         "invalid syntax")
    return int(text)


def _cron_range_error(expr: str, lo: int, hi: int, names: tuple[str, ...] | None) -> str | None:
    range_and_step = expr.split("/")
    if len(range_and_step) > 2:
        return f"too many slashes: {expr}"
    low_and_high = range_and_step[0].split("-")
    if len(low_and_high) > 2:
        return f"too many hyphens: {expr}"
    try:
        if low_and_high[0] in ("*", "?"):
            start, end = lo, hi
        else:
            start = _cron_number(low_and_high[0], names, lo)
            end = _cron_number(low_and_high[1], names, lo) if len(low_and_high) == 2 else start
        if len(range_and_step) == 2:
            step = _cron_number(range_and_step[1], None, 0)
            if step <= 0:
                return f"step of range should be a positive number: {expr}"
    except ValueError as e:
        return str(e)
    if start < lo:
        return f"beginning of range ({start}) below minimum ({lo}): {expr}"
    if end > hi:
        return f"end of range ({end}) above maximum ({hi}): {expr}"
    if start > end:
        return f"beginning of range ({start}) beyond end of range ({end}): {expr}"
    return None


def _validate_cronjob(obj: dict, errs: Errors) -> None:
    name = _str(_dict(obj.get("metadata")).get("name"))
    if len(name) > 52:
        errs.invalid("metadata.name", name, "must be no more than 52 characters")
    spec = _dict(obj.get("spec"))
    schedule = spec.get("schedule")
    if not schedule:
        errs.required("spec.schedule")
    elif not isinstance(schedule, str):
        pass  # the schema reports the type
    elif "TZ" in schedule:
        errs.invalid("spec.schedule", schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field "
                     "instead")
    else:
        err = cron_schedule_error(schedule)
        if err:
            errs.invalid("spec.schedule", schedule, err)
    tz = spec.get("timeZone")
    if tz is not None and (not tz or tz.strip() != tz or " " in tz):
        errs.invalid("spec.timeZone", tz, "unknown time zone " + tz)
    policy = spec.get("concurrencyPolicy")
    if not policy:
        errs.required("spec.concurrencyPolicy")
    elif policy not in ("Allow", "Forbid", "Replace"):
        errs.not_supported("spec.concurrencyPolicy", policy, ("Allow", "Forbid", "Replace"))
    for f in ("startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        errs.nonnegative(f"spec.{f}", spec.get(f))
    job_template = spec.get("jobTemplate")
    if not isinstance(job_template, dict):
        errs.required("spec.jobTemplate")
        return
    jmd = _dict(job_template.get("metadata"))
    validate_labels(jmd.get("labels"), "spec.jobTemplate.metadata.labels", errs)
    validate_annotations(jmd.get("annotations"), "spec.jobTemplate.metadata.annotations", errs)
    jspec = _dict(job_template.get("spec"))
    _validate_job_spec(jspec, "spec.jobTemplate.spec", errs, selector_required=False)
    if jspec.get("selector") is not None:
        errs.invalid("spec.jobTemplate.spec.selector", jspec["selector"], "`selector` will be auto-generated",
                     shown=_fmt_selector(jspec["selector"]))
    if jspec.get("manualSelector"):
        errs.not_supported("spec.jobTemplate.spec.manualSelector", True, ("nil", "false"))


# ---------------------------------------------------------------------------------------------
# Services and other core kinds

SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
_IP_MESSAGE = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"


def _is_ip(v: Any) -> bool:
    try:
        ipaddress.ip_address(v)
    except ValueError:
        return False
    return True


def _validate_service(obj: dict, errs: Errors) -> None:
    spec = _dict(obj.get("spec"))
    stype = spec.get("type")
    if stype not in SERVICE_TYPES:
        errs.not_supported("spec.type", stype, SERVICE_TYPES)
    headless = spec.get("clusterIP") == "None"
    ports = _list(spec.get("ports"))
    if not ports and not headless and stype != "ExternalName":
        errs.required("spec.ports")
    if stype == "ExternalName":
        ext = spec.get("externalName")
        if not ext:
            errs.required("spec.externalName")
        else:
            errs.each("spec.externalName", ext, dns1123_subdomain_errors(ext.rstrip(".")))
        if spec.get("clusterIPs") or spec.get("clusterIP"):
            errs.forbidden("spec.clusterIPs", "may not be set for ExternalName services")
        for f in ("ipFamilies", "ipFamilyPolicy"):
            if spec.get(f):
                errs.forbidden(f"spec.{f}", "may not be set for ExternalName services")
    else:
        for i, ip in enumerate(spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])):
            if ip not in ("", "None") and not _is_ip(ip):
                errs.invalid(f"spec.clusterIPs[{i}]", ip, _IP_MESSAGE)
        if headless and stype in ("NodePort", "LoadBalancer"):
            errs.invalid("spec.clusterIPs[0]", "None", f"may not be set to 'None' for {stype} services")
    names: set[str] = set()
    keys: set[tuple[Any, Any]] = set()
    node_ports: set[tuple[Any, Any]] = set()
    for i, port in enumerate(ports):
        if not isinstance(port, dict):
            continue
        p = f"spec.ports[{i}]"
        name = port.get("name")
        if len(ports) > 1 and not name:
            errs.required(f"{p}.name")
        elif name:
            errs.each(f"{p}.name", name, dns1123_label_errors(name))
            if name in names:
                errs.duplicate(f"{p}.name", name)
            names.add(name)
        number = port.get("port")
        if not _is_int(number) or not 1 <= number <= 65535:
            errs.invalid(f"{p}.port", number, _range_error(1, 65535))
        proto = port.get("protocol")
        if not proto:
            errs.required(f"{p}.protocol")
        elif proto not in PROTOCOLS:
            errs.not_supported(f"{p}.protocol", proto, PROTOCOLS)
        if stype == "LoadBalancer" and number == 10250:
            errs.invalid(p, number, "may not expose port 10250 externally since it is used by kubelet")
        key = (str(number), str(proto))
        if key in keys:
            errs.append(Cause(DUPLICATE, f"Duplicate value: core.ServicePort{{Name:\"\", Protocol:{go_quote(str(proto))}, "
                              f"AppProtocol:(*string)(nil), Port:{number}, TargetPort:intstr.IntOrString{{Type:0, "
                              'IntVal:0, StrVal:""}, NodePort:0}', p))
        keys.add(key)
        if stype != "ExternalName":
            _validate_port_num_or_name(port.get("targetPort"), f"{p}.targetPort", errs)
        node_port = port.get("nodePort")
        if node_port:
            if stype == "ClusterIP":
                errs.forbidden(f"{p}.nodePort", "may not be used when `type` is 'ClusterIP'")
            elif _is_int(node_port) and not 1 <= node_port <= 65535:
                errs.invalid(f"{p}.nodePort", node_port, _range_error(1, 65535))
            if (node_port, proto) in node_ports:
                errs.duplicate(f"{p}.nodePort", node_port)
            node_ports.add((node_port, proto))
    affinity = spec.get("sessionAffinity")
    if not affinity:
        errs.required("spec.sessionAffinity")
    elif affinity not in ("ClientIP", "None"):
        errs.not_supported("spec.sessionAffinity", affinity, ("ClientIP", "None"))
    elif affinity == "ClientIP":
        timeout = _dict(_dict(spec.get("sessionAffinityConfig")).get("clientIP")).get("timeoutSeconds")
        if _is_int(timeout) and not 0 < timeout <= 86400:
            errs.invalid("spec.sessionAffinityConfig.clientIP.timeoutSeconds", timeout,
                         "must be greater than 0 and less than 86400")
    elif spec.get("sessionAffinityConfig") is not None:
        errs.forbidden("spec.sessionAffinityConfig", "must not be set when session affinity is None")
    if stype != "ExternalName":
        validate_labels(spec.get("selector"), "spec.selector", errs)
    externally = stype in ("NodePort", "LoadBalancer") or (stype == "ClusterIP" and spec.get("externalIPs"))
    if spec.get("externalTrafficPolicy") and not externally:
        errs.invalid("spec.externalTrafficPolicy", spec["externalTrafficPolicy"],
                     "may only be set for externally-accessible services")
    for i, ip in enumerate(_list(spec.get("externalIPs"))):
        if not _is_ip(ip):
            errs.invalid(f"spec.externalIPs[{i}]", ip, _IP_MESSAGE)
    for f, valid in (("externalTrafficPolicy", ("Cluster", "Local")),
                     ("internalTrafficPolicy", ("Cluster", "Local")),
                     ("ipFamilyPolicy", ("SingleStack", "PreferDualStack", "RequireDualStack"))):
        v = spec.get(f)
        if v is not None and v not in valid:
            errs.not_supported(f"spec.{f}", v, valid)
    for i, fam in enumerate(_list(spec.get("ipFamilies"))):
        if fam not in ("IPv4", "IPv6"):
            errs.not_supported(f"spec.ipFamilies[{i}]", fam, ("IPv4", "IPv6"))


def _validate_service_update(new: dict, old: dict, errs: Errors) -> None:
    nspec, ospec = _dict(new.get("spec")), _dict(old.get("spec"))
    if "ExternalName" in (nspec.get("type"), ospec.get("type")):
        return
    old_ips = ospec.get("clusterIPs") or ([ospec["clusterIP"]] if ospec.get("clusterIP") else [])
    new_ips = nspec.get("clusterIPs") or ([nspec["clusterIP"]] if nspec.get("clusterIP") else [])
    if old_ips and new_ips and old_ips[0] != new_ips[0]:
        errs.invalid("spec.clusterIPs[0]", new_ips, "may not change once set")
    elif old_ips and nspec.get("clusterIP") and nspec["clusterIP"] != old_ips[0]:
        errs.invalid("spec.clusterIP", nspec["clusterIP"], "may not change once set")


def _validate_data_keys(obj: dict, errs: Errors, *, binary_key: str, limit_path: str) -> None:
    data = _dict(obj.get("data"))
    other = _dict(obj.get(binary_key))
    total = 0
    # Secret data and ConfigMap binaryData are base64: count the bytes they stand for.
    data_b64, other_b64 = binary_key == "stringData", binary_key == "binaryData"
    for key, value in data.items():
        errs.each(_key("data", key), key, config_key_errors(key))
        if key in other and other_b64:
            errs.invalid(_key("data", key), key, f"duplicate of key present in {binary_key}")
        total += _size(value, data_b64)
    for key, value in other.items():
        errs.each(_key(binary_key, key), key, config_key_errors(key))
        if not (key in data and data_b64):  # stringData replaces data's value of the same key
            total += _size(value, other_b64)
    if total > MAX_SECRET_SIZE:
        errs.too_long(limit_path, MAX_SECRET_SIZE)


def _size(value: Any, b64: bool) -> int:
    if not isinstance(value, str):
        return 0
    if b64:
        return len(value) * 3 // 4 - value[-2:].count("=")
    return len(value.encode())


def _validate_configmap(obj: dict, errs: Errors) -> None:
    # Kubernetes reports a ConfigMap's total size on the empty path, printed as "[]".
    _validate_data_keys(obj, errs, binary_key="binaryData", limit_path="[]")


_SECRET_REQUIRED_KEYS = {
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
}


def _validate_secret(obj: dict, errs: Errors) -> None:
    _validate_data_keys(obj, errs, binary_key="stringData", limit_path="data")
    data = _dict(obj.get("data"))
    for key, value in data.items():
        if isinstance(value, str):
            try:
                base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                errs.invalid(_key("data", key), "<secret contents redacted>",
                             "must be base64-encoded", shown='"<secret contents redacted>"')
    stype = _str(obj.get("type")) or "Opaque"
    present = set(data) | set(_dict(obj.get("stringData")))
    for key in _SECRET_REQUIRED_KEYS.get(stype, ()):
        if key not in present:
            errs.required(_key("data", key))
    if stype == "kubernetes.io/basic-auth" and not ({"username", "password"} & present):
        errs.required(_key("data", "username"))
    if stype == "kubernetes.io/service-account-token":
        anns = _dict(_dict(obj.get("metadata")).get("annotations"))
        if not anns.get("kubernetes.io/service-account.name"):
            errs.required(_key("metadata.annotations", "kubernetes.io/service-account.name"))


def _validate_immutable_data(new: dict, old: dict, errs: Errors, binary_key: str) -> None:
    if not old.get("immutable"):
        return
    if not new.get("immutable"):
        errs.forbidden("immutable", "field is immutable when `immutable` is set")
    if (_dict(new.get("data"))) != (_dict(old.get("data"))):
        errs.forbidden("data", "field is immutable when `immutable` is set")
    if _dict(new.get(binary_key)) != _dict(old.get(binary_key)):
        errs.forbidden(binary_key, "field is immutable when `immutable` is set")


def _validate_namespace(obj: dict, errs: Errors) -> None:
    for i, f in enumerate(_list(_dict(obj.get("spec")).get("finalizers"))):
        if isinstance(f, str):
            msgs = qualified_name_errors(f)
            if msgs:
                errs.each(f"spec.finalizers[{i}]", f, msgs)
            elif "/" not in f and f != "kubernetes":
                errs.invalid(f"spec.finalizers[{i}]", f, "name is neither a standard finalizer name nor is it "
                             "fully qualified")


def _validate_node(obj: dict, errs: Errors) -> None:
    spec = _dict(obj.get("spec"))
    seen: set[tuple[Any, Any]] = set()
    for i, taint in enumerate(_list(spec.get("taints"))):
        if not isinstance(taint, dict):
            continue
        p = f"spec.taints[{i}]"
        key = taint.get("key") or ""
        errs.each(f"{p}.key", key, qualified_name_errors(key))
        value = taint.get("value")
        if isinstance(value, str):
            errs.each(f"{p}.value", value, label_value_errors(value))
        effect = taint.get("effect")
        if not effect:
            errs.required(f"{p}.effect")
        elif effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            errs.not_supported(f"{p}.effect", effect, ("NoSchedule", "PreferNoSchedule", "NoExecute"))
        if (key, effect) in seen:
            errs.duplicate(p, f"{key}:{effect}")
        seen.add((key, effect))
    for f in ("capacity", "allocatable"):
        for name, q in _dict(_dict(obj.get("status")).get(f)).items():
            if not quantity.is_valid(q):
                errs.invalid(_key(f"status.{f}", name), q, quantity.FORMAT_MESSAGE)


def _validate_event(obj: dict, errs: Errors) -> None:
    involved = obj.get("involvedObject")
    if not isinstance(involved, dict):
        errs.required("involvedObject")
        return
    ns = (_dict(obj.get("metadata"))).get("namespace")
    ins = involved.get("namespace")
    if ins and ns and ins != ns:
        errs.invalid("involvedObject.namespace", ins, "does not match event.namespace")
    if obj.get("type") not in (None, "", "Normal", "Warning"):
        errs.not_supported("type", obj["type"], ("Normal", "Warning"))
    errs.nonnegative("count", obj.get("count"))


def _validate_lease(obj: dict, errs: Errors) -> None:
    spec = _dict(obj.get("spec"))
    duration = spec.get("leaseDurationSeconds")
    if _is_int(duration) and duration <= 0:
        errs.invalid("spec.leaseDurationSeconds", duration, "must be greater than 0")
    errs.nonnegative("spec.leaseTransitions", spec.get("leaseTransitions"))


def _validate_endpoints(obj: dict, errs: Errors) -> None:
    for i, subset in enumerate(_list(obj.get("subsets"))):
        if not isinstance(subset, dict):
            continue
        p = f"subsets[{i}]"
        for key in ("addresses", "notReadyAddresses"):
            for j, addr in enumerate(_list(subset.get(key))):
                ip = _dict(addr).get("ip")
                if not ip or not _is_ip(ip):
                    errs.invalid(f"{p}.{key}[{j}].ip", ip, _IP_MESSAGE)
        for j, port in enumerate(_list(subset.get("ports"))):
            if not isinstance(port, dict):
                continue
            number = port.get("port")
            if not _is_int(number) or not 1 <= number <= 65535:
                errs.invalid(f"{p}.ports[{j}].port", number, _range_error(1, 65535))
            proto = port.get("protocol")
            if proto not in PROTOCOLS:
                errs.not_supported(f"{p}.ports[{j}].protocol", proto, PROTOCOLS)


def _validate_endpointslice(obj: dict, errs: Errors) -> None:
    family = obj.get("addressType")
    if not family:
        errs.required("addressType")
    elif family not in ("IPv4", "IPv6", "FQDN"):
        errs.not_supported("addressType", family, ("IPv4", "IPv6", "FQDN"))
    for i, ep in enumerate(_list(obj.get("endpoints"))):
        addrs = _list(_dict(ep).get("addresses"))
        if not addrs:
            errs.required(f"endpoints[{i}].addresses", "must contain at least 1 address")
        for j, a in enumerate(addrs):
            if family == "IPv4" and not (_is_ip(a) and ipaddress.ip_address(a).version == 4):
                errs.invalid(f"endpoints[{i}].addresses[{j}]", a, "must be a valid IPv4 address")
            elif family == "IPv6" and not (_is_ip(a) and ipaddress.ip_address(a).version == 6):
                errs.invalid(f"endpoints[{i}].addresses[{j}]", a, "must be a valid IPv6 address")
    for i, port in enumerate(_list(obj.get("ports"))):
        if not isinstance(port, dict):
            continue
        number = port.get("port")
        if number is not None and (not _is_int(number) or not 1 <= number <= 65535):
            errs.invalid(f"ports[{i}].port", number, _range_error(1, 65535))
        proto = port.get("protocol")
        if proto is not None and proto not in PROTOCOLS:
            errs.not_supported(f"ports[{i}].protocol", proto, PROTOCOLS)


def _validate_priorityclass(obj: dict, errs: Errors) -> None:
    name = _str(_dict(obj.get("metadata")).get("name"))
    value = obj.get("value")
    if name.startswith("system-") and name not in ("system-node-critical", "system-cluster-critical"):
        errs.forbidden("metadata.name", "priority class names with 'system-' prefix are reserved for system "
                       "use only")
    elif not name.startswith("system-") and _is_int(value) and value > 1000000000:
        errs.forbidden("value", "maximum allowed value of a user defined priority is 1000000000")
    policy = obj.get("preemptionPolicy")
    if policy not in (None, "PreemptLowerPriority", "Never"):
        errs.not_supported("preemptionPolicy", policy, ("Never", "PreemptLowerPriority"))


_CREATE: dict[str, Callable[[dict, Errors], None]] = {
    "Pod": _validate_pod,
    "Deployment": _validate_deployment,
    "ReplicaSet": _validate_replicaset,
    "DaemonSet": _validate_daemonset,
    "StatefulSet": _validate_statefulset,
    "Job": _validate_job,
    "CronJob": _validate_cronjob,
    "Service": _validate_service,
    "ConfigMap": _validate_configmap,
    "Secret": _validate_secret,
    "Namespace": _validate_namespace,
    "Node": _validate_node,
    "Event": _validate_event,
    "Lease": _validate_lease,
    "Endpoints": _validate_endpoints,
    "EndpointSlice": _validate_endpointslice,
    "PriorityClass": _validate_priorityclass,
}


def _selector_immutable(new: dict, old: dict, errs: Errors, path: str = "spec.selector") -> None:
    n = (_dict(new.get("spec"))).get("selector")
    o = (_dict(old.get("spec"))).get("selector")
    if n != o:
        errs.invalid(path, n, IMMUTABLE, shown=_fmt_selector(n))


_STATEFULSET_MUTABLE = ("replicas", "ordinals", "template", "updateStrategy",
                        "persistentVolumeClaimRetentionPolicy", "minReadySeconds")


def _update_statefulset(new: dict, old: dict, errs: Errors) -> None:
    nspec, ospec = _dict(new.get("spec")), _dict(old.get("spec"))
    rest_new = {k: v for k, v in nspec.items() if k not in _STATEFULSET_MUTABLE}
    rest_old = {k: v for k, v in ospec.items() if k not in _STATEFULSET_MUTABLE}
    if rest_new != rest_old:
        errs.forbidden("spec", "updates to statefulset spec for fields other than 'replicas', 'ordinals', "
                       "'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and "
                       "'minReadySeconds' are forbidden")


def _update_job(new: dict, old: dict, errs: Errors) -> None:
    nspec, ospec = _dict(new.get("spec")), _dict(old.get("spec"))
    _selector_immutable(new, old, errs)
    ntemplate, otemplate = nspec.get("template"), ospec.get("template")
    if ospec.get("suspend") and not (_dict(old.get("status"))).get("startTime"):
        # A suspended Job that never started may still have its pods' scheduling directives,
        # labels and annotations changed (for queueing controllers).
        ntemplate, otemplate = _without_scheduling(ntemplate), _without_scheduling(otemplate)
    if ntemplate != otemplate:
        errs.invalid("spec.template", None, IMMUTABLE, shown="core.PodTemplateSpec{...}")
    for f in ("completionMode", "podFailurePolicy", "backoffLimitPerIndex"):
        if nspec.get(f) != ospec.get(f):
            errs.invalid(f"spec.{f}", nspec.get(f), IMMUTABLE)
    if nspec.get("completions") != ospec.get("completions"):
        elastic = (nspec.get("completionMode") == "Indexed"
                   and nspec.get("completions") == nspec.get("parallelism")
                   and ospec.get("completions") == ospec.get("parallelism"))
        if not elastic:
            errs.invalid("spec.completions", nspec.get("completions"), IMMUTABLE)


_SCHEDULING_FIELDS = ("nodeSelector", "tolerations", "affinity", "schedulingGates")


def _without_scheduling(template: Any) -> Any:
    if not isinstance(template, dict):
        return template
    md = {k: v for k, v in (_dict(template.get("metadata"))).items() if k not in ("labels", "annotations")}
    spec = {k: v for k, v in (_dict(template.get("spec"))).items() if k not in _SCHEDULING_FIELDS}
    return {**template, "metadata": md, "spec": spec}


def _update_secret(new: dict, old: dict, errs: Errors) -> None:
    if (new.get("type") or "Opaque") != (old.get("type") or "Opaque"):
        errs.invalid("type", new.get("type"), IMMUTABLE)
    _validate_immutable_data(new, old, errs, "stringData")


def _update_priorityclass(new: dict, old: dict, errs: Errors) -> None:
    errs.immutable("value", new.get("value"), old.get("value"))
    errs.immutable("preemptionPolicy", new.get("preemptionPolicy"), old.get("preemptionPolicy"))


_UPDATE: dict[str, Callable[[dict, dict, Errors], None]] = {
    "Pod": _validate_pod_update,
    "Deployment": _selector_immutable,
    "ReplicaSet": _selector_immutable,
    "DaemonSet": _selector_immutable,
    "StatefulSet": _update_statefulset,
    "Job": _update_job,
    "Service": _validate_service_update,
    "ConfigMap": lambda new, old, errs: _validate_immutable_data(new, old, errs, "binaryData"),
    "Secret": _update_secret,
    "PriorityClass": _update_priorityclass,
}


def validate_create(resource: ResourceInfo, obj: Mapping[str, Any]) -> list[Cause]:
    """Every semantic problem with a new object (after defaulting), in Kubernetes' terms."""
    errs = Errors()
    validate_object_meta(resource, obj, errs)  # type: ignore[arg-type]
    fn = _CREATE.get(resource.kind)
    if fn is not None:
        fn(obj, errs)  # type: ignore[arg-type]
    return list(errs)


def validate_update(resource: ResourceInfo, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Cause]:
    """The problems with replacing ``old`` by ``new``: ``new``'s own, then what may not change."""
    errs = Errors()
    validate_object_meta(resource, new, errs)  # type: ignore[arg-type]
    validate_object_meta_update(new, old, errs)  # type: ignore[arg-type]
    fn = _CREATE.get(resource.kind)
    if fn is not None:
        fn(new, errs)  # type: ignore[arg-type]
    upd = _UPDATE.get(resource.kind)
    if upd is not None:
        upd(new, old, errs)  # type: ignore[arg-type]
    return list(errs)
