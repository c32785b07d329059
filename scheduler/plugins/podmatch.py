"""Which existing pods a pod-selecting term refers to (inter-pod affinity terms, topology spread
constraints): a label selector plus a set of namespaces, compiled once per cycle."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any

from api import errors
from api.selectors import DOUBLE_EQUALS, EQUALS, IN, NOT_IN, LabelSelector, Requirement, from_label_selector


def selector(sel: Mapping | None, pod: dict | None = None, match_label_keys: list[str] | None = None,
             mismatch_label_keys: list[str] | None = None) -> LabelSelector:
    """A ``metav1.LabelSelector`` (None selects nothing), narrowed by ``matchLabelKeys`` (same
    value as ``pod``'s label) and ``mismatchLabelKeys`` (a different value). An invalid selector
    selects nothing."""
    try:
        base = from_label_selector(sel)
    except errors.BadRequest:
        return LabelSelector.nothing()
    labels = ((pod or {}).get("metadata") or {}).get("labels") or {}
    extra = []
    for k in match_label_keys or ():
        if k in labels:
            extra.append(Requirement(k, IN, (labels[k],)))
    for k in mismatch_label_keys or ():
        if k in labels:
            extra.append(Requirement(k, NOT_IN, (labels[k],)))
    if not extra or sel is None:
        return base
    return LabelSelector([*base.requirements, *extra])


def labels_of(pod: dict) -> dict:
    return (pod.get("metadata") or {}).get("labels") or {}


def namespace_of(pod: dict) -> str:
    return (pod.get("metadata") or {}).get("namespace") or "default"


def is_terminating(pod: dict) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


_SIGNATURES: dict[tuple, int] = {}
_next_signature = itertools.count(1)


def signature(key: tuple) -> int:
    """An int per distinct (selector, namespaces, namespace selector); never reused, so a
    result remembered under one stays right even after this table is trimmed."""
    sig = _SIGNATURES.get(key)
    if sig is None:
        if len(_SIGNATURES) > 100_000:
            _SIGNATURES.clear()
        sig = _SIGNATURES[key] = next(_next_signature)
    return sig


class PodTerm:
    """One PodAffinityTerm of ``owner`` (a weighted one carries its weight)."""

    __slots__ = ("selector", "namespaces", "namespace_selector", "topology_key", "weight",
                 "_namespace_labels", "sig", "_eq")

    def __init__(self, term: Mapping, owner: dict, weight: int = 0,
                 namespace_labels: Callable[[str], dict | None] | None = None):
        self.topology_key: str = term.get("topologyKey") or ""
        self.weight = weight
        self.selector = selector(term.get("labelSelector"), owner, term.get("matchLabelKeys"),
                                 term.get("mismatchLabelKeys"))
        namespaces = set(term.get("namespaces") or ())
        ns_sel = term.get("namespaceSelector")
        self.namespace_selector: LabelSelector | None = None
        if ns_sel is None:
            if not namespaces:
                namespaces = {namespace_of(owner)}
        else:
            try:
                self.namespace_selector = from_label_selector(ns_sel)
            except errors.BadRequest:
                self.namespace_selector = LabelSelector.nothing()
        self.namespaces = namespaces
        self._namespace_labels = namespace_labels
        # Terms with equal signatures select the same pods (used to share match results).
        self.sig = signature((self.selector, frozenset(namespaces), self.namespace_selector))
        # One equality/In requirement, to look candidates up in a label index.
        self._eq: tuple[str, tuple[str, ...]] | None = None
        for r in self.selector.requirements:
            if r.operator in (EQUALS, DOUBLE_EQUALS, IN):
                self._eq = (r.key, r.values)
                break

    def namespace_matches(self, ns: str) -> bool:
        if ns in self.namespaces:
            return True
        sel = self.namespace_selector
        if sel is None:
            return False
        if sel.empty():
            return True
        if self._namespace_labels is None:
            return False
        return sel.matches(self._namespace_labels(ns) or {})

    def matches(self, pod: dict) -> bool:
        return self.namespace_matches(namespace_of(pod)) and self.selector.matches(labels_of(pod))

    def count(self, pods: list[dict], index: dict[tuple[str, str], list[dict]] | None = None) -> int:
        """How many of ``pods`` the term selects; ``index`` (label pair -> those of ``pods``
        carrying it) narrows the candidates when the selector has an equality requirement."""
        if index is not None and self._eq is not None:
            key, values = self._eq
            n = 0
            for v in values:
                for p in index.get((key, v), ()):
                    if self.matches(p):
                        n += 1
            return n
        return sum(1 for p in pods if self.matches(p))


def label_index(pods: list[dict]) -> dict[tuple[str, str], list[dict]]:
    """Pods by each of their label pairs."""
    idx: dict[tuple[str, str], list[dict]] = {}
    for p in pods:
        for kv in labels_of(p).items():
            idx.setdefault(kv, []).append(p)
    return idx


def namespace_labels_from(handle: Any) -> Callable[[str], dict | None] | None:
    """The handle's ``namespace_labels(name)`` lookup, when it offers one."""
    f = getattr(handle, "namespace_labels", None) if handle is not None else None
    return f if callable(f) else None

