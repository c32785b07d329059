"""Real kubectl through the everyday workflow the compatibility checklist names: a multi-document
apply, server-side apply conflicts, describe, scale, -o yaml/wide, and delete --wait of a pod that
terminates gracefully."""

from __future__ import annotations

import asyncio
import json

import pytest
import yaml

from tests.compat import test_kubectl_discovery as kd
from tests.compat.test_kubectl_discovery import (
    deployment_manifest,
    pod_manifest,
    service_manifest,
    table,
    uniq,
)

apiserver = kd.apiserver        # the same module-scoped server fixture, one per module


@pytest.fixture
def kubectl(apiserver) -> kd.Kubectl:
    return kd.Kubectl(apiserver.kubeconfig)


async def test_multi_document_apply_then_unchanged(kubectl):
    ns = uniq("wf")
    docs = "\n---\n".join([
        f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n",
        f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cfg, namespace: {ns}}}\ndata: {{a: '1'}}\n",
        deployment_manifest("web").replace("metadata:\n  name: web", f"metadata:\n  name: web\n  namespace: {ns}"),
        service_manifest("web").replace("metadata:\n  name: web", f"metadata:\n  name: web\n  namespace: {ns}"),
    ])
    out = await kubectl.out("apply", "-f", "-", stdin=docs)
    assert out.split() == [f"namespace/{ns}", "created", "configmap/cfg", "created", "deployment.apps/web", "created",
                           "service/web", "created"]
    again = await kubectl.out("apply", "-f", "-", stdin=docs)
    assert again.count("unchanged") == 4
    doc = yaml.safe_load(await kubectl.out("get", "-n", ns, "deployment", "web", "-o", "yaml"))
    assert doc["kind"] == "Deployment" and doc["spec"]["replicas"] == 2
    wide = table(await kubectl.out("get", "-n", ns, "deployment", "web", "-o", "wide"))
    assert wide[0]["IMAGES"] == "nginx:1.27" and wide[0]["SELECTOR"] == "app=web"


async def test_server_side_apply_conflict_and_force(kubectl):
    name = uniq("ssa")
    manifest = deployment_manifest(name, replicas=2)
    assert "serverside-applied" in await kubectl.out("apply", "--server-side", "-f", "-", stdin=manifest)
    await kubectl.out("scale", f"deployment/{name}", "--replicas=4")
    code, _, err = await kubectl.run("apply", "--server-side", "-f", "-", stdin=deployment_manifest(name, replicas=3),
                                     check=False)
    assert code != 0 and "conflict" in err and ".spec.replicas" in err
    await kubectl.out("apply", "--server-side", "--force-conflicts", "-f", "-", stdin=deployment_manifest(name, replicas=3))
    assert await kubectl.out("get", f"deployment/{name}", "-o", "jsonpath={.spec.replicas}") == "3"


async def test_scale_and_describe(kubectl):
    name = uniq("sc")
    await kubectl.out("apply", "-f", "-", stdin=deployment_manifest(name))
    assert f"deployment.apps/{name} scaled" in await kubectl.out("scale", f"deployment/{name}", "--replicas=5")
    described = await kubectl.out("describe", f"deployment/{name}")
    assert f"Name:                   {name}" in described
    assert "5 desired" in described and "RollingUpdateStrategy:  25% max unavailable, 25% max surge" in described
    assert "Port:          80/TCP" in described


async def test_delete_wait_follows_a_graceful_pod_until_it_is_gone(kubectl, apiserver):
    name = uniq("gp")
    await kubectl.out("apply", "-f", "-", stdin=pod_manifest(name))
    binding = json.dumps({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
                          "target": {"apiVersion": "v1", "kind": "Node", "name": "n1"}})
    await kubectl.out("create", "--raw", f"/api/v1/namespaces/default/pods/{name}/binding", "-f", "-", stdin=binding)
    deleting = asyncio.create_task(kubectl.run("delete", "pod", name, "--wait=true", "--timeout=30s"))
    await asyncio.sleep(1.5)
    assert not deleting.done()                   # bound pods wait for their node to confirm
    pod = yaml.safe_load(await kubectl.out("get", "pod", name, "-o", "yaml"))
    assert pod["metadata"]["deletionTimestamp"]
    # The node agent confirms with a zero grace period.
    await kubectl.out("delete", "pod", name, "--grace-period=0", "--force", "--wait=false")
    code, out, _ = await asyncio.wait_for(deleting, 30)
    assert code == 0 and f'pod "{name}" deleted' in out
