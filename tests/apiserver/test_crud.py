"""The REST API through real HTTP, on SQLite and on etcd: CRUD, metadata, watch, patch."""

from __future__ import annotations

import asyncio
import json
import uuid

import orjson
import pytest

from apiserver.handlers import LIST_CHUNK_ITEMS
from tests.apiserver.builders import make_deployment, make_namespace, make_pod
from tests.apiserver.conftest import WATCH_CACHE_SIZE

JSON = {"Content-Type": "application/json"}


async def new_namespace(http) -> str:
    name = "t-" + uuid.uuid4().hex[:8]
    async with http.post("/api/v1/namespaces", json=make_namespace(name)) as r:
        assert r.status == 201, await r.text()
    return name


async def req(http, method: str, path: str, body=None, headers=None, expect: int | None = None):
    data = body if isinstance(body, (bytes, str)) or body is None else orjson.dumps(body)
    async with http.request(method, path, data=data, headers=headers or (JSON if body is not None else None)) as r:
        text = await r.read()
        out = orjson.loads(text) if text else None
        if expect is not None:
            assert r.status == expect, (r.status, out)
        return r.status, out


async def test_version_and_discovery(http):
    for path in ("/version", "/version/"):
        status, v = await req(http, "GET", path, expect=200)
        assert (v["major"], v["minor"]) == ("1", "32")
    _, api = await req(http, "GET", "/api/", expect=200)
    assert api["versions"] == ["v1"]
    _, groups = await req(http, "GET", "/apis", expect=200)
    assert {"apps", "batch", "coordination.k8s.io", "discovery.k8s.io"} <= {g["name"] for g in groups["groups"]}
    _, res = await req(http, "GET", "/apis/apps/v1/", expect=200)
    assert "deployments/scale" in {r["name"] for r in res["resources"]}


async def test_initial_namespaces(http):
    _, lst = await req(http, "GET", "/api/v1/namespaces", expect=200)
    names = {n["metadata"]["name"] for n in lst["items"]}
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= names


