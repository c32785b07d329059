"""The CronJob controller: a Job from ``spec.jobTemplate`` at each time the schedule names.

``reconcile(namespace/name)``, all in the context clock's time:

1. Reconciles ``status.active`` with the CronJob's Jobs: finished Jobs leave it (event
   SawCompletedJob, ``lastSuccessfulTime`` from a Complete Job's ``completionTime``), Jobs gone
   from the server leave it (MissingJob). An unfinished Job it does not list joins it if this
   controller made it (its name and scheduled-timestamp annotation agree); others, such as
   ``kubectl create job --from=cronjob/...``, only get an UnexpectedJob warning, as in Kubernetes.
2. Unless suspended: finds the most recent schedule time since ``lastScheduleTime`` (or the
   creation time), not older than ``startingDeadlineSeconds``; more than 100 missed times give a
   TooManyMissedTimes warning. Forbid skips a run while a Job is active (JobAlreadyActive),
   Replace deletes the active Jobs first. The Job is named ``<cronjob>-<minutes since epoch of
   the scheduled time>`` and annotated ``batch.kubernetes.io/cronjob-scheduled-timestamp``.
3. Deletes the oldest finished Jobs beyond ``successfulJobsHistoryLimit`` and
   ``failedJobsHistoryLimit``.
4. Returns the delay to the next schedule time, so the work queue (``add_after``) brings the
   key back then.

Schedules are read by ``controller_manager.cron`` in ``spec.timeZone`` (or a ``CRON_TZ=``
prefix), UTC otherwise.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from api import errors, meta
from client.informer import copy_object
from controller_manager import cron
from controller_manager.base import Controller, ControllerContext
from controller_manager.common import (
    OWNER_INDEX,
    controller_ref,
    ensure_owner_indexes,
    owner_ref_for,
    resolve_controller,
)
from controller_manager.jobutil import finished_condition

CRONJOBS = "cronjobs.batch"
JOBS = "jobs.batch"
SCHEDULED_TIMESTAMP = "batch.kubernetes.io/cronjob-scheduled-timestamp"
TOO_MANY_MISSED = 100
REQUEUE_SLACK = 0.1           # seconds past the schedule time, so the run is due when we wake


def job_name(cronjob_name: str, scheduled: datetime) -> str:
    return f"{cronjob_name}-{int(scheduled.timestamp()) // 60}"


def rfc3339_in(t: datetime, tz: Any) -> str:
    """RFC 3339 in the schedule's zone, ``Z`` for UTC (as Go formats it)."""
    local = t.astimezone(tz).replace(microsecond=0)
    if local.utcoffset() == timedelta(0):
        return local.strftime("%Y-%m-%dT%H:%M:%SZ")
    return local.isoformat()


def _ts(s: str | None) -> datetime | None:
    if not s:
        return None
    try:
        return meta.parse_rfc3339(s)
    except ValueError:
        return None


def _job_ref(job: dict) -> dict:
    md = job["metadata"]
    return {"kind": "Job", "namespace": md["namespace"], "name": md["name"], "uid": md["uid"],
            "apiVersion": "batch/v1", "resourceVersion": md.get("resourceVersion", "")}


def _finished_type(job: dict) -> str | None:
    c = finished_condition(job)
    return c.get("type") if c else None


