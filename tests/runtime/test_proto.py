"""The generated CRI code is current, and key messages keep CRI v1's names and field numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from proto import runtime_pb2
from proto.generate import PROTO_DIR, generate


def test_generated_code_is_current(tmp_path: Path) -> None:
    written = generate(tmp_path)
    assert written
    for fresh in written:
        checked_in = PROTO_DIR / fresh.name
        assert checked_in.exists(), f"{fresh.name} missing: run python -m proto.generate"
        assert checked_in.read_text() == fresh.read_text(), (
            f"{fresh.name} is stale: run python -m proto.generate")


# (message, field, number) triples of the CRI v1 wire format that clients depend on.
WIRE_FIELDS = [
    ("PodSandboxConfig", "metadata", 1), ("PodSandboxConfig", "log_directory", 3),
    ("PodSandboxConfig", "labels", 6), ("PodSandboxConfig", "annotations", 7),
    ("PodSandboxConfig", "linux", 8),
    ("PodSandboxMetadata", "attempt", 4),
    ("LinuxSandboxSecurityContext", "run_as_group", 8),
    ("ContainerConfig", "log_path", 11), ("ContainerConfig", "tty", 14), ("ContainerConfig", "linux", 15),
    ("ContainerStatus", "reason", 10), ("ContainerStatus", "log_path", 15),
    ("ContainerStatus", "image_id", 17),
    ("Container", "image_id", 10),
    ("LinuxContainerSecurityContext", "no_new_privs", 11),
    ("LinuxContainerSecurityContext", "run_as_group", 12),
    ("LinuxContainerResources", "memory_swap_limit_in_bytes", 10),
    ("ImageSpec", "user_specified_image", 18),
    ("ExecSyncResponse", "exit_code", 3),
    ("AttachRequest", "tty", 3), ("AttachRequest", "stdout", 4),
    ("StatusResponse", "runtime_handlers", 3),
    ("PodSandboxStatusResponse", "timestamp", 4),
    ("AuthConfig", "registry_token", 6),
    ("ImageFsInfoResponse", "container_filesystems", 2),
]


@pytest.mark.parametrize(("message", "field", "number"), WIRE_FIELDS)
def test_wire_field_numbers(message: str, field: str, number: int) -> None:
    descriptor = runtime_pb2.DESCRIPTOR.message_types_by_name[message]
    assert descriptor.full_name == f"runtime.v1.{message}"
    assert descriptor.fields_by_name[field].number == number


def test_service_methods() -> None:
    runtime = runtime_pb2.DESCRIPTOR.services_by_name["RuntimeService"]
    names = {m.name for m in runtime.methods}
    assert {"Version", "Status", "RunPodSandbox", "StopPodSandbox", "RemovePodSandbox",
            "PodSandboxStatus", "ListPodSandbox", "CreateContainer", "StartContainer",
            "StopContainer", "RemoveContainer", "ListContainers", "ContainerStatus",
            "UpdateContainerResources", "ReopenContainerLog", "ExecSync", "Exec", "Attach",
            "PortForward", "ContainerStats", "ListContainerStats", "PodSandboxStats"} <= names
    images = runtime_pb2.DESCRIPTOR.services_by_name["ImageService"]
    assert {m.name for m in images.methods} == {"ListImages", "ImageStatus", "PullImage",
                                                "RemoveImage", "ImageFsInfo"}
    assert runtime.full_name == "runtime.v1.RuntimeService"
