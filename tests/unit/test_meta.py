"""Object metadata helpers: time stamps, uids, generated names, keys, owners, copies, generation."""

import re
from datetime import UTC, datetime
from fractions import Fraction

import pytest

from api import meta


def make_obj(kind="Deployment", name="web", ns="default", uid="u-1", **extra):
    md = {"name": name, "uid": uid}
    if ns:
        md["namespace"] = ns
    obj = {"apiVersion": "apps/v1", "kind": kind, "metadata": md, "spec": {"replicas": 1}}
    obj.update(extra)
    return obj


def test_now_rfc3339_is_second_precision_utc():
    s = meta.now_rfc3339()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", s)
    assert abs((meta.parse_rfc3339(s) - datetime.now(UTC)).total_seconds()) < 5


def test_rfc3339_round_trip():
    t = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    assert meta.to_rfc3339(t) == "2024-05-06T07:08:09Z"
    assert meta.parse_rfc3339("2024-05-06T07:08:09Z") == t
    assert meta.parse_rfc3339("2024-05-06T07:08:09.5Z").microsecond == 500000


def test_new_uid_is_a_unique_uuid():
    a, b = meta.new_uid(), meta.new_uid()
    assert a != b
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", a)


def test_generate_name_uses_kubernetes_alphabet():
    names = {meta.generate_name("web-") for _ in range(50)}
    assert len(names) > 45
    for n in names:
        assert n.startswith("web-")
        assert len(n) == len("web-") + 5
        assert set(n[4:]) <= set("bcdfghjklmnpqrstvwxz2456789")


def test_generate_name_cuts_long_prefixes():
    n = meta.generate_name("x" * 100)
    assert len(n) == 63
    assert n.startswith("x" * 58)


@pytest.mark.parametrize("obj,key", [
    ({"metadata": {"name": "a", "namespace": "ns"}}, "ns/a"),
    ({"metadata": {"name": "node1"}}, "node1"),
    ({"metadata": {"name": "x", "namespace": ""}}, "x"),
    ({}, ""),
])
def test_key_of(obj, key):
    assert meta.key_of(obj) == key
    if key:
        assert meta.split_key(key) == (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])


def test_accessors_tolerate_missing_metadata():
    assert meta.labels_of({}) == {}
    assert meta.annotations_of({"metadata": {"annotations": None}}) == {}
    assert meta.name_of({}) == "" and meta.namespace_of({}) == "" and meta.uid_of({}) == ""
    obj = make_obj()
    obj["metadata"]["labels"] = {"app": "web"}
    obj["metadata"]["annotations"] = {"note": "x"}
    assert meta.label(obj, "app") == "web"
    assert meta.label(obj, "nope", "d") == "d"
    assert meta.annotation(obj, "note") == "x"


def test_owner_helpers():
    rs = make_obj("ReplicaSet", "rs", uid="rs-uid")
    other = make_obj("ReplicaSet", "other", uid="other-uid")
    ref = meta.owner_reference(rs)
    assert ref == {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "rs-uid",
                   "controller": True, "blockOwnerDeletion": True}
    pod = {"metadata": {"name": "p", "ownerReferences": [
        meta.owner_reference(other, controller=False), ref]}}
    assert meta.controller_of(pod) == ref
    assert meta.is_owned_by(pod, rs)
    assert meta.is_owned_by(pod, "other-uid")
    assert not meta.is_owned_by(pod, "other-uid", controller_only=True)
    assert meta.is_owned_by(pod, rs, controller_only=True)
    assert not meta.is_owned_by(pod, "nobody")
    assert not meta.is_owned_by(pod, {"metadata": {}})
    assert meta.controller_of({"metadata": {}}) is None


