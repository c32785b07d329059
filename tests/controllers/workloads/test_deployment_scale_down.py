"""Scaling old ReplicaSets down in a rolling update, on the controller's own view of them: an old
ReplicaSet whose status still counts pods a scale-down is removing is never scaled back up."""

from __future__ import annotations

import pytest

from controller_manager.controllers.deployment import DeploymentController, StaleStatus


class RecordingClient:
    def __init__(self):
        self.updates: list[tuple[str, int]] = []

    async def update(self, resource, obj):
        self.updates.append((obj["metadata"]["name"], obj["spec"]["replicas"]))
        out = dict(obj)
        out["metadata"] = {**obj["metadata"], "resourceVersion": "2"}
        return out


class Events:
    def normal(self, *args):
        pass


def make_rs(name: str, replicas: int, available: int, created: str) -> dict:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}", "resourceVersion": "1",
                         "creationTimestamp": created},
            "spec": {"replicas": replicas}, "status": {"replicas": replicas, "availableReplicas": available}}


def make_deployment(replicas: int) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "ns", "uid": "uid-web"},
            "spec": {"replicas": replicas, "strategy": {"type": "RollingUpdate"}}, "status": {}}


def controller() -> DeploymentController:
    c = DeploymentController.__new__(DeploymentController)
    c.client = RecordingClient()
    c.recorder = Events()
    return c


async def reconcile_old(c: DeploymentController, old: dict, new: dict, d: dict):
    return await c._reconcile_old_rss([old, new], [old], [old], new, d)


@pytest.mark.parametrize(("old_spec", "old_available", "new_available", "expected"), [
    (2, 1, 2, [("web-old", 1)]),        # one unhealthy old pod goes; then none may
    (2, 1, 3, [("web-old", 1), ("web-old", 0)]),   # and then a healthy one too
    (1, 1, 3, [("web-old", 0)]),        # all healthy, one may go while 3 of 4 stay available
    (2, 2, 1, []),                      # 2 + 1 available: none may go
])
async def test_old_replicasets_shrink_within_availability(old_spec, old_available, new_available, expected):
    c = controller()
    d = make_deployment(4)              # maxSurge 1, maxUnavailable 1: at least 3 available
    new = make_rs("web-new", 4 + 1 - old_spec, new_available, "2026-01-02T00:00:00Z")
    await reconcile_old(c, make_rs("web-old", old_spec, old_available, "2026-01-01T00:00:00Z"), new, d)
    assert c.client.updates == expected


async def test_status_behind_a_scale_down_never_scales_the_old_replicaset_up():
    c = controller()
    d = make_deployment(4)
    # Scaled down to 1 a moment ago; its status still counts the 3 pods it had available.
    old = make_rs("web-old", 1, 3, "2026-01-01T00:00:00Z")
    new = make_rs("web-new", 4, 3, "2026-01-02T00:00:00Z")
    with pytest.raises(StaleStatus):
        await reconcile_old(c, old, new, d)
    assert c.client.updates == []
