"""NodeAffinity: ``spec.nodeSelector`` and ``affinity.nodeAffinity``.

Required: the node's labels must match every nodeSelector pair and at least one of the required
node selector terms (a term ANDs its matchExpressions, on labels, and matchFields, on
``metadata.name``). Operators: In, NotIn, Exists, DoesNotExist, Gt, Lt (integers). A term with
no requirement matches nothing. Preferred terms add their weight to the score of the nodes they
match. When every required term pins ``metadata.name``, PreFilter narrows the cycle to those
nodes. The plugin argument ``addedAffinity`` (a NodeAffinity) applies to every pod as well.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import orjson

from scheduler.framework import MAX_NODE_SCORE, CycleState, NodeInfo, Snapshot, Status

ERR_REASON = "node(s) didn't match Pod's node affinity/selector"
_STATE = "NodeAffinity/required"
_SCORE_STATE = "NodeAffinity/preferred"

Matcher = Callable[[dict, str], bool]    # (node labels, node name) -> matches


def _gt_lt(op: str, key: str, values: list) -> Matcher:
    try:
        bound = int(values[0]) if len(values) == 1 else None
    except (TypeError, ValueError):
        bound = None
    if bound is None:
        return lambda labels, name: False

    def m(labels: dict, name: str) -> bool:
        v = labels.get(key)
        if v is None:
            return False
        try:
            have = int(v)
        except ValueError:
            return False
        return have > bound if op == "Gt" else have < bound
    return m


def compile_requirement(req: Mapping, field: bool = False) -> Matcher:
    """One NodeSelectorRequirement as a matcher (``field``: a matchFields entry)."""
    key = req.get("key", "")
    op = req.get("operator", "")
    values = list(req.get("values") or ())
    if field:
        if key != "metadata.name" or op not in ("In", "NotIn") or len(values) != 1:
            return lambda labels, name: False
        want = values[0]
        if op == "In":
            return lambda labels, name: name == want
        return lambda labels, name: name != want
    vs = set(values)
    if op == "In":
        return lambda labels, name: key in labels and labels[key] in vs
    if op == "NotIn":
        return lambda labels, name: key not in labels or labels[key] not in vs
    if op == "Exists":
        return lambda labels, name: key in labels
    if op == "DoesNotExist":
        return lambda labels, name: key not in labels
    if op in ("Gt", "Lt"):
        return _gt_lt(op, key, values)
    return lambda labels, name: False


def compile_term(term: Mapping) -> Matcher:
    """A NodeSelectorTerm: all of its requirements; no requirement matches nothing."""
    parts = [compile_requirement(r) for r in term.get("matchExpressions") or ()]
    parts += [compile_requirement(r, field=True) for r in term.get("matchFields") or ()]
    if not parts:
        return lambda labels, name: False
    if len(parts) == 1:
        return parts[0]
    return lambda labels, name: all(p(labels, name) for p in parts)


def compile_selector(selector: Mapping | None) -> Matcher | None:
    """A NodeSelector (ORed terms); None when there is none."""
    if selector is None:
        return None
    terms = [compile_term(t) for t in selector.get("nodeSelectorTerms") or ()]
    return lambda labels, name: any(t(labels, name) for t in terms)


def required_matcher(pod: dict, added: Mapping | None = None) -> Matcher | None:
    """Everything a pod requires of a node's labels and name; None when it requires nothing."""
    spec = pod.get("spec") or {}
    parts: list[Matcher] = []
    selector = spec.get("nodeSelector") or {}
    if selector:
        items = list(selector.items())
        parts.append(lambda labels, name: all(labels.get(k) == v for k, v in items))
    node_aff = (spec.get("affinity") or {}).get("nodeAffinity") or {}
    for aff in (node_aff, added or {}):
        m = compile_selector(aff.get("requiredDuringSchedulingIgnoredDuringExecution"))
        if m is not None:
            parts.append(m)
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    return lambda labels, name: all(p(labels, name) for p in parts)


def pod_matches_node(pod: dict, node: NodeInfo) -> bool:
    """Whether the pod's nodeSelector and required node affinity accept the node."""
    m = required_matcher(pod)
    return m is None or m(node.labels, node.name)  # type: ignore[attr-defined]


