"""navctl rollout: status follows generation and replica counts (a stand-in controller writes the
status subresource step by step), history and undo over owned ReplicaSets, restart, pause, resume."""

from __future__ import annotations

import asyncio
import copy

from tests.cli.builders import deployment


async def set_status(api, ns: str, name: str, **status) -> None:
    live = await api.get("deployments.apps", name, ns)
    live["status"] = {"observedGeneration": live["metadata"]["generation"], **status}
    await api.update_status("deployments.apps", live, ns)


async def test_status_waits_through_kubectls_stages(navctl, api, ns):
    await api.create("deployments.apps", deployment("web", ns, replicas=3))
    r = await navctl("rollout", "status", "deploy/web", "-n", ns, "--watch=false")
    assert r.out == "Waiting for deployment spec update to be observed...\n"

    task = asyncio.create_task(navctl("rollout", "status", "deployment", "web", "-n", ns, "--timeout=120s"))
    stages = [dict(replicas=3, updatedReplicas=1, availableReplicas=0),
              dict(replicas=4, updatedReplicas=3, availableReplicas=2),
              dict(replicas=3, updatedReplicas=3, availableReplicas=2),
              dict(replicas=3, updatedReplicas=3, availableReplicas=3, readyReplicas=3)]
    for stage in stages:
        await asyncio.sleep(0.5)
        assert not task.done()
        await set_status(api, ns, "web", **stage)
    r = await asyncio.wait_for(task, 120)
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[-1] == 'deployment "web" successfully rolled out'
    expected_order = [
        'Waiting for deployment "web" rollout to finish: 1 out of 3 new replicas have been updated...',
        'Waiting for deployment "web" rollout to finish: 1 old replicas are pending termination...',
        'Waiting for deployment "web" rollout to finish: 2 of 3 updated replicas are available...',
    ]
    # The watcher may miss a stage that passed quickly, but what it prints keeps kubectl's order.
    seen = [x for x in lines if x in expected_order]
    assert seen == sorted(seen, key=expected_order.index) and seen

    await set_status(api, ns, "web", replicas=3, updatedReplicas=3, availableReplicas=3,
                     conditions=[{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}])
    r = await navctl.fails("rollout", "status", "deploy/web", "-n", ns)
    assert r.err == 'error: deployment "web" exceeded its progress deadline\n'


async def make_revisions(api, ns: str) -> dict:
    d = await api.create("deployments.apps", deployment("web", ns, image="nginx:1.25"))
    owner = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": d["metadata"]["uid"],
             "controller": True, "blockOwnerDeletion": True}
    for rev, image, cause in ((1, "nginx:1.24", "first"), (2, "nginx:1.25", None)):
        t = copy.deepcopy(d["spec"]["template"])
        t["spec"]["containers"][0]["image"] = image
        t["metadata"]["labels"]["pod-template-hash"] = f"h{rev}"
        ann = {"deployment.kubernetes.io/revision": str(rev)}
        if cause:
            ann["kubernetes.io/change-cause"] = cause
        await api.create("replicasets.apps", {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": f"web-h{rev}", "namespace": ns, "labels": {"app": "web", "pod-template-hash": f"h{rev}"},
                         "annotations": ann, "ownerReferences": [owner]},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web", "pod-template-hash": f"h{rev}"}},
                     "template": t}})
    return d


async def test_history_and_undo(navctl, api, ns):
    await make_revisions(api, ns)
    out = await navctl.ok("rollout", "history", "deploy/web", "-n", ns)
    assert out == "deployment.apps/web \nREVISION  CHANGE-CAUSE\n1         first\n2         <none>\n\n"
    one = await navctl.ok("rollout", "history", "deploy/web", "-n", ns, "--revision=1")
    assert one.startswith("deployment.apps/web with revision #1\nPod Template:\n")
    assert "nginx:1.24" in one
    r = await navctl.fails("rollout", "history", "deploy/web", "-n", ns, "--revision=9")
    assert "unable to find the specified revision" in r.err

    assert await navctl.ok("rollout", "undo", "deploy/web", "-n", ns) == "deployment.apps/web rolled back\n"
    live = await api.get("deployments.apps", "web", ns)
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.24"
    assert "pod-template-hash" not in live["spec"]["template"]["metadata"]["labels"]
    out = await navctl.ok("rollout", "undo", "deploy/web", "-n", ns, "--to-revision=1")
    assert out == "deployment.apps/web skipped rollback (current template already matches revision 1)\n"
    await navctl.ok("rollout", "undo", "deploy/web", "-n", ns, "--to-revision=2")
    live = await api.get("deployments.apps", "web", ns)
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.25"
    r = await navctl.fails("rollout", "undo", "deploy/web", "-n", ns, "--to-revision=7")
    assert r.err == "error: unable to find specified revision 7 in history\n"


async def test_restart_pause_resume(navctl, api, ns):
    await api.create("deployments.apps", deployment("web", ns))
    assert await navctl.ok("rollout", "restart", "deploy/web", "-n", ns) == "deployment.apps/web restarted\n"
    live = await api.get("deployments.apps", "web", ns)
    stamp = live["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
    assert stamp.endswith("Z") and "T" in stamp

    assert await navctl.ok("rollout", "pause", "deploy/web", "-n", ns) == "deployment.apps/web paused\n"
    assert (await api.get("deployments.apps", "web", ns))["spec"]["paused"] is True
    r = await navctl.fails("rollout", "pause", "deploy/web", "-n", ns)
    assert r.err == 'error: deployments.apps "web" is already paused\n'
    r = await navctl.fails("rollout", "restart", "deploy/web", "-n", ns)
    assert r.err == "error: deployments.apps \"web\" can't restart paused deployment (run rollout resume first)\n"
    r = await navctl.fails("rollout", "undo", "deploy/web", "-n", ns)
    assert "you cannot rollback a paused deployment" in r.err
    assert await navctl.ok("rollout", "resume", "deploy/web", "-n", ns) == "deployment.apps/web resumed\n"
    assert not (await api.get("deployments.apps", "web", ns))["spec"].get("paused")
    r = await navctl.fails("rollout", "resume", "deploy/web", "-n", ns)
    assert r.err == 'error: deployments.apps "web" is not paused\n'
    r = await navctl.fails("rollout", "status", "cm/x", "-n", ns)
    assert r.err.startswith("error: no rollout support for configmaps")
    r = await navctl.fails("rollout", "status", "deploy/absent", "-n", ns)
    assert r.err == 'Error from server (NotFound): deployments.apps "absent" not found\n'