async def test_pod_lifecycle(http):
    ns = await new_namespace(http)
    base = f"/api/v1/namespaces/{ns}/pods"
    status, pod = await req(http, "POST", base, make_pod("web", labels={"app": "web", "tier": "fe"}), expect=201)
    md = pod["metadata"]
    assert md["uid"] and md["creationTimestamp"] and int(md["resourceVersion"]) > 0
    assert md["namespace"] == ns
    # Defaults the API server applies.
    c = pod["spec"]["containers"][0]
    assert c["imagePullPolicy"] == "IfNotPresent" and c["ports"][0]["protocol"] == "TCP"
    assert pod["spec"]["restartPolicy"] == "Always" and pod["spec"]["schedulerName"] == "default-scheduler"
    assert pod["status"]["phase"] == "Pending"
    _, got = await req(http, "GET", f"{base}/web", expect=200)
    assert got == pod
    await req(http, "POST", base, make_pod("other", labels={"app": "db"}), expect=201)
    _, lst = await req(http, "GET", f"{base}?labelSelector=app%3Dweb", expect=200)
    assert [p["metadata"]["name"] for p in lst["items"]] == ["web"]
    _, lst = await req(http, "GET", f"{base}?labelSelector=app%20in%20(web,db),tier!=be", expect=200)
    assert [p["metadata"]["name"] for p in lst["items"]] == ["other", "web"]
    _, lst = await req(http, "GET", f"{base}?fieldSelector=metadata.name%3Dother", expect=200)
    assert [p["metadata"]["name"] for p in lst["items"]] == ["other"]
    # Cluster-wide list sees them too.
    _, everything = await req(http, "GET", "/api/v1/pods", expect=200)
    assert {("web", ns), ("other", ns)} <= {(p["metadata"]["name"], p["metadata"]["namespace"])
                                            for p in everything["items"]}
    # Each patch type.
    _, p1 = await req(http, "PATCH", f"{base}/web", {"metadata": {"labels": {"tier": None, "v": "1"}}},
                      {"Content-Type": "application/merge-patch+json"}, expect=200)
    assert p1["metadata"]["labels"] == {"app": "web", "v": "1"}
    _, p2 = await req(http, "PATCH", f"{base}/web",
                      [{"op": "replace", "path": "/spec/containers/0/image", "value": "busybox:1.37"}],
                      {"Content-Type": "application/json-patch+json"}, expect=200)
    assert p2["spec"]["containers"][0]["image"] == "busybox:1.37"
    _, p3 = await req(http, "PATCH", f"{base}/web",
                      {"spec": {"containers": [{"name": "c", "image": "busybox:1.38"}]}},
                      {"Content-Type": "application/strategic-merge-patch+json"}, expect=200)
    assert p3["spec"]["containers"][0]["image"] == "busybox:1.38"
    assert p3["spec"]["containers"][0]["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert int(p3["metadata"]["resourceVersion"]) > int(p2["metadata"]["resourceVersion"])
    # Unbound pods are deleted at once.
    _, gone = await req(http, "DELETE", f"{base}/web", expect=200)
    assert gone["metadata"]["name"] == "web"
    await req(http, "GET", f"{base}/web", expect=404)


async def test_trailing_slash_no_content_type_and_no_kind(http):
    ns = await new_namespace(http)
    body = make_pod("bare")
    del body["kind"], body["apiVersion"]
    async with http.post(f"/api/v1/namespaces/{ns}/pods/", data=orjson.dumps(body),
                         skip_auto_headers=["Content-Type"]) as r:
        assert "Content-Type" not in r.request_info.headers
        assert r.status == 201, await r.text()
        pod = await r.json()
    assert pod["kind"] == "Pod" and pod["apiVersion"] == "v1"
    _, lst = await req(http, "GET", f"/api/v1/namespaces/{ns}/pods/", expect=200)
    assert len(lst["items"]) == 1


async def test_generate_name(http):
    ns = await new_namespace(http)
    body = make_pod("")
    body["metadata"] = {"generateName": "web-"}
    _, a = await req(http, "POST", f"/api/v1/namespaces/{ns}/pods", body, expect=201)
    _, b = await req(http, "POST", f"/api/v1/namespaces/{ns}/pods", body, expect=201)
    assert a["metadata"]["name"].startswith("web-") and len(a["metadata"]["name"]) == len("web-") + 5
    assert a["metadata"]["name"] != b["metadata"]["name"]


async def test_errors_leave_store_unchanged(http):
    ns = await new_namespace(http)
    base = f"/api/v1/namespaces/{ns}/pods"
    _, pod = await req(http, "POST", base, make_pod("keep"), expect=201)

    async def snapshot():
        _, lst = await req(http, "GET", base, expect=200)
        return lst["items"]

    before = await snapshot()
    cases = [
        ("POST", base, b'{"metadata": {"name": "x"', JSON, 400, "BadRequest"),
        ("POST", base, b"metadata: [unclosed", {"Content-Type": "application/yaml"}, 400, "BadRequest"),
        ("POST", base, {"metadata": {"name": "nocontainers"}, "spec": {}}, None, 422, "Invalid"),
        ("POST", base, make_pod("Bad_Name"), None, 422, "Invalid"),
        ("POST", f"/api/v1/namespaces/{ns}/gizmos", make_pod("g"), None, 404, "NotFound"),
        ("POST", base, make_pod("keep"), None, 409, "AlreadyExists"),
        ("POST", base, make_pod("other", namespace="elsewhere"), None, 400, "BadRequest"),
        ("PUT", f"{base}/keep", {**pod, "metadata": {**pod["metadata"], "resourceVersion": "1"}}, None, 409,
         "Conflict"),
        ("PATCH", f"{base}/keep", {"metadata": {"resourceVersion": "1", "labels": {"x": "y"}}},
         {"Content-Type": "application/merge-patch+json"}, 409, "Conflict"),
        ("POST", base, b"{" + b'"a":"' + b"x" * (3 * 1024 * 1024 + 10) + b'"}', JSON, 413,
         "RequestEntityTooLarge"),
        ("POST", "/api/v1/namespaces/does-not-exist/pods", make_pod("p"), None, 404, "NotFound"),
        ("PATCH", f"{base}/keep", [{"op": "test", "path": "/metadata/name", "value": "nope"}],
         {"Content-Type": "application/json-patch+json"}, 422, "Invalid"),
    ]
    for method, path, body, headers, code, reason in cases:
        status, out = await req(http, method, path, body, headers)
        assert status == code, (method, path, status, out)
        assert out["kind"] == "Status" and out["reason"] == reason and out["code"] == code, out
    # An invalid object names the field.
    _, out = await req(http, "POST", base, {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}})
    assert out["code"] == 422
    assert any(c.get("field") == "spec.containers[0].image" for c in out["details"]["causes"]), out
    assert await snapshot() == before


