"""The garbage collector: deletes objects whose owners are gone, and carries out foreground and
orphan deletion of owners.

Informers over every listable resource of the registry (Events aside, as Kubernetes ignores them)
feed the ownership graph (``gc_graph``). Work is keyed ``delete:<uid>`` or ``orphan:<uid>``:

* ``delete``: an object that may have lost its owners. Its owners are looked up live (a GET,
  remembered for absent owners); if none is solid, the object is deleted (Background, or the
  policy its own finalizers ask for; Foreground when an owner waits for it and it has dependents
  itself). Owners that are absent or waiting are cut out of its references when a solid owner
  remains. For an owner being deleted in the foreground, the same key removes the
  ``foregroundDeletion`` finalizer once no dependent with ``blockOwnerDeletion`` is left. For a
  virtual owner (named by dependents, never seen), it checks that the owner exists at all.
* ``orphan``: an owner being deleted with the ``orphan`` finalizer: its dependents lose their
  references to it, then the finalizer is removed.

Every write is conditional on the object's uid (and resourceVersion where it rewrites a list), so
an object recreated under the same name is never touched by mistake.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, ClassVar

from api import errors, registry
from client.informer import Handler
from controller_manager.base import Controller, ControllerContext
from controller_manager.gc_graph import (
    FOREGROUND,
    ORPHAN,
    Graph,
    Identity,
    Work,
    owner_identity,
    resource_for,
)

IGNORED = frozenset({("", "events"), ("events.k8s.io", "events")})
ABSENT_CACHE_SIZE = 1000
WRITE_RETRIES = 5


def watched_resources() -> list[registry.ResourceInfo]:
    return [r for r in registry.RESOURCES
            if "list" in r.verbs and "watch" in r.verbs and "delete" in r.verbs
            and (r.group, r.plural) not in IGNORED]


class GarbageCollector(Controller):
    name: ClassVar[str] = "garbagecollector"
    workers: ClassVar[int] = 20

    def __init__(self, ctx: ControllerContext):
        super().__init__(ctx)
        self.graph = Graph()
        self.recorder = ctx.recorder("garbage-collector-controller")
        self._absent: OrderedDict[tuple[str, Identity], None] = OrderedDict()
        self.deleted = 0           # objects this collector deleted
        self.orphaned = 0          # references it removed for orphaning
        handler = Handler(on_add=self._on_change, on_update=lambda old, new: self._on_change(new),
                          on_delete=self._on_delete)
        self.informers = [ctx.informers.informer_for(r) for r in watched_resources()]
        for informer in self.informers:
            informer.add_event_handler(handler)

    async def run(self) -> None:
        # Work on the graph only once it holds every object listed so far: an owner deleted in
        # the foreground must not be let go before its dependents are even in the graph.
        await self.ctx.informers.wait_for_cache_sync()
        for informer in self.informers:
            await informer.wait_for_handlers()
        self.log.info("ownership graph built", objects=len(self.graph))
        await super().run()

    # --- graph feed ------------------------------------------------------------------------

    def _on_change(self, obj: dict) -> None:
        self._schedule(self.graph.observe(obj))

    def _on_delete(self, obj: dict) -> None:
        self._schedule(self.graph.forget(obj))

    def _schedule(self, work: Work) -> None:
        for uid in work.attempt_delete:
            self.queue.add(f"delete:{uid}")
        for uid in work.orphan:
            self.queue.add(f"orphan:{uid}")

    # --- reconcile -------------------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        kind, _, uid = key.partition(":")
        if kind == "delete":
            await self._attempt_delete(uid)
        elif kind == "orphan":
            await self._orphan(uid)
        return None

    async def _attempt_delete(self, uid: str) -> None:
        node = self.graph.get(uid)
        if node is None:
            return
        if node.virtual:
            if (uid, node.identity) in self._absent or await self._live(node.identity, uid) is None:
                self._remember_absent(uid, node.identity)
                self.log.debug("owner absent; checking its dependents", owner=_describe(node.identity), uid=uid)
                self._schedule(Work(attempt_delete=set(node.dependents)))
            return
        if node.being_deleted and not node.deleting_dependents:
            return
        if not node.owners and not node.deleting_dependents:
            return
        latest = await self._live(node.identity, uid)
        if latest is None:
            # Gone (or replaced by a namesake) without the informer saying so yet.
            self._schedule(self.graph.remove(uid))
            return
        md = latest["metadata"]
        if md.get("deletionTimestamp"):
            if FOREGROUND in (md.get("finalizers") or []):
                await self._finish_foreground(node.identity, uid)
            return
        refs = [r for r in md.get("ownerReferences") or [] if isinstance(r, dict)]
        if not refs:
            return
        solid, dangling, waiting = [], [], []
        for ref in refs:
            state = await self._owner_state(ref, md.get("namespace"), latest)
            {"solid": solid, "absent": dangling, "waiting": waiting}[state].append(ref)
        if solid:
            if dangling or waiting:
                cut = {r.get("uid") for r in dangling + waiting}
                self.log.info("removing references to absent or deleting owners", object=_describe(node.identity),
                              owners=sorted(str(u) for u in cut))
                await self._rewrite_owner_refs(node.identity, uid, lambda refs_: [
                    r for r in refs_ if r.get("uid") not in cut])
            return
        finalizers = md.get("finalizers") or []
        if waiting and node.dependents:
            policy = "Foreground"
        elif ORPHAN in finalizers:
            policy = "Orphan"
        elif FOREGROUND in finalizers:
            policy = "Foreground"
        else:
            policy = "Background"
        self.log.info("deleting object whose owners are gone", object=_describe(node.identity), uid=uid,
                      propagation=policy)
        await self._delete(node.identity, uid, policy)

    async def _finish_foreground(self, ident: Identity, uid: str) -> None:
        blocking = self.graph.blocking_dependents(uid)
        if not blocking:
            self.log.info("foreground deletion: no blocking dependents left; removing finalizer",
                          object=_describe(ident))
            await self._remove_finalizer(ident, uid, FOREGROUND)
            return
        for dep in blocking:
            if not dep.deleting_dependents:
                self.queue.add(f"delete:{dep.uid}")

    async def _orphan(self, uid: str) -> None:
        node = self.graph.get(uid)
        if node is None or node.virtual:
            return
        for dep_uid in sorted(node.dependents):
            dep = self.graph.get(dep_uid)
            if dep is None or dep.virtual:
                continue
            await self._rewrite_owner_refs(dep.identity, dep_uid, lambda refs: [r for r in refs if r.get("uid") != uid])
            self.orphaned += 1
        await self._remove_finalizer(node.identity, uid, ORPHAN)

    # --- owners ----------------------------------------------------------------------------

    async def _owner_state(self, ref: dict, dependent_ns: str | None, dependent: dict) -> str:
        """``solid``, ``absent`` or ``waiting`` (being deleted in the foreground)."""
        ident = owner_identity(ref, dependent_ns)
        info = ident.resource
        owner_uid = ref.get("uid") or ""
        if info is None:
            # Kind we cannot look up: never delete on a guess.
            self.log.warning("owner reference to an unknown kind", kind=ident.kind, api_version=ident.api_version)
            return "solid"
        if info.namespaced and not dependent_ns:
            self.recorder.warning(dependent, "OwnerRefInvalidNamespace",
                                  f"ownerRef [{ident.api_version}/{ident.kind}, namespace: , name: {ident.name}, "
                                  f"uid: {owner_uid}] does not exist in namespace \"\"")
            return "absent"
        if (owner_uid, ident) in self._absent:
            return "absent"
        owner = await self._live(ident, owner_uid)
        if owner is None:
            self._remember_absent(owner_uid, ident)
            return "absent"
        omd = owner["metadata"]
        if omd.get("deletionTimestamp") and FOREGROUND in (omd.get("finalizers") or []):
            return "waiting"
        return "solid"

    def _remember_absent(self, uid: str, ident: Identity) -> None:
        # uids are never reused, so an owner found absent stays absent.
        self._absent[(uid, ident)] = None
        self._absent.move_to_end((uid, ident))
        while len(self._absent) > ABSENT_CACHE_SIZE:
            self._absent.popitem(last=False)

    # --- API calls -------------------------------------------------------------------------

    async def _live(self, ident: Identity, uid: str) -> dict | None:
        """The object as the API server has it now, or None if absent or another object (uid)."""
        info = ident.resource
        if info is None:
            return {"metadata": {"uid": uid}}          # cannot look: treat as present
        try:
            obj = await self.client.get(info, ident.name, ident.namespace)
        except errors.NotFound:
            return None
        if (obj.get("metadata") or {}).get("uid") != uid:
            return None
        return obj

    async def _delete(self, ident: Identity, uid: str, policy: str) -> None:
        info = ident.resource
        if info is None:
            return
        try:
            await self.client.delete(info, ident.name, ident.namespace, propagation_policy=policy,
                                     preconditions={"uid": uid})
            self.deleted += 1
        except errors.NotFound:
            pass
        except errors.Conflict:
            pass           # the uid precondition failed: another object has the name now

    async def _rewrite_owner_refs(self, ident: Identity, uid: str, rewrite: Any) -> None:
        info = ident.resource
        if info is None:
            return
        for _ in range(WRITE_RETRIES):
            obj = await self._live(ident, uid)
            if obj is None:
                return
            md = obj["metadata"]
            refs = list(md.get("ownerReferences") or [])
            new = rewrite(refs)
            if new == refs:
                return
            patch = {"metadata": {"ownerReferences": new or None, "uid": uid,
                                  "resourceVersion": md["resourceVersion"]}}
            try:
                await self.client.patch(info, ident.name, patch, ident.namespace)
                return
            except errors.NotFound:
                return
            except errors.Conflict:
                continue
        raise errors.Conflict(f"could not update ownerReferences of {_describe(ident)}: too many conflicts")

    async def _remove_finalizer(self, ident: Identity, uid: str, finalizer: str) -> None:
        info = ident.resource
        if info is None:
            return
        for _ in range(WRITE_RETRIES):
            obj = await self._live(ident, uid)
            if obj is None:
                return
            md = obj["metadata"]
            finalizers = list(md.get("finalizers") or [])
            if finalizer not in finalizers:
                return
            rest = [f for f in finalizers if f != finalizer]
            patch = {"metadata": {"finalizers": rest, "uid": uid, "resourceVersion": md["resourceVersion"]}}
            try:
                await self.client.patch(info, ident.name, patch, ident.namespace)
                return
            except errors.NotFound:
                return
            except errors.Conflict:
                continue
        raise errors.Conflict(f"could not remove finalizer {finalizer} from {_describe(ident)}: too many conflicts")


def _describe(ident: Identity) -> str:
    info = resource_for(ident.api_version, ident.kind)
    what = info.plural if info is not None else ident.kind
    return f"{what}/{ident.namespace}/{ident.name}" if ident.namespace else f"{what}/{ident.name}"
