"""``navarch scheduler``: the scheduler process (flags, configuration, leader election, HTTP).

    navarch scheduler --kubeconfig FILE [--leader-elect] [--config FILE] [--port 10259]

With ``--leader-elect`` every replica campaigns for the Lease ``kube-system/navarch-scheduler``;
only the holder schedules, and a standby takes over within the lease duration once the leader is
gone. Every replica serves ``/healthz``, ``/metrics`` and the debug routes of ``scheduler.server``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
from typing import Any

import structlog

from client.component import parse_duration, run_component
from client.rest import Client
from scheduler.profile import ConfigError, SchedulerConfig, load_config
from scheduler.server import DEFAULT_PORT, routes

log = structlog.get_logger("scheduler")

LEASE_NAME = "navarch-scheduler"
LEASE_NAMESPACE = "kube-system"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="navarch scheduler", description="assign pods to nodes")
    p.add_argument("--kubeconfig", help="kubeconfig of the API server (default: $KUBECONFIG)")
    p.add_argument("--config", help="KubeSchedulerConfiguration YAML: profiles, plugins, weights")
    p.add_argument("--leader-elect", action="store_true", help="run as one of several replicas; one schedules")
    p.add_argument("--leader-elect-lease-duration", default="15s")
    p.add_argument("--leader-elect-renew-deadline", default="10s")
    p.add_argument("--leader-elect-retry-period", default="2s")
    p.add_argument("--leader-elect-resource-name", default=LEASE_NAME)
    p.add_argument("--leader-elect-resource-namespace", default=LEASE_NAMESPACE)
    p.add_argument("--bind-address", default="127.0.0.1")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help="port of /healthz, /metrics and /debug/why-pending (0: any free port, -1: none)")
    p.add_argument("--v", dest="log_level", default=None, help="log level: debug, info, warning")
    return p


async def run(args: argparse.Namespace, config: SchedulerConfig) -> None:
    from scheduler.scheduler import Scheduler

    client = await Client.from_kubeconfig(args.kubeconfig)
    current: dict[str, Any] = {}

    async def work() -> None:
        sched = Scheduler(client, config)
        current["scheduler"] = sched
        try:
            await sched.run(on_synced=gc.freeze)
        finally:
            current.pop("scheduler", None)

    try:
        await run_component("scheduler", work, client=client, leader_elect=args.leader_elect,
                            lease_name=args.leader_elect_resource_name,
                            lease_namespace=args.leader_elect_resource_namespace,
                            bind_address=args.bind_address, port=args.port,
                            routes=routes(lambda: current.get("scheduler")),
                            lease_duration=parse_duration(args.leader_elect_lease_duration),
                            renew_deadline=parse_duration(args.leader_elect_renew_deadline),
                            retry_period=parse_duration(args.leader_elect_retry_period))
    finally:
        await client.close()


def main(argv: list[str]) -> int:
    """Entry point for ``navarch scheduler`` (the launcher configures logging)."""
    args = parser().parse_args(argv)
    try:
        config = load_config(args.config)
        for flag in ("lease_duration", "renew_deadline", "retry_period"):
            value = getattr(args, f"leader_elect_{flag}")
            try:
                parse_duration(value)
            except ValueError as e:
                raise ConfigError(f"--leader-elect-{flag.replace('_', '-')}: {e}") from None
    except (ConfigError, OSError) as e:
        print(f"navarch scheduler: {e}", file=sys.stderr)
        return 2
    # Every watch event and scheduling cycle allocates hundreds of containers: collecting the
    # youngest generation every 700 allocations (the default) and the whole heap (every cached
    # node and pod) as it grows cost the scheduler a seventh of its CPU. What the first lists
    # load lives as long as the process and is frozen out of the collector's reach once synced.
    gc.set_threshold(10_000, 10, 10)
    try:
        import uvloop
        uvloop.run(run(args, config))
    except ImportError:
        asyncio.run(run(args, config))
    return 0