async def test_field_validation(http):
    ns = await new_namespace(http)
    base = f"/api/v1/namespaces/{ns}/configmaps"
    body = {"metadata": {"name": "cm"}, "data": {"a": "b"}, "bogus": 1}
    status, out = await req(http, "POST", base + "?fieldValidation=Strict", body)
    assert status == 400 and 'unknown field "bogus"' in out["message"]
    async with http.post(base + "?fieldValidation=Warn", json=body) as r:
        assert r.status == 201
        assert "bogus" in r.headers.get("Warning", "")
        assert "bogus" not in await r.json()
    body["metadata"]["name"] = "cm2"
    await req(http, "POST", base + "?fieldValidation=Ignore", body, expect=201)


async def test_server_side_apply_drops_unknown_fields(http):
    ns = await new_namespace(http)
    path = f"/api/v1/namespaces/{ns}/configmaps/cfg?fieldManager=ssa"
    apply = {"Content-Type": "application/apply-patch+yaml"}
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "shade": "x"},
            "data": {"a": "1"}, "bogus": True}
    status, out = await req(http, "PATCH", path + "&fieldValidation=Strict", body, apply)
    assert status == 400 and 'unknown field "bogus"' in out["message"], out
    async with http.patch(path, data=orjson.dumps(body), headers=apply) as r:
        assert r.status == 201, await r.text()
        assert "bogus" in r.headers["Warning"] and "metadata.shade" in r.headers["Warning"]
    _, stored = await req(http, "GET", f"/api/v1/namespaces/{ns}/configmaps/cfg", expect=200)
    assert "bogus" not in stored and "shade" not in stored["metadata"] and stored["data"] == {"a": "1"}
    [entry] = stored["metadata"]["managedFields"]
    assert entry["manager"] == "ssa" and entry["operation"] == "Apply"
    assert entry["fieldsV1"] == {"f:data": {"f:a": {}}}
    # Applied again with the unknown fields, as an update: still nothing of them is kept.
    await req(http, "PATCH", path + "&fieldValidation=Ignore", body, apply, expect=200)
    _, stored = await req(http, "GET", f"/api/v1/namespaces/{ns}/configmaps/cfg", expect=200)
    assert "bogus" not in stored and stored["metadata"]["managedFields"][0]["fieldsV1"] == {"f:data": {"f:a": {}}}


async def test_the_creator_owns_the_defaulted_fields(http):
    """As in Kubernetes, where defaulting is part of decoding: the fields the server filled in
    on create belong to the creating manager along with those it sent; those that admission
    adds afterwards belong to nobody."""
    ns = await new_namespace(http)
    _, pod = await req(http, "POST", f"/api/v1/namespaces/{ns}/pods?fieldManager=maker", make_pod("p"),
                       expect=201)
    [entry] = pod["metadata"]["managedFields"]
    assert entry["manager"] == "maker" and entry["operation"] == "Update"
    spec = entry["fieldsV1"]["f:spec"]
    assert {"f:dnsPolicy", "f:restartPolicy", "f:schedulerName", "f:terminationGracePeriodSeconds"} <= set(spec)
    # What admission adds comes after the field manager: nobody owns it.
    assert pod["spec"]["tolerations"] and pod["spec"]["serviceAccountName"] == "default"
    assert not {"f:tolerations", "f:serviceAccountName", "f:priority"} & set(spec)
    container = spec["f:containers"]['k:{"name":"c"}']
    assert {"f:image", "f:imagePullPolicy", "f:terminationMessagePath"} <= set(container)
    assert 'k:{"containerPort":80,"protocol":"TCP"}' in container["f:ports"]


