"""Server-side printing: objects as ``meta.k8s.io/v1`` Tables, the way ``kubectl get`` shows them.

kubectl asks for ``as=Table`` and prints whatever columns the server returns, so every column
kubectl users expect (pod STATUS, deployment READY, service PORT(S), ...) is computed here, per
kind. Columns with ``priority`` 1 appear only with ``-o wide``. Each row carries the object's
metadata as a ``PartialObjectMetadata`` so kubectl can add NAMESPACE and LABELS columns itself.

Pure functions over plain dicts; ``now`` is a parameter so ages are testable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from api.registry import ResourceInfo

TABLE_API_VERSION = "meta.k8s.io/v1"
INCLUDE_OBJECT_CHOICES = ("None", "Metadata", "Object")

Obj = Mapping[str, Any]
Column = dict[str, Any]

# ---------------------------------------------------------------------------------------------
# Formatting helpers


def human_duration(seconds: float) -> str:
    """A duration the way kubectl shows ages: ``5s``, ``3m2s``, ``10m``, ``5h``, ``2d3h``, ``4y``.

    Precision drops as the duration grows: seconds only under 10 minutes, minutes only under
    8 hours, hours only under 8 days, days only under 8 years.
    """
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rest = s % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d{rest}h" if rest else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp (``Time`` or ``MicroTime``) as an aware datetime; None if absent or bad."""
    if not isinstance(value, str) or not value:
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def since(value: Any, now: datetime) -> str:
    """How long ago ``value`` was, or ``<unknown>`` when there is no timestamp."""
    t = parse_time(value)
    if t is None:
        return "<unknown>"
    return human_duration((now - t).total_seconds())


def format_labels(labels: Mapping[str, str] | None) -> str:
    """``k=v,k2=v2`` sorted by key, or ``<none>``."""
    if not labels:
        return "<none>"
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def format_selector(selector: Mapping[str, Any] | None) -> str:
    """A LabelSelector in selector syntax (``app=web,tier in (a,b),!canary``), requirements
    sorted by key; an empty or missing selector prints as an empty string."""
    if not selector:
        return ""
    reqs: list[tuple[str, str]] = []
    for k, v in (selector.get("matchLabels") or {}).items():
        reqs.append((k, f"{k}={v}"))
    for expr in selector.get("matchExpressions") or []:
        key, op = expr.get("key", ""), expr.get("operator", "")
        values = ",".join(sorted(expr.get("values") or []))
        text = {"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})",
                "Exists": key, "DoesNotExist": f"!{key}"}.get(op, f"{key} {op} ({values})")
        reqs.append((key, text))
    return ",".join(text for _key, text in sorted(reqs, key=lambda r: r[0]))


def _get(obj: Any, *path: str, default: Any = None) -> Any:
    for p in path:
        if not isinstance(obj, Mapping):
            return default
        obj = obj.get(p)
    return default if obj is None else obj


def _containers_cells(pod_spec: Mapping[str, Any] | None) -> list[str]:
    containers = _get(pod_spec, "containers", default=[])
    return [",".join(c.get("name", "") for c in containers),
            ",".join(c.get("image", "") for c in containers)]


def _none(value: Any) -> Any:
    return "<none>" if value in (None, "", []) else value


# ---------------------------------------------------------------------------------------------
# Columns


def _col(name: str, type_: str = "string", description: str = "", priority: int = 0,
         format_: str = "") -> Column:
    return {"name": name, "type": type_, "format": format_, "description": description,
            "priority": priority}


_NAME = _col("Name", format_="name", description="Name must be unique within a namespace. "
             "It is required when creating resources and cannot be updated.")
_AGE = _col("Age", description="How long ago the object was created (metadata.creationTimestamp).")
_CONTAINERS = _col("Containers", priority=1, description="Names of each container in the template.")
_IMAGES = _col("Images", priority=1, description="Images referenced by each container in the template.")
_SELECTOR = _col("Selector", priority=1, description="The label selector that picks the managed pods.")

