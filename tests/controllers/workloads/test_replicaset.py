"""The ReplicaSet controller against a real API server: replicas, status, adoption, scale-down
order, events, and no extra pods when the pod watch is slow."""

from __future__ import annotations

from controller_manager.common import controller_ref
from tests.controllers.workloads.helpers import bare_pod, eventually, replicaset

RS = "replicasets.apps"


async def pods_of(client, labels: str) -> list[dict]:
    return (await client.list("pods", client.namespace, label_selector=labels))["items"]


async def rs_status(client, name: str) -> dict:
    return (await client.get(RS, name)).get("status") or {}


async def test_creates_replicas_and_reports_status(client, runner, controllers):
    await client.create(RS, replicaset("web", 3))

    async def settled():
        st = await rs_status(client, "web")
        return st if st.get("availableReplicas") == 3 else None

    st = await eventually(settled, what="3 available replicas")
    rs = await client.get(RS, "web")
    assert st["replicas"] == 3 and st["readyReplicas"] == 3 and st["fullyLabeledReplicas"] == 3
    assert st["observedGeneration"] == rs["metadata"]["generation"]
    pods = await pods_of(client, "app=web")
    assert len(pods) == 3
    for p in pods:
        ref = controller_ref(p)
        assert ref["kind"] == "ReplicaSet" and ref["uid"] == rs["metadata"]["uid"]
        assert p["metadata"]["name"].startswith("web-")


async def test_adopts_orphans_and_releases_pods_that_stop_matching(client, runner, controllers):
    orphan = await client.create("pods", bare_pod("stray", {"app": "adopt"}))
    await client.create(RS, replicaset("adopt", 2))
    rs = await client.get(RS, "adopt")

    async def adopted():
        p = await client.get("pods", "stray")
        ref = controller_ref(p)
        return ref is not None and ref["uid"] == rs["metadata"]["uid"]

    await eventually(adopted, what="the orphan adopted")

    async def two_pods():
        pods = await pods_of(client, "app=adopt")
        return len(pods) == 2 and all(p["status"].get("phase") == "Running" for p in pods)

    await eventually(two_pods, what="two pods, the orphan counted as one")
    # Release: a pod relabelled out of the selector loses its owner and is replaced.
    await client.patch("pods", "stray", {"metadata": {"labels": {"app": "elsewhere"}}})

    async def released():
        p = await client.get("pods", "stray")
        return controller_ref(p) is None and len(await pods_of(client, "app=adopt")) == 2

    await eventually(released, what="the relabelled pod released and replaced")
    assert orphan["metadata"]["uid"] == (await client.get("pods", "stray"))["metadata"]["uid"]


async def test_scale_down_deletes_pods_that_are_not_ready_first(client, runner, controllers):
    allowed: set[str] = set()
    runner.may_run = lambda pod: pod["metadata"]["name"] in allowed
    await client.create(RS, replicaset("order", 2))

    async def two():
        pods = await pods_of(client, "app=order")
        return pods if len(pods) == 2 else None

    for p in await eventually(two, what="two pods"):
        allowed.add(p["metadata"]["name"])
    runner.poke()

    async def ready_two():
        return (await rs_status(client, "order")).get("readyReplicas") == 2

    await eventually(ready_two, what="two ready pods")
    await client.set_scale(RS, "order", 4)

    async def four_bound():
        pods = await pods_of(client, "app=order")
        return len(pods) == 4 and all(p["spec"].get("nodeName") for p in pods)

    await eventually(four_bound, what="four pods, two of them never ready")
    await client.set_scale(RS, "order", 2)

    async def back_to_ready_ones():
        live = [p for p in await pods_of(client, "app=order") if not p["metadata"].get("deletionTimestamp")]
        return {p["metadata"]["name"] for p in live} == allowed

    await eventually(back_to_ready_ones, what="the two ready pods kept")


async def test_events_as_kubernetes_writes_them(client, runner, controllers):
    await client.create(RS, replicaset("ev", 2))

    async def created_events():
        evs = (await client.list("events", client.namespace))["items"]
        mine = [e for e in evs if e["involvedObject"]["name"] == "ev" and e["reason"] == "SuccessfulCreate"]
        return mine if len(mine) == 2 else None

    evs = await eventually(created_events, what="two SuccessfulCreate events")
    names = {p["metadata"]["name"] for p in await pods_of(client, "app=ev")}
    assert {e["message"] for e in evs} == {f"Created pod: {n}" for n in names}
    assert all(e["source"]["component"] == "replicaset-controller" and e["type"] == "Normal" for e in evs)
    await client.set_scale(RS, "ev", 1)

    async def deleted_event():
        evs = (await client.list("events", client.namespace))["items"]
        return [e for e in evs if e["reason"] == "SuccessfulDelete" and e["involvedObject"]["name"] == "ev"]

    (ev,) = await eventually(deleted_event, what="a SuccessfulDelete event")
    assert ev["message"].startswith("Deleted pod: ev-")


async def test_no_extra_pods_while_the_pod_watch_is_silent(client, runner, controllers):
    """With the pod informer stopped, creates are never observed: the expectations must keep
    every further pass from creating again."""
    rsc = controllers["replicaset"]
    await controllers.informers.informer_for("pods").stop()
    await client.create(RS, replicaset("quiet", 5))

    async def created():
        return len(await pods_of(client, "app=quiet")) >= 5

    await eventually(created, what="five pods created")
    key = f"{client.namespace}/quiet"
    for _ in range(5):
        await rsc.reconcile(key)
    assert len(await pods_of(client, "app=quiet")) == 5
    assert not rsc.expectations.satisfied(key)
    controllers.informers.informer_for("pods").start()

    async def observed():
        return rsc.expectations.satisfied(key) and (await rs_status(client, "quiet")).get("replicas") == 5

    await eventually(observed, what="creates observed once the watch resumes")
    assert len(await pods_of(client, "app=quiet")) == 5


async def test_min_ready_seconds_holds_back_availability(client, apiserver):
    """Availability waits minReadySeconds of the controller's clock (a FakeClock here)."""
    from client.clock import FakeClock
    from tests.controllers.workloads.helpers import Controllers, PodRunner

    clock = FakeClock(start=__import__("time").time())
    runner = PodRunner(client, clock=clock)
    ctl = Controllers(client, clock=clock, which=("replicaset",))
    await runner.start()
    await ctl.start()
    try:
        await client.create(RS, replicaset("slow", 2, minReadySeconds=30))

        async def ready():
            st = await rs_status(client, "slow")
            return st if st.get("readyReplicas") == 2 else None

        st = await eventually(ready, what="two ready pods")
        assert not st.get("availableReplicas")
        await clock.advance(31)

        async def available():
            return (await rs_status(client, "slow")).get("availableReplicas") == 2

        await eventually(available, what="available after minReadySeconds")
    finally:
        await ctl.stop()
        await runner.stop()
