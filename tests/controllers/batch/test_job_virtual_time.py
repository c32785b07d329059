"""The Job controller's timing in virtual time (``FakeClock``) against a real API server: the pod
re-creation back-off (10 s doubling) and activeDeadlineSeconds. No node runs the pods: the test
ends them by writing their status, as a node agent would."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from api import meta
from client.clock import FakeClock
from controller_manager.controllers.job import JobController
from tests.controllers.batch.helpers import (
    JOBS,
    Controllers,
    advance_to,
    conditions,
    eventually,
    job,
    quiesce,
)


@pytest.fixture
async def clock():
    return FakeClock(start=time.time())


@pytest.fixture
async def ctrl(client, clock):
    c = await Controllers(client, [JobController], clock=clock).start()
    yield c["job"]
    await c.stop()


async def live_pods(client, name: str) -> list[dict]:
    items = (await client.list("pods", client.namespace, label_selector=f"batch.kubernetes.io/job-name={name}"))[
        "items"]
    return [p for p in items if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
            and not p["metadata"].get("deletionTimestamp")]


async def end_pod(client, pod: dict, exit_code: int) -> None:
    now = meta.to_rfc3339(datetime.now(UTC))
    term = {"exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error",
            "startedAt": now, "finishedAt": now}
    status = {"phase": "Succeeded" if exit_code == 0 else "Failed",
              "containerStatuses": [{"name": "main", "image": "busybox:1", "imageID": "", "ready": False,
                                     "restartCount": 0, "state": {"terminated": term}}]}
    await client.patch("pods", pod["metadata"]["name"], {"status": status}, subresource="status")


async def one_live_pod(client, ctrl, name: str) -> dict:
    async def check():
        await quiesce(ctrl)
        pods = await live_pods(client, name)
        return pods if len(pods) == 1 else None
    return (await eventually(check, what="one live pod"))[0]


async def test_recreation_back_off_doubles(client, clock, ctrl):
    await client.create(JOBS, job("retry", exit_after=None, backoffLimit=5))
    first = await one_live_pod(client, ctrl, "retry")
    await end_pod(client, first, 1)
    await quiesce(ctrl)
    t_fail = clock.now()
    await advance_to(clock, t_fail + 9, ctrl)
    assert await live_pods(client, "retry") == [], "no replacement before 10 s"
    await advance_to(clock, t_fail + 10.5, ctrl)
    second = await one_live_pod(client, ctrl, "retry")
    assert second["metadata"]["uid"] != first["metadata"]["uid"]
    await end_pod(client, second, 1)
    await quiesce(ctrl)
    t_fail = clock.now()
    await advance_to(clock, t_fail + 19, ctrl)
    assert await live_pods(client, "retry") == [], "no replacement before 20 s"
    await advance_to(clock, t_fail + 20.5, ctrl)
    third = await one_live_pod(client, ctrl, "retry")
    await end_pod(client, third, 0)

    async def complete():
        await quiesce(ctrl)
        j = await client.get(JOBS, "retry")
        return j if "Complete" in conditions(j) else None

    j = await eventually(complete, what="the job complete")
    assert j["status"]["failed"] == 2 and j["status"]["succeeded"] == 1


async def test_active_deadline_in_virtual_time(client, clock, ctrl):
    await client.create(JOBS, job("deadline", exit_after=None, activeDeadlineSeconds=100))
    await one_live_pod(client, ctrl, "deadline")
    start = meta.parse_rfc3339((await client.get(JOBS, "deadline"))["status"]["startTime"]).timestamp()
    await advance_to(clock, start + 99, ctrl)
    assert not conditions(await client.get(JOBS, "deadline"))
    await advance_to(clock, start + 101, ctrl)

    async def failed():
        await quiesce(ctrl)
        j = await client.get(JOBS, "deadline")
        return j if "Failed" in conditions(j) else None

    j = await eventually(failed, what="the job failed")
    assert conditions(j)["Failed"]["reason"] == "DeadlineExceeded"
    assert conditions(j)["FailureTarget"]["reason"] == "DeadlineExceeded"
    assert j["status"]["failed"] == 1
    assert await live_pods(client, "deadline") == []