async def test_unknown_fields_are_dropped(http):
    """Under Warn (the default) and Ignore, fields the kind does not have are not stored, nor
    owned by anybody: Kubernetes decodes into typed objects, which have no place for them."""
    ns = await new_namespace(http)
    base = f"/api/v1/namespaces/{ns}/pods"
    pod = make_pod("p")
    pod["spec"]["bogus"] = 1
    pod["spec"]["containers"][0]["shade"] = "blue"
    async with http.post(base, json=pod) as r:
        assert r.status == 201, await r.text()
        assert r.headers["Warning"].count("unknown field") == 2
    _, stored = await req(http, "GET", f"{base}/p", expect=200)
    assert "bogus" not in stored["spec"] and "shade" not in stored["spec"]["containers"][0]
    owned = orjson.dumps(stored["metadata"]["managedFields"])
    assert b"bogus" not in owned and b"shade" not in owned
    # An update that only adds unknown fields changes nothing, not even the resourceVersion.
    stored["spec"]["bogus"] = 2
    async with http.put(f"{base}/p?fieldValidation=Ignore", json=stored) as r:
        assert r.status == 200 and "Warning" not in r.headers
        after = await r.json()
    assert "bogus" not in after["spec"]
    assert after["metadata"]["resourceVersion"] == stored["metadata"]["resourceVersion"]
    # A patch keeps what it knows and drops what it does not.
    mp = {"Content-Type": "application/merge-patch+json"}
    _, patched = await req(http, "PATCH", f"{base}/p", {"metadata": {"labels": {"a": "b"}, "bogus": 1}},
                           mp, expect=200)
    assert patched["metadata"]["labels"]["a"] == "b" and "bogus" not in patched["metadata"]
    _, stored = await req(http, "GET", f"{base}/p", expect=200)
    assert "bogus" not in stored["metadata"]


