"""The Job and TTL-after-finished controllers against a real API server, with pods run by the node
simulator (``sim.navarch.io/exit-after``/``exit-code``) and bound by a test binder."""

from __future__ import annotations

import pytest

from controller_manager.controllers.job import JobController, TTLAfterFinishedController
from controller_manager.jobutil import COMPLETION_INDEX, TRACKING_FINALIZER
from kubelet.sim.config import SimConfig
from kubelet.sim.simulator import Simulator
from tests.controllers.batch.helpers import (
    JOBS,
    Binder,
    Controllers,
    conditions,
    events_for,
    eventually,
    job,
    quiesce,
)


@pytest.fixture
async def cluster(client):
    sim = Simulator(client, SimConfig(count=2, name_prefix=client.namespace + "-", lease_renew_interval=1.0,
                                      cleanup=True))
    await sim.start()
    binder = await Binder(client, [client.namespace + "-0", client.namespace + "-1"]).start()
    ctrls = await Controllers(client, [JobController, TTLAfterFinishedController]).start()
    yield ctrls
    await ctrls.stop()
    await binder.stop()
    await sim.stop()


async def finished(client, name: str, kind: str) -> dict:
    async def check():
        j = await client.get(JOBS, name)
        return j if kind in conditions(j) else None
    return await eventually(check, timeout=60, what=f"job {name} {kind}")


async def pods_of(client, name: str) -> list[dict]:
    return (await client.list("pods", client.namespace, label_selector=f"batch.kubernetes.io/job-name={name}"))[
        "items"]


async def test_parallel_job_completes(client, cluster):
    await client.create(JOBS, job("work", completions=4, parallelism=2))
    most_active = 0

    async def done():
        nonlocal most_active
        j = await client.get(JOBS, "work")
        most_active = max(most_active, (j.get("status") or {}).get("active", 0))
        running = [p for p in await pods_of(client, "work")
                   if (p.get("status") or {}).get("phase") in ("Pending", "Running")]
        most_active = max(most_active, len(running))
        return j if "Complete" in conditions(j) else None

    j = await eventually(done, timeout=60, what="job complete")
    st = j["status"]
    assert st["succeeded"] == 4 and not st.get("failed") and not st.get("active")
    assert st["ready"] == 0 and st["terminating"] == 0
    assert st["startTime"] and st["completionTime"]
    conds = conditions(j)
    assert conds["SuccessCriteriaMet"]["reason"] == "CompletionsReached"
    assert conds["Complete"]["reason"] == "CompletionsReached"
    assert st.get("uncountedTerminatedPods") in ({}, None)
    assert 1 <= most_active <= 2
    pods = await pods_of(client, "work")
    assert len(pods) == 4
    assert all(p["status"]["phase"] == "Succeeded" for p in pods)
    assert all(TRACKING_FINALIZER not in (p["metadata"].get("finalizers") or []) for p in pods)
    assert all(p["metadata"]["ownerReferences"][0]["uid"] == j["metadata"]["uid"] for p in pods)
    evs = await eventually(lambda: _events(client, "work", "Completed"), what="Completed event")
    assert ("Normal", "Completed", "Job completed") in evs


async def _events(client, name, reason):
    evs = await events_for(client, name)
    return evs if any(r == reason for _, r, _ in evs) else None


async def test_pods_carry_tracking_finalizer_while_running(client, cluster):
    await client.create(JOBS, job("slow", exit_after="30s", completions=1))

    async def running():
        pods = await pods_of(client, "slow")
        return pods if pods and pods[0].get("status", {}).get("phase") == "Running" else None

    pods = await eventually(running, what="a running pod")
    assert TRACKING_FINALIZER in pods[0]["metadata"]["finalizers"]
    j = await eventually(lambda: _status(client, "slow", "ready", 1), what="status ready 1")
    assert j["status"]["active"] == 1 and j["status"]["terminating"] == 0
    assert "uncountedTerminatedPods" in j["status"] and not j["status"].get("succeeded")
    # In line with its pods, the Job is not written again (no write loop on its own events).
    await quiesce(cluster["job"])
    rv = (await client.get(JOBS, "slow"))["metadata"]["resourceVersion"]
    cluster["job"].enqueue(f"{client.namespace}/slow")
    await quiesce(cluster["job"])
    assert (await client.get(JOBS, "slow"))["metadata"]["resourceVersion"] == rv


