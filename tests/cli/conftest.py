"""Fixtures for the navctl tests: one real API server per module, navctl run in-process (``main``
in a worker thread with captured streams) or as ``python -m cli`` subprocesses, a REST client for
setting up state the CLI does not create, and a fresh namespace per test."""

from __future__ import annotations

import asyncio
import io
import os
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from cli.__main__ import main
from client.rest import Client
from tests.fixtures.apiserver import REPO, ApiServer


@dataclass
class Result:
    code: int
    out: str
    err: str


class Navctl:
    def __init__(self, kubeconfig: Path):
        self.kubeconfig = kubeconfig

    async def __call__(self, *args: str, stdin: str = "") -> Result:
        out, err = io.StringIO(), io.StringIO()
        argv = ["--kubeconfig", str(self.kubeconfig), *args]
        code = await asyncio.to_thread(main, argv, stdout=out, stderr=err, stdin=io.StringIO(stdin))
        return Result(code, out.getvalue(), err.getvalue())

    async def ok(self, *args: str, stdin: str = "") -> str:
        r = await self(*args, stdin=stdin)
        assert r.code == 0, f"navctl {' '.join(args)} exited {r.code}: {r.err}"
        return r.out

    async def fails(self, *args: str, stdin: str = "") -> Result:
        r = await self(*args, stdin=stdin)
        assert r.code != 0, f"navctl {' '.join(args)} succeeded: {r.out}"
        return r

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "cli", "--kubeconfig", str(self.kubeconfig), *args]

    def env(self, **extra: str) -> dict[str, str]:
        return dict(os.environ, PYTHONPATH=str(REPO), **extra)

    async def subprocess(self, *args: str, stdin: str | None = None, timeout: float = 120,
                         **env: str) -> Result:
        proc = await asyncio.create_subprocess_exec(
            *self.argv(*args), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, cwd=REPO, env=self.env(**env))
        try:
            out, err = await asyncio.wait_for(proc.communicate(stdin.encode() if stdin is not None else None),
                                              timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        return Result(proc.returncode or 0, out.decode(), err.decode())


@pytest.fixture(scope="module")
def apiserver(tmp_path_factory):
    server = ApiServer(tmp_path_factory.mktemp("apiserver")).start()
    yield server
    server.stop()


@pytest.fixture
def navctl(apiserver) -> Navctl:
    return Navctl(apiserver.kubeconfig)


@pytest.fixture
async def api(apiserver):
    async with Client(apiserver.url) as c:
        yield c


@pytest.fixture
async def ns(api) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    await api.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


async def eventually(check, timeout: float = 30.0, what: str = "condition"):
    """Poll ``check()`` (async) until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        got = await check()
        if got:
            return got
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)
