"""Where a container's cgroup files are on this host, and what they say.

Handles the v1 hierarchy (one mount per controller, as on these hosts, with a cgroup2 mount
beside it at /sys/fs/cgroup/unified) and a pure v2 host. Blocking; run in a thread.
"""

from __future__ import annotations

import os

CGROUP_ROOT = "/sys/fs/cgroup"


def is_v2() -> bool:
    return os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.controllers"))


def _v1(controller: str, path: str) -> str:
    return os.path.join(CGROUP_ROOT, controller, path.lstrip("/"))


def _v2(path: str) -> str:
    return os.path.join(CGROUP_ROOT, path.lstrip("/"))


def oom_files(path: str) -> list[str]:
    """Files with an ``oom_kill <n>`` line counting OOM kills in the container's cgroup."""
    if is_v2():
        return [os.path.join(_v2(path), "memory.events")]
    return [os.path.join(_v1("memory", path), "memory.oom_control"),
            os.path.join(CGROUP_ROOT, "unified", path.lstrip("/"), "memory.events")]


def dirs(path: str) -> list[str]:
    """Every directory the container's cgroup may occupy (for leak checks)."""
    if is_v2():
        return [_v2(path)]
    out = []
    for entry in sorted(os.listdir(CGROUP_ROOT)):
        out.append(os.path.join(CGROUP_ROOT, entry, path.lstrip("/")))
    return out


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _stat(path: str) -> dict[str, int]:
    out = {}
    for line in _read(path).splitlines():
        k, _, v = line.partition(" ")
        if v.strip().lstrip("-").isdigit():
            out[k] = int(v)
    return out


def usage(path: str) -> tuple[int, int, int]:
    """(cpu usage ns, memory working set bytes, memory usage bytes); zeros when unreadable."""
    try:
        if is_v2():
            d = _v2(path)
            cpu = _stat(os.path.join(d, "cpu.stat")).get("usage_usec", 0) * 1000
            mem = int(_read(os.path.join(d, "memory.current")))
            inactive = _stat(os.path.join(d, "memory.stat")).get("inactive_file", 0)
        else:
            cpu = int(_read(os.path.join(_v1("cpuacct", path), "cpuacct.usage")))
            mem = int(_read(os.path.join(_v1("memory", path), "memory.usage_in_bytes")))
            inactive = _stat(os.path.join(_v1("memory", path), "memory.stat")).get("total_inactive_file", 0)
    except (OSError, ValueError):
        return 0, 0, 0
    return cpu, max(0, mem - inactive), mem
