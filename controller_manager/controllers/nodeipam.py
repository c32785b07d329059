"""Node IPAM: each node gets its own pod range (``spec.podCIDR`` and ``spec.podCIDRs``).

Ranges of prefix ``node_cidr_mask_size`` are carved from ``cluster_cidr`` (``CidrSet``). Before
any allocation the set is rebuilt from every node that already has a range, so a restarted
controller never hands out a range twice; a range is released when its node is deleted. Nodes
whose range lies outside the cluster CIDR keep it and are left alone. When the space is full the
node gets a ``CIDRNotAvailable`` event and is retried later.
"""

from __future__ import annotations

import ipaddress
from typing import ClassVar

from api import errors
from controller_manager.base import Controller, ControllerContext

NODES = "nodes"
FULL_RETRY = 30.0


class CidrFull(Exception):
    """No free range left in the cluster CIDR."""


class CidrSet:
    """Which blocks of one cluster CIDR are taken. Allocation continues after the last block given
    out (wrapping), so a just-released range is not handed to the next node at once."""

    def __init__(self, cluster_cidr: str, mask_size: int):
        self.network = ipaddress.ip_network(cluster_cidr, strict=False)
        if not self.network.prefixlen <= mask_size <= self.network.max_prefixlen:
            raise ValueError(f"node CIDR mask size {mask_size} does not fit in cluster CIDR {cluster_cidr}")
        self.mask_size = mask_size
        self.size = 2 ** (mask_size - self.network.prefixlen)
        self._block = 2 ** (self.network.max_prefixlen - mask_size)
        self.used: set[int] = set()
        self._next = 0

    def _cidr(self, index: int) -> str:
        base = int(self.network.network_address) + index * self._block
        return f"{ipaddress.ip_address(base)}/{self.mask_size}"

    def index_of(self, cidr: str) -> int | None:
        """The block index of ``cidr``, or None when it is not one of this set's blocks."""
        try:
            net = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            return None
        if net.version != self.network.version or net.prefixlen != self.mask_size or \
                not net.subnet_of(self.network):  # type: ignore[arg-type]
            return None
        return (int(net.network_address) - int(self.network.network_address)) // self._block

    def occupy(self, cidr: str) -> bool:
        index = self.index_of(cidr)
        if index is None:
            return False
        self.used.add(index)
        return True

    def release(self, cidr: str) -> None:
        index = self.index_of(cidr)
        if index is not None:
            self.used.discard(index)

    def allocate(self) -> str:
        if len(self.used) >= self.size:
            raise CidrFull(f"no remaining CIDRs of size /{self.mask_size} in {self.network}")
        for step in range(self.size):
            index = (self._next + step) % self.size
            if index not in self.used:
                self.used.add(index)
                self._next = (index + 1) % self.size
                return self._cidr(index)
        raise CidrFull(f"no remaining CIDRs of size /{self.mask_size} in {self.network}")


def pod_cidrs(node: dict) -> list[str]:
    spec = node.get("spec") or {}
    cidrs = list(spec.get("podCIDRs") or [])
    if not cidrs and spec.get("podCIDR"):
        cidrs = [spec["podCIDR"]]
    return cidrs


class NodeIpamController(Controller):
    name: ClassVar[str] = "nodeipam"
    workers: ClassVar[int] = 10         # allocation itself is synchronous, so workers never race

    def __init__(self, ctx: ControllerContext):
        super().__init__(ctx)
        self.recorder = ctx.recorder("cidrAllocator")
        self.cidrs = CidrSet(ctx.config.cluster_cidr, ctx.config.node_cidr_mask_size)
        self.nodes = ctx.informers.informer_for(NODES)
        # Ranges this controller handed out, by node name, until the informer shows them on the
        # node: an event from before the write must not make it allocate a second range.
        self._given: dict[str, str] = {}
        self._rebuilt = False
        self.nodes.add_event_handler(on_add=self._seen, on_update=lambda old, new: self._seen(new),
                                     on_delete=self._deleted)

    def _seen(self, node: dict) -> None:
        cidrs = pod_cidrs(node)
        for cidr in cidrs:
            self.cidrs.occupy(cidr)
        if cidrs:
            given = self._given.pop(node["metadata"].get("name", ""), None)
            if given is not None and given not in cidrs:
                self.cidrs.release(given)      # someone else set the node's range first
        elif self._rebuilt:
            self.enqueue(node)

    def _deleted(self, node: dict) -> None:
        name = (node.get("metadata") or {}).get("name", "")
        cidrs = pod_cidrs(node) or ([self._given[name]] if name in self._given else [])
        self._given.pop(name, None)
        for cidr in cidrs:
            # Another node may claim the same range by hand; keep it taken then.
            if not any(cidr in pod_cidrs(n) for n in self.nodes.list()):
                self.cidrs.release(cidr)
                self.log.info("released node pod CIDR", node=name, cidr=cidr)
                # Nodes waiting for space need not wait for their retry.
                for waiting in self.nodes.list():
                    if not pod_cidrs(waiting):
                        self.enqueue(waiting)

    async def run(self) -> None:
        await self.ctx.informers.wait_for_cache_sync()
        await self.nodes.wait_for_cache_sync()
        for node in self.nodes.list():
            for cidr in pod_cidrs(node):
                self.cidrs.occupy(cidr)
        self._rebuilt = True
        for node in self.nodes.list():
            if not pod_cidrs(node):
                self.enqueue(node)
        await super().run()

    async def reconcile(self, key: str) -> float | None:
        node = self.nodes.get(key)
        if node is None or pod_cidrs(node):
            return None
        cidr = self._given.get(key)
        if cidr is None:
            try:
                cidr = self.cidrs.allocate()
            except CidrFull:
                self.recorder.normal(node, "CIDRNotAvailable", f"Node {key} status is now: CIDRNotAvailable")
                self.log.warning("no pod CIDR left for node", node=key, cluster_cidr=str(self.cidrs.network))
                return FULL_RETRY
            self._given[key] = cidr
        patch = {"metadata": {"uid": node["metadata"]["uid"]}, "spec": {"podCIDR": cidr, "podCIDRs": [cidr]}}
        try:
            await self.client.patch(NODES, key, patch)
        except (errors.NotFound, errors.Conflict):
            # Gone, or replaced by a namesake (uid): the new one comes back through the informer.
            self._given.pop(key, None)
            self.cidrs.release(cidr)
            return None
        except errors.Invalid as e:
            # Someone set a range meanwhile (the field is immutable once set).
            self._given.pop(key, None)
            self.cidrs.release(cidr)
            self.recorder.warning(node, "CIDRAssignmentFailed", f"Node {key}: failed to assign pod CIDR: {e}")
            return None
        self.log.info("allocated node pod CIDR", node=key, cidr=cidr)
        return None
