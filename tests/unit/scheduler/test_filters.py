"""Filter plugins, table-driven: a pod, nodes (with their pods), the expected status per node."""

from __future__ import annotations

import pytest

from scheduler.framework import Code
from scheduler.plugins.interpodaffinity import InterPodAffinity
from scheduler.plugins.nodeaffinity import NodeAffinity
from scheduler.plugins.nodename import NodeName
from scheduler.plugins.nodeports import NodePorts
from scheduler.plugins.noderesources import NodeResourcesFit
from scheduler.plugins.nodeunschedulable import NodeUnschedulable
from scheduler.plugins.podtopologyspread import PodTopologySpread
from scheduler.plugins.tainttoleration import TaintToleration
from tests.unit.scheduler.builders import make_node, make_pod, node_info, run_filter, taint

OK = (Code.SUCCESS, [])
U = Code.UNSCHEDULABLE
UU = Code.UNSCHEDULABLE_AND_UNRESOLVABLE


def check(plugin, pod, infos, want):
    got = run_filter(plugin, pod, infos)
    assert {n: (s.code if s.code != Code.SKIP else Code.SUCCESS, s.reasons) for n, s in got.items()} == want
    for s in got.values():
        if not s.ok:
            assert s.plugin == plugin.name


# -- NodeResourcesFit ----------------------------------------------------------------------------

FIT_CASES = [
    ("fits", make_pod(cpu="1", memory="1Gi"), [node_info(cpu="2", memory="2Gi")], {"n1": OK}),
    ("no requests fit anywhere with room for a pod", make_pod(), [node_info(cpu="0")], {"n1": OK}),
    ("counts pods already there",
     make_pod(cpu="1"), [node_info(make_node(cpu="2"), [make_pod("a", cpu="1500m")])],
     {"n1": (U, ["Insufficient cpu"])}),
    ("bigger than the node is unresolvable",
     make_pod(cpu="3"), [node_info(cpu="2")], {"n1": (UU, ["Insufficient cpu"])}),
    ("every short resource is reported, in order",
     make_pod(cpu="3", memory="3Gi", ephemeral="1Gi", extra={"example.com/gpu": "1"}),
     [node_info(make_node(cpu="4", memory="4Gi", ephemeral="10Gi"), [make_pod("a", cpu="2", memory="2Gi")])],
     {"n1": (UU, ["Insufficient cpu", "Insufficient memory", "Insufficient example.com/gpu"])}),
    ("extended resource present",
     make_pod(extra={"example.com/gpu": "2"}), [node_info(extra={"example.com/gpu": "2"})], {"n1": OK}),
    ("pod count", make_pod(), [node_info(make_node(pods="1"), [make_pod("a")])], {"n1": (U, ["Too many pods"])}),
    ("init container peak counts",
     make_pod(init_containers=[{"name": "i", "image": "x", "resources": {"requests": {"cpu": "3"}}}], cpu="100m"),
     [node_info(cpu="2")], {"n1": (UU, ["Insufficient cpu"])}),
]


@pytest.mark.parametrize("name, pod, infos, want", FIT_CASES, ids=[c[0] for c in FIT_CASES])
def test_node_resources_fit(name, pod, infos, want):
    check(NodeResourcesFit(), pod, infos, want)


def test_node_resources_fit_ignored_resources():
    plugin = NodeResourcesFit({"ignoredResources": ["example.com/gpu"], "ignoredResourceGroups": ["vendor.io"]})
    pod = make_pod(extra={"example.com/gpu": "1", "vendor.io/fpga": "1"})
    check(plugin, pod, [node_info()], {"n1": OK})


# -- NodeName, NodeUnschedulable -------------------------------------------------------------------

def test_node_name():
    check(NodeName(), make_pod(node_name="n2"), [node_info(name="n1"), node_info(name="n2")],
          {"n1": (UU, ["node(s) didn't match the requested node name"]), "n2": OK})
    check(NodeName(), make_pod(), [node_info(name="n1")], {"n1": OK})


