"""RuncDriver against the real thing: runc, CNI plugins, overlayfs, cgroups (needs root)."""

from __future__ import annotations

import asyncio
import ipaddress
import os
from pathlib import Path

import orjson
import pytest

from runtime.driver import DNSConfig, NotFoundError, PortMapping, Resources, StartError
from runtime.linux import ExecTimeoutError, syscalls
from tests.runtime.test_linux_harness import (
    Harness,
    cgroup_dirs,
    link_exists,
    read_log,
    require_tools,
)


@pytest.fixture
async def h(tmp_path, busybox_layer_dir):
    require_tools()
    harness = Harness(tmp_path / "root", busybox_layer_dir)
    await harness.driver.start([], [])
    yield harness
    await harness.cleanup()


async def test_sandbox_gets_ip_and_echo_logs_in_cri_format(h):
    sb, net = await h.sandbox("web", dns=DNSConfig(servers=["10.0.0.10"], searches=["svc.local"],
                                                   options=["ndots:5"]))
    assert ipaddress.ip_address(net.ip) in ipaddress.ip_network(h.cidr)
    assert net.netns_path and await asyncio.to_thread(os.path.exists, net.netns_path)
    c = await h.container(sb, ["sh", "-c", "echo hello; echo oops >&2; printf partial; "
                                           "hostname; cat /etc/resolv.conf; ip -4 addr show eth0"])
    st = await h.wait_state(c)
    assert (st.exit_code, st.reason) == (0, "Completed")
    assert 0 < st.started_at <= st.finished_at
    lines = read_log(c.log_path)
    assert ("stdout", "F", b"hello") in lines
    assert ("stderr", "F", b"oops") in lines
    out = b"\n".join(text for stream, _, text in lines if stream == "stdout")
    assert b"partialweb" in out              # printf without newline joins the next line
    assert b"nameserver 10.0.0.10" in out and b"search svc.local" in out and b"options ndots:5" in out
    assert f"inet {net.ip}/".encode() in out


async def test_long_lines_are_split_into_partial_entries(h):
    sb, _ = await h.sandbox()
    c = await h.container(sb, ["sh", "-c", "head -c 40000 /dev/zero | tr '\\0' x; echo"])
    await h.wait_state(c)
    lines = read_log(c.log_path)
    assert [tag for _, tag, _ in lines] == ["P", "P", "F"]
    assert b"".join(text for _, _, text in lines) == b"x" * 40000


@pytest.mark.parametrize("script,code,reason", [
    ("exit 0", 0, "Completed"),
    ("exit 3", 3, "Error"),
    ("exit 255", 255, "Error"),
])
async def test_exit_codes_and_reasons(h, script, code, reason):
    sb, _ = await h.sandbox()
    c = await h.container(sb, ["sh", "-c", "sleep 0.2; " + script])
    st = await h.wait_state(c)
    assert (st.exit_code, st.reason) == (code, reason)


async def test_killed_by_a_signal(h):
    sb, _ = await h.sandbox()
    c = await h.container(sb, ["sleep", "1000"])
    st = await h.wait_state(c, "RUNNING")
    os.kill(st.pid, 9)
    st = await h.wait_state(c)
    assert (st.exit_code, st.reason) == (137, "Error")


async def test_missing_command_is_a_start_error(h):
    sb, _ = await h.sandbox()
    with pytest.raises(StartError) as err:
        await h.container(sb, ["/no/such/binary"])
    assert err.value.exit_code == 127
    st = await h.driver.container_state(h.containers[-1])
    assert (st.state, st.exit_code, st.reason) == ("EXITED", 127, "StartError")
    assert "no/such/binary" in st.message


async def test_stop_sends_the_stop_signal_then_kills_after_timeout(h):
    sb, _ = await h.sandbox()
    stubborn = await h.container(sb, ["sh", "-c", "trap '' TERM; echo ready; sleep 100"], name="stubborn")
    polite = await h.container(sb, ["sh", "-c", "trap 'echo got-usr1; exit 0' USR1; echo ready; "
                                                "while true; do sleep 0.1; done"],
                               name="polite", image_config={"StopSignal": "SIGUSR1"})
    for c in (stubborn, polite):
        await h.wait_state(c, "RUNNING")
        await wait_log(c, b"ready")
    await asyncio.gather(h.driver.stop_container(stubborn, 1), h.driver.stop_container(polite, 30))
    st = await h.driver.container_state(stubborn)
    assert (st.state, st.exit_code, st.reason) == ("EXITED", 137, "Error")
    st = await h.driver.container_state(polite)
    assert (st.state, st.exit_code, st.reason) == ("EXITED", 0, "Completed")
    assert ("stdout", "F", b"got-usr1") in read_log(polite.log_path)
    await h.driver.stop_container(stubborn, 1)     # idempotent


