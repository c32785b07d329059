"""``RuncDriver``: the ``runtime.driver.Driver`` that runs containers with runc on this host.

Everything a restarted daemon needs is on disk. Per container, in its state dir (which is
also the OCI bundle): ``config.json``, ``rootfs``/``upper``/``work`` (overlay), ``driver.json``
(what create decided), ``shim.json``/``shim.pid`` (the shim), ``started.json``, ``status.json``
(written by the shim on exit) or ``start_error.json``. Per sandbox, in its state dir: the pod's
``hostname``/``resolv.conf``/``hosts`` and ``network.json`` (namespaces and the CNI result).
Namespace files live under ``<root>/netns`` and ``<root>/ns``; runc's own state under
``<root>/runc``; IPAM reservations under ``<root>/cni``.

Host work that needs a fresh process goes through one long-lived child, the shim factory
(``shim.py --factory``): it forks a detached shim per container start, and a short child per
pod to make its namespaces. Exits are noticed through a pidfd on each shim.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import shutil
import signal
import socket
import struct
import sys
import termios
import threading
import time
import tty
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import structlog

from runtime.driver import (
    ContainerRunState,
    ContainerSpec,
    ContainerUsage,
    DriverError,
    ExecSession,
    NotFoundError,
    Resources,
    SandboxNetwork,
    SandboxSpec,
    StartError,
)

from . import cgroups, rootfs, syscalls
from . import spec as ocispec
from .network import CNI, Attachment
from .runc import Runc, RuncError
from .sandbox import Namespaces, create_namespaces, namespace_paths, release_namespaces, write_pod_files

log = structlog.get_logger(component="runtime.linux")

SHIM = str(Path(__file__).with_name("shim.py"))
SHIM_REPLY_WAIT = 120.0   # seconds for a shim to report the container running (runc run)
KILL_WAIT = 10.0       # seconds to wait for an exit after SIGKILL before asking runc directly


class ExecTimeoutError(DriverError, TimeoutError):
    """ExecSync ran past its timeout; the process was killed."""


def _read_json(path: Path) -> dict | None:
    try:
        return orjson.loads(path.read_bytes())
    except (FileNotFoundError, NotADirectoryError):
        return None
    except orjson.JSONDecodeError:
        return None


def _write_json(path: Path, obj: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(orjson.dumps(obj))
    os.replace(tmp, path)


def _signal_number(name: str | int | None) -> int:
    if name is None or name == "":
        return signal.SIGTERM
    if isinstance(name, int) or str(name).isdigit():
        return int(name)
    n = str(name).upper()
    if not n.startswith("SIG"):
        n = "SIG" + n
    try:
        return int(signal.Signals[n])
    except KeyError:
        return signal.SIGTERM


def _start_error_code(message: str) -> int:
    """127 when the command does not exist (as a shell says), 128 for any other start failure."""
    m = message.lower()
    missing = "executable file not found" in m or ("exec" in m and "no such file or directory" in m)
    return 127 if missing else 128


@dataclass
class _Container:
    id: str
    sandbox_id: str
    state_dir: Path
    cgroups_path: str
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    shim_pid: int = 0
    pidfd: int = -1


class RuncDriver:
    def __init__(self, root: Path, cni_bin_dir: str = "/usr/lib/cni", pod_cidr: str = "10.88.0.0/16",
                 runc: str = "runc", *, bridge: str = "navarch0", cgroup_parent: str = "/navarch"):
        self.root = Path(root)
        self.cni_bin_dir = cni_bin_dir
        self.pod_cidr = pod_cidr
        self.bridge = bridge
        self.cgroup_parent = "/" + cgroup_parent.strip("/")
        self.runc = Runc(runc, str(self.root / "runc"))
        self.cni: CNI | None = None
        self._containers: dict[str, _Container] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._shims = ShimFactory(self.root / "shims.log")
        self._tasks: set[asyncio.Future] = set()

    # ---- lifecycle of the driver

    def _ensure_cni(self) -> CNI:
        if self.cni is None:
            self.cni = CNI(self.root, self.cni_bin_dir, self.pod_cidr, self.bridge)
        return self.cni

    async def start(self, sandboxes: list[SandboxSpec], containers: list[ContainerSpec]) -> None:
        def prepare() -> None:
            for d in ("runc", "netns", "ns"):
                (self.root / d).mkdir(parents=True, exist_ok=True)
            self._ensure_cni()
        await asyncio.to_thread(prepare)
        for c in containers:
            await self._recover(c)
        await self._shims.ensure()

    async def close(self) -> None:
        await self._shims.close()
        loop = asyncio.get_running_loop()
        for c in self._containers.values():
            if c.pidfd >= 0:
                loop.remove_reader(c.pidfd)
                os.close(c.pidfd)
                c.pidfd = -1

    def _lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    # ---- sandboxes

    async def run_sandbox(self, spec: SandboxSpec) -> SandboxNetwork:
        ns = namespace_paths(self.root, spec.id, spec.host_network)

        def prepare() -> CNI:
            spec.state_dir.mkdir(parents=True, exist_ok=True)
            return self._ensure_cni()
        cni = await asyncio.to_thread(prepare)
        await create_namespaces(ns, spec.hostname or spec.name, self._shims)
        att = Attachment(ns.net, "", {}, [])
        try:
            if not spec.host_network:
                att = await cni.attach(spec.id, ns.net, spec.port_mappings)

            def save() -> None:
                self._save_network(spec, ns, att, True)
                write_pod_files(spec.state_dir, spec.hostname or spec.name, spec.host_network, spec.dns, att.ip)
            await asyncio.to_thread(save)
        except BaseException:
            with contextlib.suppress(Exception):
                if att.ip:
                    await cni.detach(spec.id, att)
            await asyncio.to_thread(release_namespaces, ns)
            raise
        return SandboxNetwork(netns_path=ns.net, ip=att.ip)

    def _save_network(self, spec: SandboxSpec, ns: Namespaces, att: Attachment, attached: bool) -> None:
        _write_json(spec.state_dir / "network.json", {
            "namespaces": {"net": ns.net, "ipc": ns.ipc, "uts": ns.uts},
            "attachment": att.to_json(), "attached": attached,
        })

    async def stop_sandbox(self, spec: SandboxSpec) -> None:
        async with self._lock("sandbox:" + spec.id):
            await asyncio.gather(*(self._kill_now(c) for c in self._containers.values()
                                   if c.sandbox_id == spec.id))
            saved = await asyncio.to_thread(_read_json, spec.state_dir / "network.json")
            ns = namespace_paths(self.root, spec.id, spec.host_network)
            if saved and saved.get("attached"):
                att = Attachment.from_json(saved["attachment"])
                if not spec.host_network and (att.ip or att.result):
                    await self._ensure_cni_async()
                    assert self.cni is not None
                    await self.cni.detach(spec.id, att)
                ns = Namespaces(**saved["namespaces"])
                await asyncio.to_thread(self._save_network, spec, ns, att, False)
            await asyncio.to_thread(release_namespaces, ns)

    async def _ensure_cni_async(self) -> None:
        if self.cni is None:
            await asyncio.to_thread(self._ensure_cni)

    async def remove_sandbox(self, spec: SandboxSpec) -> None:
        await self.stop_sandbox(spec)
        for c in [c for c in self._containers.values() if c.sandbox_id == spec.id]:
            await self._remove(c)
        await asyncio.to_thread(self._remove_sandbox_dirs, spec)

    def _remove_sandbox_dirs(self, spec: SandboxSpec) -> None:
        rootfs.remove_state(spec.state_dir)
        shutil.rmtree(self.root / "ns" / spec.id, ignore_errors=True)
        if spec.cgroup_parent:
            # runc creates a missing parent cgroup for the pod's containers; an empty one goes too.
            for d in cgroups.dirs(spec.cgroup_parent):
                with contextlib.suppress(OSError):
                    os.rmdir(d)

    # ---- containers

    def _record(self, spec: ContainerSpec, meta: dict) -> _Container:
        c = self._containers.get(spec.id)
        if c is None:
            c = _Container(spec.id, meta.get("sandbox_id", spec.sandbox_id), spec.state_dir,
                           meta.get("cgroups_path", ""))
            self._containers[spec.id] = c
        return c

    async def create_container(self, spec: ContainerSpec, sandbox: SandboxSpec,
                               network: SandboxNetwork) -> None:
        ns = namespace_paths(self.root, sandbox.id, sandbox.host_network)
        parent = "/" + sandbox.cgroup_parent.strip("/") if sandbox.cgroup_parent else self.cgroup_parent
        cgroups_path = f"{parent.rstrip('/')}/{spec.id}"
        state = spec.state_dir

        def prepare() -> dict:
            for p in ns.paths():
                if not os.path.exists(p):
                    raise NotFoundError(f"sandbox {sandbox.id} has no namespaces (stopped?)")
            state.mkdir(parents=True, exist_ok=True)
            target = rootfs.mount_rootfs(state, [Path(p) for p in spec.image.layer_dirs])
            try:
                cfg = spec.image.config or {}
                user = ocispec.resolve_user(target, cfg.get("User", ""), spec.security)
                devices = ocispec.host_devices() if spec.security.privileged else None
                oci = ocispec.build(spec, rootfs=str(target), namespaces=ns, pod_dir=sandbox.state_dir,
                                    hostname=sandbox.hostname or sandbox.name, cgroups_path=cgroups_path,
                                    user=user, devices=devices)
                for m in spec.mounts:
                    if not os.path.exists(m.host_path):
                        os.makedirs(m.host_path, exist_ok=True)
                _write_json(state / "config.json", oci)
                meta = {"sandbox_id": sandbox.id, "cgroups_path": cgroups_path,
                        "stop_signal": _signal_number(cfg.get("StopSignal")), "created_at": time.time_ns()}
                _write_json(state / "shim.json", {
                    "id": spec.id, "bundle": str(state), "runc": self.runc.binary, "runc_root": self.runc.root,
                    "log_path": spec.log_path, "stdin": spec.stdin, "stdin_once": spec.stdin_once,
                    "tty": spec.tty, "oom_files": cgroups.oom_files(cgroups_path),
                })
                _write_json(state / "driver.json", meta)
                return meta
            except BaseException:
                rootfs.remove_state(state)
                raise

        meta = await asyncio.to_thread(prepare)
        self._record(spec, meta)

    async def start_container(self, spec: ContainerSpec) -> None:
        async with self._lock(spec.id):
            state = spec.state_dir

            def claim() -> tuple[dict, int]:
                meta = _read_json(state / "driver.json")
                if meta is None:
                    raise NotFoundError(f"container {spec.id} not found")
                if self._was_started(state):
                    raise DriverError(f"container {spec.id} was already started")
                # Written before the shim runs the container: a short process may have exited
                # (and its status.json be there) by the time the shim replies.
                started_at = time.time_ns()
                _write_json(state / "started.json", {"started_at": started_at, "pid": 0, "shim_pid": 0})
                return meta, started_at

            meta, started_at = await asyncio.to_thread(claim)
            c = self._record(spec, meta)
            reply = await self._shims.spawn(str(state))
            if not reply.get("ok"):
                with contextlib.suppress(RuncError):
                    await self.runc.delete(spec.id)
                await self._start_failed(c, reply.get("error", "runc run failed"))
            c.shim_pid = reply["shim_pid"]
            await asyncio.to_thread(_write_json, state / "started.json",
                                    {"started_at": started_at, "pid": reply["pid"], "shim_pid": c.shim_pid})
            self._watch(c)

    @staticmethod
    def _was_started(state: Path) -> bool:
        return any((state / f).exists() for f in ("started.json", "start_error.json", "shim.pid"))

    async def _start_failed(self, c: _Container, message: str) -> None:
        code = _start_error_code(message)
        await asyncio.to_thread(_write_json, c.state_dir / "start_error.json",
                                {"exit_code": code, "message": message, "finished_at": time.time_ns()})
        c.exited.set()
        log.info("container failed to start", container=c.id[:13], exit_code=code, error=message)
        raise StartError(message, code)

    def _watch(self, c: _Container) -> None:
        """Set ``c.exited`` when the shim exits (it writes status.json first)."""
        if c.exited.is_set() or c.pidfd >= 0 or not c.shim_pid:
            return
        try:
            fd = os.pidfd_open(c.shim_pid)
        except ProcessLookupError:
            self._background(self._shim_gone(c))
            return
        c.pidfd = fd
        loop = asyncio.get_running_loop()

        def on_exit() -> None:
            loop.remove_reader(fd)
            os.close(fd)
            c.pidfd = -1
            self._background(self._shim_gone(c))
        loop.add_reader(fd, on_exit)

    async def _shim_gone(self, c: _Container) -> None:
        """The shim is gone; if it left no status the container's fate is unknown to us."""
        try:
            if not await asyncio.to_thread((c.state_dir / "status.json").exists):
                st = await self.runc.state(c.id)
                if st is not None and st.get("status") in ("running", "paused", "created"):
                    # Still running without its shim: watch the init process itself.
                    pid = int(st.get("pid") or 0)
                    if pid and await self._watch_pid(c, pid):
                        log.warning("container runs without its shim; watching its process",
                                    container=c.id[:13], pid=pid)
                        return
                log.warning("container shim gone without an exit status", container=c.id[:13])
                await asyncio.to_thread(_write_json, c.state_dir / "status.json", {
                    "exit_code": 255, "signal": 0, "finished_at": time.time_ns(), "oom": False,
                    "message": "the container's shim exited without recording an exit status"})
        except (OSError, DriverError):
            pass    # removed meanwhile, or runc cannot tell: either way nothing is left to watch
        c.exited.set()

    def _background(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _watch_pid(self, c: _Container, pid: int) -> bool:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            return False
        loop = asyncio.get_running_loop()
        c.pidfd = fd

        def on_exit() -> None:
            loop.remove_reader(fd)
            os.close(fd)
            c.pidfd = -1
            c.shim_pid = 0
            self._background(self._shim_gone(c))
        loop.add_reader(fd, on_exit)
        return True

    async def _recover(self, spec: ContainerSpec) -> None:
        meta = await asyncio.to_thread(_read_json, spec.state_dir / "driver.json")
        if meta is None:
            return
        c = self._record(spec, meta)

        def files() -> tuple[dict | None, bool, bool]:
            started = _read_json(spec.state_dir / "started.json")
            done = (spec.state_dir / "status.json").exists() or (spec.state_dir / "start_error.json").exists()
            ours = False
            if started:
                # The pid is our shim if it runs shim.py with its working directory in this state dir.
                pid = started["shim_pid"]
                try:
                    if not pid:     # the daemon went away before the shim replied
                        pid = int((spec.state_dir / "shim.pid").read_text())
                        started["shim_pid"] = pid
                        started["pid"] = int((spec.state_dir / "init.pid").read_text())
                        _write_json(spec.state_dir / "started.json", started)
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
                    ours = SHIM in cmdline and os.readlink(f"/proc/{pid}/cwd") == os.path.realpath(spec.state_dir)
                except (OSError, ValueError):
                    pass
            return started, done, ours

        started, done, ours = await asyncio.to_thread(files)
        if done:
            c.exited.set()
            return
        if not started:
            return
        if ours:
            c.shim_pid = started["shim_pid"]
            self._watch(c)
        else:
            await self._shim_gone(c)

    async def container_state(self, spec: ContainerSpec) -> ContainerRunState:
        def read() -> tuple[dict | None, dict | None, dict | None, dict | None]:
            d = spec.state_dir
            return (_read_json(d / "driver.json"), _read_json(d / "started.json"),
                    _read_json(d / "status.json"), _read_json(d / "start_error.json"))

        meta, started, status, failed = await asyncio.to_thread(read)
        if meta is None:
            raise NotFoundError(f"container {spec.id} not found")
        if failed:
            return ContainerRunState("EXITED", exit_code=failed["exit_code"], reason="StartError",
                                     message=failed["message"], finished_at=failed["finished_at"])
        if started is None:
            return ContainerRunState("CREATED")
        if status is None:
            return ContainerRunState("RUNNING", pid=started["pid"], started_at=started["started_at"])
        code = status["exit_code"]
        reason = "OOMKilled" if status.get("oom") else ("Completed" if code == 0 else "Error")
        return ContainerRunState("EXITED", exit_code=code, reason=reason, message=status.get("message", ""),
                                 started_at=started["started_at"], finished_at=status["finished_at"])

    async def _container(self, spec: ContainerSpec) -> _Container:
        c = self._containers.get(spec.id)
        if c is None:
            meta = await asyncio.to_thread(_read_json, spec.state_dir / "driver.json")
            if meta is None:
                raise NotFoundError(f"container {spec.id} not found")
            await self._recover(spec)
            c = self._containers[spec.id]
        return c

    async def _running(self, c: _Container) -> bool:
        if c.exited.is_set():
            return False
        return await asyncio.to_thread((c.state_dir / "started.json").exists)

    async def stop_container(self, spec: ContainerSpec, timeout: int) -> None:
        c = await self._container(spec)
        async with self._lock(spec.id):
            if not await self._running(c):
                return
            meta = await asyncio.to_thread(_read_json, c.state_dir / "driver.json") or {}
            if timeout > 0:
                if await self.runc.kill(c.id, str(meta.get("stop_signal", signal.SIGTERM))):
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(c.exited.wait(), timeout)
            await self._kill_now(c)

    async def _kill_now(self, c: _Container) -> None:
        if c.exited.is_set() or not await self._running(c):
            return
        await self.runc.kill(c.id, "KILL", all_processes=True)
        try:
            await asyncio.wait_for(c.exited.wait(), KILL_WAIT)
        except TimeoutError:
            st = await self.runc.state(c.id)
            if st is not None and st.get("status") == "running":
                raise DriverError(f"container {c.id} did not stop after SIGKILL") from None

    async def remove_container(self, spec: ContainerSpec) -> None:
        c = self._containers.get(spec.id)
        if c is None:
            if not await asyncio.to_thread(spec.state_dir.exists):
                return
            c = await self._container(spec)
        async with self._lock(spec.id):
            await self._remove(c)

    async def _remove(self, c: _Container) -> None:
        if await self._running(c):
            await self._kill_now(c)
        await self.runc.delete(c.id)
        if c.pidfd >= 0:
            asyncio.get_running_loop().remove_reader(c.pidfd)
            os.close(c.pidfd)
            c.pidfd = -1
        await asyncio.to_thread(rootfs.remove_state, c.state_dir)
        self._containers.pop(c.id, None)
        self._locks.pop(c.id, None)

    async def update_resources(self, spec: ContainerSpec, resources: Resources) -> None:
        c = await self._container(spec)
        if not await self._running(c):
            raise DriverError(f"container {spec.id} is not running")
        await self.runc.update(c.id, ocispec.linux_resources(resources))

    async def reopen_log(self, spec: ContainerSpec) -> None:
        c = await self._container(spec)
        if not c.shim_pid or not await self._running(c):
            raise DriverError(f"container {spec.id} is not running")
        os.kill(c.shim_pid, signal.SIGUSR1)

    # ---- processes inside containers

    async def _require_running(self, spec: ContainerSpec) -> _Container:
        c = await self._container(spec)
        if not await self._running(c):
            raise DriverError(f"container {spec.id} is not running")
        return c

    async def exec_sync(self, spec: ContainerSpec, cmd: list[str], timeout: int) -> tuple[bytes, bytes, int]:
        c = await self._require_running(spec)
        pid_file = c.state_dir / f"exec-{uuid.uuid4().hex[:12]}.pid"
        proc = await asyncio.create_subprocess_exec(
            *self.runc.argv("exec", "--pid-file", str(pid_file), c.id, *cmd),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout if timeout > 0 else None)
        except TimeoutError:
            await asyncio.to_thread(self._kill_exec, pid_file)
            await proc.communicate()
            raise ExecTimeoutError(f"command {cmd!r} timed out after {timeout}s") from None
        finally:
            await asyncio.to_thread(lambda: pid_file.unlink(missing_ok=True))
        assert proc.returncode is not None
        return out, err, proc.returncode

    @staticmethod
    def _kill_exec(pid_file: Path) -> None:
        try:
            pid = int(pid_file.read_text().strip())
            os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError):
            pass

    async def exec(self, spec: ContainerSpec, cmd: list[str], *, tty: bool, stdin: bool) -> ExecSession:
        c = await self._require_running(spec)
        if not tty:
            proc = await asyncio.create_subprocess_exec(
                *self.runc.argv("exec", c.id, *cmd),
                stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            return ExecSession(stdin=proc.stdin, stdout=proc.stdout, stderr=proc.stderr,  # type: ignore[arg-type]
                               wait=asyncio.ensure_future(proc.wait()))
        return await self._exec_tty(c, cmd, stdin)

    async def _exec_tty(self, c: _Container, cmd: list[str], want_stdin: bool) -> ExecSession:
        """``runc exec -t`` in the foreground on a pty of ours: runc relays between that pty and
        the container's, and forwards our window size when it gets SIGWINCH."""
        loop = asyncio.get_running_loop()
        master, slave = os.openpty()
        # Raw from the start: our pty only carries bytes to runc; the container's own terminal
        # does echo and line editing (and turns ^D into end of input).
        tty.setraw(slave)
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.runc.argv("exec", "--tty", c.id, *cmd), stdin=slave, stdout=slave, stderr=slave,
                start_new_session=True)
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        os.set_blocking(master, False)
        reader = _fd_reader(master)
        writer = None
        if want_stdin:
            protocol = asyncio.streams.FlowControlMixin(loop)
            writer = asyncio.StreamWriter(_TtyWriteTransport(loop, os.dup(master), protocol), protocol, None, loop)

        def resize(width: int, height: int) -> None:
            with contextlib.suppress(OSError):
                fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))
                if proc.returncode is None:
                    os.kill(proc.pid, signal.SIGWINCH)
        return ExecSession(stdin=writer, stdout=reader, stderr=None, wait=asyncio.ensure_future(proc.wait()),
                           resize=resize)

    async def attach(self, spec: ContainerSpec, *, stdin: bool) -> ExecSession:
        c = await self._require_running(spec)
        loop = asyncio.get_running_loop()
        r = asyncio.StreamReader()
        protocol = asyncio.StreamReaderProtocol(r)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            # Connected by hand: not every event loop takes an abstract socket name as a path.
            await loop.sock_connect(sock, "\0navarch-attach-" + c.id)
            transport, _ = await loop.create_unix_connection(lambda: protocol, sock=sock)
        except OSError as e:
            sock.close()
            raise DriverError(f"attach to {spec.id}: {e}") from e
        out, err = _BoundedReader(), _BoundedReader()
        w = _HalfCloseWriter(transport, protocol, r, loop)
        done: asyncio.Future[int] = loop.create_future()

        async def demux() -> None:
            code = -1
            try:
                while not (out.overflowed or err.overflowed):   # nobody reads any more: let go
                    head = await r.readexactly(5)
                    kind, n = struct.unpack(">BI", head)
                    data = await r.readexactly(n)
                    if kind == 1:
                        out.feed_data(data)
                    elif kind == 2:
                        err.feed_data(data)
                    elif kind == 3:
                        code = struct.unpack(">i", data)[0]
                        break
            except (asyncio.IncompleteReadError, OSError):
                pass
            finally:
                out.feed_eof()
                err.feed_eof()
                transport.close()
                if code < 0:
                    with contextlib.suppress(DriverError):
                        code = (await self.container_state(spec)).exit_code
                if not done.done():
                    done.set_result(code)
        self._background(demux())
        w.write(b"I" if stdin else b"O")
        if not stdin:
            w.write_eof()
        return ExecSession(stdin=w if stdin else None, stdout=out, stderr=None if spec.tty else err, wait=done)

    async def port_forward(self, sandbox: SandboxSpec, network: SandboxNetwork,
                           port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if sandbox.host_network or not network.netns_path:
            try:
                return await asyncio.open_connection("127.0.0.1", port)
            except OSError as e:
                raise DriverError(f"port-forward to port {port} on the host network: {e}") from e
        try:
            sock = await _in_thread(_connect_in_netns, network.netns_path, port)
        except OSError as e:
            raise DriverError(f"port-forward to port {port} in sandbox {sandbox.id}: {e}") from e
        return await asyncio.open_connection(sock=sock)

    # ---- stats

    async def container_usage(self, spec: ContainerSpec) -> ContainerUsage:
        c = await self._container(spec)

        def read() -> ContainerUsage:
            cpu, ws, usage = cgroups.usage(c.cgroups_path)
            return ContainerUsage(timestamp=time.time_ns(), cpu_usage_core_nanoseconds=cpu,
                                  memory_working_set_bytes=ws, memory_usage_bytes=usage,
                                  writable_layer_bytes=rootfs.writable_layer_bytes(c.state_dir))
        return await asyncio.to_thread(read)

    # ---- introspection for tests and tools

    def cgroups_path(self, container_id: str) -> str:
        c = self._containers.get(container_id)
        return c.cgroups_path if c else ""


class ShimFactory:
    """A ``shim.py --factory`` child that forks one shim per container start.

    Replies come back on its stdout, one JSON line each, tagged with the state dir. The factory
    is our child; the shims it forks are not (they detach), so they outlive us and it.
    """

    def __init__(self, log_path: Path):
        self.log_path = log_path
        self.proc: asyncio.subprocess.Process | None = None
        self.reader: asyncio.Task | None = None
        self.pending: dict[str, asyncio.Future] = {}
        self.lock = asyncio.Lock()

    async def ensure(self) -> asyncio.subprocess.Process:
        async with self.lock:
            if self.proc is None or self.proc.returncode is not None:
                log = await asyncio.to_thread(open, self.log_path, "ab")
                try:
                    self.proc = await asyncio.create_subprocess_exec(
                        sys.executable, "-S", SHIM, "--factory", stdin=asyncio.subprocess.PIPE,
                        stdout=asyncio.subprocess.PIPE, stderr=log)
                finally:
                    log.close()
                self.reader = asyncio.create_task(self._read(self.proc), name="shim-factory-replies")
            return self.proc

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        try:
            async for line in proc.stdout:
                try:
                    reply = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                fut = self.pending.pop(reply.get("dir", ""), None)
                if fut is not None and not fut.done():
                    fut.set_result(reply)
        finally:
            for fut in self.pending.values():
                if not fut.done():
                    fut.set_exception(DriverError("the shim factory exited"))
            self.pending.clear()

    async def spawn(self, state_dir: str) -> dict:
        """Fork a shim for the container whose state dir this is; its reply once runc has run."""
        return await self.request(state_dir, state_dir)

    async def request(self, key: str, job: str | dict) -> dict:
        """Send one job line; the reply is the JSON line the factory's child tags with ``key``."""
        line = orjson.dumps(job) if isinstance(job, dict) else job.encode()
        fut = asyncio.get_running_loop().create_future()
        for attempt in range(2):
            proc = await self.ensure()
            self.pending[key] = fut
            assert proc.stdin is not None
            try:
                proc.stdin.write(line + b"\n")
                await proc.stdin.drain()
                break
            except (BrokenPipeError, ConnectionResetError):
                # The factory died between requests: start another and ask again.
                self.pending.pop(key, None)
                await proc.wait()
                if attempt:
                    raise DriverError("the shim factory is not accepting requests") from None
        try:
            return await asyncio.wait_for(fut, SHIM_REPLY_WAIT)
        except TimeoutError:
            self.pending.pop(key, None)
            return {"ok": False, "error": "the shim factory's child did not reply in time"}

    async def close(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.returncode is None:
            assert proc.stdin is not None
            proc.stdin.close()          # EOF: the factory exits; running shims are not its children
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                proc.kill()             # our own child, by its pid
                await proc.wait()
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.reader


ATTACH_BUFFER = 1 << 20


class _BoundedReader(asyncio.StreamReader):
    """Holds at most ATTACH_BUFFER unread bytes; past that it drops output and says so (an
    attach whose client went away must not buffer a chatty container's output forever)."""

    overflowed = False

    def feed_data(self, data: bytes) -> None:
        if len(self._buffer) > ATTACH_BUFFER:
            self.overflowed = True
            return
        super().feed_data(data)


class _HalfCloseWriter(asyncio.StreamWriter):
    """Closing an attach session's stdin ends the container's input, not the output stream."""

    def close(self) -> None:
        if self.can_write_eof() and not self.transport.is_closing():
            self.write_eof()


class _TtyWriteTransport(asyncio.WriteTransport):
    """Writes to a pty master. (An event loop's own write-pipe transport may also read from the
    fd to notice the far end closing, which on a pty would eat the process's output.)
    Closing sends end-of-transmission, which a terminal in canonical mode reads as end of input."""

    HIGH_WATER = 64 * 1024

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int, protocol: asyncio.BaseProtocol):
        super().__init__()
        self._loop, self._fd, self._protocol = loop, fd, protocol
        self._buffer = bytearray()
        self._closing = self._closed = self._paused = False

    def write(self, data: bytes) -> None:
        if self._closing or not data:
            return
        self._buffer += data
        self._flush()
        if self._buffer and not self._paused and len(self._buffer) > self.HIGH_WATER:
            self._paused = True
            self._protocol.pause_writing()     # type: ignore[attr-defined]

    def _flush(self) -> None:
        if self._closed:
            return
        try:
            while self._buffer:
                n = os.write(self._fd, self._buffer)
                del self._buffer[:n]
        except BlockingIOError:
            self._loop.add_writer(self._fd, self._flush)
            return
        except OSError:
            self._buffer.clear()               # the terminal is gone: nothing more can be written
        self._loop.remove_writer(self._fd)
        if self._paused:
            self._paused = False
            self._protocol.resume_writing()    # type: ignore[attr-defined]
        if self._closing:
            self._finish()

    def _finish(self) -> None:
        if not self._closed:
            self._closed = True
            self._loop.remove_writer(self._fd)
            os.close(self._fd)
            self._protocol.connection_lost(None)

    def close(self) -> None:
        if not self._closing:
            self.write(b"\x04")
            self._closing = True
            if not self._buffer:
                self._finish()

    def abort(self) -> None:
        self._closing = True
        self._buffer.clear()
        self._finish()

    def is_closing(self) -> bool:
        return self._closing

    def can_write_eof(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return len(self._buffer)


def _fd_reader(fd: int) -> asyncio.StreamReader:
    """A StreamReader fed from a non-blocking fd (a pty master: EIO means the other side closed)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()

    def ready() -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError as e:
            if e.errno != errno.EIO:
                reader.set_exception(e)
            data = b""
        if data:
            reader.feed_data(data)
            return
        loop.remove_reader(fd)
        os.close(fd)
        reader.feed_eof()
    loop.add_reader(fd, ready)
    return reader


async def _in_thread(fn, *args):
    """Run ``fn`` in a fresh thread: setns changes the calling thread, never a pooled one."""
    loop = asyncio.get_running_loop()
    fut = loop.create_future()

    def run() -> None:
        try:
            res = fn(*args)
        except BaseException as e:  # noqa: BLE001 - handed to the awaiting coroutine
            loop.call_soon_threadsafe(_settle, fut, None, e)
        else:
            loop.call_soon_threadsafe(_settle, fut, res, None)
    threading.Thread(target=run, name="netns-dial", daemon=True).start()
    return await fut


def _settle(fut: asyncio.Future, result, exc: BaseException | None) -> None:
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(result)


def _connect_in_netns(netns: str, port: int) -> socket.socket:
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(netns, os.O_RDONLY)
    try:
        syscalls.setns(target, syscalls.CLONE_NEWNET)
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        finally:
            syscalls.setns(own, syscalls.CLONE_NEWNET)
    finally:
        os.close(own)
        os.close(target)
    sock.setblocking(False)
    return sock