@pytest.mark.parametrize("tolerations, want", [
    (None, (UU, ["node(s) were unschedulable"])),
    ([{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}], OK),
    ([{"operator": "Exists"}], OK),
])
def test_node_unschedulable(tolerations, want):
    infos = [node_info(name="n1", unschedulable=True), node_info(name="n2")]
    check(NodeUnschedulable(), make_pod(tolerations=tolerations), infos, {"n1": want, "n2": OK})


# -- TaintToleration ----------------------------------------------------------------------------

TAINT_CASES = [
    ("no taints", None, [], OK),
    ("untolerated NoSchedule", None, [taint("k", "v")], (UU, ["node(s) had untolerated taint {k: v}"])),
    ("untolerated NoExecute", None, [taint("k", "", "NoExecute")], (UU, ["node(s) had untolerated taint {k: }"])),
    ("PreferNoSchedule does not filter", None, [taint("k", "v", "PreferNoSchedule")], OK),
    ("Equal matches value", [{"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"}],
     [taint("k", "v")], OK),
    ("Equal is the default operator", [{"key": "k", "value": "v"}], [taint("k", "v")], OK),
    ("wrong value", [{"key": "k", "value": "w"}], [taint("k", "v")], (UU, ["node(s) had untolerated taint {k: v}"])),
    ("Exists on key", [{"key": "k", "operator": "Exists"}], [taint("k", "v")], OK),
    ("wrong effect", [{"key": "k", "operator": "Exists", "effect": "NoExecute"}], [taint("k", "v")],
     (UU, ["node(s) had untolerated taint {k: v}"])),
    ("empty key Exists tolerates all", [{"operator": "Exists"}], [taint("a"), taint("b", "", "NoExecute")], OK),
    ("first untolerated is reported", [{"key": "a", "operator": "Exists"}], [taint("a"), taint("b", "x")],
     (UU, ["node(s) had untolerated taint {b: x}"])),
]


@pytest.mark.parametrize("name, tolerations, taints, want", TAINT_CASES, ids=[c[0] for c in TAINT_CASES])
def test_taint_toleration(name, tolerations, taints, want):
    check(TaintToleration(), make_pod(tolerations=tolerations), [node_info(taints=taints)], {"n1": want})


# -- NodePorts -----------------------------------------------------------------------------------

PORT_ERR = (U, ["node(s) didn't have free ports for the requested pod ports"])
PORT_CASES = [
    ("free", [80], [81], OK),
    ("same port", [80], [80], PORT_ERR),
    ("other protocol", [(80, "UDP")], [80], OK),
    ("specific IPs differ", [(80, "TCP", "10.0.0.1")], [(80, "TCP", "10.0.0.2")], OK),
    ("wildcard used blocks a specific IP", [(80, "TCP", "10.0.0.1")], [80], PORT_ERR),
    ("wildcard wanted blocked by a specific IP", [80], [(80, "TCP", "10.0.0.2")], PORT_ERR),
    ("no host ports", None, [80], OK),
]


@pytest.mark.parametrize("name, wanted, used, want", PORT_CASES, ids=[c[0] for c in PORT_CASES])
def test_node_ports(name, wanted, used, want):
    info = node_info(make_node(), [make_pod("a", host_ports=used)])
    check(NodePorts(), make_pod(host_ports=wanted), [info], {"n1": want})


# -- NodeAffinity --------------------------------------------------------------------------------

AFF_ERR = (UU, ["node(s) didn't match Pod's node affinity/selector"])


def required(*terms):
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": list(terms)}}}


def expr(key, op, *values):
    e = {"key": key, "operator": op}
    if values:
        e["values"] = list(values)
    return {"matchExpressions": [e]}


