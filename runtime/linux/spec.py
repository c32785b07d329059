"""OCI runtime spec (config.json) for a container, from its CRI config and its image's config.

Pure functions except ``resolve_user`` (reads the container's /etc/passwd and /etc/group) and
``host_devices`` (scans /dev); callers run them in a thread.
"""

from __future__ import annotations

import os
import resource
import stat
from pathlib import Path

from runtime.driver import ContainerSpec, InvalidError, Resources, SecurityContext

from .sandbox import Namespaces

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# The capability set a container gets unless it is privileged or asks otherwise (the usual
# default of container runtimes: enough to behave like root in a box, nothing host-wide).
DEFAULT_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]

# Indexed by capability number (linux/capability.h); trimmed to what the kernel knows.
_ALL_CAPS = [
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
]


def all_caps() -> list[str]:
    """Every capability this process may grant: its own bounding set (a container cannot get
    more than the runtime has; on a stock host that is every capability the kernel knows)."""
    try:
        with open("/proc/self/status") as f:
            bnd = next(int(line.split()[1], 16) for line in f if line.startswith("CapBnd:"))
    except (OSError, StopIteration, ValueError):
        bnd = (1 << len(_ALL_CAPS)) - 1
    return ["CAP_" + name for i, name in enumerate(_ALL_CAPS) if bnd >> i & 1]


MASKED_PATHS = [
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/sys/devices/virtual/powercap",
]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


def nofile_limit() -> int:
    """A generous open-files limit the host lets us grant (we may not raise our own hard limit)."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return 1048576 if hard == resource.RLIM_INFINITY else min(1048576, hard)


def _cap(name: str) -> str:
    name = name.upper()
    return name if name.startswith("CAP_") else "CAP_" + name


def capabilities(sec: SecurityContext) -> list[str]:
    if sec.privileged:
        return all_caps()
    caps = list(DEFAULT_CAPS)
    adds = [_cap(c) for c in sec.add_capabilities]
    drops = [_cap(c) for c in sec.drop_capabilities]
    if "CAP_ALL" in drops:
        caps = []
    if "CAP_ALL" in adds:
        caps = all_caps()
    for c in adds:
        if c != "CAP_ALL" and c not in caps:
            caps.append(c)
    return [c for c in caps if c not in drops or c in adds]


def process_args(spec: ContainerSpec) -> list[str]:
    """Kubernetes' rule: command replaces Entrypoint (and drops Cmd); args replace Cmd."""
    cfg = spec.image.config or {}
    entrypoint = list(cfg.get("Entrypoint") or [])
    cmd = list(cfg.get("Cmd") or [])
    if spec.command:
        argv = list(spec.command) + list(spec.args)
    elif spec.args:
        argv = entrypoint + list(spec.args)
    else:
        argv = entrypoint + cmd
    if not argv:
        raise InvalidError("no command: neither the container nor its image specifies one")
    return argv


def process_env(spec: ContainerSpec) -> list[str]:
    env: dict[str, str] = {}
    for kv in (spec.image.config or {}).get("Env") or []:
        k, _, v = kv.partition("=")
        env[k] = v
    env.setdefault("PATH", DEFAULT_PATH)
    if spec.tty:
        env.setdefault("TERM", "xterm")
    for k, v in spec.envs:
        env[k] = v
    return [f"{k}={v}" for k, v in env.items()]


def _parse_passwd(path: Path) -> list[list[str]]:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    return [line.split(":") for line in text.splitlines() if line and not line.startswith("#")]


def resolve_user(rootfs: Path, image_user: str, sec: SecurityContext) -> tuple[int, int, list[int]]:
    """(uid, gid, additional gids) from the security context, else the image's ``User``.

    Names are looked up in the container's own /etc/passwd and /etc/group, as the process
    inside will see them.
    """
    passwd = _parse_passwd(rootfs / "etc" / "passwd")
    groups = _parse_passwd(rootfs / "etc" / "group")

    def by_name(name: str) -> list[str] | None:
        return next((e for e in passwd if len(e) >= 4 and e[0] == name), None)

    def by_uid(uid: int) -> list[str] | None:
        return next((e for e in passwd if len(e) >= 4 and e[2] == str(uid)), None)

    user_part, group_part = "", ""
    if sec.run_as_user is not None:
        user_part = str(sec.run_as_user)
    elif sec.run_as_username:
        user_part = sec.run_as_username
    else:
        user_part, _, group_part = (image_user or "").partition(":")
    entry: list[str] | None
    if user_part == "":
        uid, entry = 0, by_uid(0)
    elif user_part.isdigit():
        uid, entry = int(user_part), by_uid(int(user_part))
    else:
        entry = by_name(user_part)
        if entry is None:
            raise InvalidError(f"user {user_part!r} not found in the container's /etc/passwd")
        uid = int(entry[2])
    gid = int(entry[3]) if entry and entry[3].isdigit() else 0
    if sec.run_as_group is not None:
        gid = sec.run_as_group
    elif group_part:
        if group_part.isdigit():
            gid = int(group_part)
        else:
            g = next((e for e in groups if len(e) >= 3 and e[0] == group_part), None)
            if g is None:
                raise InvalidError(f"group {group_part!r} not found in the container's /etc/group")
            gid = int(g[2])
    extra: list[int] = []
    if entry is not None:
        for g in groups:
            if len(g) >= 4 and entry[0] in g[3].split(",") and g[2].isdigit():
                extra.append(int(g[2]))
    extra += list(sec.supplemental_groups)
    return uid, gid, sorted(set(x for x in extra if x != gid))


