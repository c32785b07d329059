"""Deployment arithmetic shared by the Deployment and ReplicaSet controllers.

Owns, with Kubernetes' semantics so that kubectl reads the results the same way:

- the ``pod-template-hash`` of a pod template (FNV-32a over a deterministic encoding, plus the
  collision count, rendered in the alphabet of Kubernetes' SafeEncodeString);
- the ``deployment.kubernetes.io/*`` annotations: revision, revision history, desired and max
  replicas, and which Deployment annotations a ReplicaSet copies;
- ``maxSurge``/``maxUnavailable`` resolution (surge rounds up, unavailable rounds down, never
  both zero);
- finding a Deployment's new and old ReplicaSets and the orderings used to pick among them;
- Deployment conditions (Progressing, Available, ReplicaFailure) with Kubernetes' reasons and
  the completion, progress and deadline tests built on them.

Pure functions over plain dicts; nothing here does I/O.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import orjson

from api import meta

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
ROLLBACK_TO = "deprecated.deployment.rollback.to"
# Annotations that describe a ReplicaSet's own history and are never copied from its Deployment.
NOT_COPIED = frozenset({LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS, ROLLBACK_TO})
REVISION_HISTORY_MAX_CHARS = 2000

# Condition types and reasons (as kubectl and users see them).
PROGRESSING = "Progressing"
AVAILABLE = "Available"
REPLICA_FAILURE = "ReplicaFailure"
NEW_RS_REASON = "NewReplicaSetCreated"
FOUND_NEW_RS_REASON = "FoundNewReplicaSet"
RS_UPDATED_REASON = "ReplicaSetUpdated"
NEW_RS_AVAILABLE_REASON = "NewReplicaSetAvailable"
TIMED_OUT_REASON = "ProgressDeadlineExceeded"
FAILED_RS_CREATE_REASON = "ReplicaSetCreateError"
PAUSED_REASON = "DeploymentPaused"
RESUMED_REASON = "DeploymentResumed"
MIN_AVAILABLE_REASON = "MinimumReplicasAvailable"
MIN_UNAVAILABLE_REASON = "MinimumReplicasUnavailable"

_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_FNV32_OFFSET = 0x811C9DC5
_FNV32_PRIME = 0x01000193
_INT32_MAX = 2**31 - 1


# --- pod-template-hash ----------------------------------------------------------------------

def fnv32a(data: bytes, h: int = _FNV32_OFFSET) -> int:
    for b in data:
        h = ((h ^ b) * _FNV32_PRIME) & 0xFFFFFFFF
    return h


def safe_encode(s: str) -> str:
    """Each byte mapped into an alphabet without vowels (so no words form) and without look-alike
    characters, as Kubernetes renders generated suffixes."""
    return "".join(_SAFE_ALPHABET[b % len(_SAFE_ALPHABET)] for b in s.encode())


def compute_hash(template: dict, collision_count: int | None = None) -> str:
    """The ``pod-template-hash`` of a PodTemplateSpec: stable across processes and runs (keys
    sorted), changed by the collision count so a colliding name can be escaped."""
    h = fnv32a(orjson.dumps(_normalized(template or {}), option=orjson.OPT_SORT_KEYS))
    if collision_count is not None:
        h = fnv32a((collision_count & 0xFFFFFFFF).to_bytes(4, "little"), h)
    return safe_encode(str(h))


def _normalized(template: dict) -> dict:
    """The template with null metadata fields left out: clients that send
    ``"creationTimestamp": null`` (kubectl's rollback does) mean the same template as those that
    leave it out."""
    md = template.get("metadata")
    if isinstance(md, dict) and any(v is None for v in md.values()):
        template = {**template, "metadata": {k: v for k, v in md.items() if v is not None}}
    return template


def template_without_hash(template: dict) -> dict:
    t = meta.deep_copy(_normalized(template or {}))
    labels = (t.get("metadata") or {}).get("labels")
    if labels:
        labels.pop(HASH_LABEL, None)
        if not labels:
            t["metadata"].pop("labels")
    if t.get("metadata") == {}:
        t.pop("metadata")
    return t


def equal_ignore_hash(a: dict, b: dict) -> bool:
    """Two templates equal once the ``pod-template-hash`` label is left out of both."""
    return template_without_hash(a) == template_without_hash(b)


# --- intOrString ----------------------------------------------------------------------------

def scaled_value(value: int | str | None, total: int, round_up: bool) -> int:
    """An IntOrString (``3`` or ``"25%"``) resolved against ``total``."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    s = str(value)
    if not s.endswith("%"):
        try:
            return int(s)
        except ValueError:
            raise ValueError(f"invalid value for IntOrString: {s!r} is not a number or a percentage") from None
    pct = int(s[:-1])
    x = pct * total / 100
    return math.ceil(x) if round_up else math.floor(x)


def resolve_fenceposts(max_surge: int | str | None, max_unavailable: int | str | None,
                       desired: int) -> tuple[int, int]:
    """(surge, unavailable) in pods: surge rounds up, unavailable down; if both come out zero,
    unavailable is one, or a rollout could never make progress."""
    surge = scaled_value(max_surge, desired, True)
    unavailable = scaled_value(max_unavailable, desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def replicas_of(obj: dict | None) -> int:
    if obj is None:
        return 0
    r = (obj.get("spec") or {}).get("replicas")
    return 1 if r is None else int(r)


def status_int(obj: dict | None, field: str) -> int:
    if obj is None:
        return 0
    return int((obj.get("status") or {}).get(field) or 0)


def is_rolling_update(d: dict) -> bool:
    return ((d.get("spec") or {}).get("strategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"


def _rolling(d: dict) -> dict:
    return ((d.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {}


def max_surge(d: dict) -> int:
    if not is_rolling_update(d):
        return 0
    ru = _rolling(d)
    return resolve_fenceposts(ru.get("maxSurge", "25%"), ru.get("maxUnavailable", "25%"), replicas_of(d))[0]


def max_unavailable(d: dict) -> int:
    replicas = replicas_of(d)
    if not is_rolling_update(d) or replicas == 0:
        return 0
    ru = _rolling(d)
    _, unavailable = resolve_fenceposts(ru.get("maxSurge", "25%"), ru.get("maxUnavailable", "25%"), replicas)
    return min(unavailable, replicas)


# --- replica counts over ReplicaSets --------------------------------------------------------

def spec_replicas(rss: list[dict | None]) -> int:
    return sum(replicas_of(rs) for rs in rss if rs is not None)


def actual_replicas(rss: list[dict | None]) -> int:
    return sum(status_int(rs, "replicas") for rs in rss if rs is not None)


def ready_replicas(rss: list[dict | None]) -> int:
    return sum(status_int(rs, "readyReplicas") for rs in rss if rs is not None)


def available_replicas(rss: list[dict | None]) -> int:
    return sum(status_int(rs, "availableReplicas") for rs in rss if rs is not None)


def active(rss: list[dict | None]) -> list[dict]:
    """ReplicaSets that want pods."""
    return [rs for rs in rss if rs is not None and replicas_of(rs) > 0]


def new_rs_new_replicas(d: dict, all_rss: list[dict | None], new_rs: dict) -> int:
    """How many replicas the new ReplicaSet may have now."""
    desired = replicas_of(d)
    if not is_rolling_update(d):
        return desired
    ru = _rolling(d)
    surge = scaled_value(ru.get("maxSurge", "25%"), desired, True)
    current = spec_replicas(all_rss)
    max_total = desired + surge
    if current >= max_total:
        return replicas_of(new_rs)
    up = min(max_total - current, desired - replicas_of(new_rs))
    return replicas_of(new_rs) + up


# --- annotations ----------------------------------------------------------------------------

def revision(obj: dict | None) -> int:
    """The revision annotation as a number (0 when missing or malformed)."""
    if obj is None:
        return 0
    try:
        return int(meta.annotations_of(obj).get(REVISION, "0") or 0)
    except ValueError:
        return 0


def max_revision(rss: list[dict | None]) -> int:
    return max((revision(rs) for rs in rss if rs is not None), default=0)


def _annotations(obj: dict) -> dict:
    md = obj.setdefault("metadata", {})
    ann = md.get("annotations")
    if ann is None:
        ann = md["annotations"] = {}
    return ann


def copy_deployment_annotations(d: dict, rs: dict) -> bool:
    """Copy the Deployment's annotations (except the ReplicaSet's own bookkeeping) onto ``rs``."""
    changed = False
    ann = _annotations(rs)
    for k, v in meta.annotations_of(d).items():
        if k in NOT_COPIED or ann.get(k) == v:
            continue
        ann[k] = v
        changed = True
    return changed


def set_replicas_annotations(rs: dict, desired: int, max_replicas: int) -> bool:
    ann = _annotations(rs)
    changed = False
    for k, v in ((DESIRED_REPLICAS, str(desired)), (MAX_REPLICAS, str(max_replicas))):
        if ann.get(k) != v:
            ann[k] = v
            changed = True
    return changed


def replicas_annotations_need_update(rs: dict, desired: int, max_replicas: int) -> bool:
    ann = meta.annotations_of(rs)
    return ann.get(DESIRED_REPLICAS) != str(desired) or ann.get(MAX_REPLICAS) != str(max_replicas)


def int_annotation(obj: dict, key: str) -> int | None:
    v = meta.annotations_of(obj).get(key)
    if v is None:
        return None
    try:
        return int(v)
    except ValueError:
        return None


def set_new_rs_annotations(d: dict, rs: dict, new_revision: int, exists: bool,
                           history_limit: int = REVISION_HISTORY_MAX_CHARS) -> bool:
    """Bring ``rs``'s annotations in line for becoming (or staying) the Deployment's new
    ReplicaSet at ``new_revision``. A ReplicaSet brought back by a rollback keeps the revisions
    it held before in ``revision-history``. Returns whether anything changed."""
    changed = copy_deployment_annotations(d, rs)
    ann = _annotations(rs)
    old = ann.get(REVISION, "")
    try:
        old_n = int(old) if old else 0
    except ValueError:
        return changed
    if old_n < new_revision:
        ann[REVISION] = str(new_revision)
        changed = True
        if old:
            history = [h for h in ann.get(REVISION_HISTORY, "").split(",") if h]
            if not history:
                ann[REVISION_HISTORY] = old
            else:
                total = len(ann.get(REVISION_HISTORY, "")) + len(old) + 1
                start = 0
                while total > history_limit and start < len(history):
                    total -= len(history[start]) + 1
                    start += 1
                if total <= history_limit:
                    ann[REVISION_HISTORY] = ",".join([*history[start:], old])
    if not exists:
        desired = replicas_of(d)
        if set_replicas_annotations(rs, desired, desired + max_surge(d)):
            changed = True
    return changed


# --- finding ReplicaSets --------------------------------------------------------------------

def _created(obj: dict) -> str:
    return (obj.get("metadata") or {}).get("creationTimestamp") or ""


def by_creation(rss: list[dict]) -> list[dict]:
    """Oldest first; ties by name."""
    return sorted(rss, key=lambda rs: (_created(rs), rs["metadata"]["name"]))


def by_revision(rss: list[dict]) -> list[dict]:
    """Lowest revision first; ties by creation."""
    return sorted(rss, key=lambda rs: (revision(rs), _created(rs), rs["metadata"]["name"]))


def by_size_older(rss: list[dict]) -> list[dict]:
    """Largest first; ties: older first (where a scale-down takes from first)."""
    ordered = by_creation(rss)
    return sorted(ordered, key=lambda rs: -replicas_of(rs))


def by_size_newer(rss: list[dict]) -> list[dict]:
    """Largest first; ties: newer first (where a scale-up gives to first)."""
    ordered = list(reversed(by_creation(rss)))
    return sorted(ordered, key=lambda rs: -replicas_of(rs))


def find_new_rs(d: dict, rss: list[dict]) -> dict | None:
    """The oldest ReplicaSet whose template equals the Deployment's (hash label aside)."""
    template = (d.get("spec") or {}).get("template") or {}
    for rs in by_creation(rss):
        if equal_ignore_hash((rs.get("spec") or {}).get("template") or {}, template):
            return rs
    return None


def find_old_rss(d: dict, rss: list[dict], new_rs: dict | None = None) -> list[dict]:
    if new_rs is None:
        new_rs = find_new_rs(d, rss)
    uid = new_rs["metadata"]["uid"] if new_rs is not None else None
    return [rs for rs in rss if rs["metadata"].get("uid") != uid]


def find_active_or_latest(new_rs: dict | None, old_rss: list[dict]) -> dict | None:
    """The one ReplicaSet with replicas if there is exactly one; if none has any, the new one or
    else the latest old one; None while several are active."""
    if new_rs is None and not old_rss:
        return None
    olds = list(reversed(by_creation(old_rss)))
    live = active([*olds, new_rs])
    if not live:
        return new_rs if new_rs is not None else olds[0]
    if len(live) == 1:
        return live[0]
    return None


def is_saturated(d: dict, rs: dict | None) -> bool:
    """The ReplicaSet runs the Deployment's full size, all available."""
    if rs is None:
        return False
    desired = int_annotation(rs, DESIRED_REPLICAS)
    n = replicas_of(d)
    return replicas_of(rs) == n and desired == n and status_int(rs, "availableReplicas") == n


def replica_set_fraction(rs: dict, d: dict) -> int:
    """How many replicas ``rs`` should gain (or lose) in a proportional scale of the Deployment."""
    n = replicas_of(d)
    if n == 0:
        return -replicas_of(rs)
    total = n + max_surge(d)
    annotated = int_annotation(rs, MAX_REPLICAS)
    if annotated is None:
        annotated = status_int(d, "replicas")
    if annotated <= 0:
        return 0
    size = replicas_of(rs) * total / annotated
    return int(math.floor(size + 0.5) if size >= 0 else -math.floor(-size + 0.5)) - replicas_of(rs)


def proportion(rs: dict | None, d: dict, to_add: int, added: int) -> int:
    if rs is None or replicas_of(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    fraction = replica_set_fraction(rs, d)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


# --- conditions -----------------------------------------------------------------------------

def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_condition(type_: str, status: str, reason: str, message: str, now: float) -> dict:
    t = rfc3339(now)
    return {"type": type_, "status": status, "lastUpdateTime": t, "lastTransitionTime": t,
            "reason": reason, "message": message}


def get_condition(status: dict, type_: str) -> dict | None:
    for c in status.get("conditions") or []:
        if c.get("type") == type_:
            return c
    return None


def set_condition(status: dict, cond: dict) -> None:
    """Add or replace a condition; one with the same status and reason is left alone, and a
    replacement with the same status keeps the old lastTransitionTime."""
    current = get_condition(status, cond["type"])
    if current is not None and current.get("status") == cond["status"] and current.get("reason") == cond["reason"]:
        return
    cond = dict(cond)
    if current is not None and current.get("status") == cond["status"]:
        cond["lastTransitionTime"] = current.get("lastTransitionTime")
    status["conditions"] = [*(c for c in status.get("conditions") or [] if c.get("type") != cond["type"]), cond]


def remove_condition(status: dict, type_: str) -> None:
    conds = [c for c in status.get("conditions") or [] if c.get("type") != type_]
    if conds:
        status["conditions"] = conds
    else:
        status.pop("conditions", None)


def has_progress_deadline(d: dict) -> bool:
    pds = (d.get("spec") or {}).get("progressDeadlineSeconds")
    return pds is not None and pds != _INT32_MAX


def deployment_complete(d: dict, status: dict) -> bool:
    n = replicas_of(d)
    return (int(status.get("updatedReplicas") or 0) == n and int(status.get("replicas") or 0) == n
            and int(status.get("availableReplicas") or 0) == n
            and int(status.get("observedGeneration") or 0) >= int(d["metadata"].get("generation") or 0))


def deployment_progressing(d: dict, new: dict) -> bool:
    """More updated, fewer old, more ready or more available pods than the last status said."""
    old = d.get("status") or {}

    def g(s: dict, f: str) -> int:
        return int(s.get(f) or 0)

    old_old = g(old, "replicas") - g(old, "updatedReplicas")
    new_old = g(new, "replicas") - g(new, "updatedReplicas")
    return (g(new, "updatedReplicas") > g(old, "updatedReplicas") or new_old < old_old
            or g(new, "readyReplicas") > g(old, "readyReplicas")
            or g(new, "availableReplicas") > g(old, "availableReplicas"))


def deployment_timed_out(d: dict, status: dict, now: float) -> bool:
    if not has_progress_deadline(d):
        return False
    cond = get_condition(status, PROGRESSING)
    if cond is None or cond.get("reason") == NEW_RS_AVAILABLE_REASON:
        return False
    if cond.get("reason") == TIMED_OUT_REASON:
        return True
    since = cond.get("lastUpdateTime")
    if not since:
        return False
    deadline = meta.parse_rfc3339(since).timestamp() + int(d["spec"]["progressDeadlineSeconds"])
    return deadline < now


def rs_failure_as_deployment_condition(c: dict) -> dict:
    return {"type": c.get("type"), "status": c.get("status"), "lastUpdateTime": c.get("lastTransitionTime"),
            "lastTransitionTime": c.get("lastTransitionTime"), "reason": c.get("reason"),
            "message": c.get("message")}


def prune_zero(status: dict) -> dict:
    """Leave out zero counts, as Kubernetes' JSON does (``omitempty``)."""
    return {k: v for k, v in status.items()
            if v is not None and v != [] and not (isinstance(v, int) and v == 0 and k != "collisionCount")}


def annotations_for_rollback(d: dict, rs: dict) -> dict:
    """The Deployment annotations after rolling back to ``rs``: its copied annotations replace
    the Deployment's, while the Deployment's own bookkeeping annotations stay."""
    out = {k: v for k, v in meta.annotations_of(d).items() if k in NOT_COPIED}
    out.update({k: v for k, v in meta.annotations_of(rs).items() if k not in NOT_COPIED})
    return out
