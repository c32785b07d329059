"""The CronJob controller against a real API server, in virtual time (``FakeClock``): Jobs made at
schedule times, concurrency policies, missed runs, history limits, suspend, time zones.

The Job controller does not run here; a test finishes a Job by writing its status."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from api import meta
from client.clock import FakeClock
from controller_manager import cron
from controller_manager.controllers.cronjob import SCHEDULED_TIMESTAMP, CronJobController
from tests.controllers.batch.helpers import (
    CRONJOBS,
    JOBS,
    Controllers,
    advance_to,
    cronjob,
    events_for,
    eventually,
    first_run,
    next_run,
    quiesce,
)


@pytest.fixture
async def clock():
    return FakeClock(start=time.time())


@pytest.fixture
async def ctrl(client, clock):
    c = await Controllers(client, [CronJobController], clock=clock).start()
    yield c["cronjob"]
    await c.stop()


async def create(client, ctrl, body: dict) -> dict:
    cj = await client.create(CRONJOBS, body)
    await quiesce(ctrl)
    return cj


async def jobs(client) -> list[dict]:
    items = (await client.list(JOBS, client.namespace))["items"]
    return sorted(items, key=lambda j: j["metadata"]["name"])


async def job_names(client) -> list[str]:
    return [j["metadata"]["name"] for j in await jobs(client)]


async def finish(client, name: str, kind: str = "Complete") -> None:
    j = await client.get(JOBS, name)
    now = meta.to_rfc3339(datetime.now(UTC))
    if kind == "Complete":
        conds = [{"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached",
                  "message": "Reached expected number of succeeded pods", "lastTransitionTime": now},
                 {"type": "Complete", "status": "True", "reason": "CompletionsReached",
                  "message": "Reached expected number of succeeded pods", "lastTransitionTime": now}]
        j["status"] = {"startTime": now, "completionTime": now, "succeeded": 1, "conditions": conds}
    else:
        conds = [{"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded",
                  "message": "Job has reached the specified backoff limit", "lastTransitionTime": now},
                 {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                  "message": "Job has reached the specified backoff limit", "lastTransitionTime": now}]
        j["status"] = {"startTime": now, "failed": 1, "conditions": conds}
    await client.update_status(JOBS, j)


async def wait_jobs(client, ctrl, n: int) -> list[str]:
    async def check():
        await quiesce(ctrl)
        names = await job_names(client)
        return names if len(names) == n else None
    return await eventually(check, what=f"{n} jobs")


async def has_event(client, name: str, reason: str) -> list:
    async def check():
        evs = await events_for(client, name)
        return evs if any(r == reason for _, r, _ in evs) else None
    return await eventually(check, what=f"event {reason}")


async def test_cronjob_fires_under_fake_clock(client, clock, ctrl):
    cj = await create(client, ctrl, cronjob("tick", "*/5 * * * *"))
    assert await job_names(client) == []
    t1 = first_run(clock, cj)
    await advance_to(clock, t1 - 1, ctrl)
    assert await job_names(client) == [], "nothing before the schedule time"
    await advance_to(clock, t1 + 1, ctrl)
    name1 = f"tick-{int(t1) // 60}"
    assert await wait_jobs(client, ctrl, 1) == [name1]
    j = await client.get(JOBS, name1)
    assert j["metadata"]["annotations"][SCHEDULED_TIMESTAMP] == meta.to_rfc3339(datetime.fromtimestamp(t1, UTC))
    ref = j["metadata"]["ownerReferences"][0]
    assert ref["kind"] == "CronJob" and ref["uid"] == cj["metadata"]["uid"] and ref["controller"]
    st = (await client.get(CRONJOBS, "tick"))["status"]
    assert st["lastScheduleTime"] == meta.to_rfc3339(datetime.fromtimestamp(t1, UTC))
    assert [a["name"] for a in st["active"]] == [name1]
    assert ("Normal", "SuccessfulCreate", f"Created job {name1}") in await has_event(client, "tick",
                                                                                     "SuccessfulCreate")
    # The next run comes five minutes later (Allow: the first one still runs).
    t2 = next_run(cj, t1)
    assert t2 - t1 == 300
    await advance_to(clock, t2 + 1, ctrl)
    name2 = f"tick-{int(t2) // 60}"
    assert await wait_jobs(client, ctrl, 2) == sorted([name1, name2])
    # A finished Job leaves the active list and sets lastSuccessfulTime.
    await finish(client, name1)

    async def seen():
        await quiesce(ctrl)
        st = (await client.get(CRONJOBS, "tick"))["status"]
        return st if [a["name"] for a in st.get("active") or []] == [name2] else None

    st = await eventually(seen, what="the finished job out of the active list")
    assert st["lastSuccessfulTime"]
    evs = await has_event(client, "tick", "SawCompletedJob")
    assert ("Normal", "SawCompletedJob", f"Saw completed job: {name1}, condition: Complete") in evs


async def test_forbid_skips_while_a_job_runs(client, clock, ctrl):
    cj = await create(client, ctrl, cronjob("only", "*/5 * * * *", concurrencyPolicy="Forbid"))
    t1 = first_run(clock, cj)
    await advance_to(clock, t1 + 1, ctrl)
    await wait_jobs(client, ctrl, 1)
    t2 = next_run(cj, t1)
    await advance_to(clock, t2 + 1, ctrl)
    assert await wait_jobs(client, ctrl, 1) == [f"only-{int(t1) // 60}"]
    await has_event(client, "only", "JobAlreadyActive")
    # Once the running Job finishes, the skipped run counts as missed and starts late (no
    # startingDeadlineSeconds bounds it), named for its own schedule time.
    await finish(client, f"only-{int(t1) // 60}")
    assert await wait_jobs(client, ctrl, 2) == sorted([f"only-{int(t1) // 60}", f"only-{int(t2) // 60}"])


async def test_forbid_with_starting_deadline_drops_the_skipped_run(client, clock, ctrl):
    cj = await create(client, ctrl, cronjob("strict", "*/5 * * * *", concurrencyPolicy="Forbid",
                                            startingDeadlineSeconds=30))
    t1 = first_run(clock, cj)
    await advance_to(clock, t1 + 1, ctrl)
    await wait_jobs(client, ctrl, 1)
    t2 = next_run(cj, t1)
    await advance_to(clock, t2 + 1, ctrl)
    await has_event(client, "strict", "JobAlreadyActive")
    await advance_to(clock, t2 + 60, ctrl)
    await finish(client, f"strict-{int(t1) // 60}")
    await quiesce(ctrl)
    assert await job_names(client) == [f"strict-{int(t1) // 60}"]
    t3 = next_run(cj, t2)
    await advance_to(clock, t3 + 1, ctrl)
    assert await wait_jobs(client, ctrl, 2) == sorted([f"strict-{int(t1) // 60}", f"strict-{int(t3) // 60}"])


async def test_replace_deletes_the_running_job(client, clock, ctrl):
    cj = await create(client, ctrl, cronjob("swap", "*/5 * * * *", concurrencyPolicy="Replace"))
    t1 = first_run(clock, cj)
    await advance_to(clock, t1 + 1, ctrl)
    await wait_jobs(client, ctrl, 1)
    t2 = next_run(cj, t1)
    await advance_to(clock, t2 + 1, ctrl)

    async def replaced():
        await quiesce(ctrl)
        live = [j["metadata"]["name"] for j in await jobs(client) if not j["metadata"].get("deletionTimestamp")]
        return live if live == [f"swap-{int(t2) // 60}"] else None

    await eventually(replaced, what="the first job replaced by the second")
    evs = await has_event(client, "swap", "SuccessfulDelete")
    assert ("Normal", "SuccessfulDelete", f"Deleted job swap-{int(t1) // 60}") in evs
    st = (await client.get(CRONJOBS, "swap"))["status"]
    assert [a["name"] for a in st["active"]] == [f"swap-{int(t2) // 60}"]


async def test_suspended_cronjob_makes_no_jobs(client, clock, ctrl):
    cj = await create(client, ctrl, cronjob("nap", "*/5 * * * *", suspend=True))
    t1 = first_run(clock, cj)
    await advance_to(clock, t1 + 1, ctrl)
    await client.patch(CRONJOBS, "nap", {"metadata": {"labels": {"poke": "1"}}})   # wake it in any case
    await quiesce(ctrl)
    assert await job_names(client) == []
    # Resumed, the missed run starts (nothing bounds how late it may start).
    await client.patch(CRONJOBS, "nap", {"spec": {"suspend": False}})
    assert await wait_jobs(client, ctrl, 1) == [f"nap-{int(t1) // 60}"]


async def test_history_limits(client, clock, ctrl):
    cj = await create(client, ctrl, cronjob("hist", "*/5 * * * *", successfulJobsHistoryLimit=1,
                                            failedJobsHistoryLimit=1))
    t = first_run(clock, cj)
    names = []
    for i in range(3):
        await advance_to(clock, t + 1, ctrl)
        name = f"hist-{int(t) // 60}"
        names.append(name)
        await wait_jobs(client, ctrl, i + 1)         # nothing over a limit yet
        await finish(client, name, "Complete" if i != 1 else "Failed")
        await quiesce(ctrl)
        t = next_run(cj, t)
    # Runs 0 and 2 succeeded, 1 failed: the older success goes, the failure stays.
    assert await wait_jobs(client, ctrl, 2) == sorted([names[1], names[2]])


async def test_too_many_missed_runs_warns_and_runs_the_latest(client, clock, ctrl):
    cj = await create(client, ctrl, cronjob("behind", "* * * * *"))
    long_ago = datetime.fromtimestamp(clock.now() - 200 * 60, UTC)
    cj["status"] = {"lastScheduleTime": meta.to_rfc3339(long_ago)}
    await client.update_status(CRONJOBS, cj)
    names = await wait_jobs(client, ctrl, 1)
    latest = cron.parse("* * * * *").prev(datetime.fromtimestamp(clock.now(), UTC))
    assert names == [f"behind-{int(latest.timestamp()) // 60}"]
    evs = await has_event(client, "behind", "TooManyMissedTimes")
    assert any(t == "Warning" and "startingDeadlineSeconds" in m for t, r, m in evs if r == "TooManyMissedTimes")


async def test_starting_deadline_bounds_the_missed_runs_looked_at(client, clock, ctrl):
    cj = await create(client, ctrl, cronjob("bounded", "* * * * *", startingDeadlineSeconds=300))
    cj["status"] = {"lastScheduleTime": meta.to_rfc3339(datetime.fromtimestamp(clock.now() - 200 * 60, UTC))}
    await client.update_status(CRONJOBS, cj)
    await wait_jobs(client, ctrl, 1)
    assert not [e for e in await events_for(client, "bounded") if e[1] == "TooManyMissedTimes"]


async def test_time_zone(client, clock, ctrl):
    cj = await create(client, ctrl, cronjob("tokyo", "0 9 * * *", timeZone="Asia/Tokyo"))
    t1 = first_run(clock, cj)
    await advance_to(clock, t1 + 1, ctrl)
    names = await wait_jobs(client, ctrl, 1)
    stamp = (await client.get(JOBS, names[0]))["metadata"]["annotations"][SCHEDULED_TIMESTAMP]
    assert stamp.endswith("T09:00:00+09:00")
    assert datetime.fromisoformat(stamp).timestamp() == t1


async def test_unknown_time_zone_is_reported(client, clock, ctrl):
    await create(client, ctrl, cronjob("lost", "* * * * *", timeZone="Mars/Olympus_Mons"))
    evs = await has_event(client, "lost", "UnknownTimeZone")
    assert any(t == "Warning" and "Mars/Olympus_Mons" in m for t, r, m in evs if r == "UnknownTimeZone")
    await advance_to(clock, clock.now() + 120, ctrl)
    assert await job_names(client) == []


async def test_job_made_by_hand_from_the_cronjob_is_unexpected(client, clock, ctrl):
    # What ``kubectl create job by-hand --from=cronjob/manual`` sends: the template, a controller
    # reference to the CronJob and the instantiate annotation, but no scheduled timestamp.
    cj = await create(client, ctrl, cronjob("manual", "0 0 1 1 *"))
    ref = {"apiVersion": "batch/v1", "kind": "CronJob", "name": "manual", "uid": cj["metadata"]["uid"],
           "controller": True}
    await client.create(JOBS, {"apiVersion": "batch/v1", "kind": "Job",
                               "metadata": {"name": "by-hand", "ownerReferences": [ref],
                                            "annotations": {"cronjob.kubernetes.io/instantiate": "manual"}},
                               "spec": cj["spec"]["jobTemplate"]["spec"]})
    evs = await has_event(client, "manual", "UnexpectedJob")
    assert ("Warning", "UnexpectedJob", "Saw a job that the controller did not create or forgot: by-hand") in evs
    await quiesce(ctrl)
    assert not ((await client.get(CRONJOBS, "manual")).get("status") or {}).get("active")


async def test_own_job_missing_from_status_is_tracked_again(client, clock, ctrl):
    # As if a pass created the Job and stopped before writing status.active.
    cj = await create(client, ctrl, cronjob("lost", "0 0 1 1 *"))
    when = datetime(2026, 1, 1, tzinfo=UTC)
    name = f"lost-{int(when.timestamp()) // 60}"
    ref = {"apiVersion": "batch/v1", "kind": "CronJob", "name": "lost", "uid": cj["metadata"]["uid"],
           "controller": True}
    await client.create(JOBS, {"apiVersion": "batch/v1", "kind": "Job",
                               "metadata": {"name": name, "ownerReferences": [ref],
                                            "annotations": {SCHEDULED_TIMESTAMP: "2026-01-01T00:00:00Z"}},
                               "spec": cj["spec"]["jobTemplate"]["spec"]})

    async def tracked():
        await quiesce(ctrl)
        st = (await client.get(CRONJOBS, "lost")).get("status") or {}
        return [a["name"] for a in st.get("active") or []] == [name]

    await eventually(tracked, what="the job back in status.active")
    assert not [e for e in await events_for(client, "lost") if e[1] == "UnexpectedJob"]
