"""``navctl create``: ``-f`` files, and the generators ``namespace``, ``deployment``,
``configmap`` and ``secret generic`` (with ``--dry-run=client -o yaml`` to print instead)."""

from __future__ import annotations

import argparse
import base64
import copy
import re
from pathlib import Path
from typing import Any

from api import errors, registry
from api.registry import ResourceInfo
from cli import manifests
from cli.cmd_apply import describe_failure, dry_suffix, field_validation, place, with_last_applied
from cli.context import CLIError, Ctx, Failed, kind_name
from cli.printing import to_json, to_yaml

B = argparse.BooleanOptionalAction


def _common_out(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dry-run", nargs="?", const="client", default="none", choices=("none", "client", "server"))
    p.add_argument("-o", "--output", default="")
    p.add_argument("--save-config", action=B, default=False)


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("create", parents=[common], help="Create a resource from a file or from stdin")
    p.add_argument("-f", "--filename", action="append", default=[])
    p.add_argument("-R", "--recursive", action=B, default=False)
    p.add_argument("--validate", nargs="?", const="strict", default="strict",
                   choices=("true", "false", "strict", "warn", "ignore"))
    _common_out(p)
    p.set_defaults(func=run_files)
    kinds = p.add_subparsers(dest="generator", metavar="KIND", parser_class=type(p))

    ns = kinds.add_parser("namespace", aliases=["ns"], parents=[common], help="Create a namespace")
    ns.add_argument("name")
    _common_out(ns)
    ns.set_defaults(func=run_generator, build=_namespace)

    d = kinds.add_parser("deployment", aliases=["deploy"], parents=[common], help="Create a deployment")
    d.add_argument("name")
    d.add_argument("--image", action="append", default=[], required=True)
    d.add_argument("-r", "--replicas", type=int, default=1)
    d.add_argument("--port", type=int, default=None)
    d.add_argument("command", nargs="*")
    _common_out(d)
    d.set_defaults(func=run_generator, build=_deployment)

    cm = kinds.add_parser("configmap", aliases=["cm"], parents=[common], help="Create a config map")
    cm.add_argument("name")
    _data_flags(cm)
    _common_out(cm)
    cm.set_defaults(func=run_generator, build=_configmap)

    sec = kinds.add_parser("secret", parents=[common], help="Create a secret")
    sec_kinds = sec.add_subparsers(dest="secret_type", metavar="TYPE", parser_class=type(p))
    g = sec_kinds.add_parser("generic", parents=[common], help="Create a secret from files or literals")
    g.add_argument("name")
    g.add_argument("--type", default="")
    _data_flags(g)
    _common_out(g)
    g.set_defaults(func=run_generator, build=_secret)


def _data_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from-literal", action="append", default=[])
    p.add_argument("--from-file", action="append", default=[])
    p.add_argument("--from-env-file", action="append", default=[])


# -------------------------------------------------------------------------- generators

def _namespace(a: argparse.Namespace) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": a.name}}


def _container_name(image: str) -> str:
    base = image.rsplit("/", 1)[-1]
    base = base.split("@", 1)[0].split(":", 1)[0]
    return re.sub(r"[^a-z0-9-]", "-", base.lower()).strip("-") or "container"


def _deployment(a: argparse.Namespace) -> dict[str, Any]:
    if a.command and len(a.image) > 1:
        raise CLIError("cannot specify multiple --image options and command")
    containers = []
    for image in a.image:
        c: dict[str, Any] = {"name": _container_name(image), "image": image, "resources": {}}
        if a.command:
            c["command"] = list(a.command)
        if a.port is not None:
            c["ports"] = [{"containerPort": a.port}]
        containers.append(c)
    labels = {"app": a.name}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": a.name, "labels": dict(labels)},
            "spec": {"replicas": a.replicas, "selector": {"matchLabels": dict(labels)}, "strategy": {},
                     "template": {"metadata": {"labels": dict(labels)}, "spec": {"containers": containers}}},
            "status": {}}


