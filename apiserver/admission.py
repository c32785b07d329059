"""Admission: the server-side rules that need cluster state, run after defaulting on create.

Stateless admission defaults (DefaultTolerationSeconds, priority) live in ``api.defaults``.

- NamespaceLifecycle: no new objects in a missing or terminating namespace.
- Service IP and node-port allocation from the service CIDR and node-port range.
- Job selectors and labels, which need the object's uid.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
from collections.abc import Awaitable, Callable

from api import defaults, registry
from api.errors import Cause, Forbidden, Invalid, NotFound, invalid
from api.registry import ResourceInfo

DEFAULT_SERVICE_CIDR = "10.96.0.0/12"
NODE_PORT_RANGE = (30000, 32767)

# (resource, namespace, name) -> the object or None; served from the watch cache, falling back
# to storage on a miss.
Getter = Callable[[ResourceInfo, str | None, str], Awaitable[dict | None]]
# (resource, containing) -> every object of it now stored (from the watch cache); with
# ``containing``, only those whose stored JSON holds these bytes (a pre-filter that spares
# decoding objects that cannot match; callers still check the objects).
Lister = Callable[..., Awaitable[list[dict]]]

_NAMESPACES = registry.lookup("", "v1", "namespaces")
_SERVICES = registry.lookup("", "v1", "services")
_PRIORITY_CLASSES = registry.lookup("scheduling.k8s.io", "v1", "priorityclasses")
# The resources admission reads; writes to them are remembered so a later admission decision
# waits for the cache to hold them (a namespace deleted a moment ago refuses new content).
_READ_BY_ADMISSION = frozenset(r.storage_prefix() for r in (_NAMESPACES, _SERVICES, _PRIORITY_CLASSES))


# (resource, namespace, name) -> the stored JSON held in the watch cache, or None when the cache
# does not hold it (then ask the Getter).
Peeker = Callable[[ResourceInfo, str | None, str], bytes | None]
# (resource, revision) -> returns once the watch cache of that resource has seen the revision
# (or gave up waiting): the caches lag the store, and admission must see this server's own writes.
CatchUp = Callable[[ResourceInfo, int], Awaitable[object]]



class Admission:
    def __init__(self, get: Getter, list_all: Lister, service_cidr: str = DEFAULT_SERVICE_CIDR, *,
                 peek: Peeker | None = None, catch_up: CatchUp | None = None):
        self.get = get
        self.list_all = list_all
        self.peek = peek
        self.catch_up = catch_up
        self._written: dict[str, int] = {}      # storage prefix -> revision of this server's last write
        self.service_net = ipaddress.ip_network(service_cidr)
        # Allocations are decided under one lock and remembered until the service is stored or
        # released, so two concurrent creates never pick the same address.
        self._alloc_lock = asyncio.Lock()
        self._pending_ips: set[str] = set()
        self._pending_ports: set[int] = set()

    def wrote(self, r: ResourceInfo, revision: int) -> None:
        """Called by the object store after every write it made."""
        prefix = r.storage_prefix()
        if prefix in _READ_BY_ADMISSION and revision > self._written.get(prefix, 0):
            self._written[prefix] = revision

    async def _fresh(self, r: ResourceInfo) -> None:
        rev = self._written.get(r.storage_prefix())
        if rev is not None and self.catch_up is not None:
            await self.catch_up(r, rev)

    async def admit_create(self, r: ResourceInfo, obj: dict, *, dry_run: bool = False) -> None:
        md = obj["metadata"]
        if r.namespaced:
            await self._namespace_lifecycle(md.get("namespace") or "", r, md.get("name") or "")
        if r.kind == "Pod":
            defaults.pod_admission_defaults(obj)
            await self._priority(obj)
        elif r.kind == "Service":
            await self._allocate_service(obj, dry_run)
        elif r.kind == "Job":
            defaults.job_selector_defaults(obj)

    def prepare_update(self, r: ResourceInfo, old: dict, new: dict) -> None:
        """Carry allocations over an update that leaves them out (a PUT of a manifest without
        clusterIP keeps the service's address, as Kubernetes' service strategy does)."""
        if r.kind != "Service":
            return
        ospec, nspec = old.get("spec") or {}, new.setdefault("spec", {})
        otype, ntype = ospec.get("type", "ClusterIP"), nspec.get("type", "ClusterIP")
        if ntype != "ExternalName" and otype != "ExternalName":
            if not nspec.get("clusterIP") and ospec.get("clusterIP"):
                nspec["clusterIP"] = ospec["clusterIP"]
            if not nspec.get("clusterIPs") and ospec.get("clusterIPs"):
                nspec["clusterIPs"] = list(ospec["clusterIPs"])
        if ntype in ("NodePort", "LoadBalancer"):
            old_ports = {(p.get("port"), p.get("protocol", "TCP")): p.get("nodePort")
                         for p in ospec.get("ports") or []}
            for p in nspec.get("ports") or []:
                if not p.get("nodePort"):
                    np = old_ports.get((p.get("port"), p.get("protocol", "TCP")))
                    if np:
                        p["nodePort"] = np
        else:
            for p in nspec.get("ports") or []:
                p.pop("nodePort", None)
            if ntype != otype:
                nspec.pop("externalTrafficPolicy", None)

    async def release(self, r: ResourceInfo, obj: dict) -> None:
        """Forget pending allocations of an object that was not stored or was deleted."""
        if r.kind == "Service":
            spec = obj.get("spec") or {}
            for ip in spec.get("clusterIPs") or [spec.get("clusterIP")]:
                self._pending_ips.discard(ip)
            for p in spec.get("ports") or []:
                self._pending_ports.discard(p.get("nodePort"))

    async def _priority(self, pod: dict) -> None:
        """Priority admission: ``priorityClassName`` (or the global default class) decides
        ``spec.priority`` and ``spec.preemptionPolicy``."""
        spec = pod.setdefault("spec", {})
        name = spec.get("priorityClassName")
        pc = None
        await self._fresh(_PRIORITY_CLASSES)
        if name:
            pc = await self.get(_PRIORITY_CLASSES, None, name)
            if pc is None:
                raise Forbidden(f'pods "{pod["metadata"].get("name", "")}" is forbidden: no PriorityClass with '
                                f'name {name} was found', kind="pods", name=pod["metadata"].get("name", ""))
        else:
            defaults_ = [c for c in await self.list_all(_PRIORITY_CLASSES, b'"globalDefault"')
                         if c.get("globalDefault")]
            if defaults_:
                pc = min(defaults_, key=lambda c: c.get("value", 0))
                spec["priorityClassName"] = pc["metadata"]["name"]
        if pc is None:
            return
        value = int(pc.get("value", 0))
        given = spec.get("priority")
        if name and given is not None and given != value and name not in defaults.SYSTEM_PRIORITY_CLASSES:
            raise Forbidden(f"the integer value of priority ({given}) must not be provided in pod spec; priority "
                            f"admission controller computed {value} from the given PriorityClass name")
        spec["priority"] = value
        spec["preemptionPolicy"] = pc.get("preemptionPolicy") or "PreemptLowerPriority"

    async def _namespace_lifecycle(self, namespace: str, r: ResourceInfo, name: str) -> None:
        await self._fresh(_NAMESPACES)
        raw = self.peek(_NAMESPACES, None, namespace) if self.peek is not None else None
        if raw is not None and b'"deletionTimestamp"' not in raw and b'"Terminating"' not in raw:
            return          # stored, not being deleted, not terminating: no need to decode it
        ns = await self.get(_NAMESPACES, None, namespace)
        if ns is None:
            raise NotFound(f'namespaces "{namespace}" not found', kind="namespaces", name=namespace)
        if (ns.get("metadata") or {}).get("deletionTimestamp") or \
                (ns.get("status") or {}).get("phase") == "Terminating":
            why = f"unable to create new content in namespace {namespace} because it is being terminated"
            qualified = f"{r.plural}.{r.group}" if r.group else r.plural
            raise Forbidden(f'{qualified} "{name}" is forbidden: {why}', kind=r.plural, name=name, group=r.group,
                            causes=[Cause("NamespaceTerminating", why, "metadata.namespace")])

    async def _allocate_service(self, obj: dict, dry_run: bool) -> None:
        spec = obj.setdefault("spec", {})
        stype = spec.get("type", "ClusterIP")
        async with self._alloc_lock:
            await self._fresh(_SERVICES)
            services = await self.list_all(_SERVICES)
            used_ips = {ip for s in services for ip in ((s.get("spec") or {}).get("clusterIPs") or [])}
            used_ips |= self._pending_ips
            used_ports = {p.get("nodePort") for s in services for p in (s.get("spec") or {}).get("ports") or []}
            used_ports |= self._pending_ports
            name = obj["metadata"].get("name", "")
            if stype != "ExternalName":
                ip = spec.get("clusterIP")
                if ip in (None, ""):
                    ip = self._free_ip(used_ips)
                elif ip != "None":
                    self._check_ip(name, ip, used_ips)
                spec["clusterIP"] = ip
                spec["clusterIPs"] = [ip]
                if not dry_run and ip != "None":
                    self._pending_ips.add(ip)
            if stype in ("NodePort", "LoadBalancer"):
                for i, port in enumerate(spec.get("ports") or []):
                    np = port.get("nodePort")
                    if np:
                        if np in used_ports or not NODE_PORT_RANGE[0] <= np <= NODE_PORT_RANGE[1]:
                            raise invalid("Service", name, [Cause(
                                "FieldValueInvalid", f"Invalid value: {np}: provided port is already "
                                f"allocated" if np in used_ports else f"Invalid value: {np}: provided port "
                                f"is not in the valid range. The range of valid ports is "
                                f"{NODE_PORT_RANGE[0]}-{NODE_PORT_RANGE[1]}", f"spec.ports[{i}].nodePort")])
                    else:
                        np = self._free_port(used_ports)
                        port["nodePort"] = np
                    used_ports.add(np)
                    if not dry_run:
                        self._pending_ports.add(np)

    def _free_ip(self, used: set[str]) -> str:
        net = self.service_net
        size = net.num_addresses
        # Random probing (the first address is the API server's own service).
        for _ in range(4096):
            candidate = str(net.network_address + random.randrange(2, size - 1))
            if candidate not in used:
                return candidate
        for offset in range(2, size - 1):
            candidate = str(net.network_address + offset)
            if candidate not in used:
                return candidate
        raise Invalid("Internal error: failed to allocate a serviceIP: range is full")

    def _check_ip(self, name: str, ip: str, used: set[str]) -> None:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            raise invalid("Service", name, [Cause("FieldValueInvalid", f'Invalid value: "{ip}": must be a '
                                                  f'valid IP address', "spec.clusterIPs[0]")]) from None
        if addr not in self.service_net:
            raise invalid("Service", name, [Cause(
                "FieldValueInvalid", f'Invalid value: "{ip}": failed to allocate IP {ip}: the provided '
                f'IP ({ip}) is not in the valid range. The range of valid IPs is {self.service_net}',
                "spec.clusterIPs")])
        if ip in used:
            raise invalid("Service", name, [Cause(
                "FieldValueInvalid", f'Invalid value: ["{ip}"]: failed to allocate IP {ip}: provided IP '
                f'is already allocated', "spec.clusterIPs")])

    @staticmethod
    def _free_port(used: set) -> int:
        lo, hi = NODE_PORT_RANGE
        for _ in range(4096):
            p = random.randint(lo, hi)
            if p not in used:
                return p
        for p in range(lo, hi + 1):
            if p not in used:
                return p
        raise Invalid("Internal error: failed to allocate a nodePort: range is full")
