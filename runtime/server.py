"""Process entry of ``navarch runtime``: the CRI services on a unix socket.

``main(argv)`` parses the flags and runs ``serve(args)``: it builds the driver (``runc`` from
``runtime.linux`` or ``hollow``) and the image store, recovers persisted sandboxes and containers,
starts the streaming endpoint, and serves RuntimeService and ImageService with grpc.aio until
SIGTERM or SIGINT. Stopping leaves containers running; the next start re-attaches to them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import Any

import grpc
import structlog

from proto import runtime_pb2_grpc as pb_grpc
from runtime.service import ImageErrors, ImageServicer, Runtime, RuntimeServicer
from runtime.streaming import StreamingServer

log = structlog.get_logger(component="runtime")

MAX_MESSAGE = 32 << 20


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="navarch runtime", description="Serve the CRI runtime on a unix socket.")
    p.add_argument("--root", required=True, type=Path, help="state directory (images, bundles, records)")
    p.add_argument("--socket", required=True, type=Path, help="unix socket path to listen on")
    p.add_argument("--pod-cidr", default="10.88.0.0/16", help="pod network range for CNI host-local IPAM")
    p.add_argument("--insecure-registry", action="append", default=[], metavar="HOST:PORT",
                   help="registry reached over plain http (repeatable)")
    p.add_argument("--driver", choices=("runc", "hollow"), default="runc")
    p.add_argument("--cni-bin-dir", default="/usr/lib/cni")
    p.add_argument("--bridge", default="navarch0", help="host bridge of the pod network (one subnet per bridge)")
    p.add_argument("--v", dest="log_level", default=None, help="log level (read by the launcher)")
    p.add_argument("--streaming-address", default="127.0.0.1:0",
                   help="HOST:PORT of the exec/attach/port-forward endpoint (port 0: any free port)")
    return p.parse_args(argv)


def build(args: argparse.Namespace) -> tuple[Any, Any, ImageErrors, Any]:
    """The driver, image store, the store's error classes and its auth factory."""
    root: Path = args.root
    if args.driver == "hollow":
        from runtime import hollow

        errors = ImageErrors(not_found=(hollow.HollowImageNotFound,), invalid=(hollow.HollowInvalidReference,))
        return (hollow.HollowDriver(root, pod_cidr=args.pod_cidr), hollow.HollowImageStore(root / "images"),
                errors, None)
    from runtime import images, linux

    store = images.ImageStore(root / "images", insecure_registries=tuple(args.insecure_registry))
    driver = linux.RuncDriver(root, cni_bin_dir=args.cni_bin_dir, pod_cidr=args.pod_cidr, bridge=args.bridge)
    errors = ImageErrors(not_found=(images.ImageNotFound,), invalid=(images.InvalidReference,),
                         pull=(images.PullError,))
    return driver, store, errors, lambda data: images.RegistryAuth(**data)


CNI_PLUGINS = ("bridge", "host-local", "loopback", "portmap")


def cni_probe(bin_dir: str):
    """NetworkReady holds while the CNI plugins the pod network needs are installed."""

    async def probe() -> tuple[bool, str]:
        missing = await asyncio.to_thread(
            lambda: [p for p in CNI_PLUGINS if not os.access(os.path.join(bin_dir, p), os.X_OK)])
        if missing:
            return False, f"CNI plugins missing from {bin_dir}: {', '.join(missing)}"
        return True, ""

    return probe


async def serve(args: argparse.Namespace) -> int:
    args.root.mkdir(parents=True, exist_ok=True)
    driver, store, errors, make_auth = build(args)
    runtime = Runtime(args.root, driver, store, pod_cidr=args.pod_cidr, image_errors=errors,
                      make_auth=make_auth, driver_name=args.driver)
    if args.driver == "runc":
        runtime.network_probe = cni_probe(args.cni_bin_dir)
    await runtime.start()
    streaming = StreamingServer(runtime, args.streaming_address)
    await streaming.start()
    runtime.streaming = streaming

    server = grpc.aio.server(options=[("grpc.max_receive_message_length", MAX_MESSAGE),
                                      ("grpc.max_send_message_length", MAX_MESSAGE)])
    pb_grpc.add_RuntimeServiceServicer_to_server(RuntimeServicer(runtime), server)
    pb_grpc.add_ImageServiceServicer_to_server(ImageServicer(runtime), server)
    socket_path = args.socket.absolute()
    socket_path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        socket_path.unlink()
    server.add_insecure_port(f"unix:{socket_path}")
    await server.start()
    log.info("runtime serving", socket=str(socket_path), driver=args.driver, pid=os.getpid())

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        log.info("runtime stopping")
        await server.stop(grace=2)
        await streaming.stop()
        await runtime.close()
        with contextlib.suppress(FileNotFoundError):
            socket_path.unlink()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    return asyncio.run(serve(args))


if __name__ == "__main__":
    sys.exit(main())
