"""The CRI service end to end over runc: a real ``navarch runtime --driver runc`` process on a temp
unix socket, images pulled from the local registry, containers run by runc in CNI-wired pods.

Each test has its own root, bridge and /24 pod subnet, removes every pod it made through the API
and stops its runtime by PID; the leak check verifies that removal leaves nothing on the host.
"""

from __future__ import annotations

import asyncio
import glob
import os
import random
import shutil
import signal
import subprocess
import uuid
from pathlib import Path

import aiohttp
import grpc
import orjson
import pytest

from proto import runtime_pb2 as pb
from tests.runtime.test_service import Clients, expect_code, make_container, make_pod, start_runtime

LIMIT = 60.0    # bound on waits for a state (against hangs; not a timing assertion)


def require_runc_env() -> None:
    missing = [t for t in ("runc", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/loopback",
                           "/usr/lib/cni/portmap", "ip") if not shutil.which(t) and not os.path.exists(t)]
    if os.geteuid() != 0:
        missing.append("root")
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"missing: {missing}")
        pytest.skip(f"missing: {missing}")


def veths(bridge: str) -> set[str]:
    """Host ends of the veth pairs on this test's bridge (other tests may add veths elsewhere)."""
    out = subprocess.run(["ip", "-o", "link", "show", "master", bridge], capture_output=True, text=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if line.strip()}


def link_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", name], capture_output=True).returncode == 0


def mounts_under(root: Path) -> list[str]:
    prefix = str(root)
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [p for p in points if p == prefix or p.startswith(prefix + "/")]


def cgroups_named(ids: list[str]) -> list[str]:
    found = []
    for controller in glob.glob("/sys/fs/cgroup/*"):
        for dirpath, dirnames, _ in os.walk(controller):
            found += [os.path.join(dirpath, d) for d in dirnames if any(i in d for i in ids)]
    return found


class RuncEnv:
    def __init__(self, tmp_path: Path, registry_address: str):
        self.root = tmp_path / "root"
        self.socket = tmp_path / "cri.sock"
        self.cidr = f"10.{random.randint(200, 250)}.{random.randint(0, 255)}.0/24"
        self.bridge = f"nvs{uuid.uuid4().hex[:8]}"
        self.registry = registry_address
        self.proc = None

    def start(self):
        self.proc = start_runtime(self.root, "--pod-cidr", self.cidr, "--bridge", self.bridge,
                                  "--insecure-registry", self.registry, driver="runc", socket=self.socket)
        return self.proc

    async def cleanup(self) -> None:
        if self.proc is not None and self.proc.proc.poll() is None:
            cri = Clients(self.socket)
            try:
                for p in (await cri.rt.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=30)).items:
                    await cri.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=p.id), timeout=60)
                    await cri.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=p.id), timeout=60)
            finally:
                await cri.close()
        await asyncio.to_thread(self.teardown)

    def teardown(self) -> None:
        if self.proc is not None:
            self.proc.stop()
        for point in sorted(mounts_under(self.root), key=len, reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)


@pytest.fixture
async def env(tmp_path, registry):
    require_runc_env()
    e = RuncEnv(tmp_path, registry.address)
    try:
        yield e
    finally:
        await e.cleanup()


@pytest.fixture
async def cri(env, busybox_image):
    env.start()
    clients = Clients(env.socket)
    await clients.im.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=busybox_image)), timeout=300)
    try:
        yield clients
    finally:
        await clients.close()


async def run_pod(cri: Clients, tmp_path: Path, name: str = "pod", **kw) -> str:
    cfg = make_pod(name=name, log_dir=str(tmp_path / "logs" / name), **kw)
    return (await cri.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg), timeout=120)).pod_sandbox_id


async def run_container(cri: Clients, sid: str, image: str, command: list[str], name: str = "c",
                        start: bool = True, **kw) -> str:
    cfg = make_container(name=name, image=image, command=command, log_path=f"{name}.log", **kw)
    cid = (await cri.rt.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=sid, config=cfg),
                                        timeout=120)).container_id
    if start:
        await cri.rt.StartContainer(pb.StartContainerRequest(container_id=cid), timeout=120)
    return cid


async def status(cri: Clients, cid: str) -> pb.ContainerStatus:
    return (await cri.rt.ContainerStatus(pb.ContainerStatusRequest(container_id=cid))).status


