"""The contract between the CRI service (bookkeeping, state machine, gRPC) and what runs things.

The service (``runtime/service.py``) owns ids, names, CRI states, attempt counters, labels and
annotations, and persists them; a ``Driver`` does the work on the host: network namespaces and
CNI, OCI bundles and runc, processes, logs, exec and stats. Two drivers implement it: ``runc``
(``runtime/linux/``) and ``hollow`` (``runtime/hollow.py``, runs nothing, for scale tests).

Drivers raise ``DriverError`` subclasses; the service maps them onto gRPC status codes.
Every method must be idempotent where CRI says the call is (stop and remove of something already
stopped or gone succeed).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


class DriverError(Exception):
    """A failure the caller should see as gRPC INTERNAL unless a subclass says otherwise."""


class NotFoundError(DriverError):
    """gRPC NOT_FOUND."""


class InvalidError(DriverError):
    """gRPC INVALID_ARGUMENT."""


class StartError(DriverError):
    """The container's process could not be started (missing command, bad working dir).

    The container is left EXITED with ``exit_code`` (127 not found, 128 other) and reason
    ``StartError``; the service reports the failure and the status.
    """

    def __init__(self, message: str, exit_code: int = 128):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class PortMapping:
    protocol: str          # "TCP" | "UDP" | "SCTP"
    container_port: int
    host_port: int
    host_ip: str = ""


@dataclass
class DNSConfig:
    servers: list[str] = field(default_factory=list)
    searches: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)


@dataclass
class SandboxSpec:
    id: str
    name: str
    namespace: str
    uid: str
    hostname: str
    host_network: bool
    dns: DNSConfig | None
    port_mappings: list[PortMapping]
    cgroup_parent: str
    state_dir: Path                    # private to this sandbox; removed by remove_sandbox
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass
class SandboxNetwork:
    netns_path: str                    # "" for host-network sandboxes
    ip: str                            # primary pod IP ("" for host-network)
    additional_ips: list[str] = field(default_factory=list)


@dataclass
class Mount:
    container_path: str
    host_path: str
    readonly: bool = False
    propagation: str = "private"       # private | rslave | rshared


@dataclass
class Resources:
    cpu_period: int = 0
    cpu_quota: int = 0
    cpu_shares: int = 0
    memory_limit_in_bytes: int = 0
    pids_limit: int = 0
    oom_score_adj: int = 0
    cpuset_cpus: str = ""
    cpuset_mems: str = ""


@dataclass
class SecurityContext:
    privileged: bool = False
    readonly_rootfs: bool = False
    run_as_user: int | None = None
    run_as_group: int | None = None
    run_as_username: str = ""
    supplemental_groups: list[int] = field(default_factory=list)
    add_capabilities: list[str] = field(default_factory=list)
    drop_capabilities: list[str] = field(default_factory=list)
    no_new_privs: bool = False


@dataclass
class ImageInfo:
    """What a driver needs of an image (from the image store)."""

    id: str                            # sha256:<config digest>
    config: dict                       # the OCI image config's "config" object (Env, Cmd, ...)
    layer_dirs: list[Path]             # unpacked layers, lowest first


@dataclass
class ContainerSpec:
    """What to create. The service has already applied Kubernetes' rules against the image config:
    ``command``/``args`` are the resolved Entrypoint/Cmd, ``envs`` the image Env overridden by the
    caller's, ``working_dir`` falls back to the image's; ``image.config`` still carries User and
    StopSignal for the driver."""

    id: str
    sandbox_id: str
    name: str
    image: ImageInfo
    command: list[str]
    args: list[str]
    working_dir: str
    envs: list[tuple[str, str]]
    mounts: list[Mount]
    log_path: str                      # absolute; "" for no log
    tty: bool
    stdin: bool
    stdin_once: bool
    resources: Resources
    security: SecurityContext
    state_dir: Path                    # private to this container; removed by remove_container
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass
class ContainerRunState:
    """What the driver observes of a container. Times are Unix nanoseconds (0: not yet)."""

    state: str                         # "CREATED" | "RUNNING" | "EXITED" | "UNKNOWN"
    pid: int = 0
    exit_code: int = 0
    reason: str = ""                   # Completed | Error | OOMKilled | StartError
    message: str = ""
    started_at: int = 0
    finished_at: int = 0


@dataclass
class ContainerUsage:
    timestamp: int                     # ns
    cpu_usage_core_nanoseconds: int = 0
    memory_working_set_bytes: int = 0
    memory_usage_bytes: int = 0
    writable_layer_bytes: int = 0


@dataclass
class ExecSession:
    """A process started inside a container for Exec/Attach.

    ``stdin`` is None unless requested; ``stderr`` is None under a TTY (merged into stdout).
    ``wait`` gives the exit code: an awaitable (future or task) resolving to it, or a no-argument
    callable returning such an awaitable. ``resize`` changes the TTY size.
    """

    stdin: asyncio.StreamWriter | None
    stdout: asyncio.StreamReader
    stderr: asyncio.StreamReader | None
    wait: asyncio.Future[int] | object
    resize: object = None              # callable (width, height) -> None, or None without TTY


class Driver(Protocol):
    async def start(self, sandboxes: list[SandboxSpec], containers: list[ContainerSpec]) -> None:
        """Start the driver and re-attach to what the previous daemon left running."""
        ...

    async def close(self) -> None:
        """Stop background work; running containers keep running."""
        ...

    # Sandboxes
    async def run_sandbox(self, spec: SandboxSpec) -> SandboxNetwork: ...
    async def stop_sandbox(self, spec: SandboxSpec) -> None: ...
    async def remove_sandbox(self, spec: SandboxSpec) -> None: ...

    # Containers
    async def create_container(self, spec: ContainerSpec, sandbox: SandboxSpec,
                               network: SandboxNetwork) -> None: ...
    async def start_container(self, spec: ContainerSpec) -> None: ...
    async def stop_container(self, spec: ContainerSpec, timeout: int) -> None: ...
    async def remove_container(self, spec: ContainerSpec) -> None: ...
    async def container_state(self, spec: ContainerSpec) -> ContainerRunState: ...
    async def update_resources(self, spec: ContainerSpec, resources: Resources) -> None: ...
    async def reopen_log(self, spec: ContainerSpec) -> None: ...

    # Processes inside containers
    async def exec_sync(self, spec: ContainerSpec, cmd: list[str], timeout: int) -> tuple[bytes, bytes, int]: ...
    async def exec(self, spec: ContainerSpec, cmd: list[str], *, tty: bool, stdin: bool) -> ExecSession: ...
    async def attach(self, spec: ContainerSpec, *, stdin: bool) -> ExecSession: ...
    async def port_forward(self, sandbox: SandboxSpec, network: SandboxNetwork,
                           port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]: ...

    # Stats
    async def container_usage(self, spec: ContainerSpec) -> ContainerUsage: ...
