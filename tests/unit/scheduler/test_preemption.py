"""DefaultPreemption: victims chosen with the least disruption, their deletion, the nomination,
and the message when preemption cannot help."""

from __future__ import annotations

from scheduler.framework import Code, CycleState
from scheduler.nodeinfo import Snapshot
from tests.unit.scheduler.builders import FakeClient, Handle, framework, make_node, make_pod, node_info, taint


async def preempt(pod, infos, handle=None):
    """A full cycle up to PostFilter: (nominated node, status, deleted pod names, failure text)."""
    handle = handle or Handle()
    fw = framework(handle=handle)
    fw.plugins["DefaultPreemption"].rng.seed(1)
    snap = Snapshot(infos)
    state = CycleState()
    feasible, statuses, _ = fw.find_feasible(state, pod, snap)
    assert feasible == [], "the pod must not fit before preemption"
    node, st = await fw.run_post_filter(state, pod, statuses)
    deleted = [name for _, name, _ in handle.client.deletes]
    text = fw.failure_message(pod, statuses, len(infos), "" if st.ok else st.message)
    return node, st, deleted, text


def low(name, cpu="1", priority=0, **kw):
    return make_pod(name, cpu=cpu, priority=priority, **kw)


async def test_preempts_a_lower_priority_pod():
    victim = low("victim", cpu="3", priority=1)
    infos = [node_info(make_node("n1", cpu="4"), [victim])]
    handle = Handle()
    node, st, deleted, _ = await preempt(make_pod("vip", cpu="2", priority=100), infos, handle)
    assert st.ok and node == "n1" and deleted == ["victim"]
    assert handle.client.deletes[0] == ("default", "victim", {"uid": victim["metadata"]["uid"]})
    [(ns, name, sub, ptype, body)] = handle.client.patches
    assert (ns, name, sub, ptype) == ("default", "victim", "status", "strategic")
    [cond] = body["status"]["conditions"]
    assert cond["type"] == "DisruptionTarget" and cond["reason"] == "PreemptionByScheduler"
    assert cond["message"] == "default-scheduler: preempting to accommodate a higher priority pod"
    [(obj, kind, reason, message)] = handle.recorder.events
    assert (obj, kind, reason) == ("victim", "Normal", "Preempted")
    assert message.startswith("Preempted by pod uid-") and message.endswith(" on node n1")


async def test_keeps_the_most_important_pods_it_can():
    pods = [low("a", priority=1), low("b", priority=5), low("c", priority=3), low("d", priority=2)]
    infos = [node_info(make_node("n1", cpu="4"), pods)]
    node, st, deleted, _ = await preempt(make_pod("vip", cpu="2", priority=100), infos)
    assert node == "n1" and sorted(deleted) == ["a", "d"]


async def test_prefers_the_node_with_the_least_important_victims():
    infos = [node_info(make_node("n1", cpu="2"), [low("mid", cpu="2", priority=10)]),
             node_info(make_node("n2", cpu="2"), [low("lowest", cpu="2", priority=5)]),
             node_info(make_node("n3", cpu="2"), [low("high", cpu="2", priority=50)])]
    node, _, deleted, _ = await preempt(make_pod("vip", cpu="2", priority=100), infos)
    assert node == "n2" and deleted == ["lowest"]


async def test_prefers_fewer_victims_at_equal_priority():
    infos = [node_info(make_node("n1", cpu="2"), [low("a1", priority=1), low("a2", priority=1)]),
             node_info(make_node("n2", cpu="2"), [low("b1", cpu="2", priority=1)])]
    node, _, deleted, _ = await preempt(make_pod("vip", cpu="2", priority=100), infos)
    assert node == "n2" and deleted == ["b1"]


