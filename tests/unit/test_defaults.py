"""Defaulting: what the server fills in for each kind, as Kubernetes 1.32 does."""

import copy
import re

import pytest

from api.defaults import (
    apply_defaults,
    image_pull_policy_for,
    job_selector_defaults,
    pod_admission_defaults,
    pod_qos_class,
)

_MISSING = object()


def get(obj, path):
    """Value at a dotted path with [i] indexes, or _MISSING."""
    cur = obj
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        if part.startswith("["):
            i = int(part[1:-1])
            if not isinstance(cur, list) or i >= len(cur):
                return _MISSING
            cur = cur[i]
        else:
            if not isinstance(cur, dict) or part not in cur:
                return _MISSING
            cur = cur[part]
    return cur


def container(name="c", image="nginx:1.25", **extra):
    return {"name": name, "image": image, **extra}


def make_pod(*containers, **spec):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": list(containers) or [container()], **spec}}


def template(*containers, labels=None, **spec):
    return {"metadata": {"labels": labels or {"app": "web"}},
            "spec": {"containers": list(containers) or [container()], **spec}}


def make_workload(kind, api_version="apps/v1", **spec):
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": "w", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template(), **spec}}


POD_SPEC_DEFAULTS = {
    "dnsPolicy": "ClusterFirst",
    "restartPolicy": "Always",
    "schedulerName": "default-scheduler",
    "terminationGracePeriodSeconds": 30,
    "securityContext": {},
}
CONTAINER_DEFAULTS = {
    "terminationMessagePath": "/dev/termination-log",
    "terminationMessagePolicy": "File",
    "imagePullPolicy": "IfNotPresent",
}

# (object, template spec path) for every kind that embeds a pod template.
TEMPLATES = [
    (make_pod(), "spec"),
    (make_workload("Deployment"), "spec.template.spec"),
    (make_workload("ReplicaSet"), "spec.template.spec"),
    (make_workload("DaemonSet"), "spec.template.spec"),
    (make_workload("StatefulSet"), "spec.template.spec"),
    (make_workload("Job", "batch/v1"), "spec.template.spec"),
    ({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "cj", "namespace": "default"},
      "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template()}}}},
     "spec.jobTemplate.spec.template.spec"),
]


@pytest.mark.parametrize("obj,path", TEMPLATES, ids=lambda v: v["kind"] if isinstance(v, dict) else v)
def test_pod_spec_defaults_everywhere(obj, path):
    obj = copy.deepcopy(obj)
    apply_defaults(obj)
    spec = get(obj, path)
    for key, value in POD_SPEC_DEFAULTS.items():
        assert spec[key] == value, key
    for key, value in CONTAINER_DEFAULTS.items():
        assert spec["containers"][0][key] == value, key


@pytest.mark.parametrize("obj,path", TEMPLATES[1:], ids=lambda v: v["kind"] if isinstance(v, dict) else v)
def test_pod_only_defaults_stay_out_of_templates(obj, path):
    obj = copy.deepcopy(obj)
    apply_defaults(obj)
    spec = get(obj, path)
    for key in ("enableServiceLinks", "priority", "preemptionPolicy", "tolerations"):
        assert key not in spec, key


def test_explicit_values_are_kept():
    pod = make_pod(container(imagePullPolicy="Never", terminationMessagePolicy="FallbackToLogsOnError"),
                   restartPolicy="Never", dnsPolicy="Default", terminationGracePeriodSeconds=0,
                   schedulerName="mine", enableServiceLinks=False)
    apply_defaults(pod)
    s = pod["spec"]
    assert (s["restartPolicy"], s["dnsPolicy"], s["terminationGracePeriodSeconds"], s["schedulerName"],
            s["enableServiceLinks"]) == ("Never", "Default", 0, "mine", False)
    assert s["containers"][0]["imagePullPolicy"] == "Never"
    assert s["containers"][0]["terminationMessagePolicy"] == "FallbackToLogsOnError"


