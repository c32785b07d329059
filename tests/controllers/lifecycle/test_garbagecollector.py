"""The garbage collector against a real API server: background, foreground and orphan cascades
(through the API and through real kubectl), dangling owners and owners replaced by namesakes.

Owners are ReplicaSets created by hand (no ReplicaSet controller runs); dependents are unbound
pods and ConfigMaps, which the API server deletes at once.
"""

from __future__ import annotations

import asyncio
import os
import shutil

import pytest

from api import errors
from controller_manager.controllers.garbagecollector import GarbageCollector
from tests.controllers.lifecycle.helpers import (
    Running,
    configmap,
    eventually,
    gone,
    owner_ref,
    pod,
    replicaset,
)

HOLD = "test.navarch.io/hold"


@pytest.fixture
async def gc(client):
    async with Running(client, [GarbageCollector]) as running:
        yield running["garbagecollector"]


async def owner_with_dependents(client, name: str, n: int = 3, *, block: bool = True) -> tuple[dict, list[dict]]:
    rs = await client.create("replicasets.apps", replicaset(name))
    deps = [await client.create("pods", pod(f"{name}-{i}", owners=[owner_ref(rs, block=block)])) for i in range(n)]
    return rs, deps


async def remove_finalizer(client, resource: str, name: str, finalizer: str) -> None:
    obj = await client.get(resource, name)
    rest = [f for f in obj["metadata"].get("finalizers") or [] if f != finalizer]
    await client.patch(resource, name, {"metadata": {"finalizers": rest}})


async def test_background_deletes_dependents_and_theirs(client, gc):
    rs, pods = await owner_with_dependents(client, "bg")
    # A second generation: a ConfigMap owned by a pod.
    cm = await client.create("configmaps", configmap("bg-cm", owners=[owner_ref(pods[0], controller=False)]))
    unrelated = await client.create("pods", pod("bg-unrelated"))
    await client.delete("replicasets.apps", "bg", propagation_policy="Background")

    async def all_gone():
        return all([await gone(client, "pods", p["metadata"]["name"]) for p in pods]
                   + [await gone(client, "configmaps", cm["metadata"]["name"])])
    await eventually(all_gone, what="dependents deleted")
    assert (await client.get("pods", "bg-unrelated"))["metadata"]["uid"] == unrelated["metadata"]["uid"]


async def test_foreground_waits_for_blocking_dependents(client, gc):
    rs = await client.create("replicasets.apps", replicaset("fg"))
    quick = await client.create("pods", pod("fg-quick", owners=[owner_ref(rs)]))
    held = await client.create("pods", pod("fg-held", owners=[owner_ref(rs)], finalizers=[HOLD]))
    # Does not block: the owner may go while it still exists.
    loose = await client.create("configmaps", configmap("fg-loose", owners=[owner_ref(rs, block=False)],
                                                        finalizers=[HOLD]))
    await client.delete("replicasets.apps", "fg", propagation_policy="Foreground")

    async def quick_gone_held_deleting():
        if not await gone(client, "pods", "fg-quick"):
            return False
        h = await client.get("pods", "fg-held")
        c = await client.get("configmaps", "fg-loose")
        return h["metadata"].get("deletionTimestamp") and c["metadata"].get("deletionTimestamp")
    await eventually(quick_gone_held_deleting, what="dependents deleted in the foreground")
    owner = await client.get("replicasets.apps", "fg")
    assert owner["metadata"]["deletionTimestamp"]
    assert "foregroundDeletion" in owner["metadata"]["finalizers"]
    assert quick["metadata"]["uid"] and held["metadata"]["uid"] and loose["metadata"]["uid"]

    await remove_finalizer(client, "pods", "fg-held", HOLD)
    await eventually(lambda: gone(client, "replicasets.apps", "fg"), what="owner deleted after its blockers")
    # The non-blocking dependent is still there, being deleted, held by its own finalizer.
    assert (await client.get("configmaps", "fg-loose"))["metadata"]["deletionTimestamp"]
    await remove_finalizer(client, "configmaps", "fg-loose", HOLD)
    await eventually(lambda: gone(client, "configmaps", "fg-loose"), what="loose dependent gone")


async def test_foreground_cascades_through_generations(client, gc):
    rs, pods = await owner_with_dependents(client, "fg2", 2)
    grandchild = await client.create("configmaps", configmap("fg2-cm", owners=[owner_ref(pods[0])]))
    await client.delete("replicasets.apps", "fg2", propagation_policy="Foreground")
    await eventually(lambda: gone(client, "replicasets.apps", "fg2"), what="owner deleted")
    assert await gone(client, "configmaps", grandchild["metadata"]["name"])
    for p in pods:
        assert await gone(client, "pods", p["metadata"]["name"])


async def test_orphan_strips_only_that_owner(client, gc):
    rs, pods = await owner_with_dependents(client, "or")
    other = await client.create("configmaps", configmap("or-other"))
    both = await client.create("pods", pod("or-both", owners=[owner_ref(rs), owner_ref(other, controller=False)]))
    await client.delete("replicasets.apps", "or", propagation_policy="Orphan")
    await eventually(lambda: gone(client, "replicasets.apps", "or"), what="owner deleted")
    for p in pods:
        live = await client.get("pods", p["metadata"]["name"])
        assert not live["metadata"].get("ownerReferences")
        assert not live["metadata"].get("deletionTimestamp")
    live = await client.get("pods", "or-both")
    assert [r["uid"] for r in live["metadata"]["ownerReferences"]] == [other["metadata"]["uid"]]
    assert live["metadata"]["uid"] == both["metadata"]["uid"]
    # Nothing deletes them later either: they have a solid owner or none.
    await asyncio.sleep(0.5)
    for p in pods:
        assert not await gone(client, "pods", p["metadata"]["name"])


