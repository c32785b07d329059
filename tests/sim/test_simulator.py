"""The simulator in-process against a real API server: nodes, leases, pods bound to them."""

from __future__ import annotations

import pytest

from api import errors
from kubelet.sim.nodes import LEASE_NAMESPACE, LEASES, NotSimulated
from tests.sim.helpers import (
    PodHistory,
    condition,
    container_state,
    eventually,
    first_container,
    gone,
    in_cidr,
    make_pod,
    pod_when,
)


def running_ready(pod: dict) -> bool:
    ready = condition(pod, "Ready")
    return (pod.get("status") or {}).get("phase") == "Running" and bool(ready) and ready["status"] == "True"


async def test_nodes_registered_with_the_shape_of_real_nodes(client, simulate):
    sim = await simulate(count=3, cpu="16", memory="64Gi", pods=50, zones=["a", "b"],
                         labels={"pool": "sim"}, taints=[{"key": "dedicated", "value": "sim",
                                                         "effect": "NoSchedule"}])
    prefix = sim.cfg.name_prefix
    for i in range(3):
        node = await client.get("nodes", f"{prefix}{i}")
        labels = node["metadata"]["labels"]
        assert labels["kubernetes.io/hostname"] == f"{prefix}{i}"
        assert labels["kubernetes.io/os"] == "linux" and labels["kubernetes.io/arch"] == "amd64"
        assert labels["node.kubernetes.io/instance-type"] == "simulated"
        assert labels["pool"] == "sim"
        assert labels["topology.kubernetes.io/zone"] == ["a", "b"][i % 2]
        assert node["spec"]["taints"] == [{"key": "dedicated", "value": "sim", "effect": "NoSchedule"}]
        status = node["status"]
        for field in ("capacity", "allocatable"):
            assert status[field]["cpu"] == "16" and status[field]["memory"] == "64Gi"
            assert status[field]["pods"] == "50" and "ephemeral-storage" in status[field]
        kinds = {c["type"]: c for c in status["conditions"]}
        assert kinds["Ready"]["status"] == "True" and kinds["Ready"]["reason"] == "KubeletReady"
        assert kinds["Ready"]["lastHeartbeatTime"]
        for pressure in ("MemoryPressure", "DiskPressure", "PIDPressure"):
            assert kinds[pressure]["status"] == "False"
        addresses = {a["type"]: a["address"] for a in status["addresses"]}
        assert addresses["Hostname"] == f"{prefix}{i}"
        assert addresses["InternalIP"] == f"10.250.0.{i + 1}"
        assert status["nodeInfo"]["kubeletVersion"] == "v1.32.0-sim"
        assert status["nodeInfo"]["architecture"] == "amd64"
        assert status["nodeInfo"]["operatingSystem"] == "linux"
        assert status["nodeInfo"]["containerRuntimeVersion"]
        assert status["daemonEndpoints"]["kubeletEndpoint"]["Port"] == 10250


async def test_leases_exist_and_are_renewed(client, simulate):
    sim = await simulate(count=2, lease_renew_interval=0.5)
    name = f"{sim.cfg.name_prefix}1"
    node = await client.get("nodes", name)
    lease = await eventually(lambda: _lease(client, name), what="lease created")
    assert lease["spec"]["holderIdentity"] == name
    assert lease["spec"]["leaseDurationSeconds"] == 40
    assert lease["metadata"]["ownerReferences"][0]["uid"] == node["metadata"]["uid"]
    first = lease["spec"]["renewTime"]

    async def renewed():
        again = await _lease(client, name)
        return again and again["spec"]["renewTime"] != first

    await eventually(renewed, what="lease renewed")


async def test_node_status_heartbeats(client, simulate):
    sim = await simulate(count=1, node_status_update_frequency=1.0)
    name = f"{sim.cfg.name_prefix}0"
    first = condition(await client.get("nodes", name), "Ready")

    async def beaten():
        ready = condition(await client.get("nodes", name), "Ready")
        return ready["lastHeartbeatTime"] != first["lastHeartbeatTime"] and ready

    ready = await eventually(beaten, what="heartbeat")
    assert ready["lastTransitionTime"] == first["lastTransitionTime"]


