"""The hollow driver: the runtime's state machine without processes, for scale tests.

Sandboxes get fake IPs allocated from the pod CIDR; containers "run" from start until stopped;
exec and ExecSync succeed with empty output; port-forward connects to an in-process echo. Each
object's observed state is kept in a small JSON file in its ``state_dir`` so a restarted daemon
finds hollow containers still running. ``HollowImageStore`` pretends to pull: any well-formed
reference becomes an image at once, with no registry traffic.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import os
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from runtime.driver import (
    ContainerRunState,
    ContainerSpec,
    ContainerUsage,
    ExecSession,
    ImageInfo,
    NotFoundError,
    Resources,
    SandboxNetwork,
    SandboxSpec,
)

STATE_FILE = "hollow.json"


def _now() -> int:
    return time.time_ns()


def _read(state_dir: Path) -> dict | None:
    try:
        return orjson.loads((state_dir / STATE_FILE).read_bytes())
    except FileNotFoundError:
        return None


def _write(state_dir: Path, data: dict) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    tmp = state_dir / (STATE_FILE + ".tmp")
    tmp.write_bytes(orjson.dumps(data))
    os.replace(tmp, state_dir / STATE_FILE)


class HollowDriver:
    def __init__(self, root: Path, pod_cidr: str = "10.88.0.0/16"):
        self.root = Path(root)
        self.network = ipaddress.ip_network(pod_cidr, strict=False)
        self._used: set[str] = set()
        self._containers: dict[str, dict] = {}   # id -> observed state, mirrored on disk
        self._echo_tasks: set[asyncio.Task] = set()

    async def start(self, sandboxes: list[SandboxSpec], containers: list[ContainerSpec]) -> None:
        for sb in sandboxes:
            data = await asyncio.to_thread(_read, sb.state_dir)
            if data and data.get("ip"):
                self._used.add(data["ip"])
        for c in containers:
            data = await asyncio.to_thread(_read, c.state_dir)
            if data is not None:
                self._containers[c.id] = data

    async def close(self) -> None:
        for task in list(self._echo_tasks):
            task.cancel()

    # Sandboxes

    def _allocate_ip(self) -> str:
        # The first address of the range is the gateway, as a CNI bridge would have it.
        for i, host in enumerate(self.network.hosts()):
            if i == 0:
                continue
            if str(host) not in self._used:
                self._used.add(str(host))
                return str(host)
        raise OSError(f"pod CIDR {self.network} is exhausted")

    async def run_sandbox(self, spec: SandboxSpec) -> SandboxNetwork:
        data = await asyncio.to_thread(_read, spec.state_dir)
        if data and data.get("ip"):
            return SandboxNetwork(netns_path="", ip=data["ip"])
        ip = "" if spec.host_network else self._allocate_ip()
        await asyncio.to_thread(_write, spec.state_dir, {"ip": ip})
        return SandboxNetwork(netns_path="", ip=ip)

    async def stop_sandbox(self, spec: SandboxSpec) -> None:
        data = await asyncio.to_thread(_read, spec.state_dir)
        if data and data.get("ip"):
            self._used.discard(data["ip"])
            await asyncio.to_thread(_write, spec.state_dir, {"ip": ""})

    async def remove_sandbox(self, spec: SandboxSpec) -> None:
        await self.stop_sandbox(spec)
        await asyncio.to_thread(shutil.rmtree, spec.state_dir, True)

    # Containers

    async def _save(self, spec: ContainerSpec, data: dict) -> None:
        self._containers[spec.id] = data
        await asyncio.to_thread(_write, spec.state_dir, data)

    def _get(self, spec: ContainerSpec) -> dict:
        data = self._containers.get(spec.id)
        if data is None:
            raise NotFoundError(f"container {spec.id} not found")
        return data

    async def create_container(self, spec: ContainerSpec, sandbox: SandboxSpec,
                               network: SandboxNetwork) -> None:
        await self._save(spec, {"state": "CREATED", "started_at": 0, "finished_at": 0,
                                "exit_code": 0, "reason": ""})

    async def start_container(self, spec: ContainerSpec) -> None:
        data = dict(self._get(spec))
        data.update(state="RUNNING", started_at=_now())
        await self._save(spec, data)

    async def stop_container(self, spec: ContainerSpec, timeout: int) -> None:
        data = dict(self._get(spec))
        if data["state"] != "RUNNING":
            return
        # A hollow process honours the stop signal at once: exit 137 would mean it had to be killed.
        data.update(state="EXITED", finished_at=_now(), exit_code=0, reason="Completed")
        await self._save(spec, data)

    async def remove_container(self, spec: ContainerSpec) -> None:
        self._containers.pop(spec.id, None)
        await asyncio.to_thread(shutil.rmtree, spec.state_dir, True)

    async def container_state(self, spec: ContainerSpec) -> ContainerRunState:
        data = self._get(spec)
        return ContainerRunState(state=data["state"], pid=0, exit_code=data["exit_code"],
                                 reason=data["reason"], started_at=data["started_at"],
                                 finished_at=data["finished_at"])

    async def update_resources(self, spec: ContainerSpec, resources: Resources) -> None:
        self._get(spec)

    async def reopen_log(self, spec: ContainerSpec) -> None:
        self._get(spec)

    # Processes

    async def exec_sync(self, spec: ContainerSpec, cmd: list[str], timeout: int) -> tuple[bytes, bytes, int]:
        self._get(spec)
        return b"", b"", 0

    def _empty_session(self, tty: bool, stdin: bool) -> ExecSession:
        out = asyncio.StreamReader()
        out.feed_eof()
        err = None
        if not tty:
            err = asyncio.StreamReader()
            err.feed_eof()
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        done.set_result(0)
        return ExecSession(stdin=None, stdout=out, stderr=err, wait=done,
                           resize=(lambda w, h: None) if tty else None)

    async def exec(self, spec: ContainerSpec, cmd: list[str], *, tty: bool, stdin: bool) -> ExecSession:
        self._get(spec)
        return self._empty_session(tty, stdin)

    async def attach(self, spec: ContainerSpec, *, stdin: bool) -> ExecSession:
        self._get(spec)
        return self._empty_session(spec.tty, stdin)

    async def port_forward(self, sandbox: SandboxSpec, network: SandboxNetwork,
                           port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        ours, theirs = socket.socketpair()
        reader, writer = await asyncio.open_connection(sock=ours)
        echo_reader, echo_writer = await asyncio.open_connection(sock=theirs)

        async def echo() -> None:
            try:
                while data := await echo_reader.read(65536):
                    echo_writer.write(data)
                    await echo_writer.drain()
            finally:
                echo_writer.close()

        task = asyncio.create_task(echo(), name=f"hollow-echo-{sandbox.id[:12]}-{port}")
        self._echo_tasks.add(task)
        task.add_done_callback(self._echo_tasks.discard)
        return reader, writer

    # Stats

    async def container_usage(self, spec: ContainerSpec) -> ContainerUsage:
        self._get(spec)
        return ContainerUsage(timestamp=_now())


# ---- images ------------------------------------------------------------------------------------

class HollowImageError(Exception):
    pass


class HollowInvalidReference(HollowImageError):
    pass


class HollowImageNotFound(HollowImageError):
    pass


def normalize_reference(ref: str) -> str:
    """``busybox`` -> ``docker.io/library/busybox:latest``; raise HollowInvalidReference if malformed."""
    if not ref or any(c.isspace() for c in ref):
        raise HollowInvalidReference(f"invalid reference {ref!r}")
    name, _, digest = ref.partition("@")
    if digest and not (digest.startswith("sha256:") and len(digest) == 71):
        raise HollowInvalidReference(f"invalid digest in reference {ref!r}")
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        domain, path = first, rest
    else:
        domain, path = "docker.io", name
    tag = ""
    if ":" in path.rsplit("/", 1)[-1]:
        path, _, tag = path.rpartition(":")
    if domain == "docker.io" and "/" not in path:
        path = f"library/{path}"
    if not path or path != path.lower() or not all(c.isalnum() or c in "._-/" for c in path):
        raise HollowInvalidReference(f"invalid reference {ref!r}")
    if digest:
        return f"{domain}/{path}@{digest}"
    return f"{domain}/{path}:{tag or 'latest'}"


@dataclass
class HollowImage:
    id: str
    repo_tags: list[str]
    repo_digests: list[str]
    size: int = 1 << 20
    config: dict = field(default_factory=dict)
    layer_dirs: list[Path] = field(default_factory=list)

    def driver_info(self) -> ImageInfo:
        return ImageInfo(id=self.id, config=self.config.get("config", {}), layer_dirs=self.layer_dirs)


class HollowImageStore:
    """The ImageStore surface the service uses, with images made up on pull."""

    def __init__(self, root: Path | None = None):
        self._images: dict[str, HollowImage] = {}

    async def pull(self, ref: str, auth: object = None) -> HollowImage:
        name = normalize_reference(ref)
        existing = self.get(name)
        if existing is not None:
            return existing
        digest = hashlib.sha256(name.encode()).hexdigest()
        repo = name.split("@")[0].rsplit(":", 1)[0] if "@" not in name else name.split("@")[0]
        image = HollowImage(
            id=f"sha256:{digest}",
            repo_tags=[] if "@" in name else [name],
            repo_digests=[f"{repo}@sha256:{hashlib.sha256(digest.encode()).hexdigest()}"],
            config={"config": {"Cmd": ["sh"], "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]}},
        )
        self._images[image.id] = image
        return image

    def get(self, ref_or_id: str) -> HollowImage | None:
        if ref_or_id in self._images:
            return self._images[ref_or_id]
        for image in self._images.values():
            if ref_or_id.removeprefix("sha256:") and image.id.removeprefix("sha256:").startswith(
                    ref_or_id.removeprefix("sha256:")) and len(ref_or_id.removeprefix("sha256:")) >= 12:
                return image
        try:
            name = normalize_reference(ref_or_id)
        except HollowInvalidReference:
            return None
        for image in self._images.values():
            if name in image.repo_tags or name in image.repo_digests:
                return image
        return None

    def list(self) -> list[HollowImage]:
        return list(self._images.values())

    async def remove(self, ref_or_id: str) -> None:
        image = self.get(ref_or_id)
        if image is None:
            raise HollowImageNotFound(ref_or_id)
        del self._images[image.id]

    def fs_info(self) -> tuple[int, int, str]:
        return sum(i.size for i in self._images.values()), len(self._images), "/"
