"""Verbs that change one field family of live objects: ``patch``, ``label``, ``annotate``,
``scale`` and ``edit`` (which round-trips the object through ``$KUBE_EDITOR`` / ``$EDITOR``)."""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import tempfile
from pathlib import Path
from typing import Any

import yaml

from api import errors
from api.patch import create_two_way_merge_patch, json_equal
from api.registry import ResourceInfo
from api.schema import merge_info
from cli import manifests
from cli.context import CLIError, Ctx, Failed, info_for, kind_name, split_targets
from cli.printing import to_json, to_yaml, with_type
from client.rest import Client

B = argparse.BooleanOptionalAction


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("patch", parents=[common], help="Update fields of a resource")
    p.add_argument("targets", nargs="*")
    p.add_argument("-p", "--patch", default=None)
    p.add_argument("--patch-file", default=None)
    p.add_argument("--type", default="strategic", choices=("strategic", "merge", "json"))
    p.add_argument("--subresource", default=None)
    p.add_argument("-f", "--filename", action="append", default=[])
    p.add_argument("--dry-run", nargs="?", const="client", default="none", choices=("none", "client", "server"))
    p.add_argument("-o", "--output", default="")
    p.set_defaults(func=run_patch)

    for verb, what in (("label", "labels"), ("annotate", "annotations")):
        q = sub.add_parser(verb, parents=[common], help=f"Update the {what} on a resource")
        q.add_argument("args", nargs="*")
        q.add_argument("--overwrite", action=B, default=False)
        q.add_argument("-l", "--selector")
        q.add_argument("--all", action=B, default=False)
        q.add_argument("-A", "--all-namespaces", action=B, default=False)
        q.add_argument("-f", "--filename", action="append", default=[])
        q.add_argument("--list", action=B, default=False)
        q.add_argument("--resource-version", default=None)
        q.add_argument("--dry-run", nargs="?", const="client", default="none",
                       choices=("none", "client", "server"))
        q.add_argument("-o", "--output", default="")
        q.set_defaults(func=run_meta, field=what, verb=verb)

    s = sub.add_parser("scale", parents=[common], help="Set a new size for a deployment, replica set or stateful set")
    s.add_argument("targets", nargs="*")
    s.add_argument("--replicas", type=int, required=True)
    s.add_argument("--current-replicas", type=int, default=-1)
    s.add_argument("--resource-version", default=None)
    s.add_argument("-l", "--selector")
    s.add_argument("--all", action=B, default=False)
    s.add_argument("-f", "--filename", action="append", default=[])
    s.add_argument("--dry-run", nargs="?", const="client", default="none", choices=("none", "client", "server"))
    s.set_defaults(func=run_scale)

    e = sub.add_parser("edit", parents=[common], help="Edit a resource on the server")
    e.add_argument("targets", nargs="*")
    e.add_argument("-f", "--filename", action="append", default=[])
    e.add_argument("-o", "--output", default="yaml", choices=("yaml", "json"))
    e.set_defaults(func=run_edit)


async def objects_named(ctx: Ctx, client: Client, targets: list[str], *, filenames: list[str] | None = None,
                        selector: str | None = None, all_: bool = False, all_namespaces: bool = False
                        ) -> list[tuple[ResourceInfo, str, str | None]]:
    """(resource, name, namespace) for TYPE NAME..., TYPE/NAME..., -f, or TYPE with -l/--all."""
    out: list[tuple[ResourceInfo, str, str | None]] = []
    if filenames:
        for m in await manifests.load(filenames, False, ctx.stdin):
            info = info_for(m.obj, m.source)
            meta = m.obj.get("metadata") or {}
            ns = (meta.get("namespace") or await ctx.namespace()) if info.namespaced else None
            out.append((info, meta.get("name", ""), ns))
        return out
    if not targets:
        raise CLIError("You must provide one or more resources by argument or filename.")
    ns = None if all_namespaces else await ctx.namespace()
    for info, names in split_targets(targets):
        gns = ns if info.namespaced else None
        if names:
            out += [(info, n, gns) for n in names]
        elif selector or all_:
            lst = await client.list_all(info, gns, label_selector=selector)
            out += [(info, o["metadata"]["name"], o["metadata"].get("namespace") if info.namespaced else None)
                    for o in lst.get("items") or []]
        else:
            raise CLIError("resource(s) were provided, but no name was specified")
    return out


