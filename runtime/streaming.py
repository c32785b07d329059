"""The runtime's streaming endpoint: exec, attach and port-forward over WebSocket.

Exec, Attach and PortForward calls register a one-time token here and return
``http://<address>/<kind>/<token>``; the first WebSocket connection on that URL consumes it
(unused tokens expire after ``token_ttl`` seconds). ``/metrics`` serves the runtime's Prometheus
metrics. Subprotocols ``v5.channel.k8s.io`` and
``v4.channel.k8s.io`` are spoken: every binary frame starts with a channel byte.

Exec and attach channels: 0 stdin (client to server), 1 stdout, 2 stderr, 3 the final status as a
Kubernetes ``Status`` JSON document, 4 terminal resize ``{"Width": w, "Height": h}``. Under v5 a
frame ``[255, 0]`` from the client closes stdin. Port-forward: for the i-th requested port, channel
2i carries data and 2i+1 errors; the server opens each channel with the port number as two
little-endian bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import secrets
import struct
import time
from typing import Any

import orjson
import prometheus_client
import structlog
from aiohttp import WSMsgType, web

log = structlog.get_logger(component="runtime.streaming")

PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
CLOSE = 255


def status_success() -> bytes:
    return orjson.dumps({"metadata": {}, "status": "Success"})


def status_exit(code: int) -> bytes:
    return orjson.dumps({
        "metadata": {}, "status": "Failure",
        "message": f"command terminated with non-zero exit code: exit status {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}})


def status_error(message: str) -> bytes:
    return orjson.dumps({"metadata": {}, "status": "Failure", "message": message,
                         "reason": "InternalError"})


async def exit_code_of(wait: Any) -> int:
    """ExecSession.wait may be an awaitable or a callable returning one."""
    if callable(wait) and not inspect.isawaitable(wait):
        wait = wait()
    return int(await wait)


class StreamingServer:
    def __init__(self, runtime: Any, address: str = "127.0.0.1:0", token_ttl: float = 60.0):
        self.runtime = runtime
        host, _, port = address.rpartition(":")
        self.host = host or "127.0.0.1"
        self.port = int(port or 0)
        self.token_ttl = token_ttl
        self.base_url = ""
        self._tokens: dict[str, tuple[float, str, dict]] = {}
        self._runner: web.AppRunner | None = None
        self._sessions: set[asyncio.Task] = set()

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/exec/{token}", self._exec)
        app.router.add_get("/attach/{token}", self._attach)
        app.router.add_get("/portforward/{token}", self._portforward)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        sockets = site._server.sockets if site._server else []   # the bound port when 0 was asked
        port = sockets[0].getsockname()[1] if sockets else self.port
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.base_url = f"http://{host}:{port}"
        log.info("streaming server listening", url=self.base_url)
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics(self, request: web.Request) -> web.Response:
        body = prometheus_client.generate_latest()
        return web.Response(body=body, headers={"Content-Type": prometheus_client.CONTENT_TYPE_LATEST})

    def register(self, kind: str, params: dict) -> str:
        now = time.monotonic()
        for token, (expires, _, _) in list(self._tokens.items()):
            if expires < now:
                del self._tokens[token]
        token = secrets.token_urlsafe(18)
        self._tokens[token] = (now + self.token_ttl, kind, params)
        return f"{self.base_url}/{kind}/{token}"

    def _take(self, request: web.Request, kind: str) -> dict:
        entry = self._tokens.pop(request.match_info["token"], None)
        if entry is None or entry[1] != kind or entry[0] < time.monotonic():
            raise web.HTTPNotFound(text="unknown or expired streaming token")
        return entry[2]

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=PROTOCOLS, max_msg_size=0)
        await ws.prepare(request)
        return ws

    # ---- exec and attach -----------------------------------------------------------------------

    async def _exec(self, request: web.Request) -> web.StreamResponse:
        params = self._take(request, "exec")
        ws = await self._websocket(request)
        try:
            session = await self.runtime.open_exec(params["container_id"], params["cmd"], params["tty"],
                                                   params["stdin"])
        except Exception as e:
            await self._fail(ws, f"exec failed: {e}")
            return ws
        await self._run_session(ws, session, params, report_exit=True)
        return ws

    async def _attach(self, request: web.Request) -> web.StreamResponse:
        params = self._take(request, "attach")
        ws = await self._websocket(request)
        try:
            session = await self.runtime.open_attach(params["container_id"], params["stdin"])
        except Exception as e:
            await self._fail(ws, f"attach failed: {e}")
            return ws
        await self._run_session(ws, session, params, report_exit=True)
        return ws

    async def _fail(self, ws: web.WebSocketResponse, message: str) -> None:
        with contextlib.suppress(ConnectionError):
            await ws.send_bytes(bytes([ERROR]) + status_error(message))
        await ws.close()

    async def _run_session(self, ws: web.WebSocketResponse, session: Any, params: dict, *,
                           report_exit: bool) -> None:
        v5 = ws.ws_protocol == "v5.channel.k8s.io"
        send_lock = asyncio.Lock()

        async def send(channel: int, data: bytes) -> None:
            async with send_lock:
                await ws.send_bytes(bytes([channel]) + data)

        async def pump(reader: asyncio.StreamReader | None, channel: int, wanted: bool) -> None:
            if reader is None:
                return
            while chunk := await reader.read(32768):
                if wanted:
                    await send(channel, chunk)

        def close_stdin() -> None:
            if session.stdin is not None and not session.stdin.is_closing():
                session.stdin.close()

        async def read_client() -> None:
            async for msg in ws:
                if msg.type != WSMsgType.BINARY or not msg.data:
                    continue
                channel, payload = msg.data[0], msg.data[1:]
                if channel == STDIN and session.stdin is not None and payload:
                    session.stdin.write(payload)
                    await session.stdin.drain()
                elif channel == RESIZE and session.resize is not None and payload:
                    size = orjson.loads(payload)
                    session.resize(int(size.get("Width", 0)), int(size.get("Height", 0)))
                elif v5 and channel == CLOSE and payload[:1] == bytes([STDIN]):
                    close_stdin()
            close_stdin()

        async def relay() -> None:
            await asyncio.gather(pump(session.stdout, STDOUT, params.get("stdout", True)),
                                 pump(session.stderr, STDERR, params.get("stderr", True)))
            code = await exit_code_of(session.wait)
            if report_exit:
                await send(ERROR, status_success() if code == 0 else status_exit(code))

        client = asyncio.create_task(read_client(), name="streaming-client")
        output = asyncio.create_task(relay(), name="streaming-output")
        try:
            # Ends when the process is done, or when the client goes away (then output is dropped).
            await asyncio.wait([client, output], return_when=asyncio.FIRST_COMPLETED)
            if output.done():
                output.result()
        except (ConnectionError, RuntimeError) as e:
            log.info("streaming session ended early", error=str(e))
        finally:
            for task in (client, output):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            close_stdin()
            await ws.close()

    # ---- port forward --------------------------------------------------------------------------

    async def _portforward(self, request: web.Request) -> web.StreamResponse:
        params = self._take(request, "portforward")
        ports = list(params["ports"]) or [int(p) for p in request.query.getall("port", [])]
        ws = await self._websocket(request)
        send_lock = asyncio.Lock()

        async def send(channel: int, data: bytes) -> None:
            async with send_lock:
                await ws.send_bytes(bytes([channel]) + data)

        writers: dict[int, asyncio.StreamWriter] = {}
        pumps = []

        async def pump(i: int, reader: asyncio.StreamReader) -> None:
            with contextlib.suppress(ConnectionError):
                while chunk := await reader.read(32768):
                    await send(2 * i, chunk)

        try:
            for i, port in enumerate(ports):
                prefix = struct.pack("<H", port)
                await send(2 * i, prefix)
                await send(2 * i + 1, prefix)
                try:
                    reader, writer = await self.runtime.open_port(params["sandbox_id"], port)
                except Exception as e:
                    await send(2 * i + 1, f"failed to connect to port {port}: {e}".encode())
                    continue
                writers[2 * i] = writer
                pumps.append(asyncio.create_task(pump(i, reader), name=f"portforward-{port}"))

            async def read_client() -> None:
                async for msg in ws:
                    if msg.type != WSMsgType.BINARY or not msg.data:
                        continue
                    writer = writers.get(msg.data[0])
                    if writer is not None and len(msg.data) > 1:
                        writer.write(msg.data[1:])
                        await writer.drain()

            client = asyncio.create_task(read_client(), name="portforward-client")
            waiters = [client, *pumps]
            if pumps:
                # The session ends when the client leaves or every forwarded connection closed.
                all_pumps = asyncio.gather(*pumps, return_exceptions=True)
                await asyncio.wait([client, all_pumps], return_when=asyncio.FIRST_COMPLETED)
            else:
                await client
            for task in waiters:
                task.cancel()
        finally:
            for writer in writers.values():
                writer.close()
            await ws.close()
        return ws