async def wait_state(cri: Clients, cid: str, state: int = pb.CONTAINER_EXITED) -> pb.ContainerStatus:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + LIMIT
    while True:
        st = await status(cri, cid)
        if st.state == state:
            return st
        if loop.time() > deadline:
            raise AssertionError(f"container stayed {pb.ContainerState.Name(st.state)}")
        await asyncio.sleep(0.1)


def cri_log(path: str) -> list[tuple[str, str, bytes]]:
    out = []
    for raw in Path(path).read_bytes().splitlines():
        stamp, stream, tag, content = raw.split(b" ", 3) if raw.count(b" ") >= 3 else (*raw.split(b" "), b"")
        assert stamp.endswith(b"Z") and b"T" in stamp, raw
        out.append((stream.decode(), tag.decode(), content))
    return out


async def test_run_logs_exit_codes(cri, busybox_image, tmp_path):
    conditions = {c.type: c.status for c in (await cri.rt.Status(pb.StatusRequest())).status.conditions}
    assert conditions == {"RuntimeReady": True, "NetworkReady": True}
    sid = await run_pod(cri, tmp_path)
    ok = await run_container(cri, sid, busybox_image, ["sh", "-c", "echo out; echo err >&2"], name="ok")
    bad = await run_container(cri, sid, busybox_image, ["sh", "-c", "exit 3"], name="bad")
    st = await wait_state(cri, ok)
    assert (st.exit_code, st.reason) == (0, "Completed") and st.finished_at >= st.started_at > 0
    assert st.log_path == str(tmp_path / "logs" / "pod" / "ok.log")
    assert sorted(cri_log(st.log_path)) == [("stderr", "F", b"err"), ("stdout", "F", b"out")]
    st = await wait_state(cri, bad)
    assert (st.exit_code, st.reason) == (3, "Error")
    assert st.image_id.startswith("sha256:") and st.image.image


async def test_exec_sync_and_streaming_exec(cri, busybox_image, tmp_path):
    sid = await run_pod(cri, tmp_path, name="execpod")
    cid = await run_container(cri, sid, busybox_image, ["sleep", "1000"])
    r = await cri.rt.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=["hostname"], timeout=30))
    assert (r.stdout, r.exit_code) == (b"execpod\n", 0)
    r = await cri.rt.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=["sh", "-c", "echo e >&2; exit 4"]))
    assert (r.stderr, r.exit_code) == (b"e\n", 4)
    await expect_code(grpc.StatusCode.DEADLINE_EXCEEDED, cri.rt.ExecSync(
        pb.ExecSyncRequest(container_id=cid, cmd=["sleep", "30"], timeout=1)))

    url = (await cri.rt.Exec(pb.ExecRequest(container_id=cid, cmd=["cat"], stdin=True, stdout=True,
                                            stderr=True))).url
    got: dict[int, bytes] = {}
    async with aiohttp.ClientSession() as s, s.ws_connect(url, protocols=("v5.channel.k8s.io",)) as ws:
        await ws.send_bytes(b"\x00hello over websocket\n")
        await ws.send_bytes(bytes([255, 0]))
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.BINARY:
                got[msg.data[0]] = got.get(msg.data[0], b"") + msg.data[1:]
    assert got[1] == b"hello over websocket\n"
    assert orjson.loads(got[3])["status"] == "Success"

    url = (await cri.rt.Exec(pb.ExecRequest(container_id=cid, cmd=["sh", "-c", "echo x >&2; exit 7"],
                                            stdout=True, stderr=True))).url
    got = {}
    async with aiohttp.ClientSession() as s, s.ws_connect(url, protocols=("v4.channel.k8s.io",)) as ws:
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.BINARY:
                got[msg.data[0]] = got.get(msg.data[0], b"") + msg.data[1:]
    assert got[2] == b"x\n"
    st = orjson.loads(got[3])
    assert st["reason"] == "NonZeroExitCode" and st["details"]["causes"] == [{"reason": "ExitCode", "message": "7"}]


