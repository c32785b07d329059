"""PodTopologySpread: keep matching pods spread evenly across topology domains.

For a constraint (``topologyKey``, ``maxSkew``, ``labelSelector``, ``matchLabelKeys``) the pods
counted are those in the incoming pod's namespace, not terminating, matching the selector, on
nodes that carry the topology key (and, by ``nodeAffinityPolicy: Honor``, that the pod's node
affinity accepts; by ``nodeTaintsPolicy: Honor``, whose taints it tolerates).

- ``whenUnsatisfiable: DoNotSchedule`` (Filter): placing the pod on a node must keep
  ``count(domain) + self - min(count over domains) <= maxSkew``. With fewer domains than
  ``minDomains`` the minimum counts as 0. A node without the key is unresolvable.
- ``ScheduleAnyway`` (Score): fewer matching pods in the node's domain scores higher.

Pods without constraints get the default constraints (plugin args ``defaultConstraints`` with
``defaultingType: List``, or the System defaults: hostname skew 3 and zone skew 5, both
ScheduleAnyway), selecting the pods of the same owner: the selector is the handle's
``selectors_for(pod)`` when available, else the pod's own labels for pods with a controller.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from typing import Any

from api.selectors import EQUALS, LabelSelector, Requirement
from scheduler.framework import MAX_NODE_SCORE, CycleState, NodeInfo, Snapshot, Status
from scheduler.plugins.nodeaffinity import required_matcher
from scheduler.plugins.podmatch import is_terminating, labels_of, namespace_of, selector, signature
from scheduler.plugins.tainttoleration import NO_EXECUTE, NO_SCHEDULE, first_untolerated

ERR_CONSTRAINTS = "node(s) didn't match pod topology spread constraints"
ERR_MISSING_LABEL = "node(s) didn't match pod topology spread constraints (missing required label)"
DO_NOT_SCHEDULE = "DoNotSchedule"
SCHEDULE_ANYWAY = "ScheduleAnyway"
HOSTNAME = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"
SYSTEM_DEFAULT_CONSTRAINTS = [
    {"maxSkew": 3, "topologyKey": HOSTNAME, "whenUnsatisfiable": SCHEDULE_ANYWAY},
    {"maxSkew": 5, "topologyKey": ZONE, "whenUnsatisfiable": SCHEDULE_ANYWAY},
]
_STATE = "PodTopologySpread/pre-filter"
_SCORE_STATE = "PodTopologySpread/pre-score"


class Constraint:
    __slots__ = ("max_skew", "key", "when", "selector", "min_domains", "honor_affinity", "honor_taints",
                 "self_match", "sig")

    def __init__(self, spec: Mapping, pod: dict, sel: LabelSelector | None = None):
        self.max_skew = int(spec.get("maxSkew", 1))
        self.key = spec.get("topologyKey") or ""
        self.when = spec.get("whenUnsatisfiable") or DO_NOT_SCHEDULE
        self.selector = sel if sel is not None else selector(spec.get("labelSelector"), pod,
                                                             spec.get("matchLabelKeys"))
        self.min_domains = int(spec.get("minDomains") or 1)
        self.honor_affinity = (spec.get("nodeAffinityPolicy") or "Honor") == "Honor"
        self.honor_taints = (spec.get("nodeTaintsPolicy") or "Ignore") == "Honor"
        self.self_match = 1 if self.selector.matches(labels_of(pod)) else 0
        self.sig = signature(("spread", self.selector, namespace_of(pod)))


def _controller(pod: dict) -> bool:
    return any(r.get("controller") for r in (pod.get("metadata") or {}).get("ownerReferences") or ())


class _FilterState:
    __slots__ = ("constraints", "counts", "domains", "_mins")

    def __init__(self, constraints: list[Constraint]):
        self.constraints = constraints
        self.counts: Counter[tuple[str, str]] = Counter()     # (key, value) -> matching pods
        self.domains: dict[str, set[str]] = {c.key: set() for c in constraints}
        self._mins: dict[str, int] | None = None

    def clone(self) -> _FilterState:
        c = _FilterState(self.constraints)
        c.counts = Counter(self.counts)
        c.domains = {k: set(v) for k, v in self.domains.items()}
        return c

    def min_count(self, c: Constraint) -> int:
        if self._mins is None:
            self._mins = {}
        m = self._mins.get(c.key + "\0" + str(id(c)))
        if m is None:
            values = self.domains.get(c.key) or set()
            if len(values) < c.min_domains or not values:
                m = 0
            else:
                m = min(self.counts.get((c.key, v), 0) for v in values)
            self._mins[c.key + "\0" + str(id(c))] = m
        return m

    def changed(self) -> None:
        self._mins = None


class PodTopologySpread:
    name = "PodTopologySpread"

    def __init__(self, args: dict | None = None, handle: Any = None):
        args = args or {}
        self.validate_args(args)
        self.handle = handle
        self._counts: dict[tuple[int, int], int] = {}
        if (args.get("defaultingType") or "System") == "List":
            self.defaults = list(args.get("defaultConstraints") or ())
            self.system_defaulted = False
        else:
            self.defaults = SYSTEM_DEFAULT_CONSTRAINTS
            self.system_defaulted = True

    @staticmethod
    def validate_args(args: Mapping) -> None:
        from scheduler.profile import ConfigError
        t = args.get("defaultingType") or "System"
        if t not in ("System", "List"):
            raise ConfigError(f"defaultingType: unsupported value {t!r}; expected System or List")
        dc = args.get("defaultConstraints") or []
        if t == "System" and dc:
            raise ConfigError("defaultConstraints: must be empty when defaultingType is System")
        for i, c in enumerate(dc):
            if not isinstance(c, Mapping) or not c.get("topologyKey"):
                raise ConfigError(f"defaultConstraints[{i}].topologyKey: required")
            if c.get("labelSelector") is not None:
                raise ConfigError(f"defaultConstraints[{i}].labelSelector: must not be set")
            if not isinstance(c.get("maxSkew"), int) or c["maxSkew"] < 1:
                raise ConfigError(f"defaultConstraints[{i}].maxSkew: must be a positive integer")
            if c.get("whenUnsatisfiable") not in (DO_NOT_SCHEDULE, SCHEDULE_ANYWAY):
                raise ConfigError(f"defaultConstraints[{i}].whenUnsatisfiable: must be DoNotSchedule "
                                  "or ScheduleAnyway")

    def _default_selector(self, pod: dict) -> LabelSelector | None:
        f = getattr(self.handle, "selectors_for", None) if self.handle is not None else None
        if callable(f):
            sel = f(pod)
            if sel is not None:
                return sel
        labels = labels_of(pod)
        if not _controller(pod) or not labels:
            return None
        return LabelSelector(Requirement(k, EQUALS, (v,)) for k, v in labels.items())

    def constraints(self, pod: dict, when: str) -> list[Constraint]:
        specs = (pod.get("spec") or {}).get("topologySpreadConstraints") or []
        if specs:
            return [Constraint(s, pod) for s in specs if (s.get("whenUnsatisfiable") or DO_NOT_SCHEDULE) == when]
        defaults = [d for d in self.defaults if d.get("whenUnsatisfiable") == when]
        if not defaults:
            return []
        sel = self._default_selector(pod)
        if sel is None:
            return []
        return [Constraint(d, pod, sel) for d in defaults]

    def _eligibility(self, pod: dict, constraints: list[Constraint], require_all: bool = True) -> Any:
        """A test of whether a node's pods count toward the constraints' domains (the node has
        every topology key, unless ``require_all`` is False; by policy, the pod's node affinity
        accepts it and it tolerates the node's taints)."""
        keys = [c.key for c in constraints] if require_all else []
        matcher = required_matcher(pod) if any(c.honor_affinity for c in constraints) else None
        tolerations = ((pod.get("spec") or {}).get("tolerations") or []
                       if any(c.honor_taints for c in constraints) else None)

        def eligible(node: NodeInfo) -> bool:
            labels = node.labels  # type: ignore[attr-defined]
            for k in keys:
                if k not in labels:
                    return False
            if matcher is not None and not matcher(labels, node.name):
                return False
            if tolerations is not None and node.taints and first_untolerated(  # type: ignore[attr-defined]
                    node.taints, tolerations, (NO_SCHEDULE, NO_EXECUTE)):  # type: ignore[attr-defined]
                return False
            return True
        return eligible

    def _eligible(self, pod: dict, node: NodeInfo, constraints: list[Constraint]) -> bool:
        return self._eligibility(pod, constraints)(node)

    def _count(self, constraint: Constraint, node: NodeInfo, ns: str) -> int:
        """Matching pods on a node, remembered by NodeInfo generation (which changes with every
        pod added or removed) and constraint signature (selector and namespace)."""
        key = (node.generation, constraint.sig)  # type: ignore[attr-defined]
        n = self._counts.get(key)
        if n is None:
            n = 0
            sel = constraint.selector
            for p in node.pods:
                if namespace_of(p) == ns and not is_terminating(p) and sel.matches(labels_of(p)):
                    n += 1
            if len(self._counts) > 100_000:
                self._counts.clear()
            self._counts[key] = n
        return n

    # -- filter ------------------------------------------------------------------------------

    def pre_filter(self, state: CycleState, pod: dict, snapshot: Snapshot) -> tuple[set[str] | None, Status]:
        constraints = self.constraints(pod, DO_NOT_SCHEDULE)
        if not constraints:
            return None, Status.skip()
        s = _FilterState(constraints)
        eligible = self._eligibility(pod, constraints)
        ns = namespace_of(pod)
        for node in snapshot.nodes:
            if not eligible(node):
                continue
            labels = node.labels  # type: ignore[attr-defined]
            for c in constraints:
                v = labels[c.key]
                s.domains[c.key].add(v)
                if node.pods:
                    s.counts[(c.key, v)] += self._count(c, node, ns)
        state[_STATE] = s
        return None, Status()

    def _update(self, state: CycleState, pod: dict, other: dict, node: NodeInfo, delta: int) -> None:
        s: _FilterState | None = state.get(_STATE)
        if s is None or namespace_of(other) != namespace_of(pod) or is_terminating(other):
            return
        if not self._eligible(pod, node, s.constraints):
            return
        for c in s.constraints:
            if c.selector.matches(labels_of(other)):
                s.counts[(c.key, node.labels[c.key])] += delta  # type: ignore[attr-defined]
        s.changed()

    def pre_filter_add_pod(self, state: CycleState, pod: dict, pod_to_add: dict, node: NodeInfo) -> Status:
        self._update(state, pod, pod_to_add, node, 1)
        return Status()

    def pre_filter_remove_pod(self, state: CycleState, pod: dict, pod_to_remove: dict,
                              node: NodeInfo) -> Status:
        self._update(state, pod, pod_to_remove, node, -1)
        return Status()

    def filter(self, state: CycleState, pod: dict, node: NodeInfo) -> Status:
        s: _FilterState | None = state.get(_STATE)
        if s is None:
            return Status()
        labels = node.labels  # type: ignore[attr-defined]
        for c in s.constraints:
            v = labels.get(c.key)
            if v is None:
                return Status.unschedulable(ERR_MISSING_LABEL, plugin=self.name, unresolvable=True)
            skew = s.counts.get((c.key, v), 0) + c.self_match - s.min_count(c)
            if skew > c.max_skew:
                return Status.unschedulable(ERR_CONSTRAINTS, plugin=self.name)
        return Status()

    # -- score -------------------------------------------------------------------------------

    def pre_score(self, state: CycleState, pod: dict, nodes: list[NodeInfo]) -> Status:
        from scheduler.framework import SNAPSHOT_KEY
        constraints = self.constraints(pod, SCHEDULE_ANYWAY)
        if not constraints:
            return Status.skip()
        snapshot = state.get(SNAPSHOT_KEY)
        all_nodes = snapshot.nodes if snapshot is not None else nodes
        # Candidate nodes lacking a topology key are left out of scoring, except under the
        # System default constraints (there, missing keys just do not count).
        require_all = bool((pod.get("spec") or {}).get("topologySpreadConstraints")) or not self.system_defaulted
        # Domains among the candidate nodes weigh each constraint (more domains, more weight).
        keys = [c.key for c in constraints]
        ignored = set()
        domains: dict[str, set[str]] = {k: set() for k in keys}
        for n in nodes:
            labels = n.labels  # type: ignore[attr-defined]
            vals = [labels.get(k) for k in keys]
            if require_all and None in vals:
                ignored.add(n.name)
                continue
            for k, v in zip(keys, vals, strict=True):
                if v is not None:
                    domains[k].add(v)
        weights = [math.log(len(domains[c.key]) + 2) for c in constraints]
        counts: Counter[tuple[str, str]] = Counter()
        eligible = self._eligibility(pod, constraints, require_all)
        ns = namespace_of(pod)
        # Per-node keys (hostname) only matter for candidates; other domains span all nodes.
        if all(k == HOSTNAME for k in keys):
            all_nodes = nodes
        candidates = None
        for node in all_nodes:
            if not node.pods or not eligible(node):
                continue
            labels = node.labels  # type: ignore[attr-defined]
            for c in constraints:
                if c.key == HOSTNAME:
                    if candidates is None:
                        candidates = {n.name for n in nodes}
                    if node.name not in candidates:
                        continue
                v = labels.get(c.key)
                if v is None or (c.key != HOSTNAME and v not in domains[c.key]):
                    continue
                counts[(c.key, v)] += self._count(c, node, ns)
        state[_SCORE_STATE] = (constraints, weights, counts, ignored)
        return Status()

    def score(self, state: CycleState, pod: dict, node: NodeInfo) -> tuple[int, Status]:
        st = state.get(_SCORE_STATE)
        if st is None:
            return 0, Status()
        constraints, weights, counts, ignored = st
        if node.name in ignored:
            return 0, Status()
        return self.score_batch(state, pod, [node])[0], Status()

    def score_batch(self, state: CycleState, pod: dict, nodes: list[NodeInfo]) -> list[int]:
        st = state.get(_SCORE_STATE)
        if st is None:
            return [0] * len(nodes)
        constraints, weights, counts, ignored = st
        plan = [(c.key, w, c.max_skew - 1) for c, w in zip(constraints, weights, strict=True)]
        out = []
        for ni in nodes:
            if ni.name in ignored:
                out.append(0)
                continue
            labels = ni.labels  # type: ignore[attr-defined]
            total = 0.0
            for key, w, base in plan:
                v = labels.get(key)
                if v is not None:
                    total += counts.get((key, v), 0) * w + base
            out.append(round(total))
        return out

    def normalize_scores(self, state: CycleState, pod: dict, scores: dict[str, int]) -> Status:
        st = state.get(_SCORE_STATE)
        if st is None:
            return Status()
        ignored = st[3]
        considered = [v for k, v in scores.items() if k not in ignored]
        if not considered:
            for k in scores:
                scores[k] = 0
            return Status()
        lo, hi = min(considered), max(considered)
        for k, v in scores.items():
            if k in ignored:
                scores[k] = 0
            elif hi == 0:
                scores[k] = MAX_NODE_SCORE
            else:
                scores[k] = MAX_NODE_SCORE * (hi + lo - v) // hi
        return Status()
