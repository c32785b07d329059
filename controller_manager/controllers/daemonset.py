"""The DaemonSet controller: one pod of each DaemonSet on every node it is meant for.

A node is eligible when the pod template's ``nodeSelector`` and required node affinity accept
its labels and its NoSchedule/NoExecute taints are tolerated (a NoSchedule taint alone only stops
new pods; an untolerated NoExecute taint removes the running one too). Pods are not bound here:
each is created with a required node-affinity term ``matchFields metadata.name In [<node>]``
(replacing matchFields in every template term) so the scheduler places it, and with the
tolerations Kubernetes adds to daemon pods. Pods carry ``controller-revision-hash`` (the hash of
the DaemonSet's ControllerRevision) and ``pod-template-generation`` labels.

Updates: RollingUpdate replaces old pods within ``maxUnavailable`` (deleting before creating) or,
with ``maxSurge``, starts the new pod first and deletes the old one once the new one is
available; OnDelete leaves old pods until someone deletes them. Failed daemon pods are deleted
and recreated, with a back-off per node (1 s doubling to 15 min). Status and events are those
of Kubernetes' daemonset-controller.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from api import errors, meta
from client.informer import NAMESPACE_INDEX
from controller_manager import history, taints
from controller_manager.base import Controller, ControllerContext
from controller_manager.common import (
    Expectations,
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

DS = "daemonsets.apps"
PODS = "pods"
NODES = "nodes"
REVISION_HASH = "controller-revision-hash"
TEMPLATE_GENERATION = "pod-template-generation"
TEMPLATE_GENERATION_ANNOTATION = "deprecated.daemonset.template.generation"
BURST = 250
CONFLICT_RETRY = 0.05
FAILED_POD_BACKOFF = 1.0          # seconds before a node's failed daemon pod is deleted again; doubles
FAILED_POD_BACKOFF_MAX = 900.0


# --- which nodes --------------------------------------------------------------------------

def daemon_tolerations(spec: dict) -> list[dict]:
    """The pod's tolerations with those every daemon pod gets added (or updated in place)."""
    tolerations = [dict(t) for t in spec.get("tolerations") or []]
    wanted = [
        {"key": taints.NOT_READY, "operator": "Exists", "effect": taints.NO_EXECUTE},
        {"key": taints.UNREACHABLE, "operator": "Exists", "effect": taints.NO_EXECUTE},
        {"key": taints.DISK_PRESSURE, "operator": "Exists", "effect": taints.NO_SCHEDULE},
        {"key": taints.MEMORY_PRESSURE, "operator": "Exists", "effect": taints.NO_SCHEDULE},
        {"key": taints.PID_PRESSURE, "operator": "Exists", "effect": taints.NO_SCHEDULE},
        {"key": taints.UNSCHEDULABLE, "operator": "Exists", "effect": taints.NO_SCHEDULE},
    ]
    if spec.get("hostNetwork"):
        wanted.append({"key": taints.NETWORK_UNAVAILABLE, "operator": "Exists", "effect": taints.NO_SCHEDULE})
    for t in wanted:
        for i, have in enumerate(tolerations):
            if (have.get("key") == t["key"] and have.get("effect") == t["effect"]
                    and (have.get("operator") or "Equal") == t["operator"] and not have.get("value")):
                tolerations[i] = t      # the same toleration without tolerationSeconds
                break
        else:
            tolerations.append(t)
    return tolerations


def pin_to_node(spec: dict, node_name: str) -> dict:
    """``spec`` with every required node-selector term pinned to ``node_name`` by matchFields."""
    spec = meta.deep_copy(spec)
    field = {"key": "metadata.name", "operator": "In", "values": [node_name]}
    affinity = spec.setdefault("affinity", {}) or {}
    spec["affinity"] = affinity
    node_aff = affinity.setdefault("nodeAffinity", {}) or {}
    affinity["nodeAffinity"] = node_aff
    required = node_aff.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    terms = [dict(t) for t in required.get("nodeSelectorTerms") or []]
    if not terms:
        terms = [{"matchFields": [field]}]
    else:
        for t in terms:
            t["matchFields"] = [field]
    node_aff["requiredDuringSchedulingIgnoredDuringExecution"] = {**required, "nodeSelectorTerms": terms}
    return spec


