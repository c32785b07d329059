"""InterPodAffinity: place a pod relative to the pods already running, by topology domain.

Filter, for the required terms (``requiredDuringSchedulingIgnoredDuringExecution``):
- pod affinity: each term needs a matching pod in the node's domain (``topologyKey`` value);
  a pod whose terms match no pod anywhere may still go where it matches itself (the first pod
  of a group);
- pod anti-affinity: no matching pod in the node's domain for any term;
- existing pods' anti-affinity: no pod already in the node's domain has an anti-affinity term
  that the incoming pod matches.
Score: preferred terms of the incoming pod (+weight for affinity, -weight for anti-affinity)
and of the existing pods towards it, plus ``hardPodAffinityWeight`` for existing pods' required
affinity terms the incoming pod matches; summed per domain and rescaled to [0, 100].
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from scheduler.framework import MAX_NODE_SCORE, CycleState, NodeInfo, Snapshot, Status
from scheduler.plugins.podmatch import PodTerm, label_index, labels_of, namespace_labels_from, namespace_of

ERR_AFFINITY = "node(s) didn't match pod affinity rules"
ERR_ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules"
ERR_EXISTING_ANTI_AFFINITY = "node(s) didn't satisfy existing pods anti-affinity rules"
_STATE = "InterPodAffinity/pre-filter"
_SCORE_STATE = "InterPodAffinity/pre-score"
REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"
PREFERRED = "preferredDuringSchedulingIgnoredDuringExecution"


def _affinity(pod: dict) -> dict:
    return (pod.get("spec") or {}).get("affinity") or {}


def required_terms(pod: dict, kind: str, ns_labels: Any = None) -> list[PodTerm]:
    """``kind`` is podAffinity or podAntiAffinity."""
    return [PodTerm(t, pod, namespace_labels=ns_labels)
            for t in (_affinity(pod).get(kind) or {}).get(REQUIRED) or ()]


def preferred_terms(pod: dict, kind: str, ns_labels: Any = None) -> list[PodTerm]:
    return [PodTerm(t.get("podAffinityTerm") or {}, pod, int(t.get("weight", 0)), ns_labels)
            for t in (_affinity(pod).get(kind) or {}).get(PREFERRED) or ()]


class _PodTerms:
    __slots__ = ("required_affinity", "required_anti", "preferred_affinity", "preferred_anti")

    def __init__(self, pod: dict, ns_labels: Any = None):
        self.required_affinity = required_terms(pod, "podAffinity", ns_labels)
        self.required_anti = required_terms(pod, "podAntiAffinity", ns_labels)
        self.preferred_affinity = preferred_terms(pod, "podAffinity", ns_labels)
        self.preferred_anti = preferred_terms(pod, "podAntiAffinity", ns_labels)


class _NodeTerms:
    """What one node's pods contribute, computed once per NodeInfo generation: their required
    anti-affinity terms and their scoring terms, each with the node's value of the term's
    topology key, and a label index of the node's pods."""

    __slots__ = ("anti", "scoring", "pods", "_index")

    def __init__(self, plugin: InterPodAffinity, node: NodeInfo):
        labels = node.labels  # type: ignore[attr-defined]
        self.anti: list[tuple[PodTerm, str, str]] = []
        self.scoring: list[tuple[PodTerm, str, str, int]] = []
        for other in node.pods_with_affinity:  # type: ignore[attr-defined]
            terms = plugin._terms(other)
            for t in terms.required_anti:
                v = labels.get(t.topology_key)
                if v is not None:
                    self.anti.append((t, t.topology_key, v))
            weighted = [(t, t.weight) for t in terms.preferred_affinity]
            weighted += [(t, -t.weight) for t in terms.preferred_anti]
            if plugin.hard_weight:
                weighted += [(t, plugin.hard_weight) for t in terms.required_affinity]
            for t, w in weighted:
                v = labels.get(t.topology_key)
                if v is not None and w:
                    self.scoring.append((t, t.topology_key, v, w))
        # A copy: the index is built later, and the NodeInfo's own list may grow by then.
        self.pods = list(node.pods)
        self._index: dict[tuple[str, str], list[dict]] | None = None

    def index(self) -> dict[tuple[str, str], list[dict]]:
        if self._index is None:
            self._index = label_index(self.pods)
        return self._index


