"""Structural validation and strategic-merge metadata, both read from the Kubernetes 1.32 schemas.

The source is the JSON schemas that the kubernetes-validate package ships
(``kubernetes-json-schema/v1.32.0-local[-strict]/_definitions.json``). Three services come from them:

- ``validate(obj)``: wrong types, missing required fields and unsupported values, as
  ``api.errors.Cause`` objects with Kubernetes field paths (``spec.containers[0].name``). Unknown
  fields never fail here; ``unknown_fields(obj)`` lists them for ``fieldValidation=Strict|Warn``,
  and ``check(obj, prune=True)`` drops them as decoding into the typed object would
  (``prune_unknown(obj)`` for partial objects).
- ``merge_info(group, version, kind)``: a ``PatchMeta`` tree telling strategic merge which lists
  merge by key, which are merge-unique primitive sets, which maps carry ``retainKeys``.
- ``definitions()`` and ``definition_name(...)`` for whoever publishes OpenAPI documents.

Each definition is compiled once, lazily, into a checker closure that walks an object's own keys
(not every property the schema declares) and finds in the same pass the first structural error
and every unknown field (``check(obj)``); ``warm(kinds)`` compiles ahead of the first request.
Module state is built once under a lock and then only read; it is safe to share between threads.
"""

from __future__ import annotations

import importlib.util
import json
import re
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson

from api.errors import Cause

KUBERNETES_VERSION = "v1.32.0"

GVK = tuple[str, str, str]

_lock = threading.RLock()
_defs: dict[bool, dict[str, Any]] = {}          # strict? -> $defs
_gvk_index: dict[GVK, str] | None = None
_checkers: dict[str, Any] = {}                   # definition name -> compiled checker
_meta_roots: dict[str, PatchMeta] = {}


# --------------------------------------------------------------------------- loading

def _schema_dir(strict: bool) -> Path:
    # Located without importing kubernetes_validate, whose import alone costs a quarter second.
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the kubernetes-validate package (Kubernetes JSON schemas) is not installed")
    base = Path(next(iter(spec.submodule_search_locations))) / "kubernetes-json-schema"
    return base / (f"{KUBERNETES_VERSION}-local-strict" if strict else f"{KUBERNETES_VERSION}-local")


def definitions(strict: bool = False) -> dict[str, Any]:
    """The raw ``$defs`` (definition name -> schema); references inside read ``#/$defs/<name>``.

    The non-strict set matches what Kubernetes publishes as OpenAPI; the strict one adds
    ``additionalProperties: false`` to every object with declared properties. Shared: never mutate.
    """
    d = _defs.get(strict)
    if d is None:
        with _lock:
            d = _defs.get(strict)
            if d is None:
                raw = (_schema_dir(strict) / "_definitions.json").read_bytes()
                d = orjson.loads(raw)["$defs"]
                _defs[strict] = d
    return d


def _index() -> dict[GVK, str]:
    global _gvk_index
    if _gvk_index is None:
        idx: dict[GVK, str] = {}
        for name, schema in definitions().items():
            for gvk in schema.get("x-kubernetes-group-version-kind") or ():
                key = (gvk.get("group", ""), gvk.get("version", ""), gvk.get("kind", ""))
                # Shared option kinds (DeleteOptions, WatchEvent) list many GVKs; prefer the
                # definition whose own package is the group, else keep the first seen.
                if key not in idx or name.startswith(_package_prefix(key[0])):
                    idx[key] = name
        _gvk_index = idx
    return _gvk_index


def _package_prefix(group: str) -> str:
    return "io.k8s.api.core." if group == "" else f"io.k8s.api.{group.split('.')[0]}."


def definition_name(group: str, version: str, kind: str) -> str | None:
    """``("", "v1", "Pod")`` -> ``"io.k8s.api.core.v1.Pod"``; None when the schemas lack the kind."""
    return _index().get((group, version, kind))


def gvk_of(obj: dict[str, Any]) -> GVK:
    api_version = obj.get("apiVersion") or ""
    group, _, version = api_version.rpartition("/")
    return group, version, obj.get("kind") or ""