def target_node(pod: dict) -> str | None:
    """The node a daemon pod runs on, or, while unscheduled, the node its affinity pins it to."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return spec["nodeName"]
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    for term in required.get("nodeSelectorTerms") or []:
        for f in term.get("matchFields") or []:
            if f.get("key") == "metadata.name" and f.get("operator") == "In" and len(f.get("values") or []) == 1:
                return f["values"][0]
    return None


def _requirement_matches(req: dict, labels: dict[str, str]) -> bool:
    key, op, values = req.get("key", ""), req.get("operator", ""), req.get("values") or []
    if op == "In":
        return key in labels and labels[key] in values
    if op == "NotIn":
        return key not in labels or labels[key] not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    if op in ("Gt", "Lt"):
        try:
            have, bound = int(labels[key]), int(values[0])
        except (KeyError, IndexError, ValueError):
            return False
        return have > bound if op == "Gt" else have < bound
    return False


def node_selected(spec: dict, node: dict) -> bool:
    """Whether the template's nodeSelector and required node affinity accept the node (matchFields
    are ignored: each pod's are replaced by its own node's name)."""
    md = node.get("metadata") or {}
    labels = md.get("labels") or {}
    if spec.get("nodeName") and spec["nodeName"] != md.get("name"):
        return False
    if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution"))
    if not required:
        return True
    return any(all(_requirement_matches(r, labels) for r in term.get("matchExpressions") or [])
               for term in required.get("nodeSelectorTerms") or [])


def should_run(ds: dict, node: dict, tolerations: list[dict] | None = None) -> tuple[bool, bool]:
    """(should a new daemon pod start on the node, may an existing one keep running).
    ``tolerations``: the daemon pod's, when the caller has them already."""
    spec = ((ds.get("spec") or {}).get("template") or {}).get("spec") or {}
    if not node_selected(spec, node):
        return False, False
    if tolerations is None:
        tolerations = daemon_tolerations(spec)
    run = keep = True
    for taint in (node.get("spec") or {}).get("taints") or []:
        effect = taint.get("effect")
        if effect not in (taints.NO_SCHEDULE, taints.NO_EXECUTE):
            continue
        if any(taints.tolerates(t, taint) for t in tolerations):
            continue
        run = False
        if effect == taints.NO_EXECUTE:
            keep = False
    return run, keep


# --- rolling-update arithmetic ----------------------------------------------------------

def _rolling(ds: dict) -> dict | None:
    strategy = (ds.get("spec") or {}).get("updateStrategy") or {}
    if (strategy.get("type") or "RollingUpdate") != "RollingUpdate":
        return None
    return strategy.get("rollingUpdate") or {}


def surge_and_unavailable(ds: dict, desired: int) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) in pods: percentages of the desired count, rounded up; at least
    one pod may be unavailable when surge is zero."""
    ru = _rolling(ds) or {}
    surge = scaled_value(ru.get("maxSurge", 0), desired, True)
    unavailable = scaled_value(ru.get("maxUnavailable", 1), desired, True)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def template_generation(ds: dict) -> str:
    """The generation of the DaemonSet's template: the API server's annotation when it keeps one,
    else the object's generation."""
    md = ds["metadata"]
    return str((md.get("annotations") or {}).get(TEMPLATE_GENERATION_ANNOTATION) or md.get("generation") or 1)


def _created(pod: dict) -> tuple[str, str]:
    return (pod["metadata"].get("creationTimestamp") or "", pod["metadata"]["name"])


# --- the controller -----------------------------------------------------------------------

