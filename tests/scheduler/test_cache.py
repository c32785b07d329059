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


def _as_written(pod: dict, node_name: str, rv: str, **status: object) -> dict:
    """``pod`` as the API server returns it after its binding: new resourceVersion and
    managedFields, the PodScheduled condition."""
    meta = dict(pod["metadata"], resourceVersion=rv, managedFields=[{"manager": "kube-scheduler"}])
    st = dict(pod.get("status") or {}, conditions=[{"type": "PodScheduled", "status": "True"}], **status)
    return dict(pod, metadata=meta, spec=dict(pod["spec"], nodeName=node_name), status=st)


def test_a_confirmed_binding_keeps_the_nodes_generation_unless_the_pod_changed():
    cache = SchedulerCache()
    cache.add_node(node("n1", cpu="4"))
    p = make_pod("p", cpu="1")
    p["status"] = {"phase": "Pending"}
    cache.assume_pod(bound(p, "n1"), "n1")
    before = cache.update_snapshot().get("n1")
    confirmed = _as_written(p, "n1", "7")
    cache.add_pod(confirmed)
    after = cache.update_snapshot().get("n1")
    assert after is before, "nothing a plugin reads changed: no new NodeInfo, same generation"
    assert not cache.is_assumed(p)
    assert cache.node_info("n1").pods == [confirmed] and cache.node_info("n1").requested["cpu"] == 1000
    # A later copy that differs where plugins look is counted afresh.
    relabelled = _as_written(dict(p, metadata=dict(p["metadata"], labels={"x": "y"})), "n1", "8")
    cache.add_pod(relabelled)
    changed = cache.update_snapshot().get("n1")
    assert changed.generation != before.generation and changed.pods == [relabelled]
    assert changed.requested["cpu"] == 1000


def test_a_binding_confirmed_with_other_content_is_counted_afresh():
    for differs in ({"labels": {"x": "y"}}, {"deletionTimestamp": "2026-01-01T00:00:00Z"}):
        cache = SchedulerCache()
        cache.add_node(node("n1", cpu="4"))
        p = make_pod("p", cpu="1")
        cache.assume_pod(bound(p, "n1"), "n1")
        gen = cache.update_snapshot().get("n1").generation
        other = _as_written(dict(p, metadata=dict(p["metadata"], **differs)), "n1", "9")
        cache.add_pod(other)
        snap = cache.update_snapshot().get("n1")
        assert snap.generation != gen and snap.pods == [other], differs
    cache = SchedulerCache()
    cache.add_node(node("n1", cpu="4"))
    cache.assume_pod(bound(p, "n1"), "n1")
    gen = cache.update_snapshot().get("n1").generation
    cache.add_pod(_as_written(p, "n1", "9", phase="Running"))
    assert cache.update_snapshot().get("n1").generation != gen, "a status beyond the condition"
