"""``navarch crictl``: a CRI command line in the manner of crictl, over the runtime's unix socket.

``main(argv)`` understands crictl's global ``--runtime-endpoint unix://PATH`` (or the
``CONTAINER_RUNTIME_ENDPOINT`` variable) and its verbs: version, info, pull, images, inspecti,
imagefsinfo, rmi, runp, pods, stopp, rmp, create, start, ps, inspect, inspectp, logs, exec, attach,
stop, rm, stats. Pod and container configs are read from JSON or YAML files in crictl's format (CRI field names, snake
or camel case). Tables print like crictl's: truncated ids, human ages and sizes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import orjson
import yaml
from google.protobuf import json_format

from proto import runtime_pb2 as pb
from proto import runtime_pb2_grpc as pb_grpc

DEFAULT_ENDPOINT = "unix:///run/navarch/runtime.sock"
TRUNC = 13


class CLIError(Exception):
    pass


# ---- formatting --------------------------------------------------------------------------------

def trunc(id_: str) -> str:
    return id_.removeprefix("sha256:")[:TRUNC]


def human_duration(seconds: float) -> str:
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = round(s / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{hours // 24 // 365} years"


def ago(ns: int) -> str:
    return human_duration(time.time() - ns / 1e9) + " ago"


def human_size(size: float) -> str:
    units = ["B", "kB", "MB", "GB", "TB", "PB"]
    i = 0
    while size >= 1000 and i < len(units) - 1:
        size /= 1000
        i += 1
    return f"{size:.3g}{units[i]}"


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for r in rows:
        cells = [c.ljust(w) for c, w in zip(r[:-1], widths[:-1], strict=True)] + [r[-1]]
        lines.append("   ".join(cells).rstrip())
    return "\n".join(lines)


def rfc3339(ns: int) -> str:
    if not ns:
        return "0001-01-01T00:00:00Z"
    t = dt.datetime.fromtimestamp(ns // 1_000_000_000, dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{ns % 1_000_000_000:09d}Z"


def message_json(message: Any) -> dict:
    data = json_format.MessageToDict(message, always_print_fields_with_no_presence=True)
    for key in ("createdAt", "startedAt", "finishedAt"):
        if key in data:
            data[key] = rfc3339(int(data[key]))
    return data


def info_json(info: Any) -> dict:
    out: dict[str, Any] = {}
    for key, value in info.items():
        try:
            out[key] = orjson.loads(value)
        except orjson.JSONDecodeError:
            out[key] = value
    if list(out) == ["info"] and isinstance(out["info"], dict):
        return out["info"]
    return out


def dump(data: Any, output: str = "json") -> str:
    if output == "yaml":
        return yaml.safe_dump(data, sort_keys=False).rstrip()
    return orjson.dumps(data, option=orjson.OPT_INDENT_2).decode()


def load_config(path: str, cls: type) -> Any:
    text = Path(path).read_text()
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise CLIError(f"{path}: expected a mapping")
    try:
        # Like crictl, fields this runtime does not model (windows, CDI devices, ...) are ignored.
        return json_format.ParseDict(data, cls(), ignore_unknown_fields=True)
    except json_format.ParseError as e:
        raise CLIError(f"{path}: {e}") from e


# ---- client ------------------------------------------------------------------------------------

def endpoint_target(endpoint: str) -> str:
    if endpoint.startswith("unix://"):
        return "unix:" + endpoint.removeprefix("unix://")
    if endpoint.startswith("/"):
        return "unix:" + endpoint
    return endpoint


class Client:
    def __init__(self, endpoint: str, timeout: float):
        self.channel = grpc.aio.insecure_channel(endpoint_target(endpoint))
        self.rt = pb_grpc.RuntimeServiceStub(self.channel)
        self.im = pb_grpc.ImageServiceStub(self.channel)
        self.timeout = timeout

    async def close(self) -> None:
        await self.channel.close()

    async def call(self, stub_method: Any, request: Any, timeout: float | None = None) -> Any:
        return await stub_method(request, timeout=timeout or self.timeout)


# ---- verbs -------------------------------------------------------------------------------------

async def cmd_version(c: Client, a: argparse.Namespace) -> int:
    v = await c.call(c.rt.Version, pb.VersionRequest(version="v1"))
    print(f"Version:  {v.version}\nRuntimeName:  {v.runtime_name}\nRuntimeVersion:  {v.runtime_version}\n"
          f"RuntimeApiVersion:  {v.runtime_api_version}")
    return 0


async def cmd_info(c: Client, a: argparse.Namespace) -> int:
    r = await c.call(c.rt.Status, pb.StatusRequest(verbose=True))
    data = {"status": json_format.MessageToDict(r.status, always_print_fields_with_no_presence=True)}
    data.update(info_json(r.info))
    print(dump(data, a.output))
    return 0


def parse_auth(a: argparse.Namespace) -> pb.AuthConfig | None:
    if a.creds:
        user, sep, password = a.creds.partition(":")
        if not sep:
            raise CLIError("--creds must be USERNAME:PASSWORD")
        return pb.AuthConfig(username=user, password=password)
    if a.auth:
        return pb.AuthConfig(auth=a.auth)
    if a.username:
        return pb.AuthConfig(username=a.username, password=a.password or "")
    return None


async def cmd_pull(c: Client, a: argparse.Namespace) -> int:
    req = pb.PullImageRequest(image=pb.ImageSpec(image=a.image))
    auth = parse_auth(a)
    if auth is not None:
        req.auth.CopyFrom(auth)
    if a.pod_config:
        req.sandbox_config.CopyFrom(load_config(a.pod_config, pb.PodSandboxConfig))
    r = await c.call(c.im.PullImage, req, timeout=a.pull_timeout or 600)
    print(f"Image is up to date for {r.image_ref}")
    return 0


def split_repo(ref: str) -> tuple[str, str]:
    name, sep, digest = ref.partition("@")
    if sep:
        return name, digest
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        repo, _, tag = name.rpartition(":")
        return repo, tag
    return name, "<none>"


async def cmd_images(c: Client, a: argparse.Namespace) -> int:
    req = pb.ListImagesRequest()
    if a.image:
        req.filter.image.image = a.image
    r = await c.call(c.im.ListImages, req)
    images = sorted(r.images, key=lambda i: (list(i.repo_tags) or list(i.repo_digests) or [i.id])[0])
    if a.quiet:
        for i in images:
            print(i.id)
        return 0
    if a.output in ("json", "yaml"):
        print(dump({"images": [message_json(i) for i in images]}, a.output))
        return 0
    rows = [["IMAGE", "TAG", "IMAGE ID", "SIZE"]]
    for i in images:
        refs = list(i.repo_tags) or [f"{split_repo(d)[0]}:<none>" for d in i.repo_digests] or ["<none>:<none>"]
        for ref in refs:
            repo, tag = split_repo(ref)
            rows.append([repo, tag, trunc(i.id), human_size(i.size)])
    print(table(rows))
    return 0


async def cmd_rmi(c: Client, a: argparse.Namespace) -> int:
    status = 0
    targets = list(a.images)
    if a.all:
        targets = [i.id for i in (await c.call(c.im.ListImages, pb.ListImagesRequest())).images]
    for ref in targets:
        st = await c.call(c.im.ImageStatus, pb.ImageStatusRequest(image=pb.ImageSpec(image=ref)))
        if not st.HasField("image"):
            print(f"error: no such image {ref}", file=sys.stderr)
            status = 1
            continue
        await c.call(c.im.RemoveImage, pb.RemoveImageRequest(image=pb.ImageSpec(image=st.image.id)))
        for name in list(st.image.repo_tags) + list(st.image.repo_digests):
            print(f"Deleted: {name}")
    return status


async def cmd_inspecti(c: Client, a: argparse.Namespace) -> int:
    status = 0
    for ref in a.images:
        r = await c.call(c.im.ImageStatus, pb.ImageStatusRequest(image=pb.ImageSpec(image=ref), verbose=True))
        if not r.HasField("image"):
            print(f"error: no such image {ref}", file=sys.stderr)
            status = 1
            continue
        print(dump({"status": message_json(r.image), "info": info_json(r.info)}, a.output))
    return status


async def cmd_imagefsinfo(c: Client, a: argparse.Namespace) -> int:
    r = await c.call(c.im.ImageFsInfo, pb.ImageFsInfoRequest())
    print(dump({"status": json_format.MessageToDict(r, always_print_fields_with_no_presence=True)}, a.output))
    return 0


async def cmd_runp(c: Client, a: argparse.Namespace) -> int:
    config = load_config(a.config, pb.PodSandboxConfig)
    r = await c.call(c.rt.RunPodSandbox, pb.RunPodSandboxRequest(config=config, runtime_handler=a.runtime))
    print(r.pod_sandbox_id)
    return 0


SANDBOX_STATE = {"ready": pb.SANDBOX_READY, "notready": pb.SANDBOX_NOTREADY}
CONTAINER_STATE = {"created": pb.CONTAINER_CREATED, "running": pb.CONTAINER_RUNNING,
                   "exited": pb.CONTAINER_EXITED, "unknown": pb.CONTAINER_UNKNOWN}


def parse_labels(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise CLIError(f"--label {item!r}: expected key=value")
        out[key] = value
    return out


async def list_pods(c: Client, a: argparse.Namespace) -> list[pb.PodSandbox]:
    f = pb.PodSandboxFilter(id=a.id or "", label_selector=parse_labels(a.label))
    if a.state:
        if a.state.lower() not in SANDBOX_STATE:
            raise CLIError(f"--state must be one of {', '.join(SANDBOX_STATE)}")
        f.state.state = SANDBOX_STATE[a.state.lower()]
    items = (await c.call(c.rt.ListPodSandbox, pb.ListPodSandboxRequest(filter=f))).items
    out = [p for p in items
           if (not a.name or re.search(a.name, p.metadata.name))
           and (not a.namespace or re.search(a.namespace, p.metadata.namespace))]
    out.sort(key=lambda p: p.created_at, reverse=True)
    if a.latest:
        out = out[:1]
    elif a.last:
        out = out[:a.last]
    return out


async def cmd_pods(c: Client, a: argparse.Namespace) -> int:
    pods = await list_pods(c, a)
    if a.quiet:
        for p in pods:
            print(p.id)
        return 0
    if a.output in ("json", "yaml"):
        print(dump({"items": [message_json(p) for p in pods]}, a.output))
        return 0
    rows = [["POD ID", "CREATED", "STATE", "NAME", "NAMESPACE", "ATTEMPT", "RUNTIME"]]
    for p in pods:
        rows.append([p.id if a.no_trunc else trunc(p.id), ago(p.created_at), "Ready" if p.state == pb.SANDBOX_READY else "NotReady",
                     p.metadata.name, p.metadata.namespace, str(p.metadata.attempt),
                     p.runtime_handler or "(default)"])
    print(table(rows))
    return 0


async def cmd_stopp(c: Client, a: argparse.Namespace) -> int:
    for pod in a.pods:
        await c.call(c.rt.StopPodSandbox, pb.StopPodSandboxRequest(pod_sandbox_id=pod))
        print(f"Stopped sandbox {pod}")
    return 0


async def cmd_rmp(c: Client, a: argparse.Namespace) -> int:
    pods = list(a.pods)
    if a.all:
        pods = [p.id for p in (await c.call(c.rt.ListPodSandbox, pb.ListPodSandboxRequest())).items]
    for pod in pods:
        if a.force:
            await c.call(c.rt.StopPodSandbox, pb.StopPodSandboxRequest(pod_sandbox_id=pod))
        await c.call(c.rt.RemovePodSandbox, pb.RemovePodSandboxRequest(pod_sandbox_id=pod))
        print(f"Removed sandbox {pod}")
    return 0


async def cmd_create(c: Client, a: argparse.Namespace) -> int:
    config = load_config(a.container_config, pb.ContainerConfig)
    sandbox_config = load_config(a.pod_config, pb.PodSandboxConfig)
    if a.with_pull:
        st = await c.call(c.im.ImageStatus, pb.ImageStatusRequest(image=config.image))
        if not st.HasField("image"):
            await c.call(c.im.PullImage, pb.PullImageRequest(image=config.image, sandbox_config=sandbox_config),
                         timeout=600)
    r = await c.call(c.rt.CreateContainer, pb.CreateContainerRequest(
        pod_sandbox_id=a.pod, config=config, sandbox_config=sandbox_config))
    print(r.container_id)
    return 0


async def cmd_start(c: Client, a: argparse.Namespace) -> int:
    for ctr in a.containers:
        await c.call(c.rt.StartContainer, pb.StartContainerRequest(container_id=ctr))
        print(ctr)
    return 0


async def list_containers(c: Client, a: argparse.Namespace) -> list[pb.Container]:
    f = pb.ContainerFilter(id=a.id or "", pod_sandbox_id=a.pod or "", label_selector=parse_labels(a.label))
    if a.state:
        if a.state.lower() not in CONTAINER_STATE:
            raise CLIError(f"--state must be one of {', '.join(CONTAINER_STATE)}")
        f.state.state = CONTAINER_STATE[a.state.lower()]
    elif not a.all:
        f.state.state = pb.CONTAINER_RUNNING
    items = (await c.call(c.rt.ListContainers, pb.ListContainersRequest(filter=f))).containers
    out = [x for x in items if not a.name or re.search(a.name, x.metadata.name)]
    out.sort(key=lambda x: x.created_at, reverse=True)
    if a.latest:
        out = out[:1]
    elif a.last:
        out = out[:a.last]
    return out


async def cmd_ps(c: Client, a: argparse.Namespace) -> int:
    ctrs = await list_containers(c, a)
    if a.quiet:
        for x in ctrs:
            print(x.id)
        return 0
    if a.output in ("json", "yaml"):
        print(dump({"containers": [message_json(x) for x in ctrs]}, a.output))
        return 0
    pods = {p.id: p for p in (await c.call(c.rt.ListPodSandbox, pb.ListPodSandboxRequest())).items}
    rows = [["CONTAINER", "IMAGE", "CREATED", "STATE", "NAME", "ATTEMPT", "POD ID", "POD"]]
    for x in ctrs:
        state = pb.ContainerState.Name(x.state).removeprefix("CONTAINER_").capitalize()
        pod = pods.get(x.pod_sandbox_id)
        image = x.image_id if a.no_trunc else trunc(x.image_id) if x.image_id else x.image.image
        rows.append([x.id if a.no_trunc else trunc(x.id), image, ago(x.created_at), state, x.metadata.name, str(x.metadata.attempt),
                     trunc(x.pod_sandbox_id), pod.metadata.name if pod else "unknown"])
    print(table(rows))
    return 0


async def cmd_inspect(c: Client, a: argparse.Namespace) -> int:
    docs = []
    for ctr in a.containers:
        r = await c.call(c.rt.ContainerStatus, pb.ContainerStatusRequest(container_id=ctr, verbose=True))
        docs.append({"status": message_json(r.status), "info": info_json(r.info)})
    for doc in docs:
        print(dump(doc, a.output))
    return 0


async def cmd_inspectp(c: Client, a: argparse.Namespace) -> int:
    for pod in a.pods:
        r = await c.call(c.rt.PodSandboxStatus, pb.PodSandboxStatusRequest(pod_sandbox_id=pod, verbose=True))
        print(dump({"status": message_json(r.status), "info": info_json(r.info)}, a.output))
    return 0


def parse_cri_log_line(line: bytes) -> tuple[str, str, bool, bytes] | None:
    """``<time> <stream> <P|F> <content>`` -> (time, stream, full, content)."""
    parts = line.rstrip(b"\n").split(b" ", 3)
    if len(parts) < 3:
        return None
    content = parts[3] if len(parts) == 4 else b""
    return parts[0].decode(), parts[1].decode(), parts[2] != b"P", content


class LogPrinter:
    def __init__(self, timestamps: bool):
        self.timestamps = timestamps

    def emit(self, line: bytes) -> None:
        parsed = parse_cri_log_line(line)
        if parsed is None:
            return
        ts, stream, full, content = parsed
        out = sys.stdout.buffer if stream == "stdout" else sys.stderr.buffer
        if self.timestamps:
            out.write(ts.encode() + b" ")
        out.write(content + (b"\n" if full else b""))
        out.flush()


async def cmd_logs(c: Client, a: argparse.Namespace) -> int:
    r = await c.call(c.rt.ContainerStatus, pb.ContainerStatusRequest(container_id=a.container))
    path = r.status.log_path
    if not path:
        raise CLIError(f"container {a.container} has no log path")
    printer = LogPrinter(a.timestamps)
    data = await asyncio.to_thread(_read_from, path, 0)
    lines = data.splitlines(keepends=True)
    complete, rest = (lines, b"") if not lines or lines[-1].endswith(b"\n") else (lines[:-1], lines[-1])
    if a.tail is not None and a.tail >= 0:
        complete = complete[len(complete) - a.tail:] if a.tail else []
    for line in complete:
        printer.emit(line)
    if not a.follow:
        return 0
    offset = len(data) - len(rest)
    while True:
        await asyncio.sleep(0.2)
        size = await asyncio.to_thread(lambda: os.path.getsize(path) if os.path.exists(path) else 0)
        if size < offset:
            offset = 0      # the log was rotated and reopened
        if size > offset:
            chunk = await asyncio.to_thread(_read_from, path, offset)
            body, _, tail = chunk.rpartition(b"\n")
            if _:
                for line in (body + b"\n").splitlines(keepends=True):
                    printer.emit(line)
                offset += len(body) + 1
            continue
        st = await c.call(c.rt.ContainerStatus, pb.ContainerStatusRequest(container_id=a.container))
        if st.status.state != pb.CONTAINER_RUNNING:
            return 0


def _read_from(path: str, offset: int) -> bytes:
    if not os.path.exists(path):
        return b""
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read()


async def stream_session(url: str, stdin: Any = None, tty: bool = False) -> int:
    """Run an exec/attach session against a streaming URL; return the remote exit code."""
    import aiohttp

    with raw_terminal(tty and stdin is not None and stdin.isatty()):
        async with aiohttp.ClientSession() as session, session.ws_connect(
                url, protocols=("v5.channel.k8s.io", "v4.channel.k8s.io"), max_msg_size=0) as ws:
            return await _relay(ws, stdin, tty)


@contextlib.contextmanager
def raw_terminal(enabled: bool):
    """Put the local terminal in raw mode for a remote TTY; restore it after."""
    if not enabled:
        yield
        return
    import termios
    import tty as tty_mod

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty_mod.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def exit_code_from_status(payload: bytes) -> int:
    """The remote exit code carried by a channel-3 Status document."""
    status = orjson.loads(payload)
    if status.get("status") == "Success":
        return 0
    causes = status.get("details", {}).get("causes", [])
    codes = [int(x["message"]) for x in causes if x.get("reason") == "ExitCode"]
    if codes:
        return codes[0]
    print(status.get("message", "exec failed"), file=sys.stderr)
    return 1


async def _relay(ws: Any, stdin: Any, tty: bool) -> int:
    import aiohttp

    from runtime.streaming import CLOSE, ERROR, RESIZE, STDERR, STDIN, STDOUT

    v5 = ws.protocol == "v5.channel.k8s.io"
    if tty and sys.stdout.isatty():
        size = os.get_terminal_size(sys.stdout.fileno())
        await ws.send_bytes(bytes([RESIZE]) + orjson.dumps({"Width": size.columns, "Height": size.lines}))

    async def send_stdin() -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        try:
            await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), stdin)
        except ValueError:
            # A regular file cannot be watched by the loop: read it in a thread.
            reader.feed_data(await asyncio.to_thread(stdin.buffer.read))
            reader.feed_eof()
        while chunk := await reader.read(32768):
            await ws.send_bytes(bytes([STDIN]) + chunk)
        if v5:
            await ws.send_bytes(bytes([CLOSE, STDIN]))

    code = 0
    feeder = asyncio.create_task(send_stdin()) if stdin is not None else None
    try:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.BINARY or not msg.data:
                continue
            channel, payload = msg.data[0], msg.data[1:]
            if channel == STDOUT and payload:
                sys.stdout.buffer.write(payload)
                sys.stdout.buffer.flush()
            elif channel == STDERR and payload:
                sys.stderr.buffer.write(payload)
                sys.stderr.buffer.flush()
            elif channel == ERROR and payload:
                code = exit_code_from_status(payload)
    finally:
        if feeder is not None:
            feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await feeder
    return code


async def cmd_exec(c: Client, a: argparse.Namespace) -> int:
    if not a.command:
        raise CLIError("exec needs a command")
    if a.sync:
        r = await c.call(c.rt.ExecSync, pb.ExecSyncRequest(container_id=a.container, cmd=a.command,
                                                          timeout=a.exec_timeout),
                         timeout=(a.exec_timeout or 3600) + c.timeout)
        sys.stdout.buffer.write(r.stdout)
        sys.stdout.buffer.flush()
        sys.stderr.buffer.write(r.stderr)
        sys.stderr.buffer.flush()
        return r.exit_code
    r = await c.call(c.rt.Exec, pb.ExecRequest(container_id=a.container, cmd=a.command, tty=a.tty,
                                               stdin=a.interactive, stdout=True, stderr=not a.tty))
    return await stream_session(r.url, stdin=sys.stdin if a.interactive else None, tty=a.tty)


async def cmd_attach(c: Client, a: argparse.Namespace) -> int:
    r = await c.call(c.rt.Attach, pb.AttachRequest(container_id=a.container, stdin=a.interactive, tty=a.tty,
                                                   stdout=True, stderr=not a.tty))
    return await stream_session(r.url, stdin=sys.stdin if a.interactive else None, tty=a.tty)


async def cmd_stop(c: Client, a: argparse.Namespace) -> int:
    for ctr in a.containers:
        await c.call(c.rt.StopContainer, pb.StopContainerRequest(container_id=ctr, timeout=a.stop_timeout),
                     timeout=a.stop_timeout + c.timeout)
        print(ctr)
    return 0


async def cmd_rm(c: Client, a: argparse.Namespace) -> int:
    ctrs = list(a.containers)
    if a.all:
        ctrs = [x.id for x in (await c.call(c.rt.ListContainers, pb.ListContainersRequest())).containers]
    for ctr in ctrs:
        if a.force:
            await c.call(c.rt.StopContainer, pb.StopContainerRequest(container_id=ctr, timeout=0))
        await c.call(c.rt.RemoveContainer, pb.RemoveContainerRequest(container_id=ctr))
        print(ctr)
    return 0


async def cmd_stats(c: Client, a: argparse.Namespace) -> int:
    f = pb.ContainerStatsFilter(id=a.id or "", pod_sandbox_id=a.pod or "", label_selector=parse_labels(a.label))
    first = {s.attributes.id: s for s in (await c.call(c.rt.ListContainerStats,
                                                       pb.ListContainerStatsRequest(filter=f))).stats}
    await asyncio.sleep(a.seconds)
    second = (await c.call(c.rt.ListContainerStats, pb.ListContainerStatsRequest(filter=f))).stats
    if a.output in ("json", "yaml"):
        print(dump({"stats": [message_json(s) for s in second]}, a.output))
        return 0
    rows = [["CONTAINER", "NAME", "CPU %", "MEM", "DISK", "INODES"]]
    for s in second:
        cpu = 0.0
        prev = first.get(s.attributes.id)
        if prev is not None and s.cpu.timestamp > prev.cpu.timestamp:
            used = s.cpu.usage_core_nano_seconds.value - prev.cpu.usage_core_nano_seconds.value
            cpu = 100.0 * used / (s.cpu.timestamp - prev.cpu.timestamp)
        rows.append([trunc(s.attributes.id), s.attributes.metadata.name, f"{cpu:.2f}",
                     human_size(s.memory.working_set_bytes.value), human_size(s.writable_layer.used_bytes.value),
                     str(s.writable_layer.inodes_used.value)])
    print(table(rows))
    return 0


# ---- arguments ---------------------------------------------------------------------------------

def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="navarch crictl", description="Talk to a CRI runtime.")
    p.add_argument("--runtime-endpoint", "-r", default=None, help="unix://PATH of the runtime socket")
    p.add_argument("--image-endpoint", default=None, help="ignored: images are served on the runtime socket")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per call")
    sub = p.add_subparsers(dest="verb", required=True)

    def verb(name: str, fn: Any, **kw: Any) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, **kw)
        sp.set_defaults(fn=fn)
        return sp

    def output(sp: argparse.ArgumentParser, default: str = "table") -> None:
        sp.add_argument("--output", "-o", choices=("json", "yaml", "table"), default=default)

    verb("version", cmd_version)
    output(verb("info", cmd_info), "json")
    sp = verb("pull", cmd_pull)
    sp.add_argument("image")
    sp.add_argument("--creds", default="")
    sp.add_argument("--auth", default="")
    sp.add_argument("--username", "-u", default="")
    sp.add_argument("--password", default="")
    sp.add_argument("--pod-config", default="")
    sp.add_argument("--pull-timeout", type=float, default=0)
    sp = verb("images", cmd_images, aliases=["image", "img"])
    sp.add_argument("image", nargs="?", default="")
    sp.add_argument("--quiet", "-q", action="store_true")
    sp.add_argument("--digests", action="store_true")
    output(sp)
    sp = verb("rmi", cmd_rmi)
    sp.add_argument("images", nargs="*")
    sp.add_argument("--all", "-a", action="store_true")
    sp = verb("inspecti", cmd_inspecti)
    sp.add_argument("images", nargs="+")
    output(sp, "json")
    output(verb("imagefsinfo", cmd_imagefsinfo), "json")
    sp = verb("attach", cmd_attach)
    sp.add_argument("--stdin", "-i", dest="interactive", action="store_true")
    sp.add_argument("--tty", "-t", action="store_true")
    sp.add_argument("container")
    sp = verb("runp", cmd_runp)
    sp.add_argument("config")
    sp.add_argument("--runtime", default="")
    sp = verb("pods", cmd_pods)
    for flag in ("--id", "--name", "--namespace", "--state"):
        sp.add_argument(flag, default="")
    sp.add_argument("-s", dest="state", default="")
    sp.add_argument("--label", action="append", default=[])
    sp.add_argument("--quiet", "-q", action="store_true")
    sp.add_argument("--latest", "-l", action="store_true")
    sp.add_argument("--last", type=int, default=0)
    sp.add_argument("--no-trunc", action="store_true")
    output(sp)
    sp = verb("stopp", cmd_stopp)
    sp.add_argument("pods", nargs="+")
    sp = verb("rmp", cmd_rmp)
    sp.add_argument("pods", nargs="*")
    sp.add_argument("--force", "-f", action="store_true")
    sp.add_argument("--all", "-a", action="store_true")
    sp = verb("create", cmd_create)
    sp.add_argument("pod")
    sp.add_argument("container_config")
    sp.add_argument("pod_config")
    sp.add_argument("--with-pull", action="store_true")
    sp.add_argument("--no-pull", action="store_true")
    sp = verb("start", cmd_start)
    sp.add_argument("containers", nargs="+")
    sp = verb("ps", cmd_ps)
    for flag in ("--id", "--name", "--state", "--pod", "--image"):
        sp.add_argument(flag, default="")
    sp.add_argument("-p", dest="pod", default="")
    sp.add_argument("--label", action="append", default=[])
    sp.add_argument("--all", "-a", action="store_true")
    sp.add_argument("--quiet", "-q", action="store_true")
    sp.add_argument("--latest", "-l", action="store_true")
    sp.add_argument("--last", "-n", type=int, default=0)
    sp.add_argument("--no-trunc", action="store_true")
    output(sp)
    sp = verb("inspect", cmd_inspect)
    sp.add_argument("containers", nargs="+")
    output(sp, "json")
    sp = verb("inspectp", cmd_inspectp)
    sp.add_argument("pods", nargs="+")
    output(sp, "json")
    sp = verb("logs", cmd_logs)
    sp.add_argument("container")
    sp.add_argument("--follow", "-f", action="store_true")
    sp.add_argument("--tail", type=int, default=None)
    sp.add_argument("--timestamps", "-t", action="store_true")
    sp = verb("exec", cmd_exec)
    sp.add_argument("--interactive", "-i", action="store_true")
    sp.add_argument("--tty", "-t", action="store_true")
    sp.add_argument("--sync", "-s", action="store_true")
    sp.add_argument("--timeout", dest="exec_timeout", type=int, default=0)
    sp.add_argument("container")
    sp.add_argument("command", nargs=argparse.REMAINDER)
    sp = verb("stop", cmd_stop)
    sp.add_argument("--timeout", "-t", dest="stop_timeout", type=int, default=10)
    sp.add_argument("containers", nargs="+")
    sp = verb("rm", cmd_rm)
    sp.add_argument("containers", nargs="*")
    sp.add_argument("--force", "-f", action="store_true")
    sp.add_argument("--all", "-a", action="store_true")
    sp = verb("stats", cmd_stats)
    sp.add_argument("id", nargs="?", default="")
    sp.add_argument("--pod", "-p", default="")
    sp.add_argument("--label", action="append", default=[])
    sp.add_argument("--all", "-a", action="store_true")
    sp.add_argument("--seconds", "-s", type=float, default=1.0)
    output(sp)
    return p


async def run(argv: list[str]) -> int:
    # The global --timeout comes before the verb; exec's and stop's own come after it.
    args = parser().parse_args(argv)
    endpoint = args.runtime_endpoint or os.environ.get("CONTAINER_RUNTIME_ENDPOINT") or DEFAULT_ENDPOINT
    client = Client(endpoint, args.timeout)
    try:
        return await args.fn(client, args)
    finally:
        await client.close()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        return asyncio.run(run(argv))
    except grpc.aio.AioRpcError as e:
        print(f"error: {e.code().name}: {e.details()}", file=sys.stderr)
        return 1
    except CLIError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 141


if __name__ == "__main__":
    sys.exit(main())
