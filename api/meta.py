"""Helpers on object dicts: identity, time stamps, names, owners, labels, copies, generation.

Objects are plain JSON-like dicts. Nothing here mutates its argument unless its name says it sets
something (``set_generation``).
"""

from __future__ import annotations

import os
import random
import secrets
import time
from datetime import UTC, datetime
from typing import Any

import orjson

# Kubernetes' name-suffix alphabet: no vowels (no accidental words) and no look-alikes (0/o, 1/l).
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
GENERATED_SUFFIX_LEN = 5
MAX_NAME_LEN = 253
# generateName prefixes are cut so that prefix + suffix fits in a name of this length.
_MAX_GENERATED_PREFIX = 63 - GENERATED_SUFFIX_LEN

# Kinds whose metadata.generation is set to 1 on create and bumped when their desired state
# changes (Kubernetes 1.32). Other kinds carry no generation.
GENERATION_KINDS = frozenset({"Deployment", "ReplicaSet", "DaemonSet", "StatefulSet", "Job", "CronJob",
                              "EndpointSlice"})
# Top-level keys that are never "spec" for generation purposes.
_NOT_SPEC = frozenset({"apiVersion", "kind", "metadata", "status"})


_now_text: tuple[int, str] = (-1, "")      # the last second formatted, and its text


def now_rfc3339() -> str:
    """The current UTC time with second precision, as Kubernetes writes timestamps."""
    global _now_text
    second = int(time.time())
    last, text = _now_text
    if second != last:
        text = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))
        _now_text = (second, text)
    return text


def to_rfc3339(t: datetime) -> str:
    if t.tzinfo is not None:
        t = t.astimezone(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(s: str) -> datetime:
    """An aware datetime from ``2024-01-02T03:04:05Z`` (fractional seconds and offsets accepted)."""
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


# UIDs only need to be unique, not secret: a PRNG seeded once from the OS (and again in a forked
# child, which would otherwise repeat its parent's sequence) is much cheaper than an os.urandom
# call per object, which is slow on a busy machine.
_uid_rng = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _uid_rng.seed(os.urandom(32)))
_UID_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UID_SET = (0x4000 << 64) | (0x8000 << 48)   # version 4, RFC 4122 variant


def new_uid() -> str:
    """A random (version 4) UUID in its canonical text form."""
    h = "%032x" % ((_uid_rng.getrandbits(128) & _UID_CLEAR) | _UID_SET)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def random_suffix(n: int = GENERATED_SUFFIX_LEN) -> str:
    return "".join(secrets.choice(NAME_ALPHABET) for _ in range(n))


def generate_name(prefix: str) -> str:
    """``prefix`` (cut to leave room) followed by five random characters, as for generateName."""
    if len(prefix) > _MAX_GENERATED_PREFIX:
        prefix = prefix[:_MAX_GENERATED_PREFIX]
    return prefix + random_suffix()


def _md(obj: dict) -> dict:
    md = obj.get("metadata")
    return md if isinstance(md, dict) else {}


def name_of(obj: dict) -> str:
    return _md(obj).get("name") or ""


def namespace_of(obj: dict) -> str:
    return _md(obj).get("namespace") or ""


def uid_of(obj: dict) -> str:
    return _md(obj).get("uid") or ""


def key_of(obj: dict) -> str:
    """``namespace/name`` for namespaced objects, ``name`` otherwise (the work-queue key)."""
    md = _md(obj)
    ns = md.get("namespace")
    return f"{ns}/{md.get('name', '')}" if ns else md.get("name", "")


def split_key(key: str) -> tuple[str, str]:
    """``("ns", "name")`` from ``ns/name``; ``("", "name")`` from ``name``."""
    ns, sep, name = key.partition("/")
    return (ns, name) if sep else ("", ns)


def labels_of(obj: dict) -> dict[str, str]:
    """The object's labels (the stored dict itself when present: do not mutate it)."""
    labels = _md(obj).get("labels")
    return labels if isinstance(labels, dict) else {}


def annotations_of(obj: dict) -> dict[str, str]:
    annotations = _md(obj).get("annotations")
    return annotations if isinstance(annotations, dict) else {}


