"""api.patch: JSON patch, merge patch, strategic merge patch, and the patches apply computes."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from api import patch as P
from api.errors import BadRequest, Invalid, RequestEntityTooLarge
from api.schema import merge_info

DEPLOY = merge_info("apps", "v1", "Deployment")


def make_deployment(**overrides: Any) -> dict[str, Any]:
    """A stored Deployment: two containers, ports, env, a volume, finalizers, a rolling strategy."""
    dep = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web", "tier": "fe"},
                     "finalizers": ["example.com/a", "example.com/b"], "resourceVersion": "7"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {"name": "a", "image": "nginx:1.27", "args": ["x", "y"],
                         "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                         "ports": [{"containerPort": 80, "protocol": "TCP"},
                                   {"containerPort": 53, "protocol": "UDP", "name": "dns"}],
                         "volumeMounts": [{"name": "v1", "mountPath": "/data"}],
                         "imagePullPolicy": "IfNotPresent", "terminationMessagePath": "/dev/termination-log"},
                        {"name": "b", "image": "busybox", "command": ["sleep", "inf"]},
                    ],
                    "volumes": [{"name": "v1", "emptyDir": {}}],
                    "tolerations": [{"key": "k", "operator": "Exists"}],
                    "restartPolicy": "Always",
                },
            },
        },
    }
    dep.update(overrides)
    return dep


def at(obj: Any, path: str) -> Any:
    for step in path.split("."):
        obj = obj[int(step)] if isinstance(obj, list) else obj[step]
    return obj


def apply_untouched(fn, doc, body, *extra):
    """Run a patch function and check it left both of its inputs as they were."""
    doc_before, body_before = copy.deepcopy(doc), copy.deepcopy(body)
    out = fn(doc, body, *extra)
    assert doc == doc_before and body == body_before, "a patch function mutated its input"
    return out


# --------------------------------------------------------------------------- RFC 6902

DOC = {"metadata": {"name": "x", "annotations": {"example.com/a": "1", "t~x": "2"}},
       "spec": {"list": [1, 2, 3], "flag": True}}

JSON_PATCH_OK = [
    ("add field", [{"op": "add", "path": "/spec/new", "value": {"a": 1}}],
     {**DOC, "spec": {**DOC["spec"], "new": {"a": 1}}}),
    ("add replaces an existing key", [{"op": "add", "path": "/spec/flag", "value": False}],
     {**DOC, "spec": {**DOC["spec"], "flag": False}}),
    ("add inserts at an index", [{"op": "add", "path": "/spec/list/1", "value": 9}],
     {**DOC, "spec": {**DOC["spec"], "list": [1, 9, 2, 3]}}),
    ("add appends with -", [{"op": "add", "path": "/spec/list/-", "value": 4}],
     {**DOC, "spec": {**DOC["spec"], "list": [1, 2, 3, 4]}}),
    ("add at the end index", [{"op": "add", "path": "/spec/list/3", "value": 4}],
     {**DOC, "spec": {**DOC["spec"], "list": [1, 2, 3, 4]}}),
    ("remove key", [{"op": "remove", "path": "/spec/flag"}], {**DOC, "spec": {"list": [1, 2, 3]}}),
    ("remove item", [{"op": "remove", "path": "/spec/list/0"}], {**DOC, "spec": {**DOC["spec"], "list": [2, 3]}}),
    ("replace", [{"op": "replace", "path": "/metadata/name", "value": "y"}],
     {**DOC, "metadata": {**DOC["metadata"], "name": "y"}}),
    ("replace whole document", [{"op": "replace", "path": "", "value": {"a": 1}}], {"a": 1}),
    ("escaped slash and tilde", [{"op": "replace", "path": "/metadata/annotations/example.com~1a", "value": "x"},
                                 {"op": "remove", "path": "/metadata/annotations/t~0x"}],
     {**DOC, "metadata": {"name": "x", "annotations": {"example.com/a": "x"}}}),
    ("move", [{"op": "move", "from": "/spec/flag", "path": "/metadata/flag"}],
     {"metadata": {**DOC["metadata"], "flag": True}, "spec": {"list": [1, 2, 3]}}),
    ("move within a list", [{"op": "move", "from": "/spec/list/0", "path": "/spec/list/-"}],
     {**DOC, "spec": {**DOC["spec"], "list": [2, 3, 1]}}),
    ("copy", [{"op": "copy", "from": "/spec/list", "path": "/spec/copy"}],
     {**DOC, "spec": {**DOC["spec"], "copy": [1, 2, 3]}}),
    ("test then replace", [{"op": "test", "path": "/spec/list", "value": [1, 2, 3]},
                           {"op": "replace", "path": "/spec/list/2", "value": 30}],
     {**DOC, "spec": {**DOC["spec"], "list": [1, 2, 30]}}),
    ("add null value", [{"op": "add", "path": "/spec/n", "value": None}],
     {**DOC, "spec": {**DOC["spec"], "n": None}}),
    ("operations see earlier ones", [{"op": "add", "path": "/a", "value": {}},
                                     {"op": "add", "path": "/a/b", "value": 1}], {**DOC, "a": {"b": 1}}),
]


@pytest.mark.parametrize("ops,expected", [c[1:] for c in JSON_PATCH_OK], ids=[c[0] for c in JSON_PATCH_OK])
def test_json_patch(ops, expected):
    assert apply_untouched(P.json_patch, DOC, ops) == expected


def test_json_patch_copy_is_independent():
    out = P.json_patch(DOC, [{"op": "copy", "from": "/spec/list", "path": "/spec/copy"},
                             {"op": "add", "path": "/spec/copy/-", "value": 4}])
    assert out["spec"]["list"] == [1, 2, 3] and out["spec"]["copy"] == [1, 2, 3, 4]


JSON_PATCH_ERRORS = [
    # A body that is not a list of operations is refused before anything runs (400) ...
    ("not a list", {"op": "add"}, BadRequest, "must be a list"),
    ("operation not an object", ["add"], BadRequest, "must be an object"),
    # ... while operations that cannot be applied are 422, as the API server answers.
    ("test failed", [{"op": "test", "path": "/metadata/name", "value": "other"}], Invalid,
     "testing value /metadata/name failed"),
    ("test does not take true for 1", [{"op": "test", "path": "/spec/flag", "value": 1}], Invalid, "test failed"),
    ("missing parent", [{"op": "add", "path": "/nope/x", "value": 1}], Invalid, "missing path: /nope/x"),
    ("remove missing key", [{"op": "remove", "path": "/spec/nope"}], Invalid, "missing key: /spec/nope"),
    ("replace missing key", [{"op": "replace", "path": "/spec/nope", "value": 1}], Invalid, "missing key"),
    ("index out of range", [{"op": "replace", "path": "/spec/list/3", "value": 1}], Invalid, "out of bounds"),
    ("leading zero index", [{"op": "add", "path": "/spec/list/01", "value": 1}], Invalid, "invalid array index"),
    ("pointer without slash", [{"op": "add", "path": "spec", "value": 1}], Invalid, "invalid JSON pointer"),
    ("no path", [{"op": "remove"}], Invalid, "missing path"),
    ("no value", [{"op": "add", "path": "/x"}], Invalid, "missing its value"),
    ("unknown op", [{"op": "merge", "path": "/x", "value": 1}], Invalid, "unexpected json patch operation"),
    ("move into own child", [{"op": "move", "from": "/spec", "path": "/spec/inner"}], Invalid, "own child"),
    ("too many operations", [{"op": "test", "path": "", "value": None}] * 10001, RequestEntityTooLarge,
     "maximum operations"),
]


@pytest.mark.parametrize("ops,exc,text", [c[1:] for c in JSON_PATCH_ERRORS], ids=[c[0] for c in JSON_PATCH_ERRORS])
def test_json_patch_errors(ops, exc, text):
    before = copy.deepcopy(DOC)
    with pytest.raises(exc) as info:
        P.json_patch(DOC, ops)
    assert text in info.value.message
    assert DOC == before


def test_failed_json_patch_status_is_422():
    with pytest.raises(Invalid) as info:
        P.json_patch(DOC, [{"op": "test", "path": "/metadata/name", "value": "y"}])
    status = info.value.to_status()
    assert (status["code"], status["reason"]) == (422, "Invalid")


# --------------------------------------------------------------------------- RFC 7386

MERGE_PATCH = [  # the examples of RFC 7386 appendix A, on object documents
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ({"a": "foo"}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ({"spec": {"replicas": 1, "x": 2}}, {"spec": {"replicas": 5}}, {"spec": {"replicas": 5, "x": 2}}),
]


@pytest.mark.parametrize("doc,body,expected", MERGE_PATCH)
def test_merge_patch(doc, body, expected):
    assert apply_untouched(P.merge_patch, doc, body) == expected


def test_merge_patch_must_be_an_object():
    with pytest.raises(BadRequest):
        P.merge_patch({"a": 1}, [1])


# --------------------------------------------------------------------------- strategic merge

C = "spec.template.spec.containers"

OBSERVED_APPLY = json.loads(
    '{"metadata":{"labels":{"tier":null}},"spec":{"strategy":{"$retainKeys":["type"],"rollingUpdate":null,'
    '"type":"Recreate"},"template":{"spec":{"$setElementOrder/containers":[{"name":"a"}],'
    '"$setElementOrder/volumes":[{"name":"v1"}],"containers":[{"args":["z"],"name":"a"},'
    '{"$patch":"delete","name":"b"}],"volumes":[{"$retainKeys":["configMap","name"],'
    '"configMap":{"name":"cm1"},"emptyDir":null,"name":"v1"}]}}}}')

OBSERVED_ENV = {"spec": {"template": {"spec": {"containers": [
    {"name": "a", "env": [{"$patch": "delete", "name": "B"}], "$setElementOrder/env": [{"name": "A"}]}]}}}}


def containers(*body: dict[str, Any], order: list[str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": list(body)}
    if order is not None:
        spec["$setElementOrder/containers"] = [{"name": n} for n in order]
    return {"spec": {"template": {"spec": spec}}}


def container_a(**fields: Any) -> dict[str, Any]:
    return containers({"name": "a", **fields})


SMP = [
    ("kubectl apply body", OBSERVED_APPLY, {
        "metadata.labels": {"app": "web"},
        "spec.strategy": {"type": "Recreate"},
        f"{C}.0.args": ["z"],
        f"{C}.0.image": "nginx:1.27",
        f"{C}.0.env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
        "spec.template.spec.volumes": [{"name": "v1", "configMap": {"name": "cm1"}}],
        "spec.template.spec.containers.__len__": 1,
    }),
    ("kubectl env deletion body", OBSERVED_ENV, {f"{C}.0.env": [{"name": "A", "value": "1"}]}),
    ("null deletes a map key", {"metadata": {"labels": {"tier": None, "nope": None}}},
     {"metadata.labels": {"app": "web"}}),
    ("scalar replaced", {"spec": {"replicas": 5}}, {"spec.replicas": 5}),
    ("env merged by name: update and add",
     container_a(env=[{"name": "B", "value": "20"}, {"name": "C", "value": "3"}]),
     {f"{C}.0.env": [{"name": "A", "value": "1"}, {"name": "B", "value": "20"}, {"name": "C", "value": "3"}]}),
    ("env item field deleted with null", container_a(env=[{"name": "A", "value": None, "valueFrom": {
        "fieldRef": {"fieldPath": "metadata.name"}}}]),
     {f"{C}.0.env.0": {"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}}),
    ("port without protocol merges into the TCP port", container_a(ports=[{"containerPort": 80, "name": "http"}]),
     {f"{C}.0.ports": [{"containerPort": 80, "protocol": "TCP", "name": "http"},
                       {"containerPort": 53, "protocol": "UDP", "name": "dns"}]}),
    ("same port, other protocol is another item",
     container_a(ports=[{"containerPort": 53, "protocol": "TCP", "name": "dns-tcp"}]),
     {f"{C}.0.ports": [{"containerPort": 53, "protocol": "TCP", "name": "dns-tcp"},
                       {"containerPort": 80, "protocol": "TCP"},
                       {"containerPort": 53, "protocol": "UDP", "name": "dns"}]}),
    ("port named by number alone reaches its only item (kubectl sends the merge key only)",
     container_a(ports=[{"containerPort": 53, "name": "domain"}]),
     {f"{C}.0.ports.1": {"containerPort": 53, "protocol": "UDP", "name": "domain"}}),
    ("delete one port by containerPort+protocol",
     container_a(ports=[{"containerPort": 53, "protocol": "UDP", "$patch": "delete"}]),
     {f"{C}.0.ports": [{"containerPort": 80, "protocol": "TCP"}]}),
    ("delete a TCP port that does not exist leaves UDP",
     container_a(ports=[{"containerPort": 53, "protocol": "TCP", "$patch": "delete"}]),
     {f"{C}.0.ports.__len__": 2}),
    # Without $setElementOrder, items the patch names come first, in the patch's order.
    ("new container without an order goes first", containers({"name": "c", "image": "redis"}),
     {f"{C}.0": {"name": "c", "image": "redis"}, f"{C}.1.name": "a", f"{C}.2.name": "b"}),
    ("patch order without $setElementOrder", container_a(env=[{"name": "C", "value": "3"}, {"name": "A", "value": "9"}]),
     {f"{C}.0.env": [{"name": "C", "value": "3"}, {"name": "A", "value": "9"}, {"name": "B", "value": "2"}]}),
    ("setElementOrder reorders", containers(order=["b", "a"]),
     {f"{C}.0.name": "b", f"{C}.1.name": "a"}),
    ("setElementOrder with a new item, server-only item after it",
     containers({"name": "c", "image": "redis"}, order=["a", "c"]),
     {f"{C}.0.name": "a", f"{C}.1.name": "c", f"{C}.2.name": "b"}),
    ("setElementOrder: a server-only item keeps its place before a stored item it preceded",
     containers({"name": "c", "image": "redis"}, order=["c", "b"]),
     {f"{C}.0.name": "c", f"{C}.1.name": "a", f"{C}.2.name": "b"}),
    ("volumes with $retainKeys switch source",
     {"spec": {"template": {"spec": {"volumes": [
         {"name": "v1", "hostPath": {"path": "/srv"}, "$retainKeys": ["hostPath", "name"]}]}}}},
     {"spec.template.spec.volumes": [{"name": "v1", "hostPath": {"path": "/srv"}}]}),
    ("strategy $retainKeys drops rollingUpdate", {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}},
     {"spec.strategy": {"type": "Recreate"}}),
    ("finalizers merged as a set", {"metadata": {"finalizers": ["example.com/b", "example.com/c"]}},
     {"metadata.finalizers": ["example.com/a", "example.com/b", "example.com/c"]}),
    ("finalizers $deleteFromPrimitiveList", {"metadata": {"$deleteFromPrimitiveList/finalizers": ["example.com/a"]}},
     {"metadata.finalizers": ["example.com/b"]}),
    ("finalizers delete and order", {"metadata": {"$deleteFromPrimitiveList/finalizers": ["example.com/a"],
                                                  "finalizers": ["example.com/z"],
                                                  "$setElementOrder/finalizers": ["example.com/z", "example.com/b"]}},
     {"metadata.finalizers": ["example.com/z", "example.com/b"]}),
    ("$patch replace on a map", {"spec": {"template": {"metadata": {"labels": {"$patch": "replace", "x": "y"}}}}},
     {"spec.template.metadata.labels": {"x": "y"}}),
    ("$patch delete on a map empties it", {"spec": {"strategy": {"$patch": "delete"}}}, {"spec.strategy": {}}),
    ("$patch merge on a map is a merge", {"spec": {"selector": {"$patch": "merge", "matchLabels": {"b": "2"}}}},
     {"spec.selector": {"matchLabels": {"app": "web", "b": "2"}}}),
    ("$patch replace in a keyed list", containers({"$patch": "replace"}, {"name": "z", "image": "busybox"}),
     {C: [{"name": "z", "image": "busybox"}]}),
    ("$patch delete on a list item", containers({"name": "a", "$patch": "delete"}), {f"{C}.0.name": "b",
                                                                                     f"{C}.__len__": 1}),
    ("atomic list replaced whole", {"spec": {"template": {"spec": {"tolerations": [{"key": "other"}]}}}},
     {"spec.template.spec.tolerations": [{"key": "other"}]}),
    ("primitive list without merge strategy replaced", container_a(args=["only"]), {f"{C}.0.args": ["only"]}),
    ("new subtree loses its nulls",
     {"spec": {"template": {"spec": {"securityContext": {"runAsUser": 1, "fsGroup": None}}}}},
     {"spec.template.spec.securityContext": {"runAsUser": 1}}),
    ("new subtree loses its directives",
     {"spec": {"template": {"spec": {"securityContext": {"runAsUser": 1, "$patch": "merge"}}}}},
     {"spec.template.spec.securityContext": {"runAsUser": 1}}),
    ("new keyed list loses delete items", container_a(volumeDevices=[
        {"devicePath": "/dev/x", "name": "d"}, {"devicePath": "/dev/y", "$patch": "delete"}]),
     {f"{C}.0.volumeDevices": [{"devicePath": "/dev/x", "name": "d"}]}),
    ("type change replaces", {"spec": {"selector": "oops"}}, {"spec.selector": "oops"}),
    ("$setElementOrder alone leaves an atomic list alone",
     {"spec": {"template": {"spec": {"$setElementOrder/tolerations": [{"key": "z"}]}}}},
     {"spec.template.spec.tolerations": [{"key": "k", "operator": "Exists"}]}),
]


def check(obj: dict[str, Any], expectations: dict[str, Any]) -> None:
    for path, want in expectations.items():
        if path.endswith(".__len__"):
            assert len(at(obj, path[: -len(".__len__")])) == want, path
        elif ".__contains__" in path:
            where, key = path.split(".__contains__")
            assert (key in at(obj, where)) == want, path
        else:
            assert at(obj, path) == want, path


@pytest.mark.parametrize("body,expectations", [c[1:] for c in SMP], ids=[c[0] for c in SMP])
def test_strategic_merge_patch(body, expectations):
    out = apply_untouched(P.strategic_merge_patch, make_deployment(), body, DEPLOY)
    check(out, expectations)


def test_untouched_fields_survive_and_result_is_independent():
    doc = make_deployment()
    out = P.strategic_merge_patch(doc, {"spec": {"replicas": 9}}, DEPLOY)
    assert {**out, "spec": {**out["spec"], "replicas": 2}} == doc
    out["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "Z"})
    assert len(doc["spec"]["template"]["spec"]["containers"][0]["env"]) == 2


def test_replace_strategy_map_is_replaced_whole():
    pdb = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "p"},
           "spec": {"minAvailable": 1, "selector": {"matchLabels": {"a": "1"}, "matchExpressions": []}}}
    meta = merge_info("policy", "v1", "PodDisruptionBudget")
    out = P.strategic_merge_patch(pdb, {"spec": {"selector": {"matchLabels": {"b": "2"}}}}, meta)
    assert out["spec"]["selector"] == {"matchLabels": {"b": "2"}}


def test_status_conditions_merge_by_type():
    pod = {"status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "Scheduled", "status": "True"}]}}
    out = P.strategic_merge_patch(pod, {"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
                                  merge_info("", "v1", "Pod"))
    assert out["status"]["conditions"] == [{"type": "Ready", "status": "True"}, {"type": "Scheduled", "status": "True"}]


def test_unknown_kind_falls_back_to_merge_patch_semantics():
    doc = {"spec": {"items": [{"name": "a", "v": 1}], "m": {"x": 1, "y": 2}}}
    body = {"spec": {"items": [{"name": "b"}], "m": {"y": None, "z": 3}}}
    for meta in (None, merge_info("example.com", "v1", "Widget")):
        out = apply_untouched(P.strategic_merge_patch, doc, body, meta)
        assert out == {"spec": {"items": [{"name": "b"}], "m": {"x": 1, "z": 3}}}


SMP_ERRORS = [
    ("patch not an object", [1], BadRequest, "must be a JSON object"),
    ("list item without merge key", container_a(env=[{"value": "x"}]), BadRequest,
     "does not contain declared merge key: name"),
    ("keyed list item not a map", containers("a"), BadRequest, "is not a map"),
    ("keyed list item not a map after a replace element", containers({"$patch": "replace"}, "a"), BadRequest,
     "is not a map"),
    ("unknown $patch", {"spec": {"strategy": {"$patch": "shuffle"}}}, BadRequest, "Unknown patch type: shuffle"),
    ("$retainKeys not a list", {"spec": {"strategy": {"$retainKeys": "type"}}}, BadRequest, "$retainKeys"),
    ("$retainKeys contradicts the patch", {"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}},
     BadRequest, "invalid patch format of retainKeys"),
    ("$setElementOrder not a list", {"spec": {"template": {"spec": {"$setElementOrder/containers": "a"}}}},
     BadRequest, "must be a list"),
    ("$setElementOrder entry without key", {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"image": "x"}]}}}}, BadRequest, "merge key name"),
    ("$deleteFromPrimitiveList not a list", {"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}},
     BadRequest, "must be a list"),
    ("map in a primitive merge list", {"metadata": {"finalizers": [{"a": 1}]}}, BadRequest, "primitive"),
]


@pytest.mark.parametrize("body,exc,text", [c[1:] for c in SMP_ERRORS], ids=[c[0] for c in SMP_ERRORS])
def test_strategic_merge_patch_errors(body, exc, text):
    doc = make_deployment()
    before = copy.deepcopy(doc)
    with pytest.raises(exc) as info:
        P.strategic_merge_patch(doc, body, DEPLOY)
    assert text in info.value.message
    assert doc == before


# --------------------------------------------------------------------------- computing patches

def applied_manifest() -> dict[str, Any]:
    """What the user applied last time (the last-applied annotation's content)."""
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web", "tier": "fe"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                "containers": [{"name": "a", "image": "nginx", "args": ["x"],
                                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                                "ports": [{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}]},
                               {"name": "b", "image": "busybox"}],
                "volumes": [{"name": "v1", "emptyDir": {}}]}},
        },
    }