def _read_data(a: argparse.Namespace) -> dict[str, bytes]:
    data: dict[str, bytes] = {}

    def put(key: str, value: bytes) -> None:
        if key in data:
            raise CLIError(f"cannot add key {key}, another key by that name already exists in Data for ConfigMap")
        data[key] = value

    for lit in a.from_literal:
        if "=" not in lit or lit.startswith("="):
            raise CLIError(f'invalid literal source {lit}, expected key=value')
        k, v = lit.split("=", 1)
        put(k, v.encode())
    for spec in a.from_file:
        key, _, path = spec.partition("=") if "=" in spec else ("", "", spec)
        p = Path(path)
        if p.is_dir():
            for f in sorted(p.iterdir()):
                if f.is_file():
                    put(f.name, f.read_bytes())
        elif p.is_file():
            put(key or p.name, p.read_bytes())
        else:
            raise CLIError(f"error reading {path}: no such file or directory")
    for path in a.from_env_file:
        try:
            lines = Path(path).read_text().splitlines()
        except OSError as e:
            raise CLIError(f"error reading {path}: {e.strerror}") from None
        for line in lines:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            k, _, v = line.partition("=")
            put(k.strip(), v.encode())
    return data


def _configmap(a: argparse.Namespace) -> dict[str, Any]:
    data: dict[str, str] = {}
    binary: dict[str, str] = {}
    for k, v in _read_data(a).items():
        try:
            data[k] = v.decode("utf-8")
        except UnicodeDecodeError:
            binary[k] = base64.b64encode(v).decode()
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": a.name}}
    if data:
        obj["data"] = data
    if binary:
        obj["binaryData"] = binary
    return obj


def _secret(a: argparse.Namespace) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": a.name}}
    data = {k: base64.b64encode(v).decode() for k, v in _read_data(a).items()}
    if data:
        obj["data"] = data
    if a.type:
        obj["type"] = a.type
    return obj


# -------------------------------------------------------------------------- running

def _emit(ctx: Ctx, info: ResourceInfo, obj: dict[str, Any], verb: str) -> None:
    a = ctx.args
    name = (obj.get("metadata") or {}).get("name", "")
    if a.output == "yaml":
        ctx.out.write(to_yaml(obj))
    elif a.output == "json":
        ctx.out.write(to_json(obj))
    elif a.output == "name":
        ctx.print(kind_name(info, name))
    elif a.output:
        raise CLIError(f'unable to match a printer suitable for the output format "{a.output}", allowed '
                       'formats are: json,name,yaml')
    else:
        ctx.print(f"{kind_name(info, name)} {verb}{dry_suffix(a.dry_run)}")


async def _create(ctx: Ctx, obj: dict[str, Any], source: str) -> None:
    a = ctx.args
    info, _name, ns = await place(ctx, obj, source)
    if a.save_config:
        obj = with_last_applied(obj)
    if a.dry_run == "client":
        _emit(ctx, info, obj, "created")
        return
    client = await ctx.client()
    fv = field_validation(getattr(a, "validate", "strict"))
    out = await client.create(info, obj, ns, dry_run=a.dry_run == "server", field_validation=fv,
                              field_manager="kubectl-create")
    _emit(ctx, info, out if a.output else obj, "created")


async def run_generator(ctx: Ctx) -> int:
    obj = ctx.args.build(ctx.args)
    if obj["kind"] == "Namespace":
        obj["metadata"].pop("namespace", None)
    info = registry.for_kind(obj["apiVersion"], obj["kind"])
    assert info is not None
    try:
        await _create(ctx, obj, "")
    except errors.StatusError as e:
        if e.reason == "Invalid":
            raise
        raise errors.from_status({**e.to_status(), "message": e.message}) from None
    return 0


async def run_files(ctx: Ctx) -> int:
    a = ctx.args
    if not a.filename:
        raise CLIError("must specify one of -f and -k")
    failures: list[str] = []
    for m in await manifests.load(a.filename, a.recursive, ctx.stdin):
        try:
            await _create(ctx, copy.deepcopy(m.obj), m.source)
        except (errors.StatusError, CLIError) as e:
            failures.append(describe_failure(e, "creating", m.source))
    for f in failures:
        ctx.warn(f)
    if failures:
        raise Failed(1)
    return 0