TABLE_COLUMNS: dict[str, tuple[Column, ...]] = {
    "Pod": (
        _NAME,
        _col("Ready", description="Ready containers out of all containers of the pod."),
        _col("Status", description="The pod's state as kubectl summarizes it from container states."),
        _col("Restarts", description="Container restarts, with the time of the latest one."),
        _AGE,
        _col("IP", priority=1, description="The pod's IP address (status.podIP)."),
        _col("Node", priority=1, description="The node the pod is bound to (spec.nodeName)."),
        _col("Nominated Node", priority=1, description="The node the scheduler nominated by preemption."),
        _col("Readiness Gates", priority=1, description="Readiness gates that are true, out of all."),
    ),
    "Deployment": (
        _NAME,
        _col("Ready", description="Ready replicas out of desired replicas."),
        _col("Up-to-date", "integer", "Replicas updated to the latest pod template."),
        _col("Available", "integer", "Replicas available to users (ready for minReadySeconds)."),
        _AGE, _CONTAINERS, _IMAGES, _SELECTOR,
    ),
    "ReplicaSet": (
        _NAME,
        _col("Desired", "integer", "Desired replicas (spec.replicas)."),
        _col("Current", "integer", "Observed replicas (status.replicas)."),
        _col("Ready", "integer", "Ready replicas (status.readyReplicas)."),
        _AGE, _CONTAINERS, _IMAGES, _SELECTOR,
    ),
    "DaemonSet": (
        _NAME,
        _col("Desired", "integer", "Nodes that should run the daemon pod."),
        _col("Current", "integer", "Nodes running at least one daemon pod."),
        _col("Ready", "integer", "Nodes whose daemon pod is ready."),
        _col("Up-to-date", "integer", "Nodes running the latest daemon pod template."),
        _col("Available", "integer", "Nodes whose daemon pod is available."),
        _col("Node Selector", description="The node selector of the pod template."),
        _AGE, _CONTAINERS, _IMAGES, _SELECTOR,
    ),
    "StatefulSet": (
        _NAME,
        _col("Ready", description="Ready replicas out of desired replicas."),
        _AGE, _CONTAINERS, _IMAGES,
    ),
    "Job": (
        _NAME,
        _col("Status", description="The job's state from its conditions."),
        _col("Completions", description="Succeeded pods out of desired completions."),
        _col("Duration", description="Time the job took, or has taken so far."),
        _AGE, _CONTAINERS, _IMAGES, _SELECTOR,
    ),
    "CronJob": (
        _NAME,
        _col("Schedule", description="The cron schedule."),
        _col("Timezone", description="The time zone of the schedule."),
        _col("Suspend", "boolean", "Whether new runs are suspended."),
        _col("Active", "integer", "Jobs running now."),
        _col("Last Schedule", description="When a job was last scheduled."),
        _AGE, _CONTAINERS, _IMAGES, _SELECTOR,
    ),
    "Service": (
        _NAME,
        _col("Type", description="ClusterIP, NodePort, LoadBalancer or ExternalName."),
        _col("Cluster-IP", description="The virtual IP of the service."),
        _col("External-IP", description="Addresses the service is reachable at from outside."),
        _col("Port(s)", description="Ports of the service, with node ports."),
        _AGE,
        _col("Selector", priority=1, description="Labels of the pods the service routes to."),
    ),
    "Endpoints": (
        _NAME,
        _col("Endpoints", description="Ready addresses with their ports (the first few)."),
        _AGE,
    ),
    "EndpointSlice": (
        _NAME,
        _col("AddressType", description="IPv4, IPv6 or FQDN."),
        _col("Ports", description="Ports of the slice."),
        _col("Endpoints", description="Addresses of the slice (the first few)."),
        _AGE,
    ),
    "Node": (
        _NAME,
        _col("Status", description="Ready, NotReady or Unknown, and SchedulingDisabled when cordoned."),
        _col("Roles", description="Roles from node-role.kubernetes.io/<role> labels."),
        _AGE,
        _col("Version", description="The kubelet version the node reports."),
        _col("Internal-IP", priority=1, description="The node's InternalIP address."),
        _col("External-IP", priority=1, description="The node's ExternalIP address."),
        _col("OS-Image", priority=1, description="The node's operating system image."),
        _col("Kernel-Version", priority=1, description="The node's kernel version."),
        _col("Container-Runtime", priority=1, description="The node's container runtime and version."),
    ),
    "Namespace": (
        _NAME,
        _col("Status", description="Active or Terminating."),
        _AGE,
    ),
    "ConfigMap": (
        _NAME,
        _col("Data", "integer", "Number of keys in data and binaryData."),
        _AGE,
    ),
    "Secret": (
        _NAME,
        _col("Type", description="The secret's type."),
        _col("Data", "integer", "Number of keys in data."),
        _AGE,
    ),
    "Event": (
        _col("Last Seen", description="When the event was last observed."),
        _col("Type", description="Normal or Warning."),
        _col("Reason", description="Why the event happened, in one CamelCase word."),
        _col("Object", description="The object the event is about."),
        _col("Subobject", priority=1, description="The part of the object the event is about."),
        _col("Source", priority=1, description="The component that reported the event."),
        _col("Message", description="What happened."),
        _col("First Seen", priority=1, description="When the event was first observed."),
        _col("Count", "integer", "How many times the event was observed.", priority=1),
        _col("Name", priority=1, format_="name", description="The event's own name."),
    ),
    "ServiceAccount": (
        _NAME,
        _col("Secrets", "integer", "Number of secrets listed by the service account."),
        _AGE,
    ),
    "Lease": (
        _NAME,
        _col("Holder", description="Identity of the current holder."),
        _AGE,
    ),
    "PriorityClass": (
        _NAME,
        _col("Value", "integer", "The priority of pods using this class."),
        _col("Global-Default", "boolean", "Whether pods without a class get this one."),
        _AGE,
    ),
}
DEFAULT_COLUMNS: tuple[Column, ...] = (_NAME, _AGE)


