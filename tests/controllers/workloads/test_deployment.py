"""The Deployment controller (with the ReplicaSet controller) against a real API server:
ReplicaSets and revisions, scaling, rolling updates that keep availability, Recreate, rollback,
restart, pause, history clean-up and conditions."""

from __future__ import annotations

import asyncio

from controller_manager import deploymentutil as du
from controller_manager.common import controller_ref, is_pod_ready
from tests.controllers.workloads.helpers import deployment, eventually

DEP = "deployments.apps"
RS = "replicasets.apps"


async def rs_list(client, app: str) -> list[dict]:
    return (await client.list(RS, client.namespace, label_selector=f"app={app}"))["items"]


async def rolled_out(client, name: str, replicas: int) -> dict:
    last: dict = {}

    async def check():
        d = last["d"] = await client.get(DEP, name)
        st = d.get("status") or {}
        ok = (st.get("observedGeneration") == d["metadata"]["generation"] and st.get("updatedReplicas") == replicas
              and st.get("replicas") == replicas and st.get("availableReplicas") == replicas)
        return d if ok else None

    try:
        return await eventually(check, timeout=60, what=f"deployment {name} rolled out with {replicas}")
    except AssertionError as e:
        pods = (await client.list("pods", client.namespace))["items"]
        state = {"deployment": last.get("d"), "replicasets": [
            (r["metadata"]["name"], r["spec"], r.get("status")) for r in await rs_list(client, name)],
            "pods": [(p["metadata"]["name"], p["spec"].get("nodeName"), p["status"].get("phase"),
                      p["metadata"].get("deletionTimestamp")) for p in pods]}
        raise AssertionError(f"{e}\n{state}") from None


def cond(d: dict, type_: str) -> dict:
    c = du.get_condition(d.get("status") or {}, type_)
    assert c is not None, f"no {type_} condition in {d.get('status')}"
    return c


async def events_for(client, name: str, reason: str) -> list[str]:
    evs = (await client.list("events", client.namespace))["items"]
    return [e["message"] for e in sorted(evs, key=lambda e: e["metadata"]["name"])
            if e["involvedObject"]["name"] == name and e["reason"] == reason]


async def test_creates_a_replicaset_named_by_template_hash(client, runner, controllers):
    await client.create(DEP, deployment("web", 3))
    d = await rolled_out(client, "web", 3)
    (rs,) = await rs_list(client, "web")
    h = rs["metadata"]["labels"][du.HASH_LABEL]
    assert rs["metadata"]["name"] == f"web-{h}"
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", du.HASH_LABEL: h}
    assert rs["spec"]["template"]["metadata"]["labels"][du.HASH_LABEL] == h
    assert controller_ref(rs)["uid"] == d["metadata"]["uid"]
    assert rs["metadata"]["annotations"][du.REVISION] == "1"
    assert rs["metadata"]["annotations"][du.DESIRED_REPLICAS] == "3"
    assert rs["metadata"]["annotations"][du.MAX_REPLICAS] == "4"
    assert d["metadata"]["annotations"][du.REVISION] == "1"
    assert d["status"]["readyReplicas"] == 3 and not d["status"].get("unavailableReplicas")

    async def complete():
        dd = await client.get(DEP, "web")
        return dd if cond(dd, "Progressing")["reason"] == "NewReplicaSetAvailable" else None

    d = await eventually(complete, what="Progressing NewReplicaSetAvailable")
    assert cond(d, "Progressing")["message"] == f'ReplicaSet "web-{h}" has successfully progressed.'
    assert cond(d, "Available") | {} == cond(d, "Available")
    assert (cond(d, "Available")["status"], cond(d, "Available")["reason"]) == ("True", "MinimumReplicasAvailable")
    assert cond(d, "Available")["message"] == "Deployment has minimum availability."
    pods = (await client.list("pods", client.namespace, label_selector="app=web"))["items"]
    assert all(p["metadata"]["labels"][du.HASH_LABEL] == h for p in pods)

    async def scaled_event():
        return await events_for(client, "web", "ScalingReplicaSet")

    assert await eventually(scaled_event, what="a ScalingReplicaSet event") == [
        f"Scaled up replica set web-{h} from 0 to 3"]


