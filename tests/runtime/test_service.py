"""The CRI service through its gRPC API, over a real ``navarch runtime --driver hollow`` process.

The hollow driver runs no processes, so these tests pin down the service's own contract: ids,
states and transitions, filters, persisted records surviving a daemon restart, gRPC codes for bad
input, streaming URLs, and the image service. The same API over runc is covered by
``test_service_runc.py``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import grpc
import orjson
import pytest

from proto import runtime_pb2 as pb
from proto import runtime_pb2_grpc as pb_grpc
from runtime.service import image_command, merge_env, resolve_prefix
from runtime.state import StateStore

REPO = Path(__file__).resolve().parents[2]


# ---- a runtime process ---------------------------------------------------------------------------

@dataclass
class RuntimeProcess:
    root: Path
    socket: Path
    proc: subprocess.Popen
    log: Path

    @property
    def endpoint(self) -> str:
        return f"unix://{self.socket}"

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            try:
                return self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                return self.proc.wait()
        return self.proc.returncode


def start_runtime(root: Path, *extra: str, driver: str = "hollow", socket: Path | None = None) -> RuntimeProcess:
    socket = socket or root / "cri.sock"
    root.mkdir(parents=True, exist_ok=True)
    log = root.parent / f"{root.name}-runtime.log"
    socket.unlink(missing_ok=True)
    out = open(log, "ab")
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys, runtime.server as s; sys.exit(s.main(sys.argv[1:]))",
         "--root", str(root), "--socket", str(socket), "--driver", driver, *extra],
        cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    out.close()
    rp = RuntimeProcess(root, socket, proc, log)
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"runtime exited with {proc.returncode}: {log.read_text()[-3000:]}")
        if socket.exists():
            try:
                ch = grpc.insecure_channel(f"unix:{socket}")
                pb_grpc.RuntimeServiceStub(ch).Version(pb.VersionRequest(), timeout=2)
                ch.close()
                return rp
            except grpc.RpcError:
                pass
        if time.monotonic() > deadline:
            rp.stop(signal.SIGKILL)
            raise RuntimeError(f"runtime did not come up: {log.read_text()[-3000:]}")
        time.sleep(0.05)


class Clients:
    def __init__(self, socket: Path):
        self.channel = grpc.aio.insecure_channel(f"unix:{socket}")
        self.rt = pb_grpc.RuntimeServiceStub(self.channel)
        self.im = pb_grpc.ImageServiceStub(self.channel)

    async def close(self) -> None:
        await self.channel.close()


# ---- builders ------------------------------------------------------------------------------------

def make_pod(name: str = "web", namespace: str = "default", uid: str | None = None, attempt: int = 0,
             labels: dict | None = None, annotations: dict | None = None, log_dir: str = "",
             host_network: bool = False, ports: list[tuple[int, int]] = ()) -> pb.PodSandboxConfig:
    cfg = pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=name, namespace=namespace, uid=uid or f"uid-{name}", attempt=attempt),
        hostname=name, log_directory=log_dir, labels=labels or {}, annotations=annotations or {},
        port_mappings=[pb.PortMapping(container_port=c, host_port=h) for c, h in ports])
    if host_network:
        cfg.linux.security_context.namespace_options.network = pb.NODE
    return cfg


def make_container(name: str = "app", image: str = "busybox", command: list[str] = (), args: list[str] = (),
                   attempt: int = 0, labels: dict | None = None, annotations: dict | None = None,
                   log_path: str = "", envs: dict | None = None, tty: bool = False,
                   memory: int = 0) -> pb.ContainerConfig:
    cfg = pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name=name, attempt=attempt), image=pb.ImageSpec(image=image),
        command=list(command), args=list(args), labels=labels or {}, annotations=annotations or {},
        log_path=log_path, envs=[pb.KeyValue(key=k, value=v) for k, v in (envs or {}).items()], tty=tty)
    if memory:
        cfg.linux.resources.memory_limit_in_bytes = memory
    return cfg


async def expect_code(code: grpc.StatusCode, call) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    assert info.value.code() == code, info.value.details()
    return info.value.details()


# ---- fixtures ------------------------------------------------------------------------------------

@pytest.fixture
def hollow(tmp_path):
    rp = start_runtime(tmp_path / "root")
    try:
        yield rp
    finally:
        rp.stop(signal.SIGKILL)


@pytest.fixture
async def cri(hollow):
    clients = Clients(hollow.socket)
    try:
        yield clients
    finally:
        await clients.close()


async def run_pod(cri: Clients, **kw) -> str:
    return (await cri.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=make_pod(**kw)))).pod_sandbox_id


async def create(cri: Clients, sid: str, pull: bool = True, **kw) -> str:
    cfg = make_container(**kw)
    if pull:
        await cri.im.PullImage(pb.PullImageRequest(image=cfg.image))
    return (await cri.rt.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=sid, config=cfg))).container_id


async def ctr_status(cri: Clients, cid: str, verbose: bool = False) -> pb.ContainerStatusResponse:
    return await cri.rt.ContainerStatus(pb.ContainerStatusRequest(container_id=cid, verbose=verbose))


# ---- pure helpers --------------------------------------------------------------------------------

@pytest.mark.parametrize(("command", "args", "image", "want"), [
    ([], [], {"Entrypoint": ["/init"], "Cmd": ["run"]}, (["/init"], ["run"])),
    (["sh"], [], {"Entrypoint": ["/init"], "Cmd": ["run"]}, (["sh"], [])),
    ([], ["x"], {"Entrypoint": ["/init"], "Cmd": ["run"]}, (["/init"], ["x"])),
    (["sh"], ["-c", "true"], {"Cmd": ["run"]}, (["sh"], ["-c", "true"])),
    ([], [], {"Cmd": ["sh"]}, ([], ["sh"])),
    ([], [], {}, ([], [])),
])
def test_image_command(command, args, image, want):
    cfg = pb.ContainerConfig(command=command, args=args)
    assert image_command(cfg, image) == want


def test_merge_env_overrides_image_values_in_place():
    assert merge_env(["PATH=/bin", "A=1", "EMPTY="], [("A", "2"), ("B", "3")]) == [
        ("PATH", "/bin"), ("A", "2"), ("EMPTY", ""), ("B", "3")]


def test_resolve_prefix():
    records = {"abc1": {"id": "abc1"}, "abc2": {"id": "abc2"}, "def": {"id": "def"}}
    assert resolve_prefix(records, "d", "x")["id"] == "def"
    assert resolve_prefix(records, "abc1", "x")["id"] == "abc1"
    for bad in ("abc", "zzz"):
        with pytest.raises(Exception) as info:
            resolve_prefix(records, bad, "x")
        assert info.value.code == grpc.StatusCode.NOT_FOUND


async def test_state_store_round_trip_and_torn_writes(tmp_path):
    store = StateStore(tmp_path)
    await store.save("sandboxes", {"id": "a", "x": 1})
    await store.save("sandboxes", {"id": "a", "x": 2})
    await store.save("containers", {"id": "c", "y": [1, 2]})
    (tmp_path / "meta" / "sandboxes" / "b.tmp").write_bytes(b"{torn")
    loaded = await store.load()
    assert loaded == {"sandboxes": {"a": {"id": "a", "x": 2}}, "containers": {"c": {"id": "c", "y": [1, 2]}}}
    assert not (tmp_path / "meta" / "sandboxes" / "b.tmp").exists()
    await store.delete("sandboxes", "a")
    await store.delete("sandboxes", "a")
    assert (await store.load())["sandboxes"] == {}


# ---- runtime -------------------------------------------------------------------------------------

async def test_version_and_status(cri):
    v = await cri.rt.Version(pb.VersionRequest(version="v1"))
    assert (v.runtime_name, v.runtime_api_version) == ("navarch", "v1")
    st = await cri.rt.Status(pb.StatusRequest(verbose=True))
    conditions = {c.type: c.status for c in st.status.conditions}
    assert conditions == {"RuntimeReady": True, "NetworkReady": True}
    assert orjson.loads(st.info["config"])["driver"] == "hollow"


async def test_metrics_count_calls_by_code(cri):
    await expect_code(grpc.StatusCode.NOT_FOUND,
                      cri.rt.ContainerStatus(pb.ContainerStatusRequest(container_id="0" * 64)))
    st = await cri.rt.Status(pb.StatusRequest(verbose=True))
    base = orjson.loads(st.info["config"])["streaming"]
    async with aiohttp.ClientSession() as s, s.get(f"{base}/metrics") as resp:
        text = await resp.text()
    assert 'navarch_runtime_cri_requests_total{code="NOT_FOUND",method="ContainerStatus"} 1.0' in text
    assert 'navarch_runtime_cri_requests_total{code="OK",method="Status"}' in text


async def test_sandbox_lifecycle(cri):
    sid = await run_pod(cri, labels={"app": "web"}, annotations={"note": "x"})
    assert len(sid) == 64 and all(c in "0123456789abcdef" for c in sid)
    st = (await cri.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=sid))).status
    assert st.state == pb.SANDBOX_READY
    assert st.metadata == pb.PodSandboxMetadata(name="web", namespace="default", uid="uid-web", attempt=0)
    assert dict(st.labels) == {"app": "web"} and dict(st.annotations) == {"note": "x"}
    assert st.network.ip.startswith("10.88.") and st.created_at > 0

    for _ in range(2):      # StopPodSandbox is repeatable
        await cri.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=sid))
    st = (await cri.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=sid[:10]))).status
    assert st.state == pb.SANDBOX_NOTREADY and st.id == sid

    for _ in range(2):      # so is RemovePodSandbox
        await cri.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=sid))
    await expect_code(grpc.StatusCode.NOT_FOUND,
                      cri.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=sid)))
    assert not (await cri.rt.ListPodSandbox(pb.ListPodSandboxRequest())).items


async def test_sandbox_ips_are_distinct_and_host_network_has_none(cri):
    a = await run_pod(cri, name="a")
    b = await run_pod(cri, name="b")
    h = await run_pod(cri, name="h", host_network=True)
    ips = []
    for sid in (a, b, h):
        ips.append((await cri.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=sid))).status.network.ip)
    assert ips[0] != ips[1] and all(ips[:2]) and ips[2] == ""
    st = (await cri.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=h))).status
    assert st.linux.namespaces.options.network == pb.NODE


async def test_sandbox_bad_input(cri):
    await expect_code(grpc.StatusCode.INVALID_ARGUMENT, cri.rt.RunPodSandbox(pb.RunPodSandboxRequest(
        config=pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(namespace="default")))))
    await expect_code(grpc.StatusCode.INVALID_ARGUMENT, cri.rt.RunPodSandbox(pb.RunPodSandboxRequest(
        config=make_pod(), runtime_handler="kata")))
    await run_pod(cri)
    details = await expect_code(grpc.StatusCode.ALREADY_EXISTS, cri.rt.RunPodSandbox(
        pb.RunPodSandboxRequest(config=make_pod())))
    assert "reserved" in details
    await run_pod(cri, attempt=1)     # a new attempt is a new sandbox
    for call in (cri.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id="f" * 64)),
                 cri.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id="f" * 64))):
        await expect_code(grpc.StatusCode.NOT_FOUND, call)


async def test_container_lifecycle(cri, tmp_path):
    sid = await run_pod(cri, log_dir=str(tmp_path / "logs"))
    cid = await create(cri, sid, command=["sleep", "1000"], log_path="app/0.log",
                       labels={"tier": "a"}, annotations={"k": "v"}, envs={"A": "1"})
    st = (await ctr_status(cri, cid)).status
    assert st.state == pb.CONTAINER_CREATED and st.started_at == 0 and st.created_at > 0
    assert st.log_path == str(tmp_path / "logs" / "app" / "0.log")
    assert st.image.image == "docker.io/library/busybox:latest" and st.image_id.startswith("sha256:")
    assert dict(st.labels) == {"tier": "a"} and dict(st.annotations) == {"k": "v"}

    await cri.rt.StartContainer(pb.StartContainerRequest(container_id=cid[:12]))
    st = (await ctr_status(cri, cid)).status
    assert st.state == pb.CONTAINER_RUNNING and st.started_at >= st.created_at
    await expect_code(grpc.StatusCode.FAILED_PRECONDITION,
                      cri.rt.StartContainer(pb.StartContainerRequest(container_id=cid)))

    info = orjson.loads((await ctr_status(cri, cid, verbose=True)).info["info"])
    assert info["sandboxID"] == sid and info["command"] == ["sleep", "1000"] and info["args"] == []

    r = await cri.rt.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=["true"]))
    assert r.exit_code == 0

    for _ in range(2):      # StopContainer is repeatable
        await cri.rt.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=5))
    st = (await ctr_status(cri, cid)).status
    assert st.state == pb.CONTAINER_EXITED and st.finished_at >= st.started_at
    assert (st.exit_code, st.reason) == (0, "Completed")
    await expect_code(grpc.StatusCode.FAILED_PRECONDITION,
                      cri.rt.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=["true"])))

    for _ in range(2):      # RemoveContainer is repeatable
        await cri.rt.RemoveContainer(pb.RemoveContainerRequest(container_id=cid))
    await expect_code(grpc.StatusCode.NOT_FOUND, ctr_status(cri, cid))


async def test_container_bad_input(cri):
    sid = await run_pod(cri)
    # An image that was never pulled.
    await expect_code(grpc.StatusCode.NOT_FOUND, cri.rt.CreateContainer(pb.CreateContainerRequest(
        pod_sandbox_id=sid, config=make_container(image="never/pulled:1"))))
    await expect_code(grpc.StatusCode.NOT_FOUND, create(cri, "0" * 64))
    await expect_code(grpc.StatusCode.INVALID_ARGUMENT, create(cri, sid, name=""))
    await create(cri, sid, name="dup")
    await expect_code(grpc.StatusCode.ALREADY_EXISTS, create(cri, sid, name="dup"))
    await create(cri, sid, name="dup", attempt=1)
    for call in (cri.rt.StartContainer(pb.StartContainerRequest(container_id="0" * 64)),
                 cri.rt.StopContainer(pb.StopContainerRequest(container_id="0" * 64)),
                 cri.rt.ContainerStatus(pb.ContainerStatusRequest(container_id="0" * 64)),
                 cri.rt.ExecSync(pb.ExecSyncRequest(container_id="0" * 64, cmd=["x"]))):
        await expect_code(grpc.StatusCode.NOT_FOUND, call)
    await cri.rt.RemoveContainer(pb.RemoveContainerRequest(container_id="0" * 64))
    await cri.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=sid))
    await expect_code(grpc.StatusCode.FAILED_PRECONDITION, create(cri, sid, name="late"))
    created = (await cri.rt.ListContainers(pb.ListContainersRequest())).containers[0].id
    await expect_code(grpc.StatusCode.FAILED_PRECONDITION,
                      cri.rt.StartContainer(pb.StartContainerRequest(container_id=created)))


async def test_stop_and_remove_sandbox_cascade_to_containers(cri):
    sid = await run_pod(cri)
    cids = [await create(cri, sid, name=f"c{i}") for i in range(3)]
    for cid in cids[:2]:
        await cri.rt.StartContainer(pb.StartContainerRequest(container_id=cid))
    other = await run_pod(cri, name="other")
    keep = await create(cri, other, name="keep")
    await cri.rt.StartContainer(pb.StartContainerRequest(container_id=keep))

    await cri.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=sid))
    states = [(await ctr_status(cri, c)).status.state for c in cids]
    assert states == [pb.CONTAINER_EXITED, pb.CONTAINER_EXITED, pb.CONTAINER_CREATED]

    await cri.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=sid))
    left = (await cri.rt.ListContainers(pb.ListContainersRequest())).containers
    assert [c.id for c in left] == [keep] and left[0].state == pb.CONTAINER_RUNNING


async def test_list_filters(cri):
    a = await run_pod(cri, name="a", labels={"app": "x", "env": "prod"})
    b = await run_pod(cri, name="b", labels={"app": "x", "env": "dev"})
    await cri.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=b))

    async def pods(**f) -> list[str]:
        req = pb.ListPodSandboxRequest(filter=pb.PodSandboxFilter(**f))
        return sorted(p.id for p in (await cri.rt.ListPodSandbox(req)).items)

    assert await pods() == sorted([a, b])
    assert await pods(id=a[:8]) == [a]
    assert await pods(state=pb.PodSandboxStateValue(state=pb.SANDBOX_READY)) == [a]
    assert await pods(state=pb.PodSandboxStateValue(state=pb.SANDBOX_NOTREADY)) == [b]
    assert await pods(label_selector={"app": "x"}) == sorted([a, b])
    assert await pods(label_selector={"app": "x", "env": "dev"}) == [b]
    assert await pods(label_selector={"app": "y"}) == []

    c = await create(cri, a, name="c", labels={"role": "db"})
    d = await create(cri, a, name="d", labels={"role": "web"})
    await cri.rt.StartContainer(pb.StartContainerRequest(container_id=d))

    async def ctrs(**f) -> list[str]:
        req = pb.ListContainersRequest(filter=pb.ContainerFilter(**f))
        return sorted(x.id for x in (await cri.rt.ListContainers(req)).containers)

    assert await ctrs() == sorted([c, d])
    assert await ctrs(pod_sandbox_id=a) == sorted([c, d])
    assert await ctrs(pod_sandbox_id=b) == []
    assert await ctrs(id=c[:10]) == [c]
    assert await ctrs(state=pb.ContainerStateValue(state=pb.CONTAINER_RUNNING)) == [d]
    assert await ctrs(state=pb.ContainerStateValue(state=pb.CONTAINER_CREATED)) == [c]
    assert await ctrs(label_selector={"role": "db"}) == [c]
    listed = {x.id: x for x in (await cri.rt.ListContainers(pb.ListContainersRequest())).containers}
    assert listed[d].pod_sandbox_id == a and listed[d].metadata.name == "d"
    assert listed[d].image_id == listed[d].image_ref or listed[d].image_ref.startswith("docker.io/")


async def test_update_resources_and_stats(cri):
    sid = await run_pod(cri)
    cid = await create(cri, sid, memory=64 << 20)
    await cri.rt.StartContainer(pb.StartContainerRequest(container_id=cid))
    assert (await ctr_status(cri, cid)).status.resources.linux.memory_limit_in_bytes == 64 << 20
    await cri.rt.UpdateContainerResources(pb.UpdateContainerResourcesRequest(
        container_id=cid, linux=pb.LinuxContainerResources(memory_limit_in_bytes=32 << 20, cpu_shares=512)))
    res = (await ctr_status(cri, cid)).status.resources.linux
    assert (res.memory_limit_in_bytes, res.cpu_shares) == (32 << 20, 512)

    stats = (await cri.rt.ContainerStats(pb.ContainerStatsRequest(container_id=cid))).stats
    assert stats.attributes.id == cid and stats.cpu.timestamp > 0
    listed = (await cri.rt.ListContainerStats(pb.ListContainerStatsRequest())).stats
    assert [s.attributes.id for s in listed] == [cid]
    pod = (await cri.rt.PodSandboxStats(pb.PodSandboxStatsRequest(pod_sandbox_id=sid))).stats
    assert pod.attributes.id == sid and [c.attributes.id for c in pod.linux.containers] == [cid]
    await cri.rt.ReopenContainerLog(pb.ReopenContainerLogRequest(container_id=cid))


# ---- streaming -----------------------------------------------------------------------------------

async def read_exec(url: str, protocol: str = "v5.channel.k8s.io") -> dict[int, bytes]:
    got: dict[int, bytes] = {}
    async with aiohttp.ClientSession() as s, s.ws_connect(url, protocols=(protocol,)) as ws:
        assert ws.protocol == protocol
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.BINARY:
                got[msg.data[0]] = got.get(msg.data[0], b"") + msg.data[1:]
    return got


async def test_exec_url_is_one_time(cri):
    sid = await run_pod(cri)
    cid = await create(cri, sid)
    await expect_code(grpc.StatusCode.FAILED_PRECONDITION,
                      cri.rt.Exec(pb.ExecRequest(container_id=cid, cmd=["ls"], stdout=True)))
    await cri.rt.StartContainer(pb.StartContainerRequest(container_id=cid))
    await expect_code(grpc.StatusCode.INVALID_ARGUMENT,
                      cri.rt.Exec(pb.ExecRequest(container_id=cid, cmd=["ls"], tty=True, stderr=True)))
    await expect_code(grpc.StatusCode.INVALID_ARGUMENT, cri.rt.Exec(pb.ExecRequest(container_id=cid, cmd=["ls"])))
    for protocol in ("v5.channel.k8s.io", "v4.channel.k8s.io"):
        url = (await cri.rt.Exec(pb.ExecRequest(container_id=cid, cmd=["ls"], stdout=True))).url
        assert url.startswith("http://127.0.0.1:")
        got = await read_exec(url, protocol)
        assert orjson.loads(got[3])["status"] == "Success"
        async with aiohttp.ClientSession() as s:
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await s.ws_connect(url, protocols=(protocol,))
            assert info.value.status == 404
    url = (await cri.rt.Attach(pb.AttachRequest(container_id=cid, stdout=True, stderr=True))).url
    assert "/attach/" in url
    await expect_code(grpc.StatusCode.INVALID_ARGUMENT,
                      cri.rt.Attach(pb.AttachRequest(container_id=cid, tty=True, stdout=True)))


async def test_port_forward_channels(cri):
    sid = await run_pod(cri)
    url = (await cri.rt.PortForward(pb.PortForwardRequest(pod_sandbox_id=sid, port=[8080, 9090]))).url
    async with aiohttp.ClientSession() as s, s.ws_connect(url, protocols=("v4.channel.k8s.io",)) as ws:
        opening = {}
        while len(opening) < 4:
            msg = await ws.receive(timeout=10)
            opening[msg.data[0]] = msg.data[1:]
        assert opening == {0: struct.pack("<H", 8080), 1: struct.pack("<H", 8080),
                           2: struct.pack("<H", 9090), 3: struct.pack("<H", 9090)}
        # The hollow driver's pod port is an echo.
        await ws.send_bytes(b"\x02hello")
        msg = await ws.receive(timeout=10)
        assert msg.data == b"\x02hello"
    await expect_code(grpc.StatusCode.NOT_FOUND,
                      cri.rt.PortForward(pb.PortForwardRequest(pod_sandbox_id="0" * 64, port=[80])))
    await expect_code(grpc.StatusCode.INVALID_ARGUMENT,
                      cri.rt.PortForward(pb.PortForwardRequest(pod_sandbox_id=sid, port=[70000])))


# ---- images --------------------------------------------------------------------------------------

async def test_image_service(cri):
    assert not (await cri.im.ListImages(pb.ListImagesRequest())).images
    st = await cri.im.ImageStatus(pb.ImageStatusRequest(image=pb.ImageSpec(image="busybox")))
    assert not st.HasField("image")
    ref = (await cri.im.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image="busybox"),
                                                      auth=pb.AuthConfig(username="u", password="p")))).image_ref
    assert ref.startswith("sha256:")
    images = (await cri.im.ListImages(pb.ListImagesRequest())).images
    assert [i.id for i in images] == [ref] and list(images[0].repo_tags) == ["docker.io/library/busybox:latest"]
    for name in ("busybox", "docker.io/library/busybox:latest", ref):
        st = await cri.im.ImageStatus(pb.ImageStatusRequest(image=pb.ImageSpec(image=name), verbose=True))
        assert st.image.id == ref and "info" in st.info
    await expect_code(grpc.StatusCode.INVALID_ARGUMENT,
                      cri.im.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image="Bad Ref"))))
    fs = (await cri.im.ImageFsInfo(pb.ImageFsInfoRequest())).image_filesystems
    assert fs[0].used_bytes.value > 0
    for _ in range(2):
        await cri.im.RemoveImage(pb.RemoveImageRequest(image=pb.ImageSpec(image="busybox")))
    assert not (await cri.im.ListImages(pb.ListImagesRequest())).images


# ---- restart -------------------------------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
async def test_restart_keeps_sandboxes_and_containers(tmp_path, sig):
    root = tmp_path / "root"
    rp = start_runtime(root)
    try:
        cri = Clients(rp.socket)
        sid = await run_pod(cri, labels={"a": "b"})
        stopped = await run_pod(cri, name="stopped")
        await cri.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=stopped))
        running = await create(cri, sid, name="running")
        await cri.rt.StartContainer(pb.StartContainerRequest(container_id=running))
        created = await create(cri, sid, name="created")
        ip = (await cri.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=sid))).status.network.ip
        await cri.close()
        code = rp.stop(sig)
        if sig == signal.SIGTERM:
            assert code == 0 and not rp.socket.exists()
    finally:
        rp.stop(signal.SIGKILL)

    rp = start_runtime(root)
    try:
        cri = Clients(rp.socket)
        pods = {p.id: p for p in (await cri.rt.ListPodSandbox(pb.ListPodSandboxRequest())).items}
        assert pods[sid].state == pb.SANDBOX_READY and dict(pods[sid].labels) == {"a": "b"}
        assert pods[stopped].state == pb.SANDBOX_NOTREADY
        st = (await cri.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=sid))).status
        assert st.network.ip == ip
        states = {c.id: c.state for c in (await cri.rt.ListContainers(pb.ListContainersRequest())).containers}
        assert states == {running: pb.CONTAINER_RUNNING, created: pb.CONTAINER_CREATED}
        # A new pod does not get an address that is still in use.
        other = await run_pod(cri, name="other")
        other_ip = (await cri.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=other))).status.network.ip
        assert other_ip != ip
        await cri.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=sid))
        assert not (await cri.rt.ListContainers(pb.ListContainersRequest())).containers
        await cri.close()
    finally:
        rp.stop(signal.SIGKILL)
    assert not list((root / "meta" / "containers").iterdir())
    assert not (root / "containers" / running).exists()


async def test_many_concurrent_pods(cri):
    """Concurrent calls keep the state machine consistent (ids unique, IPs unique, all listed)."""
    async def one(i: int) -> str:
        sid = await run_pod(cri, name=f"p{i}")
        cid = await create(cri, sid, name="c")
        await cri.rt.StartContainer(pb.StartContainerRequest(container_id=cid))
        return sid

    sids = await asyncio.gather(*(one(i) for i in range(30)))
    assert len(set(sids)) == 30
    ips = set()
    for sid in sids:
        ips.add((await cri.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=sid))).status.network.ip)
    assert len(ips) == 30
    running = pb.ContainerFilter(state=pb.ContainerStateValue(state=pb.CONTAINER_RUNNING))
    assert len((await cri.rt.ListContainers(pb.ListContainersRequest(filter=running))).containers) == 30
    await asyncio.gather(*(cri.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=s)) for s in sids))
    assert not (await cri.rt.ListPodSandbox(pb.ListPodSandboxRequest())).items


async def test_container_whose_creation_was_cut_short(tmp_path):
    """A record without driver state (the daemon died inside CreateContainer) lists as UNKNOWN and
    can be removed, alone or with its sandbox."""
    root = tmp_path / "root"
    rp = start_runtime(root)
    try:
        cri = Clients(rp.socket)
        sid = await run_pod(cri)
        cids = [await create(cri, sid, name=f"c{i}") for i in range(2)]
        await cri.close()
    finally:
        rp.stop(signal.SIGKILL)
    for cid in cids:
        for p in sorted((root / "containers" / cid).rglob("*"), reverse=True):
            p.unlink() if p.is_file() else p.rmdir()
        (root / "containers" / cid).rmdir()

    rp = start_runtime(root)
    try:
        cri = Clients(rp.socket)
        listed = (await cri.rt.ListContainers(pb.ListContainersRequest())).containers
        assert sorted((c.id, c.state) for c in listed) == sorted((c, pb.CONTAINER_UNKNOWN) for c in cids)
        await cri.rt.StopContainer(pb.StopContainerRequest(container_id=cids[0]))
        await cri.rt.RemoveContainer(pb.RemoveContainerRequest(container_id=cids[0]))
        await cri.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=sid))
        assert not (await cri.rt.ListContainers(pb.ListContainersRequest())).containers
        await cri.close()
    finally:
        rp.stop(signal.SIGKILL)
