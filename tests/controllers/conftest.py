"""Controller tests: a real API server per module; each test gets its own namespace and a client
defaulting to it. Packages that need more (pod runners, clean-up of cluster-wide objects) add or
override fixtures in their own conftest."""

from __future__ import annotations

import uuid

import pytest

from client.rest import Client
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
