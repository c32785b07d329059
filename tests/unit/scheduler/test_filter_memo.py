"""Remembered filter verdicts and list-based scoring: the same outcomes as computing everything
afresh, across node changes, pod shapes, a filter that cannot be remembered and nominated pods."""

from __future__ import annotations

import random

from scheduler.cache import SchedulerCache
from scheduler.framework import FILTER_BLOCK, CycleState, Framework, Status
from scheduler.plugins.registry import REGISTRY
from scheduler.profile import build_profile
from tests.unit.scheduler.builders import framework, make_node, make_pod, taint


def _cache_with(nodes: int, **kw) -> SchedulerCache:
    cache = SchedulerCache()
    for i in range(nodes):
        cache.add_node(make_node(f"n{i:03}", **kw))
    return cache


def _outcome(fw: Framework, pod: dict, cache: SchedulerCache, start: int = 0, pct: int | None = None):
    feasible, statuses, nxt = fw.find_feasible(CycleState(), pod, cache.update_snapshot(), start, pct)
    return ([n.name for n in feasible], {n: (s.plugin, s.code, tuple(s.reasons)) for n, s in statuses.items()},
            nxt)


def test_remembered_verdicts_follow_node_changes():
    cache = _cache_with(3 * FILTER_BLOCK + 5)
    fw = framework()
    pod = make_pod("p", cpu="1")
    names, statuses, _ = _outcome(fw, pod, cache, pct=100)
    assert len(names) == 3 * FILTER_BLOCK + 5 and not statuses
    # Fill one node in the second block: the same pod shape must now miss it.
    fillers = [make_pod(f"f{i}", cpu="1", node_name="n070") for i in range(4)]
    for f in fillers:
        cache.assume_pod(f, "n070")
    names, statuses, _ = _outcome(fw, pod, cache, pct=100)
    assert "n070" not in names
    assert statuses == {"n070": ("NodeResourcesFit", statuses["n070"][1], ("Insufficient cpu",))}
    # A different shape that still fits there.
    names, _, _ = _outcome(fw, make_pod("q", cpu="0"), cache, pct=100)
    assert "n070" in names
    cache.forget_pod(fillers[0])
    names, statuses, _ = _outcome(fw, pod, cache, pct=100)
    assert "n070" in names and not statuses
    # Taint a node: its NodeInfo is replaced, so the block is filtered again.
    cache.update_node(make_node("n130", taints=[taint("k", "v")]))
    names, statuses, _ = _outcome(fw, pod, cache, pct=100)
    assert "n130" not in names and statuses["n130"][0] == "TaintToleration"


def test_remembered_verdicts_match_fresh_filtering():
    """One framework that remembers verdicts across cycles against a new framework per cycle,
    over random node changes, pod shapes and start indexes."""
    rnd = random.Random(11)
    cache = _cache_with(150)
    remembering = framework()
    tolerate = [{"key": "k", "operator": "Exists"}]
    shapes = [dict(cpu="1"), dict(cpu="2", memory="1Gi"), dict(cpu="500m", tolerations=tolerate),
              dict(cpu="1", node_selector={"disk": "ssd"}), dict(cpu="100m", host_ports=[8080]),
              dict(cpu="3", tolerations=[{"key": "node.kubernetes.io/unschedulable", "operator": "Exists"}])]
    placed: list[dict] = []
    start = 0
    for step in range(120):
        r = rnd.random()
        name = f"n{rnd.randrange(150):03}"
        if r < 0.5:
            shape = rnd.choice(shapes[:3] + shapes[4:5])
            placed.append(make_pod(f"x{step}", node_name=name, **shape))
            cache.assume_pod(placed[-1], name)
        elif r < 0.6:
            cache.update_node(make_node(name, taints=[taint("k", "v")] if rnd.random() < 0.5 else None,
                                        labels={"disk": "ssd"} if rnd.random() < 0.5 else None,
                                        unschedulable=rnd.random() < 0.2))
        elif r < 0.7 and placed:
            cache.forget_pod(placed.pop(rnd.randrange(len(placed))))
        pod = make_pod(f"p{step}", **rnd.choice(shapes))
        pct = rnd.choice([None, 30, 100])
        want = _outcome(framework(), pod, cache, start, pct)
        got = _outcome(remembering, pod, cache, start, pct)
        assert got == want, step
        start = got[2]