async def test_node_reported_not_ready_by_others_is_set_right(client, simulate):
    sim = await simulate(count=1)
    name = f"{sim.cfg.name_prefix}0"
    node = await client.get("nodes", name)
    conditions = [dict(c, status="Unknown", reason="NodeStatusUnknown") if c["type"] == "Ready" else c
                  for c in node["status"]["conditions"]]
    await client.patch("nodes", name, {"status": {"conditions": conditions}}, subresource="status")

    async def ready_again():
        return condition(await client.get("nodes", name), "Ready")["status"] == "True"

    await eventually(ready_again, what="Ready again")


async def _lease(client, name):
    try:
        return await client.get(LEASES, name, LEASE_NAMESPACE)
    except errors.NotFound:
        return None


async def test_bound_pod_runs_with_an_ip_from_its_node_range(client, simulate, namespace):
    sim = await simulate(count=3)
    node = f"{sim.cfg.name_prefix}2"
    await client.create("pods", make_pod("web", namespace, containers=2, init_containers=1))
    await client.bind(namespace, "web", node)
    pod = await pod_when(client, namespace, "web", running_ready, "Running and Ready")
    status = pod["status"]
    assert in_cidr(status["podIP"], "10.244.2.0/24")
    assert status["podIPs"] == [{"ip": status["podIP"]}]
    assert status["hostIP"] == "10.250.0.3"
    assert status["startTime"]
    for ctype in ("PodScheduled", "Initialized", "ContainersReady", "Ready", "PodReadyToStartContainers"):
        assert condition(pod, ctype)["status"] == "True", ctype
    names = [c["name"] for c in status["containerStatuses"]]
    assert names == ["c0", "c1"]
    for cs in status["containerStatuses"]:
        assert cs["ready"] and cs["started"] and cs["restartCount"] == 0
        assert cs["containerID"].startswith("sim://")
        assert cs["image"].startswith("registry.local/app:") and cs["imageID"]
        assert cs["state"]["running"]["startedAt"]
    init = status["initContainerStatuses"][0]
    assert init["state"]["terminated"]["reason"] == "Completed" and init["state"]["terminated"]["exitCode"] == 0

    # Another pod on the same node gets another address from the same range.
    await client.create("pods", make_pod("web2", namespace))
    await client.bind(namespace, "web2", node)
    pod2 = await pod_when(client, namespace, "web2", running_ready, "second pod Ready")
    assert in_cidr(pod2["status"]["podIP"], "10.244.2.0/24")
    assert pod2["status"]["podIP"] != status["podIP"]


async def test_host_network_pod_has_the_node_address(client, simulate, namespace):
    sim = await simulate(count=1)
    await client.create("pods", make_pod("hostnet", namespace, host_network=True))
    await client.bind(namespace, "hostnet", f"{sim.cfg.name_prefix}0")
    pod = await pod_when(client, namespace, "hostnet", running_ready)
    assert pod["status"]["podIP"] == pod["status"]["hostIP"] == "10.250.0.1"


async def test_pod_ips_come_from_spec_pod_cidr_when_set(client, simulate, namespace):
    sim = await simulate(count=1)
    name = f"{sim.cfg.name_prefix}0"
    await client.patch("nodes", name, {"spec": {"podCIDR": "10.32.7.0/24", "podCIDRs": ["10.32.7.0/24"]}})
    await eventually(lambda: (sim.node_informer.get(name) or {}).get("spec", {}).get("podCIDR"),
                     what="node informer sees the podCIDR")
    await client.create("pods", make_pod("ipam", namespace))
    await client.bind(namespace, "ipam", name)
    pod = await pod_when(client, namespace, "ipam", running_ready)
    assert in_cidr(pod["status"]["podIP"], "10.32.7.0/24")


async def test_pods_of_other_nodes_are_left_alone(client, simulate, namespace):
    sim = await simulate(count=1)
    await client.create("pods", make_pod("elsewhere", namespace))
    await client.bind(namespace, "elsewhere", "some-real-node")
    await client.create("pods", make_pod("here", namespace))
    await client.bind(namespace, "here", f"{sim.cfg.name_prefix}0")
    await pod_when(client, namespace, "here", running_ready)
    await sim.pods.queue.shut_down_with_drain(5)  # nothing left in flight that could still write
    other = await client.get("pods", "elsewhere", namespace)
    assert (other.get("status") or {}).get("phase") in (None, "Pending")
    assert not (other.get("status") or {}).get("containerStatuses")


