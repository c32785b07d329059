"""A real API server per module; each test gets its own namespace, a client defaulting to it,
the ReplicaSet and Deployment controllers and a ``PodRunner`` standing in for nodes."""

from __future__ import annotations

import uuid

import pytest

from client.rest import Client
from tests.controllers.workloads.helpers import Controllers, PodRunner
from tests.fixtures.apiserver import ApiServer


@pytest.fixture(scope="module")
def apiserver(tmp_path_factory):
    server = ApiServer(tmp_path_factory.mktemp("apiserver")).start()
    yield server
    server.stop()


@pytest.fixture
async def client(apiserver):
    ns = "t-" + uuid.uuid4().hex[:8]
    async with Client(apiserver.url, namespace=ns) as c:
        await c.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        yield c


@pytest.fixture
async def runner(client):
    r = PodRunner(client)
    await r.start()
    yield r
    await r.stop()


@pytest.fixture
async def controllers(client):
    c = Controllers(client)
    await c.start()
    yield c
    await c.stop()
