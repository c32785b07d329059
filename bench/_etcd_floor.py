"""The floor of any etcd-backed Python write path here: an HTTP server that does nothing with a
POSTed object but decode it, store it with one create transaction through the project's etcd
driver, and answer it encoded again. No admission, defaults, validation, field ownership or watch
cache: what the real API server adds on top is what separates the two figures.

    python -m bench._etcd_floor ETCD_ENDPOINT PORT

Several processes may listen on one port (SO_REUSEPORT): each stores under its own key prefix.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sys

import orjson
import uvloop
from aiohttp import web

from apiserver.storage.etcd import EtcdBackend


async def serve(port: int, endpoint: str) -> None:
    backend = await EtcdBackend.open([endpoint])
    prefix = f"/floor/{os.getpid()}/"
    counter = itertools.count()

    async def create(request: web.Request) -> web.Response:
        obj = orjson.loads(await request.read())
        kv = await backend.create(f"{prefix}{next(counter)}", orjson.dumps(obj))
        obj["metadata"]["resourceVersion"] = str(kv.mod_revision)
        return web.Response(body=orjson.dumps(obj), status=201, content_type="application/json")

    app = web.Application()
    app.router.add_post("/{tail:.*}", create)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, reuse_port=True).start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    uvloop.install()
    asyncio.run(serve(int(sys.argv[2]), sys.argv[1]))
