"""`navarch up` as a user runs it: the README's flow with real kubectl against the whole control plane."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.fixtures.apiserver import REPO, free_port
from tests.fixtures.require import require

KUBECTL = "/usr/bin/kubectl"


def require_kubectl() -> None:
    require(KUBECTL)


def kubectl(kc: Path, cache: Path, *args: str, timeout: float = 60) -> str:
    out = subprocess.run([KUBECTL, "--kubeconfig", str(kc), "--cache-dir", str(cache), *args],
                         capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, (args, out.stdout, out.stderr)
    return out.stdout


def wait_for(fn, timeout: float = 60, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = fn()
            if result:
                return result
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


def test_up_apply_scale_rollout_delete(tmp_path):
    require_kubectl()
    port, sport, cport = free_port(), free_port(), free_port()
    proc = subprocess.Popen([sys.executable, "-m", "navarch", "up", "--data-dir", str(tmp_path / "run"),
                             "--port", str(port), "--scheduler-port", str(sport),
                             "--controller-manager-port", str(cport), "--simulated-nodes", "3"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    kc = tmp_path / "run" / "kubeconfig"
    cache = tmp_path / "cache"
    try:
        banner = ""
        for line in proc.stdout:
            banner += line
            if "Stop with Ctrl-C" in line or "error" in line:
                break
        assert "Navarch is up" in banner, banner
        assert str(kc) in banner
        wait_for(lambda: kubectl(kc, cache, "get", "nodes").count(" Ready ") == 3)
        out = kubectl(kc, cache, "apply", "-f", str(REPO / "deploy/examples/web.yaml"))
        assert "deployment.apps/web created" in out
        out = kubectl(kc, cache, "rollout", "status", "-n", "web", "deployment/web", "--timeout=90s", timeout=100)
        assert 'deployment "web" successfully rolled out' in out
        kubectl(kc, cache, "scale", "-n", "web", "deployment/web", "--replicas=5")
        kubectl(kc, cache, "rollout", "status", "-n", "web", "deployment/web", "--timeout=90s", timeout=100)
        pods = kubectl(kc, cache, "get", "pods", "-n", "web", "-o", "wide")
        assert pods.count("Running") == 5, pods
        eps = kubectl(kc, cache, "get", "endpoints", "-n", "web", "web", "-o", "jsonpath={.subsets[0].addresses[*].ip}")
        assert len(eps.split()) == 5
        kubectl(kc, cache, "delete", "namespace", "web", "--timeout=90s", timeout=100)
        wait_for(lambda: "web" not in kubectl(kc, cache, "get", "namespaces", "-o", "name"))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
