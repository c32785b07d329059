"""OpenAPI v3: the ``/openapi/v3`` index and one document per group-version.

kubectl needs these for ``apply``/``create`` with validation on: it looks for a PATCH operation
carrying the kind's ``x-kubernetes-group-version-kind`` and a ``fieldValidation`` query parameter,
then leaves validation to the server. ``kubectl explain`` and client-side apply's strategic merge
patch read ``components.schemas``, which hold the Kubernetes 1.32 schemas shipped by
kubernetes-validate, rewritten from JSON Schema to OpenAPI 3.0 conventions.

Paths and operations derive from ``api.registry.RESOURCES``. Documents are built on first use and
cached for the life of the process: building them all takes a noticeable fraction of a second,
so the HTTP layer may want to call ``index()`` once at start-up or in a thread.
"""

from __future__ import annotations

import functools
import hashlib
from collections import deque
from typing import Any

import orjson

from api import errors, schema
from api.registry import RESOURCES, ResourceInfo, Subresource, group_versions

CONTENT_TYPE = "application/json"
OPENAPI_VERSION = "3.0.0"
_SCHEMA_RELEASE = schema.KUBERNETES_VERSION
_REF_PREFIX = "#/components/schemas/"

PATCH_CONTENT_TYPES = (
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)

# ---------------------------------------------------------------------------------------------
# Schema source: the Kubernetes schemas loaded by api.schema


def _definitions() -> dict[str, Any]:
    return schema.definitions()


def definition_name(group: str, version: str, kind: str) -> str:
    """The definition describing ``kind`` in ``group/version``; KeyError if there is none."""
    name = schema.definition_name(group, version, kind)
    if name is None:
        raise KeyError((group, version, kind))
    return name


_META = "io.k8s.apimachinery.pkg.apis.meta.v1."
STATUS_SCHEMA = _META + "Status"
DELETE_OPTIONS_SCHEMA = _META + "DeleteOptions"
PATCH_SCHEMA = _META + "Patch"

# ---------------------------------------------------------------------------------------------
# JSON Schema -> OpenAPI 3.0 schema objects


