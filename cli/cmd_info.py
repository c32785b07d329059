"""Cluster and schema information: ``explain``, ``api-resources``, ``cluster-info`` and ``version``.

``explain`` reads the Kubernetes 1.32 schemas that ``api.schema`` ships, so it works offline;
``api-resources`` asks the server's discovery documents, as kubectl does.
"""

from __future__ import annotations

import argparse
import textwrap
from typing import Any

from api import registry, schema
from cli.context import CLIError, Ctx, resolve
from cli.printing import layout, to_json, to_yaml

B = argparse.BooleanOptionalAction
CLIENT_VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.0-navctl.0.1.0", "platform": "linux/amd64"}


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    e = sub.add_parser("explain", parents=[common], help="Get the documentation of a resource or field")
    e.add_argument("path", metavar="TYPE[.FIELD...]")
    e.add_argument("--recursive", action=B, default=False)
    e.add_argument("--api-version", default=None)
    e.set_defaults(func=run_explain)

    r = sub.add_parser("api-resources", parents=[common], help="Print the supported API resources on the server")
    r.add_argument("-o", "--output", default="", choices=("", "wide", "name"))
    r.add_argument("--namespaced", action=B, default=None)
    r.add_argument("--api-group", default=None)
    r.add_argument("--no-headers", action=B, default=False)
    r.add_argument("--sort-by", default=None, choices=(None, "name", "kind"))
    r.set_defaults(func=run_api_resources)

    c = sub.add_parser("cluster-info", parents=[common], help="Display cluster information")
    c.set_defaults(func=run_cluster_info)

    v = sub.add_parser("version", parents=[common], help="Print the client and server version information")
    v.add_argument("--client", action=B, default=False)
    v.add_argument("-o", "--output", default="", choices=("", "yaml", "json"))
    v.set_defaults(func=run_version)


# -------------------------------------------------------------------------- explain

def _ref(prop: dict[str, Any]) -> str | None:
    ref = prop.get("$ref")
    return ref.rsplit("/", 1)[-1] if ref else None


def _types(prop: dict[str, Any]) -> list[str]:
    t = prop.get("type")
    if isinstance(t, list):
        return [x for x in t if x != "null"]
    return [t] if t else []


def type_name(prop: dict[str, Any]) -> str:
    ref = _ref(prop)
    if ref:
        defs = schema.definitions()
        target = defs.get(ref) or {}
        if "oneOf" in target and not target.get("properties"):
            return {"IntOrString": "IntOrString", "Quantity": "Quantity"}.get(ref.rsplit(".", 1)[-1], "string")
        if _types(target) in (["string"],):
            return "string"
        return ref.rsplit(".", 1)[-1]
    types = _types(prop)
    if "array" in types:
        return "[]" + type_name(prop.get("items") or {})
    if "object" in types:
        extra = prop.get("additionalProperties")
        if isinstance(extra, dict) and extra:
            return f"map[string]{type_name(extra)}"
        return "Object"
    if "oneOf" in prop:
        return "string"
    return types[0] if types else "Object"


def _resolve_schema(prop: dict[str, Any]) -> dict[str, Any]:
    """The object schema a field leads to (through $ref, array items and map values)."""
    seen = 0
    while seen < 10:
        seen += 1
        ref = _ref(prop)
        if ref:
            prop = schema.definitions().get(ref) or {}
            continue
        types = _types(prop)
        if "array" in types and isinstance(prop.get("items"), dict):
            prop = prop["items"]
            continue
        if "object" in types and not prop.get("properties") and isinstance(prop.get("additionalProperties"), dict):
            prop = prop["additionalProperties"]
            continue
        break
    return prop


def _wrap(text: str, indent: int) -> str:
    pad = " " * indent
    paras = [p for p in (text or "<empty>").split("\n")]
    out = []
    for para in paras:
        out.append(textwrap.fill(para, width=80, initial_indent=pad, subsequent_indent=pad,
                                 break_on_hyphens=False, break_long_words=False) if para else pad)
    return "\n".join(out)


def _fields(node: dict[str, Any]) -> list[tuple[str, dict[str, Any], bool]]:
    required = set(node.get("required") or [])
    return [(k, v, k in required) for k, v in sorted((node.get("properties") or {}).items())]


def _recursive(node: dict[str, Any], depth: int, out: list[str], trail: tuple[str, ...]) -> None:
    for name, prop, req in _fields(node):
        out.append(f"{'  ' * depth}{name}\t<{type_name(prop)}>{' -required-' if req else ''}")
        target = _resolve_schema(prop)
        ref = _ref(prop) or _ref(prop.get("items") or {}) or ""
        if target.get("properties") and ref not in trail and depth < 12:
            _recursive(target, depth + 1, out, (*trail, ref))