async def test_startup_delay_shows_container_creating_first(client, simulate, namespace):
    sim = await simulate(count=1, pod_startup_delay=1.0)
    async with PodHistory(client, namespace) as history:
        await client.create("pods", make_pod("slow", namespace))
        await client.bind(namespace, "slow", f"{sim.cfg.name_prefix}0")
        await pod_when(client, namespace, "slow", running_ready)
        await eventually(lambda: history.ever("slow", running_ready), what="history caught up")
    pending = [p for p in history.of("slow") if (p.get("status") or {}).get("phase") == "Pending"
               and container_state(p) == "waiting"]
    assert pending, "no Pending version with waiting containers"
    assert first_container(pending[-1])["state"]["waiting"]["reason"] == "ContainerCreating"
    assert not pending[-1]["status"].get("podIP")


# restart policy, exit code -> the final phase (None: keeps restarting)
EXIT_CASES = [
    ("Never", "0", "Succeeded"),
    ("Never", "1", "Failed"),
    ("OnFailure", "0", "Succeeded"),
    ("OnFailure", "3", None),
    ("Always", "0", None),
    ("Always", "2", None),
]


@pytest.mark.parametrize(("policy", "code", "final"), EXIT_CASES)
async def test_exit_annotations_follow_the_restart_policy(client, simulate, namespace, policy, code, final):
    sim = await simulate(count=1)
    async with PodHistory(client, namespace) as history:
        await client.create("pods", make_pod("job", namespace, restart_policy=policy, exit_after="1s",
                                             exit_code=code))
        await client.bind(namespace, "job", f"{sim.cfg.name_prefix}0")
        if final is not None:
            pod = await pod_when(client, namespace, "job", lambda p: p.get("status", {}).get("phase") == final,
                                 f"phase {final}")
            term = first_container(pod)["state"]["terminated"]
            assert term["exitCode"] == int(code)
            assert term["reason"] == ("Completed" if code == "0" else "Error")
            assert first_container(pod)["restartCount"] == 0
            assert condition(pod, "Ready")["status"] == "False"
            assert history.ever("job", running_ready), "never ran"
        else:
            pod = await pod_when(client, namespace, "job", lambda p: first_container(p).get("restartCount", 0) >= 2
                                 and container_state(p) == "running", "restarted twice")
            assert pod["status"]["phase"] == "Running"
            last = first_container(pod)["lastState"]["terminated"]
            assert last["exitCode"] == int(code)
            await eventually(lambda: history.ever("job", lambda p: container_state(p) == "waiting" and
                                                   first_container(p)["state"]["waiting"]["reason"] ==
                                                   "CrashLoopBackOff"), what="CrashLoopBackOff seen")
            backing_off = [p for p in history.of("job") if container_state(p) == "waiting"]
            assert condition(backing_off[-1], "Ready")["status"] == "False"
            ips = {p["status"].get("podIP") for p in history.of("job") if p.get("status", {}).get("podIP")}
            assert len(ips) == 1, "the pod kept its address across restarts"


async def test_deleting_a_bound_pod_completes(client, simulate, namespace):
    sim = await simulate(count=1)
    await client.create("pods", make_pod("doomed", namespace, grace=30))
    await client.bind(namespace, "doomed", f"{sim.cfg.name_prefix}0")
    await pod_when(client, namespace, "doomed", running_ready)
    async with PodHistory(client, namespace) as history:
        marked = await client.delete("pods", "doomed", namespace)
        assert marked["metadata"].get("deletionTimestamp"), "a running bound pod is deleted gracefully"
        await eventually(lambda: gone(client, "pods", "doomed", namespace), what="pod gone")
        await eventually(lambda: history.ever("doomed", lambda p: container_state(p) == "terminated"),
                         what="terminated status seen")


async def test_deletion_waits_for_the_termination_delay(client, simulate, namespace):
    sim = await simulate(count=1, termination_delay=1.0)
    await client.create("pods", make_pod("slowstop", namespace, grace=30))
    await client.bind(namespace, "slowstop", f"{sim.cfg.name_prefix}0")
    await pod_when(client, namespace, "slowstop", running_ready)
    await client.delete("pods", "slowstop", namespace)
    # Right after the request the pod is still there, being deleted.
    pod = await client.get("pods", "slowstop", namespace)
    assert pod["metadata"]["deletionTimestamp"]
    await eventually(lambda: gone(client, "pods", "slowstop", namespace), what="pod gone")