def columns_for(kind: str) -> tuple[Column, ...]:
    return TABLE_COLUMNS.get(kind, DEFAULT_COLUMNS)


# ---------------------------------------------------------------------------------------------
# Rows, per kind. Each returns every cell, in the order of the kind's columns.


def _name(obj: Obj) -> str:
    return _get(obj, "metadata", "name", default="")


def _age(obj: Obj, now: datetime) -> str:
    return since(_get(obj, "metadata", "creationTimestamp"), now)


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def _condition(conditions: Iterable[Mapping[str, Any]] | None, type_: str) -> Mapping[str, Any] | None:
    for c in conditions or ():
        if c.get("type") == type_:
            return c
    return None


def _is_true(conditions: Iterable[Mapping[str, Any]] | None, type_: str) -> bool:
    c = _condition(conditions, type_)
    return c is not None and c.get("status") == "True"


def _terminated_reason(term: Mapping[str, Any]) -> str:
    if term.get("reason"):
        return term["reason"]
    if term.get("signal"):
        return f"Signal:{term['signal']}"
    return f"ExitCode:{term.get('exitCode', 0)}"


def pod_status(pod: Obj) -> tuple[str, int, int, int, datetime | None]:
    """(STATUS, ready containers, total containers, restarts, time of the latest restart)
    summarised from the pod's container states, as kubectl shows them."""
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    conditions = status.get("conditions") or []
    phase = status.get("phase") or ""
    reason = status.get("reason") or phase
    c = _condition(conditions, "PodScheduled")
    if c is not None and c.get("reason") == "SchedulingGated":
        reason = "SchedulingGated"

    init_specs = spec.get("initContainers") or []
    sidecars = {c.get("name") for c in init_specs if c.get("restartPolicy") == "Always"}
    total = len(spec.get("containers") or []) + len(sidecars)
    ready = 0
    restarts = 0
    last_restart: datetime | None = None
    sidecar_restarts = 0
    sidecar_last_restart: datetime | None = None

    initializing = False
    for i, cs in enumerate(status.get("initContainerStatuses") or []):
        count = int(cs.get("restartCount") or 0)
        finished = parse_time(_get(cs, "lastState", "terminated", "finishedAt"))
        restarts += count
        last_restart = _later(last_restart, finished)
        is_sidecar = cs.get("name") in sidecars
        if is_sidecar:
            sidecar_restarts += count
            sidecar_last_restart = _later(sidecar_last_restart, finished)
            if cs.get("started") and cs.get("ready"):
                ready += 1
        state = cs.get("state") or {}
        term = state.get("terminated")
        waiting = state.get("waiting")
        if term is not None and term.get("exitCode", 0) == 0:
            continue
        if is_sidecar and cs.get("started"):
            continue
        if term is not None:
            reason = "Init:" + _terminated_reason(term)
        elif waiting is not None and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break

    if not initializing or _is_true(conditions, "Initialized"):
        restarts = sidecar_restarts
        last_restart = sidecar_last_restart
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            restarts += int(cs.get("restartCount") or 0)
            last_restart = _later(last_restart, parse_time(_get(cs, "lastState", "terminated", "finishedAt")))
            state = cs.get("state") or {}
            waiting, term = state.get("waiting"), state.get("terminated")
            if waiting is not None and waiting.get("reason"):
                reason = waiting["reason"]
            elif term is not None:
                reason = _terminated_reason(term)
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        # A container that completed while others still run does not make the pod Completed.
        if reason == "Completed" and has_running:
            reason = "Running" if _is_true(conditions, "Ready") else "NotReady"

    if _get(pod, "metadata", "deletionTimestamp"):
        if status.get("reason") == "NodeLost":
            reason = "Unknown"
        elif phase not in ("Succeeded", "Failed"):
            reason = "Terminating"
    return reason, ready, total, restarts, last_restart