def host_devices() -> list[dict]:
    """Every char and block device directly under the host's /dev, as OCI device entries."""
    devices = []
    for name in sorted(os.listdir("/dev")):
        path = "/dev/" + name
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISCHR(st.st_mode):
            kind = "c"
        elif stat.S_ISBLK(st.st_mode):
            kind = "b"
        else:
            continue
        devices.append({"path": path, "type": kind, "major": os.major(st.st_rdev),
                        "minor": os.minor(st.st_rdev), "fileMode": stat.S_IMODE(st.st_mode),
                        "uid": st.st_uid, "gid": st.st_gid})
    return devices


def linux_resources(r: Resources) -> dict:
    res: dict = {}
    cpu: dict = {}
    if r.cpu_shares:
        cpu["shares"] = r.cpu_shares
    if r.cpu_quota:
        cpu["quota"] = r.cpu_quota
    if r.cpu_period:
        cpu["period"] = r.cpu_period
    if r.cpuset_cpus:
        cpu["cpus"] = r.cpuset_cpus
    if r.cpuset_mems:
        cpu["mems"] = r.cpuset_mems
    if cpu:
        res["cpu"] = cpu
    if r.memory_limit_in_bytes:
        res["memory"] = {"limit": r.memory_limit_in_bytes}
    if r.pids_limit:
        res["pids"] = {"limit": r.pids_limit}
    return res


def _bind(dest: str, src: str, readonly: bool, propagation: str = "rprivate") -> dict:
    opts = ["rbind", propagation, "nosuid", "nodev"] if dest.startswith("/etc/") else ["rbind", propagation]
    if readonly:
        opts.append("ro")
    return {"destination": dest, "type": "bind", "source": src, "options": opts}


_PROPAGATION = {"private": "rprivate", "rslave": "rslave", "rshared": "rshared",
                "slave": "rslave", "shared": "rshared", "": "rprivate"}


def build(spec: ContainerSpec, *, rootfs: str, namespaces: Namespaces, pod_dir: Path, hostname: str,
          cgroups_path: str, user: tuple[int, int, list[int]], devices: list[dict] | None = None) -> dict:
    """The whole config.json. ``pod_dir`` holds the sandbox's hostname/resolv.conf/hosts files."""
    sec = spec.security
    priv = sec.privileged
    caps = capabilities(sec)
    uid, gid, extra = user
    sys_opts = ["nosuid", "noexec", "nodev"] + ([] if priv else ["ro"])
    mounts = [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": sys_opts},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": sys_opts + ["relatime"]},
        _bind("/etc/hostname", str(pod_dir / "hostname"), sec.readonly_rootfs),
        _bind("/etc/resolv.conf", str(pod_dir / "resolv.conf"), sec.readonly_rootfs),
        _bind("/etc/hosts", str(pod_dir / "hosts"), sec.readonly_rootfs),
    ]
    user_dests = {m.container_path.rstrip("/") or "/" for m in spec.mounts}
    mounts = [m for m in mounts if m["destination"] not in user_dests]
    for m in spec.mounts:
        mounts.append(_bind(m.container_path, m.host_path, m.readonly,
                            _PROPAGATION.get(m.propagation, "rprivate")))

    ns = [{"type": "pid"}, {"type": "mount"}]
    if namespaces.net:
        ns.append({"type": "network", "path": namespaces.net})
    ns.append({"type": "ipc", "path": namespaces.ipc} if namespaces.ipc else {"type": "ipc"})
    if namespaces.uts:
        ns.append({"type": "uts", "path": namespaces.uts})

    resources = linux_resources(spec.resources)
    resources["devices"] = [{"allow": priv, "access": "rwm"}]
    linux: dict = {
        "namespaces": ns,
        "cgroupsPath": cgroups_path,
        "resources": resources,
    }
    if priv:
        linux["devices"] = devices or []
    else:
        linux["maskedPaths"] = MASKED_PATHS
        linux["readonlyPaths"] = READONLY_PATHS

    cfg = spec.image.config or {}
    process: dict = {
        "terminal": spec.tty,
        "user": {"uid": uid, "gid": gid, **({"additionalGids": extra} if extra else {})},
        "args": process_args(spec),
        "env": process_env(spec),
        "cwd": spec.working_dir or cfg.get("WorkingDir") or "/",
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": nofile_limit(), "soft": nofile_limit()}],
        "noNewPrivileges": sec.no_new_privs,
    }
    if spec.resources.oom_score_adj:
        process["oomScoreAdj"] = spec.resources.oom_score_adj
    out = {
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": rootfs, "readonly": sec.readonly_rootfs},
        "mounts": mounts,
        "linux": linux,
        "annotations": {"io.navarch.sandbox-id": spec.sandbox_id, "io.navarch.container-name": spec.name},
    }
    if namespaces.uts:
        out["hostname"] = hostname
    return out
