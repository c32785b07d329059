"""Deployment arithmetic without a server: hashes, fenceposts, revisions, conditions and the
order in which a ReplicaSet gives up its pods."""

from __future__ import annotations

import pytest

from controller_manager import deploymentutil as du
from controller_manager.common import deletion_order


def test_fnv32a_standard_vectors():
    assert du.fnv32a(b"") == 0x811C9DC5
    assert du.fnv32a(b"a") == 0xE40C292C
    assert du.fnv32a(b"foobar") == 0xBF9CF968


def test_safe_encode_maps_bytes_into_the_alphabet():
    assert du.safe_encode("123") == "567"
    assert set(du.safe_encode("4294967295")) <= set("bcdfghjklmnpqrstvwxz2456789")


def test_hash_is_stable_and_sensitive():
    t1 = {"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}
    t2 = {"spec": {"containers": [{"image": "x", "name": "c"}]}, "metadata": {"labels": {"b": "2", "a": "1"}}}
    assert du.compute_hash(t1) == du.compute_hash(t2)
    assert du.compute_hash(t1) != du.compute_hash(t1, 1)
    assert du.compute_hash(t1, 1) != du.compute_hash(t1, 2)
    other = {**t1, "spec": {"containers": [{"name": "c", "image": "y"}]}}
    assert du.compute_hash(other) != du.compute_hash(t1)
    assert all(ch in "bcdfghjklmnpqrstvwxz2456789" for ch in du.compute_hash(t1))


def test_equal_ignore_hash():
    a = {"metadata": {"labels": {"app": "w", du.HASH_LABEL: "abc"}}, "spec": {"x": 1}}
    b = {"metadata": {"labels": {"app": "w"}}, "spec": {"x": 1}}
    assert du.equal_ignore_hash(a, b)
    assert not du.equal_ignore_hash(a, {**b, "spec": {"x": 2}})


@pytest.mark.parametrize("surge,unavailable,desired,want", [
    ("25%", "25%", 10, (3, 2)),       # surge rounds up, unavailable rounds down
    ("25%", "25%", 1, (1, 0)),
    (0, 0, 5, (0, 1)),                # never both zero
    ("0%", "0%", 4, (0, 1)),
    (1, "0%", 3, (1, 0)),
    ("50%", "50%", 3, (2, 1)),
    (2, 3, 10, (2, 3)),
])
def test_resolve_fenceposts(surge, unavailable, desired, want):
    assert du.resolve_fenceposts(surge, unavailable, desired) == want


def dep(replicas=10, surge="25%", unavailable="25%", strategy="RollingUpdate", annotations=None):
    d = {"metadata": {"name": "web", "annotations": annotations or {}, "generation": 1},
         "spec": {"replicas": replicas, "strategy": {"type": strategy}}, "status": {}}
    if strategy == "RollingUpdate":
        d["spec"]["strategy"]["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavailable}
    return d


def rs(name, replicas, created="2026-01-01T00:00:00Z", annotations=None, available=0, uid=None):
    return {"metadata": {"name": name, "uid": uid or name, "creationTimestamp": created,
                         "annotations": annotations or {}},
            "spec": {"replicas": replicas}, "status": {"availableReplicas": available}}


def test_max_unavailable_capped_and_zero_for_recreate():
    assert du.max_unavailable(dep(replicas=2, unavailable=5)) == 2
    assert du.max_unavailable(dep(strategy="Recreate")) == 0
    assert du.max_surge(dep(strategy="Recreate")) == 0


def test_new_rs_new_replicas_respects_surge():
    d = dep(replicas=10)                         # surge 3: at most 13 pods
    old, new = rs("old", 10), rs("new", 0)
    assert du.new_rs_new_replicas(d, [old, new], new) == 3
    old2, new2 = rs("old", 8), rs("new", 3)
    assert du.new_rs_new_replicas(d, [old2, new2], new2) == 5
    assert du.new_rs_new_replicas(dep(replicas=10, strategy="Recreate"), [old, new], new) == 10


def test_revision_annotations_and_history_on_rollback():
    d = dep(annotations={"team": "a", du.LAST_APPLIED: "{}"})
    fresh = rs("new", 0)
    assert du.set_new_rs_annotations(d, fresh, 1, False)
    ann = fresh["metadata"]["annotations"]
    assert ann[du.REVISION] == "1" and ann["team"] == "a" and du.LAST_APPLIED not in ann
    assert ann[du.DESIRED_REPLICAS] == "10" and ann[du.MAX_REPLICAS] == "13"
    # Brought back by a rollback: new revision, old one remembered.
    assert du.set_new_rs_annotations(d, fresh, 3, True)
    assert ann[du.REVISION] == "3" and ann[du.REVISION_HISTORY] == "1"
    assert du.set_new_rs_annotations(d, fresh, 5, True)
    assert ann[du.REVISION_HISTORY] == "1,3"
    assert not du.set_new_rs_annotations(d, fresh, 5, True)   # nothing to change


def test_max_revision_ignores_malformed():
    rss = [rs("a", 0, annotations={du.REVISION: "2"}), rs("b", 0, annotations={du.REVISION: "x"}), rs("c", 0)]
    assert du.max_revision(rss) == 2


def test_find_new_and_old():
    t = {"metadata": {"labels": {"app": "w"}}, "spec": {"c": 1}}
    d = dep()
    d["spec"]["template"] = t
    a = rs("a", 1, created="2026-01-01T00:00:01Z")
    a["spec"]["template"] = {"metadata": {"labels": {"app": "w", du.HASH_LABEL: "h"}}, "spec": {"c": 1}}
    b = rs("b", 1)
    b["spec"]["template"] = {"metadata": {"labels": {"app": "w"}}, "spec": {"c": 2}}
    assert du.find_new_rs(d, [b, a]) is a
    assert du.find_old_rss(d, [b, a]) == [b]


def test_proportional_fraction():
    d = dep(replicas=20)                          # from 10 (+3 surge) to 20 (+5 surge)
    r = rs("a", 6, annotations={du.MAX_REPLICAS: "13"})
    assert du.replica_set_fraction(r, d) == round(6 * 25 / 13) - 6
    assert du.proportion(r, d, 12, 0) == 6
    assert du.proportion(r, d, 12, 10) == 2
    assert du.replica_set_fraction(r, dep(replicas=0)) == -6


def test_set_condition_keeps_transition_time_for_same_status():
    st: dict = {}
    du.set_condition(st, du.new_condition("Progressing", "True", "A", "m", 100.0))
    du.set_condition(st, du.new_condition("Progressing", "True", "B", "m2", 200.0))
    (c,) = st["conditions"]
    assert c["reason"] == "B" and c["lastTransitionTime"] == du.rfc3339(100.0)
    assert c["lastUpdateTime"] == du.rfc3339(200.0)
    du.set_condition(st, du.new_condition("Progressing", "False", "C", "m3", 300.0))
    assert st["conditions"][0]["lastTransitionTime"] == du.rfc3339(300.0)
    du.remove_condition(st, "Progressing")
    assert "conditions" not in st


def test_progress_deadline():
    d = dep(replicas=1)
    d["spec"]["progressDeadlineSeconds"] = 60
    st = {"conditions": [du.new_condition("Progressing", "True", du.RS_UPDATED_REASON, "m", 1000.0)]}
    assert not du.deployment_timed_out(d, st, 1059.0)
    assert du.deployment_timed_out(d, st, 1061.0)
    st["conditions"][0]["reason"] = du.NEW_RS_AVAILABLE_REASON
    assert not du.deployment_timed_out(d, st, 5000.0)
    d["spec"]["progressDeadlineSeconds"] = 2**31 - 1
    assert not du.has_progress_deadline(d)


def pod(name, node="", phase="Pending", ready=None, restarts=0, created="2026-01-01T00:00:00Z"):
    conds = []
    if ready is not None:
        conds.append({"type": "Ready", "status": "True", "lastTransitionTime": ready})
    return {"metadata": {"name": name, "creationTimestamp": created},
            "spec": {"nodeName": node} if node else {},
            "status": {"phase": phase, "conditions": conds,
                       "containerStatuses": [{"name": "c", "restartCount": restarts}]}}


def test_deletion_order_follows_active_pods_ranking():
    t0, t1 = "2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z"
    pods = [
        pod("running-ready-long", "n", "Running", ready=t0),
        pod("running-ready-short", "n", "Running", ready=t1),
        pod("running-not-ready", "n", "Running"),
        pod("unknown", "n", "Unknown"),
        pod("pending-assigned", "n", "Pending"),
        pod("unassigned", "", "Pending"),
        pod("restarts", "n", "Running", restarts=3),
        pod("newer-not-ready", "n", "Running", created=t1),
    ]
    order = [p["metadata"]["name"] for p in deletion_order(pods)]
    assert order == ["unassigned", "pending-assigned", "unknown", "restarts", "newer-not-ready",
                     "running-not-ready", "running-ready-short", "running-ready-long"]
