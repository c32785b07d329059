"""The StatefulSet controller: pods ``<name>-<ordinal>`` with stable identities.

Each pod is named after its ordinal (from ``spec.ordinals.start``, 0 by default), has
``hostname`` = its name and ``subdomain`` = ``spec.serviceName``, and carries the labels
``statefulset.kubernetes.io/pod-name``, ``apps.kubernetes.io/pod-index`` and
``controller-revision-hash`` (the name of the ControllerRevision whose template it runs).

``OrderedReady`` (the default) creates ordinal N+1 only once 0..N are Running and Ready (and
available after ``minReadySeconds``) and scales down from the highest ordinal, one pod at a
time, only while the others are healthy. ``Parallel`` creates and deletes without waiting.
RollingUpdate replaces pods whose revision is not the update revision from the highest ordinal
down to ``partition`` (lower ordinals keep, and are recreated with, the current revision), with
at most ``maxUnavailable`` (default 1) pods unavailable; OnDelete replaces a pod only when someone
deletes it. Failed pods are deleted and recreated.

There is no storage in this cluster: each ``volumeClaimTemplates`` entry becomes an ``emptyDir``
volume of the same name in the pod (so mounts naming it stay valid); no PersistentVolumeClaims
are created. Events are those of Kubernetes' statefulset-controller.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from api import errors, meta
from client.informer import NAMESPACE_INDEX
from controller_manager import history
from controller_manager.base import Controller, ControllerContext
from controller_manager.common import (
    candidates,
    claim,
    controller_ref,
    ensure_owner_indexes,
    is_pod_available,
    is_pod_ready,
    pod_from_template,
    resolve_controller,
    selector_of,
)
from controller_manager.deploymentutil import scaled_value

STS = "statefulsets.apps"
PODS = "pods"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
REVISION_LABEL = "controller-revision-hash"
CONFLICT_RETRY = 0.05

_ORDINAL = re.compile(r"^(.*)-(\d+)$")


def ordinal_of(sts_name: str, pod: dict) -> int | None:
    """The ordinal of a pod named ``<sts_name>-<n>``; None for any other name."""
    m = _ORDINAL.match(pod["metadata"]["name"])
    if m is None or m.group(1) != sts_name:
        return None
    return int(m.group(2))


def revision_of(pod: dict) -> str:
    return meta.labels_of(pod).get(REVISION_LABEL, "")


def is_terminating(pod: dict) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def is_running_and_ready(pod: dict) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running" and is_pod_ready(pod)


def is_failed(pod: dict) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Failed", "Succeeded")


def start_ordinal(sts: dict) -> int:
    return int(((sts.get("spec") or {}).get("ordinals") or {}).get("start") or 0)


def build_pod(sts: dict, template: dict, ordinal: int, revision: str) -> dict:
    """The pod of one ordinal from ``template`` (the template of revision ``revision``)."""
    name = f"{sts['metadata']['name']}-{ordinal}"
    pod = pod_from_template(template, sts, name=name,
                            extra_labels={POD_NAME_LABEL: name, POD_INDEX_LABEL: str(ordinal),
                                          REVISION_LABEL: revision})
    spec = pod["spec"]
    spec["hostname"] = name
    service = (sts.get("spec") or {}).get("serviceName")
    if service:
        spec["subdomain"] = service
    volumes = list(spec.get("volumes") or [])
    have = {v.get("name") for v in volumes}
    for claim_template in (sts.get("spec") or {}).get("volumeClaimTemplates") or []:
        vname = (claim_template.get("metadata") or {}).get("name")
        if vname and vname not in have:
            volumes.append({"name": vname, "emptyDir": {}})
    if volumes:
        spec["volumes"] = volumes
    return pod


class StatefulSetController(Controller):
    name = "statefulset"
    workers = 2
    component = "statefulset-controller"

    def __init__(self, ctx: ControllerContext):
        super().__init__(ctx)
        self.recorder = ctx.recorder(self.component)
        self.sts_informer = ctx.informers.informer_for(STS)
        self.pod_informer = ctx.informers.informer_for(PODS)
        self.rev_informer = ctx.informers.informer_for(history.REVISIONS)
        ensure_owner_indexes(self.pod_informer)
        ensure_owner_indexes(self.rev_informer)
        # UIDs of pods we deleted whose deletion the informer has not shown yet: treated as
        # terminating so a stale cache never deletes (or counts) them twice.
        self._deleted: set[str] = set()
        self.sts_informer.add_event_handler(on_add=self.enqueue, on_update=lambda old, new: self.enqueue(new),
                                            on_delete=self.enqueue)
        self.pod_informer.add_event_handler(on_add=self._pod_changed, on_update=self._pod_updated,
                                            on_delete=self._pod_deleted)

    # --- informer handlers ---------------------------------------------------------------

    def _owner(self, pod: dict) -> dict | None:
        return resolve_controller(self.sts_informer, pod["metadata"].get("namespace", ""), controller_ref(pod),
                                  "StatefulSet")

    def _pod_changed(self, pod: dict) -> None:
        if is_terminating(pod):
            self._deleted.discard(pod["metadata"].get("uid", ""))
        sts = self._owner(pod)
        if sts is not None:
            self.enqueue(sts)
        elif controller_ref(pod) is None:
            labels = meta.labels_of(pod)
            for s in self.sts_informer.by_index(NAMESPACE_INDEX, pod["metadata"].get("namespace", "")):
                if selector_of(s).matches(labels):
                    self.enqueue(s)

    def _pod_updated(self, old: dict, new: dict) -> None:
        self._pod_changed(new)
        sts = self._owner(new)
        if sts is not None:
            min_ready = int((sts.get("spec") or {}).get("minReadySeconds") or 0)
            if min_ready > 0 and is_pod_ready(new) and not is_pod_ready(old):
                self.enqueue_after(sts, min_ready + 0.001)
        prev = self._owner(old)
        if prev is not None and (sts is None or prev["metadata"]["uid"] != sts["metadata"]["uid"]):
            self.enqueue(prev)

    def _pod_deleted(self, pod: dict) -> None:
        self._deleted.discard(pod["metadata"].get("uid", ""))
        sts = self._owner(pod)
        if sts is not None:
            self.enqueue(sts)

    # --- reconcile -----------------------------------------------------------------------

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.now(), UTC)

    def _terminating(self, pod: dict) -> bool:
        return is_terminating(pod) or pod["metadata"].get("uid") in self._deleted

    def _healthy(self, sts: dict, pod: dict) -> bool:
        min_ready = int((sts.get("spec") or {}).get("minReadySeconds") or 0)
        return (not self._terminating(pod) and is_running_and_ready(pod)
                and is_pod_available(pod, min_ready, self._now()))

    async def reconcile(self, key: str) -> float | None:
        try:
            return await self._reconcile(key)
        except errors.Conflict:
            return CONFLICT_RETRY

    async def _reconcile(self, key: str) -> float | None:
        sts = self.sts_informer.get(key)
        if sts is None or sts["metadata"].get("deletionTimestamp"):
            return None
        hist = await history.sync_revisions(self.client, sts, candidates(self.rev_informer, sts))
        update = hist.update
        current_name = (sts.get("status") or {}).get("currentRevision")
        current = next((r for r in hist.revisions if r["metadata"]["name"] == current_name), update)
        name = sts["metadata"]["name"]
        uid = sts["metadata"]["uid"]
        # Only pods named as members may be adopted; owned pods are looked at whatever their name.
        mine = [p for p in candidates(self.pod_informer, sts)
                if ordinal_of(name, p) is not None or (controller_ref(p) or {}).get("uid") == uid]
        pods = await claim(self.client, PODS, sts, mine, selector_of(sts))
        replicas = int((sts.get("spec") or {}).get("replicas") or 0)
        first = start_ordinal(sts)
        slots: dict[int, dict] = {}
        condemned: list[tuple[int, dict]] = []
        for p in pods:
            ordinal = ordinal_of(name, p)
            if ordinal is None:
                continue
            if first <= ordinal < first + replicas:
                slots[ordinal] = p
            else:
                condemned.append((ordinal, p))
        condemned.sort(key=lambda op: -op[0])
        error = None
        try:
            await self._sync_pods(sts, slots, condemned, current, update)
        except errors.StatusError as e:
            if isinstance(e, errors.Conflict):
                raise
            error = e
        keep = {current["metadata"]["name"], update["metadata"]["name"]} | {revision_of(p) for p in pods}
        await history.truncate_history(self.client, sts, hist.revisions, keep)
        await self._update_status(sts, list(slots.values()) + [p for _, p in condemned], current, update,
                                  hist.collision_count)
        if error is not None:
            raise error
        return self._next_availability_check(sts, pods)

    def _next_availability_check(self, sts: dict, pods: list[dict]) -> float | None:
        min_ready = int((sts.get("spec") or {}).get("minReadySeconds") or 0)
        if min_ready <= 0:
            return None
        now = self.clock.now()
        waits = []
        for p in pods:
            for c in (p.get("status") or {}).get("conditions") or []:
                if c.get("type") == "Ready" and c.get("status") == "True" and c.get("lastTransitionTime"):
                    since = meta.parse_rfc3339(c["lastTransitionTime"]).timestamp()
                    if now - since < min_ready:
                        waits.append(since + min_ready - now)
        return max(min(waits), 0.001) + 0.001 if waits else None

    async def _sync_pods(self, sts: dict, slots: dict[int, dict], condemned: list[tuple[int, dict]],
                         current: dict, update: dict) -> None:
        """One pass of creations, deletions and updates, stopping where OrderedReady must wait."""
        spec = sts.get("spec") or {}
        monotonic = spec.get("podManagementPolicy") != "Parallel"
        replicas = int(spec.get("replicas") or 0)
        first = start_ordinal(sts)
        strategy = spec.get("updateStrategy") or {}
        rolling = (strategy.get("type") or "RollingUpdate") == "RollingUpdate"
        partition = int((strategy.get("rollingUpdate") or {}).get("partition") or 0)

        # Failed pods go first, so that they are recreated below once their names are free.
        for ordinal in range(first, first + replicas):
            p = slots.get(ordinal)
            if p is not None and is_failed(p) and not self._terminating(p):
                self.recorder.warning(sts, "RecreatingFailedPod",
                                      f"StatefulSet {meta.key_of(sts)} is recreating failed Pod {p['metadata']['name']}")
                await self._delete(sts, p)

        for ordinal in range(first, first + replicas):
            p = slots.get(ordinal)
            if p is None:
                index = ordinal - first
                if rolling and index < partition and current["metadata"]["name"] != update["metadata"]["name"]:
                    template, revision = history.template_of(current), current["metadata"]["name"]
                else:
                    template, revision = history.template_of(update), update["metadata"]["name"]
                created = await self._create(sts, build_pod(sts, template, ordinal, revision))
                if created is not None:
                    slots[ordinal] = created
                if monotonic:
                    return
                continue
            if monotonic and not self._healthy(sts, p):
                return

        for ordinal, p in condemned:
            if self._terminating(p):
                if monotonic:
                    return
                continue
            if monotonic:
                others = [q for o, q in list(slots.items()) + condemned if o != ordinal]
                if any(not self._healthy(sts, q) for q in others):
                    return
            await self._delete(sts, p)
            if monotonic:
                return

        if not rolling:
            return
        ru = strategy.get("rollingUpdate") or {}
        max_unavailable = max(1, scaled_value(ru.get("maxUnavailable", 1), replicas, True))
        unavailable = sum(1 for o in range(first, first + replicas)
                          if slots.get(o) is None or not self._healthy(sts, slots[o]))
        if unavailable >= max_unavailable:
            return
        update_name = update["metadata"]["name"]
        for ordinal in range(first + replicas - 1, first + partition - 1, -1):
            p = slots.get(ordinal)
            if p is None or self._terminating(p) or revision_of(p) == update_name:
                continue
            was_healthy = self._healthy(sts, p)
            await self._delete(sts, p)
            if was_healthy:
                unavailable += 1
            if unavailable >= max_unavailable:
                break

    async def _create(self, sts: dict, pod: dict) -> dict | None:
        pname, sname = pod["metadata"]["name"], sts["metadata"]["name"]
        try:
            created = await self.client.create(PODS, pod, sts["metadata"]["namespace"])
        except errors.AlreadyExists:
            return None          # our cache is behind our own earlier create
        except errors.StatusError as e:
            if "because it is being terminated" not in e.message:
                self.recorder.warning(sts, "FailedCreate", f"create Pod {pname} in StatefulSet {sname} failed "
                                                           f"error: {e}")
            raise
        self.recorder.normal(sts, "SuccessfulCreate", f"create Pod {pname} in StatefulSet {sname} successful")
        return created

    async def _delete(self, sts: dict, pod: dict) -> None:
        md = pod["metadata"]
        sname = sts["metadata"]["name"]
        try:
            await self.client.delete(PODS, md["name"], md["namespace"], preconditions={"uid": md["uid"]})
        except (errors.NotFound, errors.Conflict):
            return
        except errors.StatusError as e:
            self.recorder.warning(sts, "FailedDelete", f"delete Pod {md['name']} in StatefulSet {sname} failed "
                                                       f"error: {e}")
            raise
        self._deleted.add(md["uid"])
        self.recorder.normal(sts, "SuccessfulDelete", f"delete Pod {md['name']} in StatefulSet {sname} successful")

    # --- status --------------------------------------------------------------------------

    def calculate_status(self, sts: dict, pods: list[dict], current: dict, update: dict,
                         collision_count: int) -> dict:
        spec = sts.get("spec") or {}
        min_ready = int(spec.get("minReadySeconds") or 0)
        now = self._now()
        current_name, update_name = current["metadata"]["name"], update["metadata"]["name"]
        count = ready = available = n_current = n_updated = 0
        for p in pods:
            if not (p.get("status") or {}).get("phase"):
                continue
            count += 1
            if is_running_and_ready(p):
                ready += 1
                if is_pod_available(p, min_ready, now):
                    available += 1
            if self._terminating(p):
                continue
            rev = revision_of(p)
            if rev == current_name:
                n_current += 1
            if rev == update_name:
                n_updated += 1
        if n_updated == count and ready == count and count == int(spec.get("replicas") or 0):
            # The rollout is complete: the update revision becomes the current one.
            current_name, n_current = update_name, n_updated
        status: dict[str, Any] = {
            "observedGeneration": int(sts["metadata"].get("generation") or 0),
            "replicas": count, "readyReplicas": ready, "currentReplicas": n_current,
            "updatedReplicas": n_updated, "availableReplicas": available,
            "currentRevision": current_name, "updateRevision": update_name,
            "collisionCount": collision_count,
        }
        conditions = (sts.get("status") or {}).get("conditions")
        if conditions:
            status["conditions"] = conditions
        return {k: v for k, v in status.items() if v or k in ("replicas", "availableReplicas", "collisionCount")}

    async def _update_status(self, sts: dict, pods: list[dict], current: dict, update: dict,
                             collision_count: int) -> None:
        status = self.calculate_status(sts, pods, current, update, collision_count)
        if status == (sts.get("status") or {}):
            return
        obj = {k: v for k, v in sts.items() if k != "status"}
        obj["status"] = status
        try:
            await self.client.update_status(STS, obj)
        except errors.NotFound:
            pass
