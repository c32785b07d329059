"""The Endpoints controller: one Endpoints object per Service with a selector, named like it.

``reconcile(namespace/name)`` gathers the pods the service selects that have an IP and are not
finished (pods being deleted are left out unless ``publishNotReadyAddresses``), resolves each
service port per pod (a named ``targetPort`` is looked up among the pod's container ports; a
pod without it does not serve that port), and writes subsets grouping addresses by the ports
they serve (a headless service without ports lists bare addresses): ready pods in
``addresses``, others in ``notReadyAddresses`` (all in ``addresses`` with
``publishNotReadyAddresses``). More than ``MAX_CAPACITY`` addresses are cut to that many,
ready ones kept first, and the object is marked ``endpoints.kubernetes.io/over-capacity:
truncated``. Each write carries ``endpoints.kubernetes.io/last-change-trigger-time``. A service
without a selector is left alone (its Endpoints are the user's); a deleted service's Endpoints go.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from api import errors, meta
from client.informer import copy_object
from controller_manager.base import Controller, ControllerContext
from controller_manager.common import is_pod_ready
from controller_manager.endpointsutil import (
    HEADLESS_LABEL,
    TRIGGER_TIME_ANNOTATION,
    TriggerTimes,
    endpoint_ports,
    hostname_for,
    is_headless,
    pod_changed,
    pod_ip,
    pods_for,
    publish_not_ready,
    selector_map,
    services_for_pod,
    should_include,
    target_ref,
)

MAX_CAPACITY = 1000
OVER_CAPACITY_ANNOTATION = "endpoints.kubernetes.io/over-capacity"


def _port_key(port: dict) -> tuple:
    return (port.get("name") or "", port["port"], port.get("protocol") or "TCP", port.get("appProtocol") or "")


def build_subsets(svc: dict, pods: list[dict]) -> list[dict]:
    """Subsets for ``svc`` from the pods it selects (already filtered by ``should_include``)."""
    publish = publish_not_ready(svc)
    has_ports = bool((svc.get("spec") or {}).get("ports"))
    if not has_ports and not is_headless(svc):
        return []                    # only a headless service lists addresses without ports
    groups: dict[tuple, dict[str, Any]] = {}
    for pod in pods:
        ports = endpoint_ports(svc, pod)
        if has_ports and not ports:
            continue
        addr: dict[str, Any] = {"ip": pod_ip(pod)}
        host = hostname_for(svc, pod)
        if host:
            addr["hostname"] = host
        node = (pod.get("spec") or {}).get("nodeName")
        if node:
            addr["nodeName"] = node
        addr["targetRef"] = target_ref(pod)
        key = tuple(sorted(_port_key(p) for p in ports))
        group = groups.setdefault(key, {"ports": sorted(ports, key=_port_key), "ready": [], "notReady": []})
        ready = publish or (is_pod_ready(pod) and not pod["metadata"].get("deletionTimestamp"))
        group["ready" if ready else "notReady"].append(addr)
    subsets = []
    for key in sorted(groups):
        g = groups[key]
        subset: dict[str, Any] = {}
        if g["ready"]:
            subset["addresses"] = sorted(g["ready"], key=_addr_key)
        if g["notReady"]:
            subset["notReadyAddresses"] = sorted(g["notReady"], key=_addr_key)
        if g["ports"]:
            subset["ports"] = g["ports"]
        subsets.append(subset)
    return subsets


def _addr_key(addr: dict) -> tuple:
    return (addr["ip"], addr.get("targetRef", {}).get("name", ""))


def truncate(subsets: list[dict], limit: int = MAX_CAPACITY) -> tuple[list[dict], bool]:
    """Cut to ``limit`` addresses across subsets, ready addresses kept before not-ready ones, each
    kind shared among subsets in proportion to their size. Returns (subsets, truncated)."""
    ready_total = sum(len(s.get("addresses") or []) for s in subsets)
    not_ready_total = sum(len(s.get("notReadyAddresses") or []) for s in subsets)
    if ready_total + not_ready_total <= limit:
        return subsets, False
    out = [dict(s) for s in subsets]
    keep_ready = min(ready_total, limit)
    keep_not_ready = limit - keep_ready
    for field, total, keep in (("addresses", ready_total, keep_ready),
                               ("notReadyAddresses", not_ready_total, keep_not_ready)):
        remaining = keep
        for i, s in enumerate(out):
            addrs = s.get(field) or []
            if not addrs:
                continue
            last = all(not (o.get(field)) for o in out[i + 1:])
            share = remaining if last else min(remaining, (len(addrs) * keep) // max(total, 1))
            share = min(share, len(addrs))
            remaining -= share
            if share:
                s[field] = addrs[:share]
            else:
                s.pop(field, None)
        if remaining > 0:            # rounding left room: fill from the first subsets
            for s, orig in zip(out, subsets, strict=True):
                have = len(s.get(field) or [])
                extra = min(remaining, len(orig.get(field) or []) - have)
                if extra > 0:
                    s[field] = (orig.get(field) or [])[:have + extra]
                    remaining -= extra
    return [s for s in out if s.get("addresses") or s.get("notReadyAddresses")], True


class EndpointsController(Controller):
    name = "endpoint"
    workers = 5
    component = "endpoint-controller"
    max_capacity = MAX_CAPACITY

    def __init__(self, ctx: ControllerContext):
        super().__init__(ctx)
        self.recorder = ctx.recorder(self.component)
        self.triggers = TriggerTimes(ctx.clock)
        self.services = ctx.informers.informer_for("services")
        self.pods = ctx.informers.informer_for("pods")
        self.endpoints = ctx.informers.informer_for("endpoints")
        self.services.add_event_handler(on_add=self._svc_changed, on_update=lambda o, n: self._svc_changed(n),
                                        on_delete=self._svc_changed)
        self.pods.add_event_handler(on_add=self._pod_added, on_update=self._pod_updated,
                                    on_delete=self._pod_added)
        self.endpoints.add_event_handler(on_delete=self._ep_deleted)
        self._written: dict[str, dict] = {}    # our last write per key, until the informer shows it

    def _svc_changed(self, svc: dict) -> None:
        key = meta.key_of(svc)
        self.triggers.observe(key)
        self.enqueue(key)

    def _pod_added(self, pod: dict) -> None:
        for key in services_for_pod(self.services, pod):
            self.triggers.observe(key)
            self.enqueue(key)

    def _pod_updated(self, old: dict, new: dict) -> None:
        if not pod_changed(old, new):
            return
        for key in services_for_pod(self.services, old, new):
            self.triggers.observe(key)
            self.enqueue(key)

    def _ep_deleted(self, ep: dict) -> None:
        key = meta.key_of(ep)
        if self.services.get(key) is not None:
            self.enqueue(key)

    def _current(self, key: str) -> dict | None:
        seen = self.endpoints.get(key)
        mine = self._written.get(key)
        if mine is None:
            return seen
        if seen is not None and (_rv(seen) >= _rv(mine) or seen["metadata"].get("uid") != mine["metadata"].get("uid")):
            del self._written[key]
            return seen
        return mine if seen is not None else None

    async def reconcile(self, key: str) -> float | None:
        ns, name = meta.split_key(key)
        svc = self.services.get(key)
        if svc is None:
            self.triggers.take(key)
            self._written.pop(key, None)
            try:
                await self.client.delete("endpoints", name, ns)
            except errors.NotFound:
                pass
            return None
        if not selector_map(svc):
            self.triggers.take(key)
            return None
        publish = publish_not_ready(svc)
        pods = [p for p in pods_for(self.pods, svc) if should_include(p, publish)]
        subsets, truncated = truncate(build_subsets(svc, pods), self.max_capacity)
        labels = dict(meta.labels_of(svc))
        if is_headless(svc):
            labels[HEADLESS_LABEL] = ""
        else:
            labels.pop(HEADLESS_LABEL, None)
        current = self._current(key)
        if current is not None and _same(current, subsets, labels, truncated):
            self.triggers.take(key)
            return None
        trigger = self.triggers.take(key)
        annotations = dict(meta.annotations_of(current)) if current is not None else {}
        annotations.pop(OVER_CAPACITY_ANNOTATION, None)
        if truncated:
            annotations[OVER_CAPACITY_ANNOTATION] = "truncated"
        when = trigger if trigger is not None else self.clock.now()
        annotations[TRIGGER_TIME_ANNOTATION] = meta.to_rfc3339(datetime.fromtimestamp(when, UTC))
        try:
            if current is None:
                body = {"apiVersion": "v1", "kind": "Endpoints",
                        "metadata": {"name": name, "namespace": ns, "labels": labels, "annotations": annotations},
                        "subsets": subsets}
                self._written[key] = await self.client.create("endpoints", body, ns)
            else:
                body = copy_object(current)
                body["metadata"]["labels"] = labels
                body["metadata"]["annotations"] = annotations
                body["subsets"] = subsets
                self._written[key] = await self.client.update("endpoints", body, ns)
        except errors.AlreadyExists:
            raise RuntimeError(f"endpoints {key} appeared before the cache saw it") from None
        except errors.StatusError as e:
            if not isinstance(e, errors.Conflict) and not _namespace_terminating(e):
                self.recorder.warning(svc, "FailedToUpdateEndpoint",
                                      f"Failed to update endpoint {key}: {e}")
            if _namespace_terminating(e):
                return None
            if trigger is not None:
                self.triggers.restore(key, trigger)
            raise
        return None


def _same(current: dict, subsets: list[dict], labels: dict, truncated: bool) -> bool:
    annotations = meta.annotations_of(current)
    return ((current.get("subsets") or []) == subsets and meta.labels_of(current) == labels
            and (OVER_CAPACITY_ANNOTATION in annotations) == truncated)


def _rv(obj: dict) -> int:
    try:
        return int(obj["metadata"].get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


def _namespace_terminating(e: errors.StatusError) -> bool:
    return "because it is being terminated" in e.message
