"""What the Endpoints and EndpointSlice controllers share: which pods back a Service, the ports
each pod serves for it, and the services a pod change concerns.

- ``should_include(pod, include_terminating)``: a pod with an IP that is not finished; pods
  being deleted only when ``include_terminating``.
- ``resolve_port(svc_port, pod)``: the container port a Service port reaches on one pod
  (``targetPort`` as a number, as a container port name, or the service port itself), or None
  when the pod has no port of that name.
- ``ServiceIndex``: services of a namespace by selector, so a pod event enqueues the services
  whose selectors match its old or new labels.
- ``TriggerTimes``: the time of the first change since an object was last written, for the
  ``endpoints.kubernetes.io/last-change-trigger-time`` annotation.
"""

from __future__ import annotations

from typing import Any

from api import meta
from api.selectors import from_set
from client.informer import NAMESPACE_INDEX, Informer
from controller_manager.common import is_pod_ready

TRIGGER_TIME_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"
HEADLESS_LABEL = "service.kubernetes.io/headless"


def selector_map(svc: dict) -> dict[str, str]:
    sel = (svc.get("spec") or {}).get("selector")
    return sel if isinstance(sel, dict) else {}


def is_headless(svc: dict) -> bool:
    return (svc.get("spec") or {}).get("clusterIP") == "None"


def publish_not_ready(svc: dict) -> bool:
    return bool((svc.get("spec") or {}).get("publishNotReadyAddresses"))


def pod_ip(pod: dict) -> str | None:
    status = pod.get("status") or {}
    ip = status.get("podIP")
    if ip:
        return ip
    ips = status.get("podIPs") or []
    return ips[0].get("ip") if ips else None


def should_include(pod: dict, include_terminating: bool) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        return False
    if not pod_ip(pod):
        return False
    return include_terminating or not (pod.get("metadata") or {}).get("deletionTimestamp")


def resolve_port(svc_port: dict, pod: dict) -> int | None:
    target = svc_port.get("targetPort")
    if target is None or target == "" or target == 0:
        return int(svc_port.get("port") or 0) or None
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    protocol = svc_port.get("protocol") or "TCP"
    spec = pod.get("spec") or {}
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        for p in c.get("ports") or []:
            if p.get("name") == target and (p.get("protocol") or "TCP") == protocol:
                return int(p["containerPort"])
    return None


def endpoint_ports(svc: dict, pod: dict) -> list[dict]:
    """The EndpointPorts ``pod`` serves for ``svc``, in the service's port order; ports the pod
    cannot resolve are left out."""
    out = []
    for sp in (svc.get("spec") or {}).get("ports") or []:
        port = resolve_port(sp, pod)
        if port is None:
            continue
        ep: dict[str, Any] = {"port": port, "protocol": sp.get("protocol") or "TCP"}
        if sp.get("name"):
            ep["name"] = sp["name"]
        if sp.get("appProtocol"):
            ep["appProtocol"] = sp["appProtocol"]
        out.append(ep)
    return out


def hostname_for(svc: dict, pod: dict) -> str | None:
    spec = pod.get("spec") or {}
    if spec.get("hostname") and spec.get("subdomain") == svc["metadata"]["name"]:
        return spec["hostname"]
    return None


def target_ref(pod: dict) -> dict:
    md = pod["metadata"]
    return {"kind": "Pod", "namespace": md["namespace"], "name": md["name"], "uid": md["uid"]}


def pods_for(pod_informer: Informer, svc: dict) -> list[dict]:
    sel = selector_map(svc)
    if not sel:
        return []
    s = from_set(sel)
    ns = svc["metadata"]["namespace"]
    return [p for p in pod_informer.by_index(NAMESPACE_INDEX, ns) if s.matches(meta.labels_of(p))]


def services_for_pod(svc_informer: Informer, *pods: dict) -> list[str]:
    """Keys of the services (with selectors) in the pods' namespace matching any of ``pods``."""
    keys: set[str] = set()
    for pod in pods:
        ns = pod["metadata"].get("namespace", "")
        labels = meta.labels_of(pod)
        for svc in svc_informer.by_index(NAMESPACE_INDEX, ns):
            sel = selector_map(svc)
            if sel and from_set(sel).matches(labels):
                keys.add(meta.key_of(svc))
    return sorted(keys)


def pod_changed(old: dict, new: dict) -> bool:
    """Whether an update can change any endpoint (resyncs and status noise are not)."""
    if old["metadata"].get("resourceVersion") == new["metadata"].get("resourceVersion"):
        return False
    o, n = old.get("status") or {}, new.get("status") or {}
    om, nm = old["metadata"], new["metadata"]
    return (pod_ip(old) != pod_ip(new) or is_pod_ready(old) != is_pod_ready(new)
            or o.get("phase") != n.get("phase") or om.get("labels") != nm.get("labels")
            or bool(om.get("deletionTimestamp")) != bool(nm.get("deletionTimestamp"))
            or (old.get("spec") or {}).get("nodeName") != (new.get("spec") or {}).get("nodeName")
            or (old.get("spec") or {}).get("hostname") != (new.get("spec") or {}).get("hostname"))


class TriggerTimes:
    """Per key, the clock time of the earliest change not yet written out."""

    def __init__(self, clock: Any):
        self.clock = clock
        self._first: dict[str, float] = {}

    def observe(self, key: str) -> None:
        self._first.setdefault(key, self.clock.now())

    def take(self, key: str) -> float | None:
        return self._first.pop(key, None)

    def restore(self, key: str, when: float) -> None:
        """Put back a time taken for a write that failed."""
        self._first[key] = min(when, self._first.get(key, when))
