"""The Deployment controller: rolls a Deployment's pod template out through ReplicaSets.

Each distinct template gets a ReplicaSet ``<deployment>-<pod-template-hash>`` carrying the
``pod-template-hash`` label in its selector and template, and the revision it became current at
(``deployment.kubernetes.io/revision``; a template brought back by ``kubectl rollout undo``
moves its ReplicaSet to a new revision and remembers the old ones in ``revision-history``).

``reconcile(namespace/name)`` follows Kubernetes' order: claim ReplicaSets; a Deployment being
deleted only gets its status synced; a paused one, or one whose size changed, is scaled in
proportion across its ReplicaSets without rolling; otherwise it rolls by its strategy:

- RollingUpdate: grow the new ReplicaSet up to ``replicas + maxSurge`` pods in all, shrink old
  ones while at least ``replicas - maxUnavailable`` stay available (old unhealthy pods go first).
- Recreate: scale every old ReplicaSet to zero, wait until their pods are gone, then create the
  new one at full size.

Finished rollouts delete old, empty ReplicaSets beyond ``revisionHistoryLimit``. Status
(replicas, updated, ready, available, unavailable, observedGeneration) and the Progressing and
Available conditions are those ``kubectl rollout status`` reads, with Kubernetes' reasons
including ProgressDeadlineExceeded; ScalingReplicaSet events read as Kubernetes writes them.
"""

from __future__ import annotations

from typing import Any

from api import errors, meta
from client.informer import NAMESPACE_INDEX, copy_object
from controller_manager import deploymentutil as du
from controller_manager.base import Controller, ControllerContext
from controller_manager.common import (
    OWNER_INDEX,
    candidates,
    claim,
    controller_ref,
    ensure_owner_indexes,
    owner_ref_for,
    resolve_controller,
    selector_of,
)

RS = "replicasets.apps"
PODS = "pods"

DEPLOYMENTS = "deployments.apps"

CONFLICT_RETRY = 0.05          # seconds before a reconcile that hit a write conflict runs again


class StaleStatus(Exception):
    """A ReplicaSet's status is behind its spec; the reconcile is retried."""