async def test_prefers_lower_priority_sum_then_later_start():
    infos = [node_info(make_node("n1", cpu="2"), [low("a1", priority=3), low("a2", priority=3)]),
             node_info(make_node("n2", cpu="2"), [low("b1", priority=3), low("b2", priority=1)])]
    node, _, _, _ = await preempt(make_pod("vip", cpu="2", priority=100), infos)
    assert node == "n2"
    infos = [node_info(make_node("n1", cpu="2"), [low("old", cpu="2", priority=1, start_time="2026-01-01T00:00:00Z")]),
             node_info(make_node("n2", cpu="2"), [low("new", cpu="2", priority=1, start_time="2026-01-02T00:00:00Z")])]
    node, _, deleted, _ = await preempt(make_pod("vip", cpu="2", priority=100), infos)
    assert node == "n2" and deleted == ["new"]


async def test_equal_or_higher_priority_pods_are_never_victims():
    infos = [node_info(make_node("n1", cpu="2"), [low("peer", cpu="2", priority=100)])]
    node, st, deleted, text = await preempt(make_pod("vip", cpu="2", priority=100), infos)
    assert node is None and deleted == [] and st.code == Code.UNSCHEDULABLE
    assert text == ("0/1 nodes are available: 1 Insufficient cpu. "
                    "preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.")


async def test_evicting_every_lower_priority_pod_is_not_enough():
    infos = [node_info(make_node("n1", cpu="2"), [low("a", cpu="1", priority=1), low("b", cpu="1", priority=500)])]
    node, st, deleted, text = await preempt(make_pod("vip", cpu="2", priority=100), infos)
    assert node is None and deleted == []
    assert text.endswith("preemption: 0/1 nodes are available: 1 Insufficient cpu.")


async def test_preemption_does_not_help_against_taints():
    infos = [node_info(make_node("n1", cpu="2", taints=[taint("k", "v")]), [low("a", cpu="2")]),
             node_info(make_node("n2", cpu="2"), [low("b", cpu="2", priority=200)])]
    node, st, deleted, text = await preempt(make_pod("vip", cpu="2", priority=100), infos)
    assert node is None and deleted == []
    assert text == ("0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint {k: v}. "
                    "preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, "
                    "1 Preemption is not helpful for scheduling.")


async def test_preemption_policy_never():
    infos = [node_info(make_node("n1", cpu="2"), [low("a", cpu="2")])]
    node, st, deleted, text = await preempt(make_pod("vip", cpu="2", priority=100, preemption_policy="Never"),
                                            infos)
    assert node is None and deleted == []
    assert text.endswith("preemption: not eligible due to preemptionPolicy=Never.")


async def test_priority_class_name_resolved_through_the_handle():
    infos = [node_info(make_node("n1", cpu="2"), [low("a", cpu="2", priority=10)])]
    pod = make_pod("vip", cpu="2")
    pod["spec"]["priorityClassName"] = "critical"
    handle = Handle(priority_classes={"critical": {"value": 1000}})
    node, st, deleted, _ = await preempt(pod, infos, handle)
    assert node == "n1" and deleted == ["a"]
    node, st, deleted, _ = await preempt(pod, infos, Handle())      # unknown class: priority 0
    assert node is None


async def test_preempting_resolves_anti_affinity():
    anti = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "batch"}}, "topologyKey": "kubernetes.io/hostname"}]}}
    infos = [node_info(make_node("n1"), [low("batch", cpu="100m", priority=1, labels={"app": "batch"}),
                                         low("other", cpu="100m", priority=1)])]
    node, st, deleted, _ = await preempt(make_pod("vip", priority=100, affinity=anti), infos)
    assert node == "n1" and deleted == ["batch"]


async def test_waits_while_a_victim_on_the_nominated_node_terminates():
    infos = [node_info(make_node("n1", cpu="2"), [low("going", cpu="2", priority=1, terminating=True)])]
    node, st, deleted, text = await preempt(make_pod("vip", cpu="2", priority=100, nominated="n1"), infos)
    assert node is None and deleted == []
    assert "not eligible due to a terminating pod on the nominated node" in text