async def test_generation_bumps_on_spec_only(http):
    ns = await new_namespace(http)
    base = f"/apis/apps/v1/namespaces/{ns}/deployments"
    _, d = await req(http, "POST", base, make_deployment("web"), expect=201)
    assert d["metadata"]["generation"] == 1
    assert d["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": "25%", "maxSurge": "25%"}
    assert d["spec"]["revisionHistoryLimit"] == 10 and d["spec"]["progressDeadlineSeconds"] == 600
    mp = {"Content-Type": "application/merge-patch+json"}
    _, d = await req(http, "PATCH", f"{base}/web", {"metadata": {"labels": {"x": "1"}}}, mp, expect=200)
    assert d["metadata"]["generation"] == 1
    _, d = await req(http, "PATCH", f"{base}/web", {"spec": {"replicas": 5}}, mp, expect=200)
    assert d["metadata"]["generation"] == 2
    # Status writes go through /status and never touch the spec or generation.
    _, d = await req(http, "PATCH", f"{base}/web/status", {"status": {"replicas": 3}, "spec": {"replicas": 9}},
                     mp, expect=200)
    assert d["status"]["replicas"] == 3 and d["spec"]["replicas"] == 5 and d["metadata"]["generation"] == 2
    # ...and the main resource ignores status.
    d["status"] = {"replicas": 100}
    _, d = await req(http, "PUT", f"{base}/web", d, expect=200)
    assert d["status"]["replicas"] == 3
    # Selector is immutable.
    d["spec"]["selector"] = {"matchLabels": {"app": "other"}}
    d["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    status, out = await req(http, "PUT", f"{base}/web", d)
    assert status == 422 and "spec.selector" in out["message"]


async def test_scale_subresource(http):
    ns = await new_namespace(http)
    base = f"/apis/apps/v1/namespaces/{ns}/deployments"
    await req(http, "POST", base, make_deployment("web", replicas=2), expect=201)
    _, scale = await req(http, "GET", f"{base}/web/scale", expect=200)
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"]["replicas"] == 2 and scale["status"]["selector"] == "app=web"
    _, scale = await req(http, "PATCH", f"{base}/web/scale", {"spec": {"replicas": 5}},
                         {"Content-Type": "application/merge-patch+json"}, expect=200)
    assert scale["spec"]["replicas"] == 5
    # PUT without Content-Type, with a version precondition (kubectl scale --current-replicas).
    scale["spec"]["replicas"] = 7
    async with http.put(f"{base}/web/scale", data=orjson.dumps(scale), skip_auto_headers=["Content-Type"]) as r:
        assert r.status == 200, await r.text()
    async with http.put(f"{base}/web/scale", data=orjson.dumps(scale), skip_auto_headers=["Content-Type"]) as r:
        assert r.status == 409
    _, d = await req(http, "GET", f"{base}/web", expect=200)
    assert d["spec"]["replicas"] == 7


async def test_finalizers_keep_object_until_removed(http):
    ns = await new_namespace(http)
    base = f"/api/v1/namespaces/{ns}/configmaps"
    await req(http, "POST", base, {"metadata": {"name": "cm", "finalizers": ["example.com/hold"]}}, expect=201)
    _, cm = await req(http, "DELETE", f"{base}/cm", expect=200)
    assert cm["metadata"]["deletionTimestamp"]
    _, cm = await req(http, "GET", f"{base}/cm", expect=200)
    assert cm["metadata"]["finalizers"] == ["example.com/hold"]
    status, out = await req(http, "PATCH", f"{base}/cm", {"metadata": {"finalizers": ["a", "example.com/hold"]}},
                            {"Content-Type": "application/merge-patch+json"})
    assert status == 422
    await req(http, "PATCH", f"{base}/cm", {"metadata": {"finalizers": None}},
              {"Content-Type": "application/merge-patch+json"}, expect=200)
    await req(http, "GET", f"{base}/cm", expect=404)


async def test_graceful_pod_deletion_and_binding(http):
    ns = await new_namespace(http)
    base = f"/api/v1/namespaces/{ns}/pods"
    _, created = await req(http, "POST", base, make_pod("p"), expect=201)
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"},
               "target": {"apiVersion": "v1", "kind": "Node", "name": "node-1"}}
    await req(http, "POST", f"{base}/p/binding", binding, expect=201)
    _, pod = await req(http, "GET", f"{base}/p", expect=200)
    assert pod["spec"]["nodeName"] == "node-1"
    # The binding writes the pod as the server's own edit: no field manager takes nodeName.
    assert pod["metadata"]["managedFields"] == created["metadata"]["managedFields"]
    assert any(c["type"] == "PodScheduled" and c["status"] == "True" for c in pod["status"]["conditions"])
    status, out = await req(http, "POST", f"{base}/p/binding", binding)
    assert status == 409
    _, pod = await req(http, "DELETE", f"{base}/p", expect=200)
    assert pod["metadata"]["deletionTimestamp"] and pod["metadata"]["deletionGracePeriodSeconds"] == 30
    await req(http, "GET", f"{base}/p", expect=200)
    # The node's agent confirms with a zero grace period.
    await req(http, "DELETE", f"{base}/p", {"gracePeriodSeconds": 0}, expect=200)
    await req(http, "GET", f"{base}/p", expect=404)


async def test_delete_preconditions_and_collection(http):
    ns = await new_namespace(http)
    base = f"/api/v1/namespaces/{ns}/configmaps"
    for i in range(4):
        await req(http, "POST", base, {"metadata": {"name": f"cm{i}", "labels": {"even": str(i % 2 == 0)}}},
                  expect=201)
    status, _ = await req(http, "DELETE", f"{base}/cm0", {"preconditions": {"uid": "nope"}})
    assert status == 409
    await req(http, "DELETE", f"{base}?labelSelector=even%3DTrue", expect=200)
    _, lst = await req(http, "GET", base, expect=200)
    assert sorted(c["metadata"]["name"] for c in lst["items"]) == ["cm1", "cm3"]


async def test_namespace_termination_refuses_new_content(http):
    ns = await new_namespace(http)
    _, nso = await req(http, "DELETE", f"/api/v1/namespaces/{ns}", expect=200)
    assert nso["status"]["phase"] == "Terminating" and nso["metadata"]["deletionTimestamp"]
    status, out = await req(http, "POST", f"/api/v1/namespaces/{ns}/configmaps", {"metadata": {"name": "x"}})
    assert status == 403 and "being terminated" in out["message"]


