"""``navarch``: one executable, one subcommand per component or composition.

    navarch apiserver   the API server (--data-dir for SQLite, --etcd-servers for etcd)
    navarch up          a whole cluster on this machine
    navarch scheduler            the scheduler
    navarch controller-manager   the controllers
    navarch simulate-nodes       simulated nodes (a KWOK-style node agent) for tests and benchmarks
    navarch runtime              the node's CRI container runtime
    navarch crictl               a crictl-like client for the runtime
    navarch image                import and list images in a runtime's store
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from navarch import logging as navlog


def _run(coro) -> None:
    try:
        import uvloop
        uvloop.run(coro)
    except ImportError:
        asyncio.run(coro)


def _apiserver_args(p: argparse.ArgumentParser) -> None:
    store = p.add_mutually_exclusive_group()
    store.add_argument("--data-dir", default="run", help="directory of the embedded SQLite store")
    store.add_argument("--etcd-servers", help="comma-separated etcd client URLs; use etcd instead of SQLite")
    p.add_argument("--bind-address", default="127.0.0.1")
    p.add_argument("--port", type=int, default=6443)
    p.add_argument("--service-cluster-ip-range", default="10.96.0.0/12")
    p.add_argument("--watch-cache-size", type=int, default=20_000,
                   help="events kept per resource for watches to resume from")
    p.add_argument("--v", dest="log_level", default=None, help="log level: debug, info, warning")


def _storage_url(args: argparse.Namespace) -> str:
    if args.etcd_servers:
        hosts = [u.split("://", 1)[-1].rstrip("/") for u in args.etcd_servers.split(",") if u]
        return "etcd://" + ",".join(hosts)
    data = Path(args.data_dir).resolve()
    data.mkdir(parents=True, exist_ok=True)
    return f"sqlite://{data / 'state.db'}"


def _apiserver_config(args: argparse.Namespace):
    from apiserver.app import Config

    return Config(storage_url=_storage_url(args), bind_address=args.bind_address, port=args.port,
                  service_cidr=args.service_cluster_ip_range, watch_cache_size=args.watch_cache_size)


def cmd_apiserver(args: argparse.Namespace) -> int:
    from apiserver.app import run

    navlog.configure("apiserver", args.log_level)
    _run(run(_apiserver_config(args)))
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from navarch import up

    return up.run(args.data_dir, args.port, args.bind_address, args.simulated_nodes, args.log_level,
                  args.scheduler_port, args.controller_manager_port)


def _flag_value(argv: list[str], flag: str) -> str | None:
    for i, a in enumerate(argv):
        if a == flag and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Components with their own argument parsers take the rest of the command line as is.
    delegated = {
        "scheduler": ("scheduler.app", "main"),
        "controller-manager": ("controller_manager.manager", "main"),
        "simulate-nodes": ("kubelet.sim.app", "main"),
        "runtime": ("runtime.server", "main"),
        "crictl": ("runtime.crictl", "main"),
        "image": ("runtime.images.cli", "main"),
    }
    if argv and argv[0] in delegated:
        import importlib

        if argv[0] not in ("crictl", "image"):
            navlog.configure(argv[0], _flag_value(argv, "--v"))
        module, fn = delegated[argv[0]]
        return int(getattr(importlib.import_module(module), fn)(argv[1:]) or 0)
    parser = argparse.ArgumentParser(prog="navarch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("apiserver", help="run the API server")
    _apiserver_args(p)
    p.set_defaults(func=cmd_apiserver)
    p = sub.add_parser("up", help="run a whole cluster on this machine")
    p.add_argument("--data-dir", default="run", help="state, logs and kubeconfig live here")
    p.add_argument("--bind-address", default="127.0.0.1")
    p.add_argument("--port", type=int, default=6443)
    p.add_argument("--simulated-nodes", type=int, default=0, help="also run N simulated nodes")
    p.add_argument("--scheduler-port", type=int, default=10259, help="scheduler health, metrics, why-pending")
    p.add_argument("--controller-manager-port", type=int, default=10257)
    p.add_argument("--v", dest="log_level", default=None)
    p.set_defaults(func=cmd_up)
    for name in delegated:
        sub.add_parser(name, help=f"see: navarch {name} --help", add_help=False)
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
