"""Running a control-plane component: health and metrics endpoints, leader election, signals.

``run_component`` is the main loop the scheduler and the controller manager share: it serves
``/healthz``, ``/readyz``, ``/livez`` and ``/metrics`` (the process's default Prometheus
registry) plus any routes the component adds, optionally campaigns for a Lease and runs ``work``
only while leading, and stops cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import socket
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web

log = structlog.get_logger("component")

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds in a Go duration (``40s``, ``1m30s``, ``500ms``); a bare number is seconds."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    pos, total = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise ValueError(f"invalid duration {text!r}: use forms such as 40s, 1m30s, 500ms")
    return total


async def _metrics(_: web.Request) -> web.Response:
    from prometheus_client import REGISTRY, generate_latest

    return web.Response(body=generate_latest(REGISTRY), content_type="text/plain", charset="utf-8")


async def start_http(bind_address: str, port: int, routes: list[web.RouteDef] | None = None,
                     healthy: Callable[[], bool] | None = None) -> web.AppRunner:
    async def health(_: web.Request) -> web.Response:
        if healthy is not None and not healthy():
            return web.Response(status=500, text="unhealthy")
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/healthz", health)
    app.router.add_get("/readyz", health)
    app.router.add_get("/livez", health)
    app.router.add_get("/metrics", _metrics)
    if routes:
        app.router.add_routes(routes)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, bind_address, port, reuse_address=True).start()
    return runner


def default_identity() -> str:
    return f"{socket.gethostname()}_{uuid.uuid4()}"


async def run_component(name: str, work: Callable[[], Awaitable[Any]], *, client: Any,
                        leader_elect: bool = False, lease_name: str | None = None,
                        lease_namespace: str = "kube-system", identity: str | None = None,
                        bind_address: str = "127.0.0.1", port: int = 0,
                        routes: list[web.RouteDef] | None = None,
                        lease_duration: float = 15.0, renew_deadline: float = 10.0,
                        retry_period: float = 2.0) -> None:
    """Serve HTTP and run ``work`` (while leading, with ``leader_elect``) until a signal.

    Losing the lease ends the process's work; like Kubernetes components the function then
    returns, and the process exits so a supervisor restarts it fresh.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    runner = await start_http(bind_address, port, routes) if port >= 0 else None
    if leader_elect:
        from client.leaderelection import LeaderElector

        elector = LeaderElector(client, lease_namespace, lease_name or name, identity or default_identity(),
                                lease_duration=lease_duration, renew_deadline=renew_deadline,
                                retry_period=retry_period, on_started_leading=work,
                                on_new_leader=lambda who: log.info("leader observed", component=name,
                                                                   leader=who))
        main = asyncio.create_task(elector.run(), name=f"{name}:leaderelection")
    else:
        main = asyncio.create_task(work(), name=f"{name}:work")
    stopper = asyncio.create_task(stop.wait(), name=f"{name}:signals")
    try:
        await asyncio.wait({main, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if leader_elect and not main.done():
            elector.stop()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(main), 5)
        for t in (main, stopper):
            t.cancel()
        await asyncio.gather(main, stopper, return_exceptions=True)
        if runner is not None:
            await runner.cleanup()
        if main.done() and not main.cancelled() and main.exception() is not None:
            raise main.exception()