async def test_scale_up_and_down(client, runner, controllers):
    await client.create(DEP, deployment("sc", 2))
    await rolled_out(client, "sc", 2)
    await client.set_scale(DEP, "sc", 5)
    await rolled_out(client, "sc", 5)
    await client.set_scale(DEP, "sc", 1)
    await rolled_out(client, "sc", 1)
    (rs,) = await rs_list(client, "sc")
    assert rs["spec"]["replicas"] == 1 and rs["metadata"]["annotations"][du.DESIRED_REPLICAS] == "1"
    name = rs["metadata"]["name"]

    async def scaled():
        msgs = await events_for(client, "sc", "ScalingReplicaSet")
        return msgs if len(msgs) == 3 else None

    assert await eventually(scaled, what="three scaling events") == [
        f"Scaled up replica set {name} from 0 to 2", f"Scaled up replica set {name} from 2 to 5",
        f"Scaled down replica set {name} from 5 to 1"]
    live = [p for p in (await client.list("pods", client.namespace, label_selector="app=sc"))["items"]
            if not p["metadata"].get("deletionTimestamp")]
    assert len(live) == 1


async def test_rolling_update_never_drops_below_min_available(client, runner, controllers):
    """Every pod watch event during the rollout is checked: available pods (ready, not being
    deleted) never fall below replicas - maxUnavailable once the first rollout is done."""
    replicas, max_unavailable = 6, 1
    runner.ready_after = 0.1
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 2, "maxUnavailable": max_unavailable}}
    await client.create(DEP, deployment("ru", replicas, strategy=strategy))
    await rolled_out(client, "ru", replicas)

    pods: dict[str, dict] = {}
    lows: list[int] = []
    seen = 0
    listing = await client.list("pods", client.namespace, label_selector="app=ru")
    for p in listing["items"]:
        pods[p["metadata"]["name"]] = p

    def available() -> int:
        return sum(1 for p in pods.values() if is_pod_ready(p) and not p["metadata"].get("deletionTimestamp"))

    async def watch() -> None:
        nonlocal seen
        async with client.watch("pods", client.namespace, label_selector="app=ru",
                                resource_version=listing["metadata"]["resourceVersion"]) as w:
            async for etype, p in w:
                if etype == "BOOKMARK":
                    continue
                seen += 1
                if etype == "DELETED":
                    pods.pop(p["metadata"]["name"], None)
                else:
                    pods[p["metadata"]["name"]] = p
                lows.append(available())

    watcher = asyncio.create_task(watch())
    try:
        await client.patch(DEP, "ru", {"spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": "busybox:2"}]}}}})
        d = await rolled_out(client, "ru", replicas)
        await asyncio.sleep(0.3)
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
    assert seen > 2 * replicas, "the watch saw too little of the rollout to judge it"
    assert min(lows) >= replicas - max_unavailable, lows
    rss = await rs_list(client, "ru")
    assert len(rss) == 2
    new = next(r for r in rss if r["spec"]["replicas"] == replicas)
    old = next(r for r in rss if r["spec"]["replicas"] == 0)
    assert new["metadata"]["annotations"][du.REVISION] == "2" and old["metadata"]["annotations"][du.REVISION] == "1"
    assert d["metadata"]["annotations"][du.REVISION] == "2"
    assert all(c["image"] == "busybox:2" for p in pods.values() for c in p["spec"]["containers"])


