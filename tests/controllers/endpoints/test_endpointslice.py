"""The EndpointSlice controller against a real API server: slice shape, conditions following pod
readiness and termination, zones, named ports per pod, the placeholder slice, and slices split at
100 endpoints."""

from __future__ import annotations

import pytest

from controller_manager.controllers.endpoints import EndpointsController
from controller_manager.controllers.endpointslice import (
    MANAGED_BY,
    MANAGED_BY_LABEL,
    MAX_ENDPOINTS,
    SERVICE_NAME_LABEL,
    SLICES,
    EndpointSliceController,
)
from tests.controllers.batch.helpers import Controllers, quiesce
from tests.controllers.endpoints.helpers import (
    ensure_node,
    eventually,
    pod,
    run_many,
    run_pod,
    service,
    set_status,
)


@pytest.fixture
async def ctrl(client):
    await ensure_node(client, "node-a", zone="zone-1")
    c = await Controllers(client, [EndpointSliceController]).start()
    yield c["endpointslice"]
    await c.stop()


async def slices_of(client, svc: str) -> list[dict]:
    items = (await client.list(SLICES, client.namespace, label_selector=f"{SERVICE_NAME_LABEL}={svc}"))["items"]
    return sorted(items, key=lambda s: s["metadata"]["name"])


def endpoints(slices: list[dict]) -> dict[str, dict]:
    """Endpoints of all slices by pod name."""
    return {ep["targetRef"]["name"]: ep for s in slices for ep in s.get("endpoints") or []}


async def slices_when(client, svc: str, predicate, what: str) -> list[dict]:
    async def check():
        slices = await slices_of(client, svc)
        return slices if predicate(slices) else None
    return await eventually(check, what=what)