def has_schema(group: str, version: str, kind: str) -> bool:
    return definition_name(group, version, kind) is not None


# --------------------------------------------------------------------------- compiling

# Values Kubernetes' own validation accepts for a few string fields whose schemas carry no enum.
# The published schemas drop enums; these are the fields clients most often get wrong, and
# naming the allowed values (FieldValueNotSupported) is what Kubernetes answers.
_ENUM_FIXES: dict[tuple[str, str], list[str]] = {
    ("io.k8s.api.core.v1.Container", "imagePullPolicy"): ["Always", "IfNotPresent", "Never"],
    ("io.k8s.api.core.v1.Container", "terminationMessagePolicy"): ["FallbackToLogsOnError", "File"],
    ("io.k8s.api.core.v1.PodSpec", "restartPolicy"): ["Always", "Never", "OnFailure"],
    ("io.k8s.api.core.v1.PodSpec", "dnsPolicy"): ["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"],
    ("io.k8s.api.core.v1.ContainerPort", "protocol"): ["SCTP", "TCP", "UDP"],
    ("io.k8s.api.core.v1.ServicePort", "protocol"): ["SCTP", "TCP", "UDP"],
    ("io.k8s.api.core.v1.ServiceSpec", "type"): ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
    ("io.k8s.api.apps.v1.DeploymentStrategy", "type"): ["Recreate", "RollingUpdate"],
}

# IntOrString and Quantity are written as oneOf(string|null, integer|null): null matches both
# branches, so oneOf would refuse an explicit null. A plain type union says the same thing.
_TYPE_FIXES: dict[str, dict[str, Any]] = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {"type": ["string", "integer", "null"]},
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {"type": ["string", "number", "null"]},
}

# Fields the schemas list as required only because Go always writes them (no omitempty): the API
# server decodes an absent one as its zero value and nothing refuses it. Writers that leave out a
# zero (a status with no replicas yet, a node agent without a kube-proxy version) must pass.
_REQUIRED_RELAXED: dict[str, frozenset[str]] = {
    "io.k8s.api.apps.v1.ReplicaSetStatus": frozenset({"replicas"}),
    "io.k8s.api.apps.v1.StatefulSetStatus": frozenset({"replicas"}),
    "io.k8s.api.apps.v1.DaemonSetStatus": frozenset({"currentNumberScheduled", "numberMisscheduled",
                                                     "desiredNumberScheduled", "numberReady"}),
    "io.k8s.api.core.v1.ContainerStatus": frozenset({"ready", "restartCount", "image", "imageID"}),
    "io.k8s.api.core.v1.NodeSystemInfo": frozenset({"machineID", "systemUUID", "bootID", "kernelVersion",
                                                    "osImage", "containerRuntimeVersion", "kubeletVersion",
                                                    "kubeProxyVersion", "operatingSystem", "architecture"}),
    "io.k8s.api.discovery.v1.EndpointSlice": frozenset({"endpoints"}),
}

_DROP_KEYS = frozenset({"description", "$schema", "$id"})


def _ref_name(ref: str) -> str:
    # "#/$defs/<name>" inside _definitions.json, "/api/_definitions.json#/$defs/<name>" in kind files.
    return ref.rsplit("/", 1)[-1]


