"""Kubeconfig files: reading the ones kubectl reads, and writing ready-to-use ones.

Reading follows kubectl: ``$KUBECONFIG`` (a ``:``-separated list, merged so that the first file to
define a cluster, user, context or current-context wins), else ``~/.kube/config``, or a path given
explicitly. ``Config.for_context(name)`` resolves a context into ``ConnectionConfig``: server, TLS
material and credentials, with relative file paths taken relative to the file that named them.

Writing covers what the launcher and ``navctl config`` need: ``write_kubeconfig`` for a fresh
single-context file, and ``Config.set_cluster / set_credentials / set_context / use_context /
save`` for edits. All functions here do file I/O synchronously; call them from a thread
(``asyncio.to_thread``) when on an event loop.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(Exception):
    """The kubeconfig is missing, unreadable, or does not name what was asked for."""


def default_paths() -> list[Path]:
    """The files kubectl would read, in precedence order."""
    env = os.environ.get("KUBECONFIG")
    if env:
        return [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    return [Path.home() / ".kube" / "config"]


@dataclass
class ConnectionConfig:
    """Everything needed to open connections to one API server as one user."""

    server: str
    namespace: str = "default"
    context: str = ""
    cluster: str = ""
    user: str = ""
    ca_file: str | None = None
    ca_data: bytes | None = None
    insecure_skip_tls_verify: bool = False
    tls_server_name: str | None = None
    token: str | None = None
    token_file: str | None = None
    client_cert_file: str | None = None
    client_key_file: str | None = None
    client_cert_data: bytes | None = None
    client_key_data: bytes | None = None
    username: str | None = None
    password: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_tls(self) -> bool:
        return self.server.startswith("https://")

    def bearer_token(self) -> str | None:
        """The token, reading ``token_file`` if that is how it was given (blocking file read)."""
        if self.token:
            return self.token
        if self.token_file:
            return Path(self.token_file).read_text().strip()
        return None

    def ssl_context(self) -> ssl.SSLContext | bool | None:
        """What aiohttp's ``ssl=`` wants: None for plain HTTP, False to skip verification, else a
        context trusting the configured CA and presenting the client certificate if any.
        Blocking (reads files)."""
        if not self.is_tls:
            return None
        if self.insecure_skip_tls_verify and not (self.client_cert_file or self.client_cert_data):
            return False
        ctx = ssl.create_default_context()
        if self.insecure_skip_tls_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        elif self.ca_data:
            ctx.load_verify_locations(cadata=self.ca_data.decode())
        elif self.ca_file:
            ctx.load_verify_locations(cafile=self.ca_file)
        cert, key = self.client_cert_file, self.client_key_file
        tmpdir = None
        if self.client_cert_data:
            # ssl only loads certificate chains from files.
            tmpdir = tempfile.TemporaryDirectory(prefix="navarch-kubeconfig-")
            cert = os.path.join(tmpdir.name, "client.crt")
            Path(cert).write_bytes(self.client_cert_data)
            if self.client_key_data:
                key = os.path.join(tmpdir.name, "client.key")
                fd = os.open(key, os.O_WRONLY | os.O_CREAT, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(self.client_key_data)
        try:
            if cert:
                ctx.load_cert_chain(cert, key)
        finally:
            if tmpdir is not None:
                tmpdir.cleanup()
        return ctx


def _named(entries: Any) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for entry in entries or []:
        if isinstance(entry, dict) and entry.get("name"):
            out.setdefault(str(entry["name"]), entry)
    return out


def _b64(value: str | None, what: str) -> bytes | None:
    if not value:
        return None
    try:
        return base64.b64decode(value, validate=False)
    except ValueError as e:
        raise ConfigError(f"{what}: not valid base64: {e}") from e


class Config:
    """A kubeconfig, possibly merged from several files. ``raw`` is the merged document."""

    def __init__(self, raw: dict[str, Any] | None = None, path: Path | None = None,
                 origins: dict[tuple[str, str], Path] | None = None):
        raw = dict(raw or {})
        raw.setdefault("apiVersion", "v1")
        raw.setdefault("kind", "Config")
        raw.setdefault("preferences", {})
        for section in ("clusters", "users", "contexts"):
            raw[section] = list(raw.get(section) or [])
        raw.setdefault("current-context", "")
        self.raw = raw
        self.path = path
        # (section, name) -> the file that defined it, for resolving relative paths.
        self._origins = dict(origins or {})

    # -- loading ---------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> Config:
        """Load ``path``, or kubectl's default files merged. Missing default files are skipped;
        a missing explicit path is an error."""
        if path is not None:
            paths = [Path(path).expanduser()]
            explicit = True
        else:
            paths = default_paths()
            explicit = False
        merged: dict[str, Any] = {"clusters": [], "users": [], "contexts": [], "current-context": ""}
        origins: dict[tuple[str, str], Path] = {}
        seen: dict[str, set[str]] = {"clusters": set(), "users": set(), "contexts": set()}
        loaded: list[Path] = []
        for p in paths:
            if not p.exists():
                if explicit:
                    raise ConfigError(f"kubeconfig {p} does not exist")
                continue
            try:
                doc = yaml.safe_load(p.read_text()) or {}
            except (OSError, yaml.YAMLError) as e:
                raise ConfigError(f"cannot read kubeconfig {p}: {e}") from e
            if not isinstance(doc, dict):
                raise ConfigError(f"kubeconfig {p}: not a mapping")
            loaded.append(p)
            for section in ("clusters", "users", "contexts"):
                for name, entry in _named(doc.get(section)).items():
                    if name not in seen[section]:
                        seen[section].add(name)
                        merged[section].append(entry)
                        origins[(section, name)] = p
            if not merged["current-context"] and doc.get("current-context"):
                merged["current-context"] = doc["current-context"]
            for key in ("preferences", "apiVersion", "kind"):
                if key in doc and key not in merged:
                    merged[key] = doc[key]
        return cls(merged, loaded[0] if loaded else (paths[0] if paths else None), origins)

    # -- reading ---------------------------------------------------------------------------

    @property
    def current_context(self) -> str:
        return self.raw.get("current-context") or ""

    def contexts(self) -> dict[str, dict[str, Any]]:
        return {n: e.get("context") or {} for n, e in _named(self.raw["contexts"]).items()}

    def clusters(self) -> dict[str, dict[str, Any]]:
        return {n: e.get("cluster") or {} for n, e in _named(self.raw["clusters"]).items()}

    def users(self) -> dict[str, dict[str, Any]]:
        return {n: e.get("user") or {} for n, e in _named(self.raw["users"]).items()}

    def _path(self, section: str, name: str, value: str | None) -> str | None:
        if not value:
            return None
        p = Path(value).expanduser()
        if not p.is_absolute():
            origin = self._origins.get((section, name)) or self.path
            if origin is not None:
                p = origin.parent / p
        return str(p)

    def for_context(self, name: str | None = None) -> ConnectionConfig:
        """The connection settings of context ``name`` (default: the current context)."""
        name = name or self.current_context
        if not name:
            raise ConfigError("no context given and the kubeconfig has no current-context")
        ctx = self.contexts().get(name)
        if ctx is None:
            raise ConfigError(f'context "{name}" not found in kubeconfig')
        cluster_name = ctx.get("cluster") or ""
        cluster = self.clusters().get(cluster_name)
        if cluster is None:
            raise ConfigError(f'context "{name}": cluster "{cluster_name}" not found')
        server = cluster.get("server")
        if not server:
            raise ConfigError(f'cluster "{cluster_name}" has no server')
        user_name = ctx.get("user") or ""
        user = self.users().get(user_name, {}) if user_name else {}
        if user_name and user_name not in self.users():
            raise ConfigError(f'context "{name}": user "{user_name}" not found')
        known_cluster = {"server", "certificate-authority", "certificate-authority-data",
                         "insecure-skip-tls-verify", "tls-server-name"}
        return ConnectionConfig(
            server=str(server).rstrip("/"),
            namespace=ctx.get("namespace") or "default",
            context=name,
            cluster=cluster_name,
            user=user_name,
            ca_file=self._path("clusters", cluster_name, cluster.get("certificate-authority")),
            ca_data=_b64(cluster.get("certificate-authority-data"), "certificate-authority-data"),
            insecure_skip_tls_verify=bool(cluster.get("insecure-skip-tls-verify", False)),
            tls_server_name=cluster.get("tls-server-name"),
            token=user.get("token"),
            token_file=self._path("users", user_name, user.get("tokenFile")),
            client_cert_file=self._path("users", user_name, user.get("client-certificate")),
            client_key_file=self._path("users", user_name, user.get("client-key")),
            client_cert_data=_b64(user.get("client-certificate-data"), "client-certificate-data"),
            client_key_data=_b64(user.get("client-key-data"), "client-key-data"),
            username=user.get("username"),
            password=user.get("password"),
            extra={k: v for k, v in cluster.items() if k not in known_cluster},
        )

    # -- editing ---------------------------------------------------------------------------

    def _upsert(self, section: str, key: str, name: str, values: dict[str, Any]) -> None:
        for entry in self.raw[section]:
            if entry.get("name") == name:
                body = entry.setdefault(key, {})
                break
        else:
            body = {}
            self.raw[section].append({"name": name, key: body})
        for k, v in values.items():
            if v is None:
                continue
            if v == "":
                body.pop(k, None)
            else:
                body[k] = v

    def set_cluster(self, name: str, *, server: str | None = None, ca_file: str | None = None,
                    ca_data: bytes | None = None, insecure_skip_tls_verify: bool | None = None) -> None:
        """Create or edit a cluster entry; arguments left None keep their current value."""
        self._upsert("clusters", "cluster", name, {
            "server": server,
            "certificate-authority": ca_file,
            "certificate-authority-data": base64.b64encode(ca_data).decode() if ca_data else None,
            "insecure-skip-tls-verify": insecure_skip_tls_verify,
        })

    def set_credentials(self, name: str, *, token: str | None = None, client_cert_file: str | None = None,
                        client_key_file: str | None = None, client_cert_data: bytes | None = None,
                        client_key_data: bytes | None = None, username: str | None = None,
                        password: str | None = None) -> None:
        """Create or edit a user entry; arguments left None keep their current value."""
        self._upsert("users", "user", name, {
            "token": token,
            "client-certificate": client_cert_file,
            "client-key": client_key_file,
            "client-certificate-data": base64.b64encode(client_cert_data).decode() if client_cert_data else None,
            "client-key-data": base64.b64encode(client_key_data).decode() if client_key_data else None,
            "username": username,
            "password": password,
        })

    def set_context(self, name: str, *, cluster: str | None = None, user: str | None = None,
                    namespace: str | None = None) -> None:
        """Create or edit a context (``kubectl config set-context``); "" clears a field."""
        self._upsert("contexts", "context", name, {"cluster": cluster, "user": user, "namespace": namespace})

    def use_context(self, name: str) -> None:
        if name not in self.contexts():
            raise ConfigError(f'no context exists with the name: "{name}"')
        self.raw["current-context"] = name

    def delete_context(self, name: str) -> None:
        if name not in self.contexts():
            raise ConfigError(f'context "{name}" not found')
        self.raw["contexts"] = [e for e in self.raw["contexts"] if e.get("name") != name]
        if self.current_context == name:
            self.raw["current-context"] = ""

    def dump(self) -> str:
        return yaml.safe_dump(self.raw, default_flow_style=False, sort_keys=False)

    def save(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Write atomically (mode 0600, it may hold credentials) to ``path`` or where it was loaded."""
        target = Path(path).expanduser() if path is not None else self.path
        if target is None:
            target = default_paths()[0]
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".kubeconfig-", dir=target.parent)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(self.dump())
            os.chmod(tmp, 0o600)
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        self.path = target
        return target


SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def in_cluster(service_account_dir: str | os.PathLike[str] = SERVICE_ACCOUNT_DIR,
               environ: dict[str, str] | None = None) -> ConnectionConfig:
    """Settings for a process running in a pod: the API server from KUBERNETES_SERVICE_HOST/PORT,
    the pod's service account token (re-read on each client construction), its CA and namespace."""
    env = os.environ if environ is None else environ
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise ConfigError("not in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are unset")
    sa = Path(service_account_dir)
    if not (sa / "token").exists():
        raise ConfigError(f"not in a cluster: no service account token in {sa}")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    namespace = "default"
    if (sa / "namespace").exists():
        namespace = (sa / "namespace").read_text().strip() or "default"
    ca = sa / "ca.crt"
    return ConnectionConfig(server=f"https://{host}:{port}", namespace=namespace, context="in-cluster",
                            token_file=str(sa / "token"), ca_file=str(ca) if ca.exists() else None)


def default_connection(path: str | os.PathLike[str] | None = None, context: str | None = None) -> ConnectionConfig:
    """An explicit kubeconfig if given; else $KUBECONFIG or ~/.kube/config if present; else the
    in-cluster service account."""
    if path is not None or os.environ.get("KUBECONFIG") or any(p.exists() for p in default_paths()):
        return Config.load(path).for_context(context)
    return in_cluster()