async def test_dry_run(http):
    ns = await new_namespace(http)
    base = f"/api/v1/namespaces/{ns}/configmaps"
    _, cm = await req(http, "POST", base + "?dryRun=All", {"metadata": {"name": "dry"}}, expect=201)
    assert cm["metadata"]["uid"]
    await req(http, "GET", f"{base}/dry", expect=404)


async def test_pagination_and_resource_versions(http):
    ns = await new_namespace(http)
    base = f"/api/v1/namespaces/{ns}/configmaps"
    for i in range(7):
        await req(http, "POST", base, {"metadata": {"name": f"cm{i}"}}, expect=201)
    names, cont = [], ""
    while True:
        _, page = await req(http, "GET", f"{base}?limit=3" + (f"&continue={cont}" if cont else ""), expect=200)
        names += [c["metadata"]["name"] for c in page["items"]]
        cont = page["metadata"].get("continue", "")
        if not cont:
            break
    assert names == [f"cm{i}" for i in range(7)]
    # resourceVersion=0 is served from the watch cache, with the same content.
    _, cached = await req(http, "GET", f"{base}?resourceVersion=0", expect=200)
    _, fresh = await req(http, "GET", base, expect=200)
    await asyncio.sleep(0)
    assert [c["metadata"]["name"] for c in cached["items"]] == [c["metadata"]["name"] for c in fresh["items"]]


async def read_events(resp, n: int, timeout: float = 10) -> list[dict]:
    out = []
    async with asyncio.timeout(timeout):
        while len(out) < n:
            line = await resp.content.readline()
            if not line:
                break
            out.append(json.loads(line))
    return out


async def test_watch_live_and_resume(http):
    ns = await new_namespace(http)
    base = f"/api/v1/namespaces/{ns}/configmaps"
    _, lst = await req(http, "GET", base, expect=200)
    rv0 = lst["metadata"]["resourceVersion"]
    async with http.get(f"{base}?watch=True&resourceVersion={rv0}") as w:
        assert w.status == 200
        await req(http, "POST", base, {"metadata": {"name": "a"}}, expect=201)
        await req(http, "PATCH", f"{base}/a", {"data": {"k": "v"}}, {"Content-Type": "application/merge-patch+json"},
                  expect=200)
        await req(http, "DELETE", f"{base}/a", expect=200)
        events = await read_events(w, 3)
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    assert events[1]["object"]["data"] == {"k": "v"}
    # Resuming from the first event's version replays exactly what came after it.
    first_rv = events[0]["object"]["metadata"]["resourceVersion"]
    async with http.get(f"{base}?watch=1&resourceVersion={first_rv}") as w:
        replay = await read_events(w, 2)
    assert [(e["type"], e["object"]["metadata"]["resourceVersion"]) for e in replay] == \
        [(e["type"], e["object"]["metadata"]["resourceVersion"]) for e in events[1:]]


async def test_watch_selector_transitions_and_timeout(http):
    ns = await new_namespace(http)
    base = f"/api/v1/namespaces/{ns}/configmaps"
    mp = {"Content-Type": "application/merge-patch+json"}
    await req(http, "POST", base, {"metadata": {"name": "a", "labels": {"x": "1"}}}, expect=201)
    async with http.get(f"{base}?watch=true&labelSelector=x%3D1&timeoutSeconds=3") as w:
        initial = await read_events(w, 1)
        assert initial[0]["type"] == "ADDED"
        await req(http, "PATCH", f"{base}/a", {"metadata": {"labels": {"x": "2"}}}, mp, expect=200)
        await req(http, "PATCH", f"{base}/a", {"metadata": {"labels": {"x": "1"}}}, mp, expect=200)
        events = await read_events(w, 2)
        assert [e["type"] for e in events] == ["DELETED", "ADDED"]
        rest = await read_events(w, 1, timeout=10)   # the server ends the stream at timeoutSeconds
        assert rest == []