def _pod_row(pod: Obj, now: datetime) -> list[Any]:
    reason, ready, total, restarts, last_restart = pod_status(pod)
    restarts_cell = str(restarts)
    if last_restart is not None:
        restarts_cell = f"{restarts} ({human_duration((now - last_restart).total_seconds())} ago)"
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    gates = spec.get("readinessGates") or []
    if gates:
        conditions = status.get("conditions") or []
        true = sum(1 for g in gates if _is_true(conditions, g.get("conditionType", "")))
        gates_cell = f"{true}/{len(gates)}"
    else:
        gates_cell = "<none>"
    return [_name(pod), f"{ready}/{total}", reason, restarts_cell, _age(pod, now),
            _none(status.get("podIP")), _none(spec.get("nodeName")),
            _none(status.get("nominatedNodeName")), gates_cell]


def _replicas(obj: Obj) -> int:
    value = _get(obj, "spec", "replicas")
    return 1 if value is None else int(value)


def _deployment_row(obj: Obj, now: datetime) -> list[Any]:
    st = obj.get("status") or {}
    return [_name(obj), f"{st.get('readyReplicas', 0)}/{_replicas(obj)}", st.get("updatedReplicas", 0),
            st.get("availableReplicas", 0), _age(obj, now),
            *_containers_cells(_get(obj, "spec", "template", "spec")),
            format_selector(_get(obj, "spec", "selector"))]


def _replicaset_row(obj: Obj, now: datetime) -> list[Any]:
    st = obj.get("status") or {}
    return [_name(obj), _replicas(obj), st.get("replicas", 0), st.get("readyReplicas", 0), _age(obj, now),
            *_containers_cells(_get(obj, "spec", "template", "spec")),
            format_selector(_get(obj, "spec", "selector"))]


def _daemonset_row(obj: Obj, now: datetime) -> list[Any]:
    st = obj.get("status") or {}
    return [_name(obj), st.get("desiredNumberScheduled", 0), st.get("currentNumberScheduled", 0),
            st.get("numberReady", 0), st.get("updatedNumberScheduled", 0), st.get("numberAvailable", 0),
            format_labels(_get(obj, "spec", "template", "spec", "nodeSelector")), _age(obj, now),
            *_containers_cells(_get(obj, "spec", "template", "spec")),
            format_selector(_get(obj, "spec", "selector"))]