def _convert(node: Any) -> Any:
    """Rewrite one schema node: single types instead of ``[t, "null"]``, refs into
    ``components.schemas`` (wrapped in ``allOf`` when the property adds a description, since
    OpenAPI 3.0 ignores siblings of ``$ref``). Unions (IntOrString, Quantity) stay ``oneOf``
    without a top-level type, which is what makes ``kubectl explain`` name them."""
    if isinstance(node, list):
        return [_convert(x) for x in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$ref":
            continue
        if key == "type" and isinstance(value, list):
            types = [t for t in value if t != "null"]
            out["type"] = types[0] if len(types) == 1 else types
        elif key == "enum":
            # The source pins kind/apiVersion with enums; Kubernetes' own documents do not.
            continue
        elif key in ("properties", "patternProperties"):
            out[key] = {k: _convert(v) for k, v in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            out[key] = _convert(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [_convert(v) for v in value]
        else:
            out[key] = value
    ref = node.get("$ref")
    if isinstance(ref, str):
        target = {"$ref": _REF_PREFIX + ref.rsplit("/", 1)[-1]}
        if not out:
            return target
        return {"allOf": [target], **out}
    return out


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            found.add(ref.rsplit("/", 1)[-1])
        for v in node.values():
            _refs(v, found)
    elif isinstance(node, list):
        for v in node:
            _refs(v, found)


def _closure(roots: set[str]) -> list[str]:
    """Every definition reachable from ``roots`` through ``$ref``, sorted."""
    defs = _definitions()
    seen: set[str] = set()
    todo = deque(sorted(roots))
    while todo:
        name = todo.popleft()
        if name in seen or name not in defs:
            continue
        seen.add(name)
        found: set[str] = set()
        _refs(defs[name], found)
        todo.extend(sorted(found - seen))
    return sorted(seen)


# ---------------------------------------------------------------------------------------------
# Paths and operations


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF_PREFIX + name}


def _q(name: str, type_: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": {"type": type_},
            "uniqueItems": True}


def _path_param(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "description": description, "required": True,
            "schema": {"type": "string"}, "uniqueItems": True}


_PRETTY = _q("pretty", "string", "If 'true', the output is pretty printed.")
_DRY_RUN = _q("dryRun", "string", "When present, modifications are not persisted. The only valid "
              "value is 'All': every stage of the request is processed but nothing is stored.")
_FIELD_MANAGER = _q("fieldManager", "string", "The name of the actor making these changes, recorded "
                    "in managedFields. Required for apply patches, optional otherwise.")
_FIELD_VALIDATION = _q("fieldValidation", "string", "How the server treats unknown or duplicate "
                       "fields in the body: Ignore, Warn (the default) or Strict (reject with 400).")
_FORCE = _q("force", "boolean", "For apply patches: take ownership of fields that other managers "
            "own instead of failing with a conflict. Must be unset for other patch types.")
_LIST_PARAMS = [
    _q("allowWatchBookmarks", "boolean", "Ask for BOOKMARK events in a watch."),
    _q("continue", "string", "The continue token of the previous page of a paginated list."),
    _q("fieldSelector", "string", "Only return objects whose fields match this selector."),
    _q("labelSelector", "string", "Only return objects whose labels match this selector."),
    _q("limit", "integer", "The most objects to return; a continue token gives the rest."),
    _q("resourceVersion", "string", "The storage revision the list or watch starts from."),
    _q("resourceVersionMatch", "string", "How resourceVersion applies to a list: Exact or NotOlderThan."),
    _q("sendInitialEvents", "boolean", "Start a watch with synthetic ADDED events for current objects."),
    _q("timeoutSeconds", "integer", "End a list or watch after this many seconds."),
    _q("watch", "boolean", "Stream add, update and delete events instead of returning a list."),
]
_DELETE_PARAMS = [
    _DRY_RUN,
    _q("gracePeriodSeconds", "integer", "Seconds before the object is deleted; 0 deletes at once."),
    _q("ignoreStoreReadErrorWithClusterBreakingPotential", "boolean",
       "Delete an object that cannot be read from storage."),
    _q("orphanDependents", "boolean", "Deprecated: use propagationPolicy."),
    _q("propagationPolicy", "string", "Whether and how dependents are garbage collected: "
       "Orphan, Background or Foreground."),
]
_CONNECT_PARAMS = {
    "log": [_q("container", "string", "The container whose log to stream."),
            _q("follow", "boolean", "Keep streaming the log as it grows."),
            _q("insecureSkipTLSVerifyBackend", "boolean", "Skip verifying the node's serving certificate."),
            _q("limitBytes", "integer", "Stop after this many bytes."),
            _q("previous", "boolean", "The log of the previous, terminated instance of the container."),
            _q("sinceSeconds", "integer", "Only lines newer than this many seconds."),
            _q("stream", "string", "Which stream to return: All, Stdout or Stderr."),
            _q("tailLines", "integer", "Only this many lines from the end of the log."),
            _q("timestamps", "boolean", "Prefix every line with its RFC3339 timestamp.")],
    "exec": [_q("command", "string", "The command to run, one parameter per argument."),
             _q("container", "string", "The container to run it in."),
             _q("stderr", "boolean", "Redirect the standard error stream."),
             _q("stdin", "boolean", "Redirect the standard input stream."),
             _q("stdout", "boolean", "Redirect the standard output stream."),
             _q("tty", "boolean", "Allocate a terminal.")],
    "attach": [_q("container", "string", "The container to attach to."),
               _q("stderr", "boolean", "Stream standard error."),
               _q("stdin", "boolean", "Pass standard input."),
               _q("stdout", "boolean", "Stream standard output."),
               _q("tty", "boolean", "The stdin is a terminal.")],
    "portforward": [_q("ports", "integer", "The pod ports to forward.")],
}


def _camel_group(group: str) -> str:
    if not group:
        return "Core"
    base = group.removesuffix(".k8s.io")
    return "".join(p[:1].upper() + p[1:] for p in base.replace("-", ".").split("."))


def _op_id(verb: str, res: ResourceInfo, *, sub: str = "", all_namespaces: bool = False) -> str:
    scope = "Namespaced" if res.namespaced and not all_namespaces else ""
    suffix = "ForAllNamespaces" if all_namespaces else ""
    kind = res.kind + (sub[:1].upper() + sub[1:] if sub else "")
    return f"{verb}{_camel_group(res.group)}{res.version.capitalize()}{scope}{kind}{suffix}"


def _json_response(body_schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": body_schema}, "application/yaml": {"schema": body_schema}}}


_UNAUTHORIZED = {"description": "Unauthorized"}


def _operation(action: str, op_id: str, gvk: dict[str, str], tag: str, description: str,
               params: list[dict[str, Any]], responses: dict[str, Any],
               body: dict[str, Any] | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {
        "tags": [tag],
        "description": description,
        "operationId": op_id,
        "parameters": params,
        "responses": {**responses, "401": _UNAUTHORIZED},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk,
    }
    if body is not None:
        op["requestBody"] = body
    return op


def _body(schema_name: str) -> dict[str, Any]:
    return {"content": {"*/*": {"schema": _ref(schema_name)}}, "required": True}


def _patch_body() -> dict[str, Any]:
    return {"content": {ct: {"schema": _ref(PATCH_SCHEMA)} for ct in PATCH_CONTENT_TYPES},
            "required": True}


def _tag(res: ResourceInfo) -> str:
    return f"{_camel_group(res.group).lower()}_{res.version}"


def _object_ops(res: ResourceInfo, schema_name: str, gvk: dict[str, str], verbs: tuple[str, ...],
                sub: str = "") -> dict[str, Any]:
    """get/put/patch/delete of one object (or of one object's status/scale subresource)."""
    what = f"{sub} of the specified {res.kind}" if sub else f"the specified {res.kind}"
    tag = _tag(res)
    ops: dict[str, Any] = {}
    if "get" in verbs:
        ops["get"] = _operation("get", _op_id("read", res, sub=sub), gvk, tag, f"read {what}",
                                [_PRETTY], {"200": _json_response(_ref(schema_name))})
    if "update" in verbs:
        ops["put"] = _operation("put", _op_id("replace", res, sub=sub), gvk, tag, f"replace {what}",
                                [_PRETTY, _DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION],
                                {"200": _json_response(_ref(schema_name)),
                                 "201": _json_response(_ref(schema_name), "Created")},
                                _body(schema_name))
    if "patch" in verbs:
        ops["patch"] = _operation("patch", _op_id("patch", res, sub=sub), gvk, tag,
                                  f"partially update {what}",
                                  [_PRETTY, _DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION, _FORCE],
                                  {"200": _json_response(_ref(schema_name)),
                                   "201": _json_response(_ref(schema_name), "Created")},
                                  _patch_body())
    if "delete" in verbs and not sub:
        ops["delete"] = _operation("delete", _op_id("delete", res), gvk, tag, f"delete {what}",
                                   [_PRETTY, *_DELETE_PARAMS],
                                   {"200": _json_response(_ref(schema_name)),
                                    "202": _json_response(_ref(schema_name), "Accepted")},
                                   {"content": {"*/*": {"schema": _ref(DELETE_OPTIONS_SCHEMA)}}})
    return ops


def _collection_ops(res: ResourceInfo, schema_name: str, list_schema: str, gvk: dict[str, str]
                    ) -> dict[str, Any]:
    tag = _tag(res)
    ops: dict[str, Any] = {}
    if "list" in res.verbs:
        ops["get"] = _operation("list", _op_id("list", res), gvk, tag,
                                f"list or watch objects of kind {res.kind}",
                                [_PRETTY, *_LIST_PARAMS], {"200": _json_response(_ref(list_schema))})
    if "create" in res.verbs:
        ops["post"] = _operation("post", _op_id("create", res), gvk, tag, f"create a {res.kind}",
                                 [_PRETTY, _DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION],
                                 {"200": _json_response(_ref(schema_name)),
                                  "201": _json_response(_ref(schema_name), "Created"),
                                  "202": _json_response(_ref(schema_name), "Accepted")},
                                 _body(schema_name))
    if "deletecollection" in res.verbs:
        ops["delete"] = _operation("deletecollection", _op_id("deletecollection", res), gvk, tag,
                                   f"delete collection of {res.kind}",
                                   [_PRETTY, *_DELETE_PARAMS, *_LIST_PARAMS],
                                   {"200": _json_response(_ref(STATUS_SCHEMA))},
                                   {"content": {"*/*": {"schema": _ref(DELETE_OPTIONS_SCHEMA)}}})
    return ops


def _sub_ops(res: ResourceInfo, sub: Subresource) -> dict[str, Any] | None:
    """Operations of a subresource, or None for one without a published schema."""
    if not sub.kind:  # status: the parent kind
        g, v, k = res.group, res.version, res.kind
    else:
        g, v, k = sub.group, sub.version, sub.kind
    gvk = {"group": g, "version": v, "kind": k}
    tag = _tag(res)
    if sub.name in ("status", "scale"):
        return _object_ops(res, definition_name(g, v, k), gvk, sub.verbs, sub=sub.name)
    if sub.name in _CONNECT_PARAMS:
        ops: dict[str, Any] = {}
        params = [_PRETTY, *_CONNECT_PARAMS[sub.name]] if sub.name == "log" else _CONNECT_PARAMS[sub.name]
        if sub.name == "log":
            text = {"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}}
            ops["get"] = _operation("get", _op_id("read", res, sub="log"), gvk, tag,
                                    f"read log of the specified {res.kind}", params, {"200": text})
            return ops
        text = {"description": "OK", "content": {"*/*": {"schema": {"type": "string"}}}}
        for verb, method in (("get", "get"), ("create", "post")):
            if verb in sub.verbs:
                prefix = "connect" + method.capitalize()
                ops[method] = _operation("connect", _op_id(prefix, res, sub=sub.name), gvk, tag,
                                         f"connect {method.upper()} requests to {sub.name} of {res.kind}",
                                         params, {"200": text})
        return ops
    if "create" in sub.verbs:  # binding, eviction: a POST of a body of the response kind
        try:
            schema_name = definition_name(g, v, k)
        except KeyError:
            return None
        return {"post": _operation("post", _op_id("create", res, sub=sub.name), gvk, tag,
                                   f"create {sub.name} of a {res.kind}",
                                   [_PRETTY, _DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION],
                                   {"200": _json_response(_ref(schema_name)),
                                    "201": _json_response(_ref(schema_name), "Created"),
                                    "202": _json_response(_ref(schema_name), "Accepted")},
                                   _body(schema_name))}
    return None


def _paths(group: str, version: str) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for res in RESOURCES:
        if (res.group, res.version) != (group, version):
            continue
        gvk = {"group": res.group, "version": res.version, "kind": res.kind}
        schema_name = definition_name(res.group, res.version, res.kind)
        list_schema = definition_name(res.group, res.version, res.list_kind)
        prefix = res.url_prefix
        common = [_path_param("name", f"name of the {res.kind}")]
        if res.namespaced:
            ns = _path_param("namespace", "object name and auth scope, such as for teams and projects")
            collection = f"{prefix}/namespaces/{{namespace}}/{res.plural}"
            common.append(ns)
            coll_params = [ns]
        else:
            collection = f"{prefix}/{res.plural}"
            coll_params = []
        paths[collection] = {**_collection_ops(res, schema_name, list_schema, gvk), "parameters": coll_params}
        item = f"{collection}/{{name}}"
        paths[item] = {**_object_ops(res, schema_name, gvk, res.verbs), "parameters": common}
        for sub in res.subresources:
            ops = _sub_ops(res, sub)
            if ops:
                paths[f"{item}/{sub.name}"] = {**ops, "parameters": common}
        if res.namespaced and "list" in res.verbs:
            op = _operation("list", _op_id("list", res, all_namespaces=True), gvk, _tag(res),
                            f"list or watch objects of kind {res.kind}", [_PRETTY, *_LIST_PARAMS],
                            {"200": _json_response(_ref(list_schema))})
            paths[f"{prefix}/{res.plural}"] = {"get": op, "parameters": []}
    return dict(sorted(paths.items()))


# ---------------------------------------------------------------------------------------------
# Documents


def _key(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _parse_gv(gv: str) -> tuple[str, str]:
    """``api/v1``, ``apis/apps/v1``, ``v1`` or ``apps/v1`` (leading slash allowed) to (group, version)."""
    parts = [p for p in gv.strip("/").split("/") if p]
    if parts[:1] == ["api"] and len(parts) == 2:
        return "", parts[1]
    if parts[:1] == ["apis"] and len(parts) == 3:
        return parts[1], parts[2]
    if len(parts) == 1:
        return "", parts[0]
    if len(parts) == 2:
        return parts[0], parts[1]
    raise errors.NotFound("the server could not find the requested resource")


@functools.cache
def _document(group: str, version: str) -> bytes:
    paths = _paths(group, version)
    roots: set[str] = set()
    _refs(paths, roots)
    defs = _definitions()
    schemas = {name: _convert(defs[name]) for name in _closure(
        {r.removeprefix(_REF_PREFIX) for r in roots})}
    doc = {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "Kubernetes", "version": _SCHEMA_RELEASE},
        "paths": paths,
        "components": {"schemas": schemas},
    }
    return orjson.dumps(doc)


def document(gv: str) -> bytes:
    """The OpenAPI 3.0 document of one group-version, serialized; NotFound if it is not served."""
    group, version = _parse_gv(gv)
    if (group, version) not in group_versions():
        raise errors.NotFound("the server could not find the requested resource")
    return _document(group, version)


def document_hash(gv: str) -> str:
    """The content hash a client caches ``document(gv)`` by (the ``hash`` query of its URL)."""
    return _hash(document(gv))


@functools.cache
def _hash(body: bytes) -> str:
    return hashlib.sha512(body).hexdigest().upper()


@functools.cache
def _index() -> bytes:
    paths = {}
    for group, version in group_versions():
        key = _key(group, version)
        paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={document_hash(key)}"}
    return orjson.dumps({"paths": paths})


def index() -> dict[str, Any]:
    """The ``/openapi/v3`` discovery document: each group-version's URL, carrying its hash."""
    return orjson.loads(_index())