async def test_victim_already_gone_is_fine():
    from api import errors

    class Gone(FakeClient):
        async def patch(self, *a, **kw):
            raise errors.NotFound("gone")

        async def delete(self, resource, name, namespace=None, **kw):
            raise errors.NotFound("gone")

    infos = [node_info(make_node("n1", cpu="2"), [low("a", cpu="2")])]
    node, st, _, _ = await preempt(make_pod("vip", cpu="2", priority=100), infos, Handle(Gone()))
    assert st.ok and node == "n1"


def test_room_made_by_preemption_is_kept_for_the_nominated_pod():
    class Nominating(Handle):
        def __init__(self, nominated):
            super().__init__()
            self.nominated = nominated

        def nominated_pods(self):
            return self.nominated

    vip = make_pod("vip", cpu="3", priority=100, nominated="n1")
    fw = framework(handle=Nominating({"n1": [vip]}))
    snap = Snapshot([node_info(make_node("n1", cpu="4")), node_info(make_node("n2", cpu="1"))])
    feasible, statuses, _ = fw.find_feasible(CycleState(), make_pod("small", cpu="2", priority=10), snap)
    assert feasible == [] and statuses["n1"].reasons == ["Insufficient cpu"]
    # A pod of higher priority than the nominated one may take the node; so may the nominee.
    feasible, _, _ = fw.find_feasible(CycleState(), make_pod("top", cpu="2", priority=1000), snap)
    assert [n.name for n in feasible] == ["n1"]
    feasible, _, _ = fw.find_feasible(CycleState(), vip, snap)
    assert [n.name for n in feasible] == ["n1"]


async def test_lower_priority_nominations_on_the_chosen_node_are_cleared():
    waiting_low = make_pod("waiting-low", cpu="1", priority=5, nominated="n1")
    waiting_high = make_pod("waiting-high", cpu="1", priority=500, nominated="n1")

    class Nominating(Handle):
        def nominated_pods(self):
            return {"n1": [waiting_low, waiting_high]}

    handle = Nominating()
    infos = [node_info(make_node("n1", cpu="4"), [low("a", cpu="1", priority=1)])]
    # 4 cpu: 1 used by "a", 1 kept for the higher nominee; the preemptor needs 3.
    node, st, deleted, _ = await preempt(make_pod("vip", cpu="3", priority=100), infos, handle)
    assert node == "n1" and deleted == ["a"]
    cleared = [(name, body) for _, name, sub, _, body in handle.client.patches if "nominatedNodeName" in body["status"]]
    assert cleared == [("waiting-low", {"status": {"nominatedNodeName": None}})]


async def test_dry_run_keeps_room_promised_to_higher_nominees():
    waiting_high = make_pod("waiting-high", cpu="2", priority=500, nominated="n1")

    class Nominating(Handle):
        def nominated_pods(self):
            return {"n1": [waiting_high]}

    infos = [node_info(make_node("n1", cpu="4"), [low("a", cpu="1", priority=1)])]
    node, st, deleted, text = await preempt(make_pod("vip", cpu="3", priority=100), infos, Nominating())
    assert node is None and deleted == []
    assert text.endswith("preemption: 0/1 nodes are available: 1 Insufficient cpu.")


async def test_preempting_restores_topology_spread():
    web = {"app": "web"}
    spread = [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule",
               "labelSelector": {"matchLabels": web}}]
    infos = [node_info(make_node("n1", zone="a"), [low("w1", cpu="100m", priority=1, labels=web),
                                                   low("w2", cpu="100m", priority=2, labels=web),
                                                   low("other", cpu="100m", priority=1)]),
             node_info(make_node("n2", zone="b", cpu="1"), [low("big", cpu="1", priority=1000)])]
    node, st, deleted, _ = await preempt(make_pod("vip", cpu="500m", priority=100, labels=web, spread=spread), infos)
    # Zone a holds 2 web pods, zone b none: skew allows at most 1 in zone a after placing, so both go;
    # the pod that does not match the selector stays.
    assert node == "n1" and sorted(deleted) == ["w1", "w2"]