@pytest.mark.parametrize("image,policy", [
    ("nginx", "Always"),
    ("nginx:latest", "Always"),
    ("nginx:1.25", "IfNotPresent"),
    ("localhost:5000/nginx", "Always"),
    ("localhost:5000/nginx:v1", "IfNotPresent"),
    ("nginx@sha256:" + "a" * 64, "IfNotPresent"),
    ("nginx:latest@sha256:" + "a" * 64, "Always"),
    ("registry.example.com/team/app:latest", "Always"),
])
def test_image_pull_policy(image, policy):
    assert image_pull_policy_for(image) == policy
    pod = make_pod(container(image=image))
    apply_defaults(pod)
    assert pod["spec"]["containers"][0]["imagePullPolicy"] == policy


# (container or pod spec fields, path in the defaulted pod, expected)
POD_CASES = [
    ({"containers": [container(ports=[{"containerPort": 80}])]}, "spec.containers[0].ports[0].protocol", "TCP"),
    ({"containers": [container(ports=[{"containerPort": 53, "protocol": "UDP"}])]},
     "spec.containers[0].ports[0].protocol", "UDP"),
    ({"initContainers": [container("i")], "containers": [container()]},
     "spec.initContainers[0].terminationMessagePath", "/dev/termination-log"),
    ({"containers": [container(livenessProbe={"httpGet": {"port": 80}})]},
     "spec.containers[0].livenessProbe",
     {"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1, "periodSeconds": 10,
      "successThreshold": 1, "failureThreshold": 3}),
    ({"containers": [container(readinessProbe={"tcpSocket": {"port": 80}, "periodSeconds": 5})]},
     "spec.containers[0].readinessProbe.periodSeconds", 5),
    ({"containers": [container(startupProbe={"exec": {"command": ["true"]}})]},
     "spec.containers[0].startupProbe.failureThreshold", 3),
    ({"containers": [container(lifecycle={"preStop": {"httpGet": {"port": 80}}})]},
     "spec.containers[0].lifecycle.preStop.httpGet.scheme", "HTTP"),
    ({"containers": [container(env=[{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}])]},
     "spec.containers[0].env[0].valueFrom.fieldRef.apiVersion", "v1"),
    ({"containers": [container(env=[{"name": "N", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}}])]},
     "spec.containers[0].env[0].valueFrom.resourceFieldRef.divisor", "0"),
    ({"containers": [container()], "volumes": [{"name": "v"}]}, "spec.volumes[0].emptyDir", {}),
    ({"containers": [container()], "volumes": [{"name": "v", "configMap": {"name": "c"}}]},
     "spec.volumes[0].configMap.defaultMode", 420),
    ({"containers": [container()], "volumes": [{"name": "v", "secret": {"secretName": "s"}}]},
     "spec.volumes[0].secret.defaultMode", 420),
    ({"containers": [container()], "volumes": [{"name": "v", "secret": {"secretName": "s", "defaultMode": 256}}]},
     "spec.volumes[0].secret.defaultMode", 256),
    ({"containers": [container()], "volumes": [{"name": "v", "hostPath": {"path": "/x"}}]},
     "spec.volumes[0].hostPath.type", ""),
    ({"containers": [container()], "volumes": [{"name": "v", "projected": {"sources": [
        {"serviceAccountToken": {"path": "token"}}]}}]},
     "spec.volumes[0].projected.sources[0].serviceAccountToken.expirationSeconds", 3600),
    ({"containers": [container(resources={"limits": {"cpu": "1", "memory": "1Gi"}})]},
     "spec.containers[0].resources.requests", {"cpu": "1", "memory": "1Gi"}),
    ({"containers": [container(resources={"limits": {"cpu": "1"}, "requests": {"cpu": "500m"}})]},
     "spec.containers[0].resources.requests", {"cpu": "500m"}),
    ({"containers": [container(resources={"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1"}})]},
     "spec.containers[0].resources.requests", {"cpu": "1", "memory": "1Gi"}),
    ({"containers": [container()]}, "spec.containers[0].resources", {}),
    ({"containers": [container(resources={"requests": {"cpu": "1000m", "memory": "2048Mi"},
                                          "limits": {"cpu": 2, "memory": "1e9", "ephemeral-storage": "1u"}})]},
     "spec.containers[0].resources", {"requests": {"cpu": "1", "memory": "2Gi", "ephemeral-storage": "1m"},
                                      "limits": {"cpu": "2", "memory": "1e9", "ephemeral-storage": "1m"}}),
    ({"containers": [container(resources={"requests": {"cpu": "lots"}})]},
     "spec.containers[0].resources.requests.cpu", "lots"),
    ({"containers": [container(ports=[{"containerPort": 80}])], "hostNetwork": True},
     "spec.containers[0].ports[0].hostPort", 80),
    ({"containers": [container()]}, "spec.enableServiceLinks", True),
    ({"containers": [container()], "serviceAccount": "old"}, "spec.serviceAccountName", "old"),
    ({"containers": [container()], "serviceAccountName": "new"}, "spec.serviceAccount", "new"),
    ({"containers": [container()]}, "spec.serviceAccountName", _MISSING),
    ({"containers": [container()]}, "spec.priority", _MISSING),
    ({"containers": [container()]}, "spec.tolerations", _MISSING),
    ({"containers": [container()]}, "status", {"phase": "Pending", "qosClass": "BestEffort"}),
]


