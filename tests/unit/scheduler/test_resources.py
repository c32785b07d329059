"""Pod requests counted as Kubernetes counts them, and NodeInfo's running totals."""

from __future__ import annotations

import pytest

from scheduler import resources
from scheduler.nodeinfo import NodeInfo, Snapshot
from tests.unit.scheduler.builders import container, make_node, make_pod

MI = 1024 * 1024


@pytest.mark.parametrize("pod, want", [
    (make_pod(), {}),
    (make_pod(cpu="500m", memory="1Gi"), {"cpu": 500, "memory": 1024 * MI}),
    (make_pod(cpu="1.5", ephemeral="2G", extra={"example.com/gpu": "2"}),
     {"cpu": 1500, "ephemeral-storage": 2 * 10**9, "example.com/gpu": 2}),
    # Containers add up.
    (make_pod(containers=[container("a", "100m", "100Mi"), container("b", "200m")]),
     {"cpu": 300, "memory": 100 * MI}),
    # An init container heavier than the app containers sets the request.
    (make_pod(containers=[container("a", "100m", "100Mi")], init_containers=[container("i", "2", "10Mi")]),
     {"cpu": 2000, "memory": 100 * MI}),
    # Init containers run one at a time: the largest, not the sum.
    (make_pod(containers=[container("a", "100m")],
              init_containers=[container("i1", "1"), container("i2", "1")]), {"cpu": 1000}),
    # A sidecar keeps running: it adds to the app containers and to later init containers.
    (make_pod(containers=[container("a", "100m")],
              init_containers=[container("s", "200m", restart_policy="Always"), container("i", "1")]),
     {"cpu": 1200}),
    (make_pod(containers=[container("a", "1")],
              init_containers=[container("i", "500m"), container("s", "200m", restart_policy="Always")]),
     {"cpu": 1200}),
    # Overhead is added on top.
    (make_pod(cpu="100m", overhead={"cpu": "50m", "memory": "10Mi"}), {"cpu": 150, "memory": 10 * MI}),
])
def test_pod_requests(pod, want):
    assert resources.pod_requests(pod) == want


def test_nonzero_requests_fill_in_defaults():
    assert resources.pod_nonzero_requests(make_pod()) == {
        "cpu": resources.DEFAULT_MILLI_CPU_REQUEST, "memory": resources.DEFAULT_MEMORY_REQUEST}
    assert resources.pod_nonzero_requests(make_pod(cpu="1")) == {
        "cpu": 1000, "memory": resources.DEFAULT_MEMORY_REQUEST}
    # An explicit zero is kept.
    assert resources.pod_nonzero_requests(make_pod(cpu="0", memory="0")) == {"cpu": 0, "memory": 0}


@pytest.mark.parametrize("resource, value, text", [
    ("cpu", 500, "500m"), ("cpu", 2000, "2"), ("memory", 1024 * MI, "1Gi"), ("memory", 1000, "1k"),
    ("example.com/gpu", 3, "3"),
])
def test_format_amount(resource, value, text):
    assert resources.format_amount(resource, value) == text


def test_host_ports_default_ip_and_protocol():
    pod = make_pod(host_ports=[80, (53, "UDP", "10.0.0.1")])
    assert resources.host_ports(pod) == [("0.0.0.0", "TCP", 80), ("10.0.0.1", "UDP", 53)]


def test_nodeinfo_totals_follow_adds_and_removes():
    ni = NodeInfo(make_node(cpu="4", memory="8Gi"))
    assert ni.allocatable == {"cpu": 4000, "memory": 8192 * MI, "pods": 110}
    a = make_pod("a", cpu="1", memory="1Gi", host_ports=[80])
    b = make_pod("b", cpu="500m")
    ni.add_pod(a)
    ni.add_pod(b)
    assert ni.requested == {"cpu": 1500, "memory": 1024 * MI}
    assert ni.non_zero_requested == {"cpu": 1500, "memory": 1024 * MI + resources.DEFAULT_MEMORY_REQUEST}
    assert ("0.0.0.0", "TCP", 80) in ni.used_ports
    assert len(ni.pods) == 2
    # A different copy of the same pod (same uid) removes what was added.
    assert ni.remove_pod({"metadata": dict(a["metadata"]), "spec": {"containers": []}})
    assert ni.requested == {"cpu": 500}
    assert ("0.0.0.0", "TCP", 80) not in ni.used_ports
    assert not ni.remove_pod(a)
    assert [p["metadata"]["name"] for p in ni.pods] == ["b"]


