"""api.schema: structural validation, unknown fields, patch metadata and the validator cache."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from api import schema
from api.errors import Cause


def make_pod(name: str = "web-0", **spec: Any) -> dict[str, Any]:
    """A Pod as the server stores it: client fields plus server-written metadata and status."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": "2f0c3c1e-7d7c-4a1e-9a55-0b3c4d5e6f70",
            "resourceVersion": "42",
            "generation": 1,
            "creationTimestamp": "2025-01-02T03:04:05Z",
            "labels": {"app": "web"},
            "annotations": {"note": "x"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9",
                                 "uid": "0b3c4d5e-0000-4a1e-9a55-2f0c3c1e7d7c", "controller": True,
                                 "blockOwnerDeletion": True}],
            "managedFields": [{"manager": "kubectl", "operation": "Update", "apiVersion": "v1",
                               "time": "2025-01-02T03:04:05Z", "fieldsType": "FieldsV1",
                               "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}}}],
        },
        "spec": {
            "containers": [{
                "name": "nginx",
                "image": "nginx:1.27",
                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                "env": [{"name": "A", "value": "1"}],
                "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": 0.1}},
                "livenessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 10},
            }],
            "restartPolicy": "Always",
            "nodeName": "node-1",
            **spec,
        },
        "status": {
            "phase": "Running",
            "podIP": "10.0.0.5",
            "podIPs": [{"ip": "10.0.0.5"}],
            "startTime": "2025-01-02T03:04:06Z",
            "conditions": [{"type": "Ready", "status": "True", "lastProbeTime": None,
                            "lastTransitionTime": "2025-01-02T03:04:07Z"}],
            "containerStatuses": [{"name": "nginx", "ready": True, "restartCount": 0, "image": "nginx:1.27",
                                   "imageID": "sha256:abc", "started": True,
                                   "state": {"running": {"startedAt": "2025-01-02T03:04:07Z"}}}],
        },
    }
    return pod


def make_deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}},
        },
    }


def edited(obj: dict[str, Any], change) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    change(obj)
    return obj


# --------------------------------------------------------------------------- validate

VALID = [
    ("pod with server fields", make_pod()),
    ("deployment", make_deployment()),
    ("explicit nulls for optional fields",
     edited(make_deployment(), lambda d: d["spec"]["strategy"]["rollingUpdate"].update(maxSurge=None))),
    ("configmap", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}}),
    ("service", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                 "spec": {"ports": [{"port": 80, "targetPort": 8080}], "selector": {"app": "web"}}}),
    ("lease with micro time", {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "n"},
                               "spec": {"holderIdentity": "n", "renewTime": "2025-01-02T03:04:05.123456Z"}}),
    ("unknown fields are not errors", edited(make_pod(), lambda p: p["spec"].update(bogus=1))),
    # Required in the schema only because Go always writes them; absent means zero to the server.
    ("status without replica count", {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "r"},
                                      "spec": {"selector": {"matchLabels": {"a": "b"}}},
                                      "status": {"observedGeneration": 1}}),
    ("endpointslice without endpoints", {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                                         "metadata": {"name": "e"}, "addressType": "IPv4"}),
]


@pytest.mark.parametrize("obj", [c[1] for c in VALID], ids=[c[0] for c in VALID])
def test_valid_objects_pass(obj):
    before = copy.deepcopy(obj)
    assert schema.validate(obj) == []
    assert obj == before


