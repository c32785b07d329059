"""A real API server per module (SQLite) and an in-process scheduler per test.

Each test starts with no nodes and no pods: ``cluster`` deletes what a test left behind.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from client.rest import Client
from scheduler.profile import parse_config
from scheduler.scheduler import Scheduler
from tests.fixtures.apiserver import ApiServer


@pytest.fixture(scope="module")
def apiserver(tmp_path_factory):
    server = ApiServer(tmp_path_factory.mktemp("apiserver")).start()
    yield server
    server.stop()


async def wipe(client: Client) -> None:
    for pod in (await client.list("pods"))["items"]:
        m = pod["metadata"]
        with contextlib.suppress(Exception):
            await client.delete("pods", m["name"], m["namespace"], grace_period_seconds=0)
    for node in (await client.list("nodes"))["items"]:
        with contextlib.suppress(Exception):
            await client.delete("nodes", node["metadata"]["name"])
    for ev in (await client.list("events"))["items"]:
        m = ev["metadata"]
        with contextlib.suppress(Exception):
            await client.delete("events", m["name"], m["namespace"])


class Cluster:
    """The API client plus the scheduler under test (started by ``start``)."""

    def __init__(self, client: Client):
        self.client = client
        self.scheduler: Scheduler | None = None
        self._task: asyncio.Task | None = None

    async def start(self, config: dict | None = None, **kw) -> Scheduler:
        self.scheduler = Scheduler(self.client, parse_config(config), **kw)
        self._task = asyncio.create_task(self.scheduler.run(), name="test-scheduler")
        for _ in range(400):
            if self.scheduler.ready:
                return self.scheduler
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.05)
        raise AssertionError("the scheduler did not sync")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None


@pytest.fixture
async def cluster(apiserver):
    async with Client(apiserver.url) as client:
        await wipe(client)
        c = Cluster(client)
        try:
            yield c
        finally:
            await c.stop()
            await wipe(client)
