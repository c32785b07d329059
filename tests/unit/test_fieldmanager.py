"""Server-side apply: ownership, conflicts, removal of dropped fields."""

from __future__ import annotations

import orjson
import pytest

from api import fieldmanager as fm
from api.errors import Conflict
from api.schema import merge_info

DEPLOY = merge_info("apps", "v1", "Deployment")


def deployment(replicas=2, image="nginx:1", labels=None, extra_env=None):
    env = [{"name": "A", "value": "1"}] + (extra_env or [])
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": labels or {"app": "web"}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": image, "env": env}]}}},
    }


def owners(obj):
    return {(e["manager"], e["operation"]): fm.from_fields_v1(e["fieldsV1"])
            for e in obj["metadata"].get("managedFields", [])}


def test_field_set_uses_merge_keys_and_skips_identity():
    paths = fm.field_set(deployment(), DEPLOY)
    assert ("f:spec", "f:replicas") in paths
    assert ("f:metadata", "f:labels", "f:app") in paths
    c = ("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"web"}')
    assert c + (".",) in paths and c + ("f:image",) in paths
    assert c + ("f:env", 'k:{"name":"A"}', "f:value") in paths
    assert not any(p[:2] == ("f:metadata", "f:name") for p in paths)
    assert fm.from_fields_v1(fm.to_fields_v1(paths)) == paths


def test_create_then_reapply_removes_dropped_fields():
    obj = fm.apply(None, deployment(extra_env=[{"name": "B", "value": "2"}], labels={"app": "web", "x": "1"}),
                   DEPLOY, manager="me", force=False, api_version="apps/v1")
    assert owners(obj)[("me", "Apply")]
    again = fm.apply(obj, deployment(), DEPLOY, manager="me", force=False, api_version="apps/v1")
    env = again["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env == [{"name": "A", "value": "1"}]
    assert again["metadata"]["labels"] == {"app": "web"}


def test_conflict_with_other_manager_and_force():
    obj = fm.apply(None, deployment(), DEPLOY, manager="a", force=False, api_version="apps/v1")
    # Same value: shared ownership, no conflict.
    shared = fm.apply(obj, deployment(), DEPLOY, manager="b", force=False, api_version="apps/v1")
    assert ("f:spec", "f:replicas") in owners(shared)[("b", "Apply")]
    with pytest.raises(Conflict) as e:
        fm.apply(obj, deployment(replicas=5), DEPLOY, manager="b", force=False, api_version="apps/v1")
    assert e.value.causes[0].type == "FieldManagerConflict" and e.value.causes[0].field == ".spec.replicas"
    forced = fm.apply(obj, deployment(replicas=5), DEPLOY, manager="b", force=True, api_version="apps/v1")
    assert forced["spec"]["replicas"] == 5
    assert ("f:spec", "f:replicas") not in owners(forced)[("a", "Apply")]


def test_update_takes_ownership_of_changed_fields():
    obj = fm.apply(None, deployment(), DEPLOY, manager="applier", force=False, api_version="apps/v1")
    import copy
    new = copy.deepcopy(obj)
    new["spec"]["replicas"] = 7
    fm.record_update(obj, new, DEPLOY, manager="kubectl-scale", api_version="apps/v1")
    o = owners(new)
    assert o[("kubectl-scale", "Update")] == {("f:spec", "f:replicas")}
    assert ("f:spec", "f:replicas") not in o[("applier", "Apply")]
    # The applier dropping replicas now leaves them alone: another manager owns them.
    cfg = deployment()
    del cfg["spec"]["replicas"]
    after = fm.apply(new, cfg, DEPLOY, manager="applier", force=False, api_version="apps/v1")
    assert after["spec"]["replicas"] == 7


def test_field_tree_is_the_sorted_fields_v1_of_the_field_set():
    svc_meta = merge_info("", "v1", "Service")
    objects = [
        (deployment(extra_env=[{"name": "B", "value": "2"}, {"name": "A", "value": "dup"}],
                    labels={"z": "1", "app": "web"}), DEPLOY),
        ({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "finalizers": ["b", "a"]},
          "spec": {"ports": [{"port": 81, "protocol": "UDP"}, {"port": 80, "protocol": "TCP"}],
                   "selector": {}, "ipFamilies": ["IPv4"], "type": "ClusterIP"},
          "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}}, svc_meta),
    ]
    for obj, meta in objects:
        for sub in ("", "status"):
            tree = fm.field_tree(obj, meta, subresource=sub)
            expected = fm.to_fields_v1(fm.field_set(obj, meta, subresource=sub))
            assert tree == expected
            assert orjson.dumps(tree) == orjson.dumps(expected)     # same key order too