def yaml_problem(e: yaml.YAMLError) -> str:
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or str(e)
    return f"yaml: line {mark.line + 1}: {problem}" if mark is not None else f"yaml: {problem}"


def _suffix(dry_run: str) -> str:
    return {"client": " (dry run)", "server": " (server dry run)"}.get(dry_run, "")


def _emit(ctx: Ctx, info: ResourceInfo, name: str, obj: dict[str, Any] | None, text: str) -> None:
    out = ctx.opt("output", "")
    if out == "name":
        ctx.print(kind_name(info, name))
    elif out in ("yaml", "json") and obj is not None:
        doc = with_type(obj, info)
        ctx.out.write(to_yaml(doc) if out == "yaml" else to_json(doc))
    else:
        ctx.print(f"{kind_name(info, name)} {text}")


# -------------------------------------------------------------------------- patch

async def run_patch(ctx: Ctx) -> int:
    a = ctx.args
    if a.patch is None and a.patch_file is None:
        raise CLIError("must specify --patch or --patch-file containing the contents of the patch")
    text = a.patch if a.patch is not None else await asyncio.to_thread(Path(a.patch_file).read_text)
    try:
        body = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise CLIError(f'unable to parse "{text}": {yaml_problem(e)}') from None
    if a.type == "json" and not isinstance(body, list) or a.type != "json" and not isinstance(body, dict):
        raise CLIError(f'unable to parse "{text}": the patch must be a JSON '
                       f'{"array" if a.type == "json" else "object"}')
    client = await ctx.client()
    for info, name, ns in await objects_named(ctx, client, a.targets, filenames=a.filename):
        before = await client.get(info, name, ns) if a.subresource is None else None
        if a.dry_run == "client":
            _emit(ctx, info, name, before, "patched" + _suffix("client"))
            continue
        after = await client.patch(info, name, body, ns, patch_type=a.type, subresource=a.subresource,
                                   dry_run=a.dry_run == "server")
        same = before is not None and (before.get("metadata") or {}).get("resourceVersion") == \
            (after.get("metadata") or {}).get("resourceVersion")
        _emit(ctx, info, name, after, ("patched (no change)" if same else "patched") + _suffix(a.dry_run))
    return 0


# -------------------------------------------------------------------------- label / annotate

def _split_changes(args: list[str], field: str) -> tuple[list[str], dict[str, str], list[str]]:
    targets: list[str] = []
    add: dict[str, str] = {}
    remove: list[str] = []
    for arg in args:
        if "=" in arg:
            k, v = arg.split("=", 1)
            if not k:
                raise CLIError(f"invalid {field[:-1]} spec: {arg}")
            add[k] = v
        elif arg.endswith("-") and len(arg) > 1:
            remove.append(arg[:-1])
        else:
            targets.append(arg)
    if not add and not remove:
        raise CLIError(f"at least one {field[:-1]} update is required")
    for k in remove:
        if k in add:
            raise CLIError(f"can not both modify and remove {field[:-1]} in the same command")
    return targets, add, remove


async def run_meta(ctx: Ctx) -> int:
    a = ctx.args
    field: str = a.field
    targets, add, remove = _split_changes(a.args, field)
    client = await ctx.client()
    items = await objects_named(ctx, client, targets, filenames=a.filename, selector=a.selector, all_=a.all,
                                all_namespaces=a.all_namespaces)
    failed = False
    for info, name, ns in items:
        live = await client.get(info, name, ns)
        current = dict((live.get("metadata") or {}).get(field) or {})
        change: dict[str, Any] = {}
        for k, v in add.items():
            if k in current and current[k] != v and not a.overwrite:
                ctx.warn(f"error: '{k}' already has a value ({current[k]}), and --overwrite is false")
                failed = True
                change = {}
                break
            if current.get(k) != v:
                change[k] = v
        else:
            for k in remove:
                if k in current:
                    change[k] = None
                elif a.verb == "label":
                    ctx.warn(f'label "{k}" not found.')
        if failed:
            continue
        if not change:
            # kubectl says "not labeled" but reports an annotate that changed nothing as done.
            _emit(ctx, info, name, live, "not labeled" if a.verb == "label" else "annotated")
            continue
        patch: dict[str, Any] = {"metadata": {field: change}}
        if a.resource_version:
            patch["metadata"]["resourceVersion"] = a.resource_version
        if a.dry_run == "client":
            out = live
        else:
            out = await client.patch(info, name, patch, ns, patch_type="merge", dry_run=a.dry_run == "server")
        if a.verb == "label":
            verb = "unlabeled" if all(v is None for v in change.values()) else "labeled"
        else:
            verb = "annotated"
        _emit(ctx, info, name, out, verb + _suffix(a.dry_run))
    if failed:
        raise Failed(1)
    return 0


