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


# --------------------------------------------------------------------------- ordinary updates

def _reference_update(old, new, meta, manager, subresource=""):
    """What record_update must compute, spelled out with path sets and value_at."""
    import copy
    new = copy.deepcopy(new)
    new_paths = fm.field_set(new, meta, subresource=subresource)
    changed = {p for p in new_paths if fm.value_at(old, p) != fm.value_at(new, p)}
    gone = fm.field_set(old, meta, subresource=subresource) - new_paths
    entries = [dict(e) for e in old["metadata"].get("managedFields") or []]
    same = [(e["manager"], e["operation"], e.get("subresource", "")) == (manager, "Update", subresource)
            for e in entries]
    for e, mine in zip(entries, same, strict=True):
        if not mine:
            e["fieldsV1"] = fm.to_fields_v1(fm.from_fields_v1(e["fieldsV1"]) - changed - gone)
    if changed:
        kept = set()
        for e, mine in zip(entries, same, strict=True):
            if mine:
                kept = fm.from_fields_v1(e["fieldsV1"]) & new_paths
        entries = [e for e, mine in zip(entries, same, strict=True) if not mine]
        entries.append({"manager": manager, "fieldsV1": fm.to_fields_v1(kept | changed)})
    return {e["manager"]: e["fieldsV1"] for e in entries if e["fieldsV1"]}


def _mutations():
    def image(d):
        d["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"

    def env_added(d):
        d["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "B", "value": "2"})

    def env_removed(d):
        d["spec"]["template"]["spec"]["containers"][0]["env"] = []

    def env_changed(d):
        d["spec"]["template"]["spec"]["containers"][0]["env"][:1] = [{"name": "A", "value": "9"}]

    def label_swapped(d):
        d["metadata"]["labels"] = {"tier": "web"}

    def scalar_to_map(d):
        d["spec"]["replicas"] = {"odd": 1}

    def map_to_scalar(d):
        d["spec"]["selector"] = "app=web"

    def container_added(d):
        d["spec"]["template"]["spec"]["containers"].append({"name": "side", "image": "busybox"})

    def status(d):
        d["status"] = {"replicas": 3, "conditions": [{"type": "Available", "status": "True"}]}

    def nothing(d):
        pass
    return [image, env_added, env_removed, env_changed, label_swapped, scalar_to_map,
            map_to_scalar, container_added, status, nothing]


@pytest.mark.parametrize("first", _mutations(), ids=lambda f: f.__name__)
@pytest.mark.parametrize("second", _mutations(), ids=lambda f: f.__name__)
@pytest.mark.parametrize("subresource", ["", "status"])
def test_record_update_matches_the_path_set_definition(first, second, subresource):
    created = deployment(extra_env=[{"name": "C", "value": "3"}])
    created["status"] = {"replicas": 1}
    fm.record_update(None, created, DEPLOY, manager="creator", api_version="apps/v1")
    middle = orjson.loads(orjson.dumps(created))
    first(middle)
    fm.record_update(created, middle, DEPLOY, manager="editor", api_version="apps/v1", subresource=subresource)
    last = orjson.loads(orjson.dumps(middle))
    second(last)
    want = _reference_update(middle, last, DEPLOY, "creator", subresource)
    fm.record_update(middle, last, DEPLOY, manager="creator", api_version="apps/v1", subresource=subresource)
    got = {e["manager"]: e["fieldsV1"] for e in last["metadata"].get("managedFields") or []}
    assert got == want


def test_a_field_of_a_repeated_list_key_is_owned_by_its_writer():
    # Kubernetes tolerates repeated env names; the second item's own fields still have a writer.
    created = deployment()
    fm.record_update(None, created, DEPLOY, manager="creator", api_version="apps/v1")
    edited = orjson.loads(orjson.dumps(created))
    edited["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "A", "valueFrom": {}})
    fm.record_update(created, edited, DEPLOY, manager="editor", api_version="apps/v1")
    env_a = ("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"web"}', "f:env", 'k:{"name":"A"}')
    assert env_a + ("f:valueFrom",) in owners(edited)[("editor", "Update")]
    assert env_a + ("f:value",) in owners(edited)[("creator", "Update")]


def test_trees_shared_between_objects_are_never_changed_in_place():
    first, second = deployment(), deployment()
    for obj in (first, second):
        fm.record_update(None, obj, DEPLOY, manager="creator", api_version="apps/v1")
    before = orjson.dumps(first["metadata"]["managedFields"][0]["fieldsV1"])
    edited = orjson.loads(orjson.dumps(second))
    edited["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "A", "value": "2"}]
    edited["metadata"]["labels"] = {"other": "x"}
    fm.record_update(second, edited, DEPLOY, manager="editor", api_version="apps/v1")
    assert owners(edited)[("creator", "Update")] != owners(first)[("creator", "Update")]
    assert orjson.dumps(first["metadata"]["managedFields"][0]["fieldsV1"]) == before
    assert orjson.dumps(second["metadata"]["managedFields"][0]["fieldsV1"]) == before
