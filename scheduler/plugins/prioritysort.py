"""PrioritySort: the queue order. Higher ``spec.priority`` first, then the older pod."""

from __future__ import annotations

from scheduler.nodeinfo import pod_priority


class PrioritySort:
    name = "PrioritySort"

    def __init__(self, args: dict | None = None, handle: object = None):
        pass

    def less(self, a: dict, b: dict) -> bool:
        pa, pb = pod_priority(a), pod_priority(b)
        if pa != pb:
            return pa > pb
        ta = (a.get("metadata") or {}).get("creationTimestamp") or ""
        tb = (b.get("metadata") or {}).get("creationTimestamp") or ""
        return ta < tb

    def sort_key(self, pod: dict) -> tuple[int, str]:
        """``less`` as a key: ``less(a, b)`` exactly when ``sort_key(a) < sort_key(b)``."""
        return -pod_priority(pod), (pod.get("metadata") or {}).get("creationTimestamp") or ""
