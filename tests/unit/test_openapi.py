"""OpenAPI v3 index and per group-version documents."""

import hashlib
import re

import orjson
import pytest

from api import errors
from api.registry import RESOURCES, group_versions
from apiserver import openapi


def _key(group, version):
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _doc(group, version):
    return orjson.loads(openapi.document(_key(group, version)))


def _walk(node, path=""):
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from _walk(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, f"{path}/{i}")


def test_index_points_at_every_group_version_with_its_hash():
    idx = openapi.index()
    assert set(idx["paths"]) == {_key(g, v) for g, v in group_versions()}
    for key, entry in idx["paths"].items():
        url = entry["serverRelativeURL"]
        m = re.fullmatch(r"/openapi/v3/(.+)\?hash=([0-9A-F]{128})", url)
        assert m and m.group(1) == key, url
        assert m.group(2) == hashlib.sha512(openapi.document(key)).hexdigest().upper()
        assert openapi.document_hash(key) == m.group(2)


@pytest.mark.parametrize("spelling", ["apis/apps/v1", "/apis/apps/v1", "apps/v1"])
def test_document_accepts_path_or_group_version(spelling):
    assert openapi.document(spelling) == openapi.document("apis/apps/v1")


def test_core_spellings_agree():
    assert openapi.document("api/v1") == openapi.document("v1")


@pytest.mark.parametrize("gv", ["apis/apps/v9", "apis/nope/v1", "api/v2", "a/b/c/d"])
def test_unknown_group_version_is_not_found(gv):
    with pytest.raises(errors.NotFound):
        openapi.document(gv)


def test_document_header():
    doc = _doc("", "v1")
    assert doc["openapi"] == "3.0.0"
    assert doc["info"]["title"] and doc["info"]["version"]


@pytest.mark.parametrize("res", RESOURCES, ids=lambda r: f"{r.group or 'core'}.{r.plural}")
def test_every_resource_has_crud_paths_and_a_verifiable_patch(res):
    doc = _doc(res.group, res.version)
    gvk = {"group": res.group, "version": res.version, "kind": res.kind}
    coll = f"{res.url_prefix}/namespaces/{{namespace}}/{res.plural}" if res.namespaced else \
        f"{res.url_prefix}/{res.plural}"
    item = coll + "/{name}"
    paths = doc["paths"]
    assert set(paths[coll]) - {"parameters"} == (
        {"get", "post"} | ({"delete"} if "deletecollection" in res.verbs else set()))
    assert set(paths[item]) - {"parameters"} == {"get", "put", "patch", "delete"}
    assert paths[coll]["get"]["x-kubernetes-action"] == "list"
    assert paths[coll]["post"]["x-kubernetes-action"] == "post"
    patch = paths[item]["patch"]
    # What kubectl's query-parameter verifier looks for before it skips client-side validation.
    assert patch["x-kubernetes-group-version-kind"] == gvk
    query = {p["name"] for p in patch["parameters"] if p["in"] == "query"}
    assert {"fieldValidation", "fieldManager", "dryRun", "force"} <= query
    assert set(patch["requestBody"]["content"]) == {
        "application/json-patch+json", "application/merge-patch+json",
        "application/strategic-merge-patch+json", "application/apply-patch+yaml"}
    # kubectl's client-side apply only trusts the v3 schemas if a schema carries the kind.
    schema_name = openapi.definition_name(res.group, res.version, res.kind)
    schema = doc["components"]["schemas"][schema_name]
    assert gvk in schema["x-kubernetes-group-version-kind"]
    ok = paths[item]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": f"#/components/schemas/{schema_name}"}
    if res.namespaced:
        assert paths[f"{res.url_prefix}/{res.plural}"]["get"]["x-kubernetes-action"] == "list"
        assert {p["name"] for p in paths[item]["parameters"]} == {"name", "namespace"}


def test_subresource_paths():
    paths = _doc("apps", "v1")["paths"]
    scale = paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]
    assert set(scale) - {"parameters"} == {"get", "put", "patch"}
    assert scale["patch"]["x-kubernetes-group-version-kind"] == {
        "group": "autoscaling", "version": "v1", "kind": "Scale"}
    status = paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/status"]
    assert status["put"]["x-kubernetes-group-version-kind"]["kind"] == "Deployment"
    core = _doc("", "v1")["paths"]
    log = core["/api/v1/namespaces/{namespace}/pods/{name}/log"]["get"]
    assert {"container", "follow", "tailLines"} <= {p["name"] for p in log["parameters"]}
    exec_ = core["/api/v1/namespaces/{namespace}/pods/{name}/exec"]
    assert exec_["get"]["x-kubernetes-action"] == "connect"
    assert "post" in core["/api/v1/namespaces/{namespace}/pods/{name}/binding"]
    assert "/api/v1/namespaces/{namespace}" not in core  # namespaces are cluster-scoped
    assert "delete" not in core["/api/v1/namespaces"]  # no deletecollection for namespaces


@pytest.mark.parametrize("gv", group_versions(), ids=lambda gv: "/".join(x for x in gv if x))
def test_components_are_closed_and_openapi_3_0_shaped(gv):
    doc = _doc(*gv)
    schemas = doc["components"]["schemas"]
    for where, node in _walk(doc):
        ref = node.get("$ref")
        if isinstance(ref, str):
            assert ref.startswith("#/components/schemas/"), where
            assert ref.removeprefix("#/components/schemas/") in schemas, (where, ref)
            assert set(node) == {"$ref"}, where  # siblings of $ref are ignored by OpenAPI 3.0
        if where.startswith("/components") and "type" in node and not where.endswith("/properties"):
            assert isinstance(node["type"], str), where


def test_real_schemas_with_merge_keys():
    schemas = _doc("", "v1")["components"]["schemas"]
    containers = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["type"] == "array"
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["x-kubernetes-patch-strategy"] == "merge"
    assert containers["items"] == {"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"}
    assert "containers" in schemas["io.k8s.api.core.v1.PodSpec"]["required"]
    meta = schemas["io.k8s.api.core.v1.Pod"]["properties"]["metadata"]
    assert meta["allOf"] == [{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}]
    assert meta["description"]
    # Unions stay unions: a top-level type would make kubectl explain print "string".
    assert "type" not in schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]
    apps = _doc("apps", "v1")["components"]["schemas"]
    assert "io.k8s.api.autoscaling.v1.Scale" in apps
    assert "io.k8s.api.core.v1.Container" in apps
    assert "io.k8s.api.batch.v1.Job" not in apps


def test_documents_are_cached():
    assert openapi.document("apis/batch/v1") is openapi.document("apis/batch/v1")
