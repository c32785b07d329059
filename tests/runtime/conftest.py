"""Fixtures for runtime tests: a local docker-registry, a busybox image pushed to it, a busybox layer dir.

``registry`` runs ``docker-registry`` on 127.0.0.1:<free port> with storage in a temporary
directory, for the whole session, and stops it by PID. ``busybox_image`` is the ref of a small
busybox-static image pushed there with skopeo. ``busybox_layer_dir`` is an unpacked busybox rootfs
usable as an overlay lower layer without any registry. When CI=true a missing tool fails, never skips.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.fixtures import oci
from tests.fixtures.oci import REGISTRY_BIN, Registry, start_registry, stop_process

__all__ = ["Registry", "require"]


def require(path: str) -> None:
    """Skip (fail under CI=true) when a tool the test needs is not installed."""
    if shutil.which(path) or os.path.exists(path):
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{path} is required")
    pytest.skip(f"{path} is not installed")


@pytest.fixture(scope="session")
def registry(tmp_path_factory) -> Registry:
    require(REGISTRY_BIN)
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
