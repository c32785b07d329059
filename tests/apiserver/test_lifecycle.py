"""The API server process: clean SIGTERM with open watches, data kept across restarts and kill -9."""

from __future__ import annotations

import asyncio

import aiohttp
import orjson

from tests.apiserver.builders import make_pod
from tests.fixtures.apiserver import ApiServer


async def create_pods(url: str, names: list[str]) -> None:
    async with aiohttp.ClientSession(url) as s:
        for n in names:
            async with s.post("/api/v1/namespaces/default/pods", data=orjson.dumps(make_pod(n)),
                              headers={"Content-Type": "application/json"}) as r:
                assert r.status == 201, await r.text()


async def pod_names(url: str) -> set[str]:
    async with aiohttp.ClientSession(url) as s, s.get("/api/v1/namespaces/default/pods") as r:
        return {p["metadata"]["name"] for p in (await r.json())["items"]}


async def test_sigterm_with_open_watch_exits_cleanly_and_keeps_data(tmp_path):
    server = ApiServer(tmp_path).start()
    try:
        await create_pods(server.url, ["a", "b"])
        async with aiohttp.ClientSession(server.url) as s:
            async with s.get("/api/v1/pods?watch=true&resourceVersion=0") as w:
                first = await asyncio.wait_for(w.content.readline(), 10)
                assert orjson.loads(first)["type"] == "ADDED"
                code = await asyncio.to_thread(server.stop, 10)
                assert code == 0, server.log_tail()
                rest = await asyncio.wait_for(w.content.read(), 10)   # the stream ends, not hangs
                assert b"ERROR" not in rest
    finally:
        server.stop()
    again = ApiServer(tmp_path).start()
    try:
        assert {"a", "b"} <= await pod_names(again.url)
    finally:
        again.stop()


async def test_kill_9_keeps_acknowledged_writes(tmp_path):
    server = ApiServer(tmp_path).start()
    names = [f"p{i}" for i in range(30)]
    try:
        await create_pods(server.url, names)
    finally:
        server.kill()
    again = ApiServer(tmp_path).start()
    try:
        assert set(names) <= await pod_names(again.url)
    finally:
        again.stop()