async def test_recreate_removes_every_old_pod_before_creating_new_ones(client, runner, controllers):
    await client.create(DEP, deployment("rc", 3, strategy={"type": "Recreate"}))
    await rolled_out(client, "rc", 3)
    (old_rs,) = await rs_list(client, "rc")
    old_hash = old_rs["metadata"]["labels"][du.HASH_LABEL]
    hashes_when_new_appeared: list[set[str]] = []
    listing = await client.list("pods", client.namespace, label_selector="app=rc")
    present = {p["metadata"]["name"]: p["metadata"]["labels"][du.HASH_LABEL] for p in listing["items"]}

    async def watch() -> None:
        async with client.watch("pods", client.namespace, label_selector="app=rc",
                                resource_version=listing["metadata"]["resourceVersion"]) as w:
            async for etype, p in w:
                if etype == "BOOKMARK":
                    continue
                name = p["metadata"]["name"]
                if etype == "DELETED":
                    present.pop(name, None)
                elif name not in present:
                    present[name] = p["metadata"]["labels"][du.HASH_LABEL]
                    if present[name] != old_hash:
                        hashes_when_new_appeared.append(set(present.values()))

    watcher = asyncio.create_task(watch())
    try:
        await client.patch(DEP, "rc", {"spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": "busybox:2"}]}}}})
        await rolled_out(client, "rc", 3)
        await asyncio.sleep(0.3)
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
    assert len(hashes_when_new_appeared) == 3
    assert all(old_hash not in hs for hs in hashes_when_new_appeared), hashes_when_new_appeared
    new_name = next(r["metadata"]["name"] for r in await rs_list(client, "rc") if r["spec"]["replicas"] == 3)

    async def scaled():
        msgs = await events_for(client, "rc", "ScalingReplicaSet")
        return msgs if len(msgs) == 3 else None

    assert (await eventually(scaled, what="scaling events"))[1:] == [
        f"Scaled down replica set {old_rs['metadata']['name']} from 3 to 0",
        f"Scaled up replica set {new_name} from 0 to 3"]


async def test_revision_history_limit_deletes_oldest_empty_replicasets(client, runner, controllers):
    await client.create(DEP, deployment("hist", 1, revisionHistoryLimit=1))
    await rolled_out(client, "hist", 1)
    for image in ("busybox:2", "busybox:3", "busybox:4"):
        await client.patch(DEP, "hist", {"spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": image}]}}}})
        await rolled_out(client, "hist", 1)

    async def two_left():
        rss = await rs_list(client, "hist")
        return rss if len(rss) == 2 else None

    rss = await eventually(two_left, what="one old ReplicaSet kept")
    assert sorted(r["metadata"]["annotations"][du.REVISION] for r in rss) == ["3", "4"]


async def test_scaling_mid_rollout_is_proportional(client, runner, controllers):
    """A Deployment resized while two ReplicaSets have pods: the change is shared in proportion
    to their sizes, and the rollout then completes at the new size."""
    gate: set[str] = {"busybox:1"}
    runner.may_run = lambda pod: pod["spec"]["containers"][0]["image"] in gate
    await client.create(DEP, deployment("prop", 10))
    await rolled_out(client, "prop", 10)
    await client.patch(DEP, "prop", {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "busybox:2"}]}}}})

    async def stuck():
        rss = await rs_list(client, "prop")
        sizes = sorted(r["spec"]["replicas"] for r in rss)
        return rss if len(rss) == 2 and sizes == [5, 8] else None

    # 25% surge of 10 is 3 (13 pods at most), 25% unavailable is 2 (8 must stay): old 8, new 5.
    await eventually(stuck, what="the rollout held at old 8 / new 5 by unready new pods")
    await client.set_scale(DEP, "prop", 20)

    async def spread():
        rss = await rs_list(client, "prop")
        total = sum(r["spec"]["replicas"] for r in rss)
        ok = total == 25 and all(r["metadata"]["annotations"].get(du.DESIRED_REPLICAS) == "20" for r in rss)
        return rss if ok else None

    rss = await eventually(spread, what="20 replicas plus 5 surge spread over both ReplicaSets")
    by_image = {r["spec"]["template"]["spec"]["containers"][0]["image"]: r["spec"]["replicas"] for r in rss}
    assert by_image["busybox:1"] > 8 and by_image["busybox:2"] > 5, by_image
    gate.add("busybox:2")
    runner.poke()
    d = await rolled_out(client, "prop", 20)
    assert d["status"]["updatedReplicas"] == 20