async def test_stop_with_timeout(cri, busybox_image, tmp_path):
    sid = await run_pod(cri, tmp_path)
    # PID 1 without a handler ignores SIGTERM: the stop must end in SIGKILL after the timeout.
    stubborn = await run_container(cri, sid, busybox_image, ["sleep", "1000"], name="stubborn")
    polite = await run_container(cri, sid, busybox_image,
                                 ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"], name="polite")
    await wait_state(cri, stubborn, pb.CONTAINER_RUNNING)
    await cri.rt.StopContainer(pb.StopContainerRequest(container_id=stubborn, timeout=1), timeout=60)
    st = await status(cri, stubborn)
    assert st.state == pb.CONTAINER_EXITED and st.exit_code == 137
    await cri.rt.StopContainer(pb.StopContainerRequest(container_id=polite, timeout=30), timeout=60)
    st = await status(cri, polite)
    assert (st.state, st.exit_code, st.reason) == (pb.CONTAINER_EXITED, 0, "Completed")
    await cri.rt.StopContainer(pb.StopContainerRequest(container_id=polite, timeout=30), timeout=60)


async def test_missing_command_is_start_error(cri, busybox_image, tmp_path):
    sid = await run_pod(cri, tmp_path)
    cid = await run_container(cri, sid, busybox_image, ["/no/such/binary"], start=False)
    with pytest.raises(grpc.aio.AioRpcError):
        await cri.rt.StartContainer(pb.StartContainerRequest(container_id=cid), timeout=60)
    st = await wait_state(cri, cid)
    assert st.reason == "StartError" and st.exit_code in (127, 128), (st.exit_code, st.reason, st.message)


async def test_missing_image_and_bad_reference(cri, busybox_image, tmp_path, registry):
    sid = await run_pod(cri, tmp_path)
    await expect_code(grpc.StatusCode.NOT_FOUND, run_container(cri, sid, f"{registry.address}/never:pulled", ["sh"]))
    await expect_code(grpc.StatusCode.INVALID_ARGUMENT, cri.im.PullImage(
        pb.PullImageRequest(image=pb.ImageSpec(image="UPPER/Case:tag"))))
    details = await expect_code(grpc.StatusCode.NOT_FOUND, cri.im.PullImage(
        pb.PullImageRequest(image=pb.ImageSpec(image=f"{registry.address}/absent:v1")), timeout=120))
    assert "absent" in details or "unknown" in details.lower()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
async def test_daemon_restart_keeps_containers(env, cri, busybox_image, tmp_path, sig):
    sid = await run_pod(cri, tmp_path)
    cid = await run_container(cri, sid, busybox_image, ["sh", "-c", "while true; do echo tick; sleep 0.2; done"])
    await wait_state(cri, cid, pb.CONTAINER_RUNNING)
    ip = (await cri.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=sid))).status.network.ip
    code = await asyncio.to_thread(env.proc.stop, sig)
    if sig == signal.SIGTERM:
        assert code == 0 and not env.socket.exists()

    env.start()
    again = Clients(env.socket)
    try:
        listed = (await again.rt.ListContainers(pb.ListContainersRequest())).containers
        assert [(c.id, c.state) for c in listed] == [(cid, pb.CONTAINER_RUNNING)]
        st = (await again.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=sid))).status
        assert (st.state, st.network.ip) == (pb.SANDBOX_READY, ip)
        r = await again.rt.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=["echo", "alive"], timeout=30))
        assert r.stdout == b"alive\n"
        await again.rt.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=0), timeout=60)
        st = await wait_state(again, cid)
        assert st.finished_at > 0
        assert any(line == ("stdout", "F", b"tick") for line in cri_log(st.log_path))
    finally:
        await again.close()


async def test_no_leaks_after_stop_and_remove(env, cri, busybox_image, tmp_path):
    veths_before = veths(env.bridge)
    sids, cids = [], []
    for i in range(2):
        sid = await run_pod(cri, tmp_path, name=f"leak{i}", ports=[(80, 0)])
        sids.append(sid)
        cids.append(await run_container(cri, sid, busybox_image, ["sleep", "1000"]))
        cids.append(await run_container(cri, sid, busybox_image, ["true"], name="done"))
    for cid in cids:
        await wait_state(cri, cid, pb.CONTAINER_RUNNING if cids.index(cid) % 2 == 0 else pb.CONTAINER_EXITED)
    pod_veths = veths(env.bridge) - veths_before
    assert len(pod_veths) == 2
    assert mounts_under(env.root)
    assert cgroups_named(cids[::2])

    for sid in sids:
        await cri.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=sid), timeout=60)
        await cri.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=sid), timeout=60)

    assert mounts_under(env.root) == []
    assert veths(env.bridge) - veths_before == set()
    for name in pod_veths:
        assert not link_exists(name), name
    ipam = env.root / "cni" / "ipam"
    reservations = [p for p in ipam.rglob("*") if p.is_file() and not p.name.startswith(("last_reserved_ip", "lock"))]
    assert reservations == []
    assert cgroups_named(cids) == []
    for kind in ("containers", "sandboxes", "netns"):
        d = env.root / kind
        assert not d.exists() or list(d.iterdir()) == [], kind
    assert not any(cid in str(p) for p in (env.root / "runc").rglob("*") for cid in cids)
    assert list((env.root / "meta" / "containers").iterdir()) == []
    assert list((env.root / "meta" / "sandboxes").iterdir()) == []