def _statefulset_row(obj: Obj, now: datetime) -> list[Any]:
    st = obj.get("status") or {}
    return [_name(obj), f"{st.get('readyReplicas', 0)}/{_replicas(obj)}", _age(obj, now),
            *_containers_cells(_get(obj, "spec", "template", "spec"))]


def job_status(job: Obj) -> str:
    conditions = _get(job, "status", "conditions", default=[])
    if _is_true(conditions, "Complete"):
        return "Complete"
    if _is_true(conditions, "Failed"):
        return "Failed"
    if _get(job, "metadata", "deletionTimestamp"):
        return "Terminating"
    if _is_true(conditions, "SuccessCriteriaMet"):
        return "SuccessCriteriaMet"
    if _is_true(conditions, "FailureTarget"):
        return "FailureTarget"
    if _is_true(conditions, "Suspended"):
        return "Suspended"
    return "Running"


def _job_row(obj: Obj, now: datetime) -> list[Any]:
    spec = obj.get("spec") or {}
    st = obj.get("status") or {}
    succeeded = st.get("succeeded", 0)
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{spec['completions']}"
    elif (spec.get("parallelism") or 0) > 1:
        completions = f"{succeeded}/1 of {spec['parallelism']}"
    else:
        completions = f"{succeeded}/1"
    start, end = parse_time(st.get("startTime")), parse_time(st.get("completionTime"))
    if start is None:
        duration = ""
    else:
        duration = human_duration(((end or now) - start).total_seconds())
    return [_name(obj), job_status(obj), completions, duration, _age(obj, now),
            *_containers_cells(_get(spec, "template", "spec")), format_selector(spec.get("selector"))]


def _cronjob_row(obj: Obj, now: datetime) -> list[Any]:
    spec = obj.get("spec") or {}
    st = obj.get("status") or {}
    last = st.get("lastScheduleTime")
    job_spec = _get(spec, "jobTemplate", "spec", default={})
    return [_name(obj), spec.get("schedule", ""), _none(spec.get("timeZone")), bool(spec.get("suspend")),
            len(st.get("active") or []), since(last, now) if last else "<none>", _age(obj, now),
            *_containers_cells(_get(job_spec, "template", "spec")),
            format_selector(job_spec.get("selector"))]


def _service_external_ip(svc: Obj) -> str:
    spec = svc.get("spec") or {}
    kind = spec.get("type") or "ClusterIP"
    external = list(spec.get("externalIPs") or [])
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) if external else "<none>"
    if kind == "LoadBalancer":
        ingress = _get(svc, "status", "loadBalancer", "ingress", default=[])
        lb = [i.get("ip") or i.get("hostname") for i in ingress if i.get("ip") or i.get("hostname")]
        if external or lb:
            return ",".join(external + lb)
        return "<pending>"
    if kind == "ExternalName":
        return spec.get("externalName", "")
    return "<unknown>"


def _service_row(obj: Obj, now: datetime) -> list[Any]:
    spec = obj.get("spec") or {}
    ips = spec.get("clusterIPs") or []
    cluster_ip = ips[0] if ips else (spec.get("clusterIP") or "<none>")
    ports = []
    for p in spec.get("ports") or []:
        proto = p.get("protocol") or "TCP"
        if p.get("nodePort"):
            ports.append(f"{p.get('port')}:{p['nodePort']}/{proto}")
        else:
            ports.append(f"{p.get('port')}/{proto}")
    return [_name(obj), spec.get("type") or "ClusterIP", cluster_ip, _service_external_ip(obj),
            ",".join(ports) or "<none>", _age(obj, now), format_labels(spec.get("selector"))]


def _first_few(items: list[str], limit: int = 3) -> str:
    if not items:
        return "<none>"
    text = ",".join(items[:limit])
    if len(items) > limit:
        text += f" + {len(items) - limit} more..."
    return text


def _endpoints_row(obj: Obj, now: datetime) -> list[Any]:
    addrs = []
    for subset in obj.get("subsets") or []:
        ports = subset.get("ports") or []
        for a in subset.get("addresses") or []:
            ip = a.get("ip", "")
            if ports:
                addrs.extend(f"{ip}:{p.get('port')}" for p in ports)
            else:
                addrs.append(ip)
    return [_name(obj), _first_few(addrs), _age(obj, now)]