async def test_oom_kill_under_memory_limit(h):
    sb, _ = await h.sandbox()
    c = await h.container(sb, ["sh", "-c", "head -c 64m /dev/zero | tail"],
                          resources=Resources(memory_limit_in_bytes=16 * 1024 * 1024))
    st = await h.wait_state(c)
    assert st.reason == "OOMKilled"
    assert st.exit_code != 0


async def test_cgroup_limits_are_visible_inside(h):
    sb, _ = await h.sandbox()
    c = await h.container(sb, ["sleep", "1000"], resources=Resources(
        memory_limit_in_bytes=48 * 1024 * 1024, cpu_quota=50000, cpu_period=100000, cpu_shares=512,
        pids_limit=64))
    await h.wait_state(c, "RUNNING")
    files = {
        "/sys/fs/cgroup/memory/memory.limit_in_bytes": str(48 * 1024 * 1024),
        "/sys/fs/cgroup/cpu/cpu.cfs_quota_us": "50000",
        "/sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000",
        "/sys/fs/cgroup/cpu/cpu.shares": "512",
        "/sys/fs/cgroup/pids/pids.max": "64",
    }
    for path, want in files.items():
        out, err, code = await h.driver.exec_sync(c, ["cat", path], 10)
        assert (code, out.strip().decode()) == (0, want), (path, err)
    # The host sees the same limit at the container's cgroup path.
    host = f"/sys/fs/cgroup/memory{h.driver.cgroups_path(c.id)}/memory.limit_in_bytes"
    assert (await asyncio.to_thread(Path(host).read_text)).strip() == str(48 * 1024 * 1024)
    await h.driver.update_resources(c, Resources(memory_limit_in_bytes=64 * 1024 * 1024))
    out, _, _ = await h.driver.exec_sync(c, ["cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"], 10)
    assert out.strip() == str(64 * 1024 * 1024).encode()
    usage = await h.driver.container_usage(c)
    assert usage.memory_usage_bytes > 0 and usage.cpu_usage_core_nanoseconds > 0


async def test_two_pods_reach_each_other_by_pod_ip(h):
    server_sb, server_net = await h.sandbox("server")
    client_sb, client_net = await h.sandbox("client")
    assert server_net.ip != client_net.ip
    await h.container(server_sb, ["httpd", "-f", "-p", "80", "-h", "/var/www"], name="httpd")
    client = await h.container(client_sb, ["sleep", "1000"], name="client")
    await h.wait_state(client, "RUNNING")
    out = await retry_exec(h, client, ["wget", "-q", "-O", "-", f"http://{server_net.ip}/"])
    assert out == b"hello from busybox\n"
    _, _, code = await h.driver.exec_sync(client, ["ping", "-c", "1", "-W", "3", server_net.ip], 10)
    assert code == 0


