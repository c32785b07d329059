"""The pod garbage collector's pure rules: which pods go first, which nodes count as out of
service."""

from __future__ import annotations

import pytest

from controller_manager.controllers.podgc import (
    OUT_OF_SERVICE,
    collection_order,
    has_taint,
    is_evicted,
    is_node_ready,
    is_terminated,
)


def pod(name: str, created: str, phase: str = "Succeeded", reason: str | None = None) -> dict:
    status = {"phase": phase, **({"reason": reason} if reason else {})}
    return {"metadata": {"name": name, "creationTimestamp": created}, "status": status}


def test_collection_order_evicted_then_oldest_then_name():
    pods = [pod("b", "2026-01-01T00:00:02Z"), pod("a", "2026-01-01T00:00:02Z"),
            pod("z", "2026-01-01T00:00:09Z", "Failed", "Evicted"), pod("y", "2026-01-01T00:00:01Z", "Failed"),
            pod("x", "2026-01-01T00:00:05Z", "Failed", "Evicted"), pod("c", "2025-12-31T23:59:59Z")]
    assert [p["metadata"]["name"] for p in sorted(pods, key=collection_order)] == ["x", "z", "c", "y", "a", "b"]


@pytest.mark.parametrize("phase,reason,terminated,evicted", [
    ("Succeeded", None, True, False),
    ("Failed", None, True, False),
    ("Failed", "Evicted", True, True),
    ("Succeeded", "Evicted", True, False),
    ("Running", None, False, False),
    ("Pending", None, False, False),
    ("Unknown", None, False, False),
])
def test_terminated_and_evicted(phase, reason, terminated, evicted):
    p = pod("p", "2026-01-01T00:00:00Z", phase, reason)
    assert (is_terminated(p), is_evicted(p)) == (terminated, evicted)


@pytest.mark.parametrize("conditions,ready", [
    ([{"type": "Ready", "status": "True"}], True),
    ([{"type": "Ready", "status": "False"}], False),
    ([{"type": "Ready", "status": "Unknown"}], False),
    ([{"type": "MemoryPressure", "status": "True"}], False),
    ([], False),
])
def test_node_ready(conditions, ready):
    assert is_node_ready({"status": {"conditions": conditions}}) is ready


@pytest.mark.parametrize("taints,tainted", [
    ([{"key": OUT_OF_SERVICE, "effect": "NoExecute"}], True),
    ([{"key": OUT_OF_SERVICE, "value": "nodeshutdown", "effect": "NoSchedule"}], True),
    ([{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}], False),
    (None, False),
])
def test_out_of_service_taint(taints, tainted):
    assert has_taint({"spec": {"taints": taints}}, OUT_OF_SERVICE) is tainted
