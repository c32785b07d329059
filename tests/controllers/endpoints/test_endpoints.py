"""The Endpoints controller against a real API server: ready and not-ready addresses following pod
readiness and deletion, ports resolved per pod, publishNotReadyAddresses, services without a
selector, and (pure) truncation over capacity."""

from __future__ import annotations

import pytest

from api import errors
from controller_manager.controllers.endpoints import (
    MAX_CAPACITY,
    OVER_CAPACITY_ANNOTATION,
    EndpointsController,
    build_subsets,
    truncate,
)
from controller_manager.endpointsutil import TRIGGER_TIME_ANNOTATION
from tests.controllers.batch.helpers import Controllers
from tests.controllers.endpoints.helpers import ensure_node, eventually, pod, run_pod, service, set_status


@pytest.fixture
async def ctrl(client):
    await ensure_node(client, "node-a")
    c = await Controllers(client, [EndpointsController]).start()
    yield c["endpoint"]
    await c.stop()


def ips(subset: dict, field: str = "addresses") -> list[str]:
    return [a["ip"] for a in subset.get(field) or []]


async def endpoints_when(client, name: str, predicate, what: str) -> dict:
    async def check():
        try:
            ep = await client.get("endpoints", name)
        except errors.NotFound:
            return None
        return ep if predicate(ep.get("subsets") or []) else None
    return await eventually(check, what=what)


async def test_tracks_readiness_and_deletion(client, ctrl):
    await client.create("services", service("web", {"app": "web"}))
    a = await run_pod(client, pod("a", {"app": "web"}), ip="10.1.0.1", ready=True)
    await run_pod(client, pod("b", {"app": "web"}), ip="10.1.0.2", ready=False)
    await client.create("pods", pod("pending", {"app": "web"}))           # no IP yet: left out
    await run_pod(client, pod("other", {"app": "db"}), ip="10.1.0.9")       # not selected

    ep = await endpoints_when(client, "web", lambda s: len(s) == 1 and ips(s[0]) == ["10.1.0.1"]
                              and ips(s[0], "notReadyAddresses") == ["10.1.0.2"], "a ready, b not ready")
    subset = ep["subsets"][0]
    assert subset["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    addr = subset["addresses"][0]
    assert addr["nodeName"] == "node-a"
    assert addr["targetRef"] == {"kind": "Pod", "namespace": client.namespace, "name": "a",
                                 "uid": a["metadata"]["uid"]}
    assert TRIGGER_TIME_ANNOTATION in ep["metadata"]["annotations"]
    assert OVER_CAPACITY_ANNOTATION not in ep["metadata"]["annotations"]

    await set_status(client, "b", ip="10.1.0.2", ready=True)
    await endpoints_when(client, "web", lambda s: len(s) == 1 and ips(s[0]) == ["10.1.0.1", "10.1.0.2"]
                         and not s[0].get("notReadyAddresses"), "b ready")

    await set_status(client, "a", ip="10.1.0.1", ready=False)
    await endpoints_when(client, "web", lambda s: ips(s[0]) == ["10.1.0.2"]
                         and ips(s[0], "notReadyAddresses") == ["10.1.0.1"], "a not ready")

    # A bound pod being deleted (graceful) is left out at once, before it is gone.
    await client.delete("pods", "b")
    assert (await client.get("pods", "b"))["metadata"].get("deletionTimestamp")
    await endpoints_when(client, "web", lambda s: len(s) == 1 and not s[0].get("addresses")
                         and ips(s[0], "notReadyAddresses") == ["10.1.0.1"], "b left out while terminating")

    await client.delete("pods", "a", grace_period_seconds=0)
    await client.delete("pods", "b", grace_period_seconds=0)
    await endpoints_when(client, "web", lambda s: s == [], "no subsets once the pods are gone")

    # Deleting the service deletes its Endpoints.
    await client.delete("services", "web")

    async def gone():
        try:
            await client.get("endpoints", "web")
        except errors.NotFound:
            return True
        return False

    await eventually(gone, what="the Endpoints deleted with the service")


async def test_named_target_port_resolved_per_pod(client, ctrl):
    ports = [{"name": "web", "port": 80, "targetPort": "http"}, {"name": "metrics", "port": 9100, "targetPort": 9100}]
    await client.create("services", service("named", {"app": "named"}, ports))
    await run_pod(client, pod("p1", {"app": "named"}, [{"name": "http", "containerPort": 8080}]), ip="10.2.0.1")
    await run_pod(client, pod("p2", {"app": "named"}, [{"name": "http", "containerPort": 9090}]), ip="10.2.0.2")
    await run_pod(client, pod("p3", {"app": "named"}, [{"name": "other", "containerPort": 7070}]), ip="10.2.0.3")

    def settled(subsets):
        return len(subsets) == 3

    ep = await endpoints_when(client, "named", settled, "three port groups")
    by_ip = {tuple(ips(s)): sorted((p.get("name"), p["port"]) for p in s["ports"]) for s in ep["subsets"]}
    assert by_ip == {("10.2.0.1",): [("metrics", 9100), ("web", 8080)],
                     ("10.2.0.2",): [("metrics", 9100), ("web", 9090)],
                     ("10.2.0.3",): [("metrics", 9100)]}


async def test_publish_not_ready_addresses(client, ctrl):
    await client.create("services", service("all", {"app": "all"}, publishNotReadyAddresses=True,
                                            clusterIP="None"))
    await run_pod(client, pod("n1", {"app": "all"}), ip="10.3.0.1", ready=False)
    await run_pod(client, pod("n2", {"app": "all"}), ip="10.3.0.2", ready=True)
    ep = await endpoints_when(client, "all", lambda s: len(s) == 1 and ips(s[0]) == ["10.3.0.1", "10.3.0.2"],
                              "both published as ready")
    assert not ep["subsets"][0].get("notReadyAddresses")
    assert ep["metadata"]["labels"]["service.kubernetes.io/headless"] == ""
    # Terminating pods stay published too.
    await client.delete("pods", "n1")
    assert (await client.get("pods", "n1"))["metadata"].get("deletionTimestamp")
    await client.patch("services", "all", {"metadata": {"labels": {"touch": "1"}}})
    await endpoints_when(client, "all", lambda s: True, "endpoints")
    await endpoints_when(client, "all", lambda s: len(s) == 1 and ips(s[0]) == ["10.3.0.1", "10.3.0.2"],
                         "the terminating pod still published")


async def test_service_without_selector_is_left_alone(client, ctrl):
    await client.create("services", service("manual", None))
    mine = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "manual"},
            "subsets": [{"addresses": [{"ip": "192.0.2.10"}], "ports": [{"port": 80}]}]}
    await client.create("endpoints", mine)
    await run_pod(client, pod("z", {"app": "manual"}), ip="10.4.0.1")
    # A service with a selector in the same namespace gets handled; then the manual one is unchanged.
    await client.create("services", service("auto", {"app": "manual"}))
    await endpoints_when(client, "auto", lambda s: len(s) == 1, "the selector service's endpoints")
    ep = await client.get("endpoints", "manual")
    assert ep["subsets"] == [{"addresses": [{"ip": "192.0.2.10"}], "ports": [{"port": 80, "protocol": "TCP"}]}]
    assert TRIGGER_TIME_ANNOTATION not in (ep["metadata"].get("annotations") or {})


