"""``navarch simulate-nodes``: many simulated nodes in one process.

    navarch simulate-nodes --kubeconfig FILE --count N [--cpu 32 --memory 256Gi --pods 110]
        [--name-prefix sim-] [--labels k=v,...] [--taints k=v:NoSchedule,...] [--zones a,b,c]
        [--pod-startup-delay 0s] [--termination-delay 0s] [--cleanup]

Pods bound to these nodes become Running and Ready with an IP from the node's pod range. The
annotations ``sim.navarch.io/exit-after: "2s"`` and ``sim.navarch.io/exit-code: "1"`` (default 0)
make every container of a pod exit that long after it started; the pod's restart policy decides
what follows. SIGTERM or SIGINT stops the process and leaves the nodes, which go NotReady when
their Leases expire; ``--cleanup`` deletes them instead. Started again with the same flags, it
takes its nodes and their pods over.

Node addresses and pod ranges follow the node index, so several simulators sharing a cluster
should differ in ``--start-index`` (or in ``--node-ip-range`` and ``--pod-cidr``) as well as in
``--name-prefix``. With ``--port`` it serves ``/healthz`` and ``/metrics`` (``navarch_sim_*``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import structlog

from client.component import parse_duration, run_component
from client.rest import Client
from kubelet.sim.config import ConfigError, SimConfig, parse_labels, parse_list, parse_taints
from kubelet.sim.nodes import NotSimulated
from kubelet.sim.simulator import Simulator

log = structlog.get_logger("kubelet.sim")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="navarch simulate-nodes", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kubeconfig", help="kubeconfig of the API server (default: $KUBECONFIG)")
    p.add_argument("--context", help="kubeconfig context to use")
    p.add_argument("--count", type=int, default=1, help="how many nodes")
    p.add_argument("--name-prefix", default="sim-", help="nodes are named <prefix><index>")
    p.add_argument("--start-index", type=int, default=0,
                   help="index of the first node (lets several simulators share one cluster)")
    p.add_argument("--cpu", default="32", help="cpu capacity of each node")
    p.add_argument("--memory", default="256Gi", help="memory capacity of each node")
    p.add_argument("--pods", type=int, default=110, help="pod capacity of each node")
    p.add_argument("--ephemeral-storage", default="100Gi")
    p.add_argument("--labels", help="extra node labels: k=v,k2=v2")
    p.add_argument("--taints", help="node taints on registration: k=v:NoSchedule,k2:NoExecute")
    p.add_argument("--zones", help="topology.kubernetes.io/zone values given to nodes round-robin: a,b,c")
    p.add_argument("--arch", default="amd64", help="kubernetes.io/arch of the nodes")
    p.add_argument("--pod-cidr", default="10.244.0.0/16",
                   help="range the per-node pod ranges are carved from (unless a node has spec.podCIDR)")
    p.add_argument("--node-cidr-mask-size", type=int, default=24, help="size of each node's pod range")
    p.add_argument("--node-ip-range", default="10.250.0.0/16", help="range of the nodes' InternalIPs")
    p.add_argument("--kubelet-version", default="v1.32.0-sim")
    p.add_argument("--pod-startup-delay", default="0s", help="time from binding to containers running")
    p.add_argument("--termination-delay", default="0s",
                   help="time a deleted pod takes to stop (capped by its grace period)")
    p.add_argument("--lease-duration", type=int, default=40, help="leaseDurationSeconds of node Leases")
    p.add_argument("--lease-renew-interval", default="10s")
    p.add_argument("--node-status-update-frequency", default="5m",
                   help="how often an unchanged Node status is written (the Lease is the heartbeat)")
    p.add_argument("--restart-backoff", default="10s", help="first CrashLoopBackOff wait")
    p.add_argument("--restart-backoff-max", default="5m", help="longest CrashLoopBackOff wait")
    p.add_argument("--max-inflight", type=int, default=32, help="API writes in flight at once")
    p.add_argument("--cleanup", action="store_true", help="delete the nodes on exit")
    p.add_argument("--events", action="store_true",
                   help="record pod Events as a node agent does (Started, BackOff, Killing, ...)")
    p.add_argument("--bind-address", default="127.0.0.1")
    p.add_argument("--port", type=int, default=-1, help="port of /healthz and /metrics (-1: none, 0: any)")
    p.add_argument("--v", dest="log_level", default=None, help="log level: debug, info, warning")
    return p


def config_from_args(args: argparse.Namespace) -> SimConfig:
    def seconds(flag: str, text: str) -> float:
        try:
            return parse_duration(text)
        except ValueError as e:
            raise ConfigError(f"{flag}: {e}") from None

    return SimConfig(
        count=args.count, name_prefix=args.name_prefix, start_index=args.start_index, cpu=args.cpu,
        memory=args.memory, pods=args.pods, ephemeral_storage=args.ephemeral_storage,
        labels=parse_labels(args.labels), taints=parse_taints(args.taints), zones=parse_list(args.zones),
        arch=args.arch, pod_cidr=args.pod_cidr, node_cidr_mask_size=args.node_cidr_mask_size,
        node_ip_range=args.node_ip_range, kubelet_version=args.kubelet_version,
        pod_startup_delay=seconds("--pod-startup-delay", args.pod_startup_delay),
        termination_delay=seconds("--termination-delay", args.termination_delay),
        lease_duration=args.lease_duration,
        lease_renew_interval=seconds("--lease-renew-interval", args.lease_renew_interval),
        node_status_update_frequency=seconds("--node-status-update-frequency",
                                             args.node_status_update_frequency),
        restart_backoff=seconds("--restart-backoff", args.restart_backoff),
        restart_backoff_max=seconds("--restart-backoff-max", args.restart_backoff_max),
        max_inflight=args.max_inflight, cleanup=args.cleanup, events=args.events)


async def run(args: argparse.Namespace, cfg: SimConfig) -> None:
    client = await Client.from_kubeconfig(args.kubeconfig, args.context, pool_size=max(100, cfg.max_inflight))
    sim = Simulator(client, cfg)
    from prometheus_client import REGISTRY

    from kubelet.sim.metrics import SimulatorCollector

    REGISTRY.register(SimulatorCollector(sim))
    try:
        await run_component("simulate-nodes", sim.run, client=client, bind_address=args.bind_address,
                            port=args.port)
    finally:
        await client.close()


def main(argv: list[str]) -> int:
    """Entry point for ``navarch simulate-nodes`` (the launcher configures logging)."""
    args = parser().parse_args(argv)
    try:
        cfg = config_from_args(args)
    except ConfigError as e:
        print(f"navarch simulate-nodes: {e}", file=sys.stderr)
        return 2
    try:
        import uvloop
    except ImportError:
        runner = asyncio.run
    else:
        runner = uvloop.run
    try:
        runner(run(args, cfg))
    except NotSimulated as e:
        print(f"navarch simulate-nodes: {e}", file=sys.stderr)
        return 1
    return 0