ADMISSION_CASES = [
    ({"containers": [container()]}, "spec.serviceAccountName", "default"),
    ({"containers": [container()], "serviceAccountName": "new"}, "spec.serviceAccountName", "new"),
    ({"containers": [container()]}, "spec.priority", 0),
    ({"containers": [container()]}, "spec.preemptionPolicy", "PreemptLowerPriority"),
    ({"containers": [container()], "priorityClassName": "system-node-critical"}, "spec.priority", 2000001000),
    ({"containers": [container()], "priorityClassName": "custom"}, "spec.priority", _MISSING),
]


@pytest.mark.parametrize("step,spec,path,expected",
                         [(apply_defaults, *c) for c in POD_CASES]
                         + [(pod_admission_defaults, *c) for c in ADMISSION_CASES])
def test_pod_defaults(step, spec, path, expected):
    """Defaulting, and apart from it what the admission plug-ins add."""
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "d"},
           "spec": copy.deepcopy(spec)}
    step(pod)
    assert get(pod, path) == expected


def test_default_tolerations_added_once():
    pod = make_pod()
    pod_admission_defaults(pod)
    tolerations = pod["spec"]["tolerations"]
    assert tolerations == [
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
         "tolerationSeconds": 300},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
         "tolerationSeconds": 300},
    ]
    pod_admission_defaults(pod)
    assert pod["spec"]["tolerations"] == tolerations


def test_existing_tolerations_are_respected():
    mine = {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
            "tolerationSeconds": 10}
    pod = make_pod(tolerations=[mine])
    pod_admission_defaults(pod)
    keys = [t["key"] for t in pod["spec"]["tolerations"]]
    assert keys == ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"]
    assert pod["spec"]["tolerations"][0]["tolerationSeconds"] == 10
    everything = make_pod(tolerations=[{"operator": "Exists"}])
    pod_admission_defaults(everything)
    assert everything["spec"]["tolerations"] == [{"operator": "Exists"}]


def test_pod_status_is_reset_on_create_but_kept_on_update():
    pod = make_pod()
    pod["status"] = {"phase": "Running", "podIP": "1.2.3.4"}
    apply_defaults(pod)
    assert pod["status"] == {"phase": "Pending", "qosClass": "BestEffort"}
    running = make_pod()
    running["status"] = {"phase": "Running"}
    apply_defaults(running, create=False)
    assert running["status"]["phase"] == "Running"
    assert "priority" not in running["spec"] and "tolerations" not in running["spec"]


def res(requests=None, limits=None):
    r = {}
    if requests:
        r["requests"] = requests
    if limits:
        r["limits"] = limits
    return r


QOS = [
    ([{}], "BestEffort"),
    ([res(requests={"ephemeral-storage": "1Gi"})], "BestEffort"),
    ([res(requests={"cpu": "0"})], "BestEffort"),
    ([res(requests={"cpu": "100m"})], "Burstable"),
    ([res(limits={"cpu": "1"})], "Burstable"),
    ([res(requests={"cpu": "1", "memory": "1Gi"}, limits={"cpu": "1", "memory": "1Gi"})], "Guaranteed"),
    ([res(requests={"cpu": "1000m", "memory": "1024Mi"}, limits={"cpu": "1", "memory": "1Gi"})], "Guaranteed"),
    ([res(requests={"cpu": "500m", "memory": "1Gi"}, limits={"cpu": "1", "memory": "1Gi"})], "Burstable"),
    ([res(requests={"cpu": "1", "memory": "1Gi"}, limits={"cpu": "1", "memory": "1Gi"}), {}], "Burstable"),
    ([res(requests={"cpu": "1", "memory": "1Gi"}, limits={"cpu": "1", "memory": "1Gi"}),
      res(requests={"cpu": "1", "memory": "1Gi"}, limits={"cpu": "1", "memory": "1Gi"})], "Guaranteed"),
]


