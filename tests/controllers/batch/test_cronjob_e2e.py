"""CronJob, Job and TTL controllers together, the CronJob's schedule in virtual time and its Jobs'
pods run by the node simulator: a schedule time makes a Job, the Job's pod runs and succeeds,
the CronJob records the success."""

from __future__ import annotations

import time

import pytest

from client.clock import FakeClock
from controller_manager.controllers.cronjob import CronJobController
from controller_manager.controllers.job import JobController
from kubelet.sim.config import SimConfig
from kubelet.sim.simulator import Simulator
from tests.controllers.batch.helpers import (
    CRONJOBS,
    JOBS,
    Binder,
    Controllers,
    advance_to,
    conditions,
    cronjob,
    eventually,
    first_run,
    quiesce,
)


@pytest.fixture
async def clock():
    return FakeClock(start=time.time())


@pytest.fixture
async def cluster(client, clock):
    sim = Simulator(client, SimConfig(count=1, name_prefix=client.namespace + "-", lease_renew_interval=1.0,
                                      cleanup=True))
    await sim.start()
    binder = await Binder(client, [client.namespace + "-0"]).start()
    ctrls = await Controllers(client, [CronJobController, JobController], clock=clock).start()
    yield ctrls
    await ctrls.stop()
    await binder.stop()
    await sim.stop()


async def test_scheduled_job_runs_to_completion(client, clock, cluster):
    body = cronjob("nightly", "30 2 * * *")
    body["spec"]["jobTemplate"]["spec"]["template"]["metadata"] = {
        "annotations": {"sim.navarch.io/exit-after": "200ms"}}
    cj = await client.create(CRONJOBS, body)
    controllers = cluster.controllers
    await quiesce(*controllers)
    t1 = first_run(clock, cj)
    await advance_to(clock, t1 + 1, *controllers)
    name = f"nightly-{int(t1) // 60}"

    async def succeeded():
        await quiesce(*controllers)
        st = (await client.get(CRONJOBS, "nightly")).get("status") or {}
        return st if st.get("lastSuccessfulTime") and not st.get("active") else None

    st = await eventually(succeeded, timeout=60, what="the cronjob's run succeeded")
    j = await client.get(JOBS, name)
    assert "Complete" in conditions(j) and j["status"]["succeeded"] == 1
    assert st["lastSuccessfulTime"] == j["status"]["completionTime"]
    pods = (await client.list("pods", client.namespace, label_selector=f"job-name={name}"))["items"]
    assert [p["status"]["phase"] for p in pods] == ["Succeeded"]
