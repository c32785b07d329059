"""The Job controller, and the controller deleting finished Jobs after ``ttlSecondsAfterFinished``.

``JobController.reconcile(namespace/name)`` runs pods until ``completions`` succeed, at most
``parallelism`` at a time, and finishes the Job:

- Pods are created from the template with the ``batch.kubernetes.io/job-tracking`` finalizer.
  A finished pod is counted by first recording its uid in ``status.uncountedTerminatedPods``,
  then removing its finalizer, then moving it into ``succeeded``/``failed``; so no pod is counted
  twice or lost, even across restarts. A pod being deleted before it finished counts as failed
  (unless ``podReplacementPolicy: Failed``).
- Indexed completion mode: one pod per index ``0..completions-1``, named ``<job>-<index>-<rnd>``,
  labelled and annotated with ``batch.kubernetes.io/job-completion-index``, given
  ``JOB_COMPLETION_INDEX`` and a hostname; ``status.completedIndexes`` as intervals ("0-2,4").
- ``podFailurePolicy``: the first matching rule of a failed pod decides: FailJob fails the Job,
  Ignore does not count the failure, Count (and FailIndex, without per-index limits) counts it.
- Failure after more than ``backoffLimit`` counted failures, or after ``activeDeadlineSeconds``
  from ``startTime``. Re-created pods wait out a back-off of 10 s doubling per consecutive
  failure up to 6 minutes.
- As Kubernetes 1.32 does, success first adds SuccessCriteriaMet and failure FailureTarget; the
  remaining pods are deleted, and once none is left running or terminating the terminal
  condition Complete (with ``completionTime``) or Failed follows with the same reason.
- ``suspend`` deletes active pods (condition Suspended); resuming restarts ``startTime``.
- Pods whose Job is finished, being deleted or gone lose the finalizer (queue keys
  ``pod:<namespace>/<name>`` for the last case), so deleting a Job never leaves pods stuck.

``TTLAfterFinishedController`` deletes a finished Job (propagation Background) once
``ttlSecondsAfterFinished`` has passed since it finished, and requeues itself until then.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from api import errors, meta
from client.informer import NAMESPACE_INDEX, copy_object
from controller_manager.base import Controller, ControllerContext
from controller_manager.common import (
    OWNER_INDEX,
    Expectations,
    candidates,
    claim,
    controller_ref,
    deletion_order,
    ensure_owner_indexes,
    is_pod_active,
    is_pod_ready,
    pod_from_template,
    resolve_controller,
    selector_of,
    timestamp,
)
from controller_manager.jobutil import (
    COMPLETION_INDEX,
    JOB_INDEX_ENV,
    TRACKING_FINALIZER,
    backoff_delay,
    condition,
    finished_condition,
    format_intervals,
    match_failure_policy,
    parse_intervals,
    pod_index,
    set_condition,
)

JOBS = "jobs.batch"
PODS = "pods"
BURST = 500
COMPLETED_REASON = "CompletionsReached"
COMPLETED_MESSAGE = "Reached expected number of succeeded pods"
BACKOFF_REASON = "BackoffLimitExceeded"
BACKOFF_MESSAGE = "Job has reached the specified backoff limit"
DEADLINE_REASON = "DeadlineExceeded"
DEADLINE_MESSAGE = "Job was active longer than specified deadline"
POLICY_REASON = "PodFailurePolicy"
ORPHAN_PREFIX = "pod:"          # queue keys of pods whose Job is gone but which hold our finalizer


def _rv(obj: dict | None) -> int:
    try:
        return int((obj or {}).get("metadata", {}).get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


def _phase(pod: dict) -> str | None:
    return (pod.get("status") or {}).get("phase")


def _terminating(pod: dict) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp")) and _phase(pod) not in ("Succeeded", "Failed")


class JobController(Controller):
    name = "job"
    workers = 5
    component = "job-controller"
    kind = "Job"

    def __init__(self, ctx: ControllerContext):
        super().__init__(ctx)
        self.recorder = ctx.recorder(self.component)
        self.expectations = Expectations(clock=ctx.clock)
        self.jobs = ctx.informers.informer_for(JOBS)
        self.pods = ctx.informers.informer_for(PODS)
        ensure_owner_indexes(self.pods)
        self._latest: dict[str, dict] = {}                    # our last status write per job
        self._unfinalized: dict[str, set[str]] = {}           # pod uids whose finalizer we removed
        self._failures: dict[str, tuple[int, float]] = {}     # consecutive failures, last one's time
        self.jobs.add_event_handler(on_add=self.enqueue, on_update=lambda o, n: self.enqueue(n),
                                    on_delete=self._job_deleted)
        self.pods.add_event_handler(on_add=self._pod_added, on_update=self._pod_updated,
                                    on_delete=self._pod_deleted)

    # --- informer handlers -------------------------------------------------------------------

    def _job_deleted(self, job: dict) -> None:
        key = meta.key_of(job)
        self._forget(key)
        self.enqueue(key)
        for pod in self.pods.by_index(OWNER_INDEX, job["metadata"].get("uid", "")):
            self._check_orphan(pod)

    def _check_orphan(self, pod: dict) -> None:
        """A pod still holding our finalizer whose Job is gone: its finalizer must go too."""
        ref = controller_ref(pod)
        if TRACKING_FINALIZER in (pod["metadata"].get("finalizers") or []) and \
                (ref is None or ref.get("kind") == self.kind) and self._owner_key(pod) is None:
            self.enqueue(ORPHAN_PREFIX + meta.key_of(pod))

    def _forget(self, key: str) -> None:
        self.expectations.forget(key)
        self._latest.pop(key, None)
        self._unfinalized.pop(key, None)
        self._failures.pop(key, None)

    def _owner_key(self, pod: dict) -> str | None:
        job = resolve_controller(self.jobs, pod["metadata"].get("namespace", ""), controller_ref(pod), self.kind)
        return meta.key_of(job) if job is not None else None

    def _pod_added(self, pod: dict) -> None:
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.creation_observed(key)
            self.enqueue(key)
            return
        self._check_orphan(pod)
        if controller_ref(pod) is None:
            labels = meta.labels_of(pod)
            for job in self.jobs.by_index(NAMESPACE_INDEX, pod["metadata"].get("namespace", "")):
                if selector_of(job).matches(labels):
                    self.enqueue(job)

    def _pod_updated(self, old: dict, new: dict) -> None:
        if old["metadata"].get("resourceVersion") == new["metadata"].get("resourceVersion"):
            return
        key = self._owner_key(new)
        if key is None:
            self._pod_added(new)
            return
        if TRACKING_FINALIZER not in (new["metadata"].get("finalizers") or []):
            self._unfinalized.get(key, set()).discard(new["metadata"].get("uid"))
        if new["metadata"].get("deletionTimestamp") and not old["metadata"].get("deletionTimestamp"):
            self.expectations.deletion_observed(key, new["metadata"].get("uid"))
        self.enqueue(key)

    def _pod_deleted(self, pod: dict) -> None:
        key = self._owner_key(pod)
        if key is None:
            return
        self._unfinalized.get(key, set()).discard(pod["metadata"].get("uid"))
        self.expectations.deletion_observed(key, pod["metadata"].get("uid"))
        self.enqueue(key)

    # --- reconcile ---------------------------------------------------------------------------

    def _job(self, key: str) -> dict | None:
        job = self.jobs.get(key)
        if job is None:
            return None
        mine = self._latest.get(key)
        if mine is not None and mine["metadata"].get("uid") == job["metadata"].get("uid") and _rv(mine) > _rv(job):
            return mine
        self._latest.pop(key, None)
        return job

    async def reconcile(self, key: str) -> float | None:
        if key.startswith(ORPHAN_PREFIX):
            await self._release_orphan(key[len(ORPHAN_PREFIX):])
            return None
        job = self._job(key)
        if job is None:
            self._forget(key)
            return None
        candidates_ = candidates(self.pods, job)
        if finished_condition(job) is not None or job["metadata"].get("deletionTimestamp"):
            await self._remove_finalizers(key, [p for p in candidates_ if self._has_finalizer(key, p)
                                                and controller_ref(p) and controller_ref(p)["uid"] ==
                                                job["metadata"]["uid"]])
            return None
        pods = await claim(self.client, PODS, job, candidates_, selector_of(job))
        return await self._sync(key, job, pods)

    async def _release_orphan(self, pod_key: str) -> None:
        pod = self.pods.get(pod_key)
        if pod is None or TRACKING_FINALIZER not in (pod["metadata"].get("finalizers") or []):
            return
        ref = controller_ref(pod)
        if ref is not None:
            if ref.get("kind") != self.kind:
                return
            ns = pod["metadata"].get("namespace", "")
            try:
                job = await self.client.get(JOBS, ref.get("name", ""), ns)
            except errors.NotFound:
                job = None
            if job is not None and job["metadata"].get("uid") == ref.get("uid") and \
                    not job["metadata"].get("deletionTimestamp") and finished_condition(job) is None:
                return                         # the Job is there after all: its own sync counts the pod
        await self._remove_finalizers(ORPHAN_PREFIX + pod_key, [pod])
        self._unfinalized.pop(ORPHAN_PREFIX + pod_key, None)

    def _has_finalizer(self, key: str, pod: dict) -> bool:
        return (TRACKING_FINALIZER in (pod["metadata"].get("finalizers") or [])
                and pod["metadata"].get("uid") not in self._unfinalized.get(key, set()))

    def _is_failed(self, job: dict, pod: dict) -> bool:
        if _phase(pod) == "Failed":
            return True
        if (job.get("spec") or {}).get("podReplacementPolicy") == "Failed":
            return False
        return bool(pod["metadata"].get("deletionTimestamp")) and _phase(pod) != "Succeeded"

    async def _sync(self, key: str, job: dict, pods: list[dict]) -> float | None:
        spec = job.get("spec") or {}
        now = self.clock.now()
        now_s = meta.to_rfc3339(datetime.fromtimestamp(now, UTC))
        status: dict[str, Any] = copy_object(job.get("status") or {})
        uncounted = status.get("uncountedTerminatedPods") or {}
        unc_s = list(uncounted.get("succeeded") or [])
        unc_f = list(uncounted.get("failed") or [])
        indexed = spec.get("completionMode") == "Indexed"
        completions = spec.get("completions")
        parallelism = int(spec.get("parallelism") if spec.get("parallelism") is not None else 1)
        completed = parse_intervals(status.get("completedIndexes"))
        suspended = bool(spec.get("suspend"))

        # 1. Newly finished pods still holding our finalizer.
        release: list[dict] = []
        failure_target: tuple[str, str] | None = None
        target = condition(job, "FailureTarget")
        if target is not None:
            failure_target = (target.get("reason", ""), target.get("message", ""))
        success_met = condition(job, "SuccessCriteriaMet") is not None
        new_failures = new_successes = 0
        known = set(unc_s) | set(unc_f)
        for p in pods:
            uid = p["metadata"]["uid"]
            if not self._has_finalizer(key, p):
                continue
            if uid in known:
                release.append(p)       # recorded by an earlier pass that did not get to its finalizer
                continue
            if _phase(p) == "Succeeded":
                idx = pod_index(p) if indexed else None
                if not indexed or (idx is not None and idx < int(completions or 0) and idx not in completed):
                    unc_s.append(uid)
                    new_successes += 1
                    if idx is not None:
                        completed.add(idx)
                release.append(p)
            elif suspended and p["metadata"].get("deletionTimestamp"):
                release.append(p)       # stopped by the suspension: not a failure
            elif self._is_failed(job, p):
                match = match_failure_policy(job, p) if _phase(p) == "Failed" else None
                action = match[0] if match else "Count"
                if action != "Ignore":
                    unc_f.append(uid)
                    new_failures += 1
                if action == "FailJob" and failure_target is None:
                    failure_target = (POLICY_REASON, match[1])
                release.append(p)
        if new_successes:
            self._failures.pop(key, None)
        if new_failures:
            count, _ = self._failures.get(key, (0, 0.0))
            self._failures[key] = (count + new_failures, now)

        active = [p for p in pods if is_pod_active(p)]
        succeeded = int(status.get("succeeded") or 0) + len(unc_s)
        failed = int(status.get("failed") or 0) + len(unc_f)
        start = timestamp(status.get("startTime"))
        if start is None and not suspended:
            start = now
            status["startTime"] = now_s

        # 2. Decide whether the Job has met its success or failure criteria.
        requeue: list[float] = []
        if failure_target is None and not success_met:
            if failed > int(spec.get("backoffLimit") if spec.get("backoffLimit") is not None else 6):
                failure_target = (BACKOFF_REASON, BACKOFF_MESSAGE)
            elif spec.get("activeDeadlineSeconds") is not None and start is not None and not suspended:
                left = start + int(spec["activeDeadlineSeconds"]) - now
                if left <= 0:
                    failure_target = (DEADLINE_REASON, DEADLINE_MESSAGE)
                else:
                    requeue.append(left)
        if failure_target is None and not success_met:
            if indexed:
                success_met = len(completed) >= int(completions or 0)
            elif completions is not None:
                success_met = succeeded >= int(completions)
            else:
                success_met = succeeded > 0 and not active
        if failure_target is not None:
            set_condition(status, "FailureTarget", "True", failure_target[0], failure_target[1], now_s)
        elif success_met:
            set_condition(status, "SuccessCriteriaMet", "True", COMPLETED_REASON, COMPLETED_MESSAGE, now_s)

        # 3. Record the newly finished pods before their finalizers go.
        status["uncountedTerminatedPods"] = {k: v for k, v in (("succeeded", unc_s), ("failed", unc_f)) if v}
        if indexed:
            status["completedIndexes"] = format_intervals(completed)
        if unc_s != list(uncounted.get("succeeded") or []) or unc_f != list(uncounted.get("failed") or []):
            job = await self._write_status(key, job, status)
            if job is None:
                return None
            status = copy_object(job.get("status") or {})

        # 4. Pods: stop them all when the Job is done or suspended, otherwise create or delete.
        finishing = failure_target is not None or success_met
        if finishing or suspended:
            await self._delete_pods(key, job, active)
            if suspended and not finishing:
                if set_condition(status, "Suspended", "True", "JobSuspended", "Job suspended", now_s):
                    self.recorder.normal(job, "Suspended", "Job suspended")
            active_after: list[dict] = []
        else:
            if condition(job, "Suspended") is not None:
                set_condition(status, "Suspended", "False", "JobResumed", "Job resumed", now_s)
                status["startTime"] = now_s
                self.recorder.normal(job, "Resumed", "Job resumed")
            if self.expectations.satisfied(key):
                wait = await self._manage(key, job, active, succeeded, completed, indexed, completions,
                                          parallelism, now)
                if wait:
                    requeue.append(wait)
            active_after = active
        if finishing:
            release += [p for p in pods if self._has_finalizer(key, p) and not is_pod_active(p)
                        and p not in release]
        await self._remove_finalizers(key, release)

        # 5. Count what is no longer held by a finalizer; finish once nothing is left running.
        held = {p["metadata"]["uid"] for p in pods if self._has_finalizer(key, p)}
        moved_s = [u for u in unc_s if u not in held]
        moved_f = [u for u in unc_f if u not in held]
        status["succeeded"] = int(status.get("succeeded") or 0) + len(moved_s)
        status["failed"] = int(status.get("failed") or 0) + len(moved_f)
        left_s = [u for u in unc_s if u in held]
        left_f = [u for u in unc_f if u in held]
        status["uncountedTerminatedPods"] = {k: v for k, v in (("succeeded", left_s), ("failed", left_f)) if v}
        terminating = [p for p in pods if _terminating(p)]
        status["active"] = len(active_after)
        status["ready"] = sum(1 for p in active_after if is_pod_ready(p))
        status["terminating"] = len(terminating) + (len(active) if finishing or suspended else 0)
        if finishing and not left_s and not left_f and status["terminating"] == 0:
            status["active"] = 0
            if failure_target is not None:
                set_condition(status, "Failed", "True", failure_target[0], failure_target[1], now_s)
                self.recorder.warning(job, failure_target[0], failure_target[1])
            else:
                set_condition(status, "Complete", "True", COMPLETED_REASON, COMPLETED_MESSAGE, now_s)
                status["completionTime"] = now_s
                self.recorder.normal(job, "Completed", "Job completed")
        status = {k: v for k, v in status.items() if v not in (None, "") or k in ("ready", "terminating")}
        for k in ("active", "succeeded", "failed"):
            if not status.get(k):
                status.pop(k, None)
        if status != (job.get("status") or {}):
            await self._write_status(key, job, status)
        if finishing and status.get("terminating"):
            return None                       # pod events bring us back
        return min(requeue) + 0.001 if requeue else None

    async def _write_status(self, key: str, job: dict, status: dict) -> dict | None:
        body = {k: v for k, v in job.items() if k != "status"}
        body["status"] = status
        try:
            written = await self.client.update_status(JOBS, body)
        except errors.NotFound:
            return None
        self._latest[key] = written
        return written

    # --- pods ------------------------------------------------------------------------------

    async def _manage(self, key: str, job: dict, active: list[dict], succeeded: int, completed: set[int],
                      indexed: bool, completions: int | None, parallelism: int, now: float) -> float | None:
        """Create or delete pods toward the wanted number; seconds of back-off left, if any."""
        deletes: list[dict] = []
        creates: list[int | None] = []
        if indexed:
            by_index: dict[int, list[dict]] = {}
            for p in active:
                idx = pod_index(p)
                if idx is None or idx >= int(completions or 0) or idx in completed:
                    deletes.append(p)
                else:
                    by_index.setdefault(idx, []).append(p)
            for group in by_index.values():
                deletes += deletion_order(group)[:-1]          # one pod per index
            running = len(by_index)
            room = max(0, parallelism - running)
            pending = [i for i in range(int(completions or 0)) if i not in completed and i not in by_index]
            creates = list(pending[:room])
            if running > parallelism:
                excess = deletion_order([g[-1] for g in by_index.values()])[:running - parallelism]
                deletes += excess
        else:
            want = parallelism
            if completions is not None:
                want = min(parallelism, max(0, int(completions) - succeeded))
            elif succeeded > 0:
                want = min(parallelism, len(active))
            diff = want - len(active)
            if diff < 0:
                deletes = deletion_order(active)[:-diff]
            else:
                creates = [None] * diff
        if deletes:
            await self._delete_pods(key, job, deletes)
        if not creates:
            return None
        count, last = self._failures.get(key, (0, 0.0))
        wait = last + backoff_delay(count) - now if count else 0.0
        if wait > 0:
            return wait
        creates = creates[:BURST]
        self.expectations.expect_creations(key, len(creates))
        results = await asyncio.gather(*(self._create_pod(job, idx) for idx in creates))
        for ok in results:
            if not ok:
                self.expectations.creation_observed(key)
        return None

    def _pod_for(self, job: dict, idx: int | None) -> dict:
        spec = job.get("spec") or {}
        name = job["metadata"]["name"]
        prefix = f"{name}-" if idx is None else f"{name}-{idx}-"
        pod = pod_from_template(spec.get("template") or {}, job, generate_name=prefix)
        pod["metadata"]["finalizers"] = list(pod["metadata"].get("finalizers") or []) + [TRACKING_FINALIZER]
        if idx is not None:
            pod["metadata"].setdefault("annotations", {})[COMPLETION_INDEX] = str(idx)
            pod["metadata"]["labels"][COMPLETION_INDEX] = str(idx)
            pspec = pod["spec"]
            if not pspec.get("hostname"):
                pspec["hostname"] = f"{name}-{idx}"
            env_var = {"name": JOB_INDEX_ENV, "valueFrom": {"fieldRef": {
                "fieldPath": f"metadata.annotations['{COMPLETION_INDEX}']"}}}
            for c in (pspec.get("initContainers") or []) + (pspec.get("containers") or []):
                env = [e for e in c.get("env") or [] if e.get("name") != JOB_INDEX_ENV]
                c["env"] = [env_var, *env]
        return pod

    async def _create_pod(self, job: dict, idx: int | None) -> bool:
        try:
            created = await self.client.create(PODS, self._pod_for(job, idx), job["metadata"]["namespace"])
        except errors.StatusError as e:
            if "because it is being terminated" not in e.message:
                self.recorder.warning(job, "FailedCreate", f"Error creating: {e}")
            return False
        self.recorder.normal(job, "SuccessfulCreate", f"Created pod: {created['metadata']['name']}")
        return True

    async def _delete_pods(self, key: str, job: dict, pods: list[dict]) -> None:
        if not pods:
            return
        self.expectations.expect_deletions(key, [p["metadata"]["uid"] for p in pods])

        async def one(pod: dict) -> None:
            md = pod["metadata"]
            try:
                await self.client.delete(PODS, md["name"], md["namespace"], preconditions={"uid": md["uid"]})
            except errors.NotFound:
                self.expectations.deletion_observed(key, md["uid"])
                return
            except errors.StatusError as e:
                self.expectations.deletion_observed(key, md["uid"])
                self.recorder.warning(job, "FailedDelete", f"Error deleting: {e}")
                return
            self.recorder.normal(job, "SuccessfulDelete", f"Deleted pod: {md['name']}")

        await asyncio.gather(*(one(p) for p in pods))

    async def _remove_finalizers(self, key: str, pods: list[dict]) -> None:
        if not pods:
            return
        done = self._unfinalized.setdefault(key, set())

        async def one(pod: dict) -> None:
            md = pod["metadata"]
            rest = [f for f in md.get("finalizers") or [] if f != TRACKING_FINALIZER]
            patch = [{"op": "test", "path": "/metadata/uid", "value": md["uid"]},
                     {"op": "replace", "path": "/metadata/finalizers", "value": rest}]
            try:
                await self.client.patch(PODS, md["name"], patch, md["namespace"], patch_type="json")
            except errors.NotFound:
                pass
            except errors.StatusError:
                # The pod changed under us: read it again and remove ours from what is there now.
                try:
                    fresh = await self.client.get(PODS, md["name"], md["namespace"])
                except errors.NotFound:
                    done.add(md["uid"])
                    return
                if fresh["metadata"].get("uid") != md["uid"]:
                    done.add(md["uid"])
                    return
                rest = [f for f in fresh["metadata"].get("finalizers") or [] if f != TRACKING_FINALIZER]
                body = copy_object(fresh)
                body["metadata"]["finalizers"] = rest
                try:
                    await self.client.update(PODS, body, md["namespace"])
                except errors.NotFound:
                    pass
            done.add(md["uid"])

        results = await asyncio.gather(*(one(p) for p in pods), return_exceptions=True)
        err = next((r for r in results if isinstance(r, BaseException)), None)
        if err is not None:
            raise err


class TTLAfterFinishedController(Controller):
    name = "ttl-after-finished"
    workers = 2
    component = "ttlafterfinished-controller"

    def __init__(self, ctx: ControllerContext):
        super().__init__(ctx)
        self.jobs = ctx.informers.informer_for(JOBS)
        self.jobs.add_event_handler(on_add=self._maybe, on_update=lambda o, n: self._maybe(n))

    def _maybe(self, job: dict) -> None:
        if (job.get("spec") or {}).get("ttlSecondsAfterFinished") is not None and finished_condition(job):
            self.enqueue(job)

    def expires_at(self, job: dict) -> float | None:
        ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
        cond = finished_condition(job)
        if ttl is None or cond is None or job["metadata"].get("deletionTimestamp"):
            return None
        finished = timestamp((job.get("status") or {}).get("completionTime")) or timestamp(cond.get("lastTransitionTime"))
        if finished is None:
            return None
        return finished + int(ttl)

    async def reconcile(self, key: str) -> float | None:
        job = self.jobs.get(key)
        if job is None or self.expires_at(job) is None:
            return None
        left = self.expires_at(job) - self.clock.now()
        if left > 0:
            return left + 0.001
        ns, name = meta.split_key(key)
        try:
            fresh = await self.client.get(JOBS, name, ns)     # the TTL may have changed meanwhile
        except errors.NotFound:
            return None
        at = self.expires_at(fresh)
        if at is None:
            return None
        if at > self.clock.now():
            return at - self.clock.now() + 0.001
        try:
            await self.client.delete(JOBS, name, ns, propagation_policy="Background",
                                     preconditions={"uid": fresh["metadata"]["uid"],
                                                    "resourceVersion": fresh["metadata"]["resourceVersion"]})
        except errors.NotFound:
            pass
        return None