async def test_port_forward_dials_inside_the_pod(h):
    sb, net = await h.sandbox("pf")
    c = await h.container(sb, ["httpd", "-f", "-p", "8080", "-h", "/var/www"])
    await h.wait_state(c, "RUNNING")
    await retry_exec(h, c, ["wget", "-q", "-O", "-", "http://127.0.0.1:8080/"])
    reader, writer = await h.driver.port_forward(sb, net, 8080)
    writer.write(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
    await writer.drain()
    body = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert body.startswith(b"HTTP/1.") and body.endswith(b"hello from busybox\n")


async def test_exec_sync_output_code_and_timeout(h):
    sb, _ = await h.sandbox()
    c = await h.container(sb, ["sleep", "1000"], envs=[("GREETING", "hi")], working_dir="/tmp")
    await h.wait_state(c, "RUNNING")
    out, err, code = await h.driver.exec_sync(c, ["sh", "-c", "echo $GREETING; pwd; echo bad >&2; exit 5"], 10)
    assert (out, err, code) == (b"hi\n/tmp\n", b"bad\n", 5)
    with pytest.raises(ExecTimeoutError):
        await h.driver.exec_sync(c, ["sleep", "30"], 1)
    out, _, _ = await h.driver.exec_sync(c, ["ps"], 10)
    assert b"sleep 30" not in out          # the timed-out process was killed


async def test_exec_with_tty_and_stdin(h):
    sb, _ = await h.sandbox()
    c = await h.container(sb, ["sleep", "1000"])
    await h.wait_state(c, "RUNNING")
    plain = await h.driver.exec(c, ["sh", "-c", "read x; echo got:$x; echo e >&2"], tty=False, stdin=True)
    plain.stdin.write(b"abc\n")
    await plain.stdin.drain()
    assert await asyncio.wait_for(plain.stdout.read(), 10) == b"got:abc\n"
    assert await asyncio.wait_for(plain.stderr.read(), 10) == b"e\n"
    assert await asyncio.wait_for(plain.wait, 10) == 0
    tty = await h.driver.exec(c, ["sh", "-c", "tty; cat; stty size; exit 4"], tty=True, stdin=True)
    tty.resize(100, 40)
    tty.stdin.write(b"typed\n")
    await tty.stdin.drain()
    tty.stdin.close()              # end of transmission: cat sees the end of its input
    out = await asyncio.wait_for(tty.stdout.read(), 10)
    assert b"/dev/pts/" in out and b"typed" in out
    assert await asyncio.wait_for(tty.wait, 10) == 4


async def test_attach_sees_output_and_feeds_stdin(h):
    sb, _ = await h.sandbox()
    c = await h.container(sb, ["sh", "-c", "read line; echo echoed:$line; cat; echo done >&2; exit 2"],
                          stdin=True, stdin_once=True)
    await h.wait_state(c, "RUNNING")
    watcher = await h.driver.attach(c, stdin=False)
    session = await h.driver.attach(c, stdin=True)
    session.stdin.write(b"ping\nmore\n")
    await session.stdin.drain()
    assert await asyncio.wait_for(session.stdout.readline(), 10) == b"echoed:ping\n"
    assert await asyncio.wait_for(session.stdout.readline(), 10) == b"more\n"
    session.stdin.close()      # with stdin_once the container sees EOF; output keeps coming
    assert await asyncio.wait_for(session.stderr.read(), 10) == b"done\n"
    assert await asyncio.wait_for(session.wait, 10) == 2
    assert await asyncio.wait_for(watcher.stdout.read(), 10) == b"echoed:ping\nmore\n"
    assert await asyncio.wait_for(watcher.wait, 10) == 2


async def test_reopen_log_after_rotation(h):
    sb, _ = await h.sandbox()
    c = await h.container(sb, ["sh", "-c", "trap 'echo second' USR2; echo first; "
                                           "while true; do sleep 0.1; done"])
    await wait_log(c, b"first")
    os.rename(c.log_path, c.log_path + ".1")
    await h.driver.reopen_log(c)
    await wait_for(lambda: os.path.exists(c.log_path))
    await h.driver.exec_sync(c, ["kill", "-USR2", "1"], 10)
    await wait_log(c, b"second")
    assert [t for _, _, t in read_log(c.log_path)] == [b"second"]


async def test_user_from_image_and_security_context(h):
    sb, _ = await h.sandbox()
    c = await h.container(sb, ["id"], image_config={"User": "nobody"}, name="nobody")
    await h.wait_state(c)
    assert read_log(c.log_path)[0][2].startswith(b"uid=65534(nobody) gid=65534(nogroup)")


async def test_readonly_rootfs_and_host_mount(h, tmp_path):
    from runtime.driver import Mount, SecurityContext
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "in.txt").write_text("from host\n")
    sb, _ = await h.sandbox()
    c = await h.container(sb, ["sh", "-c", "cat /data/in.txt; touch /x 2>/dev/null || echo ro-root; "
                                           "echo written > /data/out.txt"],
                          mounts=[Mount("/data", str(shared))], security=SecurityContext(readonly_rootfs=True))
    st = await h.wait_state(c)
    assert st.exit_code == 0
    assert [t for _, _, t in read_log(c.log_path)] == [b"from host", b"ro-root"]
    assert (shared / "out.txt").read_text() == "written\n"