INVALID = [
    ("pod without containers", edited(make_pod(), lambda p: p["spec"].pop("containers")),
     Cause("FieldValueRequired", "Required value", "spec.containers")),
    ("container without name", edited(make_pod(), lambda p: p["spec"]["containers"][0].pop("name")),
     Cause("FieldValueRequired", "Required value", "spec.containers[0].name")),
    ("port number as text",
     edited(make_pod(), lambda p: p["spec"]["containers"][0]["ports"][0].update(containerPort="eighty")),
     Cause("FieldValueTypeInvalid", 'Invalid value: "eighty": must be of type integer, got string',
           "spec.containers[0].ports[0].containerPort")),
    ("replicas as boolean", edited(make_deployment(), lambda d: d["spec"].update(replicas=True)),
     Cause("FieldValueTypeInvalid", "Invalid value: true: must be of type integer, got boolean", "spec.replicas")),
    ("label value not a string", edited(make_pod(), lambda p: p["metadata"]["labels"].update(app=3)),
     Cause("FieldValueTypeInvalid", "Invalid value: 3: must be of type string, got integer",
           "metadata.labels.app")),
    ("containers not a list", edited(make_pod(), lambda p: p["spec"].update(containers={"name": "x"})),
     Cause("FieldValueTypeInvalid", 'Invalid value: "{\\"name\\":\\"x\\"}": must be of type array, got object',
           "spec.containers")),
    ("bad restartPolicy", edited(make_pod(), lambda p: p["spec"].update(restartPolicy="Sometimes")),
     Cause("FieldValueNotSupported",
           'Unsupported value: "Sometimes": supported values: "Always", "Never", "OnFailure"', "spec.restartPolicy")),
    ("bad port protocol",
     edited(make_pod(), lambda p: p["spec"]["containers"][0]["ports"][0].update(protocol="tcp")),
     Cause("FieldValueNotSupported", 'Unsupported value: "tcp": supported values: "SCTP", "TCP", "UDP"',
           "spec.containers[0].ports[0].protocol")),
    ("creationTimestamp not RFC 3339",
     edited(make_pod(), lambda p: p["metadata"].update(creationTimestamp="yesterday")),
     Cause("FieldValueInvalid", 'Invalid value: "yesterday": must be a date-time (RFC 3339)',
           "metadata.creationTimestamp")),
]


@pytest.mark.parametrize("obj,cause", [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_objects_name_field_and_reason(obj, cause):
    assert schema.validate(obj) == [cause]


def test_apiversion_checked_against_the_kind_of_the_url():
    pod = make_pod()
    assert schema.validate(pod, ("", "v1", "Pod")) == []
    wrong = dict(pod, apiVersion="v2")
    assert schema.validate(wrong, ("", "v1", "Pod")) == [
        Cause("FieldValueNotSupported", 'Unsupported value: "v2": supported values: "v1"', "apiVersion")]


def test_missing_kind_and_apiversion_are_required():
    assert schema.validate({"metadata": {"name": "x"}}) == [
        Cause("FieldValueRequired", "Required value", "apiVersion"),
        Cause("FieldValueRequired", "Required value", "kind")]


def test_kinds_without_schema_pass():
    assert schema.validate({"apiVersion": "example.com/v1", "kind": "Widget", "spec": 3}) == []
    assert schema.unknown_fields({"apiVersion": "example.com/v1", "kind": "Widget", "x": 1}) == []


# --------------------------------------------------------------------------- unknown fields

UNKNOWN = [
    ("none in a full pod", make_pod(), []),
    ("top level", edited(make_pod(), lambda p: p.update(extra=1)), ["extra"]),
    ("spec", edited(make_pod(), lambda p: p["spec"].update(foo="x")), ["spec.foo"]),
    ("inside a list item", edited(make_pod(), lambda p: p["spec"]["containers"][0].update(bogus=True)),
     ["spec.containers[0].bogus"]),
    ("deep and several",
     edited(make_deployment(), lambda d: (d["metadata"].update(colour="red"),
                                          d["spec"]["template"]["spec"]["containers"][0].update(imagePull="x"),
                                          d["spec"]["strategy"]["rollingUpdate"].update(surge=1))),
     ["metadata.colour", "spec.strategy.rollingUpdate.surge", "spec.template.spec.containers[0].imagePull"]),
    ("label and annotation keys are free", edited(make_pod(), lambda p: p["metadata"]["labels"].update(anything="1")),
     []),
    ("fieldsV1 and configmap data are free-form",
     {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "managedFields": [
         {"manager": "m", "fieldsV1": {"f:data": {"f:weird": {}}}}]}, "data": {"whatever": "v"}}, []),
    ("status", edited(make_pod(), lambda p: p["status"]["containerStatuses"][0]["state"]["running"].update(pid=1)),
     ["status.containerStatuses[0].state.running.pid"]),
]


@pytest.mark.parametrize("obj,paths", [c[1:] for c in UNKNOWN], ids=[c[0] for c in UNKNOWN])
def test_unknown_fields(obj, paths):
    assert sorted(schema.unknown_fields(obj)) == sorted(paths)


@pytest.mark.parametrize("obj,paths", [c[1:] for c in UNKNOWN], ids=[c[0] for c in UNKNOWN])
def test_prune_drops_exactly_the_unknown_fields(obj, paths):
    pruned = copy.deepcopy(obj)
    assert sorted(schema.check(pruned, prune=True)[1]) == sorted(paths)
    assert schema.unknown_fields(pruned) == []
    if not paths:
        assert pruned == obj


def test_prune_unknown_reads_partial_objects():
    partial = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "colour": "red"},
               "spec": {"template": {"spec": {"containers": [{"name": "c", "imagePull": "x"}]}}}}
    assert schema.check(copy.deepcopy(partial))[0]          # the full check stops at a required field
    assert sorted(schema.prune_unknown(partial)) == ["metadata.colour", "spec.template.spec.containers[0].imagePull"]
    assert partial["metadata"] == {"name": "d"} and partial["spec"]["template"]["spec"]["containers"] == [{"name": "c"}]


