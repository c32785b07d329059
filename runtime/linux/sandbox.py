"""Per-pod pieces that are not networking: namespace holders and the pod's /etc files.

A sandbox's network, IPC and UTS namespaces are persistent nsfs bind mounts made by one short
child process (which also sets the pod's hostname inside the new UTS namespace), so no
process has to stay alive to hold them and containers join them by path. Host-network pods
keep the host's network and UTS namespaces and get only a private IPC namespace.
"""

from __future__ import annotations

import asyncio
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from runtime.driver import DNSConfig, DriverError

from .network import release_nsfile


@dataclass
class Namespaces:
    net: str        # "" when the pod uses the host network
    ipc: str
    uts: str        # "" when the pod uses the host UTS namespace

    def paths(self) -> list[str]:
        return [p for p in (self.net, self.ipc, self.uts) if p]


def namespace_paths(root: Path, sandbox_id: str, host_network: bool) -> Namespaces:
    base = root / "ns" / sandbox_id
    return Namespaces(
        net="" if host_network else str(root / "netns" / sandbox_id),
        ipc=str(base / "ipc"),
        uts="" if host_network else str(base / "uts"),
    )


async def create_namespaces(ns: Namespaces, hostname: str, factory) -> None:
    """Create the namespace files through ``factory`` (the driver's ``ShimFactory``): a forked
    child of it unshares and bind-mounts, where two programs (unshare, hostname) would be run."""
    def touch() -> None:
        for p in ns.paths():
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "a"):
                pass
    await asyncio.to_thread(touch)
    key = "ns:" + (ns.net or ns.ipc)
    res = await factory.request(key, {"key": key, "net": ns.net, "ipc": ns.ipc, "uts": ns.uts,
                                      "hostname": hostname})
    if not res.get("ok"):
        await asyncio.to_thread(release_namespaces, ns)
        raise DriverError(f"creating namespaces failed: {res.get('error', '')}")


def release_namespaces(ns: Namespaces) -> None:
    """Unmount and delete the namespace files (blocking; idempotent)."""
    for p in ns.paths():
        release_nsfile(p)
    for p in ns.paths():
        d = os.path.dirname(p)
        if os.path.basename(d) != "netns":
            try:
                os.rmdir(d)
            except OSError:
                pass


def resolv_conf(dns: DNSConfig | None) -> bytes:
    if dns is None or not (dns.servers or dns.searches or dns.options):
        try:
            with open("/etc/resolv.conf", "rb") as f:
                return f.read()
        except OSError:
            return b""
    lines = []
    if dns.searches:
        lines.append("search " + " ".join(dns.searches))
    lines += [f"nameserver {s}" for s in dns.servers]
    if dns.options:
        lines.append("options " + " ".join(dns.options))
    return ("\n".join(lines) + "\n").encode()


def hosts_file(hostname: str, ip: str) -> bytes:
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback",
             "fe00::0\tip6-localnet", "ff02::1\tip6-allnodes", "ff02::2\tip6-allrouters"]
    if ip:
        lines.append(f"{ip}\t{hostname}")
    return ("\n".join(lines) + "\n").encode()


def write_pod_files(state_dir: Path, hostname: str, host_network: bool, dns: DNSConfig | None,
                    ip: str) -> None:
    """Write hostname, resolv.conf and hosts into the sandbox's state dir (blocking)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    if host_network:
        hostname = socket.gethostname()
        try:
            hosts = Path("/etc/hosts").read_bytes()
        except OSError:
            hosts = hosts_file(hostname, "")
    else:
        hosts = hosts_file(hostname, ip)
    (state_dir / "hostname").write_bytes(hostname.encode() + b"\n")
    (state_dir / "resolv.conf").write_bytes(resolv_conf(dns))
    (state_dir / "hosts").write_bytes(hosts)