async def test_watch_from_compacted_version_is_gone(http):
    ns = await new_namespace(http)
    base = f"/api/v1/namespaces/{ns}/configmaps"
    _, first = await req(http, "POST", base, {"metadata": {"name": "first"}}, expect=201)
    for i in range(WATCH_CACHE_SIZE + 5):
        await req(http, "POST", base, {"metadata": {"name": f"cm{i}"}}, expect=201)
    async with http.get(f"{base}?watch=true&resourceVersion={first['metadata']['resourceVersion']}") as w:
        events = await read_events(w, 1)
    assert events[0]["type"] == "ERROR"
    assert events[0]["object"]["code"] == 410 and events[0]["object"]["reason"] == "Expired"


async def test_table_output(http):
    ns = await new_namespace(http)
    await req(http, "POST", f"/api/v1/namespaces/{ns}/pods", make_pod("web"), expect=201)
    accept = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"}
    async with http.get(f"/api/v1/namespaces/{ns}/pods?limit=500", headers=accept) as r:
        table = await r.json()
    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]][:5] == ["Name", "Ready", "Status", "Restarts", "Age"]
    assert table["rows"][0]["cells"][:4] == ["web", "0/1", "Pending", "0"] or \
        table["rows"][0]["cells"][:3] == ["web", "0/1", "Pending"]
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"


async def test_service_cluster_ip_allocation(http):
    ns = await new_namespace(http)
    base = f"/api/v1/namespaces/{ns}/services"
    svc = {"metadata": {"name": "s"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}
    _, a = await req(http, "POST", base, svc, expect=201)
    svc["metadata"]["name"] = "t"
    svc["spec"]["type"] = "NodePort"
    _, b = await req(http, "POST", base, svc, expect=201)
    assert a["spec"]["clusterIP"].startswith("10.") and a["spec"]["clusterIP"] != b["spec"]["clusterIP"]
    assert a["spec"]["ports"][0]["targetPort"] == 80 and a["spec"]["type"] == "ClusterIP"
    assert 30000 <= b["spec"]["ports"][0]["nodePort"] <= 32767


async def test_metrics_and_health(http):
    for path in ("/healthz", "/readyz", "/livez"):
        async with http.get(path) as r:
            assert r.status == 200
    async with http.get("/metrics") as r:
        text = await r.text()
    assert 'apiserver_request_total{' in text and 'resource="pods"' in text
    assert "apiserver_request_duration_seconds_bucket" in text


@pytest.mark.parametrize("path", ["/api/v1/pods/x", "/apis/nope/v1/things", "/api/v1/namespaces/default/pods/a/b/c"])
async def test_unknown_paths(http, path):
    status, out = await req(http, "GET", path)
    assert status == 404 and out["kind"] == "Status"


async def test_priority_class_admission(http):
    ns = await new_namespace(http)
    name = "high-" + ns
    await req(http, "POST", "/apis/scheduling.k8s.io/v1/priorityclasses",
              {"metadata": {"name": name}, "value": 1000, "preemptionPolicy": "Never"}, expect=201)
    _, pod = await req(http, "POST", f"/api/v1/namespaces/{ns}/pods", make_pod("p", priorityClassName=name),
                       expect=201)
    assert pod["spec"]["priority"] == 1000 and pod["spec"]["preemptionPolicy"] == "Never"
    status, out = await req(http, "POST", f"/api/v1/namespaces/{ns}/pods", make_pod("q", priorityClassName="nope"))
    assert status == 403 and "no PriorityClass with name nope" in out["message"]
    _, system = await req(http, "GET", "/apis/scheduling.k8s.io/v1/priorityclasses/system-node-critical",
                          expect=200)
    assert system["value"] == 2000001000


async def test_service_put_keeps_cluster_ip(http):
    ns = await new_namespace(http)
    base = f"/api/v1/namespaces/{ns}/services"
    svc = {"metadata": {"name": "s"}, "spec": {"type": "NodePort", "selector": {"app": "web"},
                                                 "ports": [{"port": 80}]}}
    _, created = await req(http, "POST", base, svc, expect=201)
    svc["spec"]["selector"] = {"app": "other"}
    _, updated = await req(http, "PUT", f"{base}/s", svc, expect=200)
    assert updated["spec"]["clusterIP"] == created["spec"]["clusterIP"]
    assert updated["spec"]["ports"][0]["nodePort"] == created["spec"]["ports"][0]["nodePort"]
    assert updated["spec"]["selector"] == {"app": "other"}


async def test_delete_answers_eviction_and_node_streams(http):
    ns = await new_namespace(http)
    await req(http, "POST", f"/api/v1/namespaces/{ns}/configmaps", {"metadata": {"name": "c"}}, expect=201)
    _, status = await req(http, "DELETE", f"/api/v1/namespaces/{ns}/configmaps/c", expect=200)
    assert status["kind"] == "Status" and status["status"] == "Success"
    assert status["details"]["name"] == "c" and status["details"]["kind"] == "configmaps"
    # Pods answer with the deleted object, as Kubernetes' pod storage does.
    await req(http, "POST", f"/api/v1/namespaces/{ns}/pods", make_pod("p"), expect=201)
    _, pod = await req(http, "DELETE", f"/api/v1/namespaces/{ns}/pods/p", expect=200)
    assert pod["kind"] == "Pod"
    # Eviction is a graceful delete.
    await req(http, "POST", f"/api/v1/namespaces/{ns}/pods", make_pod("e", node="n1"), expect=201)
    eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "e", "namespace": ns}}
    await req(http, "POST", f"/api/v1/namespaces/{ns}/pods/e/eviction", eviction, expect=201)
    _, evicted = await req(http, "GET", f"/api/v1/namespaces/{ns}/pods/e", expect=200)
    assert evicted["metadata"]["deletionTimestamp"]
    status, out = await req(http, "GET", f"/api/v1/namespaces/{ns}/pods/missing/log")
    assert status == 404 and out["reason"] == "NotFound"