async def run_explain(ctx: Ctx) -> int:
    a = ctx.args
    parts = a.path.split(".")
    info = resolve(parts[0])
    if a.api_version:
        found = registry.for_kind(a.api_version, info.kind)
        if found is None:
            raise CLIError(f'couldn\'t find resource for "{a.api_version}, Kind={info.kind}"')
        info = found
    group, _, version = info.api_version.rpartition("/")
    name = schema.definition_name(group, version, info.kind)
    if name is None:
        raise CLIError(f"couldn't find resource for \"{info.api_version}, Kind={info.kind}\"")
    node = schema.definitions()[name]
    field_prop: dict[str, Any] | None = None
    for i, step in enumerate(parts[1:]):
        props = node.get("properties") or {}
        if step not in props:
            raise CLIError(f'field "{step}" does not exist' if i else f'field "{step}" does not exist')
        field_prop = props[step]
        node = _resolve_schema(field_prop)
    lines = [f"GROUP:      {group}"] if group else []
    lines += [f"KIND:       {info.kind}", f"VERSION:    {version}", ""]
    if field_prop is not None:
        lines += [f"FIELD: {parts[-1]} <{type_name(field_prop)}>", "", ""]
        desc = field_prop.get("description") or ""
        if _ref(field_prop) or _ref(field_prop.get("items") or {}):
            inner = node.get("description") or ""
            if inner and inner != desc:
                desc = (desc + "\n" + inner).strip()
    else:
        desc = node.get("description") or ""
    lines += ["DESCRIPTION:", _wrap(desc, 4), "    "]
    if node.get("properties"):
        lines.append("FIELDS:")
        if a.recursive:
            rec: list[str] = []
            _recursive(node, 1, rec, (name,))
            lines += rec
        else:
            for fname, prop, req in _fields(node):
                lines.append(f"  {fname}\t<{type_name(prop)}>{' -required-' if req else ''}")
                lines.append(_wrap(prop.get("description") or "<no description>", 4))
                lines.append("")
    lines.append("")
    ctx.out.write("\n".join(lines) + "\n")
    return 0


# -------------------------------------------------------------------------- api-resources

async def discovered(ctx: Ctx) -> list[dict[str, Any]]:
    """Every top-level resource the server announces, with its group-version."""
    client = await ctx.client()
    out: list[dict[str, Any]] = []
    gvs: list[str] = []
    core = await client.request("GET", "/api")
    gvs += list(core.get("versions") or [])
    groups = await client.request("GET", "/apis")
    for g in groups.get("groups") or []:
        pref = (g.get("preferredVersion") or {}).get("groupVersion")
        if pref:
            gvs.append(pref)
    for gv in gvs:
        path = f"/api/{gv}" if "/" not in gv else f"/apis/{gv}"
        doc = await client.request("GET", path)
        for r in doc.get("resources") or []:
            if "/" in r.get("name", ""):
                continue
            out.append({**r, "groupVersion": gv})
    return out


async def run_api_resources(ctx: Ctx) -> int:
    a = ctx.args
    resources = await discovered(ctx)
    if a.namespaced is not None:
        resources = [r for r in resources if bool(r.get("namespaced")) == a.namespaced]
    if a.api_group is not None:
        resources = [r for r in resources if (r["groupVersion"].split("/")[0] if "/" in r["groupVersion"] else "")
                     == a.api_group]
    # kubectl's order: groups as the server lists them (core first), names sorted within each.
    order = {gv: i for i, gv in enumerate(dict.fromkeys(r["groupVersion"] for r in resources))}
    resources.sort(key=lambda r: (order[r["groupVersion"]], r["name"]))
    if a.sort_by:
        resources.sort(key=lambda r: r.get(a.sort_by) or "")
    if a.output == "name":
        for r in resources:
            gv = r["groupVersion"]
            ctx.print(r["name"] + ("." + gv.split("/")[0] if "/" in gv else ""))
        return 0
    header = ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    if a.output == "wide":
        header += ["VERBS", "CATEGORIES"]
    rows = [] if a.no_headers else [header]
    for r in resources:
        row = [r["name"], ",".join(r.get("shortNames") or []), r["groupVersion"],
               "true" if r.get("namespaced") else "false", r.get("kind", "")]
        if a.output == "wide":
            row += [",".join(r.get("verbs") or []), ",".join(r.get("categories") or [])]
        rows.append(row)
    for line in layout(rows):
        ctx.print(line)
    return 0


# -------------------------------------------------------------------------- cluster-info, version

async def run_cluster_info(ctx: Ctx) -> int:
    client = await ctx.client()
    await client.request("GET", "/version")
    ctx.print(f"Kubernetes control plane is running at {client.server}")
    lst = await client.list("services", "kube-system", label_selector="kubernetes.io/cluster-service=true")
    for svc in lst.get("items") or []:
        meta = svc.get("metadata") or {}
        title = (meta.get("labels") or {}).get("kubernetes.io/name") or meta.get("name")
        for port in (svc.get("spec") or {}).get("ports") or [{}]:
            suffix = f":{port['name']}" if port.get("name") else ""
            ctx.print(f"{title} is running at {client.server}/api/v1/namespaces/kube-system/services/"
                      f"{meta.get('name')}{suffix}/proxy")
    return 0


async def run_version(ctx: Ctx) -> int:
    a = ctx.args
    doc: dict[str, Any] = {"clientVersion": dict(CLIENT_VERSION)}
    if not a.client:
        client = await ctx.client()
        doc["serverVersion"] = await client.request("GET", "/version")
    if a.output == "json":
        ctx.out.write(to_json(doc))
    elif a.output == "yaml":
        ctx.out.write(to_yaml(doc))
    else:
        ctx.print(f"Client Version: {CLIENT_VERSION['gitVersion']}")
        if "serverVersion" in doc:
            ctx.print(f"Server Version: {doc['serverVersion'].get('gitVersion', '')}")
    return 0
