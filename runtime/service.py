"""The CRI runtime and image services: ids, names, states, persistence, gRPC mapping.

``Runtime`` is the state machine. It owns sandbox and container records (persisted through
``runtime.state.StateStore``), allocates 64-hex ids (lookups accept unique prefixes), checks
transitions, resolves a container's command and environment against its image, and delegates the
host work to a ``runtime.driver.Driver``. ``RuntimeServicer`` and ``ImageServicer`` translate
between the generated gRPC messages and ``Runtime``; every error leaves as a gRPC status code:
unknown ids NOT_FOUND, bad input INVALID_ARGUMENT, wrong state FAILED_PRECONDITION, duplicate
names ALREADY_EXISTS, driver failures INTERNAL.

Semantics follow the CRI contract: RunPodSandbox leaves the sandbox READY, StopPodSandbox stops
its containers and makes it NOTREADY (repeatable), RemovePodSandbox removes containers too and
succeeds for unknown ids, RemoveContainer succeeds for unknown ids, StopContainer on a stopped
container succeeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import orjson
import structlog
from google.protobuf import json_format
from prometheus_client import Counter, Histogram

from proto import runtime_pb2 as pb
from proto import runtime_pb2_grpc as pb_grpc
from runtime import driver as d
from runtime.state import StateStore

log = structlog.get_logger(component="runtime")

RUNTIME_NAME = "navarch"
RUNTIME_VERSION = "0.1.0"
CRI_API_VERSION = "v1"
EXEC_OUTPUT_CAP = 16 << 20

STATE_NAMES = {pb.CONTAINER_CREATED: "CREATED", pb.CONTAINER_RUNNING: "RUNNING",
               pb.CONTAINER_EXITED: "EXITED", pb.CONTAINER_UNKNOWN: "UNKNOWN"}
STATE_VALUES = {v: k for k, v in STATE_NAMES.items()}
PROPAGATION = {pb.PROPAGATION_PRIVATE: "private", pb.PROPAGATION_HOST_TO_CONTAINER: "rslave",
               pb.PROPAGATION_BIDIRECTIONAL: "rshared"}
PROTOCOLS = {pb.TCP: "TCP", pb.UDP: "UDP", pb.SCTP: "SCTP"}


class CRIError(Exception):
    """An outcome the caller sees as a gRPC status code with a message."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code


def not_found(what: str, id_: str) -> CRIError:
    return CRIError(grpc.StatusCode.NOT_FOUND, f"{what} {id_!r} not found")


def invalid(message: str) -> CRIError:
    return CRIError(grpc.StatusCode.INVALID_ARGUMENT, message)


def precondition(message: str) -> CRIError:
    return CRIError(grpc.StatusCode.FAILED_PRECONDITION, message)


@dataclass(frozen=True)
class ImageErrors:
    """Exception classes of the image store in use, mapped to gRPC codes."""

    not_found: tuple[type[BaseException], ...] = ()
    invalid: tuple[type[BaseException], ...] = ()
    pull: tuple[type[BaseException], ...] = ()


def to_dict(message: Any) -> dict:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def from_dict(data: dict, cls: type) -> Any:
    return json_format.ParseDict(data, cls(), ignore_unknown_fields=True)


def now_ns() -> int:
    return time.time_ns()


def new_id() -> str:
    return secrets.token_hex(32)


def matches_labels(labels: dict[str, str], selector: Iterable[tuple[str, str]]) -> bool:
    return all(labels.get(k) == v for k, v in selector)


def resolve_prefix(records: dict[str, dict], id_: str, what: str) -> dict:
    """The record whose id is ``id_`` or starts with it; NOT_FOUND if none or several."""
    if not id_:
        raise invalid(f"{what} id must not be empty")
    record = records.get(id_)
    if record is not None:
        return record
    found = [r for k, r in records.items() if k.startswith(id_)]
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise CRIError(grpc.StatusCode.NOT_FOUND, f"{what} id prefix {id_!r} is ambiguous")
    raise not_found(what, id_)


def _int64(wrapper: dict | None) -> int | None:
    if wrapper is None:
        return None
    return int(wrapper.get("value", 0))


def image_command(config: pb.ContainerConfig, image_config: dict) -> tuple[list[str], list[str]]:
    """Kubernetes' rule: a given command replaces Entrypoint and drops the image's Cmd."""
    if config.command:
        return list(config.command), list(config.args)
    entrypoint = list(image_config.get("Entrypoint") or [])
    args = list(config.args) or list(image_config.get("Cmd") or [])
    return entrypoint, args