def _clean(node: Any, owner: str | None = None) -> Any:
    """A copy of a schema fragment ready to compile: no prose, null-safe enums, our fixes."""
    if isinstance(node, list):
        return [_clean(v) for v in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for k, v in node.items():
        if k in _DROP_KEYS or k.startswith("x-"):
            continue
        if k == "$ref":
            out[k] = "#/definitions/" + _ref_name(v)
        elif k == "format" and v != "date-time":
            continue                     # int32, int64, byte, double: the JSON types say enough
        elif k == "properties":
            props = {}
            for pname, pschema in v.items():
                cleaned = _clean(pschema)
                values = _ENUM_FIXES.get((owner, pname)) if owner else None
                if values is not None:
                    cleaned["enum"] = values
                props[pname] = cleaned
            out[k] = props
        elif k == "required" and owner in _REQUIRED_RELAXED:
            kept = [f for f in v if f not in _REQUIRED_RELAXED[owner]]
            if kept:
                out[k] = kept
        else:
            out[k] = _clean(v)
    if "enum" in out:
        types = out.get("type")
        nullable = types == "null" or (isinstance(types, list) and "null" in types)
        if nullable and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
    return out


# A compiled checker is ``check(value, at, unknown)``: it raises ``_Invalid`` at the first
# structural error and appends to ``unknown`` a ``(place, holder)`` pair for every field a closed
# (strict) definition does not declare, ``holder`` being the dict that holds it. ``at`` names the
# value's place as a chain ``(parent, segment)`` that is spelled out only when a path is needed, so a valid object costs one small tuple per nested container.
# A property whose schema is a bare type is held as the set of Python types it allows and checked
# inline; only maps and lists cost a call.

Checker = Any
_Path = tuple | None

# RFC 3339 date-time, as JSON Schema's "date-time" format reads it.
_DATE = (r"\d{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12]\d|3[01])|(?:0[469]|11)-(?:0[1-9]|[12]\d|30)"
         r"|02-(?:0[1-9]|1\d|2[0-8]))|(?:\d\d(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)-02-29")
_DATE_TIME = re.compile(rf"^(?:{_DATE})[tT](?:[01]\d|2[0-3]):[0-5]\d:(?:[0-5]\d|60)(?:\.\d+)?"
                        r"(?:[+-](?:[01]\d|2[0-3]):?[0-5]\d|[zZ])\Z")

_PY_TYPES = {"object": (dict,), "array": (list,), "string": (str,), "integer": (int,),
             "number": (int, float), "boolean": (bool,), "null": (type(None),)}


class _Invalid(Exception):
    def __init__(self, rule: str, at: _Path, value: Any, definition: Any):
        super().__init__(rule)
        self.rule, self.at, self.value, self.definition = rule, at, value, definition


def _spell(at: _Path) -> str:
    parts: list[Any] = []
    while at is not None:
        at, seg = at
        parts.append(seg)
    out = ""
    for seg in reversed(parts):
        out = f"{out}[{seg}]" if isinstance(seg, int) else (f"{out}.{seg}" if out else seg)
    return out


def _allowed(types: Any) -> frozenset[type]:
    names = types if isinstance(types, list) else [types]
    return frozenset(t for n in names for t in _PY_TYPES.get(n, ()))


def _bare_type(frag: dict[str, Any]) -> tuple[frozenset[type], Any] | None:
    """(allowed types, the schema's type) for a fragment that only names a type, else None."""
    if "$ref" in frag:
        fixed = _TYPE_FIXES.get(_ref_name(frag["$ref"]))
        return (_allowed(fixed["type"]), fixed["type"]) if fixed else None
    if frag.keys() == {"type"}:
        return _allowed(frag["type"]), frag["type"]
    return None


def _checker(name: str) -> Checker:
    """The checker of one definition, compiled once (recursive definitions refer to themselves
    through a forwarding cell while they are being compiled)."""
    fn = _checkers.get(name)
    if fn is not None:
        return fn
    with _lock:
        fn = _checkers.get(name)
        if fn is not None:
            return fn
        cell: list[Checker] = []
        _checkers[name] = lambda v, at, unknown: cell[0](v, at, unknown)
        frag = _TYPE_FIXES.get(name) or _clean(definitions()[name], owner=name)
        real = _compile(frag, closed=_closed(name))
        cell.append(real)
        _checkers[name] = real
        return real


def _compile(frag: dict[str, Any], closed: bool = False) -> Checker:
    if "$ref" in frag:
        return _checker(_ref_name(frag["$ref"]))
    types = frag.get("type")
    allowed = _allowed(types) if types is not None else None
    required = tuple(frag.get("required") or ())
    enum = frag.get("enum")
    date_time = frag.get("format") == "date-time"
    props: dict[str, Any] | None = None
    if frag.get("properties"):
        props = {}
        for k, sub in frag["properties"].items():
            bare = _bare_type(sub)
            props[k] = bare if bare is not None else _compile(sub)
    extra = frag.get("additionalProperties")
    extra_fn = _compile(extra) if isinstance(extra, dict) and extra else None
    items = frag.get("items")
    item_fn = _compile(items) if isinstance(items, dict) and items else None

    def check(v: Any, at: _Path, unknown: list[str]) -> None:
        tv = v.__class__
        if allowed is not None and tv not in allowed:
            raise _Invalid("type", at, v, types)
        if tv is dict:
            for r in required:
                if r not in v:
                    raise _Invalid("required", at, v, required)
            if props is not None or extra_fn is not None:
                for k, x in v.items():
                    sub = props.get(k) if props is not None else None
                    if sub is None:
                        if extra_fn is not None:
                            extra_fn(x, (at, k), unknown)
                        elif closed:
                            unknown.append(((at, k), v))
                    elif sub.__class__ is tuple:
                        if x.__class__ not in sub[0]:
                            raise _Invalid("type", (at, k), x, sub[1])
                    else:
                        sub(x, (at, k), unknown)
        elif tv is list:
            if item_fn is not None:
                for i, x in enumerate(v):
                    item_fn(x, (at, i), unknown)
        if enum is not None and v not in enum:
            raise _Invalid("enum", at, v, enum)
        if date_time and tv is str and not _DATE_TIME.match(v):
            raise _Invalid("format", at, v, "date-time")
    return check


def warm(kinds: Iterable[GVK | str]) -> None:
    """Compile the checkers of these kinds now (tens of milliseconds each) rather than on the
    first write of each. Each entry is a ``(group, version, kind)`` tuple or a definition name;
    kinds the schemas do not know are skipped."""
    for k in kinds:
        name = k if isinstance(k, str) else definition_name(*k)
        if name and name in definitions():
            _checker(name)


# --------------------------------------------------------------------------- validate

def _show(value: Any) -> str:
    """A value the way Kubernetes prints it inside a field error."""
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        text = "null"
    elif isinstance(value, int | float):
        text = repr(value)
    else:
        text = json.dumps(json.dumps(value, separators=(",", ":"), sort_keys=True, default=str))
    return text if len(text) <= 200 else text[:197] + "..."


_JSON_TYPE = {str: "string", bool: "boolean", int: "integer", float: "number", list: "array",
              dict: "object", type(None): "null"}


def check(obj: dict[str, Any], gvk: GVK | None = None, *,
          prune: bool = False) -> tuple[list[Cause], list[str]]:
    """``(validate(obj), unknown_fields(obj))`` in one pass over the object. With ``prune`` the
    unknown fields are also removed from ``obj`` (when it has no structural error), as decoding
    into Kubernetes' typed objects drops them."""
    if not isinstance(obj, dict):
        return [Cause("FieldValueTypeInvalid", f"Invalid value: {_show(obj)}: must be an object", "")], []
    if gvk is None:
        gvk = gvk_of(obj)
        causes = []
        if not obj.get("apiVersion"):
            causes.append(Cause("FieldValueRequired", "Required value", "apiVersion"))
        if not obj.get("kind"):
            causes.append(Cause("FieldValueRequired", "Required value", "kind"))
        if causes:
            return causes, []
    root = definition_name(*gvk)
    if root is None:
        return [], []
    found: list[tuple[_Path, dict]] = []
    try:
        _checker(root)(obj, None, found)
    except _Invalid as e:
        return [_cause(e)], _paths(found)
    if prune:
        _drop(found)
    return [], _paths(found)


def validate(obj: dict[str, Any], gvk: GVK | None = None) -> list[Cause]:
    """Structural errors of ``obj`` against its kind's schema (the first one found, or none).

    The kind comes from ``gvk`` when given (the URL's, so a body claiming another apiVersion is
    refused), else from the object's own apiVersion and kind. Kinds without a schema pass.
    Unknown fields are not errors here: see ``unknown_fields``.
    """
    return check(obj, gvk)[0]


def _cause(e: _Invalid) -> Cause:
    path = _spell(e.at)
    rule, value = e.rule, e.value
    if rule == "required":
        missing = [r for r in e.definition if r not in value]
        field = missing[0] if missing else ""
        return Cause("FieldValueRequired", "Required value", f"{path}.{field}" if path else field)
    if rule == "type":
        expected = e.definition
        if isinstance(expected, list):
            expected = " or ".join(t for t in expected if t != "null")
        got = _JSON_TYPE.get(type(value), type(value).__name__)
        return Cause("FieldValueTypeInvalid",
                     f"Invalid value: {_show(value)}: must be of type {expected}, got {got}", path)
    if rule == "enum":
        allowed = ", ".join(_show(v) for v in (e.definition or []) if v is not None)
        return Cause("FieldValueNotSupported",
                     f"Unsupported value: {_show(value)}: supported values: {allowed}", path)
    return Cause("FieldValueInvalid",
                 f"Invalid value: {_show(value)}: must be a {e.definition} (RFC 3339)", path)


# --------------------------------------------------------------------------- unknown fields

def _closed(name: str) -> bool:
    """Whether the strict schemas refuse fields this definition does not declare."""
    schema = definitions(strict=True).get(name) or {}
    return schema.get("additionalProperties") is False and "properties" in schema


def unknown_fields(obj: dict[str, Any], gvk: GVK | None = None) -> list[str]:
    """Paths of fields the strict schema does not know, e.g. ``spec.containers[0].bogus``.

    The server answers ``fieldValidation=Strict`` with ``strict decoding error: unknown field
    "<path>"`` for these, and ``Warn`` with a Warning header each. Fields below a structural error
    are not looked at.
    """
    root = definition_name(*(gvk or gvk_of(obj)))
    if root is None or not isinstance(obj, dict):
        return []
    found: list[tuple[_Path, dict]] = []
    try:
        _checker(root)(obj, None, found)
    except _Invalid:
        pass
    return _paths(found)


def prune_unknown(obj: dict[str, Any], gvk: GVK | None = None) -> list[str]:
    """Remove from ``obj`` the fields its kind does not have and return their paths, checking
    nothing else: for partial objects (apply configurations), whose missing required fields
    would stop ``check``'s pass before it had looked at everything."""
    root = definition_name(*(gvk or gvk_of(obj)))
    if root is None or not isinstance(obj, dict):
        return []
    found: list[tuple[_Path, dict]] = []
    _find_unknown(obj, {"$ref": root}, None, found)
    _drop(found)
    return _paths(found)


def _paths(found: list[tuple[_Path, dict]]) -> list[str]:
    return [_spell(at) for at, _ in found]


def _drop(found: list[tuple[_Path, dict]]) -> None:
    for at, holder in found:
        del holder[at[1]]


def _find_unknown(v: Any, frag: dict[str, Any], at: _Path, found: list[tuple[_Path, dict]]) -> None:
    closed = False
    while "$ref" in frag:
        name = _ref_name(frag["$ref"])
        closed = _closed(name)
        frag = definitions().get(name) or {}
    if type(v) is dict:
        props = frag.get("properties") or {}
        extra = frag.get("additionalProperties")
        for k, x in v.items():
            sub = props.get(k)
            if sub is None and isinstance(extra, dict) and extra:
                sub = extra
            if sub is not None:
                _find_unknown(x, sub, (at, k), found)
            elif closed:
                found.append(((at, k), v))
    elif type(v) is list and isinstance(frag.get("items"), dict):
        for i, x in enumerate(v):
            _find_unknown(x, frag["items"], (at, i), found)


def strict_decoding_error(paths: Iterable[str]) -> str:
    """Kubernetes' wording for unknown fields: ``strict decoding error: unknown field "spec.foo", ...``.

    A 400 under ``fieldValidation=Strict``; under ``Warn`` each ``unknown field "<path>"`` is one
    Warning header.
    """
    return "strict decoding error: " + ", ".join(f'unknown field "{p}"' for p in paths)


# --------------------------------------------------------------------------- patch metadata

class PatchMeta:
    """What strategic merge needs to know at one place in an object.

    A node stands for a field's value (or a list item): ``strategies`` are the field's
    ``x-kubernetes-patch-strategy`` entries ("merge", "retainKeys", "replace"), ``merge_key`` and
    ``list_map_keys`` identify list items, and ``retain_keys`` says whether a map here honours
    ``$retainKeys``. ``child(name)`` and ``items()`` step down; unknown places give ``ANY``,
    which means plain merge-patch behaviour (maps merge, lists are replaced).
    """

    __slots__ = ("strategies", "merge_key", "list_type", "list_map_keys", "retain_keys",
                 "_schema", "_children", "_items")

    def __init__(self, schema: dict[str, Any] | None, strategies: frozenset[str] = frozenset(),
                 merge_key: str | None = None, list_type: str | None = None,
                 list_map_keys: tuple[str, ...] = (), retain_keys: bool = False):
        self._schema = schema              # the resolved type schema (after $ref), or None
        self.strategies = strategies
        self.merge_key = merge_key
        self.list_type = list_type
        self.list_map_keys = list_map_keys
        self.retain_keys = retain_keys
        self._children: dict[str, PatchMeta] = {}
        self._items: PatchMeta | None = None

    # A list whose items are merged rather than replaced.
    @property
    def merges(self) -> bool:
        return "merge" in self.strategies

    @property
    def replaces(self) -> bool:
        return "replace" in self.strategies

    @property
    def known(self) -> bool:
        return self._schema is not None

    def child(self, name: str) -> PatchMeta:
        got = self._children.get(name)
        if got is not None:
            return got
        schema = self._schema or {}
        props = schema.get("properties")
        if props and name in props:
            got = _meta_from_property(props[name])
        else:
            extra = schema.get("additionalProperties")
            got = _meta_from_property(extra) if isinstance(extra, dict) and extra else ANY
        self._children[name] = got
        return got

    def items(self) -> PatchMeta:
        if self._items is None:
            items = (self._schema or {}).get("items")
            if isinstance(items, dict):
                node = _meta_from_property(items)
                if "retainKeys" in self.strategies:
                    # "merge,retainKeys" on a list (volumes): each item map honours $retainKeys.
                    node = PatchMeta(node._schema, node.strategies, node.merge_key, node.list_type,
                                     node.list_map_keys, retain_keys=True)
                self._items = node
            else:
                self._items = ANY
        return self._items

    def at(self, path: Sequence[str | int]) -> PatchMeta:
        """The node at a path such as ``("spec", "template", "spec", "containers", 0, "ports")``."""
        node = self
        for step in path:
            node = node.items() if isinstance(step, int) else node.child(step)
        return node

    def __repr__(self) -> str:
        bits = []
        if self.strategies:
            bits.append("strategy=" + ",".join(sorted(self.strategies)))
        if self.merge_key:
            bits.append(f"merge_key={self.merge_key}")
        if self.list_map_keys:
            bits.append("keys=" + "+".join(self.list_map_keys))
        if self.retain_keys:
            bits.append("retainKeys")
        if not self.known:
            bits.append("unknown")
        return f"PatchMeta({' '.join(bits)})"


ANY = PatchMeta(None)


def _meta_from_property(prop: dict[str, Any]) -> PatchMeta:
    strategies = frozenset(s for s in (prop.get("x-kubernetes-patch-strategy") or "").split(",") if s)
    schema = prop
    if "$ref" in prop:
        schema = definitions().get(_ref_name(prop["$ref"])) or {}
    keys = tuple(prop.get("x-kubernetes-list-map-keys") or ())
    return PatchMeta(schema, strategies, prop.get("x-kubernetes-patch-merge-key"),
                     prop.get("x-kubernetes-list-type"), keys,
                     retain_keys="retainKeys" in strategies and "items" not in prop)


def merge_info(group: str, version: str, kind: str) -> PatchMeta:
    """The strategic-merge metadata of a kind; ``ANY`` when the schemas do not know it."""
    name = definition_name(group, version, kind)
    if name is None:
        return ANY
    meta = _meta_roots.get(name)
    if meta is None:
        with _lock:
            meta = _meta_roots.get(name)
            if meta is None:
                meta = PatchMeta(definitions()[name])
                _meta_roots[name] = meta
    return meta
