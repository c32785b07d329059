"""Per-container shim: ``python shim.py STATE_DIR`` (stdlib only), or forked by a factory,
``python shim.py --factory``, which reads one STATE_DIR per line from stdin.

It daemonizes, runs ``runc run --detach`` (create and start in one runc call) with pipes (or a
console) as the container's stdio, and
then outlives the daemon: it writes the container's output to the CRI log at ``log_path``
(``<RFC3339Nano> <stdout|stderr> <P|F> <line>``, P for pieces of lines over 16 KiB), reaps
the container's init (it is a child subreaper), and records exit code, finish time and OOM
kills into ``status.json`` in the state dir. SIGUSR1 reopens the log file. An abstract unix
socket ``@navarch-attach-<id>`` serves attach clients.

Input: ``STATE_DIR/shim.json`` with id, bundle, runc, runc_root, log_path, stdin, stdin_once,
tty, oom_files. Output: one JSON line on stdout, ``{"ok": true, "dir": STATE_DIR, "pid": N, "shim_pid": M}`` or
``{"ok": false, "dir": STATE_DIR, "error": "..."}``, after which the shim lets go of stdout.

Attach protocol: the client first sends ``I`` (it will send stdin) or ``O`` (output only); then
frames from the shim are ``<1 byte kind><4 bytes big-endian length><data>``, kind 1 stdout,
2 stderr, 3 exit (data: 4-byte exit code), and further bytes from an ``I`` client go to the
container's stdin (when it has one; with stdin_once, that client's EOF closes it).
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

MAX_LINE = 16 * 1024
PR_SET_CHILD_SUBREAPER = 36


def rfc3339nano(ns: int) -> str:
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


class CRILog:
    """Line-splitting writer of the CRI log format; one buffer per stream."""

    def __init__(self, path: str):
        self.path = path
        self.buf: dict[str, bytes] = {"stdout": b"", "stderr": b""}
        self.f = None
        self.reopen()

    def reopen(self) -> None:
        if self.f is not None:
            self.f.close()
            self.f = None
        if self.path:
            os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
            self.f = open(self.path, "ab", buffering=0)  # noqa: SIM115 - lives as long as the shim

    def _emit(self, stream: str, tag: str, line: bytes) -> None:
        if self.f is not None:
            self.f.write(f"{rfc3339nano(time.time_ns())} {stream} {tag} ".encode() + line + b"\n")

    def write(self, stream: str, data: bytes) -> None:
        buf = self.buf[stream] + data
        while True:
            nl = buf.find(b"\n")
            if nl == -1 or nl > MAX_LINE:
                if len(buf) >= MAX_LINE:
                    self._emit(stream, "P", buf[:MAX_LINE])
                    buf = buf[MAX_LINE:]
                    continue
                break
            line = buf[:nl]
            if line.endswith(b"\r"):
                line = line[:-1]
            self._emit(stream, "F", line)
            buf = buf[nl + 1:]
        self.buf[stream] = buf

    def finish(self, stream: str) -> None:
        if self.buf[stream]:
            self._emit(stream, "F", self.buf[stream])
            self.buf[stream] = b""


def write_json_atomic(path: str, obj: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


def read_oom(files: list[str]) -> bool:
    for path in files:
        try:
            with open(path) as f:
                for line in f:
                    key, _, val = line.partition(" ")
                    if key == "oom_kill" and int(val) > 0:
                        return True
        except (OSError, ValueError):
            continue
    return False


def runc_error(log_path: str, stderr: bytes) -> str:
    msg = ""
    try:
        with open(log_path) as f:
            for line in f:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if entry.get("level") in ("error", "fatal"):
                    msg = entry.get("msg", msg)
    except OSError:
        pass
    return msg or stderr.decode(errors="replace").strip() or "runc run failed"


def receive_console(listener: socket.socket, out: list) -> None:
    try:
        conn, _ = listener.accept()
        with conn:
            _msg, fds, _flags, _addr = socket.recv_fds(conn, 4096, 1)
            out.extend(fds)
    except OSError:
        pass


def reply(obj: dict) -> None:
    # One write of one line: shims forked by one factory share its stdout.
    os.write(1, (json.dumps(obj) + "\n").encode())


def main(state_dir: str) -> int:
    with open(os.path.join(state_dir, "shim.json")) as f:
        cfg = json.load(f)
    # Detach: the daemon sees its direct child exit at once and the shim is not its child.
    if os.fork():
        os._exit(0)
    os.setsid()
    os.chdir(state_dir)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    with open("shim.pid", "w") as f:
        f.write(str(os.getpid()))

    cid = cfg["id"]
    runc_log = os.path.join(state_dir, "runc.log")
    argv = [cfg["runc"], "--root", cfg["runc_root"], "--log", runc_log, "--log-format", "json",
            "run", "--detach", "--bundle", cfg["bundle"], "--pid-file", os.path.join(state_dir, "init.pid")]
    devnull = os.open(os.devnull, os.O_RDWR)
    readers: dict[int, str] = {}
    stdin_w = -1
    console_fds: list[int] = []
    listener = None
    if cfg.get("tty"):
        name = f"@navarch-console-{cid}-{os.getpid()}"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind("\0" + name[1:])
        listener.listen(1)
        listener.settimeout(30)
        t = threading.Thread(target=receive_console, args=(listener, console_fds), daemon=True)
        t.start()
        argv += ["--console-socket", name]
        child_io = (devnull, devnull, devnull)
    else:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        if cfg.get("stdin"):
            in_r, stdin_w = os.pipe()
        else:
            in_r = devnull
        readers = {out_r: "stdout", err_r: "stderr"}
        child_io = (in_r, out_w, err_w)
    argv.append(cid)
    # Listening before the container runs: a client may attach as soon as it is reported running.
    attach = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    attach.bind("\0navarch-attach-" + cid)
    attach.listen(8)
    proc = subprocess.Popen(argv, stdin=child_io[0], stdout=child_io[1], stderr=child_io[2],
                            close_fds=True)
    rc = proc.wait()
    create_err = ""
    if listener is not None:
        t.join(timeout=5 if rc == 0 else 0)
        listener.close()
        if rc == 0 and not console_fds:
            rc, create_err = -1, "no console received from runc"
        if console_fds:
            readers = {console_fds[0]: "stdout"}
            stdin_w = os.dup(console_fds[0]) if cfg.get("stdin") else -1
    else:
        for fd in set(child_io) - {devnull}:
            os.close(fd)
    if rc != 0:
        stderr = b""
        for fd in readers:
            os.set_blocking(fd, False)
            try:
                stderr += os.read(fd, 65536)
            except OSError:
                pass
        create_err = create_err or runc_error(runc_log, stderr)
        reply({"ok": False, "dir": state_dir, "error": create_err})
        return 0
    with open("init.pid") as f:
        pid = int(f.read().strip())
    reply({"ok": True, "dir": state_dir, "pid": pid, "shim_pid": os.getpid()})
    shim_log = os.open("shim.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(devnull, 0)
    os.dup2(shim_log, 1)
    os.dup2(shim_log, 2)
    return serve(cfg, pid, readers, stdin_w, attach)


def serve(cfg: dict, pid: int, readers: dict[int, str], stdin_w: int, attach: socket.socket) -> int:
    log = CRILog(cfg.get("log_path") or "")
    sel = selectors.DefaultSelector()
    wake_r, wake_w = socket.socketpair()
    wake_r.setblocking(False)
    wake_w.setblocking(False)
    signal.set_wakeup_fd(wake_w.fileno(), warn_on_full_buffer=False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGUSR1, lambda *_: None)
    sel.register(wake_r, selectors.EVENT_READ, "signal")
    for fd in readers:
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ, "output")
    attach.setblocking(False)
    sel.register(attach, selectors.EVENT_READ, "attach")
    clients: list[socket.socket] = []
    modes: dict[socket.socket, bytes] = {}     # first byte a client sends: b"I" stdin, b"O" output only

    def broadcast(kind: int, data: bytes) -> None:
        frame = struct.pack(">BI", kind, len(data)) + data
        for c in list(clients):
            try:
                c.setblocking(True)
                c.settimeout(1)
                c.sendall(frame)
            except OSError:
                drop(c)

    def drop(c: socket.socket) -> None:
        modes.pop(c, None)
        if c in clients:
            clients.remove(c)
            try:
                sel.unregister(c)
            except (KeyError, ValueError):
                pass
            c.close()

    exit_status: int | None = None
    deadline = None
    while readers or exit_status is None:
        if exit_status is not None and deadline is None:
            deadline = time.monotonic() + 2.0   # output still buffered after the exit
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        if deadline is not None and timeout == 0.0:
            break
        for key, _ in sel.select(timeout if timeout is not None else 1.0):
            kind = key.data
            if kind == "signal":
                try:
                    sigs = wake_r.recv(64)
                except BlockingIOError:
                    sigs = b""
                if signal.SIGUSR1 in sigs:
                    log.reopen()
            elif kind == "output":
                fd = key.fd
                try:
                    data = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""   # EIO from a console master once the container is gone
                stream = readers.get(fd, "stdout")
                if not data:
                    log.finish(stream)
                    sel.unregister(fd)
                    os.close(fd)
                    readers.pop(fd, None)
                    continue
                log.write(stream, data)
                broadcast(1 if stream == "stdout" else 2, data)
            elif kind == "attach":
                try:
                    conn, _ = attach.accept()
                except OSError:
                    continue
                conn.setblocking(False)
                clients.append(conn)
                sel.register(conn, selectors.EVENT_READ, "client")
            elif kind == "client":
                c = key.fileobj
                try:
                    data = c.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    sel.unregister(c)   # the client closed its input; it still gets output
                    if modes.get(c) == b"I" and cfg.get("stdin_once") and stdin_w >= 0:
                        os.close(stdin_w)
                        stdin_w = -1
                    continue
                if c not in modes:
                    modes[c], data = data[:1], data[1:]
                if modes[c] == b"I" and stdin_w >= 0 and data:
                    try:
                        os.write(stdin_w, data)
                    except OSError:
                        pass
        while exit_status is None:
            try:
                reaped, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if reaped == 0:
                break
            if reaped == pid:
                exit_status = status
        if exit_status is None and not _alive(pid):
            exit_status = -1   # reaped elsewhere or not our child: exit code unknown
    for stream in ("stdout", "stderr"):
        log.finish(stream)
    if exit_status is None or exit_status == -1:
        code, sig = 255, 0
    elif os.WIFSIGNALED(exit_status):
        sig = os.WTERMSIG(exit_status)
        code = 128 + sig
    else:
        code, sig = os.WEXITSTATUS(exit_status), 0
    write_json_atomic("status.json", {
        "exit_code": code, "signal": sig, "finished_at": time.time_ns(),
        "oom": read_oom(cfg.get("oom_files") or []),
    })
    broadcast(3, struct.pack(">i", code))
    for c in list(clients):
        drop(c)
    return 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def close_inherited_fds() -> None:
    """Close every descriptor but stdio: a parent's event loop may have left some open (the
    write end of our own stdin pipe among them, and then EOF would never come)."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2:
            try:
                os.close(fd)
            except OSError:
                pass


CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWNET, MS_BIND = 0x08000000, 0x04000000, 0x40000000, 4096


SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1


def loopback_up() -> None:
    """``ip link set lo up`` in the current network namespace (what the CNI loopback plugin
    does, without running a program for it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifreq = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, ifreq))[1]
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def make_namespaces(req: dict) -> int:
    """Create a pod's persistent namespaces: unshare them, bring up ``lo`` in the new network
    namespace, name the host in the new UTS one, and bind-mount each onto its (existing, empty)
    file. Runs in a child of the factory that then exits."""
    libc = ctypes.CDLL(None, use_errno=True)
    kinds = [(k, req[k]) for k in ("net", "ipc", "uts") if req.get(k)]
    flags = 0
    for kind, _ in kinds:
        flags |= {"net": CLONE_NEWNET, "ipc": CLONE_NEWIPC, "uts": CLONE_NEWUTS}[kind]

    def check(ret: int, what: str) -> None:
        if ret != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"{what}: {os.strerror(err)}")

    check(libc.unshare(flags), "unshare")
    if req.get("net"):
        loopback_up()
    if req.get("uts"):
        name = req["hostname"].encode()
        check(libc.sethostname(name, len(name)), "sethostname")
    for kind, path in kinds:
        check(libc.mount(f"/proc/self/ns/{kind}".encode(), path.encode(), None, MS_BIND, None), f"bind {kind}")
    reply({"ok": True, "dir": req["key"]})
    return 0


def factory() -> int:
    """Fork a shim for each state dir read from stdin; exit at EOF (the daemon went away).
    A line holding a JSON object instead asks for a pod's namespaces (``make_namespaces``).

    Forking an interpreter that has already imported everything costs a few milliseconds where
    starting one costs tens, and the shims share its pages until they write to them.
    """
    close_inherited_fds()
    stdin = sys.stdin.buffer
    while True:
        line = stdin.readline()
        if not line:
            return 0
        text = line.decode().strip()
        request = json.loads(text) if text.startswith("{") else None
        key = request["key"] if request else text
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = make_namespaces(request) if request else main(text)
            except BaseException as e:  # noqa: BLE001 - reported to the daemon, never re-raised
                try:
                    reply({"ok": False, "dir": key, "error": f"shim failed: {e!r}"})
                except OSError:
                    pass
            finally:
                os._exit(code)
        os.waitpid(pid, 0)   # both jobs leave the factory's child at once


if __name__ == "__main__":
    if sys.argv[1] == "--factory":
        sys.exit(factory())
    close_inherited_fds()
    sys.exit(main(sys.argv[1]))