class DaemonSetController(Controller):
    name = "daemonset"
    workers = 2
    component = "daemonset-controller"

    def __init__(self, ctx: ControllerContext):
        super().__init__(ctx)
        self.recorder = ctx.recorder(self.component)
        self.expectations = Expectations(clock=ctx.clock)
        # (DaemonSet key, node) -> (current back-off, monotonic time before which a failed pod
        # there is left alone), so a pod that fails at once is not recreated in a hot loop.
        self._failed_backoff: dict[tuple[str, str], tuple[float, float]] = {}
        self.ds_informer = ctx.informers.informer_for(DS)
        self.pod_informer = ctx.informers.informer_for(PODS)
        self.node_informer = ctx.informers.informer_for(NODES)
        self.rev_informer = ctx.informers.informer_for(history.REVISIONS)
        ensure_owner_indexes(self.pod_informer)
        ensure_owner_indexes(self.rev_informer)
        self.ds_informer.add_event_handler(on_add=self.enqueue, on_update=lambda old, new: self.enqueue(new),
                                           on_delete=self._ds_deleted)
        self.pod_informer.add_event_handler(on_add=self._pod_added, on_update=self._pod_updated,
                                            on_delete=self._pod_deleted)
        self.node_informer.add_event_handler(on_add=self._node_changed, on_update=self._node_updated,
                                             on_delete=self._node_changed)

    # --- informer handlers ---------------------------------------------------------------

    def _ds_deleted(self, ds: dict) -> None:
        key = meta.key_of(ds)
        self.expectations.forget(key)
        self._failed_backoff = {k: v for k, v in self._failed_backoff.items() if k[0] != key}

    def _owner(self, pod: dict) -> dict | None:
        return resolve_controller(self.ds_informer, pod["metadata"].get("namespace", ""), controller_ref(pod),
                                  "DaemonSet")

    def _pod_added(self, pod: dict) -> None:
        if pod["metadata"].get("deletionTimestamp"):
            self._pod_deleted(pod)
            return
        ds = self._owner(pod)
        if ds is not None:
            self.expectations.creation_observed(meta.key_of(ds))
            self.enqueue(ds)
        elif controller_ref(pod) is None:
            self._enqueue_matching(pod)

    def _pod_updated(self, old: dict, new: dict) -> None:
        if new["metadata"].get("deletionTimestamp") and not old["metadata"].get("deletionTimestamp"):
            self._pod_deleted(new)
            return
        ds = self._owner(new)
        if ds is not None:
            self.enqueue(ds)
            min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
            if min_ready > 0 and is_pod_ready(new) and not is_pod_ready(old):
                self.enqueue_after(ds, min_ready + 0.001)
        elif controller_ref(new) is None:
            self._enqueue_matching(new)
        old_owner = self._owner(old)
        if old_owner is not None and (ds is None or old_owner["metadata"]["uid"] != ds["metadata"]["uid"]):
            self.enqueue(old_owner)

    def _pod_deleted(self, pod: dict) -> None:
        ds = self._owner(pod)
        if ds is None:
            return
        key = meta.key_of(ds)
        self.expectations.deletion_observed(key, pod["metadata"].get("uid"))
        self.enqueue(key)

    def _enqueue_matching(self, pod: dict) -> None:
        labels = meta.labels_of(pod)
        for ds in self.ds_informer.by_index(NAMESPACE_INDEX, pod["metadata"].get("namespace", "")):
            if selector_of(ds).matches(labels):
                self.enqueue(ds)

    def _node_changed(self, node: dict) -> None:
        for ds in self.ds_informer.list():
            self.enqueue(ds)

    def _node_updated(self, old: dict, new: dict) -> None:
        if (meta.labels_of(old) != meta.labels_of(new)
                or (old.get("spec") or {}).get("taints") != (new.get("spec") or {}).get("taints")):
            self._node_changed(new)

    # --- reconcile -----------------------------------------------------------------------

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.now(), UTC)

    async def reconcile(self, key: str) -> float | None:
        try:
            return await self._reconcile(key)
        except errors.Conflict:
            return CONFLICT_RETRY

    async def _reconcile(self, key: str) -> float | None:
        ds = self.ds_informer.get(key)
        if ds is None:
            self.expectations.forget(key)
            return None
        if ds["metadata"].get("deletionTimestamp"):
            return None
        hist = await history.sync_revisions(self.client, ds, candidates(self.rev_informer, ds))
        hash_ = history.hash_of(hist.update)
        pods = await claim(self.client, PODS, ds, candidates(self.pod_informer, ds), selector_of(ds))
        by_node: dict[str, list[dict]] = {}
        for p in pods:
            node = target_node(p)
            if node is not None:
                by_node.setdefault(node, []).append(p)
        nodes = self.node_informer.list()
        tolerations = daemon_tolerations(((ds.get("spec") or {}).get("template") or {}).get("spec") or {})
        # Node name -> (a new pod should start there, an existing one may stay), once per pass.
        placement = {n["metadata"]["name"]: should_run(ds, n, tolerations) for n in nodes}
        failure = None
        retry: float | None = None
        if self.expectations.satisfied(key):
            failure, retry = await self._manage(ds, key, placement, by_node, hash_)
        hashes_in_use = {meta.labels_of(p).get(REVISION_HASH) for p in pods}
        keep = {r["metadata"]["name"] for r in hist.revisions if history.hash_of(r) in hashes_in_use}
        keep.add(hist.update["metadata"]["name"])
        await history.truncate_history(self.client, ds, hist.revisions, keep)
        await self._update_status(ds, placement, by_node, hash_, hist.collision_count)
        if failure:
            raise RuntimeError(failure)
        waits = [w for w in (retry, self._next_availability_check(ds, pods)) if w is not None]
        return min(waits) if waits else None

    def _next_availability_check(self, ds: dict, pods: list[dict]) -> float | None:
        """Seconds until the next ready pod has been ready for minReadySeconds."""
        min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
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

    async def _manage(self, ds: dict, key: str, placement: dict[str, tuple[bool, bool]],
                      by_node: dict[str, list[dict]],
                      hash_: str) -> tuple[str | None, float | None]:
        """Create and delete daemon pods for one pass: (the first error message, if any; seconds
        until a failed pod held back by its node's back-off may be deleted)."""
        to_create: list[str] = []
        to_delete: list[dict] = []
        retry: float | None = None
        for name, (run, keep) in placement.items():
            pods = by_node.get(name, [])
            live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
            if run and not pods:
                to_create.append(name)
            elif keep:
                running = []
                for p in live:
                    if (p.get("status") or {}).get("phase") != "Failed":
                        running.append(p)
                        continue
                    wait = self._failed_pod_wait(key, name)
                    if wait > 0:
                        retry = wait if retry is None else min(retry, wait)
                        continue
                    self.recorder.warning(ds, "FailedDaemonPod", f"Found failed daemon pod "
                                          f"{p['metadata']['namespace']}/{p['metadata']['name']} on node "
                                          f"{name}, will try to kill it")
                    to_delete.append(p)
                to_delete += self._duplicates(ds, running, hash_)
            else:
                to_delete += live
        for name, pods in by_node.items():
            if name not in placement:
                # Waiting for a node that is gone: the scheduler could never place it. (Pods bound
                # to a deleted node are the pod garbage collector's.)
                to_delete += [p for p in pods if not (p.get("spec") or {}).get("nodeName")
                              and not p["metadata"].get("deletionTimestamp")]
        if _rolling(ds) is not None:
            more_create, more_delete = self._rolling_update(ds, placement, by_node, hash_)
            to_create += [n for n in more_create if n not in to_create]
            to_delete += [p for p in more_delete if all(p is not q for q in to_delete)]
        err = await self._sync_nodes(ds, key, to_create, to_delete, hash_)
        return err, retry

    def _failed_pod_wait(self, key: str, node: str) -> float:
        """0 when a failed pod on ``node`` may be deleted now (and the back-off grows), else the
        seconds left to wait."""
        now = self.clock.monotonic()
        delay, until = self._failed_backoff.get((key, node), (0.0, 0.0))
        if now < until:
            return until - now
        if now - until > 2 * FAILED_POD_BACKOFF_MAX:
            delay = 0.0                      # long quiet: start over
        delay = min(FAILED_POD_BACKOFF_MAX, 2 * delay if delay else FAILED_POD_BACKOFF)
        self._failed_backoff[(key, node)] = (delay, now + delay)
        if len(self._failed_backoff) > 10000:
            self._failed_backoff = {k: v for k, v in self._failed_backoff.items() if v[1] > now}
        return 0.0

    def _duplicates(self, ds: dict, running: list[dict], hash_: str) -> list[dict]:
        """Extra pods on one node: beyond the oldest, unless a surge rollout is replacing it (the
        rolling update decides which of an old and a new pod goes)."""
        if len(running) <= 1:
            return []
        surge, _ = surge_and_unavailable(ds, 1)
        hashes = {meta.labels_of(p).get(REVISION_HASH) for p in running}
        if surge > 0 and len(running) == 2 and hash_ in hashes and len(hashes) == 2:
            return []
        ordered = sorted(running, key=_created)
        return ordered[1:]

    def _rolling_update(self, ds: dict, placement: dict[str, tuple[bool, bool]], by_node: dict[str, list[dict]],
                        hash_: str) -> tuple[list[str], list[dict]]:
        min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
        now = self._now()
        eligible = [name for name, (run, keep) in placement.items() if run or keep]
        desired = sum(1 for run, _ in placement.values() if run)
        surge, max_unavailable = surge_and_unavailable(ds, desired)
        create: list[str] = []
        delete: list[dict] = []

        def available(p: dict) -> bool:
            return is_pod_available(p, min_ready, now)

        if surge == 0:
            unavailable = 0
            old_available: list[tuple[str, dict]] = []
            for name in eligible:
                live = [p for p in by_node.get(name, []) if not p["metadata"].get("deletionTimestamp")]
                pods = by_node.get(name, [])
                if not live:
                    unavailable += 1
                    continue
                new = [p for p in live if meta.labels_of(p).get(REVISION_HASH) == hash_]
                old = [p for p in live if meta.labels_of(p).get(REVISION_HASH) != hash_]
                if len(live) < len(pods) or not any(available(p) for p in live):
                    unavailable += 1
                if not old or new:
                    continue
                pod = sorted(old, key=_created)[0]
                if available(pod):
                    old_available.append((name, pod))
                else:
                    delete.append(pod)    # already unavailable: replacing it costs nothing
            for _, pod in sorted(old_available, key=lambda np: np[0]):
                if unavailable >= max_unavailable:
                    break
                delete.append(pod)
                unavailable += 1
            return create, delete

        surging = 0
        waiting: list[str] = []
        for name in eligible:
            live = [p for p in by_node.get(name, []) if not p["metadata"].get("deletionTimestamp")]
            new = [p for p in live if meta.labels_of(p).get(REVISION_HASH) == hash_]
            old = [p for p in live if meta.labels_of(p).get(REVISION_HASH) != hash_]
            if not old:
                continue
            if new:
                surging += 1
                if any(available(p) for p in new):
                    delete += old
                continue
            if not any(available(p) for p in old):
                delete += old           # nothing serving here: replace at once
                continue
            waiting.append(name)
        for name in sorted(waiting):
            if surging >= surge:
                break
            create.append(name)
            surging += 1
        return create, delete

    async def _sync_nodes(self, ds: dict, key: str, create_on: list[str], delete: list[dict],
                          hash_: str) -> str | None:
        """Deletes first; creations wait for a pass without deletes, so that one expectation
        (creations or deletions) is outstanding at a time."""
        if delete:
            delete = delete[:BURST]
            self.expectations.expect_deletions(key, [p["metadata"]["uid"] for p in delete])
            results = await asyncio.gather(*(self._delete(ds, key, p) for p in delete))
            if create_on:
                self.enqueue(key)
            return next((r for r in results if r), None)
        create_on = create_on[:BURST]
        self.expectations.expect_creations(key, len(create_on))
        batch, i = 1, 0
        while i < len(create_on):
            chunk = create_on[i:i + batch]
            results = await asyncio.gather(*(self._create(ds, key, n, hash_) for n in chunk))
            i += len(chunk)
            bad = [r for r in results if r]
            if bad:
                for _ in create_on[i:]:
                    self.expectations.creation_observed(key)
                return bad[0]
            batch *= 2
        return None

    async def _create(self, ds: dict, key: str, node_name: str, hash_: str) -> str | None:
        template = (ds.get("spec") or {}).get("template") or {}
        generation = template_generation(ds)
        pod = pod_from_template(template, ds, extra_labels={REVISION_HASH: hash_, TEMPLATE_GENERATION: generation})
        pod["spec"] = pin_to_node(pod.get("spec") or {}, node_name)
        pod["spec"]["tolerations"] = daemon_tolerations(pod["spec"])
        try:
            created = await self.client.create(PODS, pod, ds["metadata"]["namespace"])
        except errors.StatusError as e:
            self.expectations.creation_observed(key)
            if "because it is being terminated" not in e.message:
                self.recorder.warning(ds, "FailedCreate", f"Error creating: {e}")
            return str(e)
        self.recorder.normal(ds, "SuccessfulCreate", f"Created pod: {created['metadata']['name']}")
        return None

    async def _delete(self, ds: dict, key: str, pod: dict) -> str | None:
        md = pod["metadata"]
        try:
            await self.client.delete(PODS, md["name"], md["namespace"], preconditions={"uid": md["uid"]})
        except errors.NotFound:
            self.expectations.deletion_observed(key, md["uid"])
            return None
        except errors.StatusError as e:
            self.expectations.deletion_observed(key, md["uid"])
            self.recorder.warning(ds, "FailedDelete", f"Error deleting: {e}")
            return str(e)
        self.recorder.normal(ds, "SuccessfulDelete", f"Deleted pod: {md['name']}")
        return None

    # --- status --------------------------------------------------------------------------

    def calculate_status(self, ds: dict, placement: dict[str, tuple[bool, bool]], by_node: dict[str, list[dict]],
                         hash_: str,
                         collision_count: int) -> dict:
        min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
        now = self._now()
        desired = current = misscheduled = ready = available = updated = 0
        for name, (run, _) in placement.items():
            pods = [p for p in by_node.get(name, [])
                    if not (p["metadata"].get("deletionTimestamp")
                            and (p.get("status") or {}).get("phase") in ("Succeeded", "Failed"))]
            if not run:
                if pods:
                    misscheduled += 1
                continue
            desired += 1
            if not pods:
                continue
            current += 1
            new = [p for p in pods if meta.labels_of(p).get(REVISION_HASH) == hash_]
            # The pod that counts: an updated one when there is one (a surge in progress), else
            # the oldest.
            pod = sorted(new or pods, key=_created)[0]
            if is_pod_ready(pod):
                ready += 1
                if is_pod_available(pod, min_ready, now):
                    available += 1
            if new:
                updated += 1
        status: dict[str, Any] = {
            "currentNumberScheduled": current, "numberMisscheduled": misscheduled,
            "desiredNumberScheduled": desired, "numberReady": ready,
            "observedGeneration": int(ds["metadata"].get("generation") or 0),
            "updatedNumberScheduled": updated, "numberAvailable": available,
            "numberUnavailable": desired - available,
        }
        if collision_count:
            status["collisionCount"] = collision_count
        conditions = (ds.get("status") or {}).get("conditions")
        if conditions:
            status["conditions"] = conditions
        return {k: v for k, v in status.items() if v or k in ("currentNumberScheduled", "numberMisscheduled",
                                                                "desiredNumberScheduled", "numberReady")}

    async def _update_status(self, ds: dict, placement: dict[str, tuple[bool, bool]],
                             by_node: dict[str, list[dict]], hash_: str,
                             collision_count: int) -> None:
        status = self.calculate_status(ds, placement, by_node, hash_, collision_count)
        if status == (ds.get("status") or {}):
            return
        obj = {k: v for k, v in ds.items() if k != "status"}
        obj["status"] = status
        try:
            await self.client.update_status(DS, obj)
        except errors.NotFound:
            pass