async def test_port_forward_and_attach(cri, busybox_image, tmp_path):
    sid = await run_pod(cri, tmp_path, name="pf")
    serve = "mkdir -p /www && echo pf-page > /www/index.html && exec httpd -f -p 8080 -h /www"
    await run_container(cri, sid, busybox_image, ["sh", "-c", serve], name="web")
    ticker = await run_container(cri, sid, busybox_image,
                                 ["sh", "-c", "while true; do echo tick; sleep 0.2; done"], name="ticker")

    async def fetch_once() -> tuple[bytes, bytes]:
        url = (await cri.rt.PortForward(pb.PortForwardRequest(pod_sandbox_id=sid, port=[8080]))).url
        data, errors = b"", b""
        async with aiohttp.ClientSession() as s, s.ws_connect(url, protocols=("v4.channel.k8s.io",)) as ws:
            opening = [await ws.receive(timeout=30) for _ in range(2)]
            assert sorted(m.data for m in opening) == [b"\x00\x90\x1f", b"\x01\x90\x1f"]   # 8080 LE
            await ws.send_bytes(b"\x00GET / HTTP/1.0\r\n\r\n")
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.BINARY and msg.data[0] == 0:
                    data += msg.data[1:]
                elif msg.type == aiohttp.WSMsgType.BINARY and msg.data[0] == 1:
                    errors += msg.data[1:]
                    break
        return data, errors

    # httpd may not listen yet: a refused dial arrives on the error channel; try again (bounded).
    for _ in range(50):
        data, errors = await fetch_once()
        if data:
            break
        await asyncio.sleep(0.2)
    assert data.startswith(b"HTTP/1.") and data.endswith(b"pf-page\n"), (data, errors)

    url = (await cri.rt.Attach(pb.AttachRequest(container_id=ticker, stdout=True, stderr=True))).url
    async with aiohttp.ClientSession() as s, s.ws_connect(url, protocols=("v5.channel.k8s.io",)) as ws:
        seen = b""
        while b"tick\ntick\n" not in seen:
            msg = await ws.receive(timeout=30)
            assert msg.type == aiohttp.WSMsgType.BINARY
            if msg.data[0] == 1:
                seen += msg.data[1:]
    # Leaving the attach session leaves the container running.
    assert (await status(cri, ticker)).state == pb.CONTAINER_RUNNING


async def test_oom_kill_and_cgroup_limits(cri, busybox_image, tmp_path):
    sid = await run_pod(cri, tmp_path)
    hog = await run_container(cri, sid, busybox_image, ["sh", "-c", "head -c 64m /dev/zero | tail"],
                              name="hog", memory=16 << 20)
    st = await wait_state(cri, hog)
    assert st.reason == "OOMKilled" and st.exit_code != 0

    cfg = make_container(name="limited", image=busybox_image, command=["sleep", "1000"], log_path="limited.log")
    r = cfg.linux.resources
    r.memory_limit_in_bytes, r.cpu_quota, r.cpu_period, r.cpu_shares = 48 << 20, 50000, 100000, 512
    r.unified["pids.max"] = "64"
    cid = (await cri.rt.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=sid, config=cfg))).container_id
    await cri.rt.StartContainer(pb.StartContainerRequest(container_id=cid))

    async def read(path: str) -> str:
        out = await cri.rt.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=["cat", path], timeout=30))
        assert out.exit_code == 0, out.stderr
        return out.stdout.decode().strip()

    assert await read("/sys/fs/cgroup/memory/memory.limit_in_bytes") == str(48 << 20)
    assert await read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") == "50000"
    assert await read("/sys/fs/cgroup/cpu/cpu.shares") == "512"
    assert await read("/sys/fs/cgroup/pids/pids.max") == "64"
    await cri.rt.UpdateContainerResources(pb.UpdateContainerResourcesRequest(
        container_id=cid, linux=pb.LinuxContainerResources(memory_limit_in_bytes=64 << 20)))
    assert await read("/sys/fs/cgroup/memory/memory.limit_in_bytes") == str(64 << 20)
    assert (await status(cri, cid)).resources.linux.memory_limit_in_bytes == 64 << 20
    stats = (await cri.rt.ContainerStats(pb.ContainerStatsRequest(container_id=cid))).stats
    assert stats.memory.working_set_bytes.value > 0


