"""The ownership graph alone: edges, virtual owners and the work each change calls for."""

from __future__ import annotations

from controller_manager.gc_graph import Graph, Identity, owner_identity


def obj(kind: str, name: str, uid: str, *, ns: str | None = "ns", owners: list[dict] | None = None,
        deleting: bool = False, finalizers: list[str] | None = None) -> dict:
    api = {"ReplicaSet": "apps/v1", "Deployment": "apps/v1"}.get(kind, "v1")
    md: dict = {"name": name, "uid": uid}
    if ns:
        md["namespace"] = ns
    if owners:
        md["ownerReferences"] = owners
    if deleting:
        md["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    if finalizers:
        md["finalizers"] = finalizers
    return {"apiVersion": api, "kind": kind, "metadata": md}


def ref(o: dict, block: bool = True) -> dict:
    return {"apiVersion": o["apiVersion"], "kind": o["kind"], "name": o["metadata"]["name"],
            "uid": o["metadata"]["uid"], "blockOwnerDeletion": block}


def test_edges_and_deletion_work():
    g = Graph()
    rs = obj("ReplicaSet", "rs", "u-rs")
    p1 = obj("Pod", "p1", "u-p1", owners=[ref(rs)])
    p2 = obj("Pod", "p2", "u-p2", owners=[ref(rs, block=False)])
    assert not g.observe(rs)
    assert not g.observe(p1) and not g.observe(p2)
    assert g.get("u-rs").dependents == {"u-p1", "u-p2"}
    assert [d.uid for d in g.blocking_dependents("u-rs")] == ["u-p1"]
    work = g.forget(rs)
    assert work.attempt_delete == {"u-p1", "u-p2"}
    # The owner stays as a virtual node while dependents name it.
    assert g.get("u-rs").virtual
    g.forget(p1)
    g.forget(p2)
    assert g.get("u-rs") is None and len(g) == 0


def test_virtual_owner_checked_then_made_real():
    g = Graph()
    rs = obj("ReplicaSet", "rs", "u-rs")
    p = obj("Pod", "p", "u-p", owners=[ref(rs)])
    assert g.observe(p).attempt_delete == {"u-rs"}
    node = g.get("u-rs")
    assert node.virtual and node.identity == Identity("apps/v1", "ReplicaSet", "ns", "rs")
    # A second dependent of a still-virtual owner asks for another look.
    q = obj("Pod", "q", "u-q", owners=[ref(rs)])
    assert g.observe(q).attempt_delete == {"u-rs"}
    assert not g.observe(rs)
    assert not g.get("u-rs").virtual


def test_foreground_and_orphan_transitions():
    g = Graph()
    rs = obj("ReplicaSet", "rs", "u-rs")
    p = obj("Pod", "p", "u-p", owners=[ref(rs)])
    g.observe(rs)
    g.observe(p)
    work = g.observe(obj("ReplicaSet", "rs", "u-rs", deleting=True, finalizers=["foregroundDeletion"]))
    assert work.attempt_delete == {"u-rs", "u-p"}
    assert g.get("u-rs").deleting_dependents
    # A dependent leaving (deleted, or its reference dropped) makes the owner look again.
    assert g.observe(obj("Pod", "p", "u-p")).attempt_delete == {"u-rs"}
    other = obj("Deployment", "d", "u-d")
    g.observe(other)
    g.observe(obj("Pod", "c", "u-c", owners=[ref(other)]))
    work = g.observe(obj("Deployment", "d", "u-d", deleting=True, finalizers=["orphan"]))
    assert work.orphan == {"u-d"} and not work.attempt_delete
    # Seeing the same state again asks for nothing more.
    assert not g.observe(obj("Deployment", "d", "u-d", deleting=True, finalizers=["orphan"]))


def test_owner_identity_of_cluster_scoped_kinds():
    node_ref = {"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": "u"}
    assert owner_identity(node_ref, "ns") == Identity("v1", "Node", None, "n1")
    rs_ref = {"apiVersion": "apps/v1beta2", "kind": "ReplicaSet", "name": "r", "uid": "u"}
    ident = owner_identity(rs_ref, "ns")
    assert ident.namespace == "ns" and ident.resource.plural == "replicasets"
