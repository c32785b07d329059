"""The framework runner: filtering with a share of nodes, scoring with weights, the extension
points in order, the FailedScheduling text and why-pending explanations."""

from __future__ import annotations

import random

import pytest

from api import errors
from scheduler.framework import (
    Code,
    CycleState,
    Framework,
    NodeStatuses,
    Status,
    failure_message,
    num_feasible_nodes_to_find,
)
from scheduler.nodeinfo import Snapshot
from scheduler.profile import Profile, build_profile
from tests.unit.scheduler.builders import FakeClient, Handle, framework, make_node, make_pod, node_info, taint


@pytest.mark.parametrize("percentage, nodes, want", [
    (None, 50, 50),          # small clusters: every node
    (None, 99, 99),
    (None, 500, 230),        # 50 - 500/125 = 46%
    (None, 5000, 500),       # 50 - 40 = 10%
    (None, 6000, 300),       # floor at 5%
    (None, 1000, 420),
    (0, 5000, 500),
    (30, 1000, 300),
    (1, 1000, 100),          # never fewer than 100
    (100, 5000, 5000),
])
def test_num_feasible_nodes_to_find(percentage, nodes, want):
    assert num_feasible_nodes_to_find(percentage, nodes) == want


def test_find_feasible_stops_early_and_resumes_where_it_stopped():
    fw = framework()
    infos = [node_info(name=f"n{i:03}") for i in range(200)]
    snap = Snapshot(infos)
    pod = make_pod(cpu="100m")
    feasible, statuses, nxt = fw.find_feasible(CycleState(), pod, snap, 0, 50)
    assert [n.name for n in feasible] == [f"n{i:03}" for i in range(100)] and nxt == 100 and not statuses
    feasible, _, nxt = fw.find_feasible(CycleState(), pod, snap, nxt, 50)
    assert feasible[0].name == "n100" and len(feasible) == 100 and nxt == 0
    feasible, _, nxt = fw.find_feasible(CycleState(), pod, snap, 150, 100)
    assert len(feasible) == 200 and feasible[0].name == "n150" and feasible[-1].name == "n149"


def test_find_feasible_reports_failures_with_plugin_names():
    fw = framework()
    snap = Snapshot([node_info(name="a", cpu="1"), node_info(name="b", taints=[taint("k", "v")]),
                     node_info(name="c", unschedulable=True), node_info(name="d")])
    feasible, statuses, _ = fw.find_feasible(CycleState(), make_pod(cpu="2"), snap)
    assert [n.name for n in feasible] == ["d"]
    assert {n: (s.plugin, s.reasons) for n, s in statuses.items()} == {
        "a": ("NodeResourcesFit", ["Insufficient cpu"]),
        "b": ("TaintToleration", ["node(s) had untolerated taint {k: v}"]),
        "c": ("NodeUnschedulable", ["node(s) were unschedulable"]),
    }


def test_find_feasible_tries_the_nominated_node_first():
    fw = framework()
    snap = Snapshot([node_info(name=f"n{i}") for i in range(5)])
    feasible, _, nxt = fw.find_feasible(CycleState(), make_pod(nominated="n3"), snap, 1)
    assert [n.name for n in feasible] == ["n3"] and nxt == 1
    # A nominated node that does not fit any more: normal filtering.
    snap = Snapshot([node_info(name="n0"), node_info(name="n1", cpu="1")])
    feasible, statuses, _ = fw.find_feasible(CycleState(), make_pod(cpu="2", nominated="n1"), snap)
    assert [n.name for n in feasible] == ["n0"] and "n1" in statuses


