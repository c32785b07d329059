"""``navarch controller-manager``: run the enabled controllers in one process.

Controllers are discovered in ``controller_manager.controllers``; ``--controllers`` selects them
as kube-controller-manager does (``*`` all, ``name`` one, ``-name`` not that one). With
``--leader-elect`` only the holder of Lease ``kube-system/navarch-controller-manager`` runs them.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import pkgutil

import structlog

from client.component import parse_duration, run_component
from client.informer import SharedInformerFactory, strip_managed_fields
from client.rest import Client
from client.workqueue import PrometheusMetrics
from controller_manager import controllers as controllers_pkg
from controller_manager.base import Controller, ControllerConfig, ControllerContext, run_all
from controller_manager.events import CorrelatingRecorder

log = structlog.get_logger("controller-manager")

LEASE_NAME = "navarch-controller-manager"
DEFAULT_PORT = 10257


def available() -> dict[str, type[Controller]]:
    """Every controller class, by its ``--controllers`` name."""
    found: dict[str, type[Controller]] = {}
    for mod in pkgutil.iter_modules(controllers_pkg.__path__):
        module = importlib.import_module(f"{controllers_pkg.__name__}.{mod.name}")
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, Controller) and obj is not Controller and obj.name:
                found[obj.name] = obj
    return found


def select(spec: str, names: list[str]) -> list[str]:
    """Apply a ``--controllers`` value such as ``*,-job`` to the available names."""
    chosen: set[str] = set()
    for item in (s.strip() for s in spec.split(",") if s.strip()):
        if item == "*":
            chosen |= set(names)
        elif item.startswith("-"):
            if item[1:] not in names:
                raise ValueError(f"unknown controller {item[1:]!r}; known: {', '.join(sorted(names))}")
            chosen.discard(item[1:])
        else:
            if item not in names:
                raise ValueError(f"unknown controller {item!r}; known: {', '.join(sorted(names))}")
            chosen.add(item)
    # "-x" after "*" removes x even though "*" came first: evaluate removals last.
    for item in spec.split(","):
        item = item.strip()
        if item.startswith("-"):
            chosen.discard(item[1:])
    return sorted(chosen)


class Recorders:
    """One event recorder per controller, named as Kubernetes names the source component, with
    client-go's aggregation and spam filter (``controller_manager.events``)."""

    def __init__(self, client: Client):
        self.client = client
        self._by_component: dict[str, CorrelatingRecorder] = {}

    def __call__(self, component: str) -> CorrelatingRecorder:
        rec = self._by_component.get(component)
        if rec is None:
            rec = self._by_component[component] = CorrelatingRecorder(self.client, component)
        return rec

    async def stop(self) -> None:
        await asyncio.gather(*(r.stop() for r in self._by_component.values()), return_exceptions=True)


async def run_controllers(client: Client, names: list[str], config: ControllerConfig) -> None:
    classes = available()
    # Controllers never read managedFields; dropping them keeps the caches about a third smaller.
    informers = SharedInformerFactory(client, transform=strip_managed_fields)
    recorders = Recorders(client)
    ctx = ControllerContext(client=client, informers=informers, recorder=recorders, config=config,
                            metrics=PrometheusMetrics.shared())
    running = [classes[n](ctx) for n in names]
    informers.start()
    log.info("controllers starting", controllers=names)
    try:
        await run_all(running)
    finally:
        await asyncio.gather(*(c.stop() for c in running), return_exceptions=True)
        await asyncio.gather(*(i.stop() for i in informers.informers()), return_exceptions=True)
        await recorders.stop()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="navarch controller-manager")
    p.add_argument("--kubeconfig", help="kubeconfig of the API server (default: $KUBECONFIG)")
    p.add_argument("--leader-elect", action="store_true")
    p.add_argument("--controllers", default="*", help="'*' for all, 'name' to add, '-name' to leave out")
    p.add_argument("--cluster-cidr", default="10.244.0.0/16")
    p.add_argument("--node-cidr-mask-size", type=int, default=24)
    p.add_argument("--node-monitor-grace-period", default="40s")
    p.add_argument("--node-monitor-period", default="5s")
    p.add_argument("--node-eviction-rate", type=float, default=0.1)
    p.add_argument("--terminated-pod-gc-threshold", type=int, default=12500,
                   help="terminated pods kept before the oldest are deleted (<= 0: keep all)")
    p.add_argument("--bind-address", default="127.0.0.1")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="health and metrics port (-1: none)")
    p.add_argument("--v", dest="log_level", default=None)
    return p


async def _main(args: argparse.Namespace) -> None:
    names = select(args.controllers, sorted(available()))
    config = ControllerConfig(cluster_cidr=args.cluster_cidr, node_cidr_mask_size=args.node_cidr_mask_size,
                              node_monitor_grace_period=parse_duration(args.node_monitor_grace_period),
                              node_monitor_period=parse_duration(args.node_monitor_period),
                              node_eviction_rate=args.node_eviction_rate,
                              terminated_pod_gc_threshold=args.terminated_pod_gc_threshold)
    client = await Client.from_kubeconfig(args.kubeconfig)
    try:
        await run_component("controller-manager", lambda: run_controllers(client, names, config), client=client,
                            leader_elect=args.leader_elect, lease_name=LEASE_NAME,
                            bind_address=args.bind_address, port=args.port)
    finally:
        await client.close()


def main(argv: list[str]) -> int:
    """Entry point for ``navarch controller-manager`` (the launcher configures logging)."""
    args = parser().parse_args(argv)
    try:
        import uvloop
        uvloop.run(_main(args))
    except ImportError:
        asyncio.run(_main(args))
    return 0
