"""``navctl rollout status|history|undo|restart|pause|resume`` for deployments, with kubectl's
semantics and messages (status follows generation/observedGeneration and the replica counts)."""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime
from typing import Any

from api import errors
from api.patch import json_equal
from api.registry import ResourceInfo
from cli.context import CLIError, Ctx, Failed, kind_name, parse_duration, qualified, split_targets
from cli.describe import owned_replicasets, pod_template_report
from client.rest import Client

B = argparse.BooleanOptionalAction
REVISION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("rollout", parents=[common], help="Manage the rollout of a deployment")
    verbs = p.add_subparsers(dest="rollout_verb", metavar="SUBCOMMAND", parser_class=type(p))
    p.set_defaults(func=_usage)

    s = verbs.add_parser("status", parents=[common], help="Show the status of the rollout")
    s.add_argument("targets", nargs="+")
    s.add_argument("-w", "--watch", action=B, default=True)
    s.add_argument("--timeout", default="0")
    s.add_argument("--revision", type=int, default=0)
    s.set_defaults(func=run_status)

    h = verbs.add_parser("history", parents=[common], help="View rollout history")
    h.add_argument("targets", nargs="+")
    h.add_argument("--revision", type=int, default=0)
    h.set_defaults(func=run_history)

    u = verbs.add_parser("undo", parents=[common], help="Undo a previous rollout")
    u.add_argument("targets", nargs="+")
    u.add_argument("--to-revision", type=int, default=0)
    u.add_argument("--dry-run", nargs="?", const="client", default="none", choices=("none", "client", "server"))
    u.set_defaults(func=run_undo)

    for verb, helptext in (("restart", "Restart a resource"), ("pause", "Mark the provided resource as paused"),
                           ("resume", "Resume a paused resource")):
        q = verbs.add_parser(verb, parents=[common], help=helptext)
        q.add_argument("targets", nargs="+")
        q.set_defaults(func=run_simple, verb=verb)


async def _usage(ctx: Ctx) -> int:
    raise CLIError("specify a rollout subcommand: status, history, undo, restart, pause, resume")


async def _deployments(ctx: Ctx) -> list[tuple[ResourceInfo, str, str]]:
    ns = await ctx.namespace()
    out = []
    for info, names in split_targets(ctx.args.targets):
        if info.kind != "Deployment":
            raise CLIError(f"no rollout support for {qualified(info)}; only deployments are supported")
        if not names:
            raise CLIError("required resource not specified")
        out += [(info, n, ns) for n in names]
    return out


# -------------------------------------------------------------------------- status

class RolloutFailed(Exception):
    pass


def rollout_message(d: dict[str, Any]) -> tuple[str, bool]:
    """kubectl's verdict on a deployment: (message, done). Raises RolloutFailed past the deadline."""
    meta = d.get("metadata") or {}
    spec = d.get("spec") or {}
    st = d.get("status") or {}
    name = meta.get("name", "")
    if (meta.get("generation") or 0) > (st.get("observedGeneration") or 0):
        return "Waiting for deployment spec update to be observed...", False
    for c in st.get("conditions") or []:
        if c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded":
            raise RolloutFailed(f'deployment "{name}" exceeded its progress deadline')
    replicas = spec.get("replicas", 1)
    updated = st.get("updatedReplicas") or 0
    total = st.get("replicas") or 0
    available = st.get("availableReplicas") or 0
    if updated < replicas:
        return (f'Waiting for deployment "{name}" rollout to finish: {updated} out of {replicas} new replicas '
                "have been updated..."), False
    if total > updated:
        return (f'Waiting for deployment "{name}" rollout to finish: {total - updated} old replicas are pending '
                "termination..."), False
    if available < updated:
        return (f'Waiting for deployment "{name}" rollout to finish: {available} of {updated} updated replicas '
                "are available..."), False
    return f'deployment "{name}" successfully rolled out', True


async def _follow(ctx: Ctx, client: Client, info: ResourceInfo, name: str, ns: str) -> None:
    last = None

    def show(d: dict[str, Any]) -> bool:
        nonlocal last
        msg, done = rollout_message(d)
        if msg != last:
            ctx.print(msg)
            last = msg
        return done

    d = await client.get(info, name, ns)
    if show(d) or not ctx.args.watch:
        return
    while True:
        lst = await client.list(info, ns, field_selector=f"metadata.name={name}")
        items = lst.get("items") or []
        if not items:
            raise CLIError('object has been deleted')
        if show(items[0]):
            return
        rv = (lst.get("metadata") or {}).get("resourceVersion")
        try:
            async with client.watch(info, ns, name=name, resource_version=rv, timeout_seconds=300) as w:
                async for etype, obj in w:
                    if etype == "DELETED":
                        raise CLIError("object has been deleted")
                    if etype in ("ADDED", "MODIFIED") and show(obj):
                        return
        except errors.Gone:
            continue