def _endpointslice_row(obj: Obj, now: datetime) -> list[Any]:
    ports = obj.get("ports") or []
    port_cell = ",".join(str(p["port"]) if p.get("port") is not None else "<unset>" for p in ports)
    addrs = [a for ep in obj.get("endpoints") or [] for a in ep.get("addresses") or []]
    return [_name(obj), obj.get("addressType", ""), port_cell or "<unset>",
            _first_few(addrs) if addrs else "<unset>", _age(obj, now)]


def node_status(node: Obj) -> str:
    ready = _condition(_get(node, "status", "conditions", default=[]), "Ready")
    if ready is None:
        status = "Unknown"
    else:
        status = "Ready" if ready.get("status") == "True" else "NotReady"
    if _get(node, "spec", "unschedulable"):
        status += ",SchedulingDisabled"
    return status


def _node_roles(node: Obj) -> str:
    roles = set()
    for k, v in (_get(node, "metadata", "labels", default={})).items():
        if k.startswith("node-role.kubernetes.io/") and k.split("/", 1)[1]:
            roles.add(k.split("/", 1)[1])
        elif k == "kubernetes.io/role" and v:
            roles.add(v)
    return ",".join(sorted(roles)) or "<none>"


def _node_row(obj: Obj, now: datetime) -> list[Any]:
    st = obj.get("status") or {}
    info = st.get("nodeInfo") or {}

    def address(kind: str) -> str:
        for a in st.get("addresses") or []:
            if a.get("type") == kind:
                return a.get("address", "")
        return "<none>"

    return [_name(obj), node_status(obj), _node_roles(obj), _age(obj, now), info.get("kubeletVersion", ""),
            address("InternalIP"), address("ExternalIP"), info.get("osImage") or "<unknown>",
            info.get("kernelVersion") or "<unknown>", info.get("containerRuntimeVersion") or "<unknown>"]


def _namespace_row(obj: Obj, now: datetime) -> list[Any]:
    return [_name(obj), _get(obj, "status", "phase", default="Active"), _age(obj, now)]


def _configmap_row(obj: Obj, now: datetime) -> list[Any]:
    return [_name(obj), len(obj.get("data") or {}) + len(obj.get("binaryData") or {}), _age(obj, now)]


def _secret_row(obj: Obj, now: datetime) -> list[Any]:
    keys = set(obj.get("data") or {}) | set(obj.get("stringData") or {})
    return [_name(obj), obj.get("type") or "Opaque", len(keys), _age(obj, now)]


def _event_row(obj: Obj, now: datetime) -> list[Any]:
    first = obj.get("firstTimestamp") or obj.get("eventTime")
    first_cell = since(first, now)
    last_cell = since(obj["lastTimestamp"], now) if obj.get("lastTimestamp") else first_cell
    count = obj.get("count") or 0
    series = obj.get("series")
    if series:
        last_cell = since(series.get("lastObservedTime"), now)
        count = series.get("count") or 0
    elif not count:
        count = 1
    involved = obj.get("involvedObject") or {}
    source = obj.get("source") or {}
    component = source.get("component") or obj.get("reportingComponent") or ""
    host = source.get("host") or obj.get("reportingInstance") or ""
    source_cell = f"{component}, {host}" if host else component
    return [last_cell, obj.get("type", ""), obj.get("reason", ""),
            f"{involved.get('kind', '').lower()}/{involved.get('name', '')}",
            involved.get("fieldPath", ""), source_cell, (obj.get("message") or "").strip(),
            first_cell, count, _name(obj)]


def _serviceaccount_row(obj: Obj, now: datetime) -> list[Any]:
    return [_name(obj), len(obj.get("secrets") or []), _age(obj, now)]


def _lease_row(obj: Obj, now: datetime) -> list[Any]:
    return [_name(obj), _get(obj, "spec", "holderIdentity", default=""), _age(obj, now)]


def _priorityclass_row(obj: Obj, now: datetime) -> list[Any]:
    return [_name(obj), obj.get("value", 0), bool(obj.get("globalDefault")), _age(obj, now)]