async def test_slice_shape_and_conditions(client, ctrl):
    body = service("web", {"app": "web"})
    body["metadata"]["labels"] = {"tier": "front"}
    svc = await client.create("services", body)
    # With no pods yet there is one empty placeholder slice.
    placeholder = await slices_when(client, "web", lambda s: len(s) == 1, "the placeholder slice")
    assert placeholder[0]["endpoints"] in ([], None)
    a = await run_pod(client, pod("a", {"app": "web"}), ip="10.1.0.1", ready=True)
    await run_pod(client, pod("b", {"app": "web"}), ip="10.1.0.2", ready=False)

    slices = await slices_when(client, "web", lambda s: len(endpoints(s)) == 2, "two endpoints")
    assert len(slices) == 1
    slc = slices[0]
    assert slc["apiVersion"] == "discovery.k8s.io/v1" and slc["addressType"] == "IPv4"
    assert slc["metadata"]["name"].startswith("web-") and slc["metadata"]["name"] != "web-"
    labels = slc["metadata"]["labels"]
    assert labels[SERVICE_NAME_LABEL] == "web" and labels[MANAGED_BY_LABEL] == MANAGED_BY
    assert labels["tier"] == "front"
    ref = slc["metadata"]["ownerReferences"][0]
    assert (ref["kind"], ref["name"], ref["uid"], ref["controller"]) == ("Service", "web", svc["metadata"]["uid"],
                                                                         True)
    assert slc["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    eps = endpoints(slices)
    assert eps["a"]["addresses"] == ["10.1.0.1"]
    assert eps["a"]["conditions"] == {"ready": True, "serving": True, "terminating": False}
    assert eps["a"]["nodeName"] == "node-a" and eps["a"]["zone"] == "zone-1"
    assert eps["a"]["targetRef"] == {"kind": "Pod", "namespace": client.namespace, "name": "a",
                                     "uid": a["metadata"]["uid"]}
    assert eps["b"]["conditions"] == {"ready": False, "serving": False, "terminating": False}

    await set_status(client, "b", ip="10.1.0.2", ready=True)
    await slices_when(client, "web", lambda s: endpoints(s).get("b", {}).get("conditions", {}).get("ready"),
                      "b ready")
    # A terminating pod stays, marked terminating and no longer ready (still serving).
    await client.delete("pods", "a")
    slices = await slices_when(client, "web", lambda s: endpoints(s).get("a", {}).get("conditions", {}).get(
        "terminating"), "a terminating")
    assert endpoints(slices)["a"]["conditions"] == {"ready": False, "serving": True, "terminating": True}
    await client.delete("pods", "a", grace_period_seconds=0)
    slices = await slices_when(client, "web", lambda s: set(endpoints(s)) == {"b"}, "a gone")
    assert len(slices) == 1


async def test_publish_not_ready_marks_every_endpoint_ready(client, ctrl):
    await client.create("services", service("all", {"app": "all"}, publishNotReadyAddresses=True))
    await run_pod(client, pod("n", {"app": "all"}), ip="10.3.0.1", ready=False)
    slices = await slices_when(client, "all", lambda s: "n" in endpoints(s), "the endpoint")
    assert endpoints(slices)["n"]["conditions"] == {"ready": True, "serving": False, "terminating": False}


async def test_named_ports_split_slices_by_port(client, ctrl):
    await client.create("services", service("named", {"app": "named"}, [{"name": "web", "port": 80,
                                                                          "targetPort": "http"}]))
    await run_pod(client, pod("p1", {"app": "named"}, [{"name": "http", "containerPort": 8080}]), ip="10.2.0.1")
    await run_pod(client, pod("p2", {"app": "named"}, [{"name": "http", "containerPort": 9090}]), ip="10.2.0.2")
    await run_pod(client, pod("p3", {"app": "named"}, [{"name": "grpc", "containerPort": 7070}]), ip="10.2.0.3")
    slices = await slices_when(client, "named", lambda s: len(endpoints(s)) == 2 and len(s) == 2,
                               "two slices, one per port")
    by_port = {s["ports"][0]["port"]: [e["targetRef"]["name"] for e in s["endpoints"]] for s in slices}
    assert by_port == {8080: ["p1"], 9090: ["p2"]}


async def test_slices_split_at_max_endpoints(client, ctrl):
    await client.create("services", service("big", {"app": "big"}))
    n = MAX_ENDPOINTS + 30
    await run_many(client, [(pod(f"p{i:03d}", {"app": "big"}), f"10.8.{i // 200}.{i % 200 + 1}")
                            for i in range(n)])
    slices = await slices_when(client, "big", lambda s: len(endpoints(s)) == n, f"{n} endpoints")
    sizes = sorted(len(s["endpoints"]) for s in slices)
    assert sizes == [30, MAX_ENDPOINTS]
    # Removing pods empties room in place: no new slice, no endpoint moved.
    before = {name: s["metadata"]["name"] for s in slices for name in [e["targetRef"]["name"]
                                                                        for e in s["endpoints"]]}
    for i in range(5):
        await client.delete("pods", f"p{i:03d}", grace_period_seconds=0)
    slices = await slices_when(client, "big", lambda s: len(endpoints(s)) == n - 5, f"{n - 5} endpoints")
    assert len(slices) == 2
    after = {name: s["metadata"]["name"] for s in slices for name in [e["targetRef"]["name"]
                                                                       for e in s["endpoints"]]}
    assert all(before[name] == slice_name for name, slice_name in after.items())
    # New pods fill the free room before any new slice is made.
    await run_many(client, [(pod(f"q{i}", {"app": "big"}), f"10.9.0.{i + 1}") for i in range(5)])
    slices = await slices_when(client, "big", lambda s: len(endpoints(s)) == n, "the room refilled")
    assert len(slices) == 2


async def test_settled_objects_are_not_rewritten(client):
    """Once in line, neither controller writes again: what they compare equals what the server stores."""
    await ensure_node(client, "node-a", zone="zone-1")
    c = await Controllers(client, [EndpointsController, EndpointSliceController]).start()
    try:
        await client.create("services", service("calm", {"app": "calm"}, publishNotReadyAddresses=False))
        await run_pod(client, pod("a", {"app": "calm"}, [{"name": "http", "containerPort": 8080}]), ip="10.6.0.1")
        await run_pod(client, pod("b", {"app": "calm"}), ip="10.6.0.2", ready=False)
        await slices_when(client, "calm", lambda s: len(endpoints(s)) == 2, "two endpoints")
        await quiesce(*c.controllers)
        before = ((await client.get("endpoints", "calm"))["metadata"]["resourceVersion"],
                  [s["metadata"]["resourceVersion"] for s in await slices_of(client, "calm")])
        # A change that concerns neither object wakes both controllers.
        await client.patch("services", "calm", {"metadata": {"annotations": {"note": "x"}}})
        await client.patch("pods", "a", {"metadata": {"annotations": {"note": "x"}}})
        await quiesce(*c.controllers)
        after = ((await client.get("endpoints", "calm"))["metadata"]["resourceVersion"],
                 [s["metadata"]["resourceVersion"] for s in await slices_of(client, "calm")])
        assert after == before
    finally:
        await c.stop()


async def test_deleted_slice_is_made_again(client, ctrl):
    await client.create("services", service("again", {"app": "again"}))
    await run_pod(client, pod("a", {"app": "again"}), ip="10.7.0.1")
    (first,) = await slices_when(client, "again", lambda s: len(endpoints(s)) == 1, "one endpoint")
    await client.delete(SLICES, first["metadata"]["name"])
    slices = await slices_when(client, "again", lambda s: len(s) == 1 and s[0]["metadata"]["uid"] !=
                               first["metadata"]["uid"], "a new slice")
    assert set(endpoints(slices)) == {"a"}
    # The replacement is kept in line like the first one.
    await set_status(client, "a", ip="10.7.0.1", ready=False)
    await slices_when(client, "again", lambda s: endpoints(s).get("a", {}).get("conditions", {}).get("ready")
                      is False, "the new slice updated")
