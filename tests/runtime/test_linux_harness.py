"""Helpers (no tests) for driving ``RuncDriver`` directly (root, real runc and CNI).

Each harness has its own root directory and its own /24 pod subnet, so tests never share IP
reservations; ``cleanup`` stops and removes everything the test created.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from runtime.driver import (
    ContainerRunState,
    ContainerSpec,
    ImageInfo,
    Mount,
    PortMapping,
    Resources,
    SandboxNetwork,
    SandboxSpec,
    SecurityContext,
)
from runtime.linux import RuncDriver, cgroups, syscalls

LOG_LINE = re.compile(rb"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z) (stdout|stderr) (P|F) (.*)$")


def require_tools() -> None:
    missing = [t for t in ("runc", "unshare", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local",
                           "/usr/lib/cni/loopback", "/bin/busybox") if not shutil.which(t) and not os.path.exists(t)]
    if os.geteuid() != 0:
        missing.append("root")
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"missing: {missing}")
        pytest.skip(f"missing: {missing}")


def new_id() -> str:
    return uuid.uuid4().hex + uuid.uuid4().hex


def make_sandbox(root: Path, name: str = "pod", *, host_network: bool = False,
                 port_mappings: list[PortMapping] | None = None, **kw) -> SandboxSpec:
    sid = new_id()
    return SandboxSpec(id=sid, name=name, namespace="default", uid=str(uuid.uuid4()), hostname=name,
                       host_network=host_network, dns=kw.pop("dns", None), port_mappings=port_mappings or [],
                       cgroup_parent=kw.pop("cgroup_parent", ""), state_dir=root / "sandboxes" / sid, **kw)


def make_container(root: Path, sandbox: SandboxSpec, layer: Path, command: list[str], *, name: str = "c",
                   resources: Resources | None = None, security: SecurityContext | None = None,
                   image_config: dict | None = None, mounts: list[Mount] | None = None,
                   tty: bool = False, stdin: bool = False, stdin_once: bool = False, envs: list[tuple[str, str]] | None = None,
                   working_dir: str = "") -> ContainerSpec:
    cid = new_id()
    cfg = {"Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"]}
    cfg.update(image_config or {})
    return ContainerSpec(
        id=cid, sandbox_id=sandbox.id, name=name,
        image=ImageInfo(id="sha256:" + "0" * 64, config=cfg, layer_dirs=[layer]),
        command=command, args=[], working_dir=working_dir, envs=envs or [], mounts=mounts or [],
        log_path=str(root / "logs" / f"{name}-{cid[:8]}.log"), tty=tty, stdin=stdin, stdin_once=stdin_once,
        resources=resources or Resources(), security=security or SecurityContext(),
        state_dir=root / "containers" / cid)


class Harness:
    def __init__(self, root: Path, layer: Path):
        self.root = root
        self.layer = layer
        self.cidr = f"10.{random.randint(100, 199)}.{random.randint(0, 255)}.0/24"
        self.bridge = f"nvt{uuid.uuid4().hex[:8]}"     # a bridge has one gateway subnet
        self.driver = self.new_driver()
        self.sandboxes: list[SandboxSpec] = []
        self.networks: dict[str, SandboxNetwork] = {}
        self.containers: list[ContainerSpec] = []

    def new_driver(self) -> RuncDriver:
        return RuncDriver(self.root, pod_cidr=self.cidr, bridge=self.bridge)

    async def sandbox(self, name: str = "pod", **kw) -> tuple[SandboxSpec, SandboxNetwork]:
        spec = make_sandbox(self.root, name, **kw)
        self.sandboxes.append(spec)
        net = await self.driver.run_sandbox(spec)
        self.networks[spec.id] = net
        return spec, net

    async def container(self, sandbox: SandboxSpec, command: list[str], *, start: bool = True,
                        **kw) -> ContainerSpec:
        spec = make_container(self.root, sandbox, self.layer, command, **kw)
        self.containers.append(spec)
        await self.driver.create_container(spec, sandbox, self.networks[sandbox.id])
        if start:
            await self.driver.start_container(spec)
        return spec

    async def wait_state(self, spec: ContainerSpec, state: str = "EXITED", limit: float = 60) -> ContainerRunState:
        """Poll until the container reaches ``state`` (a bound against hangs, not a timing check)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while True:
            st = await self.driver.container_state(spec)
            if st.state == state:
                return st
            if loop.time() > deadline:
                raise AssertionError(f"container {spec.name} stayed {st.state}, wanted {state}")
            await asyncio.sleep(0.05)

    async def cleanup(self) -> None:
        for c in self.containers:
            try:
                await self.driver.stop_container(c, 0)
                await self.driver.remove_container(c)
            except Exception:  # noqa: BLE001 - best effort, the leak check reports what stayed
                pass
        for s in self.sandboxes:
            try:
                await self.driver.stop_sandbox(s)
                await self.driver.remove_sandbox(s)
            except Exception:  # noqa: BLE001
                pass
        try:
            await self.driver.close()
        finally:
            for point in syscalls.mounts_under(str(self.root)):
                syscalls.umount(point)
            await asyncio.to_thread(subprocess.run, ["ip", "link", "del", self.bridge], capture_output=True)


def read_log(path: str) -> list[tuple[str, str, bytes]]:
    out = []
    with open(path, "rb") as f:
        for raw in f.read().splitlines():
            m = LOG_LINE.match(raw)
            assert m, f"not a CRI log line: {raw!r}"
            out.append((m.group(2).decode(), m.group(3).decode(), m.group(4)))
    return out


def cgroup_dirs(cgroups_path: str) -> list[str]:
    return [d for d in cgroups.dirs(cgroups_path) if os.path.isdir(d)]


def link_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", name], capture_output=True).returncode == 0