def _pinned_names(pod: dict) -> set[str] | None:
    """Node names the required terms allow, when every term pins metadata.name with In."""
    req = (((pod.get("spec") or {}).get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution")
    if not req:
        return None
    names: set[str] = set()
    for term in req.get("nodeSelectorTerms") or ():
        pinned = None
        for f in term.get("matchFields") or ():
            if f.get("key") == "metadata.name" and f.get("operator") == "In":
                pinned = set(f.get("values") or ())
        if pinned is None:
            return None
        names |= pinned
    return names


class NodeAffinity:
    name = "NodeAffinity"

    def __init__(self, args: dict | None = None, handle: object = None):
        args = args or {}
        self.added = args.get("addedAffinity") or None
        self.added_preferred = [
            (int(t.get("weight", 0)), compile_term(t.get("preference") or {}))
            for t in (self.added or {}).get("preferredDuringSchedulingIgnoredDuringExecution") or ()]

    @staticmethod
    def validate_args(args: Mapping) -> None:
        added = args.get("addedAffinity")
        if added is not None and not isinstance(added, Mapping):
            from scheduler.profile import ConfigError
            raise ConfigError("addedAffinity: must be a NodeAffinity object")

    def pre_filter(self, state: CycleState, pod: dict, snapshot: Snapshot) -> tuple[set[str] | None, Status]:
        m = required_matcher(pod, self.added)
        if m is None:
            return None, Status.skip()
        state[_STATE] = m
        names = _pinned_names(pod)
        return names, Status()

    def filter(self, state: CycleState, pod: dict, node: NodeInfo) -> Status:
        m = state.get(_STATE)
        if m is None:
            m = required_matcher(pod, self.added)
            if m is None:
                return Status()
        if m(node.labels, node.name):  # type: ignore[attr-defined]
            return Status()
        return Status.unschedulable(ERR_REASON, plugin=self.name, unresolvable=True)

    def filter_signature(self, state: CycleState, pod: dict) -> object:
        spec = pod.get("spec") or {}
        required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
            "requiredDuringSchedulingIgnoredDuringExecution")
        return orjson.dumps([spec.get("nodeSelector"), required], option=orjson.OPT_SORT_KEYS)

    def filter_batch(self, state: CycleState, pod: dict, nodes: list[NodeInfo]) -> list[Status | None]:
        m = state.get(_STATE)
        if m is None:
            m = required_matcher(pod, self.added)
            if m is None:
                return [None] * len(nodes)
        out: list[Status | None] = []
        for ni in nodes:
            if m(ni.labels, ni.name):  # type: ignore[attr-defined]
                out.append(None)
            else:
                out.append(Status.unschedulable(ERR_REASON, plugin=self.name, unresolvable=True))
        return out

    def _preferred(self, pod: dict) -> list[tuple[int, Matcher]]:
        node_aff = (((pod.get("spec") or {}).get("affinity") or {}).get("nodeAffinity") or {})
        terms = [(int(t.get("weight", 0)), compile_term(t.get("preference") or {}))
                 for t in node_aff.get("preferredDuringSchedulingIgnoredDuringExecution") or ()]
        return terms + self.added_preferred

    def pre_score(self, state: CycleState, pod: dict, nodes: list[NodeInfo]) -> Status:
        terms = self._preferred(pod)
        if not terms:
            return Status.skip()
        state[_SCORE_STATE] = terms
        return Status()

    def score(self, state: CycleState, pod: dict, node: NodeInfo) -> tuple[int, Status]:
        terms = state.get(_SCORE_STATE)
        if terms is None:
            terms = self._preferred(pod)
        labels, name = node.labels, node.name  # type: ignore[attr-defined]
        return sum(w for w, m in terms if m(labels, name)), Status()

    def normalize_scores(self, state: CycleState, pod: dict, scores: dict[str, int]) -> Status:
        most = max(scores.values(), default=0)
        if most > 0:
            for k, v in scores.items():
                scores[k] = v * MAX_NODE_SCORE // most
        return Status()