async def test_pull_of_a_tampered_blob_fails_and_keeps_nothing(env, cri, registry, tmp_path):
    from tests.fixtures import oci

    marker = uuid.uuid4().hex
    work = tmp_path / "tampered"
    extra_src = work / "extra"
    (extra_src / "data").mkdir(parents=True)
    (extra_src / "data" / "marker").write_text(marker * 100)
    extra = oci.layer_tar_from_dir(extra_src, work / "extra.tar")
    parts = await asyncio.to_thread(oci.write_busybox_layout, work / "layout", work, extra_layers=[extra])
    ref = await asyncio.to_thread(oci.push_layout, work / "layout", "latest", registry.address, f"tampered-{marker}")
    digest = parts.layers[-1].digest.split(":", 1)[1]
    data = registry.root / "docker" / "registry" / "v2" / "blobs" / "sha256" / digest[:2] / digest / "data"
    blob = bytearray(data.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    data.write_bytes(bytes(blob))

    images_before = {i.id for i in (await cri.im.ListImages(pb.ListImagesRequest())).images}
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await cri.im.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=ref)), timeout=300)
    assert info.value.code() != grpc.StatusCode.OK and "digest" in info.value.details().lower()
    assert {i.id for i in (await cri.im.ListImages(pb.ListImagesRequest())).images} == images_before
    st = await cri.im.ImageStatus(pb.ImageStatusRequest(image=pb.ImageSpec(image=ref)))
    assert not st.HasField("image")
    leftovers = [p for p in (env.root / "images").rglob("*") if digest in p.name or parts.config.digest[7:] in p.name]
    assert leftovers == []


async def test_exec_with_tty_and_resize(cri, busybox_image, tmp_path):
    sid = await run_pod(cri, tmp_path, name="ttypod")
    cid = await run_container(cri, sid, busybox_image, ["sleep", "1000"])
    url = (await cri.rt.Exec(pb.ExecRequest(container_id=cid, cmd=["sh"], tty=True, stdin=True,
                                            stdout=True))).url
    seen = b""
    async with aiohttp.ClientSession() as s, s.ws_connect(url, protocols=("v5.channel.k8s.io",)) as ws:
        await ws.send_bytes(b"\x04" + orjson.dumps({"Width": 123, "Height": 45}))
        # The size travels to the container's terminal through runc, apart from stdin: ask for it
        # once the shell has shown its prompt, as a user at the terminal would.
        status_doc = None
        asked = False
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.BINARY:
                continue
            assert msg.data[0] in (1, 3), msg.data     # a TTY merges stderr into stdout
            if msg.data[0] == 1:
                seen += msg.data[1:]
                if not asked and b"# " in seen:
                    asked = True
                    await ws.send_bytes(b"\x00stty size; exit 3\n")
            else:
                status_doc = orjson.loads(msg.data[1:])
    assert b"45 123" in seen
    assert status_doc["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]


async def test_dns_config_and_host_network(env, cri, busybox_image, tmp_path):
    cfg = make_pod(name="dns", log_dir=str(tmp_path / "logs" / "dns"))
    cfg.dns_config.servers.append("10.96.0.10")
    cfg.dns_config.searches.extend(["default.svc.cluster.local", "svc.cluster.local"])
    cfg.dns_config.options.append("ndots:5")
    sid = (await cri.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg))).pod_sandbox_id
    cid = await run_container(cri, sid, busybox_image, ["sleep", "1000"])
    resolv = (await cri.rt.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=["cat", "/etc/resolv.conf"],
                                                      timeout=30))).stdout.decode()
    assert "nameserver 10.96.0.10" in resolv
    assert "search default.svc.cluster.local svc.cluster.local" in resolv and "ndots:5" in resolv

    host = await run_pod(cri, tmp_path, name="hostnet", host_network=True)
    st = (await cri.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=host))).status
    assert st.state == pb.SANDBOX_READY and st.network.ip == ""
    hcid = await run_container(cri, host, busybox_image, ["sleep", "1000"])
    links = (await cri.rt.ExecSync(pb.ExecSyncRequest(container_id=hcid, cmd=["ip", "-o", "link"],
                                                     timeout=30))).stdout.decode()
    # The host's links, among them this test's pod bridge (created for the first pod).
    assert f": {env.bridge}:" in links
