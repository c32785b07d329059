"""The scheduler cache: assumed pods count at once, confirmations count once, failures forget."""

from __future__ import annotations

from scheduler.cache import SchedulerCache
from tests.scheduler.builders import node
from tests.unit.scheduler.builders import make_pod


def bound(pod: dict, node_name: str) -> dict:
    return dict(pod, spec=dict(pod["spec"], nodeName=node_name))


def test_assumed_pod_counts_before_its_binding_is_seen():
    cache = SchedulerCache()
    cache.add_node(node("n1", cpu="4"))
    p = make_pod("p", cpu="1")
    cache.assume_pod(bound(p, "n1"), "n1")
    snap = cache.update_snapshot()
    assert snap.get("n1").requested["cpu"] == 1000
    # The informer then reports the binding: counted once, no longer assumed.
    cache.add_pod(bound(p, "n1"))
    snap = cache.update_snapshot()
    assert snap.get("n1").requested["cpu"] == 1000
    assert len(snap.get("n1").pods) == 1
    assert not cache.is_assumed(p)
    cache.remove_pod(bound(p, "n1"))
    assert cache.update_snapshot().get("n1").requested.get("cpu", 0) == 0


def test_forget_undoes_an_assumption_but_not_a_confirmed_binding():
    cache = SchedulerCache()
    cache.add_node(node("n1"))
    a, b = make_pod("a", cpu="1"), make_pod("b", cpu="2")
    cache.assume_pod(bound(a, "n1"), "n1")
    cache.assume_pod(bound(b, "n1"), "n1")
    cache.add_pod(bound(b, "n1"))
    cache.forget_pod(bound(a, "n1"))
    cache.forget_pod(bound(b, "n1"))
    assert cache.update_snapshot().get("n1").requested["cpu"] == 2000


def test_snapshot_nodeinfos_are_not_changed_by_later_cache_updates():
    cache = SchedulerCache()
    cache.add_node(node("n1"))
    cache.add_node(node("n2"))
    first = cache.update_snapshot()
    n1_before, n2_before = first.get("n1"), first.get("n2")
    cache.assume_pod(bound(make_pod("p", cpu="1"), "n1"), "n1")
    assert n1_before.requested.get("cpu", 0) == 0
    second = cache.update_snapshot()
    assert second.get("n1").requested["cpu"] == 1000
    assert second.get("n2") is n2_before            # unchanged nodes are not cloned again
    assert [n.name for n in second.nodes] == ["n1", "n2"]


def test_pods_may_arrive_before_their_node_and_nodes_leave():
    cache = SchedulerCache()
    p = make_pod("early", cpu="1")
    cache.add_pod(bound(p, "n9"))
    assert cache.update_snapshot().nodes == []       # no Node object yet: not schedulable
    cache.add_node(node("n9"))
    snap = cache.update_snapshot()
    assert [n.name for n in snap.nodes] == ["n9"]
    assert snap.get("n9").requested["cpu"] == 1000
    cache.remove_node(node("n9"))
    assert cache.update_snapshot().nodes == []
    cache.remove_pod(bound(p, "n9"))
    assert cache.node_info("n9") is None
    cache.add_node(node("n1", labels={"zone": "a"}))
    cache.update_snapshot()
    cache.update_node(node("n1", labels={"zone": "b"}))
    assert cache.update_snapshot().get("n1").labels["zone"] == "b"