def _default_row(obj: Obj, now: datetime) -> list[Any]:
    return [_name(obj), _age(obj, now)]


_ROWS: dict[str, Callable[[Obj, datetime], list[Any]]] = {
    "Pod": _pod_row,
    "Deployment": _deployment_row,
    "ReplicaSet": _replicaset_row,
    "DaemonSet": _daemonset_row,
    "StatefulSet": _statefulset_row,
    "Job": _job_row,
    "CronJob": _cronjob_row,
    "Service": _service_row,
    "Endpoints": _endpoints_row,
    "EndpointSlice": _endpointslice_row,
    "Node": _node_row,
    "Namespace": _namespace_row,
    "ConfigMap": _configmap_row,
    "Secret": _secret_row,
    "Event": _event_row,
    "ServiceAccount": _serviceaccount_row,
    "Lease": _lease_row,
    "PriorityClass": _priorityclass_row,
}


def cells(kind: str, obj: Obj, now: datetime | None = None) -> list[Any]:
    """The cells of one object's row, in the order of ``columns_for(kind)``."""
    return _ROWS.get(kind, _default_row)(obj, now or datetime.now(UTC))


# ---------------------------------------------------------------------------------------------
# Tables


def _row_object(resource: ResourceInfo, obj: Obj, include_object: str) -> dict[str, Any] | None:
    if include_object == "None":
        return None
    if include_object == "Object":
        return {**obj, "kind": resource.kind, "apiVersion": resource.api_version}
    return {"kind": "PartialObjectMetadata", "apiVersion": TABLE_API_VERSION,
            "metadata": obj.get("metadata") or {}}


def _row(resource: ResourceInfo, obj: Obj, include_object: str, now: datetime) -> dict[str, Any]:
    row: dict[str, Any] = {"cells": cells(resource.kind, obj, now)}
    if resource.kind == "Pod":
        phase = _get(obj, "status", "phase")
        if phase in ("Succeeded", "Failed"):
            row["conditions"] = [{"type": "Completed", "status": "True", "reason": phase,
                                  "message": f"The pod has {phase.lower()}"}]
    embedded = _row_object(resource, obj, include_object)
    if embedded is not None:
        row["object"] = embedded
    return row


def to_table(resource: ResourceInfo, objects: Iterable[Obj], *, include_object: str = "Metadata",
             with_column_definitions: bool = True, list_meta: Mapping[str, Any] | None = None,
             now: datetime | None = None) -> dict[str, Any]:
    """A ``meta.k8s.io/v1`` Table of ``objects`` (all of ``resource``'s kind).

    ``include_object`` is the ``includeObject`` query: ``Metadata`` (the default, a
    PartialObjectMetadata per row), ``Object`` (the whole object) or ``None``. ``list_meta``
    becomes the table's metadata (resourceVersion, continue, remainingItemCount). Rows share
    sub-dicts with ``objects``: serialize the table, do not mutate it.
    """
    if include_object not in INCLUDE_OBJECT_CHOICES:
        raise ValueError(f"includeObject must be one of {', '.join(INCLUDE_OBJECT_CHOICES)}")
    now = now or datetime.now(UTC)
    return {
        "kind": "Table",
        "apiVersion": TABLE_API_VERSION,
        "metadata": dict(list_meta or {}),
        "columnDefinitions": list(columns_for(resource.kind)) if with_column_definitions else [],
        "rows": [_row(resource, obj, include_object, now) for obj in objects],
    }


def to_table_event(resource: ResourceInfo, obj: Obj, *, include_object: str = "Metadata",
                   with_column_definitions: bool = False, now: datetime | None = None) -> dict[str, Any]:
    """The Table with one row that a watch event carries when the client asked for Tables.

    kubectl only needs column definitions on the first event of a stream.
    """
    rv = _get(obj, "metadata", "resourceVersion")
    return to_table(resource, [obj], include_object=include_object,
                    with_column_definitions=with_column_definitions,
                    list_meta={"resourceVersion": rv} if rv else {}, now=now)
