"""Workload tests also get the ReplicaSet and Deployment controllers and a ``PodRunner`` standing in
for nodes (the server and namespaced client come from ``tests/controllers/conftest.py``)."""

from __future__ import annotations

import pytest

from tests.controllers.workloads.helpers import Controllers, PodRunner


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
