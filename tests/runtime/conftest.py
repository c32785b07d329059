"""Fixtures for runtime tests: a local docker-registry, a busybox image pushed to it, a busybox layer dir.

``registry`` runs ``docker-registry`` on 127.0.0.1:<free port> with storage in a temporary
directory, for the whole session, and stops it by PID. ``busybox_image`` is the ref of a small
busybox-static image pushed there with skopeo. ``busybox_layer_dir`` is an unpacked busybox rootfs
usable as an overlay lower layer without any registry. When CI=true a missing tool fails, never skips.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures import oci

REGISTRY_BIN = "/usr/bin/docker-registry"


def require(path: str) -> None:
    """Skip (fail under CI=true) when a tool the test needs is not installed."""
    if shutil.which(path) or os.path.exists(path):
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{path} is required")
    pytest.skip(f"{path} is not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Registry:
    address: str          # "127.0.0.1:PORT"
    root: Path            # the registry's storage directory
    pid: int

    @property
    def url(self) -> str:
        return f"http://{self.address}"


def start_registry(workdir: Path) -> tuple[Registry, subprocess.Popen]:
    require(REGISTRY_BIN)
    port = free_port()
    storage = workdir / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    config = workdir / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: error\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    log = (workdir / "registry.log").open("wb")
    proc = subprocess.Popen([REGISTRY_BIN, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    address = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"docker-registry exited: {(workdir / 'registry.log').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://{address}/v2/", timeout=1) as resp:
                if resp.status == 200:
                    break
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            stop_process(proc)
            raise RuntimeError("docker-registry did not come up")
        time.sleep(0.05)
    return Registry(address, storage, proc.pid), proc


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="session")
def registry(tmp_path_factory) -> Registry:
    reg, proc = start_registry(tmp_path_factory.mktemp("registry"))
    try:
        yield reg
    finally:
        stop_process(proc)


@pytest.fixture(scope="session")
def busybox_layout(tmp_path_factory) -> tuple[Path, oci.ImageParts]:
    """An OCI layout holding the busybox image tagged ``latest``."""
    require("/bin/busybox")
    work = tmp_path_factory.mktemp("busybox")
    layout = work / "layout"
    parts = oci.write_busybox_layout(layout, work)
    return layout, parts


@pytest.fixture(scope="session")
def busybox_image(registry, busybox_layout) -> str:
    """Ref ``127.0.0.1:PORT/busybox:latest`` of the busybox image in the local registry."""
    require("skopeo")
    layout, _ = busybox_layout
    return oci.push_layout(layout, "latest", registry.address, "busybox")


@pytest.fixture(scope="session")
def busybox_layer_dir(tmp_path_factory) -> Path:
    """An unpacked busybox rootfs layer (no registry needed)."""
    require("/bin/busybox")
    return oci.build_busybox_rootfs(tmp_path_factory.mktemp("busybox-layer") / "rootfs")