async def _status(client, name, field, value):
    j = await client.get(JOBS, name)
    return j if (j.get("status") or {}).get(field) == value else None


async def test_fails_after_backoff_limit(client, cluster):
    await client.create(JOBS, job("flaky", exit_code=1, backoffLimit=1))
    j = await finished(client, "flaky", "Failed")
    st = j["status"]
    conds = conditions(j)
    assert conds["Failed"]["reason"] == "BackoffLimitExceeded"
    assert conds["Failed"]["message"] == "Job has reached the specified backoff limit"
    assert conds["FailureTarget"]["reason"] == "BackoffLimitExceeded"
    assert "Complete" not in conds
    assert st["failed"] == 2 and not st.get("succeeded") and not st.get("completionTime")
    pods = await pods_of(client, "flaky")
    assert len(pods) == 2 and all(p["status"]["phase"] == "Failed" for p in pods)
    # The replacement waited out the back-off after the first failure (10 s).
    first, second = sorted(pods, key=lambda p: p["metadata"]["creationTimestamp"])
    ended = first["status"]["containerStatuses"][0]["state"]["terminated"]["finishedAt"]
    assert second["metadata"]["creationTimestamp"] >= ended
    evs = await eventually(lambda: _events(client, "flaky", "BackoffLimitExceeded"), what="failure event")
    assert ("Warning", "BackoffLimitExceeded", "Job has reached the specified backoff limit") in evs


async def test_indexed_job(client, cluster):
    await client.create(JOBS, job("idx", completions=3, parallelism=3, completionMode="Indexed"))
    j = await finished(client, "idx", "Complete")
    assert j["status"]["completedIndexes"] == "0-2" and j["status"]["succeeded"] == 3
    pods = await pods_of(client, "idx")
    seen = set()
    for p in pods:
        idx = p["metadata"]["annotations"][COMPLETION_INDEX]
        assert p["metadata"]["labels"][COMPLETION_INDEX] == idx
        assert p["metadata"]["name"].startswith(f"idx-{idx}-")
        assert p["spec"]["hostname"] == f"idx-{idx}"
        env = {e["name"]: e for e in p["spec"]["containers"][0]["env"]}
        ref = env["JOB_COMPLETION_INDEX"]["valueFrom"]["fieldRef"]
        assert ref["fieldPath"] == f"metadata.annotations['{COMPLETION_INDEX}']"
        seen.add(idx)
    assert seen == {"0", "1", "2"}


async def test_pod_failure_policy_fails_job_on_exit_code(client, cluster):
    policy = {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
                        {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]}
    await client.create(JOBS, job("policy", exit_code=42, backoffLimit=6, podFailurePolicy=policy))
    j = await finished(client, "policy", "Failed")
    conds = conditions(j)
    pods = await pods_of(client, "policy")
    assert len(pods) == 1
    name = pods[0]["metadata"]["name"]
    expected = (f"Container main for pod {client.namespace}/{name} failed with exit code 42 matching FailJob "
                "rule at index 1")
    assert conds["Failed"]["reason"] == "PodFailurePolicy" and conds["Failed"]["message"] == expected
    assert conds["FailureTarget"]["message"] == expected
    assert j["status"]["failed"] == 1


async def test_active_deadline(client, cluster):
    await client.create(JOBS, job("late", exit_after=None, parallelism=2, completions=2, activeDeadlineSeconds=2))
    j = await finished(client, "late", "Failed")
    conds = conditions(j)
    assert conds["Failed"]["reason"] == "DeadlineExceeded"
    assert conds["Failed"]["message"] == "Job was active longer than specified deadline"
    assert j["status"]["failed"] == 2 and not j["status"].get("active")

    async def gone():
        return not await pods_of(client, "late")

    await eventually(gone, what="the job's pods deleted")


