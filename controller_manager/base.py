"""What every controller is built from.

A controller subclasses ``Controller``: in ``__init__`` it asks ``ctx.informers`` for the
informers it needs and registers handlers that ``enqueue`` keys; ``reconcile(key)`` brings one
object's world in line with its spec, reading from informer caches and writing through
``ctx.client``. Raising requeues the key with backoff; returning a number of seconds requeues it
after that delay; returning None is done. A key is never reconciled by two workers at once.
"""

from __future__ import annotations

import abc
import asyncio
from dataclasses import dataclass, field
from typing import Any, ClassVar

import structlog

from client.clock import REAL, Clock
from client.informer import SharedInformerFactory, object_key
from client.rest import Client
from client.workqueue import PrometheusMetrics, WorkQueue, default_rate_limiter, run_workers


@dataclass
class ControllerConfig:
    """Flags of ``navarch controller-manager`` that controllers read."""

    cluster_cidr: str = "10.244.0.0/16"
    node_cidr_mask_size: int = 24
    node_monitor_grace_period: float = 40.0
    node_monitor_period: float = 5.0
    node_eviction_rate: float = 0.1           # nodes per second whose pods are evicted
    terminated_pod_gc_threshold: int = 12500
    concurrent_syncs: dict[str, int] = field(default_factory=dict)


@dataclass
class ControllerContext:
    client: Client
    informers: SharedInformerFactory
    recorder: Any                             # client.events.EventRecorder (for the component)
    config: ControllerConfig = field(default_factory=ControllerConfig)
    clock: Clock = REAL
    metrics: Any = None                       # workqueue metrics provider (PrometheusMetrics)


class Controller(abc.ABC):
    """Base class: one work queue, N workers, ``reconcile(key)`` to implement."""

    name: ClassVar[str] = ""                  # as in --controllers (e.g. "replicaset")
    workers: ClassVar[int] = 5

    def __init__(self, ctx: ControllerContext):
        self.ctx = ctx
        self.client = ctx.client
        self.clock = ctx.clock
        self.log = structlog.get_logger(f"controller.{self.name}")
        self.queue = WorkQueue(self.name, clock=ctx.clock, rate_limiter=default_rate_limiter(ctx.clock),
                               metrics=ctx.metrics or PrometheusMetrics.shared())

    # --- feeding the queue -------------------------------------------------------------------

    def enqueue(self, obj_or_key: dict | str) -> None:
        self.queue.add(obj_or_key if isinstance(obj_or_key, str) else object_key(obj_or_key))

    def enqueue_after(self, obj_or_key: dict | str, delay: float) -> None:
        key = obj_or_key if isinstance(obj_or_key, str) else object_key(obj_or_key)
        self.queue.add_after(key, delay)

    # --- running --------------------------------------------------------------------------

    @abc.abstractmethod
    async def reconcile(self, key: str) -> float | None:
        """Bring the object named by ``key`` in line; seconds to requeue after, or None."""

    async def run(self) -> None:
        """Wait for the informers, then work until cancelled (the queue drains on shutdown)."""
        await self.ctx.informers.wait_for_cache_sync()
        workers = self.ctx.config.concurrent_syncs.get(self.name, self.workers)
        try:
            await run_workers(self.queue, self.reconcile, workers)
        finally:
            self.queue.shut_down()

    async def stop(self) -> None:
        await self.queue.shut_down_with_drain(timeout=5)


async def run_all(controllers: list[Controller]) -> None:
    """Run controllers side by side; cancelling this cancels them all."""
    tasks = [asyncio.create_task(c.run(), name=f"controller:{c.name}") for c in controllers]
    try:
        await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
