"""``navctl get``: server-side Tables (``-o wide``, ``-A``, ``--show-labels``, ``-L``), objects
(``-o yaml|json|name|jsonpath=|custom-columns=``) and ``-w`` watches that print a row per event."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from api import errors
from api.registry import ResourceInfo
from cli import jsonpath, manifests
from cli.context import CLIError, Ctx, Failed, info_for, kind_name, parse_duration, split_targets
from cli.printing import TABLE_ACCEPT, TableView, as_list, layout, to_json, to_yaml, widths_of, with_type
from client.rest import Client, Watch

B = argparse.BooleanOptionalAction
OUTPUTS = "custom-columns, json, jsonpath, name, wide, yaml"


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("get", parents=[common], help="Display one or many resources")
    p.add_argument("targets", nargs="*", metavar="TYPE[.GROUP][,TYPE...] [NAME...] | TYPE/NAME")
    p.add_argument("-o", "--output", default="")
    p.add_argument("-l", "--selector")
    p.add_argument("--field-selector")
    p.add_argument("-A", "--all-namespaces", action=B, default=False)
    p.add_argument("-w", "--watch", action=B, default=False)
    p.add_argument("--watch-only", action=B, default=False)
    p.add_argument("--show-labels", action=B, default=False)
    p.add_argument("-L", "--label-columns", action="append", default=[])
    p.add_argument("--no-headers", action=B, default=False)
    p.add_argument("-f", "--filename", action="append", default=[])
    p.add_argument("-R", "--recursive", action=B, default=False)
    p.add_argument("--ignore-not-found", action=B, default=False)
    p.add_argument("--chunk-size", type=int, default=500)
    p.add_argument("--show-managed-fields", action=B, default=False)
    p.set_defaults(func=run)


def output_mode(spec: str) -> tuple[str, str]:
    if spec in ("", "wide", "yaml", "json", "name"):
        return spec or "table", ""
    for prefix in ("jsonpath=", "custom-columns="):
        if spec.startswith(prefix):
            return prefix[:-1], spec[len(prefix):]
    if spec in ("jsonpath", "custom-columns"):
        raise CLIError(f"{spec} template format specified but no {spec} template given")
    raise CLIError(f'unable to match a printer suitable for the output format "{spec}", allowed formats '
                   f'are: {OUTPUTS}')


# -------------------------------------------------------------------------- fetching

async def fetch_table(client: Client, info: ResourceInfo, ns: str | None, name: str | None = None, *,
                      label_selector: str | None = None, field_selector: str | None = None,
                      chunk: int = 500) -> dict[str, Any]:
    """One Table for an object or a whole (paged) list; plain objects become a NAME/AGE Table."""
    headers = {"Accept": TABLE_ACCEPT}
    if name is not None:
        doc = await client.request("GET", client.path(info, ns, name), headers=headers)
        return _ensure_table(doc)
    params: dict[str, str] = {"limit": str(chunk)}
    if label_selector:
        params["labelSelector"] = label_selector
    if field_selector:
        params["fieldSelector"] = field_selector
    table: dict[str, Any] | None = None
    while True:
        page = _ensure_table(await client.request("GET", client.path(info, ns), params=params, headers=headers))
        if table is None:
            table = page
        else:
            table["rows"] += page.get("rows") or []
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            break
        params = {"limit": str(chunk), "continue": token}
    assert table is not None
    table.setdefault("rows", [])
    return table


def _ensure_table(doc: dict[str, Any]) -> dict[str, Any]:
    if doc.get("kind") == "Table":
        doc.setdefault("rows", [])
        return doc
    from cli.printing import age
    items = doc.get("items") if isinstance(doc.get("items"), list) else [doc]
    return {"kind": "Table", "metadata": doc.get("metadata") or {},
            "columnDefinitions": [{"name": "Name", "format": "name", "priority": 0},
                                  {"name": "Age", "format": "", "priority": 0}],
            "rows": [{"cells": [(o.get("metadata") or {}).get("name", ""),
                                age((o.get("metadata") or {}).get("creationTimestamp"))],
                      "object": {"metadata": o.get("metadata") or {}}} for o in items]}


# -------------------------------------------------------------------------- the command

async def _targets(ctx: Ctx) -> list[tuple[ResourceInfo, list[str], str | None]]:
    """(resource, names, namespace) groups from the arguments or from ``-f``."""
    a = ctx.args
    if a.filename:
        if a.targets:
            raise CLIError("when paths are specified, resource arguments are not allowed")
        out: list[tuple[ResourceInfo, list[str], str | None]] = []
        for m in await manifests.load(a.filename, a.recursive, ctx.stdin):
            info = info_for(m.obj, m.source)
            meta = m.obj.get("metadata") or {}
            ns = (meta.get("namespace") or await ctx.namespace()) if info.namespaced else None
            out.append((info, [meta.get("name", "")], ns))
        return out
    if not a.targets:
        ctx.warn('You must specify the type of resource to get. Use "navctl api-resources" for a complete '
                 'list of supported resources.\n')
        raise CLIError("Required resource not specified.")
    groups = split_targets(a.targets)
    ns_all = a.all_namespaces
    if ns_all and any(names for _, names in groups):
        raise CLIError("a resource cannot be retrieved by name across all namespaces")
    ns = None if ns_all else await ctx.namespace()
    return [(info, names, ns if info.namespaced else None) for info, names in groups]


async def run(ctx: Ctx) -> int:
    a = ctx.args
    mode, template = output_mode(a.output)
    groups = await _targets(ctx)
    client = await ctx.client()
    if a.watch or a.watch_only:
        if len(groups) != 1 or len(groups[0][1]) > 1:
            raise CLIError("you may only specify a single resource type" if len(groups) != 1
                           else "watch is only supported on individual resources and resource collections, "
                                "but multiple resources were found")
        return await _watch(ctx, client, mode, template, *groups[0])
    failed = False
    if mode in ("table", "wide"):
        failed = await _print_tables(ctx, client, groups, wide=mode == "wide")
    else:
        objects: list[dict[str, Any]] = []
        single = len(groups) == 1 and len(groups[0][1]) == 1 and not a.filename
        for info, names, ns in groups:
            if names:
                for name in names:
                    try:
                        objects.append(with_type(await client.get(info, name, ns), info))
                    except errors.NotFound as e:
                        if not a.ignore_not_found:
                            ctx.warn(f"Error from server (NotFound): {e.message}")
                            failed = True
            else:
                lst = await client.list_all(info, ns, label_selector=a.selector, field_selector=a.field_selector,
                                            page_size=a.chunk_size)
                objects += [with_type(o, info) for o in lst.get("items") or []]
        if not a.show_managed_fields:
            objects = [hide_managed_fields(o) for o in objects]
        if mode == "name":
            for o in objects:
                ctx.print(kind_name(info_for(o), (o.get("metadata") or {}).get("name", "")))
        elif objects or not single:
            doc = objects[0] if single and objects else as_list(objects)
            ctx.out.write(_render(mode, template, doc))
    return 1 if failed else 0


def _any_names(groups: list[tuple[ResourceInfo, list[str], str | None]]) -> bool:
    return any(names for _, names, _ in groups)


def _no_resources(ctx: Ctx, groups: list[tuple[ResourceInfo, list[str], str | None]]) -> None:
    ns = next((g[2] for g in groups if g[2]), None)
    if ns and not ctx.args.all_namespaces:
        ctx.warn(f"No resources found in {ns} namespace.")
    else:
        ctx.warn("No resources found")


def hide_managed_fields(obj: dict[str, Any]) -> dict[str, Any]:
    """kubectl leaves metadata.managedFields out of what it prints unless asked."""
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        obj = {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
    return obj


def _render(mode: str, template: str, doc: dict[str, Any]) -> str:
    if mode == "yaml":
        return to_yaml(doc)
    if mode == "json":
        return to_json(doc)
    if mode == "jsonpath":
        try:
            return jsonpath.render(template, doc)
        except jsonpath.JSONPathError as e:
            raise CLIError(f'error parsing jsonpath {template}, {e}') from None
    if mode == "custom-columns":
        return _custom_columns(template, doc)
    raise CLIError(f"unknown output {mode}")


def _custom_columns(spec: str, doc: dict[str, Any]) -> str:
    cols = []
    for part in spec.split(","):
        if ":" not in part:
            raise CLIError(f'unexpected custom-columns spec: {part}, expected <header>:<json-path-expr>')
        head, path = part.split(":", 1)
        path = path.strip()
        if not path.startswith("{"):
            path = "{" + (path if path.startswith(".") else "." + path) + "}"
        cols.append((head, path))
    items = doc["items"] if doc.get("kind") == "List" else [doc]
    rows = [[h for h, _ in cols]]
    for item in items:
        rows.append([jsonpath.render(p, item) or "<none>" for _, p in cols])
    return "".join(line + "\n" for line in layout(rows))


async def _print_tables(ctx: Ctx, client: Client, groups: list[tuple[ResourceInfo, list[str], str | None]],
                        *, wide: bool) -> bool:
    a = ctx.args
    multi = len(groups) > 1 and not a.filename
    printed = False
    failed = False
    for info, names, ns in groups:
        tables: list[dict[str, Any]] = []
        if names:
            for name in names:
                try:
                    tables.append(await fetch_table(client, info, ns, name))
                except errors.NotFound as e:
                    if not a.ignore_not_found:
                        ctx.warn(f"Error from server (NotFound): {e.message}")
                        failed = True
        else:
            tables.append(await fetch_table(client, info, ns, label_selector=a.selector,
                                            field_selector=a.field_selector, chunk=a.chunk_size))
        rows = [r for t in tables for r in t.get("rows") or []]
        if not rows:
            continue
        prefix = kind_name(info, "") if multi else ""
        view = TableView(wide=wide, all_namespaces=a.all_namespaces and info.namespaced,
                         show_labels=a.show_labels, label_columns=a.label_columns, name_prefix=prefix)
        view.set_columns(tables[0])
        lines = [] if a.no_headers else [view.header()]
        lines += [view.row(r) for r in rows]
        if printed:
            ctx.print("")
        for line in layout(lines):
            ctx.print(line)
        printed = True
    if not printed and not failed and not _any_names(groups):
        _no_resources(ctx, groups)
    return failed


async def _watch(ctx: Ctx, client: Client, mode: str, template: str, info: ResourceInfo, names: list[str],
                 ns: str | None) -> int:
    a = ctx.args
    name = names[0] if names else None
    field_selector = a.field_selector
    if name:
        by_name = f"metadata.name={name}"
        field_selector = f"{field_selector},{by_name}" if field_selector else by_name
    timeout = parse_duration(ctx.opt("request_timeout"))
    table_mode = mode in ("table", "wide")
    view = TableView(wide=mode == "wide", all_namespaces=a.all_namespaces and info.namespaced,
                     show_labels=a.show_labels, label_columns=a.label_columns)
    widths: list[int] = []
    header_done = False

    def emit(table: dict[str, Any]) -> None:
        nonlocal widths, header_done
        view.set_columns(table)
        rows = [view.row(r) for r in table.get("rows") or []]
        if not rows:
            return
        block = rows if header_done or a.no_headers else [view.header(), *rows]
        widths = [max(x, y) for x, y in zip(widths_of(block), widths + [0] * 64, strict=False)]
        for line in layout(block, widths):
            ctx.print(line)
        header_done = True

    if table_mode:
        table = await fetch_table(client, info, ns, label_selector=a.selector, field_selector=field_selector)
        rv = (table.get("metadata") or {}).get("resourceVersion")
        if name and not table["rows"]:
            raise errors.not_found(info.plural, name, info.group)
        if not a.watch_only:
            if table["rows"]:
                emit(table)
            else:
                _no_resources(ctx, [(info, [], ns)])
    else:
        lst = await client.list(info, ns, label_selector=a.selector, field_selector=field_selector)
        rv = (lst.get("metadata") or {}).get("resourceVersion")
        if not a.watch_only:
            for o in lst.get("items") or []:
                _emit_object(ctx, mode, template, with_type(o, info))

    async def stream() -> None:
        nonlocal rv
        while True:
            params: dict[str, str] = {"watch": "true", "allowWatchBookmarks": "true"}
            if rv:
                params["resourceVersion"] = rv
            if a.selector:
                params["labelSelector"] = a.selector
            if field_selector:
                params["fieldSelector"] = field_selector
            if timeout:
                params["timeoutSeconds"] = str(max(1, int(timeout)))
            w = Watch(client, client.path(info, ns), params, int(timeout) if timeout else None,
                      {"Accept": TABLE_ACCEPT} if table_mode else None)
            async with w:
                async for etype, obj in w:
                    if etype == "BOOKMARK":
                        continue
                    if table_mode:
                        emit(obj)
                    else:
                        _emit_object(ctx, mode, template, with_type(obj, info))
                rv = w.resource_version or rv
            if timeout:
                return

    try:
        if timeout:
            await asyncio.wait_for(stream(), timeout)
        else:
            await stream()
    except TimeoutError:
        pass
    except errors.Gone as e:
        ctx.warn(f"error: watch of {info.plural} ended: {e.message}")
        raise Failed(1) from None
    return 0


def _emit_object(ctx: Ctx, mode: str, template: str, obj: dict[str, Any]) -> None:
    if not ctx.args.show_managed_fields:
        obj = hide_managed_fields(obj)
    if mode == "name":
        ctx.print(kind_name(info_for(obj), (obj.get("metadata") or {}).get("name", "")))
    elif mode == "yaml":
        ctx.out.write("---\n" + to_yaml(obj))
    else:
        ctx.out.write(_render(mode, template, obj))
    ctx.out.flush()
