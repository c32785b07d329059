"""The namespace and service account controllers against a real API server."""

from __future__ import annotations

import pytest

from controller_manager.controllers.garbagecollector import GarbageCollector
from controller_manager.controllers.namespace import NamespaceController
from controller_manager.controllers.serviceaccount import ServiceAccountController
from tests.controllers.lifecycle.helpers import (
    Running,
    condition,
    configmap,
    eventually,
    gone,
    owner_ref,
    pod,
    replicaset,
)

HOLD = "test.navarch.io/hold"
NS = "namespaces"


@pytest.fixture
async def controllers(client):
    async with Running(client, [NamespaceController, ServiceAccountController, GarbageCollector]) as running:
        yield running


async def test_deleting_a_namespace_removes_its_content_then_itself(client, controllers):
    ns = client.namespace
    rs = await client.create("replicasets.apps", replicaset("web"))
    await client.create("pods", pod("web-1", owners=[owner_ref(rs)]))
    await client.create("pods", pod("loose"))
    await client.create("configmaps", configmap("cm"))
    await client.create("secrets", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                                    "stringData": {"a": "b"}})
    await client.create("services", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc"},
                                     "spec": {"selector": {"app": "x"}, "ports": [{"port": 80}]}})
    await client.create("jobs.batch", {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
                                       "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
                                           {"name": "c", "image": "busybox:1"}]}}}})
    await client.delete(NS, ns)
    await eventually(lambda: gone(client, NS, ns), what="namespace deleted")
    for resource in ("pods", "configmaps", "secrets", "services", "replicasets.apps", "jobs.batch",
                     "serviceaccounts"):
        assert (await client.list(resource, ns))["items"] == [], resource


async def test_content_with_finalizers_is_reported_and_waited_for(client, controllers):
    ns = client.namespace
    await client.create("configmaps", configmap("held", finalizers=[HOLD]))
    await client.create("pods", pod("bound", node="somewhere"))
    await client.delete(NS, ns)

    want = ("Some resources are remaining: configmaps has 1 resource instances, "
            "pods has 1 resource instances")

    async def reported():
        # Until the controller's first passes have removed what can go (the namespace's default
        # service account, say), the report may still count it: wait for the settled one.
        obj = await client.get(NS, ns)
        c = condition(obj, "NamespaceFinalizersRemaining")
        r = condition(obj, "NamespaceContentRemaining")
        settled = c and c["status"] == "True" and r and r["status"] == "True" and r["message"] == want
        return obj if settled else None
    obj = await eventually(reported, what="remaining content reported")
    assert obj["status"]["phase"] == "Terminating"
    remaining = condition(obj, "NamespaceContentRemaining")
    assert remaining["reason"] == "SomeResourcesRemain"
    assert remaining["message"] == want
    fin = condition(obj, "NamespaceFinalizersRemaining")
    assert fin["reason"] == "SomeFinalizersRemain"
    assert fin["message"] == f"Some content in the namespace has finalizers remaining: {HOLD} in 1 resource instances"
    for ctype, reason in (("NamespaceDeletionDiscoveryFailure", "ResourcesDiscovered"),
                          ("NamespaceDeletionContentFailure", "ContentDeleted")):
        c = condition(obj, ctype)
        assert (c["status"], c["reason"]) == ("False", reason)
    assert obj["spec"]["finalizers"] == ["kubernetes"]

    # The bound pod waits for its node (a graceful deletion); confirm it as a kubelet would.
    bound = await client.get("pods", "bound")
    assert bound["metadata"]["deletionTimestamp"]
    await client.delete("pods", "bound", grace_period_seconds=0)
    await client.patch("configmaps", "held", {"metadata": {"finalizers": []}})
    await eventually(lambda: gone(client, NS, ns), what="namespace deleted once its content went")


async def test_default_service_account_everywhere(client, controllers):
    ns = client.namespace

    async def default_sa(namespace: str):
        items = (await client.list("serviceaccounts", namespace))["items"]
        return next((s for s in items if s["metadata"]["name"] == "default"), None)

    first = await eventually(lambda: default_sa(ns), what="default service account in the test namespace")
    for name in ("default", "kube-system"):
        await eventually(lambda name=name: default_sa(name), what=f"default service account in {name}")
    await client.delete("serviceaccounts", "default")

    async def recreated():
        sa = await default_sa(ns)
        return sa if sa and sa["metadata"]["uid"] != first["metadata"]["uid"] else None
    await eventually(recreated, what="default service account recreated")

    fresh = ns + "-new"
    await client.create(NS, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": fresh}})
    await eventually(lambda: default_sa(fresh), what="default service account in a new namespace")
