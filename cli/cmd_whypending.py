"""``navctl why-pending POD``: asks the scheduler's ``/debug/why-pending/<ns>/<name>`` and prints
its answer: the summary, per node the plugin(s) that rejected the pod and why, the closest nodes'
headroom, and suggestions. Every field present is shown; missing ones are skipped."""

from __future__ import annotations

import argparse
import json
from typing import Any
from urllib.parse import quote

import aiohttp

from api import errors
from cli.context import CLIError, Ctx
from cli.printing import layout
from client.rest import Client

DEFAULT_SCHEDULER = "http://127.0.0.1:10259"
KNOWN = {"pod", "schedulerName", "requests", "nodes", "summary", "suggestions"}
HEADROOM_NODES = 5


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("why-pending", parents=[common], help="Explain why a pod is not scheduled")
    p.add_argument("pod")
    p.add_argument("--scheduler", default=DEFAULT_SCHEDULER, help="the scheduler's debug address")
    p.add_argument("-o", "--output", default="", choices=("", "json", "yaml"))
    p.set_defaults(func=run)


def _text(v: Any) -> str:
    if isinstance(v, dict):
        return ", ".join(f"{k}={x}" for k, x in v.items())
    if isinstance(v, list):
        return "; ".join(_text(x) for x in v)
    if isinstance(v, bool):
        return "yes" if v else "no"
    return "" if v is None else str(v)


def render(doc: dict[str, Any]) -> str:
    lines: list[str] = []
    pod = doc.get("pod")
    summary = doc.get("summary")
    if pod and summary:
        lines.append(f"Pod {pod}: {summary}")
    elif pod or summary:
        lines.append(f"Pod {pod}" if pod else str(summary))
    if doc.get("schedulerName"):
        lines.append(f"Scheduler: {doc['schedulerName']}")
    if doc.get("requests"):
        lines.append(f"Requests: {_text(doc['requests'])}")
    for k, v in doc.items():
        if k not in KNOWN:
            lines.append(f"{k[:1].upper()}{k[1:]}: {_text(v)}")
    nodes = [n for n in doc.get("nodes") or [] if isinstance(n, dict)]
    if nodes:
        has_fits = any("fits" in n for n in nodes)
        rows = [["NODE"] + (["FITS"] if has_fits else []) + ["PLUGIN", "REASONS"]]
        for n in nodes:
            failures = n.get("failures")
            fits = [_text(n["fits"]) if "fits" in n else ""] if has_fits else []
            if isinstance(failures, list) and failures:
                for i, f in enumerate(failures):
                    rows.append([n.get("node", "") if i == 0 else ""] + (fits if i == 0 else [""] * len(fits))
                                + [f.get("plugin") or "", _text(f.get("reasons") or [])])
            else:
                rows.append([n.get("node", "")] + fits + [n.get("plugin") or "", _text(n.get("reasons") or [])
                                                           or ("-" if n.get("fits") else "")])
        lines.append("")
        lines += layout(rows)
        with_room = [n for n in nodes if isinstance(n.get("headroom"), dict) and n["headroom"]][:HEADROOM_NODES]
        if with_room:
            keys: list[str] = []
            for n in with_room:
                keys += [k for k in n["headroom"] if k not in keys]
            rows = [["NODE"] + [k.upper() for k in keys]]
            rows += [[n.get("node", "")] + [str(n["headroom"].get(k, "")) for k in keys] for n in with_room]
            lines.append("")
            lines.append("Headroom on the closest nodes (free allocatable):")
            lines += layout(rows)
    suggestions = doc.get("suggestions")
    if suggestions:
        lines.append("")
        lines.append("Suggestions:")
        for s in suggestions if isinstance(suggestions, list) else [suggestions]:
            lines.append(f"  - {_text(s)}")
    return "\n".join(line.rstrip() for line in lines) + "\n"


async def run(ctx: Ctx) -> int:
    a = ctx.args
    name = a.pod.split("/", 1)[1] if a.pod.startswith(("pod/", "pods/", "po/")) else a.pod
    ns = await ctx.namespace() if ctx.opt("namespace") else await _namespace_or_default(ctx)
    path = f"/debug/why-pending/{quote(ns, safe='')}/{quote(name, safe='')}"
    sched = Client(a.scheduler, timeout=30.0, user_agent="navctl/0.1.0", max_retries=0)
    try:
        doc = await sched.request("GET", path)
    except errors.StatusError as e:
        # The scheduler answers failures as {"error": "..."} rather than as a Status.
        try:
            detail = json.loads(e.message).get("error") or e.message
        except (ValueError, AttributeError):
            detail = e.message
        raise CLIError(f"the scheduler at {a.scheduler} answered {e.code}: {detail}") from None
    except (aiohttp.ClientError, OSError, TimeoutError) as e:
        raise CLIError(f"cannot reach the scheduler at {a.scheduler}: {e}") from None
    finally:
        await sched.close()
    if not isinstance(doc, dict):
        raise CLIError(f"unexpected answer from the scheduler: {str(doc)[:200]}")
    if a.output:
        from cli.printing import to_json, to_yaml
        ctx.out.write(to_json(doc) if a.output == "json" else to_yaml(doc))
    else:
        ctx.out.write(render(doc))
    return 0


async def _namespace_or_default(ctx: Ctx) -> str:
    """The kubeconfig's namespace when there is a kubeconfig; why-pending needs no API server."""
    try:
        return await ctx.namespace()
    except Exception:
        return "default"
