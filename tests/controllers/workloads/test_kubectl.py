"""Real kubectl against deployments these controllers roll out: ``rollout status`` through each
stage, ``rollout undo`` (to the previous and to a given revision), ``rollout restart``,
``rollout pause``/``resume`` and ``rollout history``."""

from __future__ import annotations

import asyncio
import os
import shutil

import pytest

from controller_manager import deploymentutil as du
from tests.controllers.workloads.helpers import deployment, eventually

DEP = "deployments.apps"
RS = "replicasets.apps"
KUBECTL = "/usr/bin/kubectl"


@pytest.fixture
def kubectl(apiserver, client, tmp_path):
    if not os.path.exists(KUBECTL) and not shutil.which("kubectl"):
        if os.environ.get("CI") == "true":
            pytest.fail("kubectl is required")
        pytest.skip("kubectl not installed")
    exe = KUBECTL if os.path.exists(KUBECTL) else shutil.which("kubectl")
    base = [exe, "--kubeconfig", str(apiserver.kubeconfig), "--cache-dir", str(tmp_path / "kcache"),
            "-n", client.namespace]

    async def run(*args: str, timeout: float = 60) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(*base, *args, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
        return proc.returncode, out.decode(), err.decode()

    run.base = base
    return run


async def images(client, name: str) -> str:
    d = await client.get(DEP, name)
    return d["spec"]["template"]["spec"]["containers"][0]["image"]


async def rolled_out(client, name: str, replicas: int) -> dict:
    async def check():
        d = await client.get(DEP, name)
        st = d.get("status") or {}
        ok = (st.get("observedGeneration") == d["metadata"]["generation"] and st.get("updatedReplicas") == replicas
              and st.get("replicas") == replicas and st.get("availableReplicas") == replicas)
        return d if ok else None

    return await eventually(check, timeout=60, what=f"deployment {name} rolled out")


async def test_rollout_status_reports_each_stage(client, runner, controllers, kubectl):
    """kubectl rollout status while new pods wait (gated), then when they may run."""
    allowed: set[str] = set()
    runner.may_run = lambda pod: pod["spec"]["containers"][0]["image"] in allowed
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    await client.create(DEP, deployment("web", 3, strategy=strategy))
    proc = await asyncio.create_subprocess_exec(*kubectl.base, "rollout", "status", "deployment/web",
                                                "--timeout=90s", stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    lines: list[str] = []

    async def read() -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            lines.append(raw.decode().rstrip("\n"))

    reader = asyncio.create_task(read())

    async def saw(text: str):
        return any(text in ln for ln in lines) or None

    await eventually(lambda: saw('Waiting for deployment "web" rollout to finish: 0 of 3 updated replicas '
                                 'are available...'), what="rollout status waiting for availability")
    allowed.add("busybox:1")
    runner.poke()
    assert await asyncio.wait_for(proc.wait(), 60) == 0
    await reader
    assert lines[-1] == 'deployment "web" successfully rolled out'

    # An update whose new pods cannot run yet: one surge pod, nothing old removed.
    await client.patch(DEP, "web", {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "busybox:2"}]}}}})
    code, out, err = await kubectl("rollout", "status", "deployment/web", "--watch=false")
    assert code == 0, err
    # Right after the change it may still be unobserved, or the new ReplicaSet may have no pod yet.
    assert out.startswith(("Waiting for deployment spec update to be observed...",
                           'Waiting for deployment "web" rollout to finish: ')), out

    async def one_updated():
        _, o, _ = await kubectl("rollout", "status", "deployment/web", "--watch=false")
        return o.strip() == ('Waiting for deployment "web" rollout to finish: 1 out of 3 new replicas have been '
                             'updated...') or None

    await eventually(one_updated, what="one of three updated")
    allowed.add("busybox:2")
    runner.poke()
    code, out, err = await kubectl("rollout", "status", "deployment/web", "--timeout=60s")
    assert code == 0, err
    assert out.strip().splitlines()[-1] == 'deployment "web" successfully rolled out'