# -------------------------------------------------------------------------- scale

async def run_scale(ctx: Ctx) -> int:
    a = ctx.args
    if a.replicas < 0:
        raise CLIError("The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0")
    client = await ctx.client()
    items = await objects_named(ctx, client, a.targets, filenames=a.filename, selector=a.selector, all_=a.all)
    for info, name, ns in items:
        if info.subresource("scale") is None:
            raise CLIError(f"no scaler has been implemented for {{{info.group} {info.kind}}}")
        if a.current_replicas >= 0 or a.resource_version:
            scale = await client.get_scale(info, name, ns)
            have = (scale.get("spec") or {}).get("replicas", 0)
            if a.current_replicas >= 0 and have != a.current_replicas:
                raise CLIError(f"Expected replicas to be {a.current_replicas}, was {have}")
            if a.resource_version:
                scale["metadata"]["resourceVersion"] = a.resource_version
            scale.setdefault("spec", {})["replicas"] = a.replicas
            if a.dry_run != "client":
                await client.update(info, scale, ns, subresource="scale", dry_run=a.dry_run == "server")
        elif a.dry_run == "client":
            await client.get(info, name, ns)
        else:
            await client.patch(info, name, {"spec": {"replicas": a.replicas}}, ns, patch_type="merge",
                               subresource="scale", dry_run=a.dry_run == "server")
        ctx.print(f"{kind_name(info, name)} scaled{_suffix(a.dry_run)}")
    return 0


# -------------------------------------------------------------------------- edit

HEADER = ("# Please edit the object below. Lines beginning with a '#' will be ignored,\n"
          "# and an empty file will abort the edit. If an error occurs while saving this file will be\n"
          "# reopened with the relevant failures.\n#\n")


def editor_command() -> list[str]:
    editor = os.environ.get("KUBE_EDITOR") or os.environ.get("EDITOR") or "vi"
    return shlex.split(editor)


async def run_edit(ctx: Ctx) -> int:
    a = ctx.args
    client = await ctx.client()
    items = await objects_named(ctx, client, a.targets, filenames=a.filename)
    for info, name, ns in items:
        live = with_type(await client.get(info, name, ns), info)
        text = HEADER + (to_yaml(live) if a.output == "yaml" else to_json(live))
        fd, path = tempfile.mkstemp(prefix=f"navctl-edit-{name}-", suffix="." + a.output)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(text)
            proc = await asyncio.create_subprocess_exec(*editor_command(), path)
            code = await proc.wait()
            if code != 0:
                raise CLIError(f"there was a problem with the editor {' '.join(editor_command())!r}")
            edited_text = await asyncio.to_thread(Path(path).read_text)
        finally:
            os.unlink(path)
        body = "\n".join(line for line in edited_text.splitlines() if not line.lstrip().startswith("#"))
        if not body.strip():
            ctx.warn("Edit cancelled, saved file was empty.")
            continue
        try:
            edited = yaml.safe_load(body)
        except yaml.YAMLError as e:
            raise CLIError(f"the edited file had a syntax error: {e}") from None
        if not isinstance(edited, dict):
            raise CLIError("the edited file had a syntax error: not an object")
        if json_equal(edited, live):
            ctx.warn("Edit cancelled, no changes made.")
            continue
        emeta = edited.get("metadata") or {}
        if edited.get("kind") != live.get("kind") or emeta.get("name") != name:
            raise CLIError("At least one of apiVersion, kind and name was changed")
        group, _, version = info.api_version.rpartition("/")
        patch = create_two_way_merge_patch(live, edited, merge_info(group, version, info.kind))
        try:
            await client.patch(info, name, patch, ns, patch_type="strategic")
        except errors.StatusError as e:
            ctx.warn(f'error: {kind_name(info, name)} could not be patched: {e.message}')
            raise Failed(1) from None
        ctx.print(f"{kind_name(info, name)} edited")
    return 0
