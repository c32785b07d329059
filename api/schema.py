"""Structural validation and strategic-merge metadata, both read from the Kubernetes 1.32 schemas.

The source is the JSON schemas that the kubernetes-validate package ships
(``kubernetes-json-schema/v1.32.0-local[-strict]/_definitions.json``). Three services come from them:

- ``validate(obj)``: wrong types, missing required fields and unsupported values, as
  ``api.errors.Cause`` objects with Kubernetes field paths (``spec.containers[0].name``). Unknown
  fields never fail here; ``unknown_fields(obj)`` lists them for ``fieldValidation=Strict|Warn``.
- ``merge_info(group, version, kind)``: a ``PatchMeta`` tree telling strategic merge which lists
  merge by key, which are merge-unique primitive sets, which maps carry ``retainKeys``.
- ``definitions()`` and ``definition_name(...)`` for whoever publishes OpenAPI documents.

Validators are compiled with fastjsonschema (two orders of magnitude faster than an interpreting
validator), lazily per kind, with ``$ref``s made local and only the reachable definitions
embedded. Generating one kind's code takes a second or two, so the compiled code is cached on disk
(``cache_dir()``), keyed by a hash of the schema file, our rewriting rules and the generator's and
Python's versions. The first ``validate`` of a kind in a process therefore reads a file (a few ms)
or compiles: call ``warm(kinds)`` from a thread at start-up. Module state is built once under a
lock and then only read; it is safe to share between threads.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import marshal
import os
import re
import tempfile
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import fastjsonschema
import orjson

from api.errors import Cause

KUBERNETES_VERSION = "v1.32.0"
_CODEGEN_VERSION = "2"   # bump when the rewriting below changes the generated validators

GVK = tuple[str, str, str]

_lock = threading.RLock()
_defs: dict[bool, dict[str, Any]] = {}          # strict? -> $defs
_gvk_index: dict[GVK, str] | None = None
_validators: dict[str, Any] = {}                 # definition name -> compiled validate function
_walkers: dict[str, dict[str, Any]] = {}         # definition name -> {field: child spec}
_meta_roots: dict[str, PatchMeta] = {}
_defs_digest = ""


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
                if not strict:
                    global _defs_digest
                    _defs_digest = hashlib.sha256(raw).hexdigest()
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
    """A copy of a schema fragment fit for fastjsonschema: local refs, no prose, null-safe enums."""
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
            continue                     # int32, int64, byte, double: fastjsonschema knows none of them
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


def _reachable(root: str, defs: dict[str, Any]) -> list[str]:
    seen: dict[str, None] = {}
    stack = [root]
    while stack:
        name = stack.pop()
        if name in seen or name not in defs:
            continue
        seen[name] = None
        stack.extend(_refs_in(defs[name]))
    return list(seen)


def _refs_in(node: Any) -> Iterable[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                yield _ref_name(v)
            elif k not in ("description", "enum", "x-kubernetes-group-version-kind"):
                yield from _refs_in(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs_in(v)


def _compiled_schema(root: str) -> dict[str, Any]:
    """The self-contained, non-strict schema of one definition (unknown fields allowed)."""
    defs = definitions()
    embedded = {}
    for name in _reachable(root, defs):
        embedded[name] = _TYPE_FIXES.get(name) or _clean(defs[name], owner=name)
    top = dict(embedded[root])
    top["type"] = "object"              # a whole object is never null
    top["definitions"] = embedded
    return top


def cache_dir() -> Path:
    """Where generated validator code is kept: $NAVARCH_SCHEMA_CACHE, else the XDG cache."""
    explicit = os.environ.get("NAVARCH_SCHEMA_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "navarch" / "schemas"


def _cache_key(root: str) -> str:
    """Changes whenever the generated code could: schemas, our rewriting, generator, Python."""
    definitions()
    h = hashlib.sha256()
    for part in (_defs_digest, root, _CODEGEN_VERSION, fastjsonschema.VERSION,
                 importlib.util.MAGIC_NUMBER.hex(), _fixes_fingerprint()):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:24]


# The generated code names list items with '"...[{i}]".format(**locals())'; building locals() of
# a large function for every list field is half the cost of validating a Pod. An f-string says
# the same and costs nothing: the placeholders are plain local variable names.
_FORMAT_LOCALS = re.compile(r'"((?:[^"\\{}]|\\.|\{[A-Za-z_][A-Za-z0-9_]*\})*)"\.format\(\*\*locals\(\)\)')


def _fast_names(source: str) -> str:
    return _FORMAT_LOCALS.sub(r'f"\1"', source)


def _fixes_fingerprint() -> str:
    # Sorted explicitly: a frozenset's repr follows string hashing, which differs per process.
    return json.dumps([sorted(f"{a}.{b}={v}" for (a, b), v in _ENUM_FIXES.items()),
                       sorted(_TYPE_FIXES.items()),
                       sorted((k, sorted(v)) for k, v in _REQUIRED_RELAXED.items())], sort_keys=True)


def _run(code: Any) -> Any:
    namespace: dict[str, Any] = {}
    exec(code, namespace)  # our own generated validator
    return namespace["validate"]


def _build_validator(root: str) -> Any:
    # The cache holds the marshalled code object: loading it costs milliseconds, where
    # compiling the generated source again would cost a quarter second and generating it, seconds.
    path = cache_dir() / f"{root}-{_cache_key(root)}.bin"
    try:
        return _run(marshal.loads(path.read_bytes()))
    except (OSError, ValueError, EOFError, TypeError, KeyError):
        pass                         # missing, truncated or foreign: regenerate below
    source = _fast_names(fastjsonschema.compile_to_code(_compiled_schema(root)))
    code = compile(source, f"<validator {root}>", "exec")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".bin")
        with os.fdopen(fd, "wb") as f:
            f.write(marshal.dumps(code))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        for old in path.parent.glob(f"{root}-*.bin"):
            if old != path:
                old.unlink(missing_ok=True)   # code for a previous schema or generator
    except OSError:
        pass                         # an unwritable cache only costs the next process a compile
    return _run(code)


def _validator(root: str) -> Any:
    fn = _validators.get(root)
    if fn is None:
        with _lock:
            fn = _validators.get(root)
            if fn is None:
                fn = _build_validator(root)
                _validators[root] = fn
    return fn


def warm(kinds: Iterable[GVK | str]) -> None:
    """Compile (or load from the disk cache) the validators of these kinds now.

    Each entry is a ``(group, version, kind)`` tuple or a definition name. Blocking: run it in a
    thread. Kinds the schemas do not know are skipped.
    """
    for k in kinds:
        name = k if isinstance(k, str) else definition_name(*k)
        if name and name in definitions():
            _validator(name)
            _walker(name)


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


def _field_path(name: str | None) -> str:
    name = name or "data"
    if name == "data":
        return ""
    return name[5:] if name.startswith("data.") else name[4:]


def validate(obj: dict[str, Any], gvk: GVK | None = None) -> list[Cause]:
    """Structural errors of ``obj`` against its kind's schema (the first one found, or none).

    The kind comes from ``gvk`` when given (the URL's, so a body claiming another apiVersion is
    refused), else from the object's own apiVersion and kind. Kinds without a schema pass.
    Unknown fields are not errors here: see ``unknown_fields``.
    """
    if not isinstance(obj, dict):
        return [Cause("FieldValueTypeInvalid", f"Invalid value: {_show(obj)}: must be an object", "")]
    if gvk is None:
        gvk = gvk_of(obj)
        causes = []
        if not obj.get("apiVersion"):
            causes.append(Cause("FieldValueRequired", "Required value", "apiVersion"))
        if not obj.get("kind"):
            causes.append(Cause("FieldValueRequired", "Required value", "kind"))
        if causes:
            return causes
    root = definition_name(*gvk)
    if root is None:
        return []
    try:
        _validator(root)(obj)
    except fastjsonschema.JsonSchemaValueException as e:
        return [_cause(e)]
    return []


def _cause(e: fastjsonschema.JsonSchemaValueException) -> Cause:
    path = _field_path(e.name)
    rule = e.rule
    value = e.value
    if rule == "required":
        required = e.rule_definition or []
        present = value if isinstance(value, dict) else {}
        missing = [r for r in required if r not in present]
        field = missing[0] if missing else ""
        return Cause("FieldValueRequired", "Required value", f"{path}.{field}" if path else field)
    if rule == "type":
        expected = e.rule_definition
        if isinstance(expected, list):
            expected = [t for t in expected if t != "null"]
            expected = " or ".join(expected)
        got = _JSON_TYPE.get(type(value), type(value).__name__)
        return Cause("FieldValueTypeInvalid",
                     f"Invalid value: {_show(value)}: must be of type {expected}, got {got}", path)
    if rule == "enum":
        allowed = ", ".join(_show(v) for v in (e.rule_definition or []) if v is not None)
        return Cause("FieldValueNotSupported",
                     f"Unsupported value: {_show(value)}: supported values: {allowed}", path)
    if rule == "format":
        return Cause("FieldValueInvalid",
                     f"Invalid value: {_show(value)}: must be a {e.rule_definition} (RFC 3339)", path)
    detail = e.message
    prefix = (e.name or "data") + " "
    if detail.startswith(prefix):
        detail = detail[len(prefix):]
    return Cause("FieldValueInvalid", f"Invalid value: {_show(value)}: {detail}", path)


# --------------------------------------------------------------------------- unknown fields

# A child spec is ("ref", name), ("list", spec), ("map", spec) or None (anything goes).

def _spec(schema: dict[str, Any]) -> Any:
    if "$ref" in schema:
        return ("ref", _ref_name(schema["$ref"]))
    items = schema.get("items")
    if isinstance(items, dict):
        inner = _spec(items)
        return ("list", inner) if inner is not None else None
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict) and extra:
        inner = _spec(extra)
        return ("map", inner) if inner is not None else None
    return None


def _closed(name: str) -> bool:
    schema = definitions(strict=True).get(name) or {}
    return schema.get("additionalProperties") is False and "properties" in schema


def _prune(spec: Any) -> Any:
    """None for a spec under which no field can be unknown (it ends in a definition that takes
    any keys), so that the walk does not descend there."""
    if spec is None:
        return None
    tag, inner = spec
    if tag == "ref":
        return spec if _closed(inner) else None
    inner = _prune(inner)
    return (tag, inner) if inner is not None else None


def _walker(name: str) -> dict[str, Any] | None:
    """The known fields of a closed (strict) definition, or None if it takes any keys."""
    if name in _walkers:
        return _walkers[name]
    schema = definitions(strict=True).get(name) or {}
    fields: dict[str, Any] | None = None
    if schema.get("additionalProperties") is False and "properties" in schema:
        fields = {k: _prune(_spec(v)) for k, v in schema["properties"].items()}
    _walkers[name] = fields
    return fields


def unknown_fields(obj: dict[str, Any], gvk: GVK | None = None) -> list[str]:
    """Paths of fields the strict schema does not know, e.g. ``spec.containers[0].bogus``.

    The server answers ``fieldValidation=Strict`` with ``strict decoding error: unknown field
    "<path>"`` for these, and ``Warn`` with a Warning header each.
    """
    root = definition_name(*(gvk or gvk_of(obj)))
    if root is None or not isinstance(obj, dict):
        return []
    out: list[str] = []
    _walk(("ref", root), obj, "", out)
    return out


def strict_decoding_error(paths: Iterable[str]) -> str:
    """Kubernetes' wording for unknown fields: ``strict decoding error: unknown field "spec.foo", ...``.

    A 400 under ``fieldValidation=Strict``; under ``Warn`` each ``unknown field "<path>"`` is one
    Warning header.
    """
    return "strict decoding error: " + ", ".join(f'unknown field "{p}"' for p in paths)


def _walk(spec: Any, value: Any, path: str, out: list[str]) -> None:
    tag, inner = spec
    if tag == "ref":
        if not isinstance(value, dict):
            return
        fields = _walkers.get(inner, _MISSING)
        if fields is _MISSING:
            fields = _walker(inner)
        if fields is None:
            return
        for k, v in value.items():
            # Paths are spelled out only where needed: most fields are known scalars.
            if k not in fields:
                out.append(f"{path}.{k}" if path else k)
            elif v is not None:
                child = fields[k]
                if child is not None:
                    _walk(child, v, f"{path}.{k}" if path else k, out)
    elif tag == "list":
        if isinstance(value, list):
            for i, item in enumerate(value):
                if item is not None:
                    _walk(inner, item, f"{path}[{i}]", out)
    elif tag == "map":
        if isinstance(value, dict):
            for k, v in value.items():
                if v is not None:
                    _walk(inner, v, f"{path}.{k}", out)


_MISSING = object()


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
