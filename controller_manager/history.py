"""ControllerRevisions: the template history of DaemonSets and StatefulSets.

A revision is an apps/v1 ControllerRevision named ``<owner>-<hash>``, owned (as controller) by
the DaemonSet or StatefulSet, labelled with the owner's template labels and
``controller.kubernetes.io/hash``, annotated as the owner was when it was written, whose
``data`` is the patch that restores the owner's pod template
(``{"spec": {"template": {..., "$patch": "replace"}}}``) and whose ``revision`` is a number
growing with each new template. Going back to an earlier template renumbers its existing
revision rather than writing a new one. A hash collision (same name, different data) bumps the
owner's ``collisionCount`` and hashes again. Revisions beyond ``revisionHistoryLimit`` that no
live pod uses are deleted, oldest first.

``sync_revisions`` does all of this for one owner and returns a ``History``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from api import errors, meta
from controller_manager.common import claim, owner_ref_for, selector_of
from controller_manager.deploymentutil import fnv32a, safe_encode

REVISIONS = "controllerrevisions.apps"
HASH_LABEL = "controller.kubernetes.io/hash"
MAX_COLLISIONS = 10


def template_patch(owner: dict) -> dict:
    """The revision data of an owner: its pod template, as a patch that replaces the template."""
    template = meta.deep_copy((owner.get("spec") or {}).get("template") or {})
    md = template.get("metadata")
    if isinstance(md, dict):
        md = {k: v for k, v in md.items() if v is not None}
        if md:
            template["metadata"] = md
        else:
            template.pop("metadata")
    template["$patch"] = "replace"
    return {"spec": {"template": template}}


def template_of(revision: dict) -> dict:
    """The pod template a revision records."""
    template = meta.deep_copy((((revision.get("data") or {}).get("spec") or {}).get("template")) or {})
    template.pop("$patch", None)
    return template


def revision_hash(data: dict, collision_count: int | None = None) -> str:
    """Stable across processes: FNV-32a over the data with sorted keys, then the collision count."""
    h = fnv32a(orjson.dumps(data, option=orjson.OPT_SORT_KEYS))
    if collision_count:
        h = fnv32a((collision_count & 0xFFFFFFFF).to_bytes(4, "little"), h)
    return safe_encode(str(h))


def revision_number(revision: dict) -> int:
    return int(revision.get("revision") or 0)


def hash_of(revision: dict) -> str:
    return meta.labels_of(revision).get(HASH_LABEL, "")


def new_revision(owner: dict, data: dict, number: int, collision_count: int | None) -> dict:
    h = revision_hash(data, collision_count)
    labels = dict((((owner.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {})
    labels[HASH_LABEL] = h
    md: dict[str, Any] = {"name": f"{owner['metadata']['name']}-{h}", "namespace": owner["metadata"]["namespace"],
                          "labels": labels, "ownerReferences": [owner_ref_for(owner)]}
    annotations = owner["metadata"].get("annotations")
    if annotations:
        # kubectl rollout history reads the change cause of each revision from here.
        md["annotations"] = dict(annotations)
    return {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": md, "data": data,
            "revision": number}


@dataclass
class History:
    revisions: list[dict]            # claimed, oldest revision number first
    update: dict                     # the revision of the owner's current template
    collision_count: int


def sort_revisions(revisions: list[dict]) -> list[dict]:
    return sorted(revisions, key=lambda r: (revision_number(r), r["metadata"].get("creationTimestamp") or "",
                                            r["metadata"]["name"]))


async def claim_revisions(client: Any, owner: dict, candidates: list[dict]) -> list[dict]:
    return await claim(client, REVISIONS, owner, candidates, selector_of(owner))


async def sync_revisions(client: Any, owner: dict, candidates: list[dict]) -> History:
    """Claim the owner's revisions and make sure one records its current template with the
    highest revision number (creating or renumbering it)."""
    revisions = sort_revisions(await claim_revisions(client, owner, candidates))
    collision_count = int((owner.get("status") or {}).get("collisionCount") or 0)
    data = template_patch(owner)
    latest = revisions[-1] if revisions else None
    next_number = revision_number(latest) + 1 if latest else 1
    equal = [r for r in revisions if r.get("data") == data]
    if equal:
        found = equal[-1]
        if found is latest:
            return History(revisions, found, collision_count)
        updated = await _renumber(client, found, next_number)
        revisions = sort_revisions([updated if r is found else r for r in revisions])
        return History(revisions, updated, collision_count)
    created, collision_count = await create_revision(client, owner, data, next_number, collision_count)
    revisions = sort_revisions([r for r in revisions if r["metadata"]["name"] != created["metadata"]["name"]]
                               + [created])
    return History(revisions, created, collision_count)


async def create_revision(client: Any, owner: dict, data: dict, number: int,
                          collision_count: int) -> tuple[dict, int]:
    """Create the revision, or adopt an identical one already stored under its name; a different
    one stored there is a collision: hash again with a bigger count. Returns (revision, count)."""
    ns = owner["metadata"]["namespace"]
    for _ in range(MAX_COLLISIONS):
        rev = new_revision(owner, data, number, collision_count)
        try:
            return await client.create(REVISIONS, rev, ns), collision_count
        except errors.AlreadyExists:
            existing = await client.get(REVISIONS, rev["metadata"]["name"], ns)
            ref = next((r for r in existing["metadata"].get("ownerReferences") or [] if r.get("controller")), None)
            if existing.get("data") == data and ref is not None and ref.get("uid") == owner["metadata"]["uid"]:
                if revision_number(existing) != number:
                    existing = await _renumber(client, existing, number)
                return existing, collision_count
            collision_count += 1
    raise errors.Conflict(f"too many ControllerRevision hash collisions for {meta.key_of(owner)}")


async def _renumber(client: Any, revision: dict, number: int) -> dict:
    md = revision["metadata"]
    return await client.patch(REVISIONS, md["name"], {"revision": number}, md["namespace"])


async def truncate_history(client: Any, owner: dict, revisions: list[dict], keep: set[str]) -> int:
    """Delete the oldest revisions beyond ``revisionHistoryLimit`` whose names are not in
    ``keep`` (the current and update revisions and those live pods use). Returns how many."""
    limit = (owner.get("spec") or {}).get("revisionHistoryLimit")
    limit = 10 if limit is None else int(limit)
    unused = [r for r in sort_revisions(revisions) if r["metadata"]["name"] not in keep]
    excess = len(unused) - limit
    deleted = 0
    for r in unused[:max(0, excess)]:
        md = r["metadata"]
        try:
            await client.delete(REVISIONS, md["name"], md["namespace"], preconditions={"uid": md["uid"]})
            deleted += 1
        except (errors.NotFound, errors.Conflict):
            pass
    return deleted