def test_pre_filter_narrowing_and_failure():
    fw = framework()
    snap = Snapshot([node_info(name="n1"), node_info(name="n2")])
    pinned = make_pod(affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n2"]}]}]}}})
    feasible, statuses, _ = fw.find_feasible(CycleState(), pinned, snap)
    assert [n.name for n in feasible] == ["n2"]
    assert statuses["n1"].reasons == ["node(s) didn't satisfy plugin(s) [NodeAffinity]"]
    assert statuses["n1"].code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE


class Rejecting:
    name = "Rejecting"

    def __init__(self, args=None, handle=None):
        self.calls = []

    def pre_filter(self, state, pod, snapshot):
        return None, Status.unschedulable("pod is not welcome", unresolvable=True)

    def filter(self, state, pod, node):
        raise AssertionError("filter must not run after PreFilter rejected the pod")


class Recorder:
    """Records the order of the extension points it implements."""

    name = "Recorder"
    log: list[str] = []

    def __init__(self, args=None, handle=None):
        self.args = args
        self.fail_reserve = (args or {}).get("failReserve", False)

    def reserve(self, state, pod, node_name):
        Recorder.log.append(f"reserve {node_name}")
        return Status.unschedulable("no") if self.fail_reserve else Status()

    def unreserve(self, state, pod, node_name):
        Recorder.log.append(f"unreserve {node_name}")

    def permit(self, state, pod, node_name):
        Recorder.log.append("permit")
        return Status.wait(), 5.0

    async def pre_bind(self, state, pod, node_name, handle):
        Recorder.log.append("prebind")
        return Status()

    async def bind(self, state, pod, node_name, handle):
        Recorder.log.append("bind skip")
        return Status.skip()

    def post_bind(self, state, pod, node_name):
        Recorder.log.append("postbind")


def custom_framework(spec: dict, handle=None) -> Framework:
    from scheduler.plugins.registry import REGISTRY
    registry = dict(REGISTRY, Rejecting=Rejecting, Recorder=Recorder)
    import scheduler.profile as profile_mod
    saved = profile_mod._registry
    profile_mod._registry = lambda: registry
    try:
        prof = build_profile(spec)
    finally:
        profile_mod._registry = saved
    return Framework(prof, handle, registry)


def test_pre_filter_rejection_is_reported_once():
    fw = custom_framework({"plugins": {"preFilter": {"enabled": [{"name": "Rejecting"}]},
                                       "filter": {"enabled": [{"name": "Rejecting"}]}}})
    snap = Snapshot([node_info(name="n1"), node_info(name="n2")])
    feasible, statuses, _ = fw.find_feasible(CycleState(), make_pod(), snap)
    assert feasible == [] and statuses.pre_filter is not None and statuses.pre_filter.plugin == "Rejecting"
    assert fw.failure_message(make_pod(), statuses, 2) == "0/2 nodes are available: pod is not welcome."


async def test_binding_cycle_order_and_default_binder():
    Recorder.log = []
    handle = Handle()
    fw = custom_framework({"plugins": {
        "multiPoint": {"enabled": [{"name": "Recorder"}]},
        "bind": {"disabled": [{"name": "*"}], "enabled": [{"name": "Recorder"}, {"name": "DefaultBinder"}]},
    }}, handle)
    pod = make_pod("web", namespace="shop")
    state = CycleState()
    assert fw.run_reserve(state, pod, "n1").ok
    st, timeout = fw.run_permit(state, pod, "n1")
    assert st.code == Code.WAIT and timeout == 5.0 and st.plugin == "Recorder"
    assert (await fw.run_pre_bind(state, pod, "n1")).ok
    assert (await fw.run_bind(state, pod, "n1")).ok       # Recorder skips, DefaultBinder binds
    fw.run_post_bind(state, pod, "n1")
    assert Recorder.log == ["reserve n1", "permit", "prebind", "bind skip", "postbind"]
    assert handle.client.binds == [("shop", "web", "n1")]


async def test_failed_bind_and_reserve():
    Recorder.log = []
    handle = Handle(FakeClient(fail=errors.Conflict("pod already bound")))
    fw = custom_framework({"plugins": {"reserve": {"enabled": [{"name": "Recorder"}]}},
                           "pluginConfig": [{"name": "Recorder", "args": {"failReserve": True}}]}, handle)
    state = CycleState()
    st = fw.run_reserve(state, make_pod(), "n1")
    assert st.code == Code.UNSCHEDULABLE and st.plugin == "Recorder"
    fw.run_unreserve(state, make_pod(), "n1")
    assert Recorder.log == ["reserve n1", "unreserve n1"]
    st = await fw.run_bind(state, make_pod(), "n1")
    assert st.code == Code.ERROR and st.plugin == "DefaultBinder" and "pod already bound" in st.message


def test_run_score_weights_and_select_host():
    fw = framework()
    infos = [node_info(make_node("busy", taints=[taint("t", "", "PreferNoSchedule")]), [make_pod("a", cpu="3")]),
             node_info(make_node("idle"))]
    state = CycleState()
    feasible, _, _ = fw.find_feasible(state, make_pod(cpu="500m"), Snapshot(infos))
    scores = fw.run_score(state, make_pod(cpu="500m"), feasible)
    assert scores["idle"] > scores["busy"]
    # TaintToleration weighs 3: the untainted node gets 300 from it alone.
    assert scores["idle"] - scores["busy"] >= 300
    assert fw.select_host(scores) == "idle"
    assert fw.select_host({}) is None


def test_select_host_breaks_ties_at_random():
    rng = random.Random(7)
    picks = {Framework.select_host({"a": 5, "b": 9, "c": 9, "d": 1}, rng) for _ in range(50)}
    assert picks == {"b", "c"}


def test_score_weight_from_profile():
    spec = {"plugins": {"score": {"enabled": [{"name": "NodeResourcesFit", "weight": 5}],
                                  "disabled": [{"name": "*"}]}}}
    fw = framework(spec)
    assert [p.name for p in fw.score_plugins] == ["NodeResourcesFit"] and fw.weights == {"NodeResourcesFit": 5}
    state = CycleState()
    infos = [node_info(name="n1")]
    feasible, _, _ = fw.find_feasible(state, make_pod(cpu="1"), Snapshot(infos))
    # cpu (4 - 1) / 4 -> 75; memory counts the 200Mi default: (8192 - 200) / 8192 -> 97.
    assert fw.run_score(state, make_pod(cpu="1"), feasible) == {"n1": 5 * ((75 + 97) // 2)}


@pytest.mark.parametrize("reasons_by_node, num, preemption, want", [
    ({"a": ["Insufficient cpu"], "b": ["node(s) had untolerated taint {k: v}"],
      "c": ["node(s) had untolerated taint {k: v}"]}, 3, "",
     "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {k: v}."),
    ({"a": ["Insufficient cpu", "Insufficient memory"], "b": ["Insufficient memory"]}, 2,
     "preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod.",
     "0/2 nodes are available: 1 Insufficient cpu, 2 Insufficient memory. "
     "preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod."),
    # Sorted as text, so 10 comes before 2.
    ({f"n{i}": ["Insufficient cpu"] for i in range(10)} | {"x": ["Too many pods"], "y": ["Too many pods"]}, 12, "",
     "0/12 nodes are available: 10 Insufficient cpu, 2 Too many pods."),
    ({}, 0, "", "0/0 nodes are available:"),
])
def test_failure_message(reasons_by_node, num, preemption, want):
    statuses = NodeStatuses({n: Status.unschedulable(*r) for n, r in reasons_by_node.items()})
    assert failure_message(make_pod(), statuses, num, preemption) == want


def test_explain_lists_every_failure_headroom_and_suggestions():
    fw = framework()
    snap = Snapshot([
        node_info(make_node("small", cpu="1"), [make_pod("a", cpu="500m")]),
        node_info(make_node("medium", cpu="2")),
        node_info(make_node("tainted", cpu="8", taints=[taint("dedicated", "gpu")])),
        node_info(make_node("both", cpu="1", taints=[taint("dedicated", "gpu")])),
    ])
    out = fw.explain(make_pod("big", namespace="ns", cpu="3"), snap)
    assert out["pod"] == "ns/big" and out["requests"] == {"cpu": "3"}
    rows = {r["node"]: r for r in out["nodes"]}
    assert rows["small"]["plugin"] == "NodeResourcesFit" and rows["small"]["reasons"] == ["Insufficient cpu"]
    assert rows["small"]["headroom"]["cpu"] == "500m"
    assert rows["both"]["reasons"] == ["node(s) had untolerated taint {dedicated: gpu}", "Insufficient cpu"]
    assert [f["plugin"] for f in rows["both"]["failures"]] == ["TaintToleration", "NodeResourcesFit"]
    # Closest first: one failing plugin, smallest shortfall.
    assert [r["node"] for r in out["nodes"]][:2] == ["tainted", "medium"]
    assert out["summary"] == ("0/4 nodes are available: 2 Insufficient cpu, "
                              "2 node(s) had untolerated taint {dedicated: gpu}.")
    assert "lower the cpu request from 3 to at most 2: it would then fit on node medium" in out["suggestions"]
    assert ("add a toleration for taint dedicated=gpu:NoSchedule: 1 node(s) reject the pod only for it"
            in out["suggestions"])


def test_explain_when_the_pod_fits_and_for_selectors():
    fw = framework()
    snap = Snapshot([node_info(make_node("n1")), node_info(make_node("n2", labels={"disk": "hdd"}))])
    out = fw.explain(make_pod(), snap)
    assert [r["fits"] for r in out["nodes"]] == [True, True]
    assert out["summary"].startswith("2/2 nodes can run the pod now")
    out = fw.explain(make_pod(node_selector={"disk": "ssd"}), snap)
    assert "no node has the label disk=ssd that the nodeSelector asks for" in out["suggestions"]
    out = fw.explain(make_pod(cpu="100"), snap)
    assert any(s.startswith("no node has 100 cpu allocatable in total (the largest has 4)")
               for s in out["suggestions"])


def test_profile_object_can_be_built_by_hand():
    prof = Profile("custom", {"filter": ["NodeName"], "bind": ["DefaultBinder"]})
    fw = Framework(prof)
    assert [p.name for p in fw.filter_plugins] == ["NodeName"] and fw.score_plugins == []


def test_queue_order_is_priority_then_age():
    fw = framework()
    old_low = make_pod("a", priority=1)
    new_high = make_pod("b", priority=10)
    new_high["metadata"]["creationTimestamp"] = "2026-02-01T00:00:00Z"
    new_low = make_pod("c", priority=1)
    new_low["metadata"]["creationTimestamp"] = "2026-02-01T00:00:00Z"
    assert fw.less(new_high, old_low) and not fw.less(old_low, new_high)
    assert fw.less(old_low, new_low) and not fw.less(new_low, old_low)


def test_pre_filter_narrowing_to_nothing():
    fw = framework()
    snap = Snapshot([node_info(name="n1")])
    nowhere = make_pod(affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["gone"]}]}]}}})
    feasible, statuses, _ = fw.find_feasible(CycleState(), nowhere, snap)
    assert feasible == [] and statuses["n1"].reasons == ["node(s) didn't satisfy plugin(s) [NodeAffinity]"]
    assert fw.failure_message(nowhere, statuses, 1) == (
        "0/1 nodes are available: 1 node(s) didn't satisfy plugin(s) [NodeAffinity].")


