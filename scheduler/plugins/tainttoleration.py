"""TaintToleration: a pod fits a node only if it tolerates the node's NoSchedule and NoExecute
taints; nodes with fewer untolerated PreferNoSchedule taints score higher."""

from __future__ import annotations

import operator
from collections.abc import Iterable

import orjson

from scheduler.framework import MAX_NODE_SCORE, CycleState, NodeInfo, Status

NO_SCHEDULE = "NoSchedule"
NO_EXECUTE = "NoExecute"
PREFER_NO_SCHEDULE = "PreferNoSchedule"
_STATE = "TaintToleration/prefer"
_TAINTS = operator.attrgetter("taints")


def tolerates(toleration: dict, taint: dict) -> bool:
    """Whether one toleration tolerates one taint (empty effect: any; empty key with Exists: all)."""
    effect = toleration.get("effect")
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key")
    if key and key != taint.get("key"):
        return False
    op = toleration.get("operator") or "Equal"
    if op == "Exists":
        return True
    if op == "Equal":
        return (toleration.get("value") or "") == (taint.get("value") or "")
    return False


def tolerated(taint: dict, tolerations: Iterable[dict]) -> bool:
    return any(tolerates(t, taint) for t in tolerations)


def first_untolerated(taints: Iterable[dict], tolerations: list[dict], effects: tuple[str, ...]) -> dict | None:
    """The first taint with one of ``effects`` that no toleration tolerates."""
    for taint in taints:
        if taint.get("effect") in effects and not tolerated(taint, tolerations):
            return taint
    return None


def _canonical(value: object) -> bytes:
    """A hashable, order-insensitive (for keys) form of a JSON value."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def untolerated_reason(taint: dict) -> str:
    return f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value') or ''}}}"


class TaintToleration:
    name = "TaintToleration"

    def __init__(self, args: dict | None = None, handle: object = None):
        pass

    def filter(self, state: CycleState, pod: dict, node: NodeInfo) -> Status:
        taints = node.taints  # type: ignore[attr-defined]
        if not taints:
            return Status()
        tolerations = (pod.get("spec") or {}).get("tolerations") or []
        taint = first_untolerated(taints, tolerations, (NO_SCHEDULE, NO_EXECUTE))
        if taint is None:
            return Status()
        return Status.unschedulable(untolerated_reason(taint), plugin=self.name, unresolvable=True)

    def filter_signature(self, state: CycleState, pod: dict) -> object:
        return _canonical((pod.get("spec") or {}).get("tolerations") or [])

    def filter_batch(self, state: CycleState, pod: dict, nodes: list[NodeInfo]) -> list[Status | None]:
        if not any(map(_TAINTS, nodes)):
            return [None] * len(nodes)
        out: list[Status | None] = []
        for ni in nodes:
            st = self.filter(state, pod, ni) if ni.taints else None  # type: ignore[attr-defined]
            out.append(None if st is None or st.ok else st)
        return out

    def score_batch(self, state: CycleState, pod: dict, nodes: list[NodeInfo]) -> list[int]:
        if not any(map(_TAINTS, nodes)):
            return [0] * len(nodes)
        return [0 if not ni.taints else self.score(state, pod, ni)[0] for ni in nodes]  # type: ignore[attr-defined]

    def pre_score(self, state: CycleState, pod: dict, nodes: list[NodeInfo]) -> Status:
        tolerations = (pod.get("spec") or {}).get("tolerations") or []
        state[_STATE] = [t for t in tolerations if not t.get("effect") or t.get("effect") == PREFER_NO_SCHEDULE]
        return Status()

    def score(self, state: CycleState, pod: dict, node: NodeInfo) -> tuple[int, Status]:
        taints = node.taints  # type: ignore[attr-defined]
        if not taints:
            return 0, Status()
        tolerations = state.get(_STATE)
        if tolerations is None:
            tolerations = (pod.get("spec") or {}).get("tolerations") or []
        n = sum(1 for t in taints if t.get("effect") == PREFER_NO_SCHEDULE and not tolerated(t, tolerations))
        return n, Status()

    def normalize_batch(self, state: CycleState, pod: dict, names: list[str], scores: list[int]) -> list[int]:
        """``normalize_scores`` over a list of scores."""
        most = max(scores, default=0)
        if most == 0:
            return [MAX_NODE_SCORE] * len(scores)
        return [MAX_NODE_SCORE - v * MAX_NODE_SCORE // most for v in scores]

    def normalize_scores(self, state: CycleState, pod: dict, scores: dict[str, int]) -> Status:
        # Fewer intolerable taints is better: the node with the most scores 0.
        most = max(scores.values(), default=0)
        for k, v in scores.items():
            scores[k] = MAX_NODE_SCORE if most == 0 else MAX_NODE_SCORE - v * MAX_NODE_SCORE // most
        return Status()
