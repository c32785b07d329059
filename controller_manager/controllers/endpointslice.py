"""The EndpointSlice controller: ``discovery.k8s.io/v1`` slices for Services with selectors.

``reconcile(namespace/name)`` computes one endpoint per selected pod with an IPv4 address that
is not finished (pods being deleted included, marked ``terminating``): conditions ``ready``
(``publishNotReadyAddresses`` or ready and not terminating), ``serving`` (ready),
``terminating``; ``nodeName``, ``zone`` (the node's ``topology.kubernetes.io/zone``),
``targetRef``. Pods serving the same resolved ports share slices of at most ``MAX_ENDPOINTS``
endpoints. Existing slices are kept where they still fit (endpoints stay in their slice, new
ones fill free room first, then new slices named ``<service>-<random>`` are created, emptied
slices deleted), so a pod change rewrites one slice, not all. With no endpoints at all one
empty placeholder slice remains. Slices carry ``kubernetes.io/service-name``, the managed-by
label, the service's labels and an owner reference to the service (the garbage collector
removes them with it).

Writes the informer has not shown yet are remembered per service (``_written``) so that a slow
watch never makes the controller create a second slice for the same endpoints.
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

SLICES = "endpointslices.discovery.k8s.io"
MAX_ENDPOINTS = 100
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
MANAGED_BY = "endpointslice-controller.k8s.io"
ZONE_LABEL = "topology.kubernetes.io/zone"
SERVICE_INDEX = "endpointslice-service"


def _service_of(slc: dict) -> list[str]:
    labels = meta.labels_of(slc)
    if labels.get(MANAGED_BY_LABEL) != MANAGED_BY or not labels.get(SERVICE_NAME_LABEL):
        return []
    return [f"{slc['metadata'].get('namespace', '')}/{labels[SERVICE_NAME_LABEL]}"]


def _ports_key(ports: list[dict] | None) -> tuple:
    return tuple(sorted(((p.get("name") or ""), p.get("port"), p.get("protocol") or "TCP",
                         p.get("appProtocol") or "") for p in ports or []))


def _endpoint_id(ep: dict) -> str:
    ref = ep.get("targetRef") or {}
    return ref.get("uid") or (ep.get("addresses") or [""])[0]


def _is_ipv4(ip: str) -> bool:
    return ":" not in ip


def _rv(obj: dict) -> int:
    try:
        return int(obj["metadata"].get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


class EndpointSliceController(Controller):
    name = "endpointslice"
    workers = 5
    component = "endpoint-slice-controller"

    def __init__(self, ctx: ControllerContext):
        super().__init__(ctx)
        self.recorder = ctx.recorder(self.component)
        self.triggers = TriggerTimes(ctx.clock)
        self.services = ctx.informers.informer_for("services")
        self.pods = ctx.informers.informer_for("pods")
        self.nodes = ctx.informers.informer_for("nodes")
        self.slices = ctx.informers.informer_for(SLICES)
        try:
            self.slices.add_indexer(SERVICE_INDEX, _service_of)
        except ValueError:
            pass
        self._written: dict[str, dict[str, dict | None]] = {}   # service key -> slice name -> last write
        self.services.add_event_handler(on_add=self._svc_changed, on_update=lambda o, n: self._svc_changed(n),
                                        on_delete=self._svc_changed)
        self.pods.add_event_handler(on_add=self._pod_added, on_update=self._pod_updated,
                                    on_delete=self._pod_added)
        self.slices.add_event_handler(on_add=self._slice_changed, on_update=lambda o, n: self._slice_changed(n),
                                      on_delete=self._slice_changed)

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

    def _slice_changed(self, slc: dict) -> None:
        for key in _service_of(slc):
            if self.services.get(key) is not None:
                self.enqueue(key)

    # --- desired state ---------------------------------------------------------------------

    def _zone(self, node_name: str | None) -> str | None:
        if not node_name:
            return None
        node = self.nodes.get(node_name)
        return meta.labels_of(node).get(ZONE_LABEL) if node else None

    def desired(self, svc: dict) -> tuple[dict[tuple, dict[str, dict]], dict[tuple, list[dict]]]:
        """Endpoints by port set, each by identity (pod uid); and the ports of each port set."""
        publish = publish_not_ready(svc)
        has_ports = bool((svc.get("spec") or {}).get("ports"))
        out: dict[tuple, dict[str, dict]] = {}
        ports_of: dict[tuple, list[dict]] = {}
        for pod in pods_for(self.pods, svc):
            if not should_include(pod, True):
                continue
            ip = pod_ip(pod)
            if not ip or not _is_ipv4(ip):
                continue
            ports = endpoint_ports(svc, pod)
            if has_ports and not ports:
                continue
            serving = is_pod_ready(pod)
            terminating = bool(pod["metadata"].get("deletionTimestamp"))
            ep: dict[str, Any] = {"addresses": [ip],
                                  "conditions": {"ready": publish or (serving and not terminating),
                                                 "serving": serving, "terminating": terminating}}
            host = hostname_for(svc, pod)
            if host:
                ep["hostname"] = host
            ep["targetRef"] = target_ref(pod)
            node = (pod.get("spec") or {}).get("nodeName")
            if node:
                ep["nodeName"] = node
            zone = self._zone(node)
            if zone:
                ep["zone"] = zone
            key = _ports_key(ports)
            ports_of.setdefault(key, ports)
            out.setdefault(key, {})[_endpoint_id(ep)] = ep
        return out, ports_of

    def current(self, key: str) -> dict[str, dict]:
        """Our slices of the service by name: the informer's view corrected by our own recent writes."""
        seen = {s["metadata"]["name"]: s for s in self.slices.by_index(SERVICE_INDEX, key)}
        written = self._written.get(key, {})
        for name, obj in list(written.items()):
            if obj is None:
                if name in seen:
                    del seen[name]
                else:
                    del written[name]
                continue
            have = seen.get(name)
            if have is None or _rv(have) < _rv(obj):
                seen[name] = obj
            else:
                del written[name]
        if not written:
            self._written.pop(key, None)
        return seen

    # --- reconcile ---------------------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        svc = self.services.get(key)
        if svc is None:
            self.triggers.take(key)
            self._written.pop(key, None)
            return None                          # owned slices go with the service (owner reference)
        if not selector_map(svc):
            self.triggers.take(key)
            return None
        desired, ports_of = self.desired(svc)
        existing = self.current(key)
        trigger = self.triggers.take(key)
        try:
            await self._apply(svc, key, desired, ports_of, existing, trigger)
        except errors.StatusError as e:
            if "because it is being terminated" in e.message:
                return None
            if trigger is not None:
                self.triggers.restore(key, trigger)
            if not isinstance(e, errors.Conflict | errors.NotFound | errors.AlreadyExists):
                self.recorder.warning(svc, "FailedToUpdateEndpointSlices",
                                      f"Error updating Endpoint Slices for Service {key}: {e}")
            raise
        return None

    def _labels(self, svc: dict) -> dict[str, str]:
        labels = {k: v for k, v in meta.labels_of(svc).items()
                  if k not in (SERVICE_NAME_LABEL, MANAGED_BY_LABEL, HEADLESS_LABEL)}
        labels[SERVICE_NAME_LABEL] = svc["metadata"]["name"]
        labels[MANAGED_BY_LABEL] = MANAGED_BY
        if is_headless(svc):
            labels[HEADLESS_LABEL] = ""
        return labels

    async def _apply(self, svc: dict, key: str, desired: dict[tuple, dict[str, dict]],
                     ports_of: dict[tuple, list[dict]], existing: dict[str, dict], trigger: float | None) -> None:
        labels = self._labels(svc)
        placed: set[str] = set()
        keep: dict[str, tuple[tuple, list[dict]]] = {}      # slice name -> (ports key, endpoints)
        to_delete: list[dict] = []
        for name in sorted(existing):
            slc = existing[name]
            pk = _ports_key(slc.get("ports"))
            if slc.get("addressType", "IPv4") != "IPv4" or (pk not in desired and slc.get("endpoints")):
                to_delete.append(slc)
                continue
            eps = []
            for ep in slc.get("endpoints") or []:
                ident = _endpoint_id(ep)
                want = desired.get(pk, {}).get(ident)
                if want is not None and ident not in placed and len(eps) < MAX_ENDPOINTS:
                    eps.append(want)
                    placed.add(ident)
            keep[name] = (pk, eps)
        new_slices: list[tuple[tuple, list[dict]]] = []
        for pk in sorted(desired):
            pending = [ep for ident, ep in sorted(desired[pk].items(), key=lambda kv: _sort_key(kv[1]))
                       if ident not in placed]
            for name in sorted(keep, key=lambda n: -len(keep[n][1])):
                kpk, eps = keep[name]
                if kpk != pk:
                    continue
                while pending and len(eps) < MAX_ENDPOINTS:
                    eps.append(pending.pop(0))
            while pending:
                new_slices.append((pk, pending[:MAX_ENDPOINTS]))
                pending = pending[MAX_ENDPOINTS:]
        # Emptied slices go, except one placeholder when the service has no endpoints at all.
        any_endpoints = any(eps for _, eps in keep.values()) or bool(new_slices)
        placeholder = None
        for name in sorted(keep):
            pk, eps = keep[name]
            if not eps:
                if not any_endpoints and placeholder is None:
                    placeholder = name
                    keep[name] = ((), [])
                    continue
                to_delete.append(existing[name])
                del keep[name]
        if not any_endpoints and placeholder is None:
            new_slices.append(((), []))
        when = meta.to_rfc3339(datetime.fromtimestamp(trigger if trigger is not None else self.clock.now(), UTC))
        written = self._written.setdefault(key, {})
        ns = svc["metadata"]["namespace"]
        for slc in to_delete:
            md = slc["metadata"]
            try:
                await self.client.delete(SLICES, md["name"], ns, preconditions={"uid": md["uid"]})
            except errors.NotFound:
                pass
            written[md["name"]] = None
        for name in sorted(keep):
            pk, eps = keep[name]
            slc = existing[name]
            ports = ports_of.get(pk, []) if pk else []
            if (slc.get("endpoints") or []) == eps and _ports_key(slc.get("ports")) == pk \
                    and meta.labels_of(slc) == labels and _owned_by(slc, svc):
                continue
            body = copy_object(slc)
            body["metadata"]["labels"] = labels
            body["metadata"]["ownerReferences"] = [_owner(svc)]
            body["metadata"]["annotations"] = {**meta.annotations_of(slc), TRIGGER_TIME_ANNOTATION: when}
            body["endpoints"] = eps
            body["ports"] = ports
            try:
                written[name] = await self.client.update(SLICES, body, ns)
            except errors.NotFound:
                written.pop(name, None)        # deleted behind our back: the next pass starts afresh
                raise
        for pk, eps in new_slices:
            body = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                    "metadata": {"generateName": svc["metadata"]["name"] + "-", "namespace": ns,
                                 "labels": labels, "annotations": {TRIGGER_TIME_ANNOTATION: when},
                                 "ownerReferences": [_owner(svc)]},
                    "addressType": "IPv4", "endpoints": eps, "ports": ports_of.get(pk, []) if pk else []}
            created = await self.client.create(SLICES, body, ns)
            written[created["metadata"]["name"]] = created


def _owner(svc: dict) -> dict:
    md = svc["metadata"]
    return {"apiVersion": "v1", "kind": "Service", "name": md["name"], "uid": md["uid"],
            "controller": True, "blockOwnerDeletion": True}


def _owned_by(slc: dict, svc: dict) -> bool:
    return any(r.get("uid") == svc["metadata"]["uid"] for r in slc["metadata"].get("ownerReferences") or [])


def _sort_key(ep: dict) -> tuple:
    return ((ep.get("targetRef") or {}).get("name", ""), ep["addresses"][0])