def _fake_pod(i: int, ready: bool) -> dict:
    return {"metadata": {"name": f"p{i}", "namespace": "ns", "uid": f"u{i}"},
            "spec": {"nodeName": "n"},
            "status": {"phase": "Running", "podIP": f"10.9.{i // 250}.{i % 250}",
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def test_truncation_keeps_ready_addresses_first():
    svc = service("big", {"app": "big"})
    svc["metadata"]["namespace"] = "ns"
    pods = [_fake_pod(i, ready=i % 3 != 0) for i in range(1500)]
    subsets, truncated = truncate(build_subsets(svc, pods))
    assert truncated
    ready = sum(len(s.get("addresses") or []) for s in subsets)
    not_ready = sum(len(s.get("notReadyAddresses") or []) for s in subsets)
    assert ready == MAX_CAPACITY and not_ready == 0
    few = [_fake_pod(i, ready=i % 2 == 0) for i in range(1100)]
    subsets, truncated = truncate(build_subsets(svc, few))
    assert truncated
    assert sum(len(s.get("addresses") or []) for s in subsets) == 550
    assert sum(len(s.get("notReadyAddresses") or []) for s in subsets) == MAX_CAPACITY - 550
    subsets, truncated = truncate(build_subsets(svc, few[:1000]))
    assert not truncated and sum(len(s.get("addresses") or []) + len(s.get("notReadyAddresses") or [])
                                 for s in subsets) == 1000


async def test_over_capacity_annotation(client, ctrl):
    ctrl.max_capacity = 2           # lowered so that a handful of pods exceed it
    await client.create("services", service("cap", {"app": "cap"}))
    for i in range(3):
        await run_pod(client, pod(f"c{i}", {"app": "cap"}), ip=f"10.5.0.{i + 1}")

    async def marked():
        e = await client.get("endpoints", "cap")
        return e if (e["metadata"].get("annotations") or {}).get(OVER_CAPACITY_ANNOTATION) == "truncated" else None

    ep = await eventually(marked, what="the over-capacity annotation")
    assert len(ep["subsets"]) == 1 and len(ep["subsets"][0]["addresses"]) == 2
    await client.delete("pods", "c0", grace_period_seconds=0)
    ep = await endpoints_when(client, "cap", lambda s: len(s) == 1 and len(s[0].get("addresses") or []) == 2
                              and "10.5.0.1" not in ips(s[0]), "back under capacity")

    async def unmarked():
        e = await client.get("endpoints", "cap")
        return OVER_CAPACITY_ANNOTATION not in (e["metadata"].get("annotations") or {})

    await eventually(unmarked, what="the over-capacity annotation removed")


def test_services_without_ports():
    pods = [_fake_pod(i, ready=True) for i in range(2)]
    headless = service("h", {"app": "h"}, [], clusterIP="None")
    headless["metadata"]["namespace"] = "ns"
    (subset,) = build_subsets(headless, pods)
    assert ips(subset) == ["10.9.0.0", "10.9.0.1"] and "ports" not in subset
    plain = service("p", {"app": "p"}, [])
    plain["metadata"]["namespace"] = "ns"
    assert build_subsets(plain, pods) == []
