"""Pod networking: one network namespace per sandbox, wired by CNI plugins.

The namespace is a bind mount of an nsfs file under ``<root>/netns/``. The CNI network is a
bridge (``navarch0`` by default) with host-local IPAM over the pod CIDR, chained with portmap
when the pod asks for host ports (``lo`` is brought up when the namespace is made). Plugins are
run as the CNI spec says (environment + config on stdin + result on stdout). The final result
is kept by the caller and handed back to ``detach`` so DEL sees the same chain and prevResult.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

import orjson

from runtime.driver import DriverError, PortMapping

from . import syscalls

CNI_VERSION = "1.0.0"
NETWORK_NAME = "navarch"


class CNIError(DriverError):
    pass


@dataclass
class Attachment:
    """What ``attach`` returns and ``detach`` needs: persisted by the driver as JSON."""

    netns: str
    ip: str
    result: dict
    port_mappings: list[dict]

    def to_json(self) -> dict:
        return {"netns": self.netns, "ip": self.ip, "result": self.result, "port_mappings": self.port_mappings}

    @classmethod
    def from_json(cls, d: dict) -> Attachment:
        return cls(d["netns"], d["ip"], d.get("result") or {}, d.get("port_mappings") or [])


class CNI:
    """Blocking constructor (creates the IPAM directory): call it from a thread."""

    def __init__(self, root: Path, bin_dir: str, pod_cidr: str, bridge: str = "navarch0"):
        net = ipaddress.ip_network(pod_cidr, strict=False)
        self.bin_dir = bin_dir
        self.pod_cidr = str(net)
        self.bridge = bridge
        self.ipam_dir = root / "cni" / "ipam"
        self.ipam_dir.mkdir(parents=True, exist_ok=True)
        # The network as a conflist file, for people and tools (the driver runs the chain itself).
        conflist = {"cniVersion": CNI_VERSION, "name": NETWORK_NAME, "plugins": self.plugins(True)}
        (root / "cni" / f"{NETWORK_NAME}.conflist").write_bytes(orjson.dumps(conflist, option=orjson.OPT_INDENT_2))

    def plugins(self, with_portmap: bool) -> list[dict]:
        chain: list[dict] = [{
            "type": "bridge",
            "bridge": self.bridge,
            "isGateway": True,
            "ipMasq": False,            # pod traffic stays on this host
            "hairpinMode": True,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": self.pod_cidr}]],
                "routes": [{"dst": "0.0.0.0/0"}],
                "dataDir": str(self.ipam_dir),
            },
        }]
        if with_portmap:
            chain.append({"type": "portmap", "capabilities": {"portMappings": True}, "snat": True})
        return chain

    async def _invoke(self, command: str, plugin: dict, container_id: str, netns: str, ifname: str,
                      prev: dict | None, runtime_config: dict | None) -> dict:
        conf = dict(plugin)
        conf["cniVersion"] = CNI_VERSION
        conf["name"] = NETWORK_NAME
        if prev is not None:
            conf["prevResult"] = prev
        if runtime_config:
            conf["runtimeConfig"] = runtime_config
        conf.pop("capabilities", None)
        env = {
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": container_id,
            "CNI_NETNS": netns,
            "CNI_IFNAME": ifname,
            "CNI_PATH": self.bin_dir,
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        }
        proc = await asyncio.create_subprocess_exec(
            os.path.join(self.bin_dir, plugin["type"]), env=env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate(orjson.dumps(conf))
        if proc.returncode != 0:
            msg = err.decode(errors="replace").strip()
            try:
                parsed = orjson.loads(out)
                msg = f"{parsed.get('msg', '')} {parsed.get('details', '')}".strip() or msg
            except orjson.JSONDecodeError:
                pass
            raise CNIError(f"CNI {command} {plugin['type']} failed: {msg}")
        if command != "ADD" or not out.strip():
            return prev or {}
        return orjson.loads(out)

    async def attach(self, sandbox_id: str, netns: str, port_mappings: list[PortMapping]) -> Attachment:
        """CNI ADD of eth0 in ``netns`` (``lo`` is already up: the namespace's creator did that);
        on failure, whatever was added is deleted again."""
        pm = [{"hostPort": p.host_port, "containerPort": p.container_port,
               "protocol": p.protocol.lower(), **({"hostIP": p.host_ip} if p.host_ip else {})}
              for p in port_mappings if p.host_port]
        chain = self.plugins(bool(pm))
        result: dict | None = None
        try:
            for plugin in chain:
                rc = {"portMappings": pm} if plugin["type"] == "portmap" else None
                result = await self._invoke("ADD", plugin, sandbox_id, netns, "eth0", result, rc)
        except BaseException:
            att = Attachment(netns, "", result or {}, pm)
            try:
                await self.detach(sandbox_id, att)
            except CNIError:
                pass
            raise
        assert result is not None
        ip = ""
        for entry in result.get("ips", []):
            addr = entry["address"].split("/")[0]
            if ipaddress.ip_address(addr).version == 4 or not ip:
                ip = addr
                break
        return Attachment(netns, ip, result, pm)

    async def detach(self, sandbox_id: str, att: Attachment) -> None:
        """CNI DEL in reverse chain order; releases the IPAM reservation and the veth."""
        chain = self.plugins(bool(att.port_mappings))
        errors = []
        # A namespace that is already gone is passed as "" (the spec allows that for DEL).
        netns = att.netns if att.netns and await asyncio.to_thread(os.path.exists, att.netns) else ""
        for plugin in reversed(chain):
            rc = {"portMappings": att.port_mappings} if plugin["type"] == "portmap" else None
            try:
                await self._invoke("DEL", plugin, sandbox_id, netns, "eth0", att.result or None, rc)
            except CNIError as e:
                errors.append(str(e))
        if errors:
            raise CNIError("; ".join(errors))

    async def check(self, sandbox_id: str, att: Attachment) -> None:
        result: dict | None = att.result
        for plugin in self.plugins(bool(att.port_mappings)):
            rc = {"portMappings": att.port_mappings} if plugin["type"] == "portmap" else None
            await self._invoke("CHECK", plugin, sandbox_id, att.netns, "eth0", result, rc)


def release_nsfile(path: str) -> None:
    """Unmount and delete a namespace file (blocking; idempotent)."""
    syscalls.umount(path)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