async def test_host_network_sandbox(h):
    sb, net = await h.sandbox("hostnet", host_network=True)
    assert (net.ip, net.netns_path) == ("", "")
    c = await h.container(sb, ["sh", "-c", "ls /sys/class/net"])
    await h.wait_state(c)
    names = [t for _, _, t in read_log(c.log_path)]
    assert b"lo" in names and len(names) > 1      # the host's interfaces, not just a private lo


async def test_restart_recovers_running_container_and_sees_its_exit(h):
    sb, _ = await h.sandbox()
    c = await h.container(sb, ["sh", "-c", "echo before; while [ ! -f /tmp/stop ]; do sleep 0.1; done; "
                                           "echo after; exit 7"])
    await wait_log(c, b"before")
    await h.driver.close()
    h.driver = h.new_driver()        # a new daemon on the same root
    await h.driver.start([sb], [c])
    st = await h.driver.container_state(c)
    assert st.state == "RUNNING"
    await h.driver.exec_sync(c, ["touch", "/tmp/stop"], 10)
    st = await h.wait_state(c)
    assert (st.exit_code, st.reason) == (7, "Error")
    assert ("stdout", "F", b"after") in read_log(c.log_path)
    await h.driver.stop_container(c, 5)


async def test_removal_leaks_nothing(h):
    parent = f"/navarch/pod-{os.getpid()}-{id(h)}"
    sb, net = await h.sandbox("leaky", port_mappings=[PortMapping("TCP", 80, 18080 + os.getpid() % 1000)],
                              cgroup_parent=parent)
    c1 = await h.container(sb, ["sleep", "1000"], name="a")
    c2 = await h.container(sb, ["sh", "-c", "exit 0"], name="b")
    await h.wait_state(c1, "RUNNING")
    await h.wait_state(c2)
    saved = orjson.loads((sb.state_dir / "network.json").read_bytes())
    host_veths = [i["name"] for i in saved["attachment"]["result"]["interfaces"]
                  if not i.get("sandbox") and i["name"] != h.bridge]
    assert host_veths and all(link_exists(v) for v in host_veths)
    reservation = h.root / "cni" / "ipam" / "navarch" / net.ip
    assert reservation.exists()
    cg = [h.driver.cgroups_path(c.id) for c in (c1, c2)]
    assert all(cgroup_dirs(p) for p in cg)
    assert syscalls.mounts_under(str(h.root))

    await h.driver.stop_sandbox(sb)
    for c in (c1, c2):
        await h.driver.remove_container(c)
    await h.driver.remove_sandbox(sb)
    await h.driver.remove_sandbox(sb)      # idempotent

    assert syscalls.mounts_under(str(h.root)) == []
    assert not await asyncio.to_thread(os.path.exists, net.netns_path)
    assert not any(link_exists(v) for v in host_veths)
    assert not reservation.exists()
    assert all(cgroup_dirs(p) == [] for p in cg) and cgroup_dirs(parent) == []
    assert all(p.startswith(parent + "/") for p in cg)
    assert not sb.state_dir.exists() and not c1.state_dir.exists() and not c2.state_dir.exists()
    assert not (h.root / "ns" / sb.id).exists()
    runc_list = await output("runc", "--root", str(h.root / "runc"), "list", "-q")
    assert runc_list.split() == []
    nat = await output("iptables", "-t", "nat", "-S")
    assert sb.id[:12] not in nat and f"--dport {18080 + os.getpid() % 1000}" not in nat
    with pytest.raises(NotFoundError):
        await h.driver.container_state(c1)


# ---- helpers


async def output(*argv: str) -> str:
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    assert proc.returncode == 0, argv
    return out.decode()


async def wait_for(pred, limit: float = 30) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not pred():
        if loop.time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.05)


async def wait_log(c, text: bytes) -> None:
    def seen() -> bool:
        try:
            return any(t == text for _, _, t in read_log(c.log_path))
        except FileNotFoundError:
            return False
    await wait_for(seen)


async def retry_exec(h, c, cmd: list[str], attempts: int = 50) -> bytes:
    err = b""
    for _ in range(attempts):
        out, err, code = await h.driver.exec_sync(c, cmd, 10)
        if code == 0:
            return out
        await asyncio.sleep(0.1)
    raise AssertionError(f"{cmd} kept failing: {err!r}")