async def test_remaining_item_count_and_terminating_namespace_message(http):
    ns = await new_namespace(http)
    for i in range(3):
        await req(http, "POST", f"/api/v1/namespaces/{ns}/configmaps", {"metadata": {"name": f"c{i}"}}, expect=201)
    _, page = await req(http, "GET", f"/api/v1/namespaces/{ns}/configmaps?limit=2", expect=200)
    assert page["metadata"]["remainingItemCount"] == 1
    await req(http, "DELETE", f"/api/v1/namespaces/{ns}", expect=200)
    status, out = await req(http, "POST", f"/api/v1/namespaces/{ns}/configmaps", {"metadata": {"name": "late"}})
    assert status == 403
    assert out["message"].startswith('configmaps "late" is forbidden: unable to create new content')
    assert out["details"]["causes"][0]["reason"] == "NamespaceTerminating"


async def test_a_large_list_from_storage_is_written_in_pieces(http):
    """A consistent LIST of more items than one piece holds comes out as one valid list, every
    item with its own resourceVersion, as does a page of such a list."""
    ns = await new_namespace(http)
    base = f"/api/v1/namespaces/{ns}/configmaps"
    total = LIST_CHUNK_ITEMS * 2 + 7
    gate = asyncio.Semaphore(32)

    async def make(i: int) -> None:
        async with gate:
            await req(http, "POST", base, {"metadata": {"name": f"cm-{i:05d}"}, "data": {"i": str(i)}}, expect=201)

    await asyncio.gather(*(make(i) for i in range(total)))
    _, out = await req(http, "GET", base, expect=200)
    assert [cm["metadata"]["name"] for cm in out["items"]] == [f"cm-{i:05d}" for i in range(total)]
    assert all(int(cm["metadata"]["resourceVersion"]) > 0 and cm["data"] for cm in out["items"])
    assert int(out["metadata"]["resourceVersion"]) >= max(int(cm["metadata"]["resourceVersion"])
                                                         for cm in out["items"])
    _, page = await req(http, "GET", f"{base}?limit={LIST_CHUNK_ITEMS + 3}", expect=200)
    assert len(page["items"]) == LIST_CHUNK_ITEMS + 3 and page["metadata"]["continue"]
    assert page["metadata"]["remainingItemCount"] == total - LIST_CHUNK_ITEMS - 3
    _, rest = await req(http, "GET", f"{base}?limit={total}&continue={page['metadata']['continue']}", expect=200)
    assert len(rest["items"]) == total - LIST_CHUNK_ITEMS - 3
