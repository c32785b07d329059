"""OCI spec building for the runc driver: pure rules, no root needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.driver import InvalidError, Mount, Resources, SecurityContext
from runtime.linux import spec as ocispec
from runtime.linux.sandbox import Namespaces, resolv_conf
from runtime.linux.shim import MAX_LINE, CRILog
from tests.runtime.test_linux_harness import make_container, make_sandbox

ROOT = Path("/tmp/navarch-spec-test")


def container(command=(), args=(), image_config=None, **kw):
    sb = make_sandbox(ROOT)
    c = make_container(ROOT, sb, Path("/layer"), list(command), image_config=image_config, **kw)
    c.args = list(args)
    return c


@pytest.mark.parametrize("command,args,entrypoint,cmd,want", [
    ([], [], ["/ep"], ["a"], ["/ep", "a"]),
    (["/bin/x"], [], ["/ep"], ["a"], ["/bin/x"]),
    (["/bin/x"], ["y"], ["/ep"], ["a"], ["/bin/x", "y"]),
    ([], ["y"], ["/ep"], ["a"], ["/ep", "y"]),
    ([], [], None, ["sh", "-c", "true"], ["sh", "-c", "true"]),
])
def test_process_args_follow_the_kubernetes_rule(command, args, entrypoint, cmd, want):
    c = container(command, args, {"Entrypoint": entrypoint, "Cmd": cmd})
    assert ocispec.process_args(c) == want


def test_no_command_at_all_is_invalid():
    c = container([], [], {"Entrypoint": None, "Cmd": None})
    with pytest.raises(InvalidError):
        ocispec.process_args(c)


def test_env_image_first_then_container_overrides():
    c = container(["x"], image_config={"Env": ["A=1", "B=2"]}, envs=[("B", "3"), ("C", "4")])
    env = ocispec.process_env(c)
    assert "A=1" in env and "B=3" in env and "C=4" in env and "B=2" not in env
    assert any(e.startswith("PATH=") for e in env)


@pytest.mark.parametrize("sec,present,absent", [
    (SecurityContext(), ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"], ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"]),
    (SecurityContext(add_capabilities=["NET_ADMIN"], drop_capabilities=["CHOWN"]), ["CAP_NET_ADMIN"],
     ["CAP_CHOWN"]),
    (SecurityContext(drop_capabilities=["ALL"], add_capabilities=["NET_BIND_SERVICE"]),
     ["CAP_NET_BIND_SERVICE"], ["CAP_CHOWN", "CAP_KILL"]),
    (SecurityContext(privileged=True), ["CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_SYS_MODULE"], []),
])
def test_capabilities(sec, present, absent):
    caps = ocispec.capabilities(sec)
    assert all(c in caps for c in present) and not any(c in caps for c in absent)


def write_rootfs(tmp_path: Path) -> Path:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n")
    (tmp_path / "etc" / "group").write_text("root:x:0:\napp:x:1001:\nextra:x:2000:app,other\n")
    return tmp_path


@pytest.mark.parametrize("image_user,sec,want", [
    ("", SecurityContext(), (0, 0, [])),
    ("app", SecurityContext(), (1000, 1001, [2000])),
    ("app:extra", SecurityContext(), (1000, 2000, [])),
    ("1234", SecurityContext(), (1234, 0, [])),
    ("5:6", SecurityContext(), (5, 6, [])),
    ("app", SecurityContext(run_as_user=0), (0, 0, [])),
    ("", SecurityContext(run_as_username="app", run_as_group=7, supplemental_groups=[9]), (1000, 7, [9, 2000])),
])
def test_resolve_user(tmp_path, image_user, sec, want):
    uid, gid, extra = ocispec.resolve_user(write_rootfs(tmp_path), image_user, sec)
    assert (uid, gid, sorted(extra)) == (want[0], want[1], sorted(want[2]))


def test_unknown_user_name_is_invalid(tmp_path):
    with pytest.raises(InvalidError):
        ocispec.resolve_user(write_rootfs(tmp_path), "ghost", SecurityContext())


def build(c, ns=None):
    ns = ns or Namespaces(net="/r/netns/s", ipc="/r/ns/s/ipc", uts="/r/ns/s/uts")
    return ocispec.build(c, rootfs="/r/rootfs", namespaces=ns, pod_dir=Path("/pod"), hostname="h",
                         cgroups_path="/navarch/x", user=(0, 0, []))


def test_spec_namespaces_mounts_resources():
    c = container(["x"], resources=Resources(cpu_shares=256, cpu_quota=20000, cpu_period=100000,
                                              memory_limit_in_bytes=1 << 26, pids_limit=50),
                  mounts=[Mount("/data", "/host/data", readonly=True, propagation="rslave"),
                          Mount("/etc/hosts", "/my/hosts")])
    s = build(c)
    ns = {n["type"]: n.get("path") for n in s["linux"]["namespaces"]}
    assert ns == {"pid": None, "mount": None, "network": "/r/netns/s", "ipc": "/r/ns/s/ipc", "uts": "/r/ns/s/uts"}
    assert s["linux"]["resources"]["cpu"] == {"shares": 256, "quota": 20000, "period": 100000}
    assert s["linux"]["resources"]["memory"] == {"limit": 1 << 26}
    assert s["linux"]["resources"]["pids"] == {"limit": 50}
    assert s["linux"]["cgroupsPath"] == "/navarch/x"
    by_dest = {m["destination"]: m for m in s["mounts"]}
    assert by_dest["/data"]["options"] == ["rbind", "rslave", "ro"]
    assert by_dest["/etc/hosts"]["source"] == "/my/hosts"          # the user's mount wins
    assert by_dest["/etc/resolv.conf"]["source"] == "/pod/resolv.conf"
    assert "ro" in by_dest["/sys/fs/cgroup"]["options"]
    assert s["linux"]["maskedPaths"] and s["linux"]["readonlyPaths"]
    assert s["hostname"] == "h" and s["root"] == {"path": "/r/rootfs", "readonly": False}


def test_privileged_spec_has_everything_unmasked():
    c = container(["x"], security=SecurityContext(privileged=True, readonly_rootfs=True))
    s = build(c)
    assert "maskedPaths" not in s["linux"] and "readonlyPaths" not in s["linux"]
    assert s["linux"]["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    assert "ro" not in {m["destination"]: m for m in s["mounts"]}["/sys"]["options"]
    assert s["root"]["readonly"] is True


def test_host_network_spec_joins_no_network_namespace():
    c = container(["x"])
    s = build(c, Namespaces(net="", ipc="/r/ns/s/ipc", uts=""))
    assert {n["type"] for n in s["linux"]["namespaces"]} == {"pid", "mount", "ipc"}
    assert "hostname" not in s


def test_resolv_conf_from_dns_config():
    from runtime.driver import DNSConfig
    text = resolv_conf(DNSConfig(servers=["1.2.3.4"], searches=["a.b"], options=["ndots:2"])).decode()
    assert text == "search a.b\nnameserver 1.2.3.4\noptions ndots:2\n"


def test_cri_log_writer_splits_lines(tmp_path):
    log = CRILog(str(tmp_path / "c.log"))
    log.write("stdout", b"one\ntw")
    log.write("stderr", b"err\r\n")
    log.write("stdout", b"o\n" + b"z" * (MAX_LINE + 5))
    log.finish("stdout")
    lines = [line.split(b" ", 3)[1:] for line in (tmp_path / "c.log").read_bytes().splitlines()]
    assert lines == [[b"stdout", b"F", b"one"], [b"stderr", b"F", b"err"], [b"stdout", b"F", b"two"],
                     [b"stdout", b"P", b"z" * MAX_LINE], [b"stdout", b"F", b"zzzzz"]]
