"""``navctl apply -f``: client-side apply (the last-applied annotation and a three-way strategic
merge patch, as kubectl computes it) by default, ``--server-side`` apply, ``--dry-run``.

Per object it prints ``<kind>/<name> created|configured|unchanged|serverside-applied``; a failing
object does not stop the others, and any failure makes the exit code 1.
"""

from __future__ import annotations

import argparse
import copy
import json
from typing import Any

from api import errors
from api.patch import create_three_way_merge_patch
from api.registry import ResourceInfo
from api.schema import merge_info
from cli import manifests
from cli.context import CLIError, Ctx, Failed, info_for, kind_name
from cli.printing import as_list, to_json, to_yaml, with_type
from client.rest import Client

B = argparse.BooleanOptionalAction
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
CSA_MANAGER = "kubectl-client-side-apply"


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("apply", parents=[common], help="Apply a configuration to resources by file or stdin")
    add_file_flags(p)
    p.add_argument("--server-side", action=B, default=False)
    p.add_argument("--force-conflicts", action=B, default=False)
    p.add_argument("--field-manager", default=None)
    p.add_argument("-o", "--output", default="")
    p.set_defaults(func=run)


def add_file_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--filename", action="append", default=[], required=True)
    p.add_argument("-R", "--recursive", action=B, default=False)
    p.add_argument("--dry-run", nargs="?", const="client", default="none", choices=("none", "client", "server"))
    p.add_argument("--validate", nargs="?", const="strict", default="strict",
                   choices=("true", "false", "strict", "warn", "ignore"))


def field_validation(value: str) -> str:
    return {"true": "Strict", "strict": "Strict", "warn": "Warn", "false": "Ignore", "ignore": "Ignore"}[value]


def dry_suffix(dry_run: str) -> str:
    return {"client": " (dry run)", "server": " (server dry run)"}.get(dry_run, "")


def last_applied_of(obj: dict[str, Any]) -> str:
    """The annotation value: the manifest as compact JSON (without the annotation itself)."""
    doc = copy.deepcopy(obj)
    meta = doc.setdefault("metadata", {})
    annotations = dict(meta.get("annotations") or {})
    annotations.pop(LAST_APPLIED, None)
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    return json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n"


def with_last_applied(obj: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    meta = out.setdefault("metadata", {})
    annotations = dict(meta.get("annotations") or {})
    annotations[LAST_APPLIED] = last_applied_of(obj)
    meta["annotations"] = annotations
    return out


async def place(ctx: Ctx, obj: dict[str, Any], source: str) -> tuple[ResourceInfo, str, str | None]:
    """The resource, name and namespace of a manifest; sets metadata.namespace as kubectl does."""
    info = info_for(obj, source)
    meta = obj.setdefault("metadata", {})
    name = meta.get("name") or ""
    if not name:
        raise CLIError(f'error when retrieving current configuration of "{source}": resource name may not be empty')
    if not info.namespaced:
        return info, name, None
    explicit = ctx.opt("namespace")
    ns = meta.get("namespace")
    if explicit and ns and ns != explicit:
        raise CLIError(f'the namespace from the provided object "{ns}" does not match the namespace '
                       f'"{explicit}". You must pass \'--namespace={ns}\' to perform this operation.')
    ns = ns or await ctx.namespace()
    meta["namespace"] = ns
    return info, name, ns


def describe_failure(e: Exception, action: str, source: str) -> str:
    if isinstance(e, CLIError):
        return f"error: {e.message}"
    assert isinstance(e, errors.StatusError)
    if not action:
        return f"Error from server ({e.reason}): {e.message}"
    return f'Error from server ({e.reason}): error when {action} "{source}": {e.message}'


async def run(ctx: Ctx) -> int:
    a = ctx.args
    if a.server_side and a.dry_run == "client":
        raise CLIError("--dry-run=client doesn't work with --server-side (did you mean --dry-run=server instead?)")
    items = await manifests.load(a.filename, a.recursive, ctx.stdin)
    client = await ctx.client()
    failures: list[str] = []
    results: list[dict[str, Any]] = []
    for m in items:
        obj = copy.deepcopy(m.obj)
        action = "creating"
        try:
            info, name, ns = await place(ctx, obj, m.source)
            if a.server_side:
                action = ""
                manager = a.field_manager or "kubectl"
                out = await client.patch(info, name, obj, ns, patch_type="apply", field_manager=manager,
                                         field_validation=field_validation(a.validate),
                                         force=True if a.force_conflicts else False,
                                         dry_run=a.dry_run == "server")
                verb = "serverside-applied"
            else:
                verb, out, action = await apply_client_side(ctx, client, info, name, ns, obj, m.source)
        except (errors.StatusError, CLIError) as e:
            failures.append(describe_failure(e, action, m.source))
            continue
        results.append(with_type(out or obj, info))
        if not a.output:
            ctx.print(f"{kind_name(info, name)} {verb}{dry_suffix(a.dry_run)}")
        elif a.output == "name":
            ctx.print(kind_name(info, name))
    if a.output in ("yaml", "json") and results:
        doc = results[0] if len(results) == 1 else as_list(results)
        ctx.out.write(to_yaml(doc) if a.output == "yaml" else to_json(doc))
    for f in failures:
        ctx.warn(f)
    if failures:
        raise Failed(1)
    return 0


async def apply_client_side(ctx: Ctx, client: Client, info: ResourceInfo, name: str, ns: str | None,
                            obj: dict[str, Any], source: str) -> tuple[str, dict[str, Any] | None, str]:
    """Create the object, or patch it towards the manifest; returns (verb, result, action)."""
    a = ctx.args
    modified = with_last_applied(obj)
    fv = field_validation(a.validate)
    server_dry = a.dry_run == "server"
    for _attempt in range(5):
        try:
            live = await client.get(info, name, ns)
        except errors.NotFound:
            if a.dry_run == "client":
                return "created", modified, "creating"
            out = await client.create(info, modified, ns, dry_run=server_dry, field_manager=CSA_MANAGER,
                                      field_validation=fv)
            return "created", out, "creating"
        annotation = ((live.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
        last = None
        if annotation:
            try:
                last = json.loads(annotation)
            except ValueError:
                last = None
        else:
            ctx.warn(f"Warning: resource {info.plural}/{name} is missing the {LAST_APPLIED} annotation which "
                     "is required by navctl apply. navctl apply should only be used on resources created "
                     "declaratively by either navctl create --save-config or navctl apply. The missing "
                     "annotation will be patched automatically.")
        group, _, version = info.api_version.rpartition("/")
        patch = create_three_way_merge_patch(last, modified, live, merge_info(group, version, info.kind))
        if not patch:
            return "unchanged", live, "patching"
        if a.dry_run == "client":
            return "configured", modified, "patching"
        try:
            out = await client.patch(info, name, patch, ns, patch_type="strategic", dry_run=server_dry,
                                     field_manager=CSA_MANAGER, field_validation=fv)
        except errors.Conflict:
            continue
        return "configured", out, "patching"
    raise errors.conflict(info.plural, name, info.group)
