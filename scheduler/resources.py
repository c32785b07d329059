"""What a pod asks of a node: its resource requests, computed the way Kubernetes counts them.

Amounts are integers: ``cpu`` in millicores, every other resource (memory, ephemeral-storage,
hugepages, extended resources) in whole units (bytes, devices). A pod's request is the larger of
what its app containers need together and what its heaviest init container needs while it runs,
plus the pod overhead. Sidecars (init containers with ``restartPolicy: Always``) keep running, so
they add to the app containers and to every init container started after them.

``nonzero`` requests are for scoring only: a container that does not state a cpu or memory
request counts as a small default, so empty pods still spread out.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from functools import lru_cache

from api import quantity

CPU = "cpu"
MEMORY = "memory"
EPHEMERAL_STORAGE = "ephemeral-storage"
PODS = "pods"

# Used for scoring a container that requests nothing (as kube-scheduler's defaults).
DEFAULT_MILLI_CPU_REQUEST = 100
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024

Resources = dict[str, int]


def amount(resource: str, q: str | int | float) -> int:
    """A quantity of ``resource`` in scheduler units (millicores for cpu, whole units otherwise)."""
    if isinstance(q, str):
        return _amount(resource == CPU, q)
    return quantity.milli_value(q) if resource == CPU else quantity.value(q)


@lru_cache(maxsize=4096)
def _amount(milli: bool, q: str) -> int:
    return quantity.milli_value(q) if milli else quantity.value(q)


def resource_list(rl: Mapping[str, object] | None) -> Resources:
    """A ``ResourceList`` dict (``{"cpu": "500m"}``) in scheduler units; bad quantities count as 0."""
    out: Resources = {}
    for name, q in (rl or {}).items():
        try:
            out[name] = amount(name, q)  # type: ignore[arg-type]
        except ValueError:
            out[name] = 0
    return out


def format_amount(resource: str, v: int) -> str:
    """Scheduler units back to quantity text: ``500m``, ``1Gi``, ``3``."""
    if resource == CPU:
        return quantity.format_value(Fraction(v, 1000))
    if resource == MEMORY or resource == EPHEMERAL_STORAGE or resource.startswith("hugepages-"):
        return quantity.format_value(v, quantity.BINARY_SI)
    return quantity.format_value(v)


def _add(into: Resources, other: Mapping[str, int]) -> None:
    for k, v in other.items():
        into[k] = into.get(k, 0) + v


def _max(into: Resources, other: Mapping[str, int]) -> None:
    for k, v in other.items():
        if v > into.get(k, 0):
            into[k] = v


def _container_requests(c: Mapping, nonzero: bool) -> Resources:
    req = resource_list((c.get("resources") or {}).get("requests"))
    if nonzero:
        # Only an absent request takes the default; an explicit zero stays zero.
        if CPU not in req:
            req[CPU] = DEFAULT_MILLI_CPU_REQUEST
        if MEMORY not in req:
            req[MEMORY] = DEFAULT_MEMORY_REQUEST
    return req


def _compute(pod: Mapping, nonzero: bool) -> Resources:
    spec = pod.get("spec") or {}
    total: Resources = {}
    for c in spec.get("containers") or ():
        _add(total, _container_requests(c, nonzero))
    sidecars: Resources = {}          # sum of sidecars started so far
    init_peak: Resources = {}
    for c in spec.get("initContainers") or ():
        req = _container_requests(c, nonzero)
        if c.get("restartPolicy") == "Always":
            _add(total, req)
            _add(sidecars, req)
            during = dict(sidecars)
        else:
            during = dict(req)
            _add(during, sidecars)
        _max(init_peak, during)
    _max(total, init_peak)
    overhead = spec.get("overhead")
    if overhead:
        _add(total, resource_list(overhead))
    return total


def pod_requests(pod: Mapping) -> Resources:
    """The pod's effective requests in scheduler units (resources it does not request are absent)."""
    return _compute(pod, nonzero=False)


def pod_nonzero_requests(pod: Mapping) -> Resources:
    """Requests for scoring: an unset cpu or memory request counts as the default."""
    return _compute(pod, nonzero=True)


_REMEMBERED: dict[tuple[str, str], tuple[Resources, Resources]] = {}
_REMEMBER_AT_MOST = 50_000


def requests_of(pod: Mapping) -> tuple[Resources, Resources]:
    """``(pod_requests(pod), pod_nonzero_requests(pod))``, remembered by uid and resourceVersion
    (a pod's containers cannot change without a new resourceVersion), so one pod's requests are
    worked out once however many times a cycle and the cache ask. The dicts are shared: read only."""
    meta = pod.get("metadata") or {}
    uid, rv = meta.get("uid"), meta.get("resourceVersion")
    if not uid or not rv:
        return _compute(pod, nonzero=False), _compute(pod, nonzero=True)
    key = (uid, rv)
    hit = _REMEMBERED.get(key)
    if hit is None:
        if len(_REMEMBERED) >= _REMEMBER_AT_MOST:
            _REMEMBERED.clear()
        hit = _REMEMBERED[key] = (_compute(pod, nonzero=False), _compute(pod, nonzero=True))
    return hit


def node_allocatable(node: Mapping) -> Resources:
    """The node's allocatable resources (capacity when allocatable is not reported)."""
    status = node.get("status") or {}
    return resource_list(status.get("allocatable") or status.get("capacity"))


def host_ports(pod: Mapping) -> list[tuple[str, str, int]]:
    """``(hostIP, protocol, hostPort)`` of every app or sidecar container port with a host port."""
    out = []
    spec = pod.get("spec") or {}
    sidecars = [c for c in spec.get("initContainers") or () if c.get("restartPolicy") == "Always"]
    for c in [*(spec.get("containers") or ()), *sidecars]:
        for p in c.get("ports") or ():
            hp = p.get("hostPort") or 0
            if hp > 0:
                out.append((p.get("hostIP") or "0.0.0.0", p.get("protocol") or "TCP", int(hp)))
    return out
