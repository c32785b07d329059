"""Pieces several controllers share, with Kubernetes' semantics.

- ``Expectations``: how many creates/deletes a controller has asked for and not yet seen in its
  informer, so a slow watch never makes it act twice (client-go's ControllerExpectations).
- Pod state: ready, available after minReadySeconds, active (not terminal, not being deleted).
- Owner references: the controller reference of an object, claiming orphans that match a
  selector and releasing owned objects that stopped matching (ControllerRefManager).
- Pods from templates: a pod (or any object) created from a template with the controller as its
  owner and ``generateName``.
- Informer indexes by controller uid and of orphans, and what a claim looks at.
- The order in which a controller deletes pods when it scales down (Kubernetes' ActivePods sort).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from api import errors, meta
from api.selectors import DOUBLE_EQUALS, EQUALS, IN, LabelSelector, from_label_selector
from client.informer import Informer, copy_object

EXPECTATIONS_TIMEOUT = 300.0          # seconds after which unmet expectations are given up on


# --- expectations --------------------------------------------------------------------------

@dataclass
class _Expected:
    add: int = 0
    delete: int = 0
    at: float = field(default_factory=time.monotonic)
    deleting: set[str] = field(default_factory=set)   # keys of pods we asked to delete (UIDs)


class Expectations:
    """Per controller key: creates and deletes asked for but not yet observed.

    ``satisfied(key)`` is True when nothing is outstanding (or the expectation expired), and only
    then may the controller compute a new diff. Informer handlers call ``creation_observed`` and
    ``deletion_observed``; a failed API call lowers the expectation itself.
    """

    def __init__(self, clock: Any = None, timeout: float = EXPECTATIONS_TIMEOUT):
        self._by_key: dict[str, _Expected] = {}
        self._clock = clock
        self.timeout = timeout

    def _now(self) -> float:
        return self._clock.now() if self._clock is not None else time.monotonic()

    def satisfied(self, key: str) -> bool:
        e = self._by_key.get(key)
        if e is None:
            return True
        if e.add <= 0 and e.delete <= 0:
            return True
        return self._now() - e.at > self.timeout

    def expect_creations(self, key: str, n: int) -> None:
        self._by_key[key] = _Expected(add=n, at=self._now())

    def expect_deletions(self, key: str, uids: list[str]) -> None:
        self._by_key[key] = _Expected(delete=len(uids), at=self._now(), deleting=set(uids))

    def creation_observed(self, key: str) -> None:
        e = self._by_key.get(key)
        if e is not None:
            e.add -= 1

    def deletion_observed(self, key: str, uid: str | None = None) -> None:
        e = self._by_key.get(key)
        if e is None:
            return
        if uid is not None:
            if uid not in e.deleting:
                return
            e.deleting.discard(uid)
        e.delete -= 1

    def forget(self, key: str) -> None:
        self._by_key.pop(key, None)


# --- pod state -----------------------------------------------------------------------------

def condition(obj: dict, type_: str) -> dict | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return c
    return None


def is_pod_ready(pod: dict) -> bool:
    c = condition(pod, "Ready")
    return c is not None and c.get("status") == "True"


def is_pod_available(pod: dict, min_ready_seconds: int, now: datetime | None = None) -> bool:
    """Ready for at least ``min_ready_seconds`` (by the Ready condition's lastTransitionTime)."""
    c = condition(pod, "Ready")
    if c is None or c.get("status") != "True":
        return False
    if min_ready_seconds <= 0:
        return True
    since = c.get("lastTransitionTime")
    if not since:
        return False
    now = now or datetime.now(UTC)
    return (now - meta.parse_rfc3339(since)).total_seconds() >= min_ready_seconds


TERMINAL_PHASES = ("Succeeded", "Failed")


def is_pod_active(pod: dict) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return phase not in TERMINAL_PHASES and not (pod.get("metadata") or {}).get("deletionTimestamp")


def is_terminating(obj: dict) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


# --- ownership -----------------------------------------------------------------------------

def controller_ref(obj: dict) -> dict | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def owner_ref_for(owner: dict, *, block_owner_deletion: bool = True) -> dict:
    md = owner["metadata"]
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": md["name"], "uid": md["uid"],
            "controller": True, "blockOwnerDeletion": block_owner_deletion}