class DeploymentController(Controller):
    name = "deployment"
    workers = 5
    component = "deployment-controller"

    def __init__(self, ctx: ControllerContext):
        super().__init__(ctx)
        self.recorder = ctx.recorder(self.component)
        self.d_informer = ctx.informers.informer_for(DEPLOYMENTS)
        self.rs_informer = ctx.informers.informer_for(RS)
        self.pod_informer = ctx.informers.informer_for(PODS)
        ensure_owner_indexes(self.rs_informer)
        ensure_owner_indexes(self.pod_informer)
        self.d_informer.add_event_handler(on_add=self.enqueue, on_update=lambda old, new: self.enqueue(new),
                                          on_delete=self.enqueue)
        self.rs_informer.add_event_handler(on_add=self._rs_added, on_update=self._rs_updated,
                                           on_delete=self._rs_deleted)
        self.pod_informer.add_event_handler(on_delete=self._pod_deleted)

    # --- informer handlers ---------------------------------------------------------------

    def _owner(self, obj: dict, ref: dict | None) -> dict | None:
        return resolve_controller(self.d_informer, obj["metadata"].get("namespace", ""), ref, "Deployment")

    def _matching(self, rs: dict) -> list[dict]:
        labels = meta.labels_of(rs)
        ns = rs["metadata"].get("namespace", "")
        return [d for d in self.d_informer.by_index(NAMESPACE_INDEX, ns) if selector_of(d).matches(labels)]

    def _rs_added(self, rs: dict) -> None:
        if rs["metadata"].get("deletionTimestamp"):
            self._rs_deleted(rs)
            return
        ref = controller_ref(rs)
        if ref is not None:
            d = self._owner(rs, ref)
            if d is not None:
                self.enqueue(d)
            return
        for d in self._matching(rs):
            self.enqueue(d)

    def _rs_updated(self, old: dict, new: dict) -> None:
        if old["metadata"].get("resourceVersion") == new["metadata"].get("resourceVersion"):
            return
        old_ref, new_ref = controller_ref(old), controller_ref(new)
        ref_changed = (old_ref or {}).get("uid") != (new_ref or {}).get("uid")
        if ref_changed and old_ref is not None:
            d = self._owner(old, old_ref)
            if d is not None:
                self.enqueue(d)
        if new_ref is not None:
            d = self._owner(new, new_ref)
            if d is not None:
                self.enqueue(d)
            return
        if ref_changed or meta.labels_of(old) != meta.labels_of(new):
            for d in self._matching(new):
                self.enqueue(d)

    def _rs_deleted(self, rs: dict) -> None:
        d = self._owner(rs, controller_ref(rs))
        if d is not None:
            self.enqueue(d)

    def _pod_deleted(self, pod: dict) -> None:
        # Recreate waits for the old pods to be gone before it creates the new ReplicaSet.
        rs = resolve_controller(self.rs_informer, pod["metadata"].get("namespace", ""), controller_ref(pod),
                                "ReplicaSet")
        if rs is None:
            return
        d = self._owner(rs, controller_ref(rs))
        if d is not None and not du.is_rolling_update(d):
            self.enqueue(d)

    # --- reconcile -----------------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        try:
            return await self._reconcile(key)
        except errors.Conflict:
            # Our cache is behind a write (often our own): look again once it has caught up.
            self.log.debug("conflict; retrying", key=key)
            return CONFLICT_RETRY
        except StaleStatus as e:
            self.log.debug("stale ReplicaSet status; retrying", key=key, reason=str(e))
            return CONFLICT_RETRY

    async def _reconcile(self, key: str) -> float | None:
        cached = self.d_informer.get(key)
        if cached is None:
            return None
        d = copy_object(cached)
        d.setdefault("status", {})
        if (d.get("spec") or {}).get("selector") in ({}, {"matchLabels": {}}, {"matchExpressions": []}):
            self.recorder.warning(d, "SelectingAll",
                                  "This deployment is selecting all pods. A non-empty selector is required.")
            gen = int(d["metadata"].get("generation") or 0)
            if int(d["status"].get("observedGeneration") or 0) < gen:
                d["status"]["observedGeneration"] = gen
                await self._write_status(d)
            return None
        rss = await claim(self.client, RS, d, list(candidates(self.rs_informer, d)), selector_of(d))
        if d["metadata"].get("deletionTimestamp"):
            new_rs, olds = await self._get_all(d, rss, create=False)
            await self._sync_status(d, [*olds, new_rs], new_rs)
            return None
        await self._check_paused(d)
        if d["spec"].get("paused"):
            return await self._sync(d, rss)
        if await self._is_scaling_event(d, rss):
            return await self._sync(d, rss)
        if du.is_rolling_update(d):
            return await self._rollout_rolling(d, rss)
        return await self._rollout_recreate(d, rss)

    # --- writes --------------------------------------------------------------------------

    async def _write_status(self, d: dict) -> None:
        """PUT d's status; d takes the stored metadata and status (so later writes use its RV)."""
        d["status"] = du.prune_zero(d.get("status") or {})
        out = await self.client.update_status(DEPLOYMENTS, d)
        d["metadata"] = out["metadata"]
        d["status"] = out.get("status") or {}

    async def _sync_revision(self, d: dict, rev: str) -> None:
        """Record the current revision on the Deployment (its metadata; the status write keeps
        metadata as it was, so this is a patch of its own)."""
        if meta.annotations_of(d).get(du.REVISION) == rev:
            return
        md = d["metadata"]
        out = await self.client.patch(DEPLOYMENTS, md["name"],
                                      {"metadata": {"annotations": {du.REVISION: rev},
                                                    "resourceVersion": md.get("resourceVersion")}},
                                      md["namespace"])
        d["metadata"] = out["metadata"]

    def _event_scaled(self, d: dict, op: str, rs_name: str, old: int, new: int) -> None:
        self.recorder.normal(d, "ScalingReplicaSet", f"Scaled {op} replica set {rs_name} from {old} to {new}")

    async def _scale_rs(self, rs: dict, new_scale: int, d: dict, op: str | None = None) -> tuple[bool, dict]:
        """Set rs's replicas (and its desired/max annotations); an event when the size changed."""
        old_scale = du.replicas_of(rs)
        if op is None:
            op = "up" if old_scale < new_scale else "down"
        desired = du.replicas_of(d)
        max_total = desired + du.max_surge(d)
        size_changes = old_scale != new_scale
        if not size_changes and not du.replicas_annotations_need_update(rs, desired, max_total):
            return False, rs
        rs_copy = copy_object(rs)
        rs_copy["spec"]["replicas"] = new_scale
        du.set_replicas_annotations(rs_copy, desired, max_total)
        out = await self.client.update(RS, rs_copy)
        if size_changes:
            self._event_scaled(d, op, out["metadata"]["name"], old_scale, new_scale)
        return size_changes, out

    async def _scale_rs_and_record(self, rs: dict, new_scale: int, d: dict) -> tuple[bool, dict]:
        if du.replicas_of(rs) == new_scale:
            return False, rs
        return await self._scale_rs(rs, new_scale, d)

    # --- the new ReplicaSet --------------------------------------------------------------

    async def _get_all(self, d: dict, rss: list[dict], create: bool) -> tuple[dict | None, list[dict]]:
        new_rs = du.find_new_rs(d, rss)
        olds = du.find_old_rss(d, rss, new_rs)
        return await self._new_rs(d, rss, olds, new_rs, create), olds

    async def _new_rs(self, d: dict, rss: list[dict], olds: list[dict], existing: dict | None,
                      create: bool) -> dict | None:
        new_revision = du.max_revision(olds) + 1
        now = self.clock.now()
        if existing is not None:
            rs_copy = copy_object(existing)
            annotations_changed = du.set_new_rs_annotations(d, rs_copy, new_revision, True)
            d_min_ready = int(d["spec"].get("minReadySeconds") or 0)
            min_ready_changed = int(rs_copy["spec"].get("minReadySeconds") or 0) != d_min_ready
            if annotations_changed or min_ready_changed:
                rs_copy["spec"]["minReadySeconds"] = d_min_ready
                return await self.client.update(RS, rs_copy)
            await self._sync_revision(d, meta.annotations_of(rs_copy).get(du.REVISION, ""))
            if du.has_progress_deadline(d) and du.get_condition(d["status"], du.PROGRESSING) is None:
                du.set_condition(d["status"], du.new_condition(
                    du.PROGRESSING, "True", du.FOUND_NEW_RS_REASON,
                    f'Found new replica set "{rs_copy["metadata"]["name"]}"', now))
                await self._write_status(d)
            return rs_copy
        if not create:
            return None
        template = copy_object(d["spec"].get("template") or {})
        collision = d["status"].get("collisionCount")
        pod_hash = du.compute_hash(d["spec"].get("template") or {}, collision)
        tmeta = template.setdefault("metadata", {})
        tmeta["labels"] = {**(tmeta.get("labels") or {}), du.HASH_LABEL: pod_hash}
        selector = copy_object(d["spec"].get("selector") or {})
        selector["matchLabels"] = {**(selector.get("matchLabels") or {}), du.HASH_LABEL: pod_hash}
        rs: dict[str, Any] = {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": f'{d["metadata"]["name"]}-{pod_hash}', "namespace": d["metadata"]["namespace"],
                         "ownerReferences": [owner_ref_for(d)], "labels": dict(tmeta["labels"])},
            "spec": {"replicas": 0, "selector": selector, "template": template},
        }
        min_ready = int(d["spec"].get("minReadySeconds") or 0)
        if min_ready:
            rs["spec"]["minReadySeconds"] = min_ready
        rs["spec"]["replicas"] = du.new_rs_new_replicas(d, [*olds, rs], rs)
        du.set_new_rs_annotations(d, rs, new_revision, False)
        already_exists = False
        try:
            created = await self.client.create(RS, rs)
        except errors.AlreadyExists:
            found = await self.client.get(RS, rs["metadata"]["name"], rs["metadata"]["namespace"])
            ref = controller_ref(found)
            if ref is not None and ref.get("uid") == d["metadata"]["uid"] and du.equal_ignore_hash(
                    found["spec"].get("template") or {}, d["spec"].get("template") or {}):
                created = found
                already_exists = True
            else:
                # A ReplicaSet of that name with another template: hash again with a new count.
                d["status"]["collisionCount"] = int(collision or 0) + 1
                await self._write_status(d)
                raise
        except errors.StatusError as e:
            msg = f'Failed to create new replica set "{rs["metadata"]["name"]}": {e}'
            if du.has_progress_deadline(d):
                du.set_condition(d["status"], du.new_condition(du.PROGRESSING, "False",
                                                               du.FAILED_RS_CREATE_REASON, msg, now))
                await self._write_status(d)
            self.recorder.warning(d, du.FAILED_RS_CREATE_REASON, msg)
            raise
        n = du.replicas_of(created)
        if not already_exists and n > 0:
            self._event_scaled(d, "up", created["metadata"]["name"], 0, n)
        await self._sync_revision(d, str(new_revision))
        if not already_exists and du.has_progress_deadline(d):
            du.set_condition(d["status"], du.new_condition(
                du.PROGRESSING, "True", du.NEW_RS_REASON,
                f'Created new replica set "{created["metadata"]["name"]}"', now))
            await self._write_status(d)
        return created

    # --- paused and scaling --------------------------------------------------------------

    async def _check_paused(self, d: dict) -> None:
        if not du.has_progress_deadline(d):
            return
        cond = du.get_condition(d["status"], du.PROGRESSING)
        if cond is not None and cond.get("reason") == du.TIMED_OUT_REASON:
            return
        paused_shown = cond is not None and cond.get("reason") == du.PAUSED_REASON
        now = self.clock.now()
        if d["spec"].get("paused") and not paused_shown:
            du.set_condition(d["status"], du.new_condition(du.PROGRESSING, "Unknown", du.PAUSED_REASON,
                                                           "Deployment is paused", now))
        elif not d["spec"].get("paused") and paused_shown:
            du.set_condition(d["status"], du.new_condition(du.PROGRESSING, "Unknown", du.RESUMED_REASON,
                                                           "Deployment is resumed", now))
        else:
            return
        await self._write_status(d)

    async def _is_scaling_event(self, d: dict, rss: list[dict]) -> bool:
        new_rs, olds = await self._get_all(d, rss, create=False)
        for rs in du.active([*olds, new_rs]):
            desired = du.int_annotation(rs, du.DESIRED_REPLICAS)
            if desired is not None and desired != du.replicas_of(d):
                return True
        return False

    async def _sync(self, d: dict, rss: list[dict]) -> float | None:
        """Scale without rolling (a paused Deployment, or a new size), then sync status."""
        new_rs, olds = await self._get_all(d, rss, create=False)
        new_rs, olds = await self._scale(d, new_rs, olds)
        if d["spec"].get("paused"):
            await self._cleanup(d, olds)
        await self._sync_status(d, [*olds, new_rs], new_rs)
        return None

    async def _scale(self, d: dict, new_rs: dict | None, olds: list[dict]) -> tuple[dict | None, list[dict]]:
        """Spread a change of size over the active ReplicaSets in proportion to their sizes.
        Returns the ReplicaSets as they now are."""
        by_uid: dict[str, dict] = {}

        def result() -> tuple[dict | None, list[dict]]:
            def cur(rs: dict) -> dict:
                return by_uid.get(rs["metadata"]["uid"], rs)
            return (cur(new_rs) if new_rs is not None else None), [cur(rs) for rs in olds]

        desired = du.replicas_of(d)
        one = du.find_active_or_latest(new_rs, olds)
        if one is not None:
            if du.replicas_of(one) != desired:
                _, out = await self._scale_rs_and_record(one, desired, d)
                by_uid[out["metadata"]["uid"]] = out
            return result()
        if du.is_saturated(d, new_rs):
            for rs in du.active(olds):
                _, out = await self._scale_rs_and_record(rs, 0, d)
                by_uid[out["metadata"]["uid"]] = out
            return result()
        if not du.is_rolling_update(d):
            return result()
        live = du.active([*olds, new_rs])
        allowed = desired + du.max_surge(d) if desired > 0 else 0
        to_add = allowed - du.spec_replicas(live)
        if to_add > 0:
            live = du.by_size_newer(live)
            op = "up"
        elif to_add < 0:
            live = du.by_size_older(live)
            op = "down"
        else:
            op = ""
        added = 0
        sizes: dict[str, int] = {}
        for rs in live:
            name = rs["metadata"]["name"]
            if to_add != 0:
                p = du.proportion(rs, d, to_add, added)
                sizes[name] = du.replicas_of(rs) + p
                added += p
            else:
                sizes[name] = du.replicas_of(rs)
        if to_add != 0 and live:
            first = live[0]["metadata"]["name"]
            sizes[first] = max(0, sizes[first] + to_add - added)
        for rs in live:
            _, out = await self._scale_rs(rs, sizes[rs["metadata"]["name"]], d, op or None)
            by_uid[out["metadata"]["uid"]] = out
        return result()

    # --- strategies ----------------------------------------------------------------------

    async def _rollout_rolling(self, d: dict, rss: list[dict]) -> float | None:
        new_rs, olds = await self._get_all(d, rss, create=True)
        assert new_rs is not None
        scaled, new_rs = await self._reconcile_new_rs([*olds, new_rs], new_rs, d)
        if scaled:
            return await self._sync_rollout_status(d, [*olds, new_rs], new_rs)
        scaled, olds = await self._reconcile_old_rss([*olds, new_rs], du.active(olds), olds, new_rs, d)
        if scaled:
            return await self._sync_rollout_status(d, [*olds, new_rs], new_rs)
        if du.deployment_complete(d, d["status"]):
            await self._cleanup(d, olds)
        return await self._sync_rollout_status(d, [*olds, new_rs], new_rs)

    async def _reconcile_new_rs(self, all_rss: list[dict], new_rs: dict, d: dict) -> tuple[bool, dict]:
        desired = du.replicas_of(d)
        current = du.replicas_of(new_rs)
        if current == desired:
            return False, new_rs
        if current > desired:
            return await self._scale_rs_and_record(new_rs, desired, d)
        return await self._scale_rs_and_record(new_rs, du.new_rs_new_replicas(d, all_rss, new_rs), d)

    async def _reconcile_old_rss(self, all_rss: list[dict], active_olds: list[dict], olds: list[dict],
                                 new_rs: dict, d: dict) -> tuple[bool, list[dict]]:
        """Scale old ReplicaSets down as far as availability allows; returns whether any shrank and
        the old ReplicaSets as they now are."""
        if du.spec_replicas(active_olds) == 0:
            return False, olds
        all_count = du.spec_replicas(all_rss)
        min_available = du.replicas_of(d) - du.max_unavailable(d)
        new_unavailable = du.replicas_of(new_rs) - du.status_int(new_rs, "availableReplicas")
        max_scaled_down = all_count - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False, olds
        by_uid: dict[str, dict] = {}
        # Unhealthy old pods first: removing them costs no availability.
        cleaned = 0
        current = du.by_creation(active_olds)
        for i, rs in enumerate(current):
            if cleaned >= max_scaled_down:
                break
            want, have = du.replicas_of(rs), du.status_int(rs, "availableReplicas")
            if want == 0 or want == have:
                continue
            n = min(max_scaled_down - cleaned, want - have)
            if n < 0:
                # More available than asked for: the status predates a scale-down still under
                # way. Acting on it would scale the old ReplicaSet back up; like Kubernetes,
                # refuse and look again (its status update wakes us).
                raise StaleStatus(f"when cleaning up unhealthy replicas, got invalid request to scale down "
                                  f"{rs['metadata']['namespace']}/{rs['metadata']['name']} {want} -> {want - n}")
            _, out = await self._scale_rs_and_record(rs, want - n, d)
            cleaned += n
            current[i] = by_uid[out["metadata"]["uid"]] = out
        # Then healthy ones, as long as enough stay available.
        scaled_down = 0
        available = du.available_replicas([*current, new_rs])
        if available > min_available:
            total = available - min_available
            for rs in du.by_creation(current):
                if scaled_down >= total:
                    break
                want = du.replicas_of(rs)
                if want == 0:
                    continue
                n = min(want, total - scaled_down)
                _, out = await self._scale_rs_and_record(rs, want - n, d)
                scaled_down += n
                by_uid[out["metadata"]["uid"]] = out
        return cleaned + scaled_down > 0, [by_uid.get(rs["metadata"]["uid"], rs) for rs in olds]

    async def _rollout_recreate(self, d: dict, rss: list[dict]) -> float | None:
        new_rs, olds = await self._get_all(d, rss, create=False)
        scaled = False
        current = []
        for rs in olds:
            if du.replicas_of(rs) != 0:
                changed, rs = await self._scale_rs_and_record(rs, 0, d)
                scaled = scaled or changed
            current.append(rs)
        olds = current
        if scaled or self._old_pods_running(new_rs, olds):
            return await self._sync_rollout_status(d, [*olds, new_rs], new_rs)
        if new_rs is None:
            new_rs, olds = await self._get_all(d, rss, create=True)
        assert new_rs is not None
        _, new_rs = await self._scale_rs_and_record(new_rs, du.replicas_of(d), d)
        if du.deployment_complete(d, d["status"]):
            await self._cleanup(d, olds)
        return await self._sync_rollout_status(d, [*olds, new_rs], new_rs)

    def _old_pods_running(self, new_rs: dict | None, olds: list[dict]) -> bool:
        if du.actual_replicas(olds) > 0:
            return True
        for rs in olds:
            if new_rs is not None and rs["metadata"]["uid"] == new_rs["metadata"]["uid"]:
                continue
            for pod in self.pod_informer.by_index(OWNER_INDEX, rs["metadata"]["uid"]):
                if (pod.get("status") or {}).get("phase") not in ("Failed", "Succeeded"):
                    return True
        return False

    async def _cleanup(self, d: dict, olds: list[dict]) -> None:
        """Delete the oldest empty ReplicaSets beyond revisionHistoryLimit."""
        limit = d["spec"].get("revisionHistoryLimit")
        if limit is None:
            return
        alive = [rs for rs in olds if not rs["metadata"].get("deletionTimestamp")]
        diff = len(alive) - int(limit)
        if diff <= 0:
            return
        for rs in du.by_revision(alive)[:diff]:
            md = rs["metadata"]
            if (du.status_int(rs, "replicas") != 0 or du.replicas_of(rs) != 0
                    or int(md.get("generation") or 0) > du.status_int(rs, "observedGeneration")):
                continue
            try:
                await self.client.delete(RS, md["name"], md["namespace"], preconditions={"uid": md["uid"]})
            except errors.NotFound:
                pass

    # --- status --------------------------------------------------------------------------

    def _calculate_status(self, d: dict, all_rss: list[dict | None], new_rs: dict | None) -> dict:
        available = du.available_replicas(all_rss)
        total = du.spec_replicas(all_rss)
        old = d.get("status") or {}
        status: dict[str, Any] = {
            "observedGeneration": int(d["metadata"].get("generation") or 0),
            "replicas": du.actual_replicas(all_rss),
            "updatedReplicas": du.actual_replicas([new_rs]),
            "readyReplicas": du.ready_replicas(all_rss),
            "availableReplicas": available,
            "unavailableReplicas": max(total - available, 0),
            "conditions": [dict(c) for c in old.get("conditions") or []],
            "collisionCount": old.get("collisionCount"),
        }
        now = self.clock.now()
        if available >= du.replicas_of(d) - du.max_unavailable(d):
            du.set_condition(status, du.new_condition(du.AVAILABLE, "True", du.MIN_AVAILABLE_REASON,
                                                      "Deployment has minimum availability.", now))
        else:
            du.set_condition(status, du.new_condition(du.AVAILABLE, "False", du.MIN_UNAVAILABLE_REASON,
                                                      "Deployment does not have minimum availability.", now))
        return status

    async def _sync_status(self, d: dict, all_rss: list[dict | None], new_rs: dict | None) -> None:
        status = du.prune_zero(self._calculate_status(d, all_rss, new_rs))
        if status != du.prune_zero(d.get("status") or {}):
            d["status"] = status
            await self._write_status(d)

    async def _sync_rollout_status(self, d: dict, all_rss: list[dict | None], new_rs: dict | None) -> float | None:
        """Status plus the Progressing condition; returns seconds until the progress deadline
        should be checked again when nothing else will wake the Deployment."""
        status = self._calculate_status(d, all_rss, new_rs)
        now = self.clock.now()
        if not du.has_progress_deadline(d):
            du.remove_condition(status, du.PROGRESSING)
        current = du.get_condition(d["status"], du.PROGRESSING)
        complete = (int(status["replicas"]) == int(status["updatedReplicas"]) and current is not None
                    and current.get("reason") == du.NEW_RS_AVAILABLE_REASON)
        rs_name = new_rs["metadata"]["name"] if new_rs is not None else None
        if du.has_progress_deadline(d) and not complete:
            if du.deployment_complete(d, status):
                msg = (f'ReplicaSet "{rs_name}" has successfully progressed.' if rs_name
                       else f'Deployment "{d["metadata"]["name"]}" has successfully progressed.')
                du.set_condition(status, du.new_condition(du.PROGRESSING, "True", du.NEW_RS_AVAILABLE_REASON,
                                                          msg, now))
            elif du.deployment_progressing(d, status):
                msg = (f'ReplicaSet "{rs_name}" is progressing.' if rs_name
                       else f'Deployment "{d["metadata"]["name"]}" is progressing.')
                cond = du.new_condition(du.PROGRESSING, "True", du.RS_UPDATED_REASON, msg, now)
                if current is not None:
                    if current.get("status") == "True":
                        cond["lastTransitionTime"] = current.get("lastTransitionTime")
                    du.remove_condition(status, du.PROGRESSING)
                du.set_condition(status, cond)
            elif du.deployment_timed_out(d, status, now):
                msg = (f'ReplicaSet "{rs_name}" has timed out progressing.' if rs_name
                       else f'Deployment "{d["metadata"]["name"]}" has timed out progressing.')
                du.set_condition(status, du.new_condition(du.PROGRESSING, "False", du.TIMED_OUT_REASON, msg, now))
        failures = self._replica_failures(all_rss, new_rs)
        if failures:
            du.set_condition(status, failures[0])
        else:
            du.remove_condition(status, du.REPLICA_FAILURE)
        status = du.prune_zero(status)
        if status == du.prune_zero(d.get("status") or {}):
            return self._stuck_requeue(d, status)
        d["status"] = status
        await self._write_status(d)
        return None

    @staticmethod
    def _replica_failures(all_rss: list[dict | None], new_rs: dict | None) -> list[dict]:
        def of(rs: dict | None) -> list[dict]:
            if rs is None:
                return []
            return [du.rs_failure_as_deployment_condition(c) for c in (rs.get("status") or {}).get("conditions")
                    or [] if c.get("type") == du.REPLICA_FAILURE]
        found = of(new_rs)
        if found:
            return found
        return [c for rs in all_rss for c in of(rs)]

    def _stuck_requeue(self, d: dict, status: dict) -> float | None:
        """When to look again at a rollout that may pass its progress deadline unobserved."""
        current = du.get_condition(d["status"], du.PROGRESSING)
        if not du.has_progress_deadline(d) or current is None:
            return None
        if du.deployment_complete(d, status) or current.get("reason") == du.TIMED_OUT_REASON:
            return None
        since = current.get("lastUpdateTime")
        if not since:
            return None
        after = meta.parse_rfc3339(since).timestamp() + int(d["spec"]["progressDeadlineSeconds"]) - self.clock.now()
        if after < 1:
            return 1.0
        return after + 1