def test_is_being_deleted():
    assert not meta.is_being_deleted(make_obj())
    obj = make_obj()
    obj["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    assert meta.is_being_deleted(obj)


def test_deep_copy_is_independent():
    obj = make_obj(status={"conditions": [{"type": "Ready"}]})
    c = meta.deep_copy(obj)
    assert c == obj
    c["metadata"]["name"] = "changed"
    c["status"]["conditions"][0]["type"] = "changed"
    c["spec"]["new"] = 1
    assert obj["metadata"]["name"] == "web"
    assert obj["status"]["conditions"][0]["type"] == "Ready"
    assert "new" not in obj["spec"]


def test_deep_copy_falls_back_for_non_json_values():
    obj = {"a": [Fraction(1, 3), {"b": 2**70}], 1: "int key"}
    c = meta.deep_copy(obj)
    assert c == obj
    c["a"][1]["b"] = 0
    assert obj["a"][1]["b"] == 2**70


@pytest.mark.parametrize("old,new,changed", [
    (make_obj(), make_obj(), False),
    (make_obj(), make_obj(spec={"replicas": 2}), True),
    (make_obj(), make_obj(status={"replicas": 2}), False),
    (make_obj(), {**make_obj(), "metadata": {"name": "web", "labels": {"a": "b"}}}, False),
    ({"kind": "ConfigMap", "metadata": {}, "data": {"a": "1"}},
     {"kind": "ConfigMap", "metadata": {}, "data": {"a": "2"}}, True),
    ({"kind": "ConfigMap", "metadata": {}, "data": {"a": "1"}}, {"kind": "ConfigMap", "metadata": {}}, True),
])
def test_spec_changed(old, new, changed):
    assert meta.spec_changed(old, new) is changed


@pytest.mark.parametrize("kind,uses", [
    ("Deployment", True), ("ReplicaSet", True), ("DaemonSet", True), ("StatefulSet", True), ("Job", True),
    ("CronJob", True), ("EndpointSlice", True),
    ("Pod", False), ("Service", False), ("ConfigMap", False), ("Secret", False), ("Namespace", False),
    ("Node", False),
])
def test_uses_generation(kind, uses):
    assert meta.uses_generation(kind) is uses


def test_set_generation_on_create_and_update():
    new = make_obj()
    meta.set_generation("Deployment", new)
    assert new["metadata"]["generation"] == 1

    old = meta.deep_copy(new)
    same = meta.deep_copy(new)
    same["status"] = {"replicas": 3}
    meta.set_generation("Deployment", same, old)
    assert same["metadata"]["generation"] == 1

    changed = meta.deep_copy(new)
    changed["spec"]["replicas"] = 5
    meta.set_generation("Deployment", changed, old)
    assert changed["metadata"]["generation"] == 2


def test_deployment_annotations_bump_generation_but_labels_do_not():
    old = make_obj()
    old["metadata"]["generation"] = 4
    annotated = meta.deep_copy(old)
    annotated["metadata"]["annotations"] = {"a": "b"}
    assert meta.generation_changed("Deployment", old, annotated)
    labelled = meta.deep_copy(old)
    labelled["metadata"]["labels"] = {"a": "b"}
    assert not meta.generation_changed("Deployment", old, labelled)
    assert not meta.generation_changed("ReplicaSet", old, annotated)
    meta.set_generation("Deployment", annotated, old)
    assert annotated["metadata"]["generation"] == 5


def test_kinds_without_generation_get_none():
    cm = {"kind": "ConfigMap", "metadata": {"name": "c", "generation": 7}, "data": {}}
    meta.set_generation("ConfigMap", cm)
    assert "generation" not in cm["metadata"]
    old = {"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}}
    new = {"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "2"}}
    assert not meta.generation_changed("ConfigMap", old, new)


@pytest.mark.parametrize("metadata", [None, 5, "x", [], {"labels": 5, "annotations": [], "ownerReferences": {}},
                                      {"ownerReferences": [5, None]}])
def test_helpers_tolerate_malformed_metadata(metadata):
    obj = {"kind": "Deployment", "metadata": metadata, "spec": {}}
    assert meta.labels_of(obj) == {}
    assert meta.annotations_of(obj) == {}
    assert meta.owner_references(obj) == []
    assert meta.controller_of(obj) is None
    assert not meta.is_owned_by(obj, "uid")
    assert meta.key_of(obj) == ""
    meta.set_generation("Deployment", obj)
    meta.set_generation("Deployment", obj, {"kind": "Deployment", "metadata": metadata, "spec": {"x": 1}})
