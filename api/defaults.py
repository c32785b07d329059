"""Defaulting: the fields the Kubernetes 1.32 API server fills in when a client leaves them out.

``apply_defaults(obj)`` works in place on the server's private copy of a request body and is
idempotent, so it can run on every create and update. It covers the versioned defaulting
functions (core, apps, batch, discovery, scheduling) and what the create strategies set
(``status.phase``, ``qosClass``, namespace finalizers). ``pod_admission_defaults(pod)`` is what the
default admission plug-ins add to every new pod (priority, default tolerations, service account
name): the server runs it at admission, after the field manager has recorded the creator's
fields, so that the creator does not own them, as in Kubernetes. What needs cluster state
(cluster IPs, node ports, resolving a PriorityClass, the service-account token volume) and what
needs the object's uid (a Job's selector: ``job_selector_defaults``) is the server's to do.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from api import quantity

DEFAULT_TERMINATION_GRACE = 30
DEFAULT_TOLERATION_SECONDS = 300
CLIENT_IP_AFFINITY_SECONDS = 10800
DEFAULT_FILE_MODE = 420  # 0644

# Built-in PriorityClasses the server always has, so pods naming them resolve without a lookup.
SYSTEM_PRIORITY_CLASSES = {"system-node-critical": 2000001000, "system-cluster-critical": 2000000000}

JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
LEGACY_JOB_NAME_LABEL = "job-name"
CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"
LEGACY_CONTROLLER_UID_LABEL = "controller-uid"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"

_VOLUME_SOURCES = (
    "hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "secret", "nfs",
    "iscsi", "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder", "cephfs", "flocker",
    "downwardAPI", "fc", "azureFile", "configMap", "vsphereVolume", "quobyte", "azureDisk",
    "photonPersistentDisk", "projected", "portworxVolume", "scaleIO", "storageos", "csi", "ephemeral",
    "image",
)


def _d(parent: dict, key: str) -> dict:
    """``parent[key]`` as a dict, created when missing or null. A value of another type is left
    for schema validation to report: defaults then go to a throwaway dict."""
    v = parent.get(key)
    if v is None:
        v = parent[key] = {}
    elif not isinstance(v, dict):
        return {}
    return v


def _dict(v: Any) -> dict:
    return v if isinstance(v, dict) else {}


def _l(v: Any) -> list:
    return v if isinstance(v, list) else []


# ---------------------------------------------------------------------------------------------
# Pods and pod templates


def image_pull_policy_for(image: str) -> str:
    """``Always`` for ``:latest`` or an untagged, undigested image; ``IfNotPresent`` otherwise."""
    if not image:
        return "IfNotPresent"
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = last.partition(":")[2] if ":" in last else ""
    if not tag and not digest:
        tag = "latest"
    return "Always" if tag == "latest" else "IfNotPresent"


def _default_http_get(action: Any) -> None:
    if isinstance(action, dict):
        if not action.get("path"):
            action["path"] = "/"
        if not action.get("scheme"):
            action["scheme"] = "HTTP"


def _default_probe(probe: Any) -> None:
    if not isinstance(probe, dict):
        return
    for key, value in (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1),
                       ("failureThreshold", 3)):
        if not probe.get(key):
            probe[key] = value
    _default_http_get(probe.get("httpGet"))


def _default_field_refs(env_source: Any) -> None:
    if not isinstance(env_source, dict):
        return
    ref = env_source.get("fieldRef")
    if isinstance(ref, dict) and not ref.get("apiVersion"):
        ref["apiVersion"] = "v1"
    res = env_source.get("resourceFieldRef")
    if isinstance(res, dict) and "divisor" not in res:
        res["divisor"] = "0"


# Quantity text -> its canonical milli text, and -> its value in nano units (every parsed
# quantity is a whole number of nano units). Strings only: immutable keys and values, so sharing
# them is safe; cleared when full rather than evicted one by one.
_CANONICAL_MILLI: dict[str, str] = {}
_NANO: dict[str, int] = {}
_MEMO_LIMIT = 4096


def _canonical_milli(q: str | int | float) -> str:
    if not isinstance(q, str):
        return quantity.canonical_milli(q)
    got = _CANONICAL_MILLI.get(q)
    if got is None:
        got = quantity.canonical_milli(q)
        if len(_CANONICAL_MILLI) >= _MEMO_LIMIT:
            _CANONICAL_MILLI.clear()
        _CANONICAL_MILLI[q] = got
    return got


def canonicalize_resource_list(rl: Any) -> None:
    """Rewrite each quantity in its canonical text rounded up to milli units, as the server stores
    resource lists (``1000m`` -> ``1``, ``2048Mi`` -> ``2Gi``). Unparsable values are left for
    validation to report."""
    if not isinstance(rl, dict):
        return
    for name, q in rl.items():
        if isinstance(q, str | int | float) and not isinstance(q, bool):
            try:
                rl[name] = _canonical_milli(q)
            except ValueError:
                pass


def _default_container(c: Any) -> None:
    if not isinstance(c, dict):
        return
    if not c.get("imagePullPolicy"):
        c["imagePullPolicy"] = image_pull_policy_for(c.get("image") or "")
    if not c.get("terminationMessagePath"):
        c["terminationMessagePath"] = "/dev/termination-log"
    if not c.get("terminationMessagePolicy"):
        c["terminationMessagePolicy"] = "File"
    resources = c.get("resources")
    if resources is None:
        c["resources"] = {}
    elif isinstance(resources, dict):
        canonicalize_resource_list(resources.get("limits"))
        canonicalize_resource_list(resources.get("requests"))
    for port in _l(c.get("ports")):
        if isinstance(port, dict) and not port.get("protocol"):
            port["protocol"] = "TCP"
    for key in ("livenessProbe", "readinessProbe", "startupProbe"):
        _default_probe(c.get(key))
    lifecycle = c.get("lifecycle")
    if isinstance(lifecycle, dict):
        for hook in (lifecycle.get("postStart"), lifecycle.get("preStop")):
            if isinstance(hook, dict):
                _default_http_get(hook.get("httpGet"))
    for env in _l(c.get("env")):
        if isinstance(env, dict):
            _default_field_refs(env.get("valueFrom"))


def _default_volume(v: Any) -> None:
    if not isinstance(v, dict):
        return
    if not any(v.get(s) is not None for s in _VOLUME_SOURCES):
        v["emptyDir"] = {}
    for key in ("configMap", "secret", "downwardAPI", "projected"):
        src = v.get(key)
        if isinstance(src, dict) and src.get("defaultMode") is None:
            src["defaultMode"] = DEFAULT_FILE_MODE
    host_path = v.get("hostPath")
    if isinstance(host_path, dict) and host_path.get("type") is None:
        host_path["type"] = ""
    downward = v.get("downwardAPI")
    if isinstance(downward, dict):
        for item in _l(downward.get("items")):
            _default_field_refs(item)
    projected = v.get("projected")
    if isinstance(projected, dict):
        for src in _l(projected.get("sources")):
            if not isinstance(src, dict):
                continue
            token = src.get("serviceAccountToken")
            if isinstance(token, dict) and not token.get("expirationSeconds"):
                token["expirationSeconds"] = 3600
            down = src.get("downwardAPI")
            if isinstance(down, dict):
                for item in _l(down.get("items")):
                    _default_field_refs(item)
    ephemeral = v.get("ephemeral")
    if isinstance(ephemeral, dict):
        template = ephemeral.get("volumeClaimTemplate")
        if isinstance(template, dict):
            _default_pvc_spec(_d(template, "spec"))


def default_pod_spec(spec: dict) -> None:
    """Defaults shared by pods and pod templates (Kubernetes' PodSpec defaulting)."""
    if not spec.get("dnsPolicy"):
        spec["dnsPolicy"] = "ClusterFirst"
    if not spec.get("restartPolicy"):
        spec["restartPolicy"] = "Always"
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = DEFAULT_TERMINATION_GRACE
    if not spec.get("schedulerName"):
        spec["schedulerName"] = "default-scheduler"
    # serviceAccount is the deprecated spelling; the server keeps both equal.
    if not spec.get("serviceAccountName") and spec.get("serviceAccount"):
        spec["serviceAccountName"] = spec["serviceAccount"]
    if spec.get("serviceAccountName"):
        spec["serviceAccount"] = spec["serviceAccountName"]
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for c in _l(spec.get(key)):
            _default_container(c)
    for v in _l(spec.get("volumes")):
        _default_volume(v)


def _default_template(template: Any) -> None:
    if isinstance(template, dict):
        default_pod_spec(_d(template, "spec"))


def _requests_from_limits(containers: Any) -> None:
    for c in _l(containers):
        if not isinstance(c, dict):
            continue
        resources = c.get("resources")
        if not isinstance(resources, dict):
            continue
        limits = resources.get("limits")
        if not limits:
            continue
        requests = _d(resources, "requests")
        for name, q in limits.items():
            requests.setdefault(name, q)


def _host_network_ports(containers: Any) -> None:
    for c in _l(containers):
        for port in _l(c.get("ports")) if isinstance(c, dict) else ():
            if isinstance(port, dict) and not port.get("hostPort"):
                port["hostPort"] = port.get("containerPort")


def pod_qos_class(pod: dict) -> str:
    """``Guaranteed``, ``Burstable`` or ``BestEffort`` from cpu and memory requests and limits.

    Sums over init and regular containers: Guaranteed needs every container to limit both cpu and
    memory with requests equal to limits; no cpu/memory request or limit anywhere is BestEffort.
    """
    spec = _dict(pod.get("spec"))
    requests: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    guaranteed = True
    for c in _l(spec.get("initContainers")) + _l(spec.get("containers")):
        if not isinstance(c, dict):
            continue
        res = _dict(c.get("resources"))
        for name, q in _dict(res.get("requests")).items():
            if name in ("cpu", "memory"):
                v = _q(q)
                if v > 0:
                    requests[name] = requests.get(name, 0) + v
        found = set()
        for name, q in _dict(res.get("limits")).items():
            if name in ("cpu", "memory"):
                v = _q(q)
                if v > 0:
                    found.add(name)
                    limits[name] = limits.get(name, 0) + v
        if found != {"cpu", "memory"}:
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed:
        for name, req in requests.items():
            if limits.get(name) != req:
                guaranteed = False
                break
    if guaranteed and len(requests) == len(limits):
        return "Guaranteed"
    return "Burstable"


def _q(q: Any) -> int:
    """The quantity in nano units; 0 when unparsable (validation reports it; classification must
    not fail first)."""
    if isinstance(q, str):
        got = _NANO.get(q)
        if got is not None:
            return got
    try:
        got = int(quantity.parse(q) * 1_000_000_000)
    except ValueError:
        got = 0
    if isinstance(q, str):
        if len(_NANO) >= _MEMO_LIMIT:
            _NANO.clear()
        _NANO[q] = got
    return got


def pod_admission_defaults(pod: dict) -> None:
    """What the default admission plug-ins add to a pod on create.

    Priority (0 and PreemptLowerPriority without a class; the built-in system classes resolved;
    other classes left for the server to resolve), the not-ready/unreachable NoExecute
    tolerations for 300 s, and the ``default`` service account name.
    """
    spec = _d(pod, "spec")
    class_name = spec.get("priorityClassName")
    if not class_name:
        spec.setdefault("priority", 0)
    elif class_name in SYSTEM_PRIORITY_CLASSES and spec.get("priority") is None:
        spec["priority"] = SYSTEM_PRIORITY_CLASSES[class_name]
    if not spec.get("preemptionPolicy") and (not class_name or class_name in SYSTEM_PRIORITY_CLASSES):
        spec["preemptionPolicy"] = "PreemptLowerPriority"
    tolerations = spec.get("tolerations")
    if not isinstance(tolerations, list):
        tolerations = []
    added = list(tolerations)
    for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
        if not any(_tolerates_no_execute(t, key) for t in tolerations if isinstance(t, dict)):
            added.append({"key": key, "operator": "Exists", "effect": "NoExecute",
                          "tolerationSeconds": DEFAULT_TOLERATION_SECONDS})
    if added != tolerations or "tolerations" in spec:
        spec["tolerations"] = added
    if not spec.get("serviceAccountName"):
        spec["serviceAccountName"] = spec["serviceAccount"] = "default"


def _tolerates_no_execute(t: dict, key: str) -> bool:
    if t.get("effect") not in (None, "", "NoExecute"):
        return False
    if t.get("operator") == "Exists" and not t.get("key"):
        return True
    return t.get("key") == key


def default_pod(pod: dict, *, create: bool = True) -> None:
    spec = _d(pod, "spec")
    _requests_from_limits(spec.get("containers"))
    _requests_from_limits(spec.get("initContainers"))
    if spec.get("enableServiceLinks") is None:
        spec["enableServiceLinks"] = True
    if spec.get("hostNetwork"):
        _host_network_ports(spec.get("containers"))
        _host_network_ports(spec.get("initContainers"))
    default_pod_spec(spec)
    if create:
        pod["status"] = {"phase": "Pending", "qosClass": pod_qos_class(pod)}
    else:
        status = pod.get("status")
        if isinstance(status, dict) and not status.get("qosClass"):
            status["qosClass"] = pod_qos_class(pod)


# ---------------------------------------------------------------------------------------------
# Workloads


def default_deployment(obj: dict, *, create: bool = True) -> None:
    spec = _d(obj, "spec")
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    strategy = _d(spec, "strategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy["type"] == "RollingUpdate":
        ru = _d(strategy, "rollingUpdate")
        if ru.get("maxUnavailable") is None:
            ru["maxUnavailable"] = "25%"
        if ru.get("maxSurge") is None:
            ru["maxSurge"] = "25%"
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    if spec.get("progressDeadlineSeconds") is None:
        spec["progressDeadlineSeconds"] = 600
    _default_template(_d(spec, "template"))


def default_replicaset(obj: dict, *, create: bool = True) -> None:
    spec = _d(obj, "spec")
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    _default_template(_d(spec, "template"))


def default_daemonset(obj: dict, *, create: bool = True) -> None:
    spec = _d(obj, "spec")
    strategy = _d(spec, "updateStrategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy["type"] == "RollingUpdate":
        ru = _d(strategy, "rollingUpdate")
        if ru.get("maxUnavailable") is None:
            ru["maxUnavailable"] = 1
        if ru.get("maxSurge") is None:
            ru["maxSurge"] = 0
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    _default_template(_d(spec, "template"))


def _default_pvc_spec(spec: dict) -> None:
    if not spec.get("volumeMode"):
        spec["volumeMode"] = "Filesystem"
    resources = spec.get("resources")
    if isinstance(resources, dict):
        canonicalize_resource_list(resources.get("requests"))
        canonicalize_resource_list(resources.get("limits"))


def default_statefulset(obj: dict, *, create: bool = True) -> None:
    spec = _d(obj, "spec")
    if not spec.get("podManagementPolicy"):
        spec["podManagementPolicy"] = "OrderedReady"
    strategy = _d(spec, "updateStrategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
        _d(strategy, "rollingUpdate")
    ru = strategy.get("rollingUpdate")
    if strategy["type"] == "RollingUpdate" and isinstance(ru, dict) and ru.get("partition") is None:
        ru["partition"] = 0
    policy = _d(spec, "persistentVolumeClaimRetentionPolicy")
    if not policy.get("whenDeleted"):
        policy["whenDeleted"] = "Retain"
    if not policy.get("whenScaled"):
        policy["whenScaled"] = "Retain"
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    for pvc in _l(spec.get("volumeClaimTemplates")):
        if isinstance(pvc, dict):
            pvc.setdefault("apiVersion", "v1")
            pvc.setdefault("kind", "PersistentVolumeClaim")
            _default_pvc_spec(_d(pvc, "spec"))
            status = _d(pvc, "status")
            if not status.get("phase"):
                status["phase"] = "Pending"
    _default_template(_d(spec, "template"))


def _default_job_spec(spec: dict) -> None:
    _default_template(_d(spec, "template"))


def default_job(obj: dict, *, create: bool = True) -> None:
    spec = _d(obj, "spec")
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    if spec.get("parallelism") is None:
        spec["parallelism"] = 1
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = 2147483647 if spec.get("backoffLimitPerIndex") is not None else 6
    if not spec.get("completionMode"):
        spec["completionMode"] = "NonIndexed"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    pfp = spec.get("podFailurePolicy")
    if isinstance(pfp, dict):
        for rule in _l(pfp.get("rules")):
            for pattern in _l(rule.get("onPodConditions")) if isinstance(rule, dict) else ():
                if isinstance(pattern, dict) and not pattern.get("status"):
                    pattern["status"] = "True"
    if not spec.get("podReplacementPolicy"):
        spec["podReplacementPolicy"] = "Failed" if isinstance(pfp, dict) else "TerminatingOrFailed"
    _copy_template_labels(obj)
    _default_job_spec(spec)


def _copy_template_labels(job: dict) -> None:
    """A Job without labels shows its pod template's labels, as Kubernetes' defaulting does."""
    template_labels = _dict(_dict(_dict(_dict(job.get("spec")).get("template")).get("metadata")).get("labels"))
    md = _d(job, "metadata")
    if template_labels and not md.get("labels"):
        md["labels"] = dict(template_labels)


def job_selector_defaults(job: dict) -> None:
    """Generate a Job's selector and pod labels from its uid (call once the uid is set).

    Unless ``spec.manualSelector`` is true: the template gains ``controller-uid``,
    ``batch.kubernetes.io/controller-uid``, ``job-name`` and ``batch.kubernetes.io/job-name``
    (where not already present) and the selector matches ``batch.kubernetes.io/controller-uid``.
    """
    spec = _d(job, "spec")
    if spec.get("manualSelector"):
        return
    md = _dict(job.get("metadata"))
    uid, name = md.get("uid", ""), md.get("name", "")
    template_md = _d(_d(spec, "template"), "metadata")
    labels = _d(template_md, "labels")
    labels.setdefault(LEGACY_JOB_NAME_LABEL, name)
    labels.setdefault(JOB_NAME_LABEL, name)
    labels.setdefault(LEGACY_CONTROLLER_UID_LABEL, uid)
    labels.setdefault(CONTROLLER_UID_LABEL, uid)
    selector = _d(spec, "selector")
    _d(selector, "matchLabels").setdefault(CONTROLLER_UID_LABEL, uid)
    _copy_template_labels(job)


def default_cronjob(obj: dict, *, create: bool = True) -> None:
    spec = _d(obj, "spec")
    if not spec.get("concurrencyPolicy"):
        spec["concurrencyPolicy"] = "Allow"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    if spec.get("successfulJobsHistoryLimit") is None:
        spec["successfulJobsHistoryLimit"] = 3
    if spec.get("failedJobsHistoryLimit") is None:
        spec["failedJobsHistoryLimit"] = 1
    _default_job_spec(_d(_d(spec, "jobTemplate"), "spec"))


# ---------------------------------------------------------------------------------------------
# Core kinds other than pods


def _externally_accessible(spec: dict) -> bool:
    return spec["type"] in ("LoadBalancer", "NodePort") or (
        spec["type"] == "ClusterIP" and bool(spec.get("externalIPs")))


def default_service(obj: dict, *, create: bool = True) -> None:
    spec = _d(obj, "spec")
    if not spec.get("sessionAffinity"):
        spec["sessionAffinity"] = "None"
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        client_ip = _d(_d(spec, "sessionAffinityConfig"), "clientIP")
        if client_ip.get("timeoutSeconds") is None:
            client_ip["timeoutSeconds"] = CLIENT_IP_AFFINITY_SECONDS
    if not spec.get("type"):
        spec["type"] = "ClusterIP"
    for port in _l(spec.get("ports")):
        if not isinstance(port, dict):
            continue
        if not port.get("protocol"):
            port["protocol"] = "TCP"
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")
    if _externally_accessible(spec) and not spec.get("externalTrafficPolicy"):
        spec["externalTrafficPolicy"] = "Cluster"
    if spec["type"] != "ExternalName":
        if not spec.get("internalTrafficPolicy"):
            spec["internalTrafficPolicy"] = "Cluster"
        if spec.get("clusterIP") and not spec.get("clusterIPs"):
            spec["clusterIPs"] = [spec["clusterIP"]]
        if not spec.get("ipFamilyPolicy"):
            headless_selectorless = spec.get("clusterIP") == "None" and not spec.get("selector")
            spec["ipFamilyPolicy"] = "RequireDualStack" if headless_selectorless else "SingleStack"
        if not spec.get("ipFamilies"):
            spec["ipFamilies"] = ["IPv4"]
    if spec["type"] == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        spec["allocateLoadBalancerNodePorts"] = True
    status = _d(obj, "status")
    if status.get("loadBalancer") is None:
        status["loadBalancer"] = {}
    if spec.get("type") == "LoadBalancer":
        for ingress in _l(_dict(status.get("loadBalancer")).get("ingress")):
            if isinstance(ingress, dict) and ingress.get("ip") and not ingress.get("ipMode"):
                ingress["ipMode"] = "VIP"


def default_namespace(obj: dict, *, create: bool = True) -> None:
    md = _d(obj, "metadata")
    if md.get("name"):
        _d(md, "labels")[NAMESPACE_NAME_LABEL] = md["name"]
    if create:
        obj["spec"] = {"finalizers": ["kubernetes"]}
        obj["status"] = {"phase": "Active"}
    else:
        status = _d(obj, "status")
        if not status.get("phase"):
            status["phase"] = "Active"


def default_secret(obj: dict, *, create: bool = True) -> None:
    """Type Opaque; ``stringData`` is write-only: merged into ``data`` (base64, winning over the
    same key there) and dropped, as Kubernetes' conversion does."""
    if not obj.get("type"):
        obj["type"] = "Opaque"
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        data = _d(obj, "data")
        for key, value in string_data.items():
            if isinstance(value, str):
                data[key] = base64.b64encode(value.encode()).decode()


def default_node(obj: dict, *, create: bool = True) -> None:
    status = obj.get("status")
    if not isinstance(status, dict):
        return
    canonicalize_resource_list(status.get("capacity"))
    canonicalize_resource_list(status.get("allocatable"))
    if status.get("capacity") and status.get("allocatable") is None:
        status["allocatable"] = dict(status["capacity"])


def default_endpoints(obj: dict, *, create: bool = True) -> None:
    for subset in _l(obj.get("subsets")):
        for port in _l(subset.get("ports")) if isinstance(subset, dict) else ():
            if isinstance(port, dict) and not port.get("protocol"):
                port["protocol"] = "TCP"


def default_endpointslice(obj: dict, *, create: bool = True) -> None:
    for port in _l(obj.get("ports")):
        if not isinstance(port, dict):
            continue
        if port.get("name") is None:
            port["name"] = ""
        if not port.get("protocol"):
            port["protocol"] = "TCP"


def default_priorityclass(obj: dict, *, create: bool = True) -> None:
    if not obj.get("preemptionPolicy"):
        obj["preemptionPolicy"] = "PreemptLowerPriority"


_BY_KIND: dict[str, Callable[..., None]] = {
    "Pod": default_pod,
    "Deployment": default_deployment,
    "ReplicaSet": default_replicaset,
    "DaemonSet": default_daemonset,
    "StatefulSet": default_statefulset,
    "Job": default_job,
    "CronJob": default_cronjob,
    "Service": default_service,
    "Namespace": default_namespace,
    "Secret": default_secret,
    "Node": default_node,
    "Endpoints": default_endpoints,
    "EndpointSlice": default_endpointslice,
    "PriorityClass": default_priorityclass,
}


def apply_defaults(obj: dict, *, create: bool = True) -> None:
    """Fill in ``obj``'s defaults in place, by its ``kind``; unknown kinds are left alone.

    ``create=False`` (updates) skips what only a create does: the reset of a new pod's or
    namespace's status and namespace finalizers.
    """
    kind = obj.get("kind")
    fn = _BY_KIND.get(kind) if isinstance(kind, str) else None
    if fn is not None:
        fn(obj, create=create)
