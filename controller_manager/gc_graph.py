"""The garbage collector's ownership graph: every object the informers show, by uid, with edges
from each owner to its dependents.

The graph is fed by informer events (``observe`` for adds and updates, ``forget`` for deletes)
and is loop-local, so it needs no locks. An owner that some dependent names but that no informer
has shown (yet) is a *virtual* node: its identity comes from the first owner reference naming it,
and the collector checks it with a live GET. ``observe`` and ``forget`` return the uids that need
attention (``Work``): dependents to check for deletion, owners to re-examine, owners to orphan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from api import registry
from api.registry import ResourceInfo

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"


@dataclass(frozen=True)
class Identity:
    """What a GET needs: the resource, and namespace/name (namespace None when cluster-scoped)."""

    api_version: str
    kind: str
    namespace: str | None
    name: str

    @property
    def resource(self) -> ResourceInfo | None:
        return resource_for(self.api_version, self.kind)


def resource_for(api_version: str, kind: str) -> ResourceInfo | None:
    """The served resource of a kind, matched on group and kind (any version of the group)."""
    found = registry.for_kind(api_version, kind)
    if found is not None:
        return found
    group = api_version.rpartition("/")[0] if "/" in api_version else ""
    for r in registry.RESOURCES:
        if r.group == group and r.kind == kind:
            return r
    return None


def owner_identity(ref: dict[str, Any], dependent_namespace: str | None) -> Identity:
    """The owner a reference names: in the dependent's namespace unless the kind is cluster-scoped."""
    info = resource_for(ref.get("apiVersion") or "", ref.get("kind") or "")
    ns = dependent_namespace if info is None or info.namespaced else None
    return Identity(ref.get("apiVersion") or "", ref.get("kind") or "", ns, ref.get("name") or "")


def identity_of(obj: dict[str, Any]) -> Identity:
    md = obj.get("metadata") or {}
    return Identity(obj.get("apiVersion") or "", obj.get("kind") or "", md.get("namespace") or None,
                    md.get("name") or "")


@dataclass
class Node:
    uid: str
    identity: Identity
    owners: dict[str, dict[str, Any]] = field(default_factory=dict)   # owner uid -> reference
    dependents: set[str] = field(default_factory=set)
    virtual: bool = False
    being_deleted: bool = False
    deleting_dependents: bool = False    # being deleted with the foregroundDeletion finalizer
    orphaning: bool = False              # being deleted with the orphan finalizer

    def blocks(self, owner_uid: str) -> bool:
        """Whether this dependent holds up the foreground deletion of ``owner_uid``."""
        ref = self.owners.get(owner_uid)
        return bool(ref and ref.get("blockOwnerDeletion"))


@dataclass
class Work:
    attempt_delete: set[str] = field(default_factory=set)
    orphan: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.attempt_delete or self.orphan)


class Graph:
    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}

    def __len__(self) -> int:
        return len(self.nodes)

    def get(self, uid: str) -> Node | None:
        return self.nodes.get(uid)

    def observe(self, obj: dict[str, Any]) -> Work:
        """An object was added or changed; update its node and edges."""
        work = Work()
        md = obj.get("metadata") or {}
        uid = md.get("uid")
        if not uid:
            return work
        node = self.nodes.get(uid)
        ident = identity_of(obj)
        if node is None:
            node = self.nodes[uid] = Node(uid, ident)
        elif node.virtual:
            # A dependent named it first; the object itself now shows up. If it is not what the
            # references said (another kind or name), the dependents are checked against the truth.
            node.virtual = False
            if node.identity != ident:
                work.attempt_delete |= node.dependents
            node.identity = ident
        new_owners = {r["uid"]: r for r in md.get("ownerReferences") or [] if isinstance(r, dict) and r.get("uid")}
        for owner_uid in node.owners.keys() - new_owners.keys():
            owner = self.nodes.get(owner_uid)
            if owner is not None:
                owner.dependents.discard(uid)
                if owner.deleting_dependents:
                    work.attempt_delete.add(owner_uid)
                self._drop_if_lonely_virtual(owner)
        for owner_uid, ref in new_owners.items():
            owner = self.nodes.get(owner_uid)
            if owner is None:
                owner = self.nodes[owner_uid] = Node(owner_uid, owner_identity(ref, ident.namespace), virtual=True)
            if owner.virtual and uid not in owner.dependents:
                work.attempt_delete.add(owner_uid)      # is it there at all?
            owner.dependents.add(uid)
            old_ref = node.owners.get(owner_uid)
            if owner.deleting_dependents:
                # A new or changed dependent of an owner deleted in the foreground.
                if old_ref is None or bool(old_ref.get("blockOwnerDeletion")) != bool(ref.get("blockOwnerDeletion")):
                    work.attempt_delete.add(owner_uid)
                work.attempt_delete.add(uid)
        node.owners = new_owners
        finalizers = md.get("finalizers") or []
        was_deleting_dependents, was_orphaning = node.deleting_dependents, node.orphaning
        node.being_deleted = bool(md.get("deletionTimestamp"))
        node.deleting_dependents = node.being_deleted and FOREGROUND in finalizers
        node.orphaning = node.being_deleted and ORPHAN in finalizers
        if node.orphaning and not was_orphaning:
            work.orphan.add(uid)
        if node.deleting_dependents and not was_deleting_dependents:
            work.attempt_delete.add(uid)
            work.attempt_delete |= node.dependents
        return work

    def forget(self, obj: dict[str, Any]) -> Work:
        """An object was deleted: its dependents are checked, owners waiting on it re-examined."""
        uid = (obj.get("metadata") or {}).get("uid")
        return self.remove(uid) if uid else Work()

    def remove(self, uid: str) -> Work:
        work = Work()
        node = self.nodes.pop(uid, None)
        if node is None:
            return work
        work.attempt_delete |= node.dependents
        for owner_uid in node.owners:
            owner = self.nodes.get(owner_uid)
            if owner is None:
                continue
            owner.dependents.discard(uid)
            if owner.deleting_dependents:
                work.attempt_delete.add(owner_uid)
            self._drop_if_lonely_virtual(owner)
        if node.dependents:
            # Dependents still name it: keep it as a virtual node so their edges stay whole and a
            # check of it finds it absent.
            self.nodes[uid] = Node(uid, node.identity, dependents=set(node.dependents), virtual=True)
        return work

    def blocking_dependents(self, uid: str) -> list[Node]:
        node = self.nodes.get(uid)
        if node is None:
            return []
        out = []
        for dep_uid in node.dependents:
            dep = self.nodes.get(dep_uid)
            if dep is not None and not dep.virtual and dep.blocks(uid):
                out.append(dep)
        return out

    def _drop_if_lonely_virtual(self, node: Node) -> None:
        if node.virtual and not node.dependents:
            self.nodes.pop(node.uid, None)
