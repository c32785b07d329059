"""Score plugins, table-driven: a pod, nodes, the expected normalized score per node."""

from __future__ import annotations

import pytest

from scheduler.plugins.interpodaffinity import InterPodAffinity
from scheduler.plugins.nodeaffinity import NodeAffinity
from scheduler.plugins.noderesources import NodeResourcesBalancedAllocation, NodeResourcesFit
from scheduler.plugins.podtopologyspread import PodTopologySpread
from scheduler.plugins.tainttoleration import TaintToleration
from scheduler.profile import ConfigError
from tests.unit.scheduler.builders import make_node, make_pod, node_info, run_score, taint


def two_nodes():
    """n1: 4 cpu / 8Gi with 2 cpu / 2Gi used; n2: 4 cpu / 8Gi empty."""
    return [node_info(make_node("n1"), [make_pod("a", cpu="2", memory="2Gi")]), node_info(make_node("n2"))]


@pytest.mark.parametrize("args, pod, want", [
    # LeastAllocated: ((4-3)/4*100 + (8-3)/8*100) / 2 = (25 + 62) / 2 -> 43; n2: (75 + 87) / 2 = 81
    ({}, make_pod(cpu="1", memory="1Gi"), {"n1": 43, "n2": 81}),
    # MostAllocated packs: (75 + 37) / 2 = 56; n2: (25 + 12) / 2 = 18
    ({"scoringStrategy": {"type": "MostAllocated"}}, make_pod(cpu="1", memory="1Gi"), {"n1": 56, "n2": 18}),
    # Weights per resource: cpu only.
    ({"scoringStrategy": {"resources": [{"name": "cpu", "weight": 1}]}}, make_pod(cpu="1"), {"n1": 25, "n2": 75}),
    # A pod without requests counts as 100m / 200Mi.
    ({"scoringStrategy": {"resources": [{"name": "cpu", "weight": 1}]}}, make_pod(), {"n1": 47, "n2": 97}),
    # RequestedToCapacityRatio with a packing shape (score rises with utilization).
    ({"scoringStrategy": {"type": "RequestedToCapacityRatio", "resources": [{"name": "cpu", "weight": 1}],
                          "requestedToCapacityRatio": {"shape": [{"utilization": 0, "score": 0},
                                                                 {"utilization": 100, "score": 10}]}}},
     make_pod(cpu="1"), {"n1": 75, "n2": 25}),
])
def test_node_resources_fit_score(args, pod, want):
    assert run_score(NodeResourcesFit(args), pod, two_nodes()) == want


@pytest.mark.parametrize("args", [
    {"scoringStrategy": {"type": "Random"}},
    {"scoringStrategy": {"resources": [{"name": "cpu", "weight": 0}]}},
    {"scoringStrategy": {"type": "RequestedToCapacityRatio"}},
])
def test_node_resources_fit_bad_args(args):
    with pytest.raises(ConfigError):
        NodeResourcesFit(args)


def test_balanced_allocation():
    # n1 after placing 1 cpu / 1Gi: cpu 3/4, memory 3/8 -> std 0.1875 -> 81; n2: 1/4, 1/8 -> 93.
    assert run_score(NodeResourcesBalancedAllocation(), make_pod(cpu="1", memory="1Gi"), two_nodes()) == {
        "n1": 81, "n2": 93}
    # Evenly used node scores 100.
    infos = [node_info(make_node("n1", cpu="4", memory="4Gi"))]
    assert run_score(NodeResourcesBalancedAllocation(), make_pod(cpu="2", memory="2Gi"), infos) == {"n1": 100}


def test_taint_toleration_score_prefers_fewer_untolerated_soft_taints():
    infos = [node_info(make_node("n1", taints=[taint("a", "", "PreferNoSchedule"), taint("b", "", "PreferNoSchedule")])),
             node_info(make_node("n2", taints=[taint("a", "", "PreferNoSchedule")])),
             node_info(make_node("n3"))]
    assert run_score(TaintToleration(), make_pod(), infos) == {"n1": 0, "n2": 50, "n3": 100}
    tol = [{"key": "a", "operator": "Exists", "effect": "PreferNoSchedule"}]
    assert run_score(TaintToleration(), make_pod(tolerations=tol), infos) == {"n1": 0, "n2": 100, "n3": 100}


def test_node_affinity_preferred_score():
    pref = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 80, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}},
        {"weight": 20, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}},
    ]}}
    infos = [node_info(make_node("n1", labels={"disk": "ssd"})), node_info(make_node("n2", labels={"zone": "a"})),
             node_info(make_node("n3", labels={"disk": "ssd", "zone": "a"})), node_info(make_node("n4"))]
    assert run_score(NodeAffinity(), make_pod(affinity=pref), infos) == {"n1": 80, "n2": 20, "n3": 100, "n4": 0}


