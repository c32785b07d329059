"""A node agent that stops: its nodes go NotReady, and pods with short tolerations move to the
nodes of another simulator (the controller manager's node lifecycle, taint eviction, ReplicaSet
and the scheduler working together, through real processes)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from tests.e2e.test_up import kubectl, require_kubectl, wait_for
from tests.fixtures.apiserver import REPO, ApiServer

DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "mover", "namespace": "default"},
    "spec": {
        "replicas": 4,
        "selector": {"matchLabels": {"app": "mover"}},
        "template": {
            "metadata": {"labels": {"app": "mover"}},
            "spec": {
                "nodeSelector": {"pool": "a"},
                "containers": [{"name": "c", "image": "busybox:1.36"}],
                "tolerations": [
                    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
                     "tolerationSeconds": 2},
                    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
                     "tolerationSeconds": 2},
                ],
            },
        },
    },
}


def start(args: list[str], log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "navarch", *args], cwd=REPO, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def pods_by_node(kc: Path, cache: Path) -> dict[str, str]:
    out = json.loads(kubectl(kc, cache, "get", "pods", "-l", "app=mover", "-o", "json"))
    return {p["metadata"]["name"]: p["spec"].get("nodeName", "") for p in out["items"]
            if not p["metadata"].get("deletionTimestamp") and p["status"].get("phase") == "Running"}


def test_pods_leave_a_silent_node_for_another(tmp_path):
    require_kubectl()
    server = ApiServer(tmp_path / "api").start()
    kc, cache = server.kubeconfig, tmp_path / "cache"
    procs: list[subprocess.Popen] = []
    try:
        common = ["--kubeconfig", str(kc)]
        procs.append(start(["scheduler", *common, "--port", "-1"], tmp_path / "scheduler.log"))
        procs.append(start(["controller-manager", *common, "--port", "-1", "--node-monitor-grace-period", "4s",
                            "--node-monitor-period", "1s"], tmp_path / "cm.log"))
        sim_a = start(["simulate-nodes", *common, "--count", "2", "--name-prefix", "a-", "--labels", "pool=a",
                       "--lease-renew-interval", "1s"], tmp_path / "sim-a.log")
        procs.append(sim_a)
        wait_for(lambda: kubectl(kc, cache, "get", "nodes").count(" Ready ") == 2)
        subprocess.run(["/usr/bin/kubectl", "--kubeconfig", str(kc), "--cache-dir", str(cache), "apply", "-f", "-"],
                       input=json.dumps(DEPLOYMENT), text=True, check=True, capture_output=True)
        wait_for(lambda: len(pods_by_node(kc, cache)) == 4, timeout=60)
        assert set(pods_by_node(kc, cache).values()) <= {"a-0", "a-1"}
        # A second pool of nodes, also labelled pool=a, that the pods may move to.
        procs.append(start(["simulate-nodes", *common, "--count", "2", "--name-prefix", "b-", "--start-index", "10",
                            "--labels", "pool=a", "--lease-renew-interval", "1s"], tmp_path / "sim-b.log"))
        wait_for(lambda: kubectl(kc, cache, "get", "nodes").count(" Ready ") == 4)
        stop(sim_a)
        wait_for(lambda: kubectl(kc, cache, "get", "nodes", "a-0").split("\n")[1].split()[1] != "Ready",
                 timeout=30)
        taints = kubectl(kc, cache, "get", "node", "a-0", "-o", "jsonpath={.spec.taints[*].key}")
        assert "node.kubernetes.io/unreachable" in taints
        wait_for(lambda: (lambda m: len(m) == 4 and set(m.values()) <= {"b-10", "b-11"})(pods_by_node(kc, cache)),
                 timeout=90)
    finally:
        for p in reversed(procs):
            stop(p)
        server.stop()