async def test_undo_restart_pause_and_history(client, runner, controllers, kubectl):
    await client.create(DEP, deployment("app", 2))
    await rolled_out(client, "app", 2)
    for image in ("busybox:2", "busybox:3"):
        code, _, err = await kubectl("set", "image", "deployment/app", f"app={image}")
        assert code == 0, err
        await rolled_out(client, "app", 2)

    code, out, err = await kubectl("rollout", "history", "deployment/app")
    assert code == 0, err
    revs = [ln.split()[0] for ln in out.splitlines()[2:] if ln.strip()]
    assert revs == ["1", "2", "3"], out

    # Undo goes back to revision 2, which becomes revision 4.
    code, out, err = await kubectl("rollout", "undo", "deployment/app")
    assert code == 0, err
    assert out.strip() == "deployment.apps/app rolled back"
    await eventually(lambda: _image_is(client, "app", "busybox:2"), what="undo applied")
    d = await rolled_out(client, "app", 2)

    async def revision4():
        dd = await client.get(DEP, "app")
        return dd if dd["metadata"]["annotations"].get(du.REVISION) == "4" else None

    await eventually(revision4, what="revision 4 on the deployment")
    rss = (await client.list(RS, client.namespace, label_selector="app=app"))["items"]
    current = next(r for r in rss if r["spec"]["replicas"] == 2)
    assert current["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:2"
    assert current["metadata"]["annotations"][du.REVISION] == "4"
    assert current["metadata"]["annotations"].get(du.REVISION_HISTORY) == "2", current["metadata"]
    assert len(rss) == 3

    # --to-revision picks an exact one.
    code, out, err = await kubectl("rollout", "undo", "deployment/app", "--to-revision=1")
    assert code == 0, err
    await eventually(lambda: _image_is(client, "app", "busybox:1"), what="undo to revision 1")
    await rolled_out(client, "app", 2)

    # Restart: a template annotation, so a new ReplicaSet with the same image.
    code, out, err = await kubectl("rollout", "restart", "deployment/app")
    assert code == 0, err
    d = await client.get(DEP, "app")
    assert "kubectl.kubernetes.io/restartedAt" in d["spec"]["template"]["metadata"]["annotations"]
    await rolled_out(client, "app", 2)
    rss = (await client.list(RS, client.namespace, label_selector="app=app"))["items"]
    assert len(rss) == 4

    # Pause: template changes wait; the Progressing condition says so.
    code, _, err = await kubectl("rollout", "pause", "deployment/app")
    assert code == 0, err
    code, _, err = await kubectl("set", "image", "deployment/app", "app=busybox:9")
    assert code == 0, err

    async def paused():
        dd = await client.get(DEP, "app")
        c = du.get_condition(dd.get("status") or {}, "Progressing")
        return dd if c and c["reason"] == "DeploymentPaused" else None

    d = await paused_wait(paused)
    c = du.get_condition(d["status"], "Progressing")
    assert (c["status"], c["message"]) == ("Unknown", "Deployment is paused")
    await asyncio.sleep(0.5)
    rss = (await client.list(RS, client.namespace, label_selector="app=app"))["items"]
    assert len(rss) == 4 and not any(
        r["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:9" for r in rss)
    code, out, err = await kubectl("rollout", "undo", "deployment/app")
    assert code != 0 and "paused" in err
    code, _, err = await kubectl("rollout", "resume", "deployment/app")
    assert code == 0, err
    await rolled_out(client, "app", 2)
    rss = (await client.list(RS, client.namespace, label_selector="app=app"))["items"]
    assert any(r["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:9" and r["spec"]["replicas"] == 2
               for r in rss)


async def paused_wait(check):
    return await eventually(check, what="a paused condition")


async def _image_is(client, name: str, image: str) -> bool:
    return await images(client, name) == image


async def test_progress_deadline_exceeded_in_virtual_time(client, kubectl):
    """Pods that never become ready: once progressDeadlineSeconds pass on the controllers'
    (fake) clock, Progressing turns False with ProgressDeadlineExceeded and kubectl says so."""
    from client.clock import FakeClock
    from tests.controllers.workloads.helpers import Controllers, PodRunner

    clock = FakeClock()
    runner = PodRunner(client, may_run=lambda pod: False)
    ctl = Controllers(client, clock=clock)
    await runner.start()
    await ctl.start()

    async def tick() -> None:
        # Keeps short requeues (conflicts, backoff) moving; far slower than the deadline.
        while True:
            await asyncio.sleep(0.05)
            await clock.advance(0.1)

    ticker = asyncio.create_task(tick())
    try:
        await client.create(DEP, deployment("late", 2, progressDeadlineSeconds=600))

        async def progressing():
            d = await client.get(DEP, "late")
            c = du.get_condition(d.get("status") or {}, "Progressing")
            st = d.get("status") or {}
            return d if c and c["reason"] == "ReplicaSetUpdated" and st.get("updatedReplicas") == 2 else None

        await eventually(progressing, what="a progressing rollout")
        code, out, err = await kubectl("rollout", "status", "deployment/late", "--watch=false")
        assert code == 0 and "0 of 2 updated replicas are available" in out, (out, err)
        ticker.cancel()
        await asyncio.gather(ticker, return_exceptions=True)
        await clock.advance(601)
        ticker = asyncio.create_task(tick())

        async def timed_out():
            dd = await client.get(DEP, "late")
            c = du.get_condition(dd.get("status") or {}, "Progressing")
            return c if c and c["reason"] == "ProgressDeadlineExceeded" else None

        c = await eventually(timed_out, what="ProgressDeadlineExceeded")
        (rs,) = (await client.list(RS, client.namespace, label_selector="app=late"))["items"]
        rs_name = rs["metadata"]["name"]
        assert (c["status"], c["message"]) == ("False", f'ReplicaSet "{rs_name}" has timed out progressing.')
        code, out, err = await kubectl("rollout", "status", "deployment/late", "--watch=false")
        assert code == 1 and 'deployment "late" exceeded its progress deadline' in err, (code, out, err)

        # Progress after the deadline: the rollout completes after all.
        runner.may_run = lambda pod: True
        runner.poke()
        code, out, err = await kubectl("rollout", "status", "deployment/late", "--timeout=60s")
        assert code == 0 and out.strip().endswith('deployment "late" successfully rolled out'), (out, err)
    finally:
        ticker.cancel()
        await asyncio.gather(ticker, return_exceptions=True)
        await ctl.stop()
        await runner.stop()


async def test_describe_reads_status_conditions_and_events(client, runner, controllers, kubectl):
    await client.create(DEP, deployment("desc", 3))
    await rolled_out(client, "desc", 3)
    (rs,) = (await client.list(RS, client.namespace, label_selector="app=desc"))["items"]
    rs_name = rs["metadata"]["name"]

    async def described():
        code, out, err = await kubectl("describe", "deployment/desc")
        assert code == 0, err
        ok = ("NewReplicaSetAvailable" in out and "ScalingReplicaSet" in out)
        return out if ok else None

    out = await eventually(described, what="describe showing the completed rollout and its event")
    lines = [" ".join(ln.split()) for ln in out.splitlines()]
    assert "Replicas: 3 desired | 3 updated | 3 total | 3 available | 0 unavailable" in lines, out
    assert "Annotations: deployment.kubernetes.io/revision: 1" in lines, out
    assert "Available True MinimumReplicasAvailable" in lines, out
    assert "Progressing True NewReplicaSetAvailable" in lines, out
    assert f"NewReplicaSet: {rs_name} (3/3 replicas created)" in lines, out
    assert any(ln.startswith("Normal ScalingReplicaSet") and ln.endswith(
        f"deployment-controller Scaled up replica set {rs_name} from 0 to 3") for ln in lines), out

    async def described_rs():
        code, out, err = await kubectl("describe", f"replicaset/{rs_name}")
        assert code == 0, err
        return out if out.count("SuccessfulCreate") == 3 else None

    out = await eventually(described_rs, what="describe rs with three SuccessfulCreate events")
    lines = [" ".join(ln.split()) for ln in out.splitlines()]
    assert "Replicas: 3 current / 3 desired" in lines, out
    assert "Pods Status: 3 Running / 0 Waiting / 0 Succeeded / 0 Failed" in lines, out
    assert "Controlled By: Deployment/desc" in lines, out
    assert sum(1 for ln in lines if ln.startswith("Normal SuccessfulCreate") and
               "replicaset-controller Created pod: " in ln) == 3, out