async def test_ttl_after_finished_deletes_job(client, cluster):
    await client.create(JOBS, job("short", ttlSecondsAfterFinished=1))
    await finished(client, "short", "Complete")

    async def deleted():
        items = (await client.list(JOBS, client.namespace))["items"]
        return not any(i["metadata"]["name"] == "short" for i in items)

    await eventually(deleted, what="the job deleted after its TTL")


async def test_suspended_job_runs_no_pods_until_resumed(client, cluster):
    await client.create(JOBS, job("later", suspend=True))
    j = await eventually(lambda: _cond(client, "later", "Suspended"), what="Suspended condition")
    assert conditions(j)["Suspended"]["reason"] == "JobSuspended"
    assert not await pods_of(client, "later")
    await client.patch(JOBS, "later", {"spec": {"suspend": False}})
    await finished(client, "later", "Complete")


async def _cond(client, name, ctype):
    j = await client.get(JOBS, name)
    return j if ctype in conditions(j) else None


async def test_work_queue_job_without_completions(client, cluster):
    await client.create(JOBS, job("queue", parallelism=2))
    j = await finished(client, "queue", "Complete")
    assert j["spec"].get("completions") is None
    assert j["status"]["succeeded"] == 2 and not j["status"].get("failed")


async def test_ignored_failures_do_not_count(client, cluster):
    policy = {"rules": [{"action": "Ignore", "onExitCodes": {"operator": "In", "values": [3]}}]}
    await client.create(JOBS, job("ignored", exit_code=3, exit_after="200ms", backoffLimit=0,
                                  podFailurePolicy=policy))

    async def retried():
        failed = [p for p in await pods_of(client, "ignored") if p["status"].get("phase") == "Failed"]
        return failed if len(failed) >= 2 else None

    await eventually(retried, timeout=60, what="a second pod after an ignored failure")
    j = await client.get(JOBS, "ignored")
    assert "Failed" not in conditions(j) and not j["status"].get("failed")


@pytest.mark.parametrize("propagation", ["Orphan", "Background"])
async def test_deleted_job_releases_its_pods(client, cluster, propagation):
    # Orphan: the Job lingers with a deletionTimestamp (no garbage collector runs here);
    # Background: the Job is gone at once and its pods are left pointing at it.
    await client.create(JOBS, job("gone", exit_after="300s"))

    async def running():
        pods = await pods_of(client, "gone")
        return pods if pods and TRACKING_FINALIZER in (pods[0]["metadata"].get("finalizers") or []) else None

    await eventually(running, what="a pod with the tracking finalizer")
    await client.delete(JOBS, "gone", propagation_policy=propagation)

    async def released():
        pods = await pods_of(client, "gone")
        return pods if pods and TRACKING_FINALIZER not in (pods[0]["metadata"].get("finalizers") or []) else None

    await eventually(released, what="the finalizer removed from the orphaned pod")


async def test_suspending_a_running_job_stops_its_pods_without_failures(client, cluster):
    await client.create(JOBS, job("pause", exit_after="300s", parallelism=2, completions=2))
    await eventually(lambda: _status(client, "pause", "ready", 2), what="two ready pods")
    await client.patch(JOBS, "pause", {"spec": {"suspend": True}})

    async def stopped():
        j = await client.get(JOBS, "pause")
        st = j.get("status") or {}
        return j if "Suspended" in conditions(j) and not st.get("active") and not st.get("terminating") \
            and not await pods_of(client, "pause") else None

    j = await eventually(stopped, timeout=60, what="the pods stopped and gone")
    assert not j["status"].get("failed")
    await client.patch(JOBS, "pause", {"spec": {"suspend": False}})
    j = await eventually(lambda: _status(client, "pause", "active", 2), what="two pods again")
    assert "Suspended" not in conditions(j)
