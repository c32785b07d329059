"""``navctl config``: ``view``, ``get-contexts``, ``current-context``, ``use-context``,
``set-context`` and ``delete-context`` on the kubeconfig (``--kubeconfig``, else ``$KUBECONFIG``,
else ``~/.kube/config``). With several ``$KUBECONFIG`` files, reads merge them and writes go to the
first one, which is where kubectl puts a new current-context too."""

from __future__ import annotations

import argparse
import asyncio
import copy
from pathlib import Path
from typing import Any

from cli.context import CLIError, Ctx
from cli.printing import layout, to_json, to_yaml
from client.kubeconfig import Config, ConfigError, default_paths

B = argparse.BooleanOptionalAction
SECRET_DATA = ("certificate-authority-data", "client-certificate-data", "client-key-data")
SECRET_TEXT = ("token", "password")


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("config", parents=[common], help="Modify kubeconfig files")
    verbs = p.add_subparsers(dest="config_verb", metavar="SUBCOMMAND", parser_class=type(p))
    p.set_defaults(func=_usage)

    v = verbs.add_parser("view", parents=[common], help="Display merged kubeconfig settings")
    v.add_argument("--raw", action=B, default=False)
    v.add_argument("--minify", action=B, default=False)
    v.add_argument("-o", "--output", default="yaml", choices=("yaml", "json"))
    v.set_defaults(func=run_view)

    g = verbs.add_parser("get-contexts", parents=[common], help="Describe one or many contexts")
    g.add_argument("names", nargs="*")
    g.add_argument("-o", "--output", default="", choices=("", "name"))
    g.add_argument("--no-headers", action=B, default=False)
    g.set_defaults(func=run_get_contexts)

    c = verbs.add_parser("current-context", parents=[common], help="Display the current-context")
    c.set_defaults(func=run_current_context)

    u = verbs.add_parser("use-context", aliases=["use"], parents=[common], help="Set the current-context")
    u.add_argument("name")
    u.set_defaults(func=run_use_context)

    s = verbs.add_parser("set-context", parents=[common], help="Set a context entry in kubeconfig")
    s.add_argument("name", nargs="?")
    s.add_argument("--current", action=B, default=False)
    s.add_argument("--cluster", default=None)
    s.add_argument("--user", default=None)
    s.set_defaults(func=run_set_context)

    d = verbs.add_parser("delete-context", parents=[common], help="Delete the specified context from the kubeconfig")
    d.add_argument("name")
    d.set_defaults(func=run_delete_context)


async def _usage(ctx: Ctx) -> int:
    raise CLIError("specify a config subcommand: view, get-contexts, current-context, use-context, set-context, "
                   "delete-context")


def _paths(ctx: Ctx) -> list[Path]:
    explicit = ctx.opt("kubeconfig")
    return [Path(explicit).expanduser()] if explicit else default_paths()


async def _merged(ctx: Ctx) -> Config:
    return await asyncio.to_thread(Config.load, ctx.opt("kubeconfig"))


async def _writable(ctx: Ctx) -> Config:
    """The one file that edits go to (created empty if it does not exist yet)."""
    path = _paths(ctx)[0]

    def load() -> Config:
        if path.exists():
            return Config.load(path)
        return Config(path=path)

    return await asyncio.to_thread(load)


async def _save(cfg: Config) -> None:
    await asyncio.to_thread(cfg.save)


def _redact(doc: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    for section, key in (("clusters", "cluster"), ("users", "user")):
        for entry in doc.get(section) or []:
            body = entry.get(key) or {}
            for k in SECRET_DATA:
                if body.get(k):
                    body[k] = "DATA+OMITTED"
            for k in SECRET_TEXT:
                if body.get(k):
                    body[k] = "REDACTED"
    return doc


async def run_view(ctx: Ctx) -> int:
    a = ctx.args
    try:
        cfg = await _merged(ctx)
    except ConfigError:
        cfg = Config()
    doc = copy.deepcopy(cfg.raw)
    if a.minify:
        name = ctx.opt("context") or cfg.current_context
        if not name:
            raise CLIError("current-context must exist in order to minify")
        entry = cfg.contexts().get(name)
        if entry is None:
            raise CLIError(f'cannot locate context {name}')
        doc["contexts"] = [e for e in doc["contexts"] if e.get("name") == name]
        doc["clusters"] = [e for e in doc["clusters"] if e.get("name") == entry.get("cluster")]
        doc["users"] = [e for e in doc["users"] if e.get("name") == entry.get("user")]
        doc["current-context"] = name
    if not a.raw:
        doc = _redact(doc)
    for section in ("clusters", "contexts", "users"):
        if not doc.get(section):
            doc[section] = None
    ctx.out.write(to_yaml(doc) if a.output == "yaml" else to_json(doc))
    return 0


async def run_get_contexts(ctx: Ctx) -> int:
    a = ctx.args
    cfg = await _merged(ctx)
    contexts = cfg.contexts()
    names = a.names or list(contexts)
    missing = [n for n in names if n not in contexts]
    if a.output == "name":
        for n in names:
            if n in contexts:
                ctx.print(n)
    else:
        rows = [] if a.no_headers else [["CURRENT", "NAME", "CLUSTER", "AUTHINFO", "NAMESPACE"]]
        for n in names:
            if n not in contexts:
                continue
            c = contexts[n]
            rows.append(["*" if n == cfg.current_context else "", n, c.get("cluster", ""), c.get("user", ""),
                         c.get("namespace", "")])
        for line in layout(rows):
            ctx.print(line.rstrip())
    if missing:
        raise CLIError(f"context {missing[0]} not found")
    return 0


async def run_current_context(ctx: Ctx) -> int:
    cfg = await _merged(ctx)
    if not cfg.current_context:
        raise CLIError("current-context is not set")
    ctx.print(cfg.current_context)
    return 0


async def run_use_context(ctx: Ctx) -> int:
    name = ctx.args.name
    merged = await _merged(ctx)
    if name not in merged.contexts():
        raise CLIError(f'no context exists with the name: "{name}"')
    cfg = await _writable(ctx)
    cfg.raw["current-context"] = name
    await _save(cfg)
    ctx.print(f'Switched to context "{name}".')
    return 0


async def run_set_context(ctx: Ctx) -> int:
    a = ctx.args
    cfg = await _writable(ctx)
    name = a.name
    if a.current:
        if name:
            raise CLIError("you cannot specify a context name and --current")
        merged = await _merged(ctx)
        name = merged.current_context
        if not name:
            raise CLIError("no current context is set")
    if not name:
        raise CLIError("you must specify a non-empty context name or --current")
    existed = name in cfg.contexts()
    # -n/--namespace is the shared flag; here it names the context's namespace.
    cfg.set_context(name, cluster=a.cluster, user=a.user, namespace=ctx.opt("namespace"))
    await _save(cfg)
    ctx.print(f'Context "{name}" {"modified" if existed else "created"}.')
    return 0


async def run_delete_context(ctx: Ctx) -> int:
    name = ctx.args.name
    cfg = await _writable(ctx)
    try:
        cfg.delete_context(name)
    except ConfigError as e:
        raise CLIError(f"cannot delete context {name}, not in {cfg.path}") from e
    await _save(cfg)
    ctx.print(f"deleted context {name} from {cfg.path}")
    return 0
