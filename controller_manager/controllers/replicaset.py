"""The ReplicaSet controller: as many active pods as ``spec.replicas``, no more, no fewer.

``reconcile(namespace/name)`` claims the pods the ReplicaSet's selector matches (adopting
orphans, releasing pods that stopped matching), then, once every create and delete it asked for
earlier has shown up in the pod informer (``Expectations``), creates or deletes the difference:
creates in slowly growing batches (1, 2, 4, ...) so a failing quota or webhook costs one call,
not hundreds; deletes the pods that matter least first (``deletion_order``). At most
``BURST`` pods are created or deleted per pass. Status counts replicas, fully labelled, ready and
available (ready for ``minReadySeconds``) pods, with a ReplicaFailure condition while creates or
deletes fail. Events are those of Kubernetes' replicaset-controller (SuccessfulCreate,
FailedCreate, SuccessfulDelete, FailedDelete).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, NamedTuple

from api import errors, meta
from api.selectors import from_set
from client.informer import NAMESPACE_INDEX
from controller_manager.base import Controller, ControllerContext
from controller_manager.common import (
    ORPHAN_INDEX,
    OWNER_INDEX,
    TERMINAL_PHASES,
    Expectations,
    claim,
    controller_ref,
    deletion_order,
    ensure_owner_indexes,
    is_pod_active,
    is_pod_available,
    is_pod_ready,
    label_matcher,
    pod_from_template,
    ready_since,
    resolve_controller,
    selector_of,
)

RS = "replicasets.apps"
PODS = "pods"
BURST = 500                    # pods created or deleted per pass at most
SLOW_START_INITIAL = 1
STATUS_RETRIES = 1

CONFLICT_RETRY = 0.05          # seconds before a reconcile that hit a write conflict runs again


class _PodFacts(NamedTuple):
    """What a sync needs to know of one version of a pod."""

    pod: dict
    active: bool               # neither terminal nor being deleted
    selected: bool             # by the ReplicaSet's selector
    fully_labeled: bool        # carries every label of the ReplicaSet's template
    ready: bool


def _facts_of(pod: dict, selected: Any, fully_labeled: Any) -> _PodFacts:
    labels = pod["metadata"].get("labels") or {}
    status = pod.get("status") or {}
    ready = False
    for c in status.get("conditions") or ():
        if c.get("type") == "Ready":
            ready = c.get("status") == "True"
            break
    active = not pod["metadata"].get("deletionTimestamp") and status.get("phase") not in TERMINAL_PHASES
    return _PodFacts(pod, active, selected(labels), fully_labeled(labels), ready)


# --- the controller -------------------------------------------------------------------------

class ReplicaSetController(Controller):
    name = "replicaset"
    workers = 5
    component = "replicaset-controller"
    kind = "ReplicaSet"
    resource = RS

    def __init__(self, ctx: ControllerContext):
        super().__init__(ctx)
        self.recorder = ctx.recorder(self.component)
        self.expectations = Expectations(clock=ctx.clock)
        # Per ReplicaSet key: (uid, selector, template labels) and the facts of the cached pod
        # objects its last sync saw, by object id.
        self._facts: dict[str, tuple[tuple[Any, ...], dict[int, _PodFacts]]] = {}
        # Per ReplicaSet key: what our last status write returned, until the cache is as new.
        self._written: dict[str, dict] = {}
        self.rs_informer = ctx.informers.informer_for(self.resource)
        self.pod_informer = ctx.informers.informer_for(PODS)
        ensure_owner_indexes(self.pod_informer)
        self.rs_informer.add_event_handler(on_add=self.enqueue, on_update=self._rs_updated,
                                           on_delete=self._rs_deleted)
        self.pod_informer.add_event_handler(on_add=self._pod_added, on_update=self._pod_updated,
                                            on_delete=self._pod_deleted)

    # --- informer handlers ---------------------------------------------------------------

    def _rs_updated(self, old: dict, new: dict) -> None:
        self.enqueue(new)

    def _rs_deleted(self, rs: dict) -> None:
        key = meta.key_of(rs)
        self.expectations.forget(key)
        self._facts.pop(key, None)
        self._written.pop(key, None)
        self.enqueue(key)

    def _owner_of(self, pod: dict, ref: dict | None = None) -> dict | None:
        ns = pod["metadata"].get("namespace", "")
        return resolve_controller(self.rs_informer, ns, ref if ref is not None else controller_ref(pod),
                                  self.kind)

    def _matching_owners(self, pod: dict) -> list[dict]:
        labels = meta.labels_of(pod)
        ns = pod["metadata"].get("namespace", "")
        return [rs for rs in self.rs_informer.by_index(NAMESPACE_INDEX, ns) if selector_of(rs).matches(labels)]

    def _pod_added(self, pod: dict) -> None:
        if pod["metadata"].get("deletionTimestamp"):
            self._pod_deleted(pod)
            return
        ref = controller_ref(pod)
        if ref is not None:
            rs = self._owner_of(pod, ref)
            if rs is not None:
                key = meta.key_of(rs)
                self.expectations.creation_observed(key)
                self.enqueue(key)
            return
        for rs in self._matching_owners(pod):
            self.enqueue(rs)

    def _pod_updated(self, old: dict, new: dict) -> None:
        if old["metadata"].get("resourceVersion") == new["metadata"].get("resourceVersion"):
            return
        labels_changed = meta.labels_of(old) != meta.labels_of(new)
        if new["metadata"].get("deletionTimestamp"):
            self._pod_deleted(new)
            if labels_changed:
                self._pod_deleted(old)
            return
        old_ref, new_ref = controller_ref(old), controller_ref(new)
        ref_changed = (old_ref or {}).get("uid") != (new_ref or {}).get("uid")
        if ref_changed and old_ref is not None:
            prev = self._owner_of(old, old_ref)
            if prev is not None:
                self.enqueue(prev)
        if new_ref is not None:
            rs = self._owner_of(new, new_ref)
            if rs is None:
                return
            self.enqueue(rs)
            min_ready = int((rs.get("spec") or {}).get("minReadySeconds") or 0)
            if min_ready > 0 and not is_pod_ready(old) and is_pod_ready(new):
                self.enqueue_after(rs, min_ready)
            return
        if labels_changed or ref_changed:
            for rs in self._matching_owners(new):
                self.enqueue(rs)

    def _pod_deleted(self, pod: dict) -> None:
        ref = controller_ref(pod)
        if ref is None:
            return
        rs = self._owner_of(pod, ref)
        if rs is None:
            return
        key = meta.key_of(rs)
        self.expectations.deletion_observed(key, pod["metadata"].get("uid"))
        self.enqueue(key)

    # --- reconcile -----------------------------------------------------------------------

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.now(), UTC)

    async def reconcile(self, key: str) -> float | None:
        try:
            return await self._reconcile(key)
        except errors.Conflict:
            # Our cache is behind a write (often our own): look again once it has caught up.
            self.log.debug("conflict; retrying", key=key)
            return CONFLICT_RETRY

    async def _reconcile(self, key: str) -> float | None:
        rs = self.rs_informer.get(key)
        if rs is None:
            self.expectations.forget(key)
            self._facts.pop(key, None)
            self._written.pop(key, None)
            return None
        needs_sync = self.expectations.satisfied(key)
        facts = await self._claim(key, rs)
        pods = [f.pod for f in facts]
        failure: tuple[str, str] | None = None
        if needs_sync and not rs["metadata"].get("deletionTimestamp"):
            failure = await self._manage_replicas(pods, rs, key)
        updated = await self._update_status(key, rs, facts, failure)
        if failure is not None:
            raise RuntimeError(f"{failure[0]}: {failure[1]}")
        return self._next_availability_check(updated or rs, pods)

    async def _claim(self, key: str, rs: dict) -> list[_PodFacts]:
        """``claim`` of the active pods the ReplicaSet owns or could adopt, as facts.

        Every sync looks at every pod of the ReplicaSet, so what a sync needs of a pod is worked
        out once per version of it: cached objects are replaced, never changed, so a pod whose
        cached object is the one seen last time has the same facts (while the selector and the
        template's labels stay as they were)."""
        md = rs["metadata"]
        selector = selector_of(rs)
        spec = rs.get("spec") or {}
        template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        signature = (md.get("uid"), str(selector), tuple(sorted(template_labels.items())))
        known = self._facts.get(key)
        before = known[1] if known is not None and known[0] == signature else {}
        selected = label_matcher(selector)
        fully_labeled = label_matcher(from_set(template_labels))
        now: dict[int, _PodFacts] = {}
        mine: list[_PodFacts] = []
        release: list[dict] = []
        seen = before.get
        for pod in self.pod_informer.by_index(OWNER_INDEX, md["uid"]):
            # Keyed by the cached object's identity: the facts hold the object, so while they
            # are remembered no other object can take its id.
            f = seen(id(pod))
            if f is None:
                f = _facts_of(pod, selected, fully_labeled)
            now[id(pod)] = f
            if not f.active:
                continue
            if f.selected:
                mine.append(f)
            else:
                release.append(pod)
        self._facts[key] = (signature, now)
        if release:
            # Owned pods that stopped matching: let the shared claim release them.
            await claim(self.client, PODS, rs, release, selector)
        orphans = [p for p in self.pod_informer.by_index(ORPHAN_INDEX, md["namespace"]) if is_pod_active(p)]
        if orphans:
            adopted = await claim(self.client, PODS, rs, orphans, selector)
            mine += [_facts_of(p, selected, fully_labeled) for p in adopted]
        return mine

    def _next_availability_check(self, rs: dict, pods: list[dict]) -> float | None:
        """Seconds until the next ready pod becomes available, when minReadySeconds holds some back."""
        min_ready = int((rs.get("spec") or {}).get("minReadySeconds") or 0)
        if min_ready <= 0:
            return None
        now = self.clock.now()
        waits = []
        for p in pods:
            since = ready_since(p)
            if since is not None and now - since < min_ready:
                waits.append(since + min_ready - now)
        return max(min(waits), 0.001) + 0.001 if waits else None

    async def _manage_replicas(self, pods: list[dict], rs: dict, key: str) -> tuple[str, str] | None:
        """Create or delete the difference; returns (reason, message) of the first failure."""
        diff = len(pods) - int((rs.get("spec") or {}).get("replicas") or 0)
        if diff < 0:
            n = min(-diff, BURST)
            self.expectations.expect_creations(key, n)
            created, err = await self._slow_start(n, lambda: self._create_pod(rs))
            for _ in range(n - created):
                self.expectations.creation_observed(key)
            return ("FailedCreate", err) if err else None
        if diff > 0:
            n = min(diff, BURST)
            victims = deletion_order(pods)[:n]
            self.expectations.expect_deletions(key, [p["metadata"]["uid"] for p in victims])
            results = await asyncio.gather(*(self._delete_pod(rs, key, p) for p in victims))
            err = next((r for r in results if r), None)
            return ("FailedDelete", err) if err else None
        return None

    async def _slow_start(self, count: int, fn: Any) -> tuple[int, str | None]:
        """Run ``fn`` ``count`` times in batches of 1, 2, 4, ...; stop after a batch with a failure.
        Returns (successes, first error message)."""
        done = 0
        batch = min(count, SLOW_START_INITIAL)
        remaining = count
        while batch > 0:
            results = await asyncio.gather(*(fn() for _ in range(batch)))
            errs = [r for r in results if r]
            done += batch - len(errs)
            if errs:
                return done, errs[0]
            remaining -= batch
            batch = min(2 * batch, remaining)
        return done, None

    async def _create_pod(self, rs: dict) -> str | None:
        pod = pod_from_template((rs.get("spec") or {}).get("template") or {}, rs)
        ns = rs["metadata"]["namespace"]
        try:
            created = await self.client.create(PODS, pod, ns)
        except errors.StatusError as e:
            if not _namespace_terminating(e):
                self.recorder.warning(rs, "FailedCreate", f"Error creating: {e}")
            return str(e)
        self.recorder.normal(rs, "SuccessfulCreate", f"Created pod: {created['metadata']['name']}")
        return None

    async def _delete_pod(self, rs: dict, key: str, pod: dict) -> str | None:
        md = pod["metadata"]
        try:
            await self.client.delete(PODS, md["name"], md["namespace"], preconditions={"uid": md["uid"]})
        except errors.NotFound:
            self.expectations.deletion_observed(key, md["uid"])
            return None
        except errors.StatusError as e:
            self.expectations.deletion_observed(key, md["uid"])
            self.recorder.warning(rs, "FailedDelete", f"Error deleting: {e}")
            return str(e)
        self.recorder.normal(rs, "SuccessfulDelete", f"Deleted pod: {md['name']}")
        return None

    # --- status --------------------------------------------------------------------------

    def calculate_status(self, rs: dict, facts: list[_PodFacts], failure: tuple[str, str] | None) -> dict:
        spec = rs.get("spec") or {}
        min_ready = int(spec.get("minReadySeconds") or 0)
        now = self._now()
        fully = ready = available = 0
        for f in facts:
            if f.fully_labeled:
                fully += 1
            if f.ready:
                ready += 1
                if min_ready <= 0 or is_pod_available(f.pod, min_ready, now):
                    available += 1
        old = rs.get("status") or {}
        status: dict[str, Any] = {"replicas": len(facts), "fullyLabeledReplicas": fully, "readyReplicas": ready,
                                  "availableReplicas": available,
                                  "observedGeneration": int(rs["metadata"].get("generation") or 0)}
        conditions = [dict(c) for c in old.get("conditions") or []]
        has_failure = any(c.get("type") == "ReplicaFailure" for c in conditions)
        if failure is not None and not has_failure:
            conditions.append({"type": "ReplicaFailure", "status": "True",
                               "lastTransitionTime": meta.to_rfc3339(now), "reason": failure[0],
                               "message": failure[1]})
        elif failure is None and has_failure:
            conditions = [c for c in conditions if c.get("type") != "ReplicaFailure"]
        if conditions:
            status["conditions"] = conditions
        return {k: v for k, v in status.items() if v or k == "replicas"}

    async def _update_status(self, key: str, rs: dict, facts: list[_PodFacts], failure: tuple[str, str] | None
                             ) -> dict | None:
        # A sync right after our own status write often sees the ReplicaSet as it was before it
        # (the watch has not brought the write back yet): start from what the write returned, so
        # that the next write is not refused for a stale resourceVersion (and then read again).
        base = rs
        written = self._written.get(key)
        if written is not None:
            if (written["metadata"].get("uid") == rs["metadata"].get("uid")
                    and _rv(written) > _rv(rs)):
                base = written
            else:
                del self._written[key]
        status = self.calculate_status(base, facts, failure)
        if status == (base.get("status") or {}):
            return None
        current = base
        for attempt in range(STATUS_RETRIES + 1):
            obj = {k: v for k, v in current.items() if k != "status"}
            obj["status"] = status
            try:
                out = await self.client.update_status(self.resource, obj)
            except errors.Conflict:
                if attempt == STATUS_RETRIES:
                    raise
                md = current["metadata"]
                current = await self.client.get(self.resource, md["name"], md["namespace"])
                if current["metadata"].get("uid") != md.get("uid"):
                    return None
                continue
            except errors.NotFound:
                return None
            self._written[key] = out
            return out
        return None


def _rv(obj: dict) -> int:
    """An object's resourceVersion as the storage revision it is (0 when it is not a number)."""
    try:
        return int(obj["metadata"].get("resourceVersion") or 0)
    except ValueError:
        return 0


def _namespace_terminating(e: errors.StatusError) -> bool:
    """Creating in a namespace being deleted fails; that is expected, not worth an event."""
    return any(c.type == "NamespaceTerminating" for c in e.causes) or "because it is being terminated" in e.message
