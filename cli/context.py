"""What every command shares: parsed flags, the API client, output streams and CLI errors.

``Ctx`` is built once per invocation by ``cli.__main__.main``. The client is created lazily from
the kubeconfig (``--kubeconfig``, ``--context``, ``--server``), so commands that never talk to the
server (``config``, ``version --client``, ``explain``) work without a reachable cluster.
"""

from __future__ import annotations

import argparse
import asyncio
import re
from dataclasses import dataclass, field
from typing import Any, TextIO

from api import registry
from api.registry import ResourceInfo
from client.kubeconfig import Config, ConnectionConfig
from client.rest import Client


class CLIError(Exception):
    """A usage or client-side failure, printed as ``error: <message>`` with exit code 1."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.message = message
        self.code = code


class Failed(Exception):
    """The command already printed its errors; exit with ``code``."""

    def __init__(self, code: int = 1):
        super().__init__(code)
        self.code = code


# Boolean flags that kubectl users write as ``--flag=false``; argparse gets ``--no-flag``.
BOOL_FLAGS = {
    "wait", "all", "overwrite", "show-labels", "all-namespaces", "recursive", "server-side",
    "force-conflicts", "watch", "watch-only", "no-headers", "ignore-not-found", "raw", "minify",
    "client", "current", "local", "namespaced", "record",
}
_BOOL_ARG = re.compile(r"^--([a-z][a-z-]*)=(true|false|1|0|t|f)$", re.IGNORECASE)


def normalize_argv(argv: list[str]) -> list[str]:
    out = []
    for arg in argv:
        m = _BOOL_ARG.match(arg)
        if m and m.group(1) in BOOL_FLAGS:
            truthy = m.group(2).lower() in ("true", "1", "t")
            out.append(f"--{m.group(1)}" if truthy else f"--no-{m.group(1)}")
        else:
            out.append(arg)
    return out


@dataclass
class Ctx:
    args: argparse.Namespace
    out: TextIO
    err: TextIO
    stdin: TextIO
    _client: Client | None = None
    _conn: ConnectionConfig | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def opt(self, name: str, default: Any = None) -> Any:
        value = getattr(self.args, name, None)
        return default if value is None else value

    def print(self, *parts: Any, end: str = "\n") -> None:
        self.out.write(" ".join(str(p) for p in parts) + end)
        self.out.flush()

    def warn(self, text: str) -> None:
        self.err.write(text + "\n")
        self.err.flush()

    # -- connection ------------------------------------------------------------------------

    def load_config(self) -> Config:
        return Config.load(self.opt("kubeconfig"))

    async def connection(self) -> ConnectionConfig:
        if self._conn is None:
            server = self.opt("server")
            if server and not self.opt("kubeconfig"):
                try:
                    conn = await asyncio.to_thread(lambda: self.load_config().for_context(self.opt("context")))
                    conn.server = server.rstrip("/")
                except Exception:
                    conn = ConnectionConfig(server=server.rstrip("/"))
            else:
                conn = await asyncio.to_thread(lambda: self.load_config().for_context(self.opt("context")))
                if server:
                    conn.server = server.rstrip("/")
            self._conn = conn
        return self._conn

    async def client(self) -> Client:
        async with self._lock:
            if self._client is None:
                conn = await self.connection()
                timeout = parse_duration(self.opt("request_timeout")) or 60.0
                self._client = await asyncio.to_thread(
                    lambda: Client.from_connection(conn, timeout=timeout, user_agent="navctl/0.1.0"))
            return self._client

    async def namespace(self) -> str:
        ns = self.opt("namespace")
        if ns:
            return ns
        return (await self.connection()).namespace or "default"

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


def parse_duration(text: str | None) -> float | None:
    """kubectl durations: ``30s``, ``2m``, ``1h``, ``500ms``, or bare seconds; 0 means none."""
    if text in (None, "", "0"):
        return None
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", str(text))
    if not m:
        raise CLIError(f'invalid duration "{text}"')
    value = float(m.group(1))
    unit = m.group(2) or "s"
    return value * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[unit]


def resolve(name: str) -> ResourceInfo:
    info = registry.resolve(name)
    if info is None:
        raise CLIError(f'the server doesn\'t have a resource type "{name}"')
    return info


def info_for(obj: dict[str, Any], source: str = "") -> ResourceInfo:
    kind = obj.get("kind") or ""
    api_version = obj.get("apiVersion") or ""
    info = registry.for_kind(api_version, kind)
    if info is None:
        meta = obj.get("metadata") or {}
        where = f' from "{source}"' if source else ""
        raise CLIError(f'resource mapping not found for name: "{meta.get("name", "")}" namespace: '
                       f'"{meta.get("namespace", "")}"{where}: no matches for kind "{kind}" in version '
                       f'"{api_version}"\nensure CRDs are installed first')
    return info


def qualified(info: ResourceInfo) -> str:
    """``pods``, ``deployments.apps``: how kubectl names a resource in messages."""
    return f"{info.plural}.{info.group}" if info.group else info.plural


def kind_name(info: ResourceInfo, name: str) -> str:
    """``pod/web``, ``deployment.apps/web``: kubectl's ``-o name`` form."""
    kind = info.kind.lower()
    return f"{kind}.{info.group}/{name}" if info.group else f"{kind}/{name}"


def split_targets(args: list[str]) -> list[tuple[ResourceInfo, list[str]]]:
    """``TYPE[,TYPE] [NAME...]`` or ``TYPE/NAME ...`` into (resource, names) groups, in order."""
    if not args:
        return []
    if any("/" in a for a in args):
        groups: list[tuple[ResourceInfo, list[str]]] = []
        for a in args:
            if "/" not in a:
                raise CLIError("there is no need to specify a resource type as a separate argument when "
                               "passing arguments in resource/name form (e.g. 'navctl get resource/<resource_name>' "
                               "instead of 'navctl get resource resource/<resource_name>'")
            kind, name = a.split("/", 1)
            info = resolve(kind)
            for g in groups:
                if g[0] == info:
                    g[1].append(name)
                    break
            else:
                groups.append((info, [name]))
        return groups
    kinds = [k for k in args[0].split(",") if k]
    names = args[1:]
    if len(kinds) > 1 and names:
        raise CLIError("arguments in resource/name form must have a single resource and name")
    out: list[tuple[ResourceInfo, list[str]]] = []
    for k in kinds:
        if k == "all":
            out += [(r, list(names)) for r in registry.RESOURCES if "all" in r.categories]
        else:
            out.append((resolve(k), list(names)))
    return out
