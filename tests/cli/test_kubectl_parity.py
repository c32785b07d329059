"""navctl prints what real kubectl (/usr/bin/kubectl) prints, against the same API server and the
same objects: tables, describe reports and error lines (ages masked, since the runs are apart)."""

from __future__ import annotations

import asyncio
import os
import re

import pytest

from tests.cli.builders import deployment, node, pod, service

KUBECTL = "/usr/bin/kubectl"
AGE = re.compile(r"(?<![\w.])\d+[smhdy](\d+[smh])?(?![\w/])")


@pytest.fixture
def kubectl(apiserver, tmp_path):
    if not os.access(KUBECTL, os.X_OK):
        if os.environ.get("CI") == "true":
            pytest.fail(f"{KUBECTL} is not installed")
        pytest.skip(f"{KUBECTL} is not installed")

    async def run(*args: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            KUBECTL, "--kubeconfig", str(apiserver.kubeconfig), "--cache-dir", str(tmp_path / "cache"), *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 120)
        return proc.returncode or 0, out.decode(), err.decode()

    return run


@pytest.fixture
async def objects(api, ns):
    n = node(f"{ns}-n1", cpu="4")
    n["metadata"]["labels"]["node-role.kubernetes.io/worker"] = ""
    await api.create("nodes", n)
    p = pod("web-0", ns, labels={"app": "web", "tier": "front"}, node=f"{ns}-n1")
    p["spec"]["containers"][0].update(
        env=[{"name": "MODE", "value": "fast"}],
        resources={"requests": {"cpu": "250m", "memory": "64Mi"}, "limits": {"cpu": "500m"}},
        volumeMounts=[{"name": "scratch", "mountPath": "/scratch"}])
    p["spec"]["volumes"] = [{"name": "scratch", "emptyDir": {}}]
    p["spec"]["tolerations"] = [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}]
    await api.create("pods", p)
    await api.create("pods", pod("db-0", ns, labels={"app": "db"}))
    await api.create("deployments.apps", deployment("web", ns, env={"A": "1"}))
    await api.create("services", service("web", ns))
    return ns


def mask(text: str) -> str:
    return AGE.sub("<age>", text)


@pytest.mark.parametrize("args", [
    ("get", "pods"),
    ("get", "pods", "-o", "wide", "--show-labels"),
    ("get", "deploy,svc"),
    ("get", "all"),
    ("get", "pods", "-L", "tier"),
    ("get", "pods", "-o", "name"),
    ("get", "deploy", "web", "-o", "jsonpath={.spec.template.spec.containers[*].name}"),
    ("get", "pods", "nope"),
    ("get", "deploy", "web", "-o", "yaml"),
    ("get", "pods", "-o", "json"),
    ("describe", "pod", "web-0"),
    ("describe", "deployment", "web"),
    ("describe", "service", "web"),
    ("delete", "configmap", "nope"),
    ("label", "pod", "db-0", "app=other"),
    ("api-resources",),
    ("api-resources", "-o", "wide"),
    ("get", "configmaps", "-o", "yaml"),
    ("explain", "pods"),
    ("explain", "deployment.spec.strategy"),
    ("explain", "pods.spec.containers.ports"),
    ("explain", "pods.spec.restartPolicy"),
])
async def test_same_output_as_kubectl(navctl, kubectl, objects, args):
    ns = objects
    k_code, k_out, k_err = await kubectl("-n", ns, *args)
    r = await navctl("-n", ns, *args)
    assert (r.code != 0) == (k_code != 0), (r.err, k_err)
    assert mask(r.out) == mask(k_out)
    assert mask(r.err) == mask(k_err)


async def test_describe_node_as_kubectl(navctl, kubectl, objects):
    name = f"{objects}-n1"
    _, k_out, _ = await kubectl("describe", "node", name)
    out = await navctl.ok("describe", "node", name)
    # kubectl also looks up the node's Lease; that line aside, the reports agree.
    k_lines = [x for x in k_out.splitlines() if not x.startswith("Lease:")]
    assert [mask(x) for x in out.splitlines()] == [mask(x) for x in k_lines]