AFFINITY_CASES = [
    ("nodeSelector matches", {"node_selector": {"disk": "ssd"}}, {"disk": "ssd"}, OK),
    ("nodeSelector misses", {"node_selector": {"disk": "ssd"}}, {"disk": "hdd"}, AFF_ERR),
    ("In", {"affinity": required(expr("zone", "In", "a", "b"))}, {"zone": "b"}, OK),
    ("In misses", {"affinity": required(expr("zone", "In", "a"))}, {"zone": "b"}, AFF_ERR),
    ("NotIn with label absent", {"affinity": required(expr("zone", "NotIn", "a"))}, {}, OK),
    ("NotIn", {"affinity": required(expr("zone", "NotIn", "a"))}, {"zone": "a"}, AFF_ERR),
    ("Exists", {"affinity": required(expr("gpu", "Exists"))}, {"gpu": ""}, OK),
    ("DoesNotExist", {"affinity": required(expr("gpu", "DoesNotExist"))}, {"gpu": "1"}, AFF_ERR),
    ("Gt", {"affinity": required(expr("cores", "Gt", "4"))}, {"cores": "8"}, OK),
    ("Gt equal", {"affinity": required(expr("cores", "Gt", "8"))}, {"cores": "8"}, AFF_ERR),
    ("Lt", {"affinity": required(expr("cores", "Lt", "4"))}, {"cores": "2"}, OK),
    ("Lt not a number", {"affinity": required(expr("cores", "Lt", "4"))}, {"cores": "two"}, AFF_ERR),
    ("terms are ORed", {"affinity": required(expr("zone", "In", "x"), expr("disk", "In", "ssd"))},
     {"disk": "ssd"}, OK),
    ("expressions are ANDed",
     {"affinity": required({"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]},
                                                 {"key": "disk", "operator": "In", "values": ["ssd"]}]})},
     {"zone": "a"}, AFF_ERR),
    ("empty term matches nothing", {"affinity": required({})}, {"zone": "a"}, AFF_ERR),
    ("matchFields on the name",
     {"affinity": required({"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]})},
     {}, OK),
    ("matchFields NotIn",
     {"affinity": required({"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["n1"]}]})},
     {}, AFF_ERR),
    ("selector and affinity both apply",
     {"node_selector": {"disk": "ssd"}, "affinity": required(expr("zone", "In", "a"))}, {"zone": "a"}, AFF_ERR),
]


@pytest.mark.parametrize("name, pod_kw, labels, want", AFFINITY_CASES, ids=[c[0] for c in AFFINITY_CASES])
def test_node_affinity(name, pod_kw, labels, want):
    check(NodeAffinity(), make_pod(**pod_kw), [node_info(labels=labels)], {"n1": want})


def test_node_affinity_pins_node_names_in_pre_filter():
    from scheduler.framework import CycleState
    from scheduler.nodeinfo import Snapshot
    pod = make_pod(affinity=required({"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n2"]}]}))
    names, st = NodeAffinity().pre_filter(CycleState(), pod, Snapshot([node_info(name="n1"), node_info(name="n2")]))
    assert st.ok and names == {"n2"}
    names, st = NodeAffinity().pre_filter(CycleState(), make_pod(node_selector={"a": "b"}), Snapshot([]))
    assert st.ok and names is None


def test_node_affinity_added_affinity_applies_to_every_pod():
    plugin = NodeAffinity({"addedAffinity": required(expr("pool", "In", "batch"))["nodeAffinity"]})
    infos = [node_info(name="n1", labels={"pool": "batch"}), node_info(name="n2")]
    check(plugin, make_pod(), infos, {"n1": OK, "n2": AFF_ERR})


# -- InterPodAffinity ----------------------------------------------------------------------------

def pod_term(labels, key="kubernetes.io/hostname", **extra):
    return {"labelSelector": {"matchLabels": labels}, "topologyKey": key, **extra}


def affinity(kind, *terms):
    return {kind: {"requiredDuringSchedulingIgnoredDuringExecution": list(terms)}}


AFFINITY_RULES = (UU, ["node(s) didn't match pod affinity rules"])
ANTI_RULES = (U, ["node(s) didn't match pod anti-affinity rules"])
EXISTING_ANTI = (U, ["node(s) didn't satisfy existing pods anti-affinity rules"])


def zones():
    """n1, n2 in zone a; n3 in zone b. A db pod on n1."""
    return [node_info(make_node("n1", zone="a"), [make_pod("db", labels={"app": "db"})]),
            node_info(make_node("n2", zone="a")),
            node_info(make_node("n3", zone="b"))]


POD_AFFINITY_CASES = [
    ("affinity by host", make_pod(affinity=affinity("podAffinity", pod_term({"app": "db"}))),
     {"n1": OK, "n2": AFFINITY_RULES, "n3": AFFINITY_RULES}),
    ("affinity by zone",
     make_pod(affinity=affinity("podAffinity", pod_term({"app": "db"}, "topology.kubernetes.io/zone"))),
     {"n1": OK, "n2": OK, "n3": AFFINITY_RULES}),
    ("affinity to nothing: the pod may not start the group unless it matches itself",
     make_pod(affinity=affinity("podAffinity", pod_term({"app": "web"})), labels={"app": "other"}),
     {"n1": AFFINITY_RULES, "n2": AFFINITY_RULES, "n3": AFFINITY_RULES}),
    ("first pod of a self-affine group goes anywhere",
     make_pod(affinity=affinity("podAffinity", pod_term({"app": "web"})), labels={"app": "web"}),
     {"n1": OK, "n2": OK, "n3": OK}),
    ("affinity in another namespace does not count",
     make_pod(namespace="other", affinity=affinity("podAffinity", pod_term({"app": "db"}))),
     {"n1": AFFINITY_RULES, "n2": AFFINITY_RULES, "n3": AFFINITY_RULES}),
    ("affinity with explicit namespaces",
     make_pod(namespace="other", affinity=affinity("podAffinity", pod_term({"app": "db"}, namespaces=["default"]))),
     {"n1": OK, "n2": AFFINITY_RULES, "n3": AFFINITY_RULES}),
    ("anti-affinity by host", make_pod(affinity=affinity("podAntiAffinity", pod_term({"app": "db"}))),
     {"n1": ANTI_RULES, "n2": OK, "n3": OK}),
    ("anti-affinity by zone",
     make_pod(affinity=affinity("podAntiAffinity", pod_term({"app": "db"}, "topology.kubernetes.io/zone"))),
     {"n1": ANTI_RULES, "n2": ANTI_RULES, "n3": OK}),
]


@pytest.mark.parametrize("name, pod, want", POD_AFFINITY_CASES, ids=[c[0] for c in POD_AFFINITY_CASES])
def test_inter_pod_affinity(name, pod, want):
    check(InterPodAffinity(), pod, zones(), want)


def test_existing_pods_anti_affinity():
    guard = make_pod("guard", labels={"app": "guard"},
                     affinity=affinity("podAntiAffinity", pod_term({"app": "web"}, "topology.kubernetes.io/zone")))
    infos = [node_info(make_node("n1", zone="a"), [guard]), node_info(make_node("n2", zone="a")),
             node_info(make_node("n3", zone="b"))]
    check(InterPodAffinity(), make_pod(labels={"app": "web"}), infos, {"n1": EXISTING_ANTI, "n2": EXISTING_ANTI, "n3": OK})
    check(InterPodAffinity(), make_pod(labels={"app": "api"}), infos, {"n1": OK, "n2": OK, "n3": OK})


def test_inter_pod_affinity_skips_without_terms():
    from scheduler.framework import CycleState
    from scheduler.nodeinfo import Snapshot
    _, st = InterPodAffinity().pre_filter(CycleState(), make_pod(), Snapshot(zones()))
    assert st.code == Code.SKIP


# -- PodTopologySpread ---------------------------------------------------------------------------

SPREAD_ERR = (U, ["node(s) didn't match pod topology spread constraints"])
SPREAD_MISSING = (UU, ["node(s) didn't match pod topology spread constraints (missing required label)"])


def spread(key="topology.kubernetes.io/zone", max_skew=1, when="DoNotSchedule", labels=None, **extra):
    return [{"maxSkew": max_skew, "topologyKey": key, "whenUnsatisfiable": when,
             "labelSelector": {"matchLabels": labels or {"app": "web"}}, **extra}]


def web(name, **kw):
    return make_pod(name, labels={"app": "web"}, **kw)


def spread_nodes():
    """Zone a: n1 (2 web), n2 (0); zone b: n3 (1 web); n4 without a zone label."""
    return [node_info(make_node("n1", zone="a"), [web("w1"), web("w2")]),
            node_info(make_node("n2", zone="a")),
            node_info(make_node("n3", zone="b"), [web("w3"), make_pod("other", labels={"app": "x"})]),
            node_info(make_node("n4"))]


SPREAD_CASES = [
    ("zone skew 1: only the emptier zone", web("new", spread=spread()),
     {"n1": SPREAD_ERR, "n2": SPREAD_ERR, "n3": OK, "n4": SPREAD_MISSING}),
    ("zone skew 2 allows both zones", web("new", spread=spread(max_skew=2)),
     {"n1": OK, "n2": OK, "n3": OK, "n4": SPREAD_MISSING}),
    ("a pod that does not match its own selector does not add to the skew",
     make_pod("new", labels={"app": "other"}, spread=spread()),
     {"n1": OK, "n2": OK, "n3": OK, "n4": SPREAD_MISSING}),
    ("hostname spread", web("new", spread=spread("kubernetes.io/hostname")),
     {"n1": SPREAD_ERR, "n2": OK, "n3": SPREAD_ERR, "n4": OK}),
    ("minDomains above the domain count makes the minimum 0",
     web("new", spread=spread(max_skew=2, minDomains=3)),
     {"n1": SPREAD_ERR, "n2": SPREAD_ERR, "n3": OK, "n4": SPREAD_MISSING}),
    ("node affinity narrows the domains (Honor): zone a is the only domain, so its minimum is 2",
     web("new", spread=spread(), node_selector={"topology.kubernetes.io/zone": "a"}),
     {"n1": OK, "n2": OK, "n3": OK, "n4": SPREAD_MISSING}),
    ("ScheduleAnyway does not filter", web("new", spread=spread(when="ScheduleAnyway")),
     {"n1": OK, "n2": OK, "n3": OK, "n4": OK}),
]


@pytest.mark.parametrize("name, pod, want", SPREAD_CASES, ids=[c[0] for c in SPREAD_CASES])
def test_pod_topology_spread(name, pod, want):
    check(PodTopologySpread(), pod, spread_nodes(), want)


def test_spread_node_affinity_policy():
    infos = [node_info(make_node("n1", zone="a"), [web("w1")]), node_info(make_node("n3", zone="b"))]
    honor = web("new", spread=spread(), node_selector={"topology.kubernetes.io/zone": "a"})
    assert run_filter(PodTopologySpread(), honor, infos)["n1"].ok      # zone b is not a domain
    ignore = web("new", spread=spread(nodeAffinityPolicy="Ignore"), node_selector={"topology.kubernetes.io/zone": "a"})
    assert not run_filter(PodTopologySpread(), ignore, infos)["n1"].ok  # zone b (0 pods) counts


def test_spread_node_taints_policy():
    infos = [node_info(make_node("n1", zone="a"), [web("w1")]),
             node_info(make_node("n3", zone="b", taints=[taint("k")]))]
    ignore = web("new", spread=spread())
    assert not run_filter(PodTopologySpread(), ignore, infos)["n1"].ok  # tainted zone b counts
    honor = web("new", spread=spread(nodeTaintsPolicy="Honor"))
    assert run_filter(PodTopologySpread(), honor, infos)["n1"].ok


def test_spread_ignores_terminating_and_other_namespaces():
    infos = [node_info(make_node("n1", zone="a"), [web("w1", terminating=True), web("w2", namespace="x")]),
             node_info(make_node("n2", zone="b"))]
    check(PodTopologySpread(), web("new", spread=spread()), infos, {"n1": OK, "n2": OK})


@pytest.mark.parametrize("term", [
    {"labelSelector": {"matchLabels": {"app": "db"}}},
    {"labelSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["db", "web"]}]}},
    {"labelSelector": {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["db"]}]}},
    {"labelSelector": {"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, "namespaces": ["other"]},
    {"labelSelector": {"matchLabels": {"app": "db", "tier": "back"}}},
    {"labelSelector": None},
    {"labelSelector": {}, "namespaceSelector": {}},
])
def test_pod_term_count_with_and_without_label_index(term):
    from scheduler.plugins.podmatch import PodTerm, label_index
    pods = [make_pod("a", labels={"app": "db", "tier": "back"}), make_pod("b", labels={"app": "web"}),
            make_pod("c", labels={"app": "db"}, namespace="other"), make_pod("d", labels={"tier": "front"}),
            make_pod("e")]
    t = PodTerm({**term, "topologyKey": "kubernetes.io/hostname"}, make_pod("owner"))
    want = sum(1 for p in pods if t.matches(p))
    assert t.count(pods) == want == t.count(pods, label_index(pods))
