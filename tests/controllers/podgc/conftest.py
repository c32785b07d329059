"""A real API server per module; each test gets its own namespace, a client defaulting to it, and a
list of node names it creates. Afterwards the test's pods are released (finalizers dropped) and
force-deleted and its nodes deleted, so that the next test's pod garbage collector, which looks at
the whole cluster, finds nothing of it."""

from __future__ import annotations

import contextlib
import time

import pytest

from api import errors
from client.clock import FakeClock


@pytest.fixture
async def client(client):
    """The shared fixture's client, whose pods are released and force-deleted afterwards."""
    yield client
    ns = client.namespace
    for p in (await client.list("pods", ns))["items"]:
        name = p["metadata"]["name"]
        with contextlib.suppress(errors.NotFound):
            if p["metadata"].get("finalizers"):
                await client.patch("pods", name, {"metadata": {"finalizers": None}}, ns)
            await client.delete("pods", name, ns, grace_period_seconds=0)


@pytest.fixture
async def nodes(client):
    """Names of the nodes the test creates; deleted afterwards."""
    made: list[str] = []
    yield made
    for name in made:
        with contextlib.suppress(errors.NotFound):
            await client.delete("nodes", name)


@pytest.fixture
def clock():
    return FakeClock(start=time.time())
