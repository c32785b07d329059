"""``navctl delete``: by name, ``TYPE/NAME``, ``-f``, ``-l`` or ``--all``; ``--cascade`` maps to the
propagationPolicy; ``--wait`` (the default, as in kubectl) watches each object until it is gone."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from api import errors
from api.registry import ResourceInfo
from cli import manifests
from cli.context import CLIError, Ctx, Failed, info_for, kind_name, parse_duration, split_targets
from client.rest import Client

B = argparse.BooleanOptionalAction
CASCADE = {"background": "Background", "true": "Background", "foreground": "Foreground",
           "orphan": "Orphan", "false": "Orphan"}


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("delete", parents=[common], help="Delete resources by names, files or selectors")
    p.add_argument("targets", nargs="*")
    p.add_argument("-f", "--filename", action="append", default=[])
    p.add_argument("-R", "--recursive", action=B, default=False)
    p.add_argument("-l", "--selector")
    p.add_argument("--field-selector")
    p.add_argument("--all", action=B, default=False)
    p.add_argument("-A", "--all-namespaces", action=B, default=False)
    p.add_argument("--wait", action=B, default=True)
    p.add_argument("--timeout", default="0")
    p.add_argument("--cascade", nargs="?", const="background", default="background")
    p.add_argument("--grace-period", type=int, default=-1)
    p.add_argument("--now", action=B, default=False)
    p.add_argument("--force", action=B, default=False)
    p.add_argument("--ignore-not-found", action=B, default=None)
    p.add_argument("--dry-run", nargs="?", const="client", default="none", choices=("none", "client", "server"))
    p.add_argument("-o", "--output", default="")
    p.set_defaults(func=run)


async def _victims(ctx: Ctx, client: Client) -> list[tuple[ResourceInfo, str, str | None, bool]]:
    """(resource, name, namespace, named explicitly) for every object to delete."""
    a = ctx.args
    out: list[tuple[ResourceInfo, str, str | None, bool]] = []
    if a.filename:
        if a.targets:
            raise CLIError("when paths are specified, resource arguments are not allowed")
        for m in await manifests.load(a.filename, a.recursive, ctx.stdin):
            info = info_for(m.obj, m.source)
            meta = m.obj.get("metadata") or {}
            ns = (meta.get("namespace") or await ctx.namespace()) if info.namespaced else None
            out.append((info, meta.get("name", ""), ns, True))
        return out
    if not a.targets:
        raise CLIError("You must provide one or more resources by argument or filename.\n"
                       "Example resource specifications include:\n   '-f rsrc.yaml'\n   '--filename=rsrc.json'\n"
                       "   '<resource> <name>'\n   '<resource>'")
    groups = split_targets(a.targets)
    ns = None if a.all_namespaces else await ctx.namespace()
    for info, names in groups:
        gns = ns if info.namespaced else None
        if names:
            if a.all or a.selector:
                raise CLIError("name cannot be provided when a selector is specified" if a.selector
                               else "setting 'all' parameter but found a non empty resource name")
            out += [(info, n, gns, True) for n in names]
        elif a.all or a.selector or a.field_selector:
            lst = await client.list_all(info, gns, label_selector=a.selector, field_selector=a.field_selector)
            for o in lst.get("items") or []:
                meta = o.get("metadata") or {}
                out.append((info, meta.get("name", ""), meta.get("namespace") if info.namespaced else None, False))
        else:
            raise CLIError('resource(s) were provided, but no name was specified')
    return out


async def run(ctx: Ctx) -> int:
    a = ctx.args
    policy = CASCADE.get(str(a.cascade).lower())
    if policy is None:
        raise CLIError(f'invalid cascade value ({a.cascade}). Must be "background", "foreground", or "orphan".')
    grace = 1 if a.now else a.grace_period
    if a.force and grace < 0:
        grace = 0
    client = await ctx.client()
    victims = await _victims(ctx, client)
    ignore_missing = a.ignore_not_found if a.ignore_not_found is not None else bool(a.all or a.selector)
    suffix = {"client": " (dry run)", "server": " (server dry run)"}.get(a.dry_run, "")
    if a.force and grace == 0:
        ctx.warn("Warning: Immediate deletion does not wait for confirmation that the running resource has "
                 "been terminated. The resource may continue to run on the cluster indefinitely.")
    failed = False
    deleted: list[tuple[ResourceInfo, str, str | None, str]] = []
    if not victims and not a.filename:
        ns = None if a.all_namespaces else await ctx.namespace()
        ctx.warn(f"No resources found in {ns} namespace." if ns else "No resources found")
        return 0
    for info, name, ns, _named in victims:
        try:
            if a.dry_run == "client":
                await client.get(info, name, ns)
                result: Any = None
            else:
                result = await client.delete(info, name, ns, propagation_policy=policy,
                                             grace_period_seconds=grace if grace >= 0 else None,
                                             dry_run=a.dry_run == "server")
        except errors.NotFound as e:
            if not ignore_missing:
                ctx.warn(f"Error from server (NotFound): {e.message}")
                failed = True
            continue
        except errors.StatusError as e:
            ctx.warn(f"Error from server ({e.reason}): {e.message}")
            failed = True
            continue
        if a.output == "name":
            ctx.print(kind_name(info, name))
        else:
            ctx.print(f'{info.kind.lower()}{"." + info.group if info.group else ""} "{name}" deleted{suffix}')
        uid = ((result or {}).get("metadata") or {}).get("uid", "") if isinstance(result, dict) else ""
        deleted.append((info, name, ns, uid))
    if a.wait and a.dry_run == "none" and deleted:
        timeout = parse_duration(a.timeout)
        waits = [wait_deleted(client, info, name, ns, uid) for info, name, ns, uid in deleted]
        try:
            await asyncio.wait_for(asyncio.gather(*waits), timeout)
        except TimeoutError:
            ctx.warn("error: timed out waiting for the condition")
            failed = True
    if failed:
        raise Failed(1)
    return 0


async def wait_deleted(client: Client, info: ResourceInfo, name: str, ns: str | None, uid: str = "") -> None:
    """Return once the object (this uid, if known) is gone: GET, then LIST + WATCH until DELETED."""
    while True:
        try:
            live = await client.get(info, name, ns)
        except errors.NotFound:
            return
        if uid and (live.get("metadata") or {}).get("uid") != uid:
            return  # a new object took the name; ours is gone
        lst = await client.list(info, ns, field_selector=f"metadata.name={name}")
        items = [o for o in lst.get("items") or [] if not uid or (o.get("metadata") or {}).get("uid") == uid]
        if not items:
            return
        rv = (lst.get("metadata") or {}).get("resourceVersion")
        try:
            async with client.watch(info, ns, name=name, resource_version=rv, timeout_seconds=300) as w:
                async for etype, obj in w:
                    if etype == "DELETED" and (not uid or (obj.get("metadata") or {}).get("uid") == uid):
                        return
        except errors.Gone:
            continue
