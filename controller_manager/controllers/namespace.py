"""The namespace controller: empties a Terminating namespace, then lets the API server remove it.

``reconcile(name)`` acts on a namespace with a deletionTimestamp whose ``spec.finalizers`` still
holds ``kubernetes``: it deletes every object of every namespaced resource of the registry in it
(a collection delete, Background propagation, where the resource allows it; one by one
otherwise), lists again to see what remains, writes the deletion conditions Kubernetes writes
(``NamespaceDeletionDiscoveryFailure``, ``NamespaceDeletionGroupVersionParsingFailure``,
``NamespaceDeletionContentFailure``, ``NamespaceContentRemaining``,
``NamespaceFinalizersRemaining``) and comes back later while anything remains: after the longest
pod grace period left, or a few seconds. Once the namespace is empty it PUTs
``/api/v1/namespaces/<name>/finalize`` without ``kubernetes``; with no finalizers left the API
server deletes the namespace.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from api import errors, meta, registry
from client.events import rfc3339
from client.informer import copy_object
from controller_manager.base import Controller, ControllerContext

FINALIZER = "kubernetes"
NAMESPACES = "namespaces"
DEFAULT_RECHECK = 5.0      # seconds before looking again at content with nothing to estimate by
MIN_RECHECK = 1.0

# Condition type -> (reason when fine, message when fine, reason on trouble).
CONDITIONS: tuple[tuple[str, str, str, str], ...] = (
    ("NamespaceDeletionDiscoveryFailure", "ResourcesDiscovered", "All resources successfully discovered",
     "DiscoveryFailed"),
    ("NamespaceDeletionGroupVersionParsingFailure", "ParsedGroupVersions",
     "All legacy kube types successfully parsed", "GroupVersionParsingFailed"),
    ("NamespaceDeletionContentFailure", "ContentDeleted", "All content successfully deleted, may be waiting on "
     "finalization", "ContentDeletionFailed"),
    ("NamespaceContentRemaining", "ContentRemoved", "All content successfully removed", "SomeResourcesRemain"),
    ("NamespaceFinalizersRemaining", "ContentHasNoFinalizers", "All content-preserving finalizers finished",
     "SomeFinalizersRemain"),
)


def namespaced_resources() -> list[registry.ResourceInfo]:
    return [r for r in registry.RESOURCES if r.namespaced and "list" in r.verbs and "delete" in r.verbs]


def group_resource(r: registry.ResourceInfo) -> str:
    return f"{r.plural}.{r.group}" if r.group else r.plural


@dataclass
class Sweep:
    """What one pass over a namespace's content found."""

    remaining: dict[str, int] = field(default_factory=dict)            # group-resource -> objects left
    finalizers: dict[str, int] = field(default_factory=dict)           # finalizer -> objects holding it
    failures: list[str] = field(default_factory=list)                  # errors deleting or listing
    estimate: float = 0.0                                              # seconds until it should be gone


