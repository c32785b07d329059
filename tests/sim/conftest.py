"""A real API server (SQLite) per module, a client, a namespace per test, and simulators that are
stopped, and their nodes deleted, when the test ends."""

from __future__ import annotations

import hashlib

import pytest

from client.rest import Client
from kubelet.sim.config import SimConfig
from kubelet.sim.simulator import Simulator
from tests.fixtures.apiserver import ApiServer


@pytest.fixture(scope="module")
def apiserver(tmp_path_factory):
    server = ApiServer(tmp_path_factory.mktemp("sim-apiserver")).start()
    yield server
    server.stop()


@pytest.fixture
async def client(apiserver):
    async with Client(apiserver.url) as c:
        yield c


def short_name(request) -> str:
    """A DNS-label prefix unique to the test (parameters included)."""
    return "t" + hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:8]


@pytest.fixture
async def namespace(client, request):
    name = short_name(request)
    await client.create("namespaces", {"metadata": {"name": name}})
    return name


@pytest.fixture
async def simulate(client, request):
    """``await simulate(count=..., **SimConfig fields)``: a started simulator whose nodes are
    named ``<test prefix>-<i>``; fast lease and back-off timings unless overridden."""
    started: list[Simulator] = []

    async def start(**overrides) -> Simulator:
        fields = {"name_prefix": short_name(request) + "-", "lease_renew_interval": 1.0,
                  "restart_backoff": 0.5, "restart_backoff_max": 2.0, "cleanup": True, "max_inflight": 8}
        fields.update(overrides)
        sim = Simulator(client, SimConfig(**fields))
        await sim.start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        await sim.stop()