async def run_status(ctx: Ctx) -> int:
    client = await ctx.client()
    timeout = parse_duration(ctx.args.timeout)
    for info, name, ns in await _deployments(ctx):
        try:
            await asyncio.wait_for(_follow(ctx, client, info, name, ns), timeout)
        except RolloutFailed as e:
            raise CLIError(str(e)) from None
        except TimeoutError:
            raise CLIError("timed out waiting for the condition") from None
    return 0


# -------------------------------------------------------------------------- history, undo

async def _history(client: Client, deploy: dict[str, Any]) -> dict[int, dict[str, Any]]:
    by_rev: dict[int, dict[str, Any]] = {}
    for rs in await owned_replicasets(client, deploy):
        ann = (rs.get("metadata") or {}).get("annotations") or {}
        try:
            rev = int(ann.get(REVISION, ""))
        except ValueError:
            continue
        by_rev[rev] = rs
    return by_rev


async def run_history(ctx: Ctx) -> int:
    a = ctx.args
    client = await ctx.client()
    for info, name, ns in await _deployments(ctx):
        d = await client.get(info, name, ns)
        hist = await _history(client, d)
        if a.revision:
            rs = hist.get(a.revision)
            if rs is None:
                raise CLIError("unable to find the specified revision")
            ctx.print(f"{kind_name(info, name)} with revision #{a.revision}")
            ctx.out.write(pod_template_report((rs.get("spec") or {}).get("template") or {}))
            continue
        ctx.print(f"{kind_name(info, name)} ")
        if not hist:
            ctx.print("No rollout history found.")
            continue
        ctx.print(f"{'REVISION':<10}CHANGE-CAUSE")
        for rev in sorted(hist):
            ann = (hist[rev].get("metadata") or {}).get("annotations") or {}
            ctx.print(f"{rev!s:<10}{ann.get(CHANGE_CAUSE) or '<none>'}")
        ctx.print("")
    return 0


def _template_without_hash(rs: dict[str, Any]) -> dict[str, Any]:
    import copy
    t = copy.deepcopy((rs.get("spec") or {}).get("template") or {})
    meta = t.setdefault("metadata", {})
    labels = dict(meta.get("labels") or {})
    labels.pop("pod-template-hash", None)
    meta["labels"] = labels
    return t


async def run_undo(ctx: Ctx) -> int:
    a = ctx.args
    client = await ctx.client()
    for info, name, ns in await _deployments(ctx):
        d = await client.get(info, name, ns)
        if (d.get("spec") or {}).get("paused"):
            raise CLIError("you cannot rollback a paused deployment; resume it first with 'navctl rollout resume' "
                           "and try again")
        hist = await _history(client, d)
        if a.to_revision:
            rs = hist.get(a.to_revision)
            if rs is None:
                raise CLIError(f"unable to find specified revision {a.to_revision} in history")
            rev = a.to_revision
        else:
            revs = sorted(hist)
            if len(revs) < 2:
                raise CLIError(f'no rollout history found for deployment "{name}"')
            rev = revs[-2]
            rs = hist[rev]
        template = _template_without_hash(rs)
        current = (d.get("spec") or {}).get("template") or {}
        if json_equal(template, current) or json_equal(template, _template_without_hash({"spec": {"template": current}})):
            ctx.print(f"{kind_name(info, name)} skipped rollback (current template already matches revision {rev})")
            continue
        if a.dry_run != "client":
            patch = [{"op": "test", "path": "/metadata/resourceVersion",
                      "value": d["metadata"]["resourceVersion"]},
                     {"op": "replace", "path": "/spec/template", "value": template}]
            await client.patch(info, name, patch, ns, patch_type="json", dry_run=a.dry_run == "server")
        suffix = {"client": " (dry run)", "server": " (server dry run)"}.get(a.dry_run, "")
        ctx.print(f"{kind_name(info, name)} rolled back{suffix}")
    return 0


# -------------------------------------------------------------------------- restart, pause, resume

async def run_simple(ctx: Ctx) -> int:
    verb = ctx.args.verb
    client = await ctx.client()
    failed = False
    for info, name, ns in await _deployments(ctx):
        d = await client.get(info, name, ns)
        paused = bool((d.get("spec") or {}).get("paused"))
        what = f'{qualified(info)} "{name}"'
        if verb == "restart":
            if paused:
                ctx.warn(f"error: {what} can't restart paused deployment (run rollout resume first)")
                failed = True
                continue
            now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            patch: dict[str, Any] = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}}
            done = "restarted"
        elif verb == "pause":
            if paused:
                ctx.warn(f"error: {what} is already paused")
                failed = True
                continue
            patch, done = {"spec": {"paused": True}}, "paused"
        else:
            if not paused:
                ctx.warn(f"error: {what} is not paused")
                failed = True
                continue
            patch, done = {"spec": {"paused": None}}, "resumed"
        await client.patch(info, name, patch, ns, patch_type="strategic")
        ctx.print(f"{kind_name(info, name)} {done}")
    if failed:
        raise Failed(1)
    return 0