def selector_of(owner: dict) -> LabelSelector:
    """The owner's spec.selector; an empty or missing selector selects nothing (as for workloads)."""
    sel = (owner.get("spec") or {}).get("selector")
    if not sel:
        return LabelSelector.nothing()
    s = from_label_selector(sel)
    return LabelSelector.nothing() if s.empty() else s


def label_matcher(selector: LabelSelector) -> Callable[[Mapping[str, str]], bool]:
    """``selector.matches`` for labels, compiled: a selector of equalities (all that workload
    selectors usually hold) becomes one subset test of dict items, run per object of a claim."""
    reqs = selector.requirements
    if not reqs:
        return selector.matches
    if all(r.operator in (EQUALS, DOUBLE_EQUALS, IN) and len(r.values) == 1 for r in reqs):
        wanted = {r.key: r.values[0] for r in reqs}.items()
        return lambda labels: wanted <= labels.items()
    return selector.matches


async def claim(client: Any, resource: str, owner: dict, candidates: list[dict],
                selector: LabelSelector) -> list[dict]:
    """The objects ``owner`` controls after adopting matching orphans and releasing owned objects
    that no longer match (ControllerRefManager). Adoption and release are PATCHes of
    ownerReferences guarded by the object's uid; an owner being deleted adopts nothing.

    Runs over every object an owner has on each of its syncs, so the loop is kept lean."""
    uid = owner["metadata"]["uid"]
    matches = label_matcher(selector)
    owner_terminating = is_terminating(owner)
    mine: list[dict] = []
    for obj in candidates:
        md = obj.get("metadata") or {}
        ref = None
        for r in md.get("ownerReferences") or ():
            if r.get("controller"):
                ref = r
                break
        labels = md.get("labels") or {}
        if ref is not None:
            if ref.get("uid") != uid:
                continue
            if matches(labels):
                mine.append(obj)
            elif not md.get("deletionTimestamp"):
                await _release(client, resource, owner, obj)
            continue
        if owner_terminating or md.get("deletionTimestamp") or not matches(labels):
            continue
        adopted = await _adopt(client, resource, owner, obj)
        if adopted is not None:
            mine.append(adopted)
    return mine


async def _adopt(client: Any, resource: str, owner: dict, obj: dict) -> dict | None:
    md = obj["metadata"]
    refs = list(md.get("ownerReferences") or []) + [owner_ref_for(owner)]
    patch = {"metadata": {"ownerReferences": refs, "uid": md["uid"]}}
    try:
        return await client.patch(resource, md["name"], patch, md.get("namespace"))
    except (errors.NotFound, errors.Conflict, errors.Invalid):
        return None


async def _release(client: Any, resource: str, owner: dict, obj: dict) -> None:
    md = obj["metadata"]
    refs = [r for r in md.get("ownerReferences") or [] if r.get("uid") != owner["metadata"]["uid"]]
    patch = {"metadata": {"ownerReferences": refs or None, "uid": md["uid"]}}
    try:
        await client.patch(resource, md["name"], patch, md.get("namespace"))
    except (errors.NotFound, errors.Conflict, errors.Invalid):
        pass


# --- objects from templates ----------------------------------------------------------------