async def test_dangling_and_replaced_owners(client, gc):
    ghost = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "never", "uid": "0b0e5c4e-0000-4000-8000-000000000001",
             "controller": True}
    await client.create("configmaps", configmap("dangling", owners=[ghost]))
    # An owner deleted and recreated under the same name is another owner.
    first = await client.create("replicasets.apps", replicaset("again"))
    await client.create("configmaps", configmap("of-first", owners=[owner_ref(first)]))
    solid = await client.create("configmaps", configmap("solid"))
    mixed = await client.create("configmaps", configmap("mixed", owners=[
        owner_ref(solid, controller=False), {**ghost, "controller": False}]))
    await eventually(lambda: gone(client, "configmaps", "dangling"), what="dangling dependent deleted")

    async def mixed_cut():
        live = await client.get("configmaps", "mixed")
        return [r["uid"] for r in live["metadata"]["ownerReferences"]] == [solid["metadata"]["uid"]]
    await eventually(mixed_cut, what="absent owner cut from a dependent with a solid owner")
    assert (await client.get("configmaps", "mixed"))["metadata"]["uid"] == mixed["metadata"]["uid"]

    # Replace the owner while the collector is not told in between: delete with orphan semantics
    # would keep it, so delete it outright and create a namesake at once.
    await client.delete("replicasets.apps", "again", propagation_policy="Background")
    await client.create("replicasets.apps", replicaset("again"))
    await eventually(lambda: gone(client, "configmaps", "of-first"), what="dependent of the replaced owner deleted")
    assert not await gone(client, "replicasets.apps", "again")


async def test_dependent_of_cluster_scoped_owner(client, gc):
    owner_ns = await client.create("namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                  "metadata": {"name": client.namespace + "-owner"}})
    await client.create("configmaps", configmap("ns-owned", owners=[owner_ref(owner_ns, controller=False)]))
    await asyncio.sleep(0.5)
    assert not await gone(client, "configmaps", "ns-owned"), "a solid cluster-scoped owner was taken for absent"
    # Without a namespace controller the namespace stays Terminating; a fresh namespace object
    # cannot replace it, so check against an owner that never existed under that name instead.
    await client.create("configmaps", configmap("ns-ghost", owners=[{
        "apiVersion": "v1", "kind": "Namespace", "name": "no-such-namespace",
        "uid": "0b0e5c4e-0000-4000-8000-000000000002"}]))
    await eventually(lambda: gone(client, "configmaps", "ns-ghost"), what="dependent of an absent namespace deleted")


@pytest.mark.parametrize("cascade", ["background", "foreground", "orphan"])
async def test_kubectl_cascade(client, gc, apiserver, cascade):
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        if os.environ.get("CI") == "true":
            pytest.fail("kubectl is not installed")
        pytest.skip("kubectl is not installed")
    name = f"kc-{cascade[:2]}"
    rs, pods = await owner_with_dependents(client, name, 2)
    proc = await asyncio.create_subprocess_exec(
        kubectl, "--kubeconfig", str(apiserver.kubeconfig), "-n", client.namespace, "delete", "replicaset", name,
        f"--cascade={cascade}", "--timeout=60s", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert f'replicaset.apps "{name}" deleted' in out.decode()
    if cascade == "foreground":
        # kubectl waited for the owner to go, which foreground deletion allows only after the pods.
        for p in pods:
            assert await gone(client, "pods", p["metadata"]["name"])
    assert await gone(client, "replicasets.apps", name)

    async def settled_pods():
        states = [await gone(client, "pods", p["metadata"]["name"]) for p in pods]
        return all(states) if cascade != "orphan" else True
    await eventually(settled_pods, what="pods deleted")
    if cascade == "orphan":
        await asyncio.sleep(0.5)
        for p in pods:
            live = await client.get("pods", p["metadata"]["name"])
            assert not live["metadata"].get("ownerReferences")


async def test_restart_finds_owners_deleted_while_down(client, apiserver):
    rs, pods = await owner_with_dependents(client, "down", 2)
    await client.delete("replicasets.apps", "down")
    with pytest.raises(errors.NotFound):
        await client.get("replicasets.apps", "down")
    async with Running(client, [GarbageCollector]):
        async def all_gone():
            return all([await gone(client, "pods", p["metadata"]["name"]) for p in pods])
        await eventually(all_gone, what="dependents of an owner deleted before the collector started")


async def test_restart_finishes_foreground_deletion_in_order(client):
    """An owner left in foreground deletion while no collector ran: on start, every dependent goes
    before the owner (compared by the storage revisions of their deletions)."""
    rs, pods = await owner_with_dependents(client, "fgr", 30)
    await client.delete("replicasets.apps", "fgr", propagation_policy="Foreground")
    start_rv = (await client.list("pods"))["metadata"]["resourceVersion"]
    deleted: dict[str, int] = {}

    async def record(resource: str) -> None:
        async with client.watch(resource, client.namespace, resource_version=start_rv) as w:
            async for etype, obj in w:
                if etype == "DELETED":
                    deleted[obj["metadata"]["name"]] = int(obj["metadata"]["resourceVersion"])

    watchers = [asyncio.create_task(record(r)) for r in ("pods", "replicasets.apps")]
    try:
        async with Running(client, [GarbageCollector]):
            await eventually(lambda: "fgr" in deleted and len(deleted) == 31, what="owner and dependents deleted")
    finally:
        for t in watchers:
            t.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
    owner_rv = deleted.pop("fgr")
    assert max(deleted.values()) < owner_rv
