"""Discovery documents: /version, aggregated v2 and legacy, all derived from the registry."""

import re

import pytest

from api import errors
from api.registry import RESOURCES
from apiserver import discovery

KUBECTL_ACCEPT = ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
                  "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
                  "application/json")


def test_version_info_says_1_32_with_every_field_typed_clients_need():
    v = discovery.version_info()
    assert (v["major"], v["minor"]) == ("1", "32")
    assert re.fullmatch(r"v1\.32\.\d+", v["gitVersion"])
    for field in ("gitCommit", "gitTreeState", "buildDate", "goVersion", "compiler", "platform"):
        assert isinstance(v[field], str) and v[field], field
    assert re.fullmatch(r"[a-z]+/[a-z0-9]+", v["platform"])


def test_aggregated_content_type_is_exact():
    assert discovery.AGGREGATED_CONTENT_TYPE == (
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList")


def _resources(doc):
    return {(item["metadata"]["name"], ver["version"], r["resource"]): r
            for item in doc["items"] for ver in item["versions"] for r in ver["resources"]}


def test_aggregated_core_holds_the_core_group_only():
    doc = discovery.aggregated(core=True)
    assert doc["kind"] == "APIGroupDiscoveryList"
    assert doc["apiVersion"] == "apidiscovery.k8s.io/v2"
    assert [i["metadata"]["name"] for i in doc["items"]] == [""]
    pods = _resources(doc)[("", "v1", "pods")]
    assert pods["responseKind"] == {"group": "", "version": "v1", "kind": "Pod"}
    assert pods["scope"] == "Namespaced"
    assert pods["singularResource"] == "pod"
    assert pods["shortNames"] == ["po"]
    assert pods["categories"] == ["all"]
    assert "watch" in pods["verbs"] and "create" in pods["verbs"]
    subs = {s["subresource"]: s for s in pods["subresources"]}
    assert subs["status"]["responseKind"] == {"group": "", "version": "v1", "kind": "Pod"}
    assert subs["status"]["verbs"] == ["get", "patch", "update"]
    assert {"log", "exec", "portforward", "binding", "eviction"} <= set(subs)
    nodes = _resources(doc)[("", "v1", "nodes")]
    assert nodes["scope"] == "Cluster"
    assert all(v["freshness"] == "Current" for i in doc["items"] for v in i["versions"])


def test_aggregated_named_groups_and_scale_subresource():
    doc = discovery.aggregated(core=False)
    names = [i["metadata"]["name"] for i in doc["items"]]
    assert "" not in names and "apps" in names and "batch" in names
    deploy = _resources(doc)[("apps", "v1", "deployments")]
    assert deploy["shortNames"] == ["deploy"]
    scale = next(s for s in deploy["subresources"] if s["subresource"] == "scale")
    assert scale["responseKind"] == {"group": "autoscaling", "version": "v1", "kind": "Scale"}


def test_aggregated_lists_every_registered_resource_once():
    seen = {**_resources(discovery.aggregated(True)), **_resources(discovery.aggregated(False))}
    assert set(seen) == {(r.group, r.version, r.plural) for r in RESOURCES}
    for r in RESOURCES:
        entry = seen[(r.group, r.version, r.plural)]
        assert entry["verbs"] == list(r.verbs)
        assert entry.get("shortNames", []) == list(r.short_names)
        assert entry.get("categories", []) == list(r.categories)


def test_documents_are_private_copies():
    doc = discovery.aggregated(True)
    doc["items"].clear()
    assert discovery.aggregated(True)["items"]
    lst = discovery.api_resource_list("", "v1")
    lst["resources"].clear()
    assert discovery.api_resource_list("", "v1")["resources"]


@pytest.mark.parametrize("accept, expected", [
    (KUBECTL_ACCEPT, True),
    ("application/json;as=APIGroupDiscoveryList;v=v2;g=apidiscovery.k8s.io", True),
    ("application/json; g=apidiscovery.k8s.io; v=v2; as=APIGroupDiscoveryList", True),
    ("application/json", False),
    ("application/json, */*", False),
    ("", False),
    (None, False),
    ("application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json", False),
    ("application/json,application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList", False),
    ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList;q=0,application/json", False),
    ("application/json;q=0.5,application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList", True),
    ("application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList", False),
])
def test_wants_aggregated(accept, expected):
    assert discovery.wants_aggregated(accept) is expected


def test_legacy_api_versions():
    doc = discovery.api_versions("127.0.0.1:6443")
    assert doc["kind"] == "APIVersions"
    assert doc["versions"] == ["v1"]
    assert doc["serverAddressByClientCIDRs"] == [
        {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}]
    assert discovery.api_versions()["serverAddressByClientCIDRs"] == []


def test_legacy_group_list_and_group():
    doc = discovery.api_group_list()
    assert (doc["kind"], doc["apiVersion"]) == ("APIGroupList", "v1")
    groups = {g["name"]: g for g in doc["groups"]}
    assert "" not in groups
    assert set(groups) == {r.group for r in RESOURCES if r.group}
    assert groups["apps"]["preferredVersion"] == {"groupVersion": "apps/v1", "version": "v1"}
    apps = discovery.api_group("apps")
    assert apps["kind"] == "APIGroup" and apps["name"] == "apps"
    assert apps["versions"] == [{"groupVersion": "apps/v1", "version": "v1"}]
    for missing in ("nope.example.com", ""):
        with pytest.raises(errors.NotFound):
            discovery.api_group(missing)


def test_legacy_resource_list_core():
    doc = discovery.api_resource_list("", "v1")
    assert (doc["kind"], doc["groupVersion"]) == ("APIResourceList", "v1")
    by_name = {e["name"]: e for e in doc["resources"]}
    pods = by_name["pods"]
    assert pods == {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod",
                    "verbs": list(pods["verbs"]), "shortNames": ["po"], "categories": ["all"]}
    assert by_name["pods/status"]["kind"] == "Pod"
    assert by_name["pods/status"]["verbs"] == ["get", "patch", "update"]
    assert by_name["pods/log"]["verbs"] == ["get"]
    assert by_name["pods/eviction"]["group"] == "policy"
    assert by_name["nodes"]["namespaced"] is False
    assert by_name["endpoints"]["singularName"] == "endpoints"


def test_legacy_resource_list_apps_and_unknown():
    doc = discovery.api_resource_list("apps", "v1")
    assert doc["groupVersion"] == "apps/v1"
    scale = {e["name"]: e for e in doc["resources"]}["deployments/scale"]
    assert (scale["group"], scale["version"], scale["kind"]) == ("autoscaling", "v1", "Scale")
    with pytest.raises(errors.NotFound):
        discovery.api_resource_list("apps", "v9")
    with pytest.raises(errors.NotFound):
        discovery.api_resource_list("nope", "v1")
