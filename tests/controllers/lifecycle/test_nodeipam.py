"""Node IPAM: the range set alone, then the controller against a real API server."""

from __future__ import annotations

import contextlib
import ipaddress
import time

import pytest

from api import errors
from controller_manager.base import ControllerConfig
from controller_manager.controllers.nodeipam import CidrFull, CidrSet, NodeIpamController
from tests.controllers.lifecycle.helpers import Running, events_for, eventually, gone, node


def test_cidr_set_allocates_each_block_once():
    s = CidrSet("10.244.0.0/22", 24)
    got = [s.allocate() for _ in range(4)]
    assert got == ["10.244.0.0/24", "10.244.1.0/24", "10.244.2.0/24", "10.244.3.0/24"]
    with pytest.raises(CidrFull):
        s.allocate()
    s.release("10.244.2.0/24")
    assert s.allocate() == "10.244.2.0/24"


def test_cidr_set_skips_occupied_and_ignores_foreign():
    s = CidrSet("10.244.0.0/16", 24)
    assert s.occupy("10.244.0.0/24") and s.occupy("10.244.1.0/24")
    assert not s.occupy("10.99.0.0/24")            # outside the cluster CIDR
    assert not s.occupy("10.244.5.0/25")           # not a block of this size
    assert not s.occupy("bogus")
    assert s.allocate() == "10.244.2.0/24"
    s.release("10.244.0.0/24")
    # Allocation goes on after the last block given out before wrapping around.
    assert s.allocate() == "10.244.3.0/24"


def test_cidr_set_ipv6_and_bad_mask():
    s = CidrSet("fd00:10::/56", 64)
    assert s.allocate() == "fd00:10::/64"
    assert s.allocate() == "fd00:10:0:1::/64"
    with pytest.raises(ValueError):
        CidrSet("10.0.0.0/16", 8)


@pytest.fixture
async def nodes(client):
    made: list[str] = []
    yield made
    for name in made:
        with contextlib.suppress(errors.NotFound):
            await client.delete("nodes", name)


async def add(client, nodes, suffix: str, cidr: str | None = None) -> str:
    name = f"{client.namespace}-{suffix}"
    body = node(name, time.time())
    if cidr:
        body["spec"]["podCIDR"] = cidr
        body["spec"]["podCIDRs"] = [cidr]
    await client.create("nodes", body)
    nodes.append(name)
    return name


async def cidr_of(client, name: str) -> str | None:
    spec = (await client.get("nodes", name)).get("spec") or {}
    if spec.get("podCIDR"):
        assert spec["podCIDRs"] == [spec["podCIDR"]]
    return spec.get("podCIDR")


async def test_unique_ranges_rebuilt_from_existing_nodes(client, nodes):
    cfg = ControllerConfig(cluster_cidr="10.123.0.0/22", node_cidr_mask_size=24)
    # Ranges already held before the controller starts are never handed out again.
    held = [await add(client, nodes, "held0", "10.123.0.0/24"), await add(client, nodes, "held2", "10.123.2.0/24")]
    fresh = [await add(client, nodes, "fresh0"), await add(client, nodes, "fresh1")]
    async with Running(client, [NodeIpamController], config=cfg):
        async def all_have():
            got = [await cidr_of(client, n) for n in held + fresh]
            return got if all(got) else None
        got = await eventually(all_have, what="every node has a pod CIDR")
        assert got[:2] == ["10.123.0.0/24", "10.123.2.0/24"]
        assert sorted(got) == ["10.123.0.0/24", "10.123.1.0/24", "10.123.2.0/24", "10.123.3.0/24"]
        net = ipaddress.ip_network(cfg.cluster_cidr)
        assert all(ipaddress.ip_network(c).subnet_of(net) for c in got)

        # Full: the next node waits, with an event saying so.
        late = await add(client, nodes, "late")
        await eventually(lambda: events_for(client, "default", late, "CIDRNotAvailable"), what="CIDRNotAvailable")
        assert await cidr_of(client, late) is None
        # A deleted node gives its range back; the waiting node gets it.
        freed = await cidr_of(client, fresh[0])
        await client.delete("nodes", fresh[0])
        await eventually(lambda: gone(client, "nodes", fresh[0]), what="node deleted")
        assert await eventually(lambda: cidr_of(client, late), timeout=60, what="late node allocated") == freed


async def test_restart_keeps_allocations(client, nodes):
    cfg = ControllerConfig(cluster_cidr="10.124.0.0/16", node_cidr_mask_size=24)
    first = [await add(client, nodes, f"a{i}") for i in range(3)]
    async with Running(client, [NodeIpamController], config=cfg):
        before = await eventually(lambda: _all(client, first), what="allocated")
    later = [await add(client, nodes, f"b{i}") for i in range(3)]
    async with Running(client, [NodeIpamController], config=cfg):
        after = await eventually(lambda: _all(client, first + later), what="allocated after restart")
    assert after[:3] == before
    assert len(set(after)) == 6


async def _all(client, names):
    got = [await cidr_of(client, n) for n in names]
    return got if all(got) else None