def server_defaults(obj: dict[str, Any]) -> dict[str, Any]:
    """Fill what the API server defaults (idempotent: set values are kept)."""
    spec = obj["spec"]
    spec.setdefault("progressDeadlineSeconds", 600)
    if spec["strategy"].get("type") == "RollingUpdate":
        spec["strategy"].setdefault("rollingUpdate", {"maxSurge": "25%", "maxUnavailable": "25%"})
    pod = spec["template"]["spec"]
    pod.setdefault("restartPolicy", "Always")
    pod.setdefault("dnsPolicy", "ClusterFirst")
    for c in pod["containers"]:
        c.setdefault("imagePullPolicy", "IfNotPresent")
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        for p in c.get("ports", []):
            p.setdefault("protocol", "TCP")
    return obj


def live(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest as the server holds it: defaults, server metadata and status added."""
    obj = server_defaults(copy.deepcopy(manifest))
    obj["metadata"].update(uid="u-1", resourceVersion="12", generation=3, namespace="default")
    obj["metadata"].setdefault("finalizers", []).append("example.com/server")
    obj["status"] = {"replicas": 2, "observedGeneration": 3}
    return obj


def modify(change) -> dict[str, Any]:
    m = applied_manifest()
    change(m)
    return m


def pod_spec(m: dict[str, Any]) -> dict[str, Any]:
    return m["spec"]["template"]["spec"]


def test_three_way_patch_reproduces_the_observed_kubectl_body():
    def change(m):
        del m["metadata"]["labels"]["tier"]
        m["spec"]["strategy"] = {"type": "Recreate"}
        spec = pod_spec(m)
        spec["containers"] = [dict(spec["containers"][0], args=["z"])]
        spec["volumes"] = [{"name": "v1", "configMap": {"name": "cm1"}}]

    last = applied_manifest()
    current = live(last)
    current["spec"]["strategy"]["rollingUpdate"] = {"maxSurge": 1, "maxUnavailable": "25%"}
    body = P.create_three_way_merge_patch(last, modify(change), current, DEPLOY)
    assert body == OBSERVED_APPLY


THREE_WAY = [
    ("nothing changed", lambda m: None),
    ("label removed", lambda m: m["metadata"]["labels"].pop("tier")),
    ("label added", lambda m: m["metadata"]["labels"].update(env="prod")),
    ("image changed", lambda m: pod_spec(m)["containers"][0].update(image="nginx:2")),
    ("container removed", lambda m: pod_spec(m)["containers"].pop(1)),
    ("container added first", lambda m: pod_spec(m)["containers"].insert(0, {"name": "z", "image": "redis"})),
    ("containers reordered", lambda m: pod_spec(m)["containers"].reverse()),
    ("env var removed and another added",
     lambda m: pod_spec(m)["containers"][0].update(env=[{"name": "A", "value": "1"}, {"name": "C", "value": "3"}])),
    ("udp port renamed and tcp twin added",
     lambda m: pod_spec(m)["containers"][0].update(ports=[
         {"containerPort": 80}, {"containerPort": 53, "protocol": "UDP", "name": "dns"},
         {"containerPort": 53, "protocol": "TCP", "name": "dns-tcp"}])),
    ("udp port removed", lambda m: pod_spec(m)["containers"][0].update(ports=[{"containerPort": 80}])),
    ("volume source switched", lambda m: pod_spec(m).update(volumes=[{"name": "v1", "hostPath": {"path": "/x"}}])),
    ("strategy switched to Recreate", lambda m: m["spec"].update(strategy={"type": "Recreate"})),
    ("atomic args changed", lambda m: pod_spec(m)["containers"][0].update(args=["y", "x"])),
    ("finalizer applied", lambda m: m["metadata"].update(finalizers=["example.com/mine"])),
    ("replicas dropped from the manifest", lambda m: m["spec"].pop("replicas")),
]


def expected_after(modified: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """What apply must leave: the manifest, plus what only the server wrote (kept as it was)."""
    return live(modified)


@pytest.mark.parametrize("change", [c[1] for c in THREE_WAY], ids=[c[0] for c in THREE_WAY])
def test_three_way_patch_applied_to_live_object(change):
    last = applied_manifest()
    current = live(last)
    modified = modify(change)
    before = copy.deepcopy((last, modified, current))
    body = P.create_three_way_merge_patch(last, modified, current, DEPLOY)
    assert (last, modified, current) == before
    result = P.strategic_merge_patch(current, json.loads(json.dumps(body)), DEPLOY)
    # The server defaults what the patch added (a new container), as it does after any write.
    assert server_defaults(result) == expected_after(modified, current)
    if modified == last:
        assert body == {}, "an unchanged manifest must give an empty patch (kubectl: unchanged)"


def test_three_way_keeps_fields_others_wrote_and_drops_only_applied_ones():
    last = {"metadata": {"labels": {"a": "1"}}, "spec": {"x": 1}}
    current = {"metadata": {"labels": {"a": "1", "other": "2"}}, "spec": {"x": 1, "y": 2}}
    modified = {"metadata": {"labels": {}}, "spec": {"x": 1}}
    body = P.create_three_way_merge_patch(last, modified, current)
    assert body == {"metadata": {"labels": {"a": None}}}
    assert P.strategic_merge_patch(current, body) == {"metadata": {"labels": {"other": "2"}},
                                                      "spec": {"x": 1, "y": 2}}


def test_three_way_without_last_applied_only_adds_and_changes():
    current = live(applied_manifest())
    modified = modify(lambda m: m["metadata"]["labels"].pop("tier"))
    body = P.create_three_way_merge_patch(None, modified, current, DEPLOY)
    assert body == {}


TWO_WAY = [
    ("labels", {"metadata": {"labels": {"a": "1", "b": "2"}}}, {"metadata": {"labels": {"a": "1", "c": "3"}}}),
    ("keyed list edits", applied_manifest(), modify(lambda m: (
        pod_spec(m)["containers"].reverse(),
        pod_spec(m)["containers"][1]["env"].pop(0),
        pod_spec(m)["containers"][0].update(image="x"),
        pod_spec(m).update(volumes=[{"name": "v1", "configMap": {"name": "c"}}, {"name": "v2", "emptyDir": {}}])))),
    ("finalizers", {"metadata": {"finalizers": ["a", "b", "c"]}}, {"metadata": {"finalizers": ["c", "d", "a"]}}),
    ("strategy", applied_manifest(), modify(lambda m: m["spec"].update(strategy={"type": "Recreate"}))),
    ("field emptied", {"spec": {"a": {"b": 1}, "c": [1]}}, {"spec": {}}),
]


@pytest.mark.parametrize("original,modified", [c[1:] for c in TWO_WAY], ids=[c[0] for c in TWO_WAY])
def test_two_way_patch_round_trips(original, modified):
    body = P.create_two_way_merge_patch(original, modified, DEPLOY)
    assert P.strategic_merge_patch(original, body, DEPLOY) == modified
    assert P.create_two_way_merge_patch(modified, modified, DEPLOY) == {}


def test_two_way_patch_shape_uses_directives():
    original = make_deployment()
    modified = copy.deepcopy(original)
    modified["metadata"]["finalizers"] = ["example.com/b"]
    pod_spec(modified)["containers"].pop(1)
    pod_spec(modified)["volumes"] = [{"name": "v1", "hostPath": {"path": "/x"}}]
    body = P.create_two_way_merge_patch(original, modified, DEPLOY)
    assert body == {
        "metadata": {"$deleteFromPrimitiveList/finalizers": ["example.com/a"],
                     "$setElementOrder/finalizers": ["example.com/b"]},
        "spec": {"template": {"spec": {
            "containers": [{"name": "b", "$patch": "delete"}],
            "$setElementOrder/containers": [{"name": "a"}],
            "volumes": [{"name": "v1", "hostPath": {"path": "/x"}, "emptyDir": None,
                         "$retainKeys": ["hostPath", "name"]}],
            "$setElementOrder/volumes": [{"name": "v1"}]}}},
    }
