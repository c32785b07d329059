"""Object semantics over storage: what create, update, patch and delete mean for an API object.

This is where metadata is owned by the server (uid, creationTimestamp, resourceVersion,
generation, deletionTimestamp), where defaulting, admission and validation run in Kubernetes'
order, where finalizers and graceful deletion keep objects alive, and where a lost
compare-and-swap is retried or reported as 409 Conflict. Handlers above decode requests; storage
below only knows bytes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from api import defaults, fieldmanager, meta, schema, validation
from api.errors import (
    BadRequest,
    Cause,
    Conflict,
    Invalid,
    StatusError,
    already_exists,
    conflict,
    invalid,
    not_found,
)
from api.registry import ResourceInfo
from apiserver import codec
from apiserver.admission import Admission
from apiserver.storage import Backend, KeyExists, KeyNotFound, KeyValue, RevisionConflict

GENERATE_NAME_ATTEMPTS = 8


@dataclass
class DeleteOptions:
    grace_period_seconds: int | None = None
    propagation_policy: str | None = None      # Orphan | Background | Foreground
    precondition_uid: str | None = None
    precondition_rv: str | None = None
    dry_run: bool = False

    @classmethod
    def from_dict(cls, body: dict | None, query: dict[str, str]) -> DeleteOptions:
        body = body or {}
        pre = body.get("preconditions") or {}
        grace = body.get("gracePeriodSeconds", query.get("gracePeriodSeconds"))
        policy = body.get("propagationPolicy") or query.get("propagationPolicy")
        orphan = body.get("orphanDependents", query.get("orphanDependents"))
        if policy is None and orphan is not None:
            policy = "Orphan" if str(orphan).lower() == "true" else "Background"
        if policy not in (None, "Orphan", "Background", "Foreground"):
            raise Invalid(f'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: '
                          f'"{policy}": supported values: "Foreground", "Background", "Orphan"',
                          causes=[Cause("FieldValueNotSupported", f'Unsupported value: "{policy}"',
                                        "propagationPolicy")])
        dry = body.get("dryRun") or query.get("dryRun")
        try:
            grace_int = int(grace) if grace is not None else None
        except (TypeError, ValueError):
            raise BadRequest(f"invalid gracePeriodSeconds: {grace!r}") from None
        return cls(grace_int, policy, pre.get("uid"), pre.get("resourceVersion"),
                   bool(dry) and dry != [] and dry != "")


def _now() -> str:
    return meta.now_rfc3339()


def _rfc3339(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# (resource, storage key) -> (stored JSON with resourceVersion set, its revision) from the watch
# cache, or None when the cache does not hold the key.
Cached = Callable[[ResourceInfo, str], tuple[bytes, int] | None]


class ObjectStore:
    def __init__(self, backend: Backend, admission: Admission, cached: Cached | None = None):
        self.backend = backend
        self.admission = admission
        self.cached = cached

    # --- reads -----------------------------------------------------------------------------

    async def get_kv(self, r: ResourceInfo, ns: str | None, name: str) -> KeyValue:
        kv = await self.backend.get(r.storage_key(ns, name))
        if kv is None:
            raise not_found(r.plural, name, r.group)
        return kv

    async def get(self, r: ResourceInfo, ns: str | None, name: str) -> dict:
        kv = await self.get_kv(r, ns, name)
        return codec.decode_stored(kv.value, kv.mod_revision)

    def _hint(self, r: ResourceInfo, key: str, dry_run: bool) -> tuple[bytes, int] | None:
        """The watch cache's copy to start a read-modify-write from (not for dry runs, whose
        answer must reflect storage)."""
        return self.cached(r, key) if self.cached is not None and not dry_run else None

    async def _current(self, r: ResourceInfo, key: str, name: str,
                       hint: tuple[bytes, int] | None) -> tuple[bytes, int, bool]:
        """(stored JSON, revision, whether it came from the cache) of the object to modify."""
        if hint is not None:
            return hint[0], hint[1], True
        kv = await self.backend.get(key)
        if kv is None:
            raise not_found(r.plural, name, r.group)
        return kv.value, kv.mod_revision, False

    # --- create ----------------------------------------------------------------------------

    async def create(self, r: ResourceInfo, ns: str | None, obj: dict, *, dry_run: bool = False,
                     manager: str | None = None, warnings: list[str] | None = None) -> dict:
        """Store a new object; ``obj`` is the caller's private dict and is filled in place.
        ``manager`` (the field manager) is recorded as owning what it set; None when the caller
        already set managedFields (server-side apply). ``warnings``, when given, receives an
        ``unknown field "<path>"`` line per field the schema does not know (fieldValidation=Warn),
        found by the same pass that checks the structure."""
        md = obj.setdefault("metadata", {})
        if r.namespaced:
            md["namespace"] = ns
        else:
            md.pop("namespace", None)
        for k in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            md.pop(k, None)
        md["uid"] = meta.new_uid()
        md["creationTimestamp"] = _now()
        meta.set_generation(r.kind, obj)
        generated = not md.get("name") and bool(md.get("generateName"))
        if generated:
            md["name"] = meta.generate_name(md["generateName"])
        # Kubernetes' order: decoding defaults the object and drops unknown fields; the field
        # manager then owns what was decoded, defaults included; admission; validation.
        defaults.apply_defaults(obj)
        self._check_structure(r, obj, warnings)
        if manager is not None:
            md.pop("managedFields", None)
            fieldmanager.record_update(None, obj, schema.merge_info(r.group, r.version, r.kind),
                                       manager=manager, api_version=r.api_version)
        await self.admission.admit_create(r, obj, dry_run=dry_run)
        self._validate(r, obj, validation.validate_create(r, obj))
        if dry_run:
            return obj
        for attempt in range(GENERATE_NAME_ATTEMPTS):
            key = r.storage_key(ns, md["name"])
            try:
                kv = await self.backend.create(key, codec.encode_for_storage(obj))
            except KeyExists:
                if generated and attempt + 1 < GENERATE_NAME_ATTEMPTS:
                    md["name"] = meta.generate_name(md["generateName"])
                    continue
                await self.admission.release(r, obj)
                raise already_exists(r.plural, md["name"], r.group) from None
            self.admission.wrote(r, kv.mod_revision)
            md["resourceVersion"] = str(kv.mod_revision)
            return obj
        raise AssertionError("unreachable")

    def _check_structure(self, r: ResourceInfo, obj: dict, warnings: list[str] | None = None) -> None:
        """Refuse structural errors (wrong types, missing required fields) on their own, before
        any semantic rule runs, and drop the fields the kind does not have, as decoding into
        Kubernetes' typed objects does. ``warnings``, when given, gets an ``unknown field
        "<path>"`` line for each (fieldValidation=Warn); Strict refused them earlier."""
        structural, unknown = schema.check(obj, prune=True)
        if structural:
            raise invalid(r.kind, (obj.get("metadata") or {}).get("name", ""), structural, r.group)
        if warnings is not None:
            for f in unknown:                   # once each, over the retries of an update
                line = f'unknown field "{f}"'
                if line not in warnings:
                    warnings.append(line)

    @staticmethod
    def _validate(r: ResourceInfo, obj: dict, causes: list[Cause]) -> None:
        """The semantic rules' verdict, on an object that decoded cleanly."""
        if causes:
            name = (obj.get("metadata") or {}).get("name", "")
            raise invalid(r.kind, name, list(causes), r.group)

    # --- update ----------------------------------------------------------------------------

    async def update(self, r: ResourceInfo, ns: str | None, name: str, new: dict, *,
                     subresource: str = "", dry_run: bool = False, manager: str | None = None,
                     warnings: list[str] | None = None) -> dict:
        """Replace an object (PUT). A resourceVersion in ``new`` makes it conditional (409 when
        stale); without one the update is retried against the latest version."""
        want = (new.get("metadata") or {}).get("resourceVersion") or ""

        async def mutate(old: dict) -> dict:
            if want and want != old["metadata"]["resourceVersion"]:
                raise conflict(r.plural, name, r.group)
            return meta.deep_copy(new)

        return await self.guaranteed_update(r, ns, name, mutate, subresource=subresource,
                                            dry_run=dry_run, manager=manager, warnings=warnings)

    async def guaranteed_update(self, r: ResourceInfo, ns: str | None, name: str,
                                mutate: Callable[[dict], Awaitable[dict]], *, subresource: str = "",
                                dry_run: bool = False, retries: int = 16,
                                manager: str | None = None, internal: bool = False,
                                warnings: list[str] | None = None) -> dict:
        """Read, ``mutate(current) -> desired``, write with compare-and-swap; retry when another
        writer got there first. ``mutate`` raises Conflict itself when the caller pinned a version.
        ``internal`` writes (pod binding) are the server's own edits of a stored object: they skip
        the user-facing update rules (a pod's immutable spec), defaulting, validation and field
        ownership."""
        key = r.storage_key(ns, name)
        # The first attempt starts from the watch cache's copy, as Kubernetes' GuaranteedUpdate
        # does: the write's compare-and-swap catches a stale copy, and any refusal computed from
        # one (a Conflict on a pinned version, a validation error) is retried from storage
        # before it is believed.
        hint = self._hint(r, key, dry_run)
        for _ in range(retries):
            data, revision, from_cache = await self._current(r, key, name, hint)
            hint = None
            old = codec.decode_stored(data, revision)
            try:
                desired = await mutate(codec.decode_stored(data, revision))
                obj = self._merge_update(r, old, desired, subresource, manager, internal, warnings)
            except StatusError:
                if from_cache:
                    continue
                raise
            if obj == old:
                if from_cache:
                    continue                             # a no-op against a copy that may be stale
                return old                               # no-op: no write, no new version
            if _should_delete_after_update(r, obj):
                try:
                    gone = await self.backend.delete(key, expected_revision=revision)
                except RevisionConflict:
                    continue
                except KeyNotFound:
                    raise not_found(r.plural, name, r.group) from None
                self.admission.wrote(r, gone.mod_revision)
                return obj
            if dry_run:
                return obj
            try:
                new_kv = await self.backend.update(key, codec.encode_for_storage(obj),
                                                   expected_revision=revision)
            except RevisionConflict:
                continue
            except KeyNotFound:
                raise not_found(r.plural, name, r.group) from None
            self.admission.wrote(r, new_kv.mod_revision)
            obj["metadata"]["resourceVersion"] = str(new_kv.mod_revision)
            return obj
        raise conflict(r.plural, name, r.group, "too many concurrent writers; try again")

    def _merge_update(self, r: ResourceInfo, old: dict, new: dict, subresource: str,
                      manager: str | None = None, internal: bool = False,
                      warnings: list[str] | None = None) -> dict:
        """What is stored when ``new`` replaces ``old``: server-owned metadata is kept, and spec and
        status are split between the main resource and /status as Kubernetes does."""
        new.setdefault("kind", r.kind)
        new.setdefault("apiVersion", r.api_version)
        if new.get("kind") != r.kind or new.get("apiVersion") != r.api_version:
            raise BadRequest(f"the object kind {new.get('apiVersion')}/{new.get('kind')} does not match "
                             f"the resource {r.api_version}/{r.kind}")
        md = new.setdefault("metadata", {})
        if not isinstance(md, dict):
            raise BadRequest("metadata must be an object")
        omd = old["metadata"]
        if md.get("name", omd["name"]) != omd["name"]:
            raise BadRequest(f'the name of the object ({md.get("name")}) does not match the name on the URL '
                             f'({omd["name"]})')
        if r.namespaced and md.get("namespace", omd.get("namespace")) != omd.get("namespace"):
            raise BadRequest("the namespace of the provided object does not match the namespace sent on "
                             "the request")
        if md.get("uid") and md["uid"] != omd.get("uid"):
            raise Conflict(f'Precondition failed: UID in precondition: {omd.get("uid")}, UID in object '
                           f'meta: {md["uid"]}', kind=r.plural, name=omd["name"], group=r.group)
        if subresource == "status":
            obj = meta.deep_copy(old)
            if "status" in new:
                obj["status"] = new["status"]
            else:
                obj.pop("status", None)
        elif subresource == "binding":
            obj = new                     # binding sets spec.nodeName and PodScheduled in one write
        elif subresource == "finalize":
            obj = meta.deep_copy(old)
            obj.setdefault("spec", {})["finalizers"] = (new.get("spec") or {}).get("finalizers") or []
        else:
            obj = new
            if r.has_status:
                if "status" in old:
                    obj["status"] = old["status"]
                else:
                    obj.pop("status", None)
        md = obj["metadata"]
        for k in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp",
                  "deletionGracePeriodSeconds", "generation"):
            if k in omd:
                md[k] = omd[k]
            else:
                md.pop(k, None)
        md.pop("resourceVersion", None)
        if "managedFields" not in md and "managedFields" in omd:
            md["managedFields"] = omd["managedFields"]
        if subresource == "":
            meta.set_generation(r.kind, obj, old)
        if "deletionTimestamp" in omd:
            added = set(md.get("finalizers") or []) - set(omd.get("finalizers") or [])
            if added:
                raise invalid(r.kind, omd["name"], [Cause(
                    "FieldValueForbidden", "Forbidden: no new finalizers can be added if the object is "
                    "being deleted, found new finalizers " + str(sorted(added)), "metadata.finalizers")],
                    r.group)
        if subresource == "":
            self.admission.prepare_update(r, old, obj)
        if internal:
            # The server's own change to a stored, valid object (a binding): neither defaults nor
            # the schema have anything to say, and no field manager records it; Kubernetes'
            # binding storage writes the pod the same way.
            return obj
        defaults.apply_defaults(obj, create=False)
        self._check_structure(r, obj, warnings)
        old_cmp = dict(old)
        old_cmp["metadata"] = {k: v for k, v in omd.items() if k != "resourceVersion"}
        if obj == old_cmp:
            obj["metadata"]["resourceVersion"] = omd["resourceVersion"]
            return old
        if manager is not None:
            fieldmanager.record_update(old_cmp, obj, schema.merge_info(r.group, r.version, r.kind),
                                       manager=manager, api_version=r.api_version,
                                       subresource=subresource if subresource == "status" else "")
        self._validate(r, obj, validation.validate_update(r, old_cmp, obj))
        return obj

    # --- delete ----------------------------------------------------------------------------

    async def delete(self, r: ResourceInfo, ns: str | None, name: str, opts: DeleteOptions) -> dict:
        """Delete, or start deleting: objects with finalizers and pods on a node get a
        deletionTimestamp and stay until their finalizers are gone or the node confirms."""
        key = r.storage_key(ns, name)
        hint = self._hint(r, key, opts.dry_run)
        for _ in range(16):
            data, revision, from_cache = await self._current(r, key, name, hint)
            hint = None
            old = codec.decode_stored(data, revision)
            omd = old["metadata"]
            stale_uid = opts.precondition_uid and opts.precondition_uid != omd.get("uid")
            stale_rv = opts.precondition_rv and opts.precondition_rv != omd["resourceVersion"]
            if from_cache and (stale_uid or stale_rv):
                continue                                 # judged against a copy: ask storage
            if opts.precondition_uid and opts.precondition_uid != omd.get("uid"):
                raise Conflict(f'Precondition failed: UID in precondition: {opts.precondition_uid}, '
                               f'UID in object meta: {omd.get("uid")}', kind=r.plural, name=name,
                               group=r.group)
            if opts.precondition_rv and opts.precondition_rv != omd["resourceVersion"]:
                raise Conflict(f"Precondition failed: ResourceVersion in precondition: "
                               f"{opts.precondition_rv}, ResourceVersion in object meta: "
                               f"{omd['resourceVersion']}", kind=r.plural, name=name, group=r.group)
            obj = codec.decode_stored(data, revision)
            md = obj["metadata"]
            finalizers = list(md.get("finalizers") or [])
            policy = opts.propagation_policy
            if policy == "Orphan" and "orphan" not in finalizers:
                finalizers.append("orphan")
            elif policy == "Foreground" and "foregroundDeletion" not in finalizers:
                finalizers.append("foregroundDeletion")
            if policy in ("Background", "Foreground"):
                finalizers = [f for f in finalizers if f != "orphan"] if policy else finalizers
            if policy in ("Background", "Orphan"):
                finalizers = [f for f in finalizers if f != "foregroundDeletion"]
            grace = self._grace_period(r, old, opts)
            namespace_finalizers = r.kind == "Namespace" and bool((old.get("spec") or {}).get("finalizers"))
            keep = bool(finalizers) or grace > 0 or namespace_finalizers
            if not keep:
                if opts.dry_run:
                    return old
                try:
                    gone = await self.backend.delete(key, expected_revision=revision)
                except RevisionConflict:
                    continue
                except KeyNotFound:
                    raise not_found(r.plural, name, r.group) from None
                self.admission.wrote(r, gone.mod_revision)
                await self.admission.release(r, old)
                old["metadata"]["resourceVersion"] = str(gone.mod_revision)
                return old
            if finalizers:
                md["finalizers"] = finalizers
            now = datetime.now(UTC)
            if "deletionTimestamp" not in md:
                md["deletionTimestamp"] = _rfc3339(now + timedelta(seconds=grace))
                md["deletionGracePeriodSeconds"] = grace
            elif grace < int(md.get("deletionGracePeriodSeconds") or 0):
                md["deletionTimestamp"] = _rfc3339(now + timedelta(seconds=grace))
                md["deletionGracePeriodSeconds"] = grace
            if r.kind == "Namespace":
                obj.setdefault("status", {})["phase"] = "Terminating"
            if obj == old:
                if from_cache:
                    continue
                return old
            if opts.dry_run:
                return obj
            md.pop("resourceVersion", None)
            try:
                new_kv = await self.backend.update(key, codec.encode_for_storage(obj),
                                                   expected_revision=revision)
            except RevisionConflict:
                continue
            self.admission.wrote(r, new_kv.mod_revision)
            md["resourceVersion"] = str(new_kv.mod_revision)
            return obj
        raise conflict(r.plural, name, r.group, "too many concurrent writers; try again")

    @staticmethod
    def _grace_period(r: ResourceInfo, obj: dict, opts: DeleteOptions) -> int:
        """Seconds a deletion waits: only pods bound to a node and still running wait."""
        if r.kind != "Pod":
            return 0
        spec = obj.get("spec") or {}
        phase = (obj.get("status") or {}).get("phase")
        if not spec.get("nodeName") or phase in ("Succeeded", "Failed"):
            return 0
        if opts.grace_period_seconds is not None:
            return max(0, opts.grace_period_seconds)
        current = (obj.get("metadata") or {}).get("deletionGracePeriodSeconds")
        if current is not None:
            return int(current)
        return int(spec.get("terminationGracePeriodSeconds", 30))


def _should_delete_after_update(r: ResourceInfo, obj: dict) -> bool:
    md = obj["metadata"]
    if "deletionTimestamp" not in md or md.get("finalizers"):
        return False
    if r.kind == "Namespace" and (obj.get("spec") or {}).get("finalizers"):
        return False
    if r.kind == "Pod" and int(md.get("deletionGracePeriodSeconds") or 0) > 0:
        return False
    return True


def require_object(body: Any, what: str = "body") -> dict:
    if not isinstance(body, dict):
        raise BadRequest(f"the {what} must be a JSON object, got {type(body).__name__}")
    return body


__all__ = ["DeleteOptions", "ObjectStore", "StatusError", "require_object"]