class NamespaceController(Controller):
    name: ClassVar[str] = "namespace"
    workers: ClassVar[int] = 10

    def __init__(self, ctx: ControllerContext):
        super().__init__(ctx)
        self.recorder = ctx.recorder("namespace-controller")
        self.namespaces = ctx.informers.informer_for(NAMESPACES)
        self.namespaces.add_event_handler(on_add=self._changed, on_update=lambda old, new: self._changed(new))

    def _changed(self, ns: dict) -> None:
        if (ns.get("metadata") or {}).get("deletionTimestamp"):
            self.enqueue(ns)

    async def reconcile(self, key: str) -> float | None:
        ns = self.namespaces.get(key)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return None
        try:
            ns = await self.client.get(NAMESPACES, key)
        except errors.NotFound:
            return None
        if not ns["metadata"].get("deletionTimestamp"):
            return None
        if FINALIZER not in ((ns.get("spec") or {}).get("finalizers") or []):
            return None
        sweep = await self.delete_content(key)
        ns = await self._write_conditions(ns, sweep)
        if sweep.failures:
            raise RuntimeError(f"namespace {key}: content deletion failed: {'; '.join(sweep.failures)}")
        if sweep.remaining:
            self.log.info("namespace content remaining", namespace=key, remaining=sweep.remaining,
                          estimate=sweep.estimate)
            return max(MIN_RECHECK, sweep.estimate or DEFAULT_RECHECK)
        await self._finalize(ns)
        return None

    # --- content ---------------------------------------------------------------------------

    async def delete_content(self, namespace: str) -> Sweep:
        """Delete every object in the namespace once, then count what is still there."""
        sweep = Sweep()
        now = datetime.now(UTC)
        for r in namespaced_resources():
            gr = group_resource(r)
            try:
                await self._delete_all(r, namespace)
            except errors.StatusError as e:
                sweep.failures.append(f"{gr}: {e}")
                continue
            try:
                left = (await self.client.list_all(r, namespace)).get("items") or []
            except errors.StatusError as e:
                sweep.failures.append(f"{gr}: {e}")
                continue
            if not left:
                continue
            sweep.remaining[gr] = len(left)
            for obj in left:
                md = obj.get("metadata") or {}
                for f in md.get("finalizers") or []:
                    sweep.finalizers[f] = sweep.finalizers.get(f, 0) + 1
                if r.kind == "Pod" and md.get("deletionTimestamp"):
                    # A pod's deletionTimestamp is when its grace period runs out.
                    wait = (meta.parse_rfc3339(md["deletionTimestamp"]) - now).total_seconds()
                    sweep.estimate = max(sweep.estimate, wait)
        return sweep

    async def _delete_all(self, r: registry.ResourceInfo, namespace: str) -> None:
        if "deletecollection" in r.verbs:
            try:
                await self.client.delete_collection(r, namespace, propagation_policy="Background")
                return
            except errors.MethodNotAllowed:
                pass
        for obj in (await self.client.list_all(r, namespace)).get("items") or []:
            md = obj.get("metadata") or {}
            if md.get("deletionTimestamp"):
                continue
            try:
                await self.client.delete(r, md["name"], namespace, propagation_policy="Background",
                                         preconditions={"uid": md["uid"]})
            except (errors.NotFound, errors.Conflict):
                pass

    # --- status and finalize ---------------------------------------------------------------

    async def _write_conditions(self, ns: dict, sweep: Sweep) -> dict:
        troubles: dict[str, str] = {}
        if sweep.failures:
            troubles["NamespaceDeletionContentFailure"] = (
                "Failed to delete all resource types, " + str(len(sweep.failures)) + " remaining: "
                + ", ".join(sorted(sweep.failures)))
        if sweep.remaining:
            troubles["NamespaceContentRemaining"] = "Some resources are remaining: " + ", ".join(
                f"{gr} has {n} resource instances" for gr, n in sorted(sweep.remaining.items()))
        if sweep.finalizers:
            troubles["NamespaceFinalizersRemaining"] = "Some content in the namespace has finalizers remaining: " + \
                ", ".join(f"{f} in {n} resource instances" for f, n in sorted(sweep.finalizers.items()))
        want = conditions_for(ns, troubles, self.clock.now())
        status = ns.get("status") or {}
        if want == (status.get("conditions") or []) and status.get("phase") == "Terminating":
            return ns
        new = copy_object(ns)
        new.setdefault("status", {})["conditions"] = want
        new["status"]["phase"] = "Terminating"
        try:
            return await self.client.update_status(NAMESPACES, new)
        except errors.Conflict:
            return await self.client.get(NAMESPACES, ns["metadata"]["name"])

    async def _finalize(self, ns: dict) -> None:
        new = copy_object(ns)
        new["spec"]["finalizers"] = [f for f in new["spec"].get("finalizers") or [] if f != FINALIZER]
        name = ns["metadata"]["name"]
        try:
            await self.client.request("PUT", self.client.path(NAMESPACES, None, name, "finalize"), body=new)
        except errors.NotFound:
            return
        self.log.info("namespace emptied and finalized", namespace=name)


def conditions_for(ns: dict, troubles: dict[str, str], now: float) -> list[dict[str, Any]]:
    """The deletion conditions: True with the trouble's message, else False with the fine reason.
    Unchanged statuses keep their lastTransitionTime; other conditions are kept as they are."""
    current = {c.get("type"): c for c in (ns.get("status") or {}).get("conditions") or []}
    ours = {c[0] for c in CONDITIONS}
    out = [c for t, c in current.items() if t not in ours]
    stamp = rfc3339(now)
    for ctype, ok_reason, ok_message, bad_reason in CONDITIONS:
        if ctype in troubles:
            status, reason, message = "True", bad_reason, troubles[ctype]
        else:
            status, reason, message = "False", ok_reason, ok_message
        old = current.get(ctype)
        since = old.get("lastTransitionTime") if old and old.get("status") == status else None
        out.append({"type": ctype, "status": status, "lastTransitionTime": since or stamp,
                    "reason": reason, "message": message})
    return out
