"""``navarch up``: a whole cluster on this machine, each component its own process.

The API server (embedded SQLite store in the data directory) starts first; once it answers,
the launcher writes a kubeconfig and starts the scheduler and the controller manager against
it. Optional simulated nodes (``--simulated-nodes N``) give the cluster somewhere to put pods
before real node agents exist. Logs go to ``<data-dir>/logs/<component>.log``. Ctrl-C or
SIGTERM stops the components by their PIDs, newest first.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from client.kubeconfig import write_kubeconfig


@dataclass
class Component:
    name: str
    args: list[str]
    process: subprocess.Popen | None = None
    log: Path | None = None


@dataclass
class Cluster:
    data_dir: Path
    port: int = 6443
    bind_address: str = "127.0.0.1"
    simulated_nodes: int = 0
    log_level: str | None = None
    scheduler_port: int = 10259
    controller_manager_port: int = 10257
    components: list[Component] = field(default_factory=list)

    @property
    def server(self) -> str:
        host = "127.0.0.1" if self.bind_address in ("0.0.0.0", "") else self.bind_address
        return f"http://{host}:{self.port}"

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "kubeconfig"

    def _start(self, name: str, args: list[str]) -> Component:
        logs = self.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        comp = Component(name, args, log=logs / f"{name}.log")
        cmd = [sys.executable, "-m", "navarch", *args]
        if self.log_level:
            cmd += ["--v", self.log_level]
        with open(comp.log, "ab") as out:
            comp.process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True)
        self.components.append(comp)
        return comp

    def _wait_ready(self, comp: Component, url: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if comp.process.poll() is not None:
                raise RuntimeError(f"{comp.name} exited with {comp.process.returncode}; see {comp.log}")
            with contextlib.suppress(urllib.error.URLError, OSError):
                with urllib.request.urlopen(url, timeout=1) as r:
                    if r.status == 200:
                        return
            time.sleep(0.1)
        raise RuntimeError(f"{comp.name} not ready after {timeout:.0f}s; see {comp.log}")

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        api = self._start("apiserver", ["apiserver", "--data-dir", str(self.data_dir), "--port", str(self.port),
                                        "--bind-address", self.bind_address])
        self._wait_ready(api, self.server + "/readyz")
        write_kubeconfig(self.kubeconfig, self.server, namespace="default")
        kc = ["--kubeconfig", str(self.kubeconfig)]
        sched = self._start("scheduler", ["scheduler", *kc, "--leader-elect", "--port", str(self.scheduler_port)])
        cm = self._start("controller-manager", ["controller-manager", *kc, "--leader-elect",
                                                "--port", str(self.controller_manager_port)])
        self._wait_ready(sched, f"http://127.0.0.1:{self.scheduler_port}/healthz")
        self._wait_ready(cm, f"http://127.0.0.1:{self.controller_manager_port}/healthz")
        if self.simulated_nodes:
            self._start("simulated-nodes", ["simulate-nodes", *kc, "--count", str(self.simulated_nodes)])

    def stop(self) -> None:
        for comp in reversed(self.components):
            p = comp.process
            if p is None or p.poll() is not None:
                continue
            p.send_signal(signal.SIGTERM)
        for comp in reversed(self.components):
            p = comp.process
            if p is None:
                continue
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def watch(self) -> int:
        """Block until a signal or a component dies; returns the exit code for the launcher."""
        stop = {"flag": False}

        def on_signal(*_: object) -> None:
            stop["flag"] = True

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        while not stop["flag"]:
            for comp in self.components:
                if comp.process.poll() is not None:
                    print(f"{comp.name} exited with {comp.process.returncode}; see {comp.log}", flush=True)
                    return 1
            time.sleep(0.5)
        return 0


def run(data_dir: str, port: int, bind_address: str, simulated_nodes: int, log_level: str | None,
        scheduler_port: int = 10259, controller_manager_port: int = 10257) -> int:
    cluster = Cluster(Path(data_dir).resolve(), port, bind_address, simulated_nodes, log_level,
                      scheduler_port=scheduler_port, controller_manager_port=controller_manager_port)
    try:
        cluster.start()
        print(f"Navarch is up.\n"
              f"  API server:  {cluster.server}\n"
              f"  kubeconfig:  {cluster.kubeconfig}\n"
              f"  logs:        {cluster.data_dir / 'logs'}\n"
              f"  try:         kubectl --kubeconfig {cluster.kubeconfig} get nodes,pods -A\n"
              f"               navctl --kubeconfig {cluster.kubeconfig} get all\n"
              f"Stop with Ctrl-C.", flush=True)
        return cluster.watch()
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 1
    finally:
        cluster.stop()