def test_prune_leaves_an_invalid_object_alone():
    pod = edited(make_pod(), lambda p: (p["spec"].update(foo=1), p["spec"].update(restartPolicy=3)))
    causes, _ = schema.check(pod, prune=True)
    assert causes and pod["spec"]["foo"] == 1


def test_strict_decoding_error_wording():
    pod = edited(make_pod(), lambda p: (p["spec"].update(foo=1), p["spec"]["containers"][0].update(bar=2)))
    assert schema.strict_decoding_error(schema.unknown_fields(pod)) == (
        'strict decoding error: unknown field "spec.containers[0].bar", unknown field "spec.foo"')


# --------------------------------------------------------------------------- definitions

def test_definition_names_and_raw_definitions():
    assert schema.definition_name("", "v1", "Pod") == "io.k8s.api.core.v1.Pod"
    assert schema.definition_name("apps", "v1", "Deployment") == "io.k8s.api.apps.v1.Deployment"
    assert schema.definition_name("autoscaling", "v1", "Scale") == "io.k8s.api.autoscaling.v1.Scale"
    assert schema.definition_name("", "v1", "Nope") is None
    defs = schema.definitions()
    assert defs["io.k8s.api.core.v1.Pod"]["properties"]["spec"]["$ref"].endswith("io.k8s.api.core.v1.PodSpec")
    assert "additionalProperties" not in defs["io.k8s.api.core.v1.PodSpec"]
    assert schema.definitions(strict=True)["io.k8s.api.core.v1.PodSpec"]["additionalProperties"] is False


# --------------------------------------------------------------------------- patch metadata

POD_SPEC = ("spec", "template", "spec")
MERGE_INFO = [
    (POD_SPEC + ("containers",), {"merge"}, "name", ("name",)),
    (POD_SPEC + ("initContainers",), {"merge"}, "name", ("name",)),
    (POD_SPEC + ("containers", 0, "ports"), {"merge"}, "containerPort", ("containerPort", "protocol")),
    (POD_SPEC + ("containers", 0, "env"), {"merge"}, "name", ("name",)),
    (POD_SPEC + ("containers", 0, "volumeMounts"), {"merge"}, "mountPath", ("mountPath",)),
    (POD_SPEC + ("volumes",), {"merge", "retainKeys"}, "name", ("name",)),
    (POD_SPEC + ("tolerations",), set(), None, ()),
    (POD_SPEC + ("containers", 0, "args"), set(), None, ()),
    (("metadata", "finalizers"), {"merge"}, None, ()),
    (("metadata", "ownerReferences"), {"merge"}, "uid", ("uid",)),
    (("spec", "strategy"), {"retainKeys"}, None, ()),
    (("status", "conditions"), {"merge"}, "type", ("type",)),
]


@pytest.mark.parametrize("path,strategies,merge_key,map_keys", MERGE_INFO,
                         ids=[".".join(map(str, m[0])) for m in MERGE_INFO])
