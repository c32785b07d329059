"""The StatefulSet controller against a real API server, with a hand-driven kubelet deciding when
each pod becomes ready and when its deletion ends: ordered creation, reverse one-at-a-time scale
down, Parallel management, partitioned rolling updates (checked on every watch event), OnDelete,
revision history and failed pods."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from api import errors
from controller_manager.controllers.statefulset import StatefulSetController
from tests.controllers.sets.helpers import (
    REVISIONS,
    STS,
    Controllers,
    HandKubelet,
    events_for,
    eventually,
    pods_of,
    quiesce,
    statefulset,
)


@pytest.fixture
async def ctrl(client):
    c = await Controllers(client, [StatefulSetController]).start()
    yield c["statefulset"]
    await c.stop()


def ready(pod: dict) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or [])


def terminating(pod: dict) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def image(pod: dict) -> str:
    return pod["spec"]["containers"][0]["image"]


class Follower:
    """Follows the pods of one app by watch; on every event keeps the event and runs ``check`` on
    the pods as they are then, collecting what it returns as violations."""

    def __init__(self, client, app: str, check: Callable[[dict[str, dict]], str | None] | None = None):
        self.client = client
        self.app = app
        self.check = check
        self.pods: dict[str, dict] = {}
        self.events: list[tuple[str, str, str, bool]] = []    # (type, name, uid, terminating)
        self.violations: list[str] = []
        self.task: asyncio.Task | None = None

    async def start(self) -> Follower:
        listed = await self.client.list("pods", self.client.namespace, label_selector=f"app={self.app}")
        self.pods = {p["metadata"]["name"]: p for p in listed["items"]}
        self.task = asyncio.create_task(self._follow(listed["metadata"]["resourceVersion"]))
        return self

    async def _follow(self, rv: str) -> None:
        async with self.client.watch("pods", self.client.namespace, resource_version=rv,
                                     label_selector=f"app={self.app}") as w:
            async for etype, obj in w:
                if etype == "BOOKMARK":
                    continue
                name = obj["metadata"]["name"]
                if etype == "DELETED":
                    self.pods.pop(name, None)
                else:
                    before = self.pods.get(name)
                    self.pods[name] = obj
                    if before is not None and terminating(before) == terminating(obj) and etype == "MODIFIED":
                        etype = "UPDATED"       # not a deletion starting: kept apart below
                self.events.append((etype, name, obj["metadata"]["uid"], terminating(obj)))
                if self.check is not None:
                    problem = self.check(self.pods)
                    if problem:
                        self.violations.append(problem)

    def deletions_started(self) -> list[str]:
        """Names in the order their deletion began (deletionTimestamp set, or gone at once)."""
        out: list[str] = []
        seen: set[str] = set()
        for etype, name, uid, term in self.events:
            if (etype == "MODIFIED" and term or etype == "DELETED") and uid not in seen:
                seen.add(uid)
                out.append(name)
        return out

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


async def all_ready(client, app: str, n: int, want_image: str | None = None) -> list[dict]:
    async def check():
        pods = [p for p in await pods_of(client, app) if not terminating(p)]
        ok = len(pods) == n and all(ready(p) for p in pods)
        if ok and want_image is not None:
            ok = all(image(p) == want_image for p in pods)
        return pods if ok else None
    return await eventually(check, timeout=60, what=f"{n} ready pods of {app}")


async def status_of(client, name: str, **want) -> dict:
    async def check():
        sts = await client.get(STS, name)
        st = sts.get("status") or {}
        got = {k: st.get(k, 0) for k in want}
        ok = got == want and st.get("observedGeneration") == sts["metadata"]["generation"]
        return st if ok else None
    return await eventually(check, timeout=60, what=f"status of {name} {want}")


async def test_ordered_creation_waits_for_each_pod_to_be_running_and_ready(client, ctrl):
    allowed: set[str] = set()
    kubelet = await HandKubelet(client, allow=lambda p: p["metadata"]["name"] in allowed).start()

    def predecessors_ready(pods: dict[str, dict]) -> str | None:
        for name in pods:
            n = int(name.rsplit("-", 1)[1])
            for k in range(n):
                prev = pods.get(f"web-{k}")
                if prev is None or not ready(prev):
                    return f"web-{n} exists while web-{k} is not Running and Ready"
        return None
    follower = await Follower(client, "web", predecessors_ready).start()
    try:
        await client.create(STS, statefulset("web", 3))
        for i in range(3):
            await eventually(lambda i=i: _pod(client, f"web-{i}"), what=f"web-{i}")
            await quiesce(ctrl)
            names = [p["metadata"]["name"] for p in await pods_of(client, "web")]
            assert names == [f"web-{k}" for k in range(i + 1)]
            allowed.add(f"web-{i}")
            kubelet.poke()
        pods = await all_ready(client, "web", 3)
    finally:
        await follower.stop()
        await kubelet.stop()
    assert follower.violations == []
    for i, p in enumerate(pods):
        assert p["spec"]["hostname"] == f"web-{i}" and p["spec"]["subdomain"] == "web"
        labels = p["metadata"]["labels"]
        assert labels["statefulset.kubernetes.io/pod-name"] == f"web-{i}"
        assert labels["apps.kubernetes.io/pod-index"] == str(i)
    st = await status_of(client, "web", replicas=3, readyReplicas=3, currentReplicas=3, updatedReplicas=3,
                         availableReplicas=3)
    assert st["currentRevision"] == st["updateRevision"]
    assert all(p["metadata"]["labels"]["controller-revision-hash"] == st["updateRevision"] for p in pods)
    revisions = (await client.list(REVISIONS, client.namespace))["items"]
    assert [r["metadata"]["name"] for r in revisions] == [st["updateRevision"]]
    created = [m for t, r, m in await events_for(client, "web") if r == "SuccessfulCreate"]
    assert sorted(created) == [f"create Pod web-{i} in StatefulSet web successful" for i in range(3)]


async def test_scale_down_in_reverse_order_one_pod_at_a_time(client, ctrl):
    held: set[str] = set()
    kubelet = await HandKubelet(client, hold=lambda p: p["metadata"]["name"] in held).start()
    try:
        await client.create(STS, statefulset("web", 4))
        await all_ready(client, "web", 4)
        held.update({"web-3", "web-2", "web-1"})
        follower = await Follower(client, "web").start()
        await client.set_scale(STS, "web", 1)
        for name in ("web-3", "web-2", "web-1"):
            pod = await eventually(lambda n=name: _terminating_pod(client, n), what=f"{name} terminating")
            await quiesce(ctrl)
            others = [p["metadata"]["name"] for p in await pods_of(client, "web") if terminating(p)]
            assert others == [name]              # the next one waits until this one is gone
            held.discard(name)
            kubelet.poke()
            await eventually(lambda p=pod: _gone(client, p), what=f"{name} gone")
        await status_of(client, "web", replicas=1, readyReplicas=1, currentReplicas=1, updatedReplicas=1)
        await follower.stop()
    finally:
        await kubelet.stop()
    assert follower.deletions_started() == ["web-3", "web-2", "web-1"]
    assert [p["metadata"]["name"] for p in await pods_of(client, "web")] == ["web-0"]
    deleted = [m for t, r, m in await events_for(client, "web") if r == "SuccessfulDelete"]
    assert sorted(deleted) == [f"delete Pod web-{i} in StatefulSet web successful" for i in (1, 2, 3)]


async def _pod(client, name: str) -> dict | None:
    try:
        return await client.get("pods", name)
    except errors.NotFound:
        return None


async def _terminating_pod(client, name: str) -> dict | None:
    p = await _pod(client, name)
    return p if p is not None and terminating(p) else None


async def _gone(client, pod: dict) -> bool:
    items = (await client.list("pods", client.namespace))["items"]
    return all(p["metadata"]["uid"] != pod["metadata"]["uid"] for p in items)


async def test_parallel_management_creates_and_deletes_without_waiting(client, ctrl):
    kubelet = await HandKubelet(client, allow=lambda p: False).start()
    try:
        await client.create(STS, statefulset("db", 3, podManagementPolicy="Parallel"))

        async def three():
            pods = await pods_of(client, "db")
            return pods if len(pods) == 3 else None
        pods = await eventually(three, what="three pods at once")
        assert not any(ready(p) for p in pods)
        await client.set_scale(STS, "db", 0)

        async def none_left():
            return not await pods_of(client, "db")
        await eventually(none_left, what="every pod deleted without any becoming ready")
    finally:
        await kubelet.stop()


async def _rolling_setup(client, replicas: int, **strategy_fields) -> tuple[HandKubelet, dict]:
    kubelet = await HandKubelet(client).start()
    strategy = {"type": "RollingUpdate", "rollingUpdate": strategy_fields}
    await client.create(STS, statefulset("web", replicas, strategy=strategy))
    await all_ready(client, "web", replicas)
    st = await status_of(client, "web", replicas=replicas, readyReplicas=replicas, updatedReplicas=replicas)
    return kubelet, st


async def _set_image(client, name: str, img: str, partition: int | None = None) -> None:
    spec: dict = {"template": {"spec": {"containers": [{"name": "app", "image": img}]}}}
    if partition is not None:
        spec["updateStrategy"] = {"type": "RollingUpdate", "rollingUpdate": {"partition": partition}}
    await client.patch(STS, name, {"spec": spec}, patch_type="strategic")


async def test_partitioned_rolling_update_from_the_highest_ordinal(client, ctrl):
    kubelet, before = await _rolling_setup(client, 4, partition=2)

    def at_most_one_unavailable(pods: dict[str, dict]) -> str | None:
        bad = [n for n, p in pods.items() if not ready(p) or terminating(p)]
        missing = 4 - len(pods)
        if len(bad) + missing > 1:
            return f"{len(bad) + missing} unavailable: {sorted(bad)}"
        return None
    follower = await Follower(client, "web", at_most_one_unavailable).start()
    try:
        await _set_image(client, "web", "busybox:2")

        async def upper_updated():
            pods = {p["metadata"]["name"]: p for p in await pods_of(client, "web") if not terminating(p)}
            ok = (len(pods) == 4 and all(ready(p) for p in pods.values())
                  and [image(pods[f"web-{i}"]) for i in range(4)] == ["busybox:1"] * 2 + ["busybox:2"] * 2)
            return pods if ok else None
        await eventually(upper_updated, timeout=60, what="web-2 and web-3 updated")
        st = await status_of(client, "web", replicas=4, readyReplicas=4, currentReplicas=2, updatedReplicas=2)
        assert st["currentRevision"] == before["currentRevision"] != st["updateRevision"]
        await quiesce(ctrl)
        assert [image(p) for p in await pods_of(client, "web")][:2] == ["busybox:1"] * 2

        # A pod below the partition deleted by hand comes back with the current revision.
        await client.delete("pods", "web-0")

        async def back():
            p = next((p for p in await pods_of(client, "web") if p["metadata"]["name"] == "web-0"), None)
            return p if p is not None and ready(p) and not terminating(p) else None
        p0 = await eventually(back, what="web-0 recreated")
        assert image(p0) == "busybox:1" and p0["metadata"]["labels"]["controller-revision-hash"] == \
            st["currentRevision"]

        await client.patch(STS, "web", {"spec": {"updateStrategy": {"rollingUpdate": {"partition": 0}}}})
        await all_ready(client, "web", 4, want_image="busybox:2")
        st = await status_of(client, "web", replicas=4, readyReplicas=4, currentReplicas=4, updatedReplicas=4)
        assert st["currentRevision"] == st["updateRevision"]
    finally:
        await follower.stop()
        await kubelet.stop()
    assert follower.violations == []
    assert follower.deletions_started() == ["web-3", "web-2", "web-0", "web-1", "web-0"]


async def test_max_unavailable_two_replaces_two_at_a_time(client, ctrl):
    kubelet, _ = await _rolling_setup(client, 4, maxUnavailable=2)
    worst = {"n": 0}

    def unavailable(pods: dict[str, dict]) -> str | None:
        bad = sum(1 for p in pods.values() if not ready(p) or terminating(p)) + 4 - len(pods)
        worst["n"] = max(worst["n"], bad)
        return f"{bad} unavailable" if bad > 2 else None
    follower = await Follower(client, "web", unavailable).start()
    try:
        await _set_image(client, "web", "busybox:2")
        await all_ready(client, "web", 4, want_image="busybox:2")
    finally:
        await follower.stop()
        await kubelet.stop()
    assert follower.violations == []
    assert worst["n"] == 2
    assert follower.deletions_started()[:2] == ["web-3", "web-2"]


async def test_on_delete_replaces_only_deleted_pods(client, ctrl):
    kubelet = await HandKubelet(client).start()
    try:
        await client.create(STS, statefulset("web", 2, strategy={"type": "OnDelete"}))
        await all_ready(client, "web", 2)
        await _set_image(client, "web", "busybox:2")
        st = await status_of(client, "web", replicas=2, updatedReplicas=0, currentReplicas=2)
        assert st["currentRevision"] != st["updateRevision"]
        await quiesce(ctrl)
        assert [image(p) for p in await pods_of(client, "web")] == ["busybox:1"] * 2
        await client.delete("pods", "web-1")

        async def replaced():
            pods = [p for p in await pods_of(client, "web") if not terminating(p)]
            ok = len(pods) == 2 and all(ready(p) for p in pods) and image(pods[1]) == "busybox:2"
            return pods if ok else None
        pods = await eventually(replaced, what="web-1 recreated from the new template")
        assert image(pods[0]) == "busybox:1"
        await status_of(client, "web", replicas=2, updatedReplicas=1, currentReplicas=1)
    finally:
        await kubelet.stop()


async def test_going_back_to_an_old_template_renumbers_its_revision(client, ctrl):
    kubelet = await HandKubelet(client).start()
    try:
        await client.create(STS, statefulset("web", 1))
        first = (await status_of(client, "web", replicas=1, readyReplicas=1))["updateRevision"]
        await _set_image(client, "web", "busybox:2")
        await all_ready(client, "web", 1, want_image="busybox:2")
        await _set_image(client, "web", "busybox:1")
        await all_ready(client, "web", 1, want_image="busybox:1")
        st = await status_of(client, "web", replicas=1, readyReplicas=1, updatedReplicas=1, currentReplicas=1)
    finally:
        await kubelet.stop()
    assert st["updateRevision"] == first
    revisions = {r["metadata"]["name"]: r["revision"] for r in
                 (await client.list(REVISIONS, client.namespace))["items"]}
    assert len(revisions) == 2 and revisions[first] == 3


async def test_revision_history_limit_deletes_unused_revisions(client, ctrl):
    kubelet = await HandKubelet(client).start()
    try:
        await client.create(STS, statefulset("web", 1, revisionHistoryLimit=1))
        for i in range(2, 5):
            await _set_image(client, "web", f"busybox:{i}")
            await all_ready(client, "web", 1, want_image=f"busybox:{i}")
        st = await status_of(client, "web", replicas=1, readyReplicas=1, updatedReplicas=1)

        async def trimmed():
            revs = (await client.list(REVISIONS, client.namespace))["items"]
            return revs if len(revs) == 2 else None
        revs = await eventually(trimmed, what="history trimmed to the limit")
    finally:
        await kubelet.stop()
    numbers = sorted(r["revision"] for r in revs)
    assert numbers == [3, 4]
    assert st["updateRevision"] in {r["metadata"]["name"] for r in revs}


async def test_failed_pod_is_recreated_and_claim_templates_do_not_break_pods(client, ctrl):
    kubelet = await HandKubelet(client).start()
    try:
        sts = statefulset("web", 1)
        sts["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/d"}]
        sts["spec"]["volumeClaimTemplates"] = [{"metadata": {"name": "data"}, "spec": {
            "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]
        await client.create(STS, sts)
        pods = await all_ready(client, "web", 1)
        assert {"name": "data", "emptyDir": {}} in pods[0]["spec"]["volumes"]
        uid = pods[0]["metadata"]["uid"]
        await client.patch("pods", "web-0", {"status": {"phase": "Failed"}}, subresource="status")

        async def recreated():
            pods = [p for p in await pods_of(client, "web") if not terminating(p)]
            return pods if len(pods) == 1 and pods[0]["metadata"]["uid"] != uid and ready(pods[0]) else None
        await eventually(recreated, what="web-0 recreated")
    finally:
        await kubelet.stop()
    events = await events_for(client, "web")
    assert ("Warning", "RecreatingFailedPod",
            f"StatefulSet {client.namespace}/web is recreating failed Pod web-0") in events


async def test_adopts_orphans_named_as_members_only(client, ctrl):
    kubelet = await HandKubelet(client).start()
    try:
        for name in ("web-0", "stray"):
            await client.create("pods", {"apiVersion": "v1", "kind": "Pod",
                                         "metadata": {"name": name, "labels": {"app": "web"}},
                                         "spec": {"containers": [{"name": "app", "image": "busybox:1"}]}})
        orphan = await client.get("pods", "web-0")
        await client.create(STS, statefulset("web", 1))
        sts = await client.get(STS, "web")

        async def settled():
            pods = {p["metadata"]["name"]: p for p in await pods_of(client, "web") if not terminating(p)}
            web0 = pods.get("web-0")
            ok = (web0 is not None and web0["metadata"]["uid"] != orphan["metadata"]["uid"] and ready(web0)
                  and "controller-revision-hash" in web0["metadata"]["labels"])
            return pods if ok else None
        # The adopted web-0 has no revision, so the rolling update replaces it with one that has.
        pods = await eventually(settled, what="web-0 adopted and replaced")
        assert pods["web-0"]["metadata"]["ownerReferences"][0]["uid"] == sts["metadata"]["uid"]
        await quiesce(ctrl)
        stray = await client.get("pods", "stray")
        assert not stray["metadata"].get("ownerReferences")
    finally:
        await kubelet.stop()


async def test_ordinals_start(client, ctrl):
    kubelet = await HandKubelet(client).start()
    try:
        await client.create(STS, statefulset("web", 2, ordinals={"start": 5}))
        pods = await all_ready(client, "web", 2)
        assert [p["metadata"]["name"] for p in pods] == ["web-5", "web-6"]
        assert [p["metadata"]["labels"]["apps.kubernetes.io/pod-index"] for p in pods] == ["5", "6"]
        await client.set_scale(STS, "web", 1)
        pods = await all_ready(client, "web", 1)
        assert [p["metadata"]["name"] for p in pods] == ["web-5"]
    finally:
        await kubelet.stop()
