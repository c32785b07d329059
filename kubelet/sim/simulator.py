"""One simulator process: two informers, the node keeper and the pod simulator, wired together.

Start-up order: watch Nodes (to learn each node's ``spec.podCIDR`` and to notice a node reported
not Ready), register the nodes (their Lease and status loops start as each is registered), then
watch the pods bound to any node (``spec.nodeName!=``) and keep those on ours. Every write to the
API server but Events passes one gate of ``max_inflight`` slots, Lease renewals first.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import structlog

from client.clock import REAL, Clock
from client.events import EventRecorder
from client.informer import Informer, strip_managed_fields
from client.rest import Client
from client.workqueue import run_workers
from kubelet.sim.config import SimConfig
from kubelet.sim.nodes import NodeKeeper
from kubelet.sim.pods import PodSimulator
from kubelet.sim.writes import WriteGate

log = structlog.get_logger("kubelet.sim")

BOUND_PODS = "spec.nodeName!="


class Simulator:
    """``await start()`` returns once every node is registered and the pod cache is synced;
    ``await stop()`` stops renewing and syncing (and deletes the nodes with ``cleanup``)."""

    def __init__(self, client: Client, cfg: SimConfig, *, clock: Clock = REAL):
        self.client = client
        self.cfg = cfg
        self.clock = clock
        self.writes = WriteGate(cfg.max_inflight)
        self.node_informer = Informer(client, "nodes", clock=clock, transform=strip_managed_fields)
        self.pod_informer = Informer(client, "pods", clock=clock, field_selector=BOUND_PODS,
                                     transform=strip_managed_fields)
        self.nodes = NodeKeeper(client, cfg, self.writes, clock=clock, cached_node=self.node_informer.get)
        self.recorder = EventRecorder(client, "kubelet", clock=clock) if cfg.events else None
        self.pods = PodSimulator(client, cfg, self.writes, clock=clock, pod_cache=self.pod_informer.get,
                                 node_cache=self.node_informer.get, manages=self.nodes.manages,
                                 recorder=self.recorder)
        self.registration_seconds: float | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._stopped = False

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await asyncio.shield(self.stop())
            raise

    async def _start(self) -> None:
        self.node_informer.add_event_handler(on_add=self.nodes.node_changed,
                                             on_update=lambda old, new: self.nodes.node_changed(new),
                                             on_delete=self.nodes.node_deleted)
        self.node_informer.start()
        await self.node_informer.wait_for_cache_sync()
        self._tasks.append(asyncio.create_task(self.nodes.run(), name="sim:nodes"))
        t0 = time.perf_counter()
        await self.nodes.register_all()
        self.registration_seconds = time.perf_counter() - t0
        log.info("simulated nodes registered", created=self.nodes.registered, taken_over=self.nodes.taken_over,
                 seconds=round(self.registration_seconds, 2))
        self.pod_informer.add_event_handler(on_add=self.pods.on_add, on_update=self.pods.on_update,
                                            on_delete=self.pods.on_delete)
        self._tasks.append(asyncio.create_task(run_workers(self.pods.queue, self.pods.sync, self.cfg.max_inflight),
                                               name="sim:pods"))
        self.pod_informer.start()
        await self.pod_informer.wait_for_cache_sync()

    async def stop(self) -> None:
        """Stop acting for the nodes. Without ``cleanup`` they are left as they are, so they go
        NotReady once their Leases expire, as nodes whose agent died."""
        if self._stopped:
            return
        self._stopped = True
        self.nodes.stop()
        self.pods.queue.shut_down()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.pod_informer.stop()
        await self.node_informer.stop()
        if self.recorder is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.recorder.flush(), 5)
            await self.recorder.stop(flush=False)
        if self.cfg.cleanup:
            count = len(self.nodes.uids)
            await self.nodes.delete_all()
            log.info("simulated nodes deleted", count=count)

    async def run(self) -> None:
        """Start, then run until cancelled; stop on the way out."""
        try:
            await self.start()
            await asyncio.Event().wait()
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.stop())

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