async def test_tty_container_logs_and_attach(h):
    sb, _ = await h.sandbox()
    c = await h.container(sb, ["sh", "-c", "tty; read x; echo got:$x"], tty=True, stdin=True)
    await h.wait_state(c, "RUNNING")
    session = await h.driver.attach(c, stdin=True)
    assert session.stderr is None
    session.stdin.write(b"abc\n")
    await session.stdin.drain()
    assert await asyncio.wait_for(session.wait, 10) == 0
    st = await h.wait_state(c)
    assert (st.exit_code, st.reason) == (0, "Completed")
    texts = [t for stream, _, t in read_log(c.log_path) if stream == "stdout"]
    # A terminal echoes its input, so "abc" may come before or after the output of tty.
    assert any(t.startswith(b"/dev/pts/") for t in texts) and b"got:abc" in texts


async def test_capabilities_default_added_and_privileged(h):
    from runtime.driver import SecurityContext
    sb, _ = await h.sandbox()
    plain = await h.container(sb, ["sleep", "1000"], name="plain")
    admin = await h.container(sb, ["sleep", "1000"], name="admin",
                              security=SecurityContext(add_capabilities=["NET_ADMIN"]))
    priv = await h.container(sb, ["sleep", "1000"], name="priv", security=SecurityContext(privileged=True))
    for c in (plain, admin, priv):
        await h.wait_state(c, "RUNNING")
    change_mtu = ["ip", "link", "set", "lo", "mtu", "65000"]
    assert (await h.driver.exec_sync(plain, change_mtu, 10))[2] != 0
    assert (await h.driver.exec_sync(admin, change_mtu, 10))[2] == 0
    out, _, _ = await h.driver.exec_sync(priv, ["grep", "CapEff", "/proc/self/status"], 10)
    status = await asyncio.to_thread(Path("/proc/self/status").read_text)
    host = next(line for line in status.splitlines() if line.startswith("CapBnd"))
    assert out.split()[1].decode() == host.split()[1]               # everything the runtime may grant
    out, _, code = await h.driver.exec_sync(priv, ["cat", "/proc/keys"], 10)     # not masked
    assert code == 0
    out, _, _ = await h.driver.exec_sync(plain, ["cat", "/proc/kcore"], 10)
    assert out == b""                                                             # masked
    _, _, code = await h.driver.exec_sync(plain, ["sh", "-c", "echo 1 > /proc/sys/kernel/shmmax"], 10)
    assert code != 0                                                              # read-only


async def test_host_port_reaches_the_pod(h):
    port = 20000 + os.getpid() % 10000
    sb, _ = await h.sandbox("hp", port_mappings=[PortMapping("TCP", 80, port)])
    c = await h.container(sb, ["httpd", "-f", "-p", "80", "-h", "/var/www"])
    await h.wait_state(c, "RUNNING")
    await retry_exec(h, c, ["wget", "-q", "-O", "-", "http://127.0.0.1:80/"])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.0\r\n\r\n")
    await writer.drain()
    body = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert body.endswith(b"hello from busybox\n")


async def test_a_killed_shim_is_noticed_and_the_container_still_stops(h):
    sb, _ = await h.sandbox()
    c = await h.container(sb, ["sleep", "1000"])
    await h.wait_state(c, "RUNNING")
    shim = int(await asyncio.to_thread((c.state_dir / "shim.pid").read_text))
    os.kill(shim, 9)
    await asyncio.sleep(0.5)
    assert (await h.driver.container_state(c)).state == "RUNNING"     # runc still runs it
    await h.driver.stop_container(c, 0)
    st = await h.driver.container_state(c)
    assert (st.state, st.exit_code) == ("EXITED", 255) and "shim" in st.message


REPO = str(Path(__file__).resolve().parents[2])
CHILD_DAEMON = """
import asyncio, pickle, sys
from runtime.linux import RuncDriver
sb, c, cidr, bridge, root = pickle.load(open(sys.argv[1], "rb"))
async def main():
    d = RuncDriver(root, pod_cidr=cidr, bridge=bridge)
    await d.start([], [])
    net = await d.run_sandbox(sb)
    await d.create_container(c, sb, net)
    await d.start_container(c)
    print(net.netns_path, net.ip, flush=True)
    await asyncio.sleep(3600)
asyncio.run(main())
"""