class CronJobController(Controller):
    name = "cronjob"
    workers = 5
    component = "cronjob-controller"
    kind = "CronJob"

    def __init__(self, ctx: ControllerContext):
        super().__init__(ctx)
        self.recorder = ctx.recorder(self.component)
        self.cronjobs = ctx.informers.informer_for(CRONJOBS)
        self.jobs = ctx.informers.informer_for(JOBS)
        ensure_owner_indexes(self.jobs)
        self._latest: dict[str, dict] = {}
        self.cronjobs.add_event_handler(on_add=self.enqueue, on_update=self._cj_updated,
                                        on_delete=self._cj_deleted)
        self.jobs.add_event_handler(on_add=self._job_changed, on_update=lambda o, n: self._job_changed(n),
                                    on_delete=self._job_changed)

    def _cj_updated(self, old: dict, new: dict) -> None:
        if old["metadata"].get("resourceVersion") != new["metadata"].get("resourceVersion"):
            self.enqueue(new)

    def _cj_deleted(self, cj: dict) -> None:
        self._latest.pop(meta.key_of(cj), None)

    def _job_changed(self, job: dict) -> None:
        cj = resolve_controller(self.cronjobs, job["metadata"].get("namespace", ""), controller_ref(job), self.kind)
        if cj is not None:
            self.enqueue(cj)

    def _cronjob(self, key: str) -> dict | None:
        cj = self.cronjobs.get(key)
        if cj is None:
            return None
        mine = self._latest.get(key)
        if mine is not None and mine["metadata"].get("uid") == cj["metadata"].get("uid") and \
                int(mine["metadata"].get("resourceVersion") or 0) > int(cj["metadata"].get("resourceVersion") or 0):
            return mine
        self._latest.pop(key, None)
        return cj

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.now(), UTC)

    # --- reconcile -----------------------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        cj = self._cronjob(key)
        if cj is None:
            return None
        spec = cj.get("spec") or {}
        status: dict[str, Any] = copy_object(cj.get("status") or {})
        children = [j for j in self.jobs.by_index(OWNER_INDEX, cj["metadata"]["uid"])]
        await self._sync_active(cj, status, children)
        now = self._now()
        requeue: float | None = None
        if not cj["metadata"].get("deletionTimestamp"):
            requeue = await self._maybe_run(cj, spec, status, children, now)
        if status != (cj.get("status") or {}):
            body = {k: v for k, v in cj.items() if k != "status"}
            body["status"] = status
            try:
                self._latest[key] = await self.client.update_status(CRONJOBS, body)
            except errors.NotFound:
                return None
        await self._clean_history(cj, spec, status, children)
        return requeue

    async def _sync_active(self, cj: dict, status: dict, children: list[dict]) -> None:
        active = list(status.get("active") or [])
        by_uid = {j["metadata"]["uid"]: j for j in children}
        listed = {r.get("uid") for r in active}
        for job in children:
            uid = job["metadata"]["uid"]
            finished = _finished_type(job)
            if finished is None and uid not in listed and not job["metadata"].get("deletionTimestamp"):
                if self._made_by_us(cj, job):
                    # Created by a pass whose status write never landed: track it.
                    active.append(_job_ref(job))
                    listed.add(uid)
                else:
                    self.recorder.warning(cj, "UnexpectedJob", "Saw a job that the controller did not create "
                                          f"or forgot: {job['metadata']['name']}")
            elif finished is not None:
                if uid in listed:
                    active = [r for r in active if r.get("uid") != uid]
                    listed.discard(uid)
                    self.recorder.normal(cj, "SawCompletedJob",
                                         f"Saw completed job: {job['metadata']['name']}, condition: {finished}")
                done = (job.get("status") or {}).get("completionTime")
                if finished == "Complete" and done:
                    last = _ts(status.get("lastSuccessfulTime"))
                    if last is None or _ts(done) > last:
                        status["lastSuccessfulTime"] = done
        kept = []
        for ref in active:
            if ref.get("uid") in by_uid:
                kept.append(ref)
                continue
            # Not in the cache: a Job created a moment ago, or one deleted; ask the server.
            try:
                job = await self.client.get(JOBS, ref.get("name", ""), ref.get("namespace") or
                                            cj["metadata"]["namespace"])
            except errors.NotFound:
                job = None
            if job is not None and job["metadata"].get("uid") == ref.get("uid") and _finished_type(job) is None:
                kept.append(ref)
            elif job is None or job["metadata"].get("uid") != ref.get("uid"):
                self.recorder.normal(cj, "MissingJob", f"Active job went missing: {ref.get('name')}")
        if kept:
            status["active"] = kept
        else:
            status.pop("active", None)

    @staticmethod
    def _made_by_us(cj: dict, job: dict) -> bool:
        stamp = meta.annotations_of(job).get(SCHEDULED_TIMESTAMP)
        when = _ts(stamp)
        return when is not None and job["metadata"]["name"] == job_name(cj["metadata"]["name"], when)

    async def _maybe_run(self, cj: dict, spec: dict, status: dict, children: list[dict],
                         now: datetime) -> float | None:
        try:
            schedule = cron.parse(spec.get("schedule") or "", spec.get("timeZone"))
        except cron.UnknownTimeZone as e:
            self.recorder.warning(cj, "UnknownTimeZone", f"invalid timeZone: {spec.get('timeZone')!r}: {e}")
            return None
        except cron.ScheduleError as e:
            self.recorder.warning(cj, "UnparseableSchedule", f"unparseable schedule: {spec.get('schedule')!r} : {e}")
            return None
        if spec.get("suspend"):
            return None
        earliest = _ts(status.get("lastScheduleTime")) or _ts(cj["metadata"].get("creationTimestamp")) or now
        deadline = spec.get("startingDeadlineSeconds")
        if deadline is not None:
            earliest = max(earliest, now - timedelta(seconds=int(deadline)))
        scheduled, missed = cron.missed_runs(schedule, earliest, now, cap=TOO_MANY_MISSED + 1)
        if missed > TOO_MANY_MISSED:
            self.recorder.warning(cj, "TooManyMissedTimes",
                                  f"too many missed start times: {missed}. Set or decrease "
                                  ".spec.startingDeadlineSeconds or check clock skew")
        nxt = self._next_delay(schedule, now)
        if scheduled is None:
            return nxt
        if deadline is not None and scheduled + timedelta(seconds=int(deadline)) < now:
            self.recorder.warning(cj, "MissSchedule",
                                  f"Missed scheduled time to start a job: {rfc3339_in(scheduled, schedule.tz)}")
            return nxt
        name = job_name(cj["metadata"]["name"], scheduled)
        if any(r.get("name") == name for r in status.get("active") or []) or \
                any(j["metadata"]["name"] == name for j in children):
            return nxt
        policy = spec.get("concurrencyPolicy") or "Allow"
        if policy == "Forbid" and status.get("active"):
            self.recorder.normal(cj, "JobAlreadyActive",
                                 "Not starting job because prior execution is running and concurrency policy "
                                 "is Forbid")
            return nxt
        if policy == "Replace":
            for ref in list(status.get("active") or []):
                try:
                    await self.client.delete(JOBS, ref["name"], ref.get("namespace") or cj["metadata"]["namespace"],
                                             propagation_policy="Background", preconditions={"uid": ref["uid"]})
                except errors.NotFound:
                    pass
                self.recorder.normal(cj, "SuccessfulDelete", f"Deleted job {ref['name']}")
            status.pop("active", None)
        job = self._job_from_template(cj, name, scheduled, schedule.tz)
        try:
            created = await self.client.create(JOBS, job, cj["metadata"]["namespace"])
        except errors.AlreadyExists:
            try:
                created = await self.client.get(JOBS, name, cj["metadata"]["namespace"])
            except errors.NotFound:
                return 1.0
            ref = controller_ref(created)
            if ref is None or ref.get("uid") != cj["metadata"]["uid"]:
                self.recorder.warning(cj, "FailedCreate", f"Error creating job: jobs.batch {name!r} already exists")
                return nxt
        except errors.StatusError as e:
            self.recorder.warning(cj, "FailedCreate", f"Error creating job: {e}")
            raise
        else:
            self.recorder.normal(cj, "SuccessfulCreate", f"Created job {name}")
        if _finished_type(created) is None and not any(r.get("uid") == created["metadata"]["uid"]
                                                       for r in status.get("active") or []):
            status.setdefault("active", []).append(_job_ref(created))
        status["lastScheduleTime"] = meta.to_rfc3339(scheduled)
        return nxt

    def _next_delay(self, schedule: cron.Schedule, now: datetime) -> float | None:
        nxt = schedule.next(now)
        if nxt is None:
            return None
        return (nxt - now).total_seconds() + REQUEUE_SLACK

    def _job_from_template(self, cj: dict, name: str, scheduled: datetime, tz: Any) -> dict:
        template = copy_object((cj.get("spec") or {}).get("jobTemplate") or {})
        tmd = template.get("metadata") or {}
        md: dict[str, Any] = {"name": name, "namespace": cj["metadata"]["namespace"],
                              "labels": dict(tmd.get("labels") or {}),
                              "annotations": {**(tmd.get("annotations") or {}),
                                              SCHEDULED_TIMESTAMP: rfc3339_in(scheduled, tz)},
                              "ownerReferences": [owner_ref_for(cj)]}
        if not md["labels"]:
            del md["labels"]
        return {"apiVersion": "batch/v1", "kind": "Job", "metadata": md, "spec": template.get("spec") or {}}

    async def _clean_history(self, cj: dict, spec: dict, status: dict, children: list[dict]) -> None:
        active = {r.get("uid") for r in status.get("active") or []}
        for kind, limit_field in (("Complete", "successfulJobsHistoryLimit"), ("Failed", "failedJobsHistoryLimit")):
            limit = spec.get(limit_field)
            if limit is None:
                continue
            done = [j for j in children if _finished_type(j) == kind and j["metadata"]["uid"] not in active
                    and not j["metadata"].get("deletionTimestamp")]
            if len(done) <= int(limit):
                continue
            done.sort(key=lambda j: ((j.get("status") or {}).get("startTime") or j["metadata"].get(
                "creationTimestamp") or "", j["metadata"]["name"]))
            for job in done[:len(done) - int(limit)]:
                md = job["metadata"]
                try:
                    await self.client.delete(JOBS, md["name"], md["namespace"], propagation_policy="Background",
                                             preconditions={"uid": md["uid"]})
                except errors.NotFound:
                    continue
                self.recorder.normal(cj, "SuccessfulDelete", f"Deleted job {md['name']}")