def load_kubeconfig(path: str | os.PathLike[str] | None = None) -> Config:
    return Config.load(path)


def load_connection(path: str | os.PathLike[str] | None = None, context: str | None = None) -> ConnectionConfig:
    """Shortcut: the connection settings of ``context`` in the kubeconfig at ``path`` (or default)."""
    return Config.load(path).for_context(context)


def write_kubeconfig(path: str | os.PathLike[str], server: str, *, token: str | None = None,
                     ca_file: str | None = None, ca_data: bytes | None = None,
                     insecure_skip_tls_verify: bool = False, client_cert_data: bytes | None = None,
                     client_key_data: bytes | None = None, client_cert_file: str | None = None,
                     client_key_file: str | None = None, username: str | None = None,
                     password: str | None = None, cluster: str = "navarch", user: str = "navarch-admin",
                     context: str = "navarch", namespace: str | None = None) -> Path:
    """Write a fresh kubeconfig with one cluster, one user and one current context; returns its path."""
    cfg = Config()
    cfg.set_cluster(cluster, server=server, ca_file=ca_file, ca_data=ca_data,
                    insecure_skip_tls_verify=insecure_skip_tls_verify or None)
    cfg.set_credentials(user, token=token, client_cert_file=client_cert_file, client_key_file=client_key_file,
                        client_cert_data=client_cert_data, client_key_data=client_key_data,
                        username=username, password=password)
    cfg.set_context(context, cluster=cluster, user=user, namespace=namespace)
    cfg.use_context(context)
    return cfg.save(path)