class Odd:
    """A filter without a signature (its verdict is not remembered): rejects nodes whose
    number is odd while ``on`` is set."""

    name = "Odd"
    on = True

    def __init__(self, args=None, handle=None):
        pass

    def filter(self, state, pod, node):
        if Odd.on and int(node.name[1:]) % 2:
            return Status.unschedulable("odd node")
        return Status()


def test_a_filter_without_signature_runs_every_cycle_after_remembered_ones(monkeypatch):
    import scheduler.profile as profile_mod
    registry = dict(REGISTRY, Odd=Odd)
    monkeypatch.setattr(profile_mod, "_registry", lambda: registry)
    fw = Framework(build_profile({"plugins": {"filter": {"enabled": [{"name": "Odd"}]}}}), None, registry)
    assert [p.name for p in fw.filter_plugins][-1] == "Odd"
    cache = _cache_with(100)
    cache.update_node(make_node("n003", cpu="1"))
    pod = make_pod(cpu="2")
    Odd.on = True
    names, statuses, _ = _outcome(fw, pod, cache, pct=100)
    assert names == [f"n{i:03}" for i in range(0, 100, 2)]
    assert statuses["n001"][0] == "Odd" and statuses["n003"][0] == "NodeResourcesFit"
    Odd.on = False
    names, statuses, _ = _outcome(fw, pod, cache, pct=100)
    assert len(names) == 99 and list(statuses) == ["n003"]


class Handle:
    def __init__(self):
        self.by_node: dict[str, list[dict]] = {}

    def nominated_pods(self):
        return self.by_node


def test_nominated_pods_count_with_remembered_verdicts():
    handle = Handle()
    fw = framework(handle=handle)
    cache = _cache_with(70)
    pod = make_pod("p", cpu="2", priority=10)
    names, _, _ = _outcome(fw, pod, cache, pct=100)
    assert "n065" in names
    handle.by_node = {"n065": [make_pod("vip", cpu="3", priority=100, nominated="n065")]}
    names, statuses, _ = _outcome(fw, pod, cache, pct=100)
    assert "n065" not in names and statuses["n065"][2] == ("Insufficient cpu",)
    handle.by_node = {}
    names, _, _ = _outcome(fw, pod, cache, pct=100)
    assert "n065" in names


def test_score_totals_match_run_score_and_pick_best_matches_select_host():
    cache = SchedulerCache()
    cache.add_node(make_node("a", taints=[taint("t", "", "PreferNoSchedule")]))
    for name in ("b", "c", "d"):
        cache.add_node(make_node(name))
    cache.assume_pod(make_pod("busy", cpu="3", node_name="d"), "d")
    fw = framework()
    pod = make_pod(cpu="500m")
    state = CycleState()
    feasible, _, _ = fw.find_feasible(state, pod, cache.update_snapshot(), 0, 100)
    names, totals = fw.score_totals(state, pod, feasible)
    state2 = CycleState()
    fw.find_feasible(state2, pod, cache.update_snapshot(), 0, 100)
    scores = fw.run_score(state2, pod, feasible)
    assert dict(zip(names, totals, strict=True)) == scores
    assert scores["b"] == scores["c"] > scores["a"] and scores["b"] > scores["d"]
    for seed in range(5):
        assert (Framework.pick_best(names, totals, random.Random(seed))
                == Framework.select_host(scores, random.Random(seed)))
    assert {Framework.pick_best(names, totals, random.Random(s)) for s in range(30)} == {"b", "c"}
    assert Framework.pick_best([], []) is None


def test_scores_equal_on_every_node_still_count_with_their_weight():
    cache = _cache_with(3)
    fw = framework()
    pod = make_pod(cpu="1")
    state = CycleState()
    feasible, _, _ = fw.find_feasible(state, pod, cache.update_snapshot(), 0, 100)
    names, totals = fw.score_totals(state, pod, feasible)
    # Every node alike: TaintToleration gives 100 (weight 3), LeastAllocated (4-1)/4 cpu -> 75 and
    # memory (8192-200)/8192 -> 97, BalancedAllocation 1 - |0.25 - 0|/2 -> 87.
    assert totals == [300 + (75 + 97) // 2 + 87] * 3