async def test_a_new_pod_under_an_old_name_starts_afresh(client, simulate, namespace):
    sim = await simulate(count=1)
    node = f"{sim.cfg.name_prefix}0"
    await client.create("pods", make_pod("again", namespace, restart_policy="Never", exit_after="0.2s"))
    await client.bind(namespace, "again", node)
    await pod_when(client, namespace, "again", lambda p: p.get("status", {}).get("phase") == "Succeeded")
    await client.delete("pods", "again", namespace)
    await eventually(lambda: gone(client, "pods", "again", namespace))
    await client.create("pods", make_pod("again", namespace))
    await client.bind(namespace, "again", node)
    pod = await pod_when(client, namespace, "again", running_ready)
    assert first_container(pod)["restartCount"] == 0


async def test_a_node_that_is_not_simulated_is_not_taken_over(client, simulate, request):
    from tests.sim.conftest import short_name

    name = short_name(request) + "-0"
    await client.create("nodes", {"metadata": {"name": name, "labels": {"real": "yes"}}})
    try:
        with pytest.raises(NotSimulated, match=name):
            await simulate(count=1, cleanup=False)
        node = await client.get("nodes", name)
        assert node["metadata"]["labels"] == {"real": "yes"}
    finally:
        await client.delete("nodes", name)


async def test_a_deleted_node_is_given_up(client, simulate, namespace):
    sim = await simulate(count=2)
    name = f"{sim.cfg.name_prefix}0"
    await client.delete("nodes", name)
    await eventually(lambda: not sim.nodes.manages(name), what="node given up")
    # Its pods are no longer played; the other node's still are.
    await client.create("pods", make_pod("orphan", namespace))
    await client.bind(namespace, "orphan", name)
    await client.create("pods", make_pod("kept", namespace))
    await client.bind(namespace, "kept", f"{sim.cfg.name_prefix}1")
    await pod_when(client, namespace, "kept", running_ready)
    await sim.pods.queue.shut_down_with_drain(5)
    assert not (await client.get("pods", "orphan", namespace)).get("status", {}).get("containerStatuses")
    assert await gone(client, "nodes", name), "not registered again"


async def test_events_as_the_node_agent_records_them(client, simulate, namespace):
    sim = await simulate(count=1, events=True)
    await client.create("pods", make_pod("noisy", namespace, restart_policy="Always", exit_after="0.3s",
                                         exit_code="1"))
    await client.bind(namespace, "noisy", f"{sim.cfg.name_prefix}0")

    async def reasons():
        await sim.recorder.flush()
        events = (await client.list("events", namespace))["items"]
        return {e["reason"]: e for e in events if e["involvedObject"]["name"] == "noisy"}

    seen = await eventually(lambda: _has(reasons(), {"Pulled", "Created", "Started", "BackOff"}),
                            what="start and back-off events")
    assert seen["Started"]["involvedObject"]["fieldPath"] == "spec.containers{c0}"
    assert seen["Started"]["source"]["component"] == "kubelet"
    assert seen["BackOff"]["type"] == "Warning"

    await client.create("pods", make_pod("stopped", namespace))
    await client.bind(namespace, "stopped", f"{sim.cfg.name_prefix}0")
    await pod_when(client, namespace, "stopped", running_ready)
    await client.delete("pods", "stopped", namespace)
    await eventually(lambda: gone(client, "pods", "stopped", namespace), what="pod gone")

    async def killing():
        await sim.recorder.flush()
        events = (await client.list("events", namespace))["items"]
        return [e for e in events if e["involvedObject"]["name"] == "stopped" and e["reason"] == "Killing"]

    await eventually(killing, what="Killing event")


async def _has(pending, wanted: set[str]):
    found = await pending
    return found if wanted <= set(found) else None


async def test_a_status_rewritten_by_others_is_reported_again(client, simulate, namespace):
    sim = await simulate(count=1)
    await client.create("pods", make_pod("steady", namespace))
    await client.bind(namespace, "steady", f"{sim.cfg.name_prefix}0")
    pod = await pod_when(client, namespace, "steady", running_ready)
    conditions = [dict(c, status="False") if c["type"] in ("Ready", "ContainersReady") else c
                  for c in pod["status"]["conditions"]]
    # As the node lifecycle controller does to the pods of a node it lost touch with.
    await client.patch("pods", "steady", {"status": {"conditions": conditions}}, namespace, subresource="status")
    again = await pod_when(client, namespace, "steady", running_ready, "Ready again")
    assert again["status"]["podIP"] == pod["status"]["podIP"]
