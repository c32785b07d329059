"""Fixtures for the storage conformance suite: every test runs once per driver.

``backend`` is an open driver (SQLite in a temp dir, or etcd from the session ``etcd_server``);
``prefix`` is a key prefix unique to the test, so tests sharing one etcd never see each other.
``reopen`` closes the backend and opens a fresh one on the same store.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from apiserver.storage import Backend, open_backend
from tests.fixtures.etcd import EtcdServer, etcd_server  # noqa: F401  (fixture re-export)

DRIVERS = ["sqlite", "etcd"]


class Opener:
    """Opens (and reopens) one store of a driver; closes whatever it opened."""

    def __init__(self, driver: str, request: pytest.FixtureRequest, tmp_path):
        self.driver = driver
        self.request = request
        self.path = str(tmp_path / "store.db")
        self.opened: list[Backend] = []

    async def open(self) -> Backend:
        if self.driver == "sqlite":
            backend = await open_backend(f"sqlite://{self.path}")
        else:
            server: EtcdServer = self.request.getfixturevalue("etcd_server")
            backend = await open_backend(f"etcd://{server.endpoint}")
        self.opened.append(backend)
        return backend

    async def close_all(self) -> None:
        for backend in self.opened:
            await backend.close()


@pytest.fixture(params=DRIVERS)
async def opener(request, tmp_path) -> AsyncIterator[Opener]:
    op = Opener(request.param, request, tmp_path)
    yield op
    await op.close_all()


@pytest.fixture
async def backend(opener: Opener) -> Backend:
    return await opener.open()


@pytest.fixture
def reopen(opener: Opener, backend: Backend) -> Callable[[], Awaitable[Backend]]:
    async def _reopen() -> Backend:
        await backend.close()
        return await opener.open()

    return _reopen


@pytest.fixture
def prefix() -> str:
    return f"/registry/test/{uuid.uuid4().hex[:12]}/"