class _PreFilterState:
    __slots__ = ("affinity", "anti", "affinity_counts", "anti_counts", "existing_anti_counts",
                 "pod_labels", "pod_ns")

    def __init__(self) -> None:
        self.affinity: list[PodTerm] = []
        self.anti: list[PodTerm] = []
        self.affinity_counts: Counter[tuple[str, str]] = Counter()
        self.anti_counts: Counter[tuple[str, str]] = Counter()
        self.existing_anti_counts: Counter[tuple[str, str]] = Counter()
        self.pod_labels: dict = {}
        self.pod_ns = ""

    def clone(self) -> _PreFilterState:
        c = _PreFilterState()
        c.affinity, c.anti = self.affinity, self.anti
        c.affinity_counts = Counter(self.affinity_counts)
        c.anti_counts = Counter(self.anti_counts)
        c.existing_anti_counts = Counter(self.existing_anti_counts)
        c.pod_labels, c.pod_ns = self.pod_labels, self.pod_ns
        return c


class InterPodAffinity:
    name = "InterPodAffinity"

    def __init__(self, args: dict | None = None, handle: Any = None):
        args = args or {}
        self.validate_args(args)
        self.hard_weight = int(args.get("hardPodAffinityWeight", 1))
        self.handle = handle
        self._cache: dict[tuple, _PodTerms] = {}
        self._matches: dict[tuple, bool] = {}
        self._summaries: dict[int, _NodeTerms] = {}     # NodeInfo generation -> its terms

    @staticmethod
    def validate_args(args: Mapping) -> None:
        w = args.get("hardPodAffinityWeight", 1)
        if not isinstance(w, int) or isinstance(w, bool) or not 0 <= w <= 100:
            from scheduler.profile import ConfigError
            raise ConfigError("hardPodAffinityWeight: must be an integer between 0 and 100")

    def _ns_labels(self) -> Any:
        return namespace_labels_from(self.handle)

    def _terms(self, pod: dict) -> _PodTerms:
        """An existing pod's compiled terms, cached by uid and resourceVersion (compiled once,
        not once per cycle)."""
        meta = pod.get("metadata") or {}
        uid = meta.get("uid")
        if not uid:
            return _PodTerms(pod, self._ns_labels())
        key = (uid, meta.get("resourceVersion"))
        terms = self._cache.get(key)
        if terms is None:
            if len(self._cache) > 50_000:
                self._cache.clear()
            terms = self._cache[key] = _PodTerms(pod, self._ns_labels())
        return terms

    def _summary(self, node: NodeInfo) -> _NodeTerms:
        gen = node.generation  # type: ignore[attr-defined]
        summary = self._summaries.get(gen)
        if summary is None:
            if len(self._summaries) > 20_000:
                self._summaries.clear()
            summary = self._summaries[gen] = _NodeTerms(self, node)
        return summary

    def _match(self, t: PodTerm, pod: dict) -> bool:
        """``t.matches(pod)``, remembered by term signature and pod uid and resourceVersion
        (labels and namespace cannot change without a new resourceVersion)."""
        meta = pod.get("metadata") or {}
        uid = meta.get("uid")
        if not uid or t.namespace_selector is not None:
            return t.matches(pod)
        key = (t.sig, uid, meta.get("resourceVersion"))
        m = self._matches.get(key)
        if m is None:
            if len(self._matches) > 100_000:
                self._matches.clear()
            m = self._matches[key] = t.matches(pod)
        return m

    def _update(self, s: _PreFilterState, pod: dict, other: dict, node: NodeInfo, delta: int) -> None:
        """Count (delta=1) or uncount ``other`` on ``node`` in the cycle state of ``pod``."""
        labels = node.labels  # type: ignore[attr-defined]
        if _affinity(other).get("podAntiAffinity"):
            for t in self._terms(other).required_anti:
                if t.topology_key in labels and t.matches(pod):
                    s.existing_anti_counts[(t.topology_key, labels[t.topology_key])] += delta
        for terms, counts in ((s.affinity, s.affinity_counts), (s.anti, s.anti_counts)):
            for t in terms:
                if t.topology_key in labels and t.matches(other):
                    counts[(t.topology_key, labels[t.topology_key])] += delta

    def pre_filter(self, state: CycleState, pod: dict, snapshot: Snapshot) -> tuple[set[str] | None, Status]:
        ns_labels = self._ns_labels()
        s = _PreFilterState()
        s.affinity = required_terms(pod, "podAffinity", ns_labels)
        s.anti = required_terms(pod, "podAntiAffinity", ns_labels)
        s.pod_labels, s.pod_ns = labels_of(pod), namespace_of(pod)
        with_anti = getattr(snapshot, "have_pods_with_required_anti_affinity", None)
        if with_anti is None:
            with_anti = [n for n in snapshot.nodes if getattr(n, "pods_with_required_anti_affinity", None)]
        if not s.affinity and not s.anti and not with_anti:
            return None, Status.skip()
        incoming: dict[int, bool] = {}    # term signature -> does the incoming pod match
        existing = s.existing_anti_counts
        for node in with_anti:
            for t, key, v in self._summary(node).anti:
                hit = incoming.get(t.sig)
                if hit is None:
                    hit = incoming[t.sig] = t.matches(pod)
                if hit:
                    existing[(key, v)] += 1
        if s.affinity or s.anti:
            own = [(t, s.affinity_counts) for t in s.affinity] + [(t, s.anti_counts) for t in s.anti]
            for node in snapshot.nodes:
                if not node.pods:
                    continue
                labels = node.labels  # type: ignore[attr-defined]
                summary = self._summary(node)
                index = summary.index()
                for t, counts in own:
                    v = labels.get(t.topology_key)
                    if v is None:
                        continue
                    n = t.count(summary.pods, index)
                    if n:
                        counts[(t.topology_key, v)] += n
        state[_STATE] = s
        return None, Status()

    def pre_filter_add_pod(self, state: CycleState, pod: dict, pod_to_add: dict, node: NodeInfo) -> Status:
        s = state.get(_STATE)
        if s is not None:
            self._update(s, pod, pod_to_add, node, 1)
        return Status()

    def pre_filter_remove_pod(self, state: CycleState, pod: dict, pod_to_remove: dict,
                              node: NodeInfo) -> Status:
        s = state.get(_STATE)
        if s is not None:
            self._update(s, pod, pod_to_remove, node, -1)
        return Status()

    def filter(self, state: CycleState, pod: dict, node: NodeInfo) -> Status:
        s: _PreFilterState | None = state.get(_STATE)
        if s is None:
            return Status()
        labels = node.labels  # type: ignore[attr-defined]
        if s.affinity and not self._affinity_ok(s, pod, labels):
            return Status.unschedulable(ERR_AFFINITY, plugin=self.name, unresolvable=True)
        for t in s.anti:
            v = labels.get(t.topology_key)
            if v is not None and s.anti_counts.get((t.topology_key, v), 0) > 0:
                return Status.unschedulable(ERR_ANTI_AFFINITY, plugin=self.name)
        if s.existing_anti_counts:
            for k, v in labels.items():
                if s.existing_anti_counts.get((k, v), 0) > 0:
                    return Status.unschedulable(ERR_EXISTING_ANTI_AFFINITY, plugin=self.name)
        return Status()

    def filter_batch(self, state: CycleState, pod: dict, nodes: list[NodeInfo]) -> list[Status | None]:
        s: _PreFilterState | None = state.get(_STATE)
        if s is None:
            return [None] * len(nodes)
        if s.affinity:
            return [None if st.ok else st for st in (self.filter(state, pod, ni) for ni in nodes)]
        anti = [(t.topology_key, t) for t in s.anti]
        anti_counts = s.anti_counts
        existing = s.existing_anti_counts
        out: list[Status | None] = []
        for ni in nodes:
            labels = ni.labels  # type: ignore[attr-defined]
            st = None
            for key, _t in anti:
                v = labels.get(key)
                if v is not None and anti_counts.get((key, v), 0) > 0:
                    st = Status.unschedulable(ERR_ANTI_AFFINITY, plugin=self.name)
                    break
            if st is None and existing:
                for kv in labels.items():
                    if existing.get(kv, 0) > 0:
                        st = Status.unschedulable(ERR_EXISTING_ANTI_AFFINITY, plugin=self.name)
                        break
            out.append(st)
        return out

    @staticmethod
    def _affinity_ok(s: _PreFilterState, pod: dict, labels: dict) -> bool:
        all_found = True
        for t in s.affinity:
            v = labels.get(t.topology_key)
            if v is None:
                return False      # the node is outside every domain of this term
            if s.affinity_counts.get((t.topology_key, v), 0) <= 0:
                all_found = False
        if all_found:
            return True
        # No pod anywhere matches the terms: the pod may start the group if it matches them.
        if any(c > 0 for c in s.affinity_counts.values()):
            return False
        return all(t.matches(pod) for t in s.affinity)

    # -- score -------------------------------------------------------------------------------

    def pre_score(self, state: CycleState, pod: dict, nodes: list[NodeInfo]) -> Status:
        from scheduler.framework import SNAPSHOT_KEY
        snapshot = state.get(SNAPSHOT_KEY)
        ns_labels = self._ns_labels()
        pref_aff = preferred_terms(pod, "podAffinity", ns_labels)
        pref_anti = preferred_terms(pod, "podAntiAffinity", ns_labels)
        all_nodes = snapshot.nodes if snapshot is not None else nodes
        scores: dict[str, Counter[str]] = {}
        own = [(t, t.weight) for t in pref_aff] + [(t, -t.weight) for t in pref_anti]
        if own:
            for node in all_nodes:
                if not node.pods:
                    continue
                labels = node.labels  # type: ignore[attr-defined]
                summary = self._summary(node)
                index = summary.index()
                for t, w in own:
                    v = labels.get(t.topology_key)
                    if v is None or not w:
                        continue
                    n = t.count(summary.pods, index)
                    if n:
                        scores.setdefault(t.topology_key, Counter())[v] += w * n
        with_aff = getattr(snapshot, "have_pods_with_affinity", None)
        if with_aff is None:
            with_aff = [n for n in all_nodes if n.pods_with_affinity]  # type: ignore[attr-defined]
        incoming: dict[int, bool] = {}
        for node in with_aff:
            for t, key, v, w in self._summary(node).scoring:
                hit = incoming.get(t.sig)
                if hit is None:
                    hit = incoming[t.sig] = t.matches(pod)
                if hit:
                    scores.setdefault(key, Counter())[v] += w
        if not scores:
            return Status.skip()
        state[_SCORE_STATE] = scores
        return Status()

    def score(self, state: CycleState, pod: dict, node: NodeInfo) -> tuple[int, Status]:
        scores = state.get(_SCORE_STATE)
        if not scores:
            return 0, Status()
        labels = node.labels  # type: ignore[attr-defined]
        total = 0
        for key, by_value in scores.items():
            v = labels.get(key)
            if v is not None:
                total += by_value.get(v, 0)
        return total, Status()

    def normalize_scores(self, state: CycleState, pod: dict, scores: dict[str, int]) -> Status:
        if not scores:
            return Status()
        lo, hi = min(scores.values()), max(scores.values())
        diff = hi - lo
        for k, v in scores.items():
            scores[k] = (v - lo) * MAX_NODE_SCORE // diff if diff > 0 else 0
        return Status()