async def test_a_killed_daemon_leaves_containers_running_and_a_new_one_takes_over(h, tmp_path):
    import pickle
    import signal
    import sys

    from runtime.driver import SandboxNetwork
    from tests.runtime.test_linux_harness import make_container, make_sandbox
    sb = make_sandbox(h.root, "survivor")
    c = make_container(h.root, sb, h.layer, ["sh", "-c", "i=0; while [ ! -f /tmp/stop ]; do "
                                                         "echo tick $i; i=$((i+1)); sleep 0.1; done; exit 3"])
    h.sandboxes.append(sb)
    h.containers.append(c)
    args = tmp_path / "specs.pickle"
    await asyncio.to_thread(args.write_bytes, pickle.dumps((sb, c, h.cidr, h.bridge, h.root)))
    child = await asyncio.create_subprocess_exec(sys.executable, "-c", CHILD_DAEMON, str(args),
                                                 stdout=asyncio.subprocess.PIPE, cwd=REPO)
    try:
        netns, ip = (await asyncio.wait_for(child.stdout.readline(), 60)).decode().split()
    finally:
        child.send_signal(signal.SIGKILL)
        await child.wait()
    h.networks[sb.id] = SandboxNetwork(netns_path=netns, ip=ip)
    await wait_log(c, b"tick 1")
    lines_then = len(read_log(c.log_path))
    await h.driver.start([sb], [c])
    assert (await h.driver.container_state(c)).state == "RUNNING"
    await wait_for(lambda: len(read_log(c.log_path)) > lines_then + 2)     # the shim still writes the log
    await h.driver.exec_sync(c, ["touch", "/tmp/stop"], 10)
    st = await h.wait_state(c)
    assert (st.exit_code, st.reason) == (3, "Error")


async def test_many_layers_with_long_paths_still_mount(h, tmp_path):
    from runtime.linux import rootfs
    layers = []
    for i in range(60):
        d = tmp_path / ("layer-" + "x" * 80 + f"-{i:02d}")
        d.mkdir()
        (d / f"file{i}").write_text(str(i))
        layers.append(d)
    (layers[10] / "shadowed").write_text("low")
    (layers[50] / "shadowed").write_text("high")
    state = h.root / "many-layers"
    target = await asyncio.to_thread(rootfs.mount_rootfs, state, layers)
    try:
        assert (target / "file0").read_text() == "0" and (target / "file59").read_text() == "59"
        assert (target / "shadowed").read_text() == "high"       # the upper layer wins
    finally:
        await asyncio.to_thread(rootfs.remove_state, state)
    assert not state.exists()


def test_the_driver_under_uvloop(tmp_path, busybox_layer_dir):
    """The launcher runs the daemon on uvloop: the loop-sensitive paths (child processes, pidfd
    readers, abstract sockets, ptys, setns dialing, factory shutdown) must work there too."""
    import uvloop
    require_tools()

    async def scenario() -> None:
        h = Harness(tmp_path / "root", busybox_layer_dir)
        await h.driver.start([], [])
        try:
            sb, net = await h.sandbox("uv")
            c = await h.container(sb, ["sh", "-c", "httpd -p 8080 -h /var/www; read x; echo got:$x; exit 4"],
                                  stdin=True, stdin_once=True)
            await h.wait_state(c, "RUNNING")
            await retry_exec(h, c, ["wget", "-q", "-O", "-", "http://127.0.0.1:8080/"])
            reader, writer = await h.driver.port_forward(sb, net, 8080)
            writer.write(b"GET / HTTP/1.0\r\n\r\n")
            assert (await asyncio.wait_for(reader.read(), 10)).endswith(b"hello from busybox\n")
            writer.close()
            tty = await h.driver.exec(c, ["sh", "-c", "tty; read x; echo got:$x"], tty=True, stdin=True)
            tty.stdin.write(b"abc\n")
            await tty.stdin.drain()
            out = await asyncio.wait_for(tty.stdout.read(), 10)
            assert b"/dev/pts/" in out and b"got:abc" in out
            assert await asyncio.wait_for(tty.wait, 10) == 0
            await h.driver.close()
            h.driver = h.new_driver()
            await h.driver.start([sb], [c])
            session = await h.driver.attach(c, stdin=True)
            session.stdin.write(b"hi\n")
            session.stdin.close()
            assert await asyncio.wait_for(session.stdout.read(), 10) == b"got:hi\n"
            assert await asyncio.wait_for(session.wait, 10) == 4
            st = await h.wait_state(c)
            assert (st.exit_code, st.reason) == (4, "Error")
        finally:
            await h.cleanup()

    uvloop.run(scenario())