@pytest.mark.parametrize("pod, nodes, suggestion", [
    (make_pod(cpu="1"), [node_info(make_node("c1", unschedulable=True))],
     "uncordon c1: cordoned, and the only reason the pod does not fit there"),
    (make_pod(host_ports=[80]), [node_info(make_node("n1"), [make_pod("web", host_ports=[80])])],
     "1 node(s) reject the pod only because its host ports are taken there: free the ports or drop hostPort"),
    (make_pod(), [node_info(make_node("n1", pods="1"), [make_pod("a")])],
     "1 node(s) are at their pod limit: n1"),
    (make_pod(labels={"app": "x"}, affinity={"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "x"}}, "topologyKey": "kubernetes.io/hostname"}]}}),
     [node_info(make_node("n1"), [make_pod("x1", labels={"app": "x"})])],
     "1 node(s) reject the pod only for InterPodAffinity: node(s) didn't match pod anti-affinity rules"),
    (make_pod(cpu="3", memory="3Gi"), [node_info(make_node("n1", cpu="4", memory="4Gi"),
                                                 [make_pod("a", cpu="2", memory="2Gi")])],
     "lower cpu to at most 2, memory to at most 2Gi: it would then fit on node n1"),
    (make_pod(), [], "there are no nodes: add nodes to the cluster"),
])
def test_explain_suggestions(pod, nodes, suggestion):
    out = framework().explain(pod, Snapshot(nodes))
    assert suggestion in out["suggestions"], out["suggestions"]