def test_merge_info_from_schema(path, strategies, merge_key, map_keys):
    meta = schema.merge_info("apps", "v1", "Deployment").at(path)
    assert meta.known
    assert set(meta.strategies) == strategies
    assert meta.merge_key == merge_key
    assert meta.list_map_keys == map_keys


def test_retain_keys_applies_to_maps():
    dep = schema.merge_info("apps", "v1", "Deployment")
    assert dep.at(("spec", "strategy")).retain_keys
    assert dep.at(POD_SPEC + ("volumes", 0)).retain_keys
    assert not dep.at(POD_SPEC + ("volumes",)).retain_keys
    assert not dep.at(POD_SPEC + ("containers", 0)).retain_keys


def test_other_kinds_and_unknown_places():
    svc = schema.merge_info("", "v1", "Service").at(("spec", "ports"))
    assert svc.merge_key == "port" and svc.list_map_keys == ("port", "protocol")
    assert schema.merge_info("", "v1", "Node").at(("status", "addresses")).merge_key == "type"
    assert schema.merge_info("", "v1", "ServiceAccount").at(("secrets",)).merge_key == "name"
    assert not schema.merge_info("example.com", "v1", "Widget").known
    unknown = schema.merge_info("", "v1", "Pod").at(("spec", "nope", "deeper"))
    assert not unknown.known and not unknown.merges


# --------------------------------------------------------------------------- compiled checkers

def test_check_gives_errors_and_unknown_fields_in_one_pass():
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "bogus": 1},
           "spec": {"containers": [{"name": "c", "image": "i", "extra": True}], "nodeName": 7}}
    causes, unknown = schema.check(pod)
    assert causes == [Cause("FieldValueTypeInvalid", "Invalid value: 7: must be of type string, got integer",
                            "spec.nodeName")]
    assert unknown == ["metadata.bogus", "spec.containers[0].extra"]
    del pod["spec"]["nodeName"]
    assert schema.check(pod) == ([], ["metadata.bogus", "spec.containers[0].extra"])
    assert schema.unknown_fields(pod) == ["metadata.bogus", "spec.containers[0].extra"]


def test_recursive_definitions_compile():
    # JSONSchemaProps refers to itself; CRD validation schemas nest it many levels deep.
    name = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps"
    schema.warm([name])
    props = {"type": "object", "properties": {"a": {"type": "object", "properties": {"b": {"type": 5}}}}}
    cause = schema._cause(_first_error(name, props))
    assert cause.field == "properties.a.properties.b.type" and "must be of type string" in cause.message


def _first_error(name, value):
    try:
        schema._checker(name)(value, None, [])
    except schema._Invalid as e:
        return e
    raise AssertionError("no error")


def test_date_time_format():
    ev = {"apiVersion": "v1", "kind": "Namespace",
          "metadata": {"name": "n", "creationTimestamp": "2026-02-30T00:00:00Z"}}
    (cause,) = schema.validate(ev)
    assert cause.field == "metadata.creationTimestamp" and "RFC 3339" in cause.message
    ev["metadata"]["creationTimestamp"] = "2024-02-29T23:59:59.5+01:00"
    assert schema.validate(ev) == []


def test_every_served_kind_compiles_and_checks():
    from api.registry import RESOURCES

    for r in RESOURCES:
        assert schema.has_schema(r.group, r.version, r.kind), r.kind
        schema.warm([(r.group, r.version, r.kind)])
        bare = {"apiVersion": r.api_version, "kind": r.kind, "metadata": {"name": "x"}}
        # A bare object may lack a top-level required field (Event's involvedObject), nothing else.
        missing = schema.validate(bare)
        for cause in missing:
            assert cause.type == "FieldValueRequired" and "." not in cause.field, (r.kind, cause)
        wrong = dict(bare, metadata={"name": 5})
        want = missing or [Cause("FieldValueTypeInvalid", "Invalid value: 5: must be of type string, got integer",
                                 "metadata.name")]
        assert schema.validate(wrong) == want, r.kind


def test_warm_then_validate():
    schema.warm([("", "v1", "Namespace"), ("example.com", "v1", "Widget")])
    assert "io.k8s.api.core.v1.Namespace" in schema._checkers
    assert schema.validate({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}}) == []
