"""Taints and tolerations as the node controllers need them (Kubernetes' matching rules).

A toleration tolerates a taint when its effect is empty or the same, and either its key is empty
with operator ``Exists`` (tolerates everything), or the keys are equal and the operator is
``Exists`` or ``Equal`` (the default) with equal values.
"""

from __future__ import annotations

from typing import Any

NO_EXECUTE = "NoExecute"
NO_SCHEDULE = "NoSchedule"

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
MEMORY_PRESSURE = "node.kubernetes.io/memory-pressure"
DISK_PRESSURE = "node.kubernetes.io/disk-pressure"
PID_PRESSURE = "node.kubernetes.io/pid-pressure"
NETWORK_UNAVAILABLE = "node.kubernetes.io/network-unavailable"


def tolerates(toleration: dict[str, Any], taint: dict[str, Any]) -> bool:
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    operator = toleration.get("operator") or "Equal"
    if not key:
        return operator == "Exists"
    if key != taint.get("key"):
        return False
    if operator == "Exists":
        return True
    if operator == "Equal":
        return (toleration.get("value") or "") == (taint.get("value") or "")
    return False


def no_execute_taints(node: dict[str, Any] | None) -> list[dict[str, Any]]:
    if node is None:
        return []
    return [t for t in (node.get("spec") or {}).get("taints") or [] if t.get("effect") == NO_EXECUTE]


def tolerations_for(tolerations: list[dict[str, Any]], taints: list[dict[str, Any]]
                    ) -> tuple[bool, list[dict[str, Any]]]:
    """Whether every taint is tolerated, and the tolerations that tolerate at least one of them."""
    used: list[dict[str, Any]] = []
    for taint in taints:
        matching = [t for t in tolerations if tolerates(t, taint)]
        if not matching:
            return False, []
        for t in matching:
            if t not in used:
                used.append(t)
    return True, used


def min_toleration_seconds(tolerations: list[dict[str, Any]]) -> float | None:
    """The shortest tolerationSeconds among ``tolerations`` (negative counts as 0); None when they
    tolerate forever (none sets tolerationSeconds)."""
    best: float | None = None
    for t in tolerations:
        secs = t.get("tolerationSeconds")
        if secs is None:
            continue
        secs = max(0.0, float(secs))
        best = secs if best is None else min(best, secs)
    return best


def same_taint(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Taints are identified by key and effect."""
    return a.get("key") == b.get("key") and a.get("effect") == b.get("effect")


def has_taint(taints: list[dict[str, Any]], key: str, effect: str) -> bool:
    return any(t.get("key") == key and t.get("effect") == effect for t in taints)