def pod_from_template(template: dict, owner: dict, *, name: str | None = None,
                      generate_name: str | None = None, extra_labels: dict[str, str] | None = None) -> dict:
    """A Pod built from a PodTemplateSpec, owned (as controller) by ``owner``."""
    tmpl = copy_object(template or {})
    tmeta = tmpl.get("metadata") or {}
    md: dict[str, Any] = {
        "labels": {**(tmeta.get("labels") or {}), **(extra_labels or {})},
        "ownerReferences": [owner_ref_for(owner)],
    }
    if tmeta.get("annotations"):
        md["annotations"] = dict(tmeta["annotations"])
    if tmeta.get("finalizers"):
        md["finalizers"] = list(tmeta["finalizers"])
    if name:
        md["name"] = name
    else:
        md["generateName"] = generate_name or owner["metadata"]["name"] + "-"
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": tmpl.get("spec") or {}}


# --- indexes of owned objects ----------------------------------------------------------------

OWNER_INDEX = "controller-uid"          # pods (or ReplicaSets) by their controller's uid
ORPHAN_INDEX = "orphans-by-namespace"   # objects without a controller, by namespace

_PHASE_ORDER = {"Pending": 0, "Unknown": 1, "Running": 2}


def _owner_uid(obj: dict) -> list[str]:
    ref = controller_ref(obj)
    return [ref["uid"]] if ref and ref.get("uid") else []


def _orphan_ns(obj: dict) -> list[str]:
    if controller_ref(obj) is not None:
        return []
    ns = (obj.get("metadata") or {}).get("namespace")
    return [ns] if ns else []


def ensure_owner_indexes(informer: Informer) -> None:
    """Index an informer's objects by controller uid and orphans by namespace (once per informer,
    whichever controller asks first)."""
    for name, fn in ((OWNER_INDEX, _owner_uid), (ORPHAN_INDEX, _orphan_ns)):
        try:
            informer.add_indexer(name, fn)
        except ValueError:
            pass  # already there: another controller sharing the informer added it


def candidates(informer: Informer, owner: dict) -> list[dict]:
    """Objects ``owner`` controls plus the orphans of its namespace: what a claim looks at."""
    md = owner["metadata"]
    return informer.by_index(OWNER_INDEX, md["uid"]) + informer.by_index(ORPHAN_INDEX, md["namespace"])


def resolve_controller(informer: Informer, namespace: str, ref: dict | None, kind: str) -> dict | None:
    """The object a controllerRef names, if it is still the same object (uid)."""
    if ref is None or ref.get("kind") != kind:
        return None
    obj = informer.get(f"{namespace}/{ref.get('name')}")
    if obj is None or obj["metadata"].get("uid") != ref.get("uid"):
        return None
    return obj


# --- scale-down order -----------------------------------------------------------------------

def timestamp(s: str | None) -> float | None:
    """Seconds since the epoch of an RFC 3339 time, None when absent or malformed."""
    if not s:
        return None
    try:
        return meta.parse_rfc3339(s).timestamp()
    except ValueError:
        return None


def ready_since(pod: dict) -> float | None:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready" and c.get("status") == "True":
            return timestamp(c.get("lastTransitionTime"))
    return None


def _restarts(pod: dict) -> int:
    return max((int(cs.get("restartCount") or 0) for cs in (pod.get("status") or {}).get("containerStatuses")
                or []), default=0)


def deletion_key(pod: dict) -> tuple:
    """Sort key putting the pods to delete first: unassigned before assigned; Pending before
    Unknown before Running; not ready before ready; ready for less time before longer (unknown
    time first); more container restarts first; newer before older (unknown creation first)."""
    spec = pod.get("spec") or {}
    phase = (pod.get("status") or {}).get("phase")
    ready = is_pod_ready(pod)
    since = ready_since(pod) if ready else None
    created = timestamp((pod.get("metadata") or {}).get("creationTimestamp"))
    return (1 if spec.get("nodeName") else 0,
            _PHASE_ORDER.get(phase or "", 0),
            1 if ready else 0,
            (0, 0.0) if not ready or since is None else (1, -since),
            -_restarts(pod),
            (0, 0.0) if created is None else (1, -created))


def deletion_order(pods: list[dict]) -> list[dict]:
    return sorted(pods, key=deletion_key)