@pytest.mark.parametrize("resources,qos", QOS)
def test_qos_class(resources, qos):
    pod = {"spec": {"containers": [container(f"c{i}", resources=r) for i, r in enumerate(resources)]}}
    assert pod_qos_class(pod) == qos


def test_qos_counts_init_containers():
    guaranteed = res(requests={"cpu": "1", "memory": "1Gi"}, limits={"cpu": "1", "memory": "1Gi"})
    pod = {"spec": {"initContainers": [container("i")], "containers": [container(resources=guaranteed)]}}
    assert pod_qos_class(pod) == "Burstable"


def test_qos_after_limits_default_requests():
    pod = make_pod(container(resources={"limits": {"cpu": "1", "memory": "1Gi"}}))
    apply_defaults(pod)
    assert pod["status"]["qosClass"] == "Guaranteed"


# (object, path, expected) for the workload and core kinds.
KIND_CASES = [
    (make_workload("Deployment"), "spec.replicas", 1),
    (make_workload("Deployment"), "spec.strategy",
     {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}),
    (make_workload("Deployment", strategy={"type": "Recreate"}), "spec.strategy", {"type": "Recreate"}),
    (make_workload("Deployment", strategy={"rollingUpdate": {"maxSurge": 1}}), "spec.strategy.rollingUpdate",
     {"maxUnavailable": "25%", "maxSurge": 1}),
    (make_workload("Deployment"), "spec.revisionHistoryLimit", 10),
    (make_workload("Deployment"), "spec.progressDeadlineSeconds", 600),
    (make_workload("Deployment"), "spec.minReadySeconds", _MISSING),
    (make_workload("Deployment", replicas=0), "spec.replicas", 0),
    (make_workload("ReplicaSet"), "spec.replicas", 1),
    (make_workload("DaemonSet"), "spec.updateStrategy",
     {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
    (make_workload("DaemonSet", updateStrategy={"type": "OnDelete"}), "spec.updateStrategy", {"type": "OnDelete"}),
    (make_workload("DaemonSet"), "spec.revisionHistoryLimit", 10),
    (make_workload("StatefulSet"), "spec.replicas", 1),
    (make_workload("StatefulSet"), "spec.podManagementPolicy", "OrderedReady"),
    (make_workload("StatefulSet"), "spec.updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
    (make_workload("StatefulSet", updateStrategy={"type": "RollingUpdate"}), "spec.updateStrategy",
     {"type": "RollingUpdate"}),
    (make_workload("StatefulSet", updateStrategy={"type": "OnDelete"}), "spec.updateStrategy", {"type": "OnDelete"}),
    (make_workload("StatefulSet"), "spec.revisionHistoryLimit", 10),
    (make_workload("StatefulSet"), "spec.persistentVolumeClaimRetentionPolicy",
     {"whenDeleted": "Retain", "whenScaled": "Retain"}),
    (make_workload("StatefulSet", volumeClaimTemplates=[{"metadata": {"name": "data"}, "spec": {}}]),
     "spec.volumeClaimTemplates[0]",
     {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
      "spec": {"volumeMode": "Filesystem"}, "status": {"phase": "Pending"}}),
    (make_workload("Job", "batch/v1"), "spec.completions", 1),
    (make_workload("Job", "batch/v1"), "spec.parallelism", 1),
    (make_workload("Job", "batch/v1", parallelism=3), "spec.completions", _MISSING),
    (make_workload("Job", "batch/v1", completions=5), "spec.parallelism", 1),
    (make_workload("Job", "batch/v1"), "spec.backoffLimit", 6),
    (make_workload("Job", "batch/v1", backoffLimitPerIndex=1, completionMode="Indexed", completions=2),
     "spec.backoffLimit", 2147483647),
    (make_workload("Job", "batch/v1"), "spec.completionMode", "NonIndexed"),
    (make_workload("Job", "batch/v1"), "spec.suspend", False),
    (make_workload("Job", "batch/v1"), "spec.manualSelector", _MISSING),
    (make_workload("Job", "batch/v1"), "spec.podReplacementPolicy", "TerminatingOrFailed"),
    (make_workload("Job", "batch/v1", podFailurePolicy={"rules": [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}),
     "spec.podFailurePolicy.rules[0].onPodConditions[0].status", "True"),
    (make_workload("Job", "batch/v1", podFailurePolicy={"rules": []}), "spec.podReplacementPolicy", "Failed"),
    (make_workload("Job", "batch/v1"), "metadata.labels", {"app": "web"}),
    ({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"}, "spec": {"jobTemplate": {}}},
     "spec", {"jobTemplate": {"spec": {"template": {"spec": {
         "dnsPolicy": "ClusterFirst", "restartPolicy": "Always", "securityContext": {},
         "terminationGracePeriodSeconds": 30, "schedulerName": "default-scheduler"}}}},
         "concurrencyPolicy": "Allow", "suspend": False, "successfulJobsHistoryLimit": 3,
         "failedJobsHistoryLimit": 1}),
    ({"kind": "Service", "metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}, "spec",
     {"ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}], "type": "ClusterIP",
      "sessionAffinity": "None", "internalTrafficPolicy": "Cluster", "ipFamilyPolicy": "SingleStack",
      "ipFamilies": ["IPv4"]}),
    ({"kind": "Service", "metadata": {"name": "s"}, "spec": {"ports": [{"port": 80, "targetPort": "http"}]}},
     "spec.ports[0].targetPort", "http"),
    ({"kind": "Service", "metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}, "status",
     {"loadBalancer": {}}),
    ({"kind": "Service", "metadata": {"name": "s"}, "spec": {"type": "NodePort", "ports": [{"port": 80}]}},
     "spec.externalTrafficPolicy", "Cluster"),
    ({"kind": "Service", "metadata": {"name": "s"}, "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}},
     "spec.allocateLoadBalancerNodePorts", True),
    ({"kind": "Service", "metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}},
     "spec.externalTrafficPolicy", _MISSING),
    ({"kind": "Service", "metadata": {"name": "s"}, "spec": {"sessionAffinity": "ClientIP", "ports": []}},
     "spec.sessionAffinityConfig", {"clientIP": {"timeoutSeconds": 10800}}),
    ({"kind": "Service", "metadata": {"name": "s"}, "spec": {"type": "ExternalName", "externalName": "x.com"}},
     "spec", {"type": "ExternalName", "externalName": "x.com", "sessionAffinity": "None"}),
    ({"kind": "Service", "metadata": {"name": "s"}, "spec": {"clusterIP": "None"}}, "spec.ipFamilyPolicy",
     "RequireDualStack"),
    ({"kind": "Service", "metadata": {"name": "s"}, "spec": {"clusterIP": "None", "selector": {"a": "b"}}},
     "spec.ipFamilyPolicy", "SingleStack"),
    ({"kind": "Service", "metadata": {"name": "s"}, "spec": {"clusterIP": "10.0.0.5"}}, "spec.clusterIPs",
     ["10.0.0.5"]),
    ({"kind": "Namespace", "metadata": {"name": "team"}}, "metadata.labels",
     {"kubernetes.io/metadata.name": "team"}),
    ({"kind": "Namespace", "metadata": {"name": "team", "labels": {"kubernetes.io/metadata.name": "x"}}},
     "metadata.labels", {"kubernetes.io/metadata.name": "team"}),
    ({"kind": "Namespace", "metadata": {"name": "team"}}, "spec", {"finalizers": ["kubernetes"]}),
    ({"kind": "Namespace", "metadata": {"name": "team"}}, "status", {"phase": "Active"}),
    ({"kind": "Secret", "metadata": {"name": "s"}}, "type", "Opaque"),
    ({"kind": "Secret", "metadata": {"name": "s"}, "type": "kubernetes.io/tls"}, "type", "kubernetes.io/tls"),
    ({"kind": "Secret", "metadata": {"name": "s"}, "data": {"a": "eA==", "b": "eA=="},
      "stringData": {"b": "value", "c": "ü"}}, "",
     {"kind": "Secret", "metadata": {"name": "s"}, "type": "Opaque",
      "data": {"a": "eA==", "b": "dmFsdWU=", "c": "w7w="}}),
    ({"kind": "Node", "metadata": {"name": "n"}, "status": {"capacity": {"cpu": "4"}}}, "status.allocatable",
     {"cpu": "4"}),
    ({"kind": "Node", "metadata": {"name": "n"}, "status": {"capacity": {"cpu": "4000m", "memory": "8388608Ki"}}},
     "status", {"capacity": {"cpu": "4", "memory": "8Gi"}, "allocatable": {"cpu": "4", "memory": "8Gi"}}),
    (make_workload("StatefulSet", volumeClaimTemplates=[
        {"metadata": {"name": "d"}, "spec": {"resources": {"requests": {"storage": "1024Mi"}}}}]),
     "spec.volumeClaimTemplates[0].spec.resources.requests.storage", "1Gi"),
    ({"kind": "Service", "metadata": {"name": "s"}, "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]},
      "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}, {"hostname": "lb.example.com"}]}}},
     "status.loadBalancer.ingress", [{"ip": "192.0.2.1", "ipMode": "VIP"}, {"hostname": "lb.example.com"}]),
    ({"kind": "Endpoints", "metadata": {"name": "e"}, "subsets": [{"ports": [{"port": 80}]}]},
     "subsets[0].ports[0].protocol", "TCP"),
    ({"kind": "EndpointSlice", "metadata": {"name": "e"}, "addressType": "IPv4", "ports": [{"port": 80}]},
     "ports[0]", {"port": 80, "name": "", "protocol": "TCP"}),
    ({"kind": "PriorityClass", "metadata": {"name": "high"}, "value": 100}, "preemptionPolicy",
     "PreemptLowerPriority"),
    ({"kind": "ConfigMap", "metadata": {"name": "c"}}, "", {"kind": "ConfigMap", "metadata": {"name": "c"}}),
    ({"kind": "Unknown", "metadata": {"name": "c"}}, "", {"kind": "Unknown", "metadata": {"name": "c"}}),
]


@pytest.mark.parametrize("obj,path,expected", KIND_CASES)
def test_kind_defaults(obj, path, expected):
    obj = copy.deepcopy(obj)
    apply_defaults(obj)
    assert (get(obj, path) if path else obj) == expected


@pytest.mark.parametrize("obj", [o for o, _, _ in KIND_CASES] + [o for o, _ in TEMPLATES])
def test_defaulting_is_idempotent(obj):
    once = copy.deepcopy(obj)
    apply_defaults(once)
    twice = copy.deepcopy(once)
    apply_defaults(twice)
    assert twice == once


def test_job_selector_defaults():
    job = make_workload("Job", "batch/v1")
    del job["spec"]["selector"]
    job["metadata"]["uid"] = "uid-1"
    job["spec"]["template"]["metadata"] = {}
    apply_defaults(job)
    assert "labels" not in job["metadata"]
    job_selector_defaults(job)
    expected = {"controller-uid": "uid-1", "batch.kubernetes.io/controller-uid": "uid-1",
                "job-name": "w", "batch.kubernetes.io/job-name": "w"}
    assert job["spec"]["template"]["metadata"]["labels"] == expected
    assert job["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": "uid-1"}}
    assert job["metadata"]["labels"] == expected


def test_job_selector_defaults_keep_user_labels_and_manual_selectors():
    job = make_workload("Job", "batch/v1")
    del job["spec"]["selector"]
    job["metadata"].update(uid="uid-2", labels={"team": "a"})
    job_selector_defaults(job)
    assert job["spec"]["template"]["metadata"]["labels"]["app"] == "web"
    assert job["metadata"]["labels"] == {"team": "a"}

    manual = make_workload("Job", "batch/v1", manualSelector=True)
    manual["metadata"]["uid"] = "uid-3"
    before = copy.deepcopy(manual)
    job_selector_defaults(manual)
    assert manual == before