def test_inter_pod_affinity_preferred_score():
    pref = {"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 10, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "cache"}},
                                           "topologyKey": "topology.kubernetes.io/zone"}}]},
            "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 5, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "web"}},
                                                  "topologyKey": "kubernetes.io/hostname"}}]}}
    infos = [node_info(make_node("n1", zone="a"), [make_pod("c", labels={"app": "cache"}),
                                                   make_pod("w", labels={"app": "web"})]),
             node_info(make_node("n2", zone="a")),
             node_info(make_node("n3", zone="b"))]
    # n1: +10 -5 = 5, n2: +10, n3: 0 -> rescaled to [0, 100]
    assert run_score(InterPodAffinity(), make_pod(affinity=pref), infos) == {"n1": 50, "n2": 100, "n3": 0}


def test_inter_pod_affinity_existing_pods_required_affinity_attracts():
    # An existing pod that requires affinity to "web" pods pulls web pods to its zone
    # (hardPodAffinityWeight).
    needy = make_pod("needy", affinity={"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "topology.kubernetes.io/zone"}]}})
    infos = [node_info(make_node("n1", zone="a"), [needy]), node_info(make_node("n2", zone="b"))]
    assert run_score(InterPodAffinity(), make_pod(labels={"app": "web"}), infos) == {"n1": 100, "n2": 0}
    assert run_score(InterPodAffinity({"hardPodAffinityWeight": 0}), make_pod(labels={"app": "web"}),
                     infos) == {"n1": 0, "n2": 0}


def test_pod_topology_spread_score_prefers_emptier_domains():
    spread = [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway",
               "labelSelector": {"matchLabels": {"app": "web"}}}]
    web = {"app": "web"}
    infos = [node_info(make_node("n1", zone="a"), [make_pod("w1", labels=web), make_pod("w2", labels=web)]),
             node_info(make_node("n2", zone="b"), [make_pod("w3", labels=web)]),
             node_info(make_node("n3", zone="c")),
             node_info(make_node("n4"))]
    got = run_score(PodTopologySpread(), make_pod(labels=web, spread=spread), infos)
    assert got["n3"] == 100 and got["n3"] > got["n2"] > got["n1"]
    assert got["n4"] == 0   # no zone label: ignored


def test_pod_topology_spread_default_constraints_for_owned_pods():
    web = {"app": "web"}
    infos = [node_info(make_node("n1", zone="a"), [make_pod("w1", labels=web), make_pod("w2", labels=web)]),
             node_info(make_node("n2", zone="b"))]
    owned = run_score(PodTopologySpread(), make_pod(labels=web, owner=True), infos)
    assert owned["n2"] > owned["n1"]
    bare = run_score(PodTopologySpread(), make_pod(labels=web), infos)
    assert bare == {"n1": 0, "n2": 0}
    listed = PodTopologySpread({"defaultingType": "List", "defaultConstraints": [
        {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule"}]})
    from tests.unit.scheduler.builders import run_filter
    got = run_filter(listed, make_pod(labels=web, owner=True), infos)
    assert not got["n1"].ok and got["n2"].ok


@pytest.mark.parametrize("args", [
    {"defaultingType": "Other"},
    {"defaultingType": "System", "defaultConstraints": [{"maxSkew": 1, "topologyKey": "k",
                                                         "whenUnsatisfiable": "DoNotSchedule"}]},
    {"defaultingType": "List", "defaultConstraints": [{"maxSkew": 0, "topologyKey": "k",
                                                       "whenUnsatisfiable": "DoNotSchedule"}]},
])
def test_pod_topology_spread_bad_args(args):
    with pytest.raises(ConfigError):
        PodTopologySpread(args)


def test_system_default_spread_works_without_zone_labels():
    # No zone labels anywhere: hostname spreading still applies to a ReplicaSet's pods.
    web = {"app": "web"}
    infos = [node_info(make_node("n1"), [make_pod("w1", labels=web), make_pod("w2", labels=web)]),
             node_info(make_node("n2"), [make_pod("w3", labels=web)]),
             node_info(make_node("n3"))]
    got = run_score(PodTopologySpread(), make_pod(labels=web, owner=True), infos)
    assert got["n3"] == 100 and got["n3"] > got["n2"] > got["n1"]
    # Explicit constraints on a missing key leave those nodes out instead.
    spread = [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway",
               "labelSelector": {"matchLabels": web}}]
    assert run_score(PodTopologySpread(), make_pod(labels=web, spread=spread), infos) == {"n1": 0, "n2": 0, "n3": 0}