def label(obj: dict, key: str, default: str | None = None) -> str | None:
    return labels_of(obj).get(key, default)


def annotation(obj: dict, key: str, default: str | None = None) -> str | None:
    return annotations_of(obj).get(key, default)


def owner_references(obj: dict) -> list[dict]:
    refs = _md(obj).get("ownerReferences")
    return [r for r in refs if isinstance(r, dict)] if isinstance(refs, list) else []


def controller_of(obj: dict) -> dict | None:
    """The owner reference with ``controller: true``, or None."""
    for ref in owner_references(obj):
        if ref.get("controller"):
            return ref
    return None


def is_owned_by(obj: dict, owner: dict | str, *, controller_only: bool = False) -> bool:
    """Whether ``obj`` lists ``owner`` (an object or a uid) among its owners."""
    uid = owner if isinstance(owner, str) else uid_of(owner)
    if not uid:
        return False
    for ref in owner_references(obj):
        if ref.get("uid") == uid and (ref.get("controller") or not controller_only):
            return True
    return False


def owner_reference(owner: dict, *, controller: bool = True, block_owner_deletion: bool = True) -> dict:
    """An owner reference pointing at ``owner`` (which must carry apiVersion, kind and uid)."""
    md = _md(owner)
    return {"apiVersion": owner.get("apiVersion", ""), "kind": owner.get("kind", ""),
            "name": md.get("name", ""), "uid": md.get("uid", ""),
            "controller": controller, "blockOwnerDeletion": block_owner_deletion}


def is_being_deleted(obj: dict) -> bool:
    return bool(_md(obj).get("deletionTimestamp"))


def deep_copy(obj: Any) -> Any:
    """An independent copy of a JSON-like value.

    An orjson round trip measured about three times faster than a recursive dict/list copy on a
    typical pod (15 us against 45 us; ``copy.deepcopy`` 90 us). Values orjson cannot encode
    (Fractions, non-string keys, huge ints) fall back to the recursive copy.
    """
    try:
        return orjson.loads(orjson.dumps(obj))
    except TypeError:
        return _copy_tree(obj)


def _copy_tree(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: (_copy_tree(v) if isinstance(v, dict | list) else v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_copy_tree(v) if isinstance(v, dict | list) else v for v in obj]
    return obj


def spec_of(obj: dict) -> dict:
    """Everything but apiVersion, kind, metadata and status: what a generation tracks."""
    return {k: v for k, v in obj.items() if k not in _NOT_SPEC}


def spec_changed(old: dict, new: dict) -> bool:
    """Whether the desired state differs: any top-level field but apiVersion/kind/metadata/status."""
    for k, v in new.items():
        if k not in _NOT_SPEC and old.get(k) != v:
            return True
    for k in old:
        if k not in _NOT_SPEC and k not in new:
            return True
    return False


def uses_generation(kind: str) -> bool:
    return kind in GENERATION_KINDS


def generation_changed(kind: str, old: dict, new: dict) -> bool:
    """Whether an update of ``kind`` from ``old`` to ``new`` bumps metadata.generation.

    Deployments also count annotation changes, since the controller copies them to its
    ReplicaSets; EndpointSlices count label changes.
    """
    if kind not in GENERATION_KINDS:
        return False
    if spec_changed(old, new):
        return True
    if kind == "Deployment":
        return annotations_of(old) != annotations_of(new)
    if kind == "EndpointSlice":
        return labels_of(old) != labels_of(new)
    return False


def set_generation(kind: str, new: dict, old: dict | None = None) -> None:
    """Set ``new``'s metadata.generation in place: 1 on create, +1 on a counted change, else kept.

    Kinds without a generation get none (any value the client sent is dropped).
    """
    md = new.setdefault("metadata", {})
    if not isinstance(md, dict):
        return  # malformed metadata: left for validation to report
    if kind not in GENERATION_KINDS:
        md.pop("generation", None)
        return
    if old is None:
        md["generation"] = 1
        return
    previous = _md(old).get("generation") or 1
    md["generation"] = previous + 1 if generation_changed(kind, old, new) else previous