def test_nodeinfo_add_same_pod_twice_counts_once():
    ni = NodeInfo(make_node())
    p = make_pod(cpu="1")
    ni.add_pod(p)
    ni.add_pod(p)
    assert ni.requested == {"cpu": 1000}
    assert len(ni.pods) == 1


def test_nodeinfo_clone_is_independent():
    ni = NodeInfo(make_node(), [make_pod("a", cpu="1")])
    gen = ni.generation
    c = ni.clone()
    c.add_pod(make_pod("b", cpu="2"))
    assert ni.requested == {"cpu": 1000} and len(ni.pods) == 1
    assert c.requested == {"cpu": 3000} and len(c.pods) == 2
    assert ni.generation == gen and c.generation != gen


def test_nodeinfo_tracks_affinity_pods():
    anti = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "x"}}}]}}
    p = make_pod("a", affinity=anti)
    ni = NodeInfo(make_node(), [p, make_pod("b")])
    assert ni.pods_with_affinity == [p] and ni.pods_with_required_anti_affinity == [p]
    snap = Snapshot([ni, NodeInfo(make_node("n2"))])
    assert snap.have_pods_with_required_anti_affinity == [ni]
    ni.remove_pod(p)
    assert ni.pods_with_affinity == [] and ni.pods_with_required_anti_affinity == []


def test_node_update_keeps_pods():
    ni = NodeInfo(make_node(cpu="2"), [make_pod(cpu="1")])
    ni.set_node(make_node(cpu="8", taints=[{"key": "k", "effect": "NoSchedule"}]))
    assert ni.allocatable["cpu"] == 8000 and ni.requested == {"cpu": 1000}
    assert ni.taints == [{"key": "k", "effect": "NoSchedule"}]


def test_snapshot_set_and_remove_keep_affinity_lists():
    anti = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "x"}}}]}}
    a, b = NodeInfo(make_node("a")), NodeInfo(make_node("b"))
    snap = Snapshot([a, b])
    assert snap.have_pods_with_affinity == [] and snap.have_pods_with_required_anti_affinity == []
    b2 = b.clone()
    b2.add_pod(make_pod("p", affinity=anti))
    snap.set(b2)
    assert snap.get("b") is b2 and snap.nodes == [a, b2]
    assert snap.have_pods_with_affinity == [b2] and snap.have_pods_with_required_anti_affinity == [b2]
    c = NodeInfo(make_node("c"), [make_pod("q", affinity=anti)])
    snap.set(c)
    assert [n.name for n in snap.nodes] == ["a", "b", "c"]
    assert snap.have_pods_with_required_anti_affinity == [b2, c]
    snap.remove("b")
    assert [n.name for n in snap.nodes] == ["a", "c"] and snap.get("b") is None
    assert snap.have_pods_with_affinity == [c]
    # Replacing a NodeInfo by hand, then invalidating, rescans.
    snap.nodes[0] = NodeInfo(make_node("a"), [make_pod("r", affinity=anti)])
    snap._by_name["a"] = snap.nodes[0]
    snap.invalidate()
    assert [n.name for n in snap.have_pods_with_affinity] == ["a", "c"]


def test_requests_remembered_by_uid_and_resource_version():
    pod = make_pod(cpu="500m")
    pod["metadata"].update(uid="u-remember", resourceVersion="7")
    first = resources.requests_of(pod)
    assert first == ({"cpu": 500}, {"cpu": 500, "memory": resources.DEFAULT_MEMORY_REQUEST})
    # The same uid and resourceVersion: the same (remembered) answer, even for a copy.
    assert resources.requests_of(dict(pod, spec=dict(pod["spec"], nodeName="n1"))) is first
    # A new resourceVersion (the pod was resized): worked out again.
    resized = make_pod(cpu="2")
    resized["metadata"].update(uid="u-remember", resourceVersion="8")
    assert resources.requests_of(resized)[0] == {"cpu": 2000}
    # Without a resourceVersion nothing is remembered.
    bare = make_pod(cpu="1")
    bare["metadata"].pop("resourceVersion", None)
    assert resources.requests_of(bare)[0] == {"cpu": 1000}
    bare["spec"]["containers"][0]["resources"]["requests"]["cpu"] = "3"
    assert resources.requests_of(bare)[0] == {"cpu": 3000}
