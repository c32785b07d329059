"""The batch forms of filters and scores (``filter_batch``, ``score_batch``) decide exactly as
the one-node forms, including after nodes change (scores remembered per NodeInfo generation)."""

from __future__ import annotations

import pytest

from scheduler.framework import SNAPSHOT_KEY, Code, CycleState
from scheduler.nodeinfo import Snapshot
from scheduler.plugins.registry import REGISTRY
from tests.unit.scheduler import test_filters as tf
from tests.unit.scheduler.builders import make_node, make_pod, node_info, taint

FILTER_TABLES = [
    ("NodeResourcesFit", [(c[1], c[2]) for c in tf.FIT_CASES]),
    ("TaintToleration", [(make_pod(tolerations=c[1]), [node_info(taints=c[2])]) for c in tf.TAINT_CASES]),
    ("NodeAffinity", [(make_pod(**c[1]), [node_info(labels=c[2])]) for c in tf.AFFINITY_CASES]),
    ("InterPodAffinity", [(c[1], tf.zones()) for c in tf.POD_AFFINITY_CASES]),
    ("NodeUnschedulable", [(make_pod(), [node_info(name="a", unschedulable=True), node_info(name="b")])]),
]


def _pre_filter(plugin, state, pod, infos):
    state[SNAPSHOT_KEY] = Snapshot(infos)
    pre = getattr(plugin, "pre_filter", None)
    if pre is None:
        return True
    _, st = pre(state, pod, state[SNAPSHOT_KEY])
    return st.code != Code.SKIP


@pytest.mark.parametrize("name, cases", FILTER_TABLES, ids=[t[0] for t in FILTER_TABLES])
def test_filter_batch_agrees_with_filter(name, cases):
    plugin = REGISTRY[name]({}, None)
    assert hasattr(plugin, "filter_batch")
    for pod, infos in cases:
        state = CycleState()
        if not _pre_filter(plugin, state, pod, infos):
            continue
        one = [plugin.filter(state, pod, ni) for ni in infos]
        batch = plugin.filter_batch(state, pod, infos)
        assert [None if s.ok else (s.code, s.reasons) for s in one] == [
            None if s is None else (s.code, s.reasons) for s in batch]


@pytest.mark.parametrize("name, args", [
    ("NodeResourcesFit", {}),
    ("NodeResourcesFit", {"scoringStrategy": {"type": "MostAllocated"}}),
    ("NodeResourcesFit", {"scoringStrategy": {"resources": [{"name": "cpu", "weight": 3},
                                                            {"name": "memory", "weight": 1}]}}),
    ("NodeResourcesBalancedAllocation", {}),
    ("TaintToleration", {}),
])
def test_score_batch_agrees_with_score_and_sees_changes(name, args):
    plugin = REGISTRY[name](args, None)
    infos = [node_info(make_node("n1", cpu="4", memory="8Gi"), [make_pod("a", cpu="1", memory="1Gi")]),
             node_info(make_node("n2", cpu="8", memory="4Gi", taints=[taint("t", "", "PreferNoSchedule")])),
             node_info(make_node("n3", cpu="2", memory="2Gi"), [make_pod("b", cpu="1500m")])]
    pod = make_pod("p", cpu="500m", memory="512Mi")

    def both():
        state = CycleState()
        state[SNAPSHOT_KEY] = Snapshot(infos)
        pre = getattr(plugin, "pre_score", None)
        if pre is not None:
            pre(state, pod, infos)
        return [plugin.score(state, pod, ni)[0] for ni in infos], plugin.score_batch(state, pod, infos)

    one, batch = both()
    assert one == batch
    assert both()[1] == batch                      # remembered, same answer
    infos[1].add_pod(make_pod("c", cpu="1", memory="2Gi"))
    one2, batch2 = both()
    assert one2 == batch2
    if name != "TaintToleration":
        assert batch2[1] != batch[1]               # the change is seen


def test_remembered_fit_is_dropped_when_the_node_changes():
    plugin = REGISTRY["NodeResourcesFit"]({}, None)
    ni = node_info(make_node("n1", cpu="2"))
    pod = make_pod("p", cpu="1500m")

    def batch():
        state = CycleState()
        assert _pre_filter(plugin, state, pod, [ni])
        return plugin.filter_batch(state, pod, [ni])[0]

    assert batch() is None and batch() is None
    ni.add_pod(make_pod("other", cpu="1"))
    st = batch()
    assert st is not None and st.reasons == ["Insufficient cpu"]
    ni.remove_pod(make_pod("other", uid=ni.pods[0]["metadata"]["uid"]))
    assert batch() is None