def merge_env(image_env: Iterable[str], envs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    merged: dict[str, str] = {}
    for item in image_env:
        key, _, value = item.partition("=")
        merged[key] = value
    for key, value in envs:
        merged[key] = value
    return list(merged.items())


def resources_from(data: dict | None) -> d.Resources:
    data = data or {}
    pids = data.get("unified", {}).get("pids.max", "0")
    return d.Resources(
        cpu_period=int(data.get("cpu_period", 0)), cpu_quota=int(data.get("cpu_quota", 0)),
        cpu_shares=int(data.get("cpu_shares", 0)),
        memory_limit_in_bytes=int(data.get("memory_limit_in_bytes", 0)),
        pids_limit=int(pids) if str(pids).isdigit() else 0,
        oom_score_adj=int(data.get("oom_score_adj", 0)),
        cpuset_cpus=data.get("cpuset_cpus", ""), cpuset_mems=data.get("cpuset_mems", ""))


def security_from(data: dict | None) -> d.SecurityContext:
    data = data or {}
    caps = data.get("capabilities", {})
    return d.SecurityContext(
        privileged=bool(data.get("privileged", False)),
        readonly_rootfs=bool(data.get("readonly_rootfs", False)),
        run_as_user=_int64(data.get("run_as_user")), run_as_group=_int64(data.get("run_as_group")),
        run_as_username=data.get("run_as_username", ""),
        supplemental_groups=[int(g) for g in data.get("supplemental_groups", [])],
        add_capabilities=list(caps.get("add_capabilities", [])),
        drop_capabilities=list(caps.get("drop_capabilities", [])),
        no_new_privs=bool(data.get("no_new_privs", False)))


class Runtime:
    """Sandboxes and containers over a driver and an image store.

    ``images`` offers ``pull``, ``get``, ``list``, ``remove``, ``fs_info`` (``runtime.images``
    or ``runtime.hollow.HollowImageStore``); ``make_auth`` turns a CRI AuthConfig dict into what
    ``images.pull`` accepts.
    """

    def __init__(self, root: Path, driver: d.Driver, images: Any, *, pod_cidr: str = "",
                 image_errors: ImageErrors = ImageErrors(), make_auth: Callable[[dict], Any] | None = None,
                 driver_name: str = ""):
        self.root = Path(root)
        self.driver = driver
        self.images = images
        self.pod_cidr = pod_cidr
        self.image_errors = image_errors
        self.make_auth = make_auth
        self.driver_name = driver_name
        self.store = StateStore(self.root)
        self.sandboxes: dict[str, dict] = {}
        self.containers: dict[str, dict] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._specs: dict[str, tuple[dict, Any, d.ContainerSpec]] = {}
        self.streaming: Any = None     # runtime.streaming.StreamingServer, set by the server
        # async () -> (ready, message) for the NetworkReady condition; None: always ready.
        self.network_probe: Callable[[], Any] | None = None

    # ---- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        records = await self.store.load()
        self.sandboxes = records["sandboxes"]
        self.containers = records["containers"]
        sandbox_specs = [self.sandbox_spec(r) for r in self.sandboxes.values()]
        container_specs = [self.container_spec(r) for r in self.containers.values()]
        await self.driver.start(sandbox_specs, container_specs)
        log.info("runtime started", sandboxes=len(self.sandboxes), containers=len(self.containers))

    async def close(self) -> None:
        await self.driver.close()
        close_images = getattr(self.images, "close", None)
        if close_images is not None:
            await close_images()

    def _lock(self, id_: str) -> asyncio.Lock:
        lock = self._locks.get(id_)
        if lock is None:
            lock = self._locks[id_] = asyncio.Lock()
        return lock

    async def _with_lock(self, id_: str, work: Any) -> Any:
        async with self._lock(id_):
            return await work

    # ---- specs -------------------------------------------------------------------------------

    def sandbox_config(self, record: dict) -> pb.PodSandboxConfig:
        return from_dict(record["config"], pb.PodSandboxConfig)

    def sandbox_spec(self, record: dict) -> d.SandboxSpec:
        cfg = record["config"]
        meta = cfg.get("metadata", {})
        linux = cfg.get("linux", {})
        ns = linux.get("security_context", {}).get("namespace_options", {})
        dns = cfg.get("dns_config")
        return d.SandboxSpec(
            id=record["id"], name=meta.get("name", ""), namespace=meta.get("namespace", ""),
            uid=meta.get("uid", ""), hostname=cfg.get("hostname", ""),
            host_network=ns.get("network") == "NODE",
            dns=d.DNSConfig(servers=list(dns.get("servers", [])), searches=list(dns.get("searches", [])),
                            options=list(dns.get("options", []))) if dns is not None else None,
            port_mappings=[d.PortMapping(protocol=p.get("protocol", "TCP"),
                                         container_port=int(p.get("container_port", 0)),
                                         host_port=int(p.get("host_port", 0)), host_ip=p.get("host_ip", ""))
                           for p in cfg.get("port_mappings", [])],
            cgroup_parent=linux.get("cgroup_parent", ""),
            state_dir=self.root / "sandboxes" / record["id"],
            labels=dict(cfg.get("labels", {})), annotations=dict(cfg.get("annotations", {})))

    def sandbox_network(self, record: dict) -> d.SandboxNetwork:
        net = record.get("network") or {}
        return d.SandboxNetwork(netns_path=net.get("netns_path", ""), ip=net.get("ip", ""),
                                additional_ips=list(net.get("additional_ips", [])))

    def _image_info(self, record: dict) -> d.ImageInfo:
        image = self.images.get(record["image_id"])
        if image is not None:
            return image.driver_info()
        # The image was removed after the container was created: what runs keeps running.
        return d.ImageInfo(id=record["image_id"], config=record.get("image_config", {}), layer_dirs=[])

    def container_spec(self, record: dict) -> d.ContainerSpec:
        """The driver's view of a container, built once per record version (lists call this a lot)."""
        cached = self._specs.get(record["id"])
        if cached is not None and cached[0] is record and cached[1] == record.get("resources"):
            return cached[2]
        spec = self._build_container_spec(record)
        self._specs[record["id"]] = (record, record.get("resources"), spec)
        return spec

    def _build_container_spec(self, record: dict) -> d.ContainerSpec:
        cfg = record["config"]
        linux = cfg.get("linux", {})
        return d.ContainerSpec(
            id=record["id"], sandbox_id=record["sandbox_id"], name=cfg.get("metadata", {}).get("name", ""),
            image=self._image_info(record), command=list(record["command"]), args=list(record["args"]),
            working_dir=record["working_dir"], envs=[(k, v) for k, v in record["envs"]],
            mounts=[d.Mount(container_path=m.get("container_path", ""), host_path=m.get("host_path", ""),
                            readonly=bool(m.get("readonly", False)),
                            propagation=PROPAGATION[pb.MountPropagation.Value(
                                m.get("propagation", "PROPAGATION_PRIVATE"))])
                    for m in cfg.get("mounts", [])],
            log_path=record["log_path"], tty=bool(cfg.get("tty", False)), stdin=bool(cfg.get("stdin", False)),
            stdin_once=bool(cfg.get("stdin_once", False)),
            resources=resources_from(record.get("resources", linux.get("resources"))),
            security=security_from(linux.get("security_context")),
            state_dir=self.root / "containers" / record["id"],
            labels=dict(cfg.get("labels", {})), annotations=dict(cfg.get("annotations", {})))

    # ---- sandboxes ---------------------------------------------------------------------------

    def find_sandbox(self, id_: str) -> dict:
        return resolve_prefix(self.sandboxes, id_, "pod sandbox")

    async def run_sandbox(self, config: pb.PodSandboxConfig, runtime_handler: str = "") -> str:
        meta = config.metadata
        if not meta.name or not meta.namespace:
            raise invalid("config.metadata: name and namespace are required")
        if runtime_handler:
            raise invalid(f"runtime_handler {runtime_handler!r} is not supported (only the default)")
        for other in self.sandboxes.values():
            om = other["config"].get("metadata", {})
            if (om.get("name", ""), om.get("namespace", ""), om.get("uid", ""), int(om.get("attempt", 0))) == \
                    (meta.name, meta.namespace, meta.uid, meta.attempt):
                raise CRIError(grpc.StatusCode.ALREADY_EXISTS,
                               f"sandbox name {meta.namespace}/{meta.name} (uid {meta.uid!r}, attempt "
                               f"{meta.attempt}) is reserved by {other['id']}")
        record = {"id": new_id(), "config": to_dict(config), "state": "NOTREADY", "created_at": now_ns(),
                  "network": None, "runtime_handler": runtime_handler}
        # Recorded before the driver runs so a daemon dying half-way leaves a NOTREADY sandbox that
        # RemovePodSandbox can clean up, never host state nobody knows about.
        async with self._lock(record["id"]):
            self.sandboxes[record["id"]] = record
            await self.store.save("sandboxes", record)
            spec = self.sandbox_spec(record)
            try:
                network = await self.driver.run_sandbox(spec)
            except BaseException:
                try:
                    await self.driver.remove_sandbox(spec)
                finally:
                    self.sandboxes.pop(record["id"], None)
                    await self.store.delete("sandboxes", record["id"])
                raise
            record["network"] = {"netns_path": network.netns_path, "ip": network.ip,
                                 "additional_ips": list(network.additional_ips)}
            record["state"] = "READY"
            await self.store.save("sandboxes", record)
        log.info("sandbox ready", pod=f"{meta.namespace}/{meta.name}", id=record["id"][:13], ip=network.ip)
        return record["id"]

    def _sandbox_containers(self, sandbox_id: str) -> list[dict]:
        return [c for c in self.containers.values() if c["sandbox_id"] == sandbox_id]

    async def stop_sandbox(self, id_: str) -> None:
        record = self.find_sandbox(id_)
        async with self._lock(record["id"]):
            await asyncio.gather(*(self._with_lock(c["id"], self._stop_container_locked(c, 0))
                                   for c in self._sandbox_containers(record["id"])))
            await self.driver.stop_sandbox(self.sandbox_spec(record))
            if record["state"] != "NOTREADY":
                record["state"] = "NOTREADY"
                await self.store.save("sandboxes", record)

    async def remove_sandbox(self, id_: str) -> None:
        try:
            record = self.find_sandbox(id_)
        except CRIError as e:
            if e.code == grpc.StatusCode.NOT_FOUND:
                return
            raise
        async with self._lock(record["id"]):
            if record["id"] not in self.sandboxes:
                return
            for c in self._sandbox_containers(record["id"]):
                await self._with_lock(c["id"], self._remove_container_locked(c))
                self._locks.pop(c["id"], None)
            spec = self.sandbox_spec(record)
            await self.driver.stop_sandbox(spec)
            await self.driver.remove_sandbox(spec)
            del self.sandboxes[record["id"]]
            await self.store.delete("sandboxes", record["id"])
        self._locks.pop(record["id"], None)

    # ---- containers --------------------------------------------------------------------------

    def find_container(self, id_: str) -> dict:
        return resolve_prefix(self.containers, id_, "container")

    async def create_container(self, sandbox_id: str, config: pb.ContainerConfig,
                               sandbox_config: pb.PodSandboxConfig | None = None) -> str:
        sandbox = self.find_sandbox(sandbox_id)
        if not config.metadata.name:
            raise invalid("config.metadata.name is required")
        if not config.image.image:
            raise invalid("config.image.image is required")
        image = self.images.get(config.image.image)
        if image is None:
            raise not_found("image", config.image.image)
        info = image.driver_info()
        command, args = image_command(config, info.config)
        if not command and not args:
            raise invalid("no command specified: neither the container config nor the image has one")
        envs = merge_env(info.config.get("Env") or [], [(kv.key, kv.value) for kv in config.envs])
        log_dir = sandbox["config"].get("log_directory", "")
        log_path = ""
        if config.log_path:
            log_path = config.log_path if config.log_path.startswith("/") or not log_dir else \
                str(Path(log_dir) / config.log_path)
        for m in config.mounts:
            if not m.container_path.startswith("/"):
                raise invalid(f"config.mounts: container_path {m.container_path!r} must be absolute")
        async with self._lock(sandbox["id"]):
            if sandbox["state"] != "READY":
                raise precondition(f"pod sandbox {sandbox['id']} is not ready")
            for other in self._sandbox_containers(sandbox["id"]):
                om = other["config"].get("metadata", {})
                if om.get("name") == config.metadata.name and int(om.get("attempt", 0)) == config.metadata.attempt:
                    raise CRIError(grpc.StatusCode.ALREADY_EXISTS,
                                   f"container name {config.metadata.name!r} attempt {config.metadata.attempt} "
                                   f"is reserved by {other['id']}")
            record = {
                "id": new_id(), "sandbox_id": sandbox["id"], "config": to_dict(config),
                "image_id": image.id, "image_name": image.repo_tags[0] if image.repo_tags else config.image.image,
                "image_ref": image.repo_digests[0] if image.repo_digests else image.id,
                "image_config": info.config,
                "created_at": now_ns(), "command": command, "args": args, "envs": [list(e) for e in envs],
                "working_dir": config.working_dir or info.config.get("WorkingDir") or "",
                "log_path": log_path, "created": False,
            }
            self.containers[record["id"]] = record
            await self.store.save("containers", record)
            spec = self.container_spec(record)
            try:
                await self.driver.create_container(spec, self.sandbox_spec(sandbox), self.sandbox_network(sandbox))
            except BaseException:
                try:
                    await self.driver.remove_container(spec)
                finally:
                    self.containers.pop(record["id"], None)
                    self._specs.pop(record["id"], None)
                    await self.store.delete("containers", record["id"])
                raise
            record["created"] = True
            await self.store.save("containers", record)
        return record["id"]

    async def start_container(self, id_: str) -> None:
        record = self.find_container(id_)
        async with self._lock(record["id"]):
            spec = self.container_spec(record)
            state = await self.container_state(record)
            if state.state != "CREATED":
                raise precondition(f"container {record['id']} is {state.state}, not CREATED")
            sandbox = self.sandboxes.get(record["sandbox_id"])
            if sandbox is None or sandbox["state"] != "READY":
                raise precondition(f"pod sandbox {record['sandbox_id']} is not ready")
            await self.driver.start_container(spec)

    async def _stop_container_locked(self, record: dict, timeout: int) -> None:
        spec = self.container_spec(record)
        state = await self.container_state(record)
        if state.state in ("RUNNING", "UNKNOWN"):
            # UNKNOWN includes a container the driver never finished creating: nothing to stop then.
            with contextlib.suppress(d.NotFoundError):
                await self.driver.stop_container(spec, timeout)

    async def stop_container(self, id_: str, timeout: int) -> None:
        record = self.find_container(id_)
        async with self._lock(record["id"]):
            await self._stop_container_locked(record, max(0, timeout))

    async def _remove_container_locked(self, record: dict) -> None:
        spec = self.container_spec(record)
        await self._stop_container_locked(record, 0)
        with contextlib.suppress(d.NotFoundError):
            await self.driver.remove_container(spec)
        self.containers.pop(record["id"], None)
        self._specs.pop(record["id"], None)
        await self.store.delete("containers", record["id"])

    async def remove_container(self, id_: str) -> None:
        try:
            record = self.find_container(id_)
        except CRIError as e:
            if e.code == grpc.StatusCode.NOT_FOUND:
                return
            raise
        async with self._lock(record["id"]):
            if record["id"] in self.containers:
                await self._remove_container_locked(record)
        self._locks.pop(record["id"], None)

    async def container_state(self, record: dict) -> d.ContainerRunState:
        """What the driver observes; UNKNOWN when it has no such container (a creation cut short)."""
        try:
            return await self.driver.container_state(self.container_spec(record))
        except d.NotFoundError:
            return d.ContainerRunState(state="UNKNOWN")

    async def update_resources(self, id_: str, linux: pb.LinuxContainerResources) -> None:
        record = self.find_container(id_)
        async with self._lock(record["id"]):
            data = to_dict(linux)
            await self.driver.update_resources(self.container_spec(record), resources_from(data))
            record["resources"] = data
            await self.store.save("containers", record)

    async def reopen_log(self, id_: str) -> None:
        record = self.find_container(id_)
        state = await self.container_state(record)
        if state.state != "RUNNING":
            raise precondition(f"container {record['id']} is not running")
        await self.driver.reopen_log(self.container_spec(record))

    async def _running(self, id_: str) -> dict:
        record = self.find_container(id_)
        state = await self.container_state(record)
        if state.state != "RUNNING":
            raise precondition(f"container {record['id']} is not running ({state.state})")
        return record

    async def exec_sync(self, id_: str, cmd: list[str], timeout: int) -> tuple[bytes, bytes, int]:
        if not cmd:
            raise invalid("cmd must not be empty")
        record = await self._running(id_)
        out, err, code = await self.driver.exec_sync(self.container_spec(record), cmd, max(0, timeout))
        return out[:EXEC_OUTPUT_CAP], err[:EXEC_OUTPUT_CAP], code

    # Streaming sessions, opened by runtime.streaming when a client connects with a token.

    async def open_exec(self, id_: str, cmd: list[str], tty: bool, stdin: bool) -> d.ExecSession:
        record = await self._running(id_)
        return await self.driver.exec(self.container_spec(record), cmd, tty=tty, stdin=stdin)

    async def open_attach(self, id_: str, stdin: bool) -> d.ExecSession:
        record = await self._running(id_)
        return await self.driver.attach(self.container_spec(record), stdin=stdin)

    async def open_port(self, sandbox_id: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        record = self.find_sandbox(sandbox_id)
        if record["state"] != "READY":
            raise precondition(f"pod sandbox {record['id']} is not ready")
        return await self.driver.port_forward(self.sandbox_spec(record), self.sandbox_network(record), port)

    # ---- messages ----------------------------------------------------------------------------

    def sandbox_message(self, record: dict) -> pb.PodSandbox:
        cfg = record["config"]
        return pb.PodSandbox(
            id=record["id"], metadata=from_dict(cfg.get("metadata", {}), pb.PodSandboxMetadata),
            state=pb.SANDBOX_READY if record["state"] == "READY" else pb.SANDBOX_NOTREADY,
            created_at=record["created_at"], labels=cfg.get("labels", {}),
            annotations=cfg.get("annotations", {}), runtime_handler=record.get("runtime_handler", ""))

    def sandbox_status(self, record: dict) -> pb.PodSandboxStatus:
        cfg = record["config"]
        net = self.sandbox_network(record)
        ns = cfg.get("linux", {}).get("security_context", {}).get("namespace_options", {})
        status = pb.PodSandboxStatus(
            id=record["id"], metadata=from_dict(cfg.get("metadata", {}), pb.PodSandboxMetadata),
            state=pb.SANDBOX_READY if record["state"] == "READY" else pb.SANDBOX_NOTREADY,
            created_at=record["created_at"], labels=cfg.get("labels", {}),
            annotations=cfg.get("annotations", {}), runtime_handler=record.get("runtime_handler", ""),
            linux=pb.LinuxPodSandboxStatus(namespaces=pb.Namespace(
                options=from_dict(ns, pb.NamespaceOption))))
        if record["state"] == "READY" and net.ip:
            status.network.CopyFrom(pb.PodSandboxNetworkStatus(
                ip=net.ip, additional_ips=[pb.PodIP(ip=ip) for ip in net.additional_ips]))
        return status

    def container_message(self, record: dict, state: d.ContainerRunState) -> pb.Container:
        cfg = record["config"]
        return pb.Container(
            id=record["id"], pod_sandbox_id=record["sandbox_id"],
            metadata=from_dict(cfg.get("metadata", {}), pb.ContainerMetadata),
            image=pb.ImageSpec(image=record["image_name"]), image_ref=record["image_ref"],
            image_id=record["image_id"], state=STATE_VALUES.get(state.state, pb.CONTAINER_UNKNOWN),
            created_at=record["created_at"], labels=cfg.get("labels", {}), annotations=cfg.get("annotations", {}))

    def container_status(self, record: dict, state: d.ContainerRunState) -> pb.ContainerStatus:
        cfg = record["config"]
        resources = record.get("resources", cfg.get("linux", {}).get("resources"))
        status = pb.ContainerStatus(
            id=record["id"], metadata=from_dict(cfg.get("metadata", {}), pb.ContainerMetadata),
            state=STATE_VALUES.get(state.state, pb.CONTAINER_UNKNOWN), created_at=record["created_at"],
            started_at=state.started_at, finished_at=state.finished_at, exit_code=state.exit_code,
            image=pb.ImageSpec(image=record["image_name"]), image_ref=record["image_ref"],
            image_id=record["image_id"], reason=state.reason, message=state.message,
            labels=cfg.get("labels", {}), annotations=cfg.get("annotations", {}),
            mounts=[from_dict(m, pb.Mount) for m in cfg.get("mounts", [])], log_path=record["log_path"])
        if resources:
            status.resources.CopyFrom(pb.ContainerResources(linux=from_dict(resources, pb.LinuxContainerResources)))
        return status

    def container_info(self, record: dict, state: d.ContainerRunState) -> dict[str, str]:
        info = {"sandboxID": record["sandbox_id"], "pid": state.pid, "config": record["config"],
                "command": record["command"], "args": record["args"], "workingDir": record["working_dir"],
                "logPath": record["log_path"], "imageID": record["image_id"],
                "stateDir": str(self.root / "containers" / record["id"])}
        return {"info": orjson.dumps(info).decode()}

    async def stats(self, record: dict) -> pb.ContainerStats:
        usage = await self.driver.container_usage(self.container_spec(record))
        cfg = record["config"]
        mountpoint = str(self.root / "containers" / record["id"])
        return pb.ContainerStats(
            attributes=pb.ContainerAttributes(
                id=record["id"], metadata=from_dict(cfg.get("metadata", {}), pb.ContainerMetadata),
                labels=cfg.get("labels", {}), annotations=cfg.get("annotations", {})),
            cpu=pb.CpuUsage(timestamp=usage.timestamp,
                            usage_core_nano_seconds=pb.UInt64Value(value=usage.cpu_usage_core_nanoseconds)),
            memory=pb.MemoryUsage(timestamp=usage.timestamp,
                                  working_set_bytes=pb.UInt64Value(value=usage.memory_working_set_bytes),
                                  usage_bytes=pb.UInt64Value(value=usage.memory_usage_bytes)),
            writable_layer=pb.FilesystemUsage(
                timestamp=usage.timestamp, fs_id=pb.FilesystemIdentifier(mountpoint=mountpoint),
                used_bytes=pb.UInt64Value(value=usage.writable_layer_bytes)))

    async def sandbox_stats(self, record: dict) -> pb.PodSandboxStats:
        cfg = record["config"]
        containers = []
        for c in self._sandbox_containers(record["id"]):
            if (await self.container_state(c)).state == "RUNNING":
                containers.append(await self.stats(c))
        ts = now_ns()
        cpu = sum(c.cpu.usage_core_nano_seconds.value for c in containers)
        ws = sum(c.memory.working_set_bytes.value for c in containers)
        usage = sum(c.memory.usage_bytes.value for c in containers)
        return pb.PodSandboxStats(
            attributes=pb.PodSandboxAttributes(
                id=record["id"], metadata=from_dict(cfg.get("metadata", {}), pb.PodSandboxMetadata),
                labels=cfg.get("labels", {}), annotations=cfg.get("annotations", {})),
            linux=pb.LinuxPodSandboxStats(
                cpu=pb.CpuUsage(timestamp=ts, usage_core_nano_seconds=pb.UInt64Value(value=cpu)),
                memory=pb.MemoryUsage(timestamp=ts, working_set_bytes=pb.UInt64Value(value=ws),
                                      usage_bytes=pb.UInt64Value(value=usage)),
                containers=containers))

    # ---- images ------------------------------------------------------------------------------

    def image_message(self, image: Any) -> pb.Image:
        msg = pb.Image(id=image.id, repo_tags=list(image.repo_tags), repo_digests=list(image.repo_digests),
                       size=int(image.size), spec=pb.ImageSpec(image=image.id))
        user = ((image.config or {}).get("config") or {}).get("User", "") or ""
        name = user.split(":", 1)[0]
        if name.isdigit():
            msg.uid.value = int(name)
        elif name:
            msg.username = name
        return msg

    def map_image_error(self, e: BaseException) -> CRIError | None:
        if isinstance(e, self.image_errors.not_found):
            return CRIError(grpc.StatusCode.NOT_FOUND, str(e) or "image not found")
        if isinstance(e, self.image_errors.invalid):
            return CRIError(grpc.StatusCode.INVALID_ARGUMENT, str(e) or "invalid image reference")
        if isinstance(e, self.image_errors.pull):
            code = grpc.StatusCode.UNKNOWN
            if getattr(e, "not_found", False):
                code = grpc.StatusCode.NOT_FOUND
            elif getattr(e, "unauthorized", False):
                code = grpc.StatusCode.UNAUTHENTICATED
            return CRIError(code, f"pull failed: {e}")
        return None


# ---- gRPC --------------------------------------------------------------------------------------

REQUESTS = Counter("navarch_runtime_cri_requests_total", "CRI calls served, by method and status code.",
                   ["method", "code"])
LATENCY = Histogram("navarch_runtime_cri_request_duration_seconds", "Time to serve a CRI call.", ["method"])


def _grpc(method: Callable) -> Callable:
    """Run a servicer method, turning typed failures into gRPC status codes."""

    @functools.wraps(method)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        started = time.monotonic()
        try:
            response = await method(self, request, context)
        except Exception as e:      # every failure leaves as a status code
            code, message = _status_of(self.runtime, method.__name__, e)
        else:
            REQUESTS.labels(method.__name__, "OK").inc()
            LATENCY.labels(method.__name__).observe(time.monotonic() - started)
            return response
        REQUESTS.labels(method.__name__, code.name).inc()
        LATENCY.labels(method.__name__).observe(time.monotonic() - started)
        await context.abort(code, message)

    return wrapper


def _status_of(runtime: Runtime, method: str, e: Exception) -> tuple[grpc.StatusCode, str]:
    if isinstance(e, CRIError):
        return e.code, str(e)
    if isinstance(e, d.NotFoundError):
        return grpc.StatusCode.NOT_FOUND, str(e)
    if isinstance(e, d.InvalidError):
        return grpc.StatusCode.INVALID_ARGUMENT, str(e)
    if isinstance(e, d.StartError):
        return grpc.StatusCode.UNKNOWN, f"failed to start container: {e} (exit code {e.exit_code})"
    if isinstance(e, d.DriverError):
        if isinstance(e, TimeoutError):
            return grpc.StatusCode.DEADLINE_EXCEEDED, str(e)
        return grpc.StatusCode.INTERNAL, str(e)
    mapped = runtime.map_image_error(e)
    if mapped is not None:
        return mapped.code, str(mapped)
    log.exception("unexpected error", method=method)
    return grpc.StatusCode.INTERNAL, f"{type(e).__name__}: {e}"


def _filter_state(value: Any, has: bool, names: dict) -> str | None:
    return names[value.state] if has else None


class RuntimeServicer(pb_grpc.RuntimeServiceServicer):
    def __init__(self, runtime: Runtime):
        self.runtime = runtime

    @_grpc
    async def Version(self, request, context):
        return pb.VersionResponse(version="0.1.0", runtime_name=RUNTIME_NAME,
                                  runtime_version=RUNTIME_VERSION, runtime_api_version=CRI_API_VERSION)

    @_grpc
    async def Status(self, request, context):
        rt = self.runtime
        net_ok, net_reason = True, ""
        if rt.network_probe is not None:
            net_ok, net_reason = await rt.network_probe()
        conditions = [pb.RuntimeCondition(type="RuntimeReady", status=True),
                      pb.RuntimeCondition(type="NetworkReady", status=net_ok,
                                          reason="" if net_ok else "NetworkPluginNotReady", message=net_reason)]
        info = {}
        if request.verbose:
            info["config"] = orjson.dumps({"root": str(rt.root), "driver": rt.driver_name,
                                           "podCIDR": rt.pod_cidr,
                                           "streaming": rt.streaming.base_url if rt.streaming else ""}).decode()
        return pb.StatusResponse(status=pb.RuntimeStatus(conditions=conditions), info=info,
                                 runtime_handlers=[pb.RuntimeHandler(name="")])

    @_grpc
    async def UpdateRuntimeConfig(self, request, context):
        cidr = request.runtime_config.network_config.pod_cidr
        if cidr:
            self.runtime.pod_cidr = cidr
        return pb.UpdateRuntimeConfigResponse()

    # Sandboxes

    @_grpc
    async def RunPodSandbox(self, request, context):
        if not request.HasField("config"):
            raise invalid("config is required")
        sid = await self.runtime.run_sandbox(request.config, request.runtime_handler)
        return pb.RunPodSandboxResponse(pod_sandbox_id=sid)

    @_grpc
    async def StopPodSandbox(self, request, context):
        await self.runtime.stop_sandbox(request.pod_sandbox_id)
        return pb.StopPodSandboxResponse()

    @_grpc
    async def RemovePodSandbox(self, request, context):
        await self.runtime.remove_sandbox(request.pod_sandbox_id)
        return pb.RemovePodSandboxResponse()

    @_grpc
    async def PodSandboxStatus(self, request, context):
        rt = self.runtime
        record = rt.find_sandbox(request.pod_sandbox_id)
        info = {}
        if request.verbose:
            net = rt.sandbox_network(record)
            spec = rt.sandbox_spec(record)
            info["info"] = orjson.dumps({
                "netnsPath": net.netns_path, "hostNetwork": spec.host_network, "config": record["config"],
                "stateDir": str(spec.state_dir)}).decode()
        return pb.PodSandboxStatusResponse(status=rt.sandbox_status(record), info=info, timestamp=now_ns())

    @_grpc
    async def ListPodSandbox(self, request, context):
        f = request.filter
        want = _filter_state(f.state, f.HasField("state"), {pb.SANDBOX_READY: "READY", pb.SANDBOX_NOTREADY: "NOTREADY"})
        items = []
        for record in sorted(self.runtime.sandboxes.values(), key=lambda r: r["created_at"]):
            if f.id and not record["id"].startswith(f.id):
                continue
            if want is not None and record["state"] != want:
                continue
            if not matches_labels(record["config"].get("labels", {}), f.label_selector.items()):
                continue
            items.append(self.runtime.sandbox_message(record))
        return pb.ListPodSandboxResponse(items=items)

    # Containers

    @_grpc
    async def CreateContainer(self, request, context):
        if not request.HasField("config"):
            raise invalid("config is required")
        cid = await self.runtime.create_container(request.pod_sandbox_id, request.config, request.sandbox_config)
        return pb.CreateContainerResponse(container_id=cid)

    @_grpc
    async def StartContainer(self, request, context):
        await self.runtime.start_container(request.container_id)
        return pb.StartContainerResponse()

    @_grpc
    async def StopContainer(self, request, context):
        await self.runtime.stop_container(request.container_id, request.timeout)
        return pb.StopContainerResponse()

    @_grpc
    async def RemoveContainer(self, request, context):
        await self.runtime.remove_container(request.container_id)
        return pb.RemoveContainerResponse()

    @_grpc
    async def ListContainers(self, request, context):
        rt = self.runtime
        f = request.filter
        want = _filter_state(f.state, f.HasField("state"), STATE_NAMES)
        records = [r for r in sorted(rt.containers.values(), key=lambda r: r["created_at"])
                   if (not f.id or r["id"].startswith(f.id))
                   and (not f.pod_sandbox_id or r["sandbox_id"].startswith(f.pod_sandbox_id))
                   and matches_labels(r["config"].get("labels", {}), f.label_selector.items())]
        states = await asyncio.gather(*(rt.container_state(r) for r in records))
        return pb.ListContainersResponse(containers=[
            rt.container_message(r, s) for r, s in zip(records, states, strict=True)
            if want is None or s.state == want])

    @_grpc
    async def ContainerStatus(self, request, context):
        rt = self.runtime
        record = rt.find_container(request.container_id)
        state = await rt.container_state(record)
        info = rt.container_info(record, state) if request.verbose else {}
        return pb.ContainerStatusResponse(status=rt.container_status(record, state), info=info)

    @_grpc
    async def UpdateContainerResources(self, request, context):
        await self.runtime.update_resources(request.container_id, request.linux)
        return pb.UpdateContainerResourcesResponse()

    @_grpc
    async def ReopenContainerLog(self, request, context):
        await self.runtime.reopen_log(request.container_id)
        return pb.ReopenContainerLogResponse()

    # Processes

    @_grpc
    async def ExecSync(self, request, context):
        out, err, code = await self.runtime.exec_sync(request.container_id, list(request.cmd), request.timeout)
        return pb.ExecSyncResponse(stdout=out, stderr=err, exit_code=code)

    def _streaming(self):
        if self.runtime.streaming is None:
            raise CRIError(grpc.StatusCode.UNAVAILABLE, "the streaming server is not running")
        return self.runtime.streaming

    @_grpc
    async def Exec(self, request, context):
        if not request.cmd:
            raise invalid("cmd must not be empty")
        if not (request.stdin or request.stdout or request.stderr):
            raise invalid("one of stdin, stdout and stderr must be set")
        if request.tty and request.stderr:
            raise invalid("tty and stderr cannot both be set: a TTY merges stderr into stdout")
        record = await self.runtime._running(request.container_id)
        url = self._streaming().register("exec", {
            "container_id": record["id"], "cmd": list(request.cmd), "tty": request.tty,
            "stdin": request.stdin, "stdout": request.stdout, "stderr": request.stderr})
        return pb.ExecResponse(url=url)

    @_grpc
    async def Attach(self, request, context):
        if not (request.stdin or request.stdout or request.stderr):
            raise invalid("one of stdin, stdout and stderr must be set")
        record = await self.runtime._running(request.container_id)
        tty = bool(record["config"].get("tty", False))
        if request.tty != tty:
            raise invalid(f"tty={request.tty} does not match the container's tty={tty}")
        if tty and request.stderr:
            raise invalid("tty and stderr cannot both be set: a TTY merges stderr into stdout")
        url = self._streaming().register("attach", {
            "container_id": record["id"], "tty": tty, "stdin": request.stdin,
            "stdout": request.stdout, "stderr": request.stderr})
        return pb.AttachResponse(url=url)

    @_grpc
    async def PortForward(self, request, context):
        record = self.runtime.find_sandbox(request.pod_sandbox_id)
        for port in request.port:
            if not 0 < port < 65536:
                raise invalid(f"port {port} is out of range")
        url = self._streaming().register("portforward", {"sandbox_id": record["id"], "ports": list(request.port)})
        return pb.PortForwardResponse(url=url)

    # Stats

    @_grpc
    async def ContainerStats(self, request, context):
        record = self.runtime.find_container(request.container_id)
        return pb.ContainerStatsResponse(stats=await self.runtime.stats(record))

    @_grpc
    async def ListContainerStats(self, request, context):
        rt = self.runtime
        f = request.filter
        out = []
        for r in sorted(rt.containers.values(), key=lambda r: r["created_at"]):
            if f.id and not r["id"].startswith(f.id):
                continue
            if f.pod_sandbox_id and not r["sandbox_id"].startswith(f.pod_sandbox_id):
                continue
            if not matches_labels(r["config"].get("labels", {}), f.label_selector.items()):
                continue
            if (await rt.container_state(r)).state != "RUNNING":
                continue
            out.append(await rt.stats(r))
        return pb.ListContainerStatsResponse(stats=out)

    @_grpc
    async def PodSandboxStats(self, request, context):
        record = self.runtime.find_sandbox(request.pod_sandbox_id)
        return pb.PodSandboxStatsResponse(stats=await self.runtime.sandbox_stats(record))

    @_grpc
    async def ListPodSandboxStats(self, request, context):
        rt = self.runtime
        f = request.filter
        out = []
        for r in sorted(rt.sandboxes.values(), key=lambda r: r["created_at"]):
            if f.id and not r["id"].startswith(f.id):
                continue
            if not matches_labels(r["config"].get("labels", {}), f.label_selector.items()):
                continue
            if r["state"] == "READY":
                out.append(await rt.sandbox_stats(r))
        return pb.ListPodSandboxStatsResponse(stats=out)


class ImageServicer(pb_grpc.ImageServiceServicer):
    def __init__(self, runtime: Runtime):
        self.runtime = runtime

    @property
    def images(self) -> Any:
        return self.runtime.images

    @_grpc
    async def ListImages(self, request, context):
        wanted = request.filter.image.image
        if wanted:
            image = self.images.get(wanted)
            found = [image] if image is not None else []
        else:
            found = self.images.list()
        return pb.ListImagesResponse(images=[self.runtime.image_message(i) for i in found])

    @_grpc
    async def ImageStatus(self, request, context):
        if not request.image.image:
            raise invalid("image.image is required")
        image = self.images.get(request.image.image)
        if image is None:
            return pb.ImageStatusResponse()
        info = {}
        if request.verbose:
            info["info"] = orjson.dumps({"imageSpec": image.config,
                                         "layerDirs": [str(p) for p in image.layer_dirs]}).decode()
        return pb.ImageStatusResponse(image=self.runtime.image_message(image), info=info)

    @_grpc
    async def PullImage(self, request, context):
        ref = request.image.image
        if not ref:
            raise invalid("image.image is required")
        auth = None
        if request.HasField("auth"):
            data = {f: getattr(request.auth, f) for f in ("username", "password", "auth", "server_address",
                                                           "identity_token", "registry_token")}
            if any(data.values()) and self.runtime.make_auth is not None:
                auth = self.runtime.make_auth(data)
        image = await self.images.pull(ref, auth)
        return pb.PullImageResponse(image_ref=image.id)

    @_grpc
    async def RemoveImage(self, request, context):
        ref = request.image.image
        if not ref:
            raise invalid("image.image is required")
        if self.images.get(ref) is None:
            return pb.RemoveImageResponse()
        try:
            await self.images.remove(ref)
        except Exception as e:
            if not isinstance(e, self.runtime.image_errors.not_found):
                raise
        return pb.RemoveImageResponse()

    @_grpc
    async def ImageFsInfo(self, request, context):
        used, inodes, mountpoint = await asyncio.to_thread(self.images.fs_info)
        return pb.ImageFsInfoResponse(image_filesystems=[pb.FilesystemUsage(
            timestamp=now_ns(), fs_id=pb.FilesystemIdentifier(mountpoint=str(mountpoint)),
            used_bytes=pb.UInt64Value(value=int(used)), inodes_used=pb.UInt64Value(value=int(inodes)))])
