"""API servers for the HTTP tests: one on SQLite and one on a real etcd, shared per module."""

from __future__ import annotations

import aiohttp
import pytest

from tests.fixtures.apiserver import ApiServer
from tests.fixtures.etcd import etcd_server  # noqa: F401  (fixture)

WATCH_CACHE_SIZE = 50


@pytest.fixture(scope="module", params=["sqlite", "etcd"])
def apiserver(request, tmp_path_factory):
    data = tmp_path_factory.mktemp("apiserver")
    kw = {"extra_args": ["--watch-cache-size", str(WATCH_CACHE_SIZE)]}
    if request.param == "etcd":
        kw["etcd_servers"] = request.getfixturevalue("etcd_server").client_url
    server = ApiServer(data, **kw).start()
    yield server
    server.stop()


@pytest.fixture
async def http(apiserver):
    async with aiohttp.ClientSession(apiserver.url) as session:
        yield session
