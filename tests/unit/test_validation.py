"""Semantic validation: each rule, with Kubernetes' field paths and messages."""

import copy
import re

import pytest

from api import errors, registry
from api.defaults import apply_defaults, job_selector_defaults, pod_admission_defaults
from api.validation import cron_schedule_error, validate_create, validate_update

_DELETE = object()


def setp(obj, path, value):
    """Set (or with _DELETE remove) the value at a dotted path with [i] indexes, creating dicts."""
    parts = re.findall(r"[^.\[\]]+|\[\d+\]", path)
    cur = obj
    for part, nxt in zip(parts, parts[1:], strict=False):
        key = int(part[1:-1]) if part.startswith("[") else part
        if isinstance(cur, dict) and key not in cur:
            cur[key] = [] if nxt.startswith("[") else {}
        cur = cur[key]
    last = parts[-1]
    key = int(last[1:-1]) if last.startswith("[") else last
    if value is _DELETE:
        del cur[key]
    elif isinstance(cur, list) and key == len(cur):
        cur.append(value)
    else:
        cur[key] = value


def container(name="c", image="nginx:1.25", **extra):
    return {"name": name, "image": image, **extra}


def template(labels=None, **spec):
    return {"metadata": {"labels": labels or {"app": "web"}},
            "spec": {"containers": [container()], **spec}}


def base(kind):
    """A valid, defaulted object of ``kind``."""
    ns = {"namespace": "default"}
    objs = {
        "Pod": {"apiVersion": "v1", "metadata": {"name": "web", **ns}, "spec": {"containers": [container()]}},
        "Deployment": {"apiVersion": "apps/v1", "metadata": {"name": "web", **ns},
                       "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template()}},
        "ReplicaSet": {"apiVersion": "apps/v1", "metadata": {"name": "web", **ns},
                       "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template()}},
        "DaemonSet": {"apiVersion": "apps/v1", "metadata": {"name": "web", **ns},
                      "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template()}},
        "StatefulSet": {"apiVersion": "apps/v1", "metadata": {"name": "web", **ns},
                        "spec": {"serviceName": "web", "selector": {"matchLabels": {"app": "web"}},
                                 "template": template()}},
        "Job": {"apiVersion": "batch/v1", "metadata": {"name": "pi", "uid": "uid-1", **ns},
                "spec": {"template": {"spec": {"containers": [container()], "restartPolicy": "Never"}}}},
        "CronJob": {"apiVersion": "batch/v1", "metadata": {"name": "tick", **ns},
                    "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {"spec": {
                        "containers": [container()], "restartPolicy": "OnFailure"}}}}}},
        "Service": {"apiVersion": "v1", "metadata": {"name": "web", **ns},
                    "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}},
        "ConfigMap": {"apiVersion": "v1", "metadata": {"name": "cfg", **ns}, "data": {"a.txt": "x"}},
        "Secret": {"apiVersion": "v1", "metadata": {"name": "s", **ns}, "data": {"k": "dmFsdWU="}},
        "Namespace": {"apiVersion": "v1", "metadata": {"name": "team-a"}},
        "Node": {"apiVersion": "v1", "metadata": {"name": "node-1"}, "spec": {}},
        "Event": {"apiVersion": "v1", "metadata": {"name": "web.1", **ns},
                  "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default"},
                  "reason": "Started", "type": "Normal"},
        "ServiceAccount": {"apiVersion": "v1", "metadata": {"name": "default", **ns}},
        "Lease": {"apiVersion": "coordination.k8s.io/v1", "metadata": {"name": "l", **ns},
                  "spec": {"leaseDurationSeconds": 15}},
        "Endpoints": {"apiVersion": "v1", "metadata": {"name": "web", **ns},
                      "subsets": [{"addresses": [{"ip": "10.1.0.5"}], "ports": [{"port": 80}]}]},
        "EndpointSlice": {"apiVersion": "discovery.k8s.io/v1", "metadata": {"name": "web-x", **ns},
                          "addressType": "IPv4", "endpoints": [{"addresses": ["10.1.0.5"]}],
                          "ports": [{"port": 80}]},
        "PriorityClass": {"apiVersion": "scheduling.k8s.io/v1", "metadata": {"name": "high"}, "value": 1000},
    }
    obj = copy.deepcopy(objs[kind])
    obj["kind"] = kind
    apply_defaults(obj)
    if kind == "Job":
        job_selector_defaults(obj)
    elif kind == "Pod":
        pod_admission_defaults(obj)
    return obj


def resource(kind):
    for r in registry.RESOURCES:
        if r.kind == kind:
            return r
    raise AssertionError(kind)


ALL_KINDS = ["Pod", "Deployment", "ReplicaSet", "DaemonSet", "StatefulSet", "Job", "CronJob", "Service",
             "ConfigMap", "Secret", "Namespace", "Node", "Event", "ServiceAccount", "Lease", "Endpoints",
             "EndpointSlice", "PriorityClass"]


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_valid_objects_pass(kind):
    obj = base(kind)
    before = copy.deepcopy(obj)
    assert validate_create(resource(kind), obj) == []
    assert validate_update(resource(kind), obj, copy.deepcopy(obj)) == []
    assert obj == before  # validation never mutates


def causes(kind, changes):
    obj = base(kind)
    for path, value in changes.items():
        setp(obj, path, value)
    return validate_create(resource(kind), obj)


def has(found, field, message, reason=None):
    for c in found:
        if c.field == field and c.message.startswith(message) and (reason is None or c.type == reason):
            return True
    return False


SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
                 "or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex "
                 "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
             "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used "
             "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
DNS1035_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
               "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
               "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")

# (kind, {path: value}, field, message prefix[, reason])
CREATE_CASES = [
    # metadata
    ("Pod", {"metadata.name": "Web"}, "metadata.name", 'Invalid value: "Web": ' + SUBDOMAIN_MSG, "FieldValueInvalid"),
    ("Pod", {"metadata.name": "a" * 254}, "metadata.name", "Invalid value: \"" + "a" * 254
     + "\": must be no more than 253 characters"),
    ("Pod", {"metadata.name": _DELETE}, "metadata.name", "Required value: name or generateName is required",
     "FieldValueRequired"),
    ("Pod", {"metadata.name": "web.v1"}, None, None),
    ("ConfigMap", {"metadata.name": "a_b"}, "metadata.name", 'Invalid value: "a_b": ' + SUBDOMAIN_MSG),
    ("Namespace", {"metadata.name": "team.a"}, "metadata.name", 'Invalid value: "team.a": ' + LABEL_MSG),
    ("Service", {"metadata.name": "1web"}, "metadata.name", 'Invalid value: "1web": ' + DNS1035_MSG),
    ("Service", {"metadata.name": "web.x"}, "metadata.name", 'Invalid value: "web.x": ' + DNS1035_MSG),
    ("Pod", {"metadata.generateName": "web-"}, None, None),
    ("Pod", {"metadata.generateName": "Web-"}, "metadata.generateName", 'Invalid value: "Web-": '),
    ("Pod", {"metadata.namespace": _DELETE}, "metadata.namespace", "Required value"),
    ("Pod", {"metadata.namespace": "Bad"}, "metadata.namespace", 'Invalid value: "Bad": ' + LABEL_MSG),
    ("Node", {"metadata.namespace": "default"}, "metadata.namespace", "Forbidden: not allowed on this type"),
    ("Pod", {"metadata.labels": {"app": "web", "example.com/tier": "front_end.1"}}, None, None),
    ("Pod", {"metadata.labels": {"bad key": "x"}}, "metadata.labels",
     "Invalid value: \"bad key\": name part must consist of alphanumeric characters, '-', '_' or '.', and "
     "must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
     "used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"),
    ("Pod", {"metadata.labels": {"a" * 64: "x"}}, "metadata.labels", "Invalid value: \"" + "a" * 64
     + "\": name part must be no more than 63 characters"),
    ("Pod", {"metadata.labels": {"Example.com/a": "x"}}, "metadata.labels",
     'Invalid value: "Example.com/a": prefix part ' + SUBDOMAIN_MSG),
    ("Pod", {"metadata.labels": {"/a": "x"}}, "metadata.labels", 'Invalid value: "/a": prefix part must be '
     "non-empty"),
    ("Pod", {"metadata.labels": {"a": "-x"}}, "metadata.labels",
     "Invalid value: \"-x\": a valid label must be an empty string or consist of alphanumeric characters, "
     "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
     "'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"),
    ("Pod", {"metadata.labels": {"a": "x" * 64}}, "metadata.labels", "Invalid value: \"" + "x" * 64
     + "\": must be no more than 63 characters"),
    ("Pod", {"metadata.labels": {"a": ""}}, None, None),
    ("Pod", {"metadata.annotations": {"big": "x" * (256 * 1024)}}, "metadata.annotations",
     "Too long: may not be more than 262144 bytes", "FieldValueTooLong"),
    ("Pod", {"metadata.annotations": {"Example.com/Note": "any value at all!"}}, None, None),
    ("Pod", {"metadata.annotations": {"a b": "x"}}, "metadata.annotations", 'Invalid value: "a b"'),
    ("Pod", {"metadata.finalizers": ["example.com/cleanup"]}, None, None),
    ("Pod", {"metadata.finalizers": ["bad finalizer"]}, "metadata.finalizers", 'Invalid value: "bad finalizer"'),
    ("Pod", {"metadata.ownerReferences": [{"apiVersion": "v1", "kind": "X", "name": "a", "uid": "1",
                                           "controller": True},
                                          {"apiVersion": "v1", "kind": "Y", "name": "b", "uid": "2",
                                           "controller": True}]},
     "metadata.ownerReferences", "Invalid value: []v1.OwnerReference{...}: Only one reference can have "
     'Controller set to true. Found "true" in references for X/a and Y/b'),
    ("Pod", {"metadata.ownerReferences": [{"apiVersion": "v1", "kind": "X", "name": "a"}]},
     "metadata.ownerReferences.uid", 'Invalid value: "": uid must not be empty'),
    # pods
    ("Pod", {"spec.containers": []}, "spec.containers", "Required value"),
    ("Pod", {"spec.containers[0].name": "Web"}, "spec.containers[0].name", 'Invalid value: "Web": ' + LABEL_MSG),
    ("Pod", {"spec.containers[0].name": ""}, "spec.containers[0].name", "Required value"),
    ("Pod", {"spec.containers[1]": container()}, "spec.containers[1].name", 'Duplicate value: "c"',
     "FieldValueDuplicate"),
    ("Pod", {"spec.initContainers": [container()]}, "spec.initContainers[0].name", 'Duplicate value: "c"'),
    ("Pod", {"spec.containers[0].ports": [{"containerPort": 80, "protocol": "TCP", "hostPort": 8080}],
             "spec.containers[1]": container("d", imagePullPolicy="Always", terminationMessagePolicy="File",
                                             ports=[{"containerPort": 81, "protocol": "TCP", "hostPort": 8080}])},
     "spec.containers[1].ports[0].hostPort", 'Duplicate value: "TCP//8080"'),
    ("Pod", {"spec.containers[0].ports": [{"containerPort": 80, "protocol": "TCP", "hostPort": 8080},
                                          {"containerPort": 81, "protocol": "UDP", "hostPort": 8080}]}, None, None),
    ("Pod", {"spec.volumes": [{"name": "v", "emptyDir": {}}],
             "spec.containers[0].volumeMounts": [{"name": "v", "mountPath": "/d", "subPath": "../x"}]},
     "spec.containers[0].volumeMounts.subPath", "Invalid value: \"../x\": must not contain '..'"),
    ("Pod", {"spec.volumes": [{"name": "v", "emptyDir": {}}],
             "spec.containers[0].volumeMounts": [{"name": "v", "mountPath": "/d", "subPath": "/x"}]},
     "spec.containers[0].volumeMounts.subPath", 'Invalid value: "/x": must be a relative path'),
    ("Pod", {"spec.initContainers": [container("i", imagePullPolicy="Always", terminationMessagePolicy="File",
                                               lifecycle={"postStart": {"exec": {"command": ["x"]}}})]},
     "spec.initContainers[0].lifecycle", "Forbidden: may not be set for init containers without "
     "restartPolicy=Always"),
    ("Pod", {"spec.containers[0].image": ""}, "spec.containers[0].image", "Required value"),
    ("Pod", {"spec.containers[0].image": " nginx"}, "spec.containers[0].image",
     'Invalid value: " nginx": must not have leading or trailing whitespace'),
    ("Pod", {"spec.containers[0].imagePullPolicy": "Sometimes"}, "spec.containers[0].imagePullPolicy",
     'Unsupported value: "Sometimes": supported values: "Always", "IfNotPresent", "Never"',
     "FieldValueNotSupported"),
    ("Pod", {"spec.containers[0].ports": [{"containerPort": 70000, "protocol": "TCP"}]},
     "spec.containers[0].ports[0].containerPort", "Invalid value: 70000: must be between 1 and 65535, inclusive"),
    ("Pod", {"spec.containers[0].ports": [{"protocol": "TCP"}]}, "spec.containers[0].ports[0].containerPort",
     "Required value"),
    ("Pod", {"spec.containers[0].ports": [{"containerPort": 80, "protocol": "ICMP"}]},
     "spec.containers[0].ports[0].protocol", 'Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"'),
    ("Pod", {"spec.containers[0].ports": [{"containerPort": 80, "protocol": "TCP", "name": "http"},
                                          {"containerPort": 81, "protocol": "TCP", "name": "http"}]},
     "spec.containers[0].ports[1].name", 'Duplicate value: "http"'),
    ("Pod", {"spec.containers[0].ports": [{"containerPort": 80, "protocol": "TCP", "name": "a-very-long-port-name"}]},
     "spec.containers[0].ports[0].name", 'Invalid value: "a-very-long-port-name": must be no more than 15 '
     "characters"),
    ("Pod", {"spec.containers[0].ports": [{"containerPort": 80, "protocol": "TCP", "name": "80"}]},
     "spec.containers[0].ports[0].name", 'Invalid value: "80": must contain at least one letter (a-z)'),
    ("Pod", {"spec.containers[0].ports": [{"containerPort": 80, "protocol": "TCP", "hostPort": 0}]}, None, None),
    ("Pod", {"spec.containers[0].resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}},
     "spec.containers[0].resources.requests", 'Invalid value: "2": must be less than or equal to cpu limit of 1'),
    ("Pod", {"spec.containers[0].resources": {"requests": {"memory": "2048Mi"}, "limits": {"memory": "1Gi"}}},
     "spec.containers[0].resources.requests",
     'Invalid value: "2Gi": must be less than or equal to memory limit of 1Gi'),
    ("Pod", {"spec.containers[0].resources": {"requests": {"cpu": "500m", "memory": "1Gi"},
                                              "limits": {"cpu": "1", "memory": "1Gi"}}}, None, None),
    ("Pod", {"spec.containers[0].resources": {"requests": {"cpu": "lots"}}},
     "spec.containers[0].resources.requests[cpu]", 'Invalid value: "lots": quantities must match the regular '
     "expression"),
    ("Pod", {"spec.containers[0].resources": {"requests": {"cpu": "-1"}}},
     "spec.containers[0].resources.requests[cpu]", 'Invalid value: "-1": must be greater than or equal to 0'),
    ("Pod", {"spec.containers[0].resources": {"requests": {"gpus": "1"}}},
     "spec.containers[0].resources.requests[gpus]", 'Invalid value: "gpus": must be a standard resource for '
     "containers"),
    ("Pod", {"spec.containers[0].resources": {"requests": {"gpus": "1"}}},
     "spec.containers[0].resources.requests[gpus]", 'Invalid value: "gpus": must be a standard resource type '
     "or fully qualified"),
    ("Pod", {"spec.containers[0].resources": {"requests": {"pods": "1"}}},
     "spec.containers[0].resources.requests[pods]", 'Invalid value: "pods": must be a standard resource for '
     "containers"),
    ("Pod", {"spec.containers[0].resources": {"requests": {"a/b/c": "1"}}},
     "spec.containers[0].resources.requests[a/b/c]", 'Invalid value: "a/b/c": a qualified name'),
    ("Pod", {"spec.hostNetwork": True, "spec.containers[0].ports": [{"containerPort": 80, "protocol": "TCP",
                                                                    "hostPort": 8080}]},
     "spec.containers[0].ports[0].hostPort", "Invalid value: 8080: must match `containerPort` when `hostNetwork` "
     "is true"),
    ("Pod", {"spec.hostNetwork": True, "spec.containers[0].ports": [{"containerPort": 80, "protocol": "TCP"}]},
     "spec.containers[0].ports[0].hostPort", "Invalid value: 0: must match"),
    ("Deployment", {"spec.template.spec.hostNetwork": True,
                    "spec.template.spec.containers[0].ports": [{"containerPort": 80, "protocol": "TCP"}]}, None, None),
    ("Pod", {"spec.schedulingGates": [{"name": "example.com/wait"}, {"name": "example.com/wait"}]},
     "spec.schedulingGates[1]", 'Duplicate value: "example.com/wait"'),
    ("Pod", {"spec.schedulingGates": [{"name": "bad gate"}]}, "spec.schedulingGates[0]", 'Invalid value: "bad gate"'),
    ("Pod", {"spec.preemptionPolicy": "Always"}, "spec.preemptionPolicy",
     'Unsupported value: "Always": supported values: "PreemptLowerPriority", "Never"'),
    ("Pod", {"spec.hostAliases": [{"ip": "1.2.3", "hostnames": ["a.example"]}]}, "spec.hostAliases[0].ip",
     'Invalid value: "1.2.3": must be a valid IP address'),
    ("Pod", {"spec.containers[0].resources": {"requests": {"example.com/gpu": "1"}}},
     "spec.containers[0].resources.limits", "Required value: Limit must be set for non overcommitable resources"),
    ("Pod", {"spec.containers[0].resources": {"requests": {"example.com/gpu": "1"},
                                              "limits": {"example.com/gpu": "2"}}},
     "spec.containers[0].resources.requests", 'Invalid value: "1": must be equal to example.com/gpu limit of 2'),
    ("Pod", {"spec.containers[0].resources": {"requests": {"example.com/gpu": "500m"},
                                              "limits": {"example.com/gpu": "500m"}}},
     "spec.containers[0].resources.limits[example.com/gpu]", 'Invalid value: "500m": must be an integer'),
    ("Pod", {"spec.restartPolicy": "Sometimes"}, "spec.restartPolicy",
     'Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"'),
    ("Pod", {"spec.dnsPolicy": "Other"}, "spec.dnsPolicy", 'Unsupported value: "Other"'),
    ("Pod", {"spec.dnsPolicy": "None"}, "spec.dnsConfig", "Required value: must provide `dnsConfig` when "
     "`dnsPolicy` is None"),
    ("Pod", {"spec.volumes": [{"name": "data", "emptyDir": {}}, {"name": "data", "emptyDir": {}}]},
     "spec.volumes[1].name", 'Duplicate value: "data"'),
    ("Pod", {"spec.volumes": [{"name": "Data", "emptyDir": {}}]}, "spec.volumes[0].name", 'Invalid value: "Data"'),
    ("Pod", {"spec.volumes": [{"name": "v", "emptyDir": {}, "hostPath": {"path": "/x"}}]},
     "spec.volumes[0].emptyDir", "Forbidden: may not specify more than 1 volume type"),
    ("Pod", {"spec.containers[0].volumeMounts": [{"name": "missing", "mountPath": "/data"}]},
     "spec.containers[0].volumeMounts[0].name", 'Not found: "missing"', "FieldValueNotFound"),
    ("Pod", {"spec.volumes": [{"name": "v", "emptyDir": {}}],
             "spec.containers[0].volumeMounts": [{"name": "v", "mountPath": "/data"}]}, None, None),
    ("Pod", {"spec.volumes": [{"name": "v", "emptyDir": {}}],
             "spec.containers[0].volumeMounts": [{"name": "v"}]},
     "spec.containers[0].volumeMounts[0].mountPath", "Required value"),
    ("Pod", {"spec.volumes": [{"name": "v", "emptyDir": {}}],
             "spec.containers[0].volumeMounts": [{"name": "v", "mountPath": "/d"}, {"name": "v", "mountPath": "/d"}]},
     "spec.containers[0].volumeMounts[1].mountPath", 'Invalid value: "/d": must be unique'),
    ("Pod", {"spec.containers[0].env": [{"name": "A=B", "value": "x"}]}, "spec.containers[0].env[0].name",
     "Invalid value: \"A=B\": a valid environment variable name must consist only of printable ASCII "
     "characters other than '='"),
    ("Pod", {"spec.containers[0].env": [{"name": "my.var-1", "value": "x"}]}, None, None),
    ("Pod", {"spec.containers[0].env": [{"value": "x"}]}, "spec.containers[0].env[0].name", "Required value"),
    ("Pod", {"spec.containers[0].livenessProbe": {"httpGet": {"port": 80}, "successThreshold": 2}},
     "spec.containers[0].livenessProbe.successThreshold", "Invalid value: 2: must be 1"),
    ("Pod", {"spec.containers[0].readinessProbe": {"timeoutSeconds": 1}},
     "spec.containers[0].readinessProbe", "Required value: must specify a handler type"),
    ("Pod", {"spec.containers[0].readinessProbe": {"tcpSocket": {"port": 0}}},
     "spec.containers[0].readinessProbe.tcpSocket.port", "Invalid value: 0: must be between 1 and 65535"),
    ("Pod", {"spec.containers[0].restartPolicy": "Always"}, "spec.containers[0].restartPolicy",
     "Forbidden: may not be set for non-init containers"),
    ("Pod", {"spec.initContainers": [container("side", restartPolicy="Always", imagePullPolicy="Always",
                                               terminationMessagePolicy="File")]}, None, None),
    ("Pod", {"spec.initContainers": [container("init", restartPolicy="Never")]},
     "spec.initContainers[0].restartPolicy", 'Unsupported value: "Never": supported values: "Always"'),
    ("Pod", {"spec.activeDeadlineSeconds": 0}, "spec.activeDeadlineSeconds",
     "Invalid value: 0: must be between 1 and 2147483647, inclusive"),
    ("Pod", {"spec.nodeSelector": {"disk": "ssd!"}}, "spec.nodeSelector", 'Invalid value: "ssd!"'),
    ("Pod", {"spec.serviceAccountName": "Bad_SA"}, "spec.serviceAccountName", 'Invalid value: "Bad_SA"'),
    ("Pod", {"spec.tolerations": [{"key": "k", "operator": "Exists", "value": "v"}]}, "spec.tolerations[0].operator",
     'Invalid value: core.Toleration{Key:"k", Operator:"Exists", Value:"v", Effect:"", '
     "TolerationSeconds:(*int64)(nil)}: value must be empty when `operator` is 'Exists'"),
    ("Pod", {"spec.tolerations": [{"key": "k", "value": "a b"}]}, "spec.tolerations[0].operator",
     'Invalid value: "a b": a valid label must be'),
    ("Pod", {"spec.tolerations": [{"operator": "Equal", "value": "x"}]}, "spec.tolerations[0].operator",
     'Invalid value: "Equal": operator must be Exists when `key` is empty'),
    ("Pod", {"spec.tolerations": [{"key": "k", "effect": "Never"}]}, "spec.tolerations[0].effect",
     'Unsupported value: "Never": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"'),
    ("Pod", {"spec.tolerations": [{"key": "k", "operator": "Sometimes"}]}, "spec.tolerations[0].operator",
     'Unsupported value: "Sometimes"'),
    ("Pod", {"spec.tolerations": [{"key": "k", "effect": "NoSchedule", "tolerationSeconds": 5}]},
     "spec.tolerations[0].effect", "Invalid value: \"NoSchedule\": effect must be 'NoExecute' when "
     "`tolerationSeconds` is set"),
    ("Pod", {"spec.affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchExpressions": [{"key": "app", "operator": "In"}]}, "topologyKey": "zone"}]}}},
     "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].labelSelector"
     ".matchExpressions[0].values", "Required value: must be specified when `operator` is 'In' or 'NotIn'"),
    ("Pod", {"spec.affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "db"}}}]}}},
     "spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey",
     "Required value: can not be empty"),
    ("Pod", {"spec.topologySpreadConstraints": [{"maxSkew": 0, "topologyKey": "zone",
                                                 "whenUnsatisfiable": "DoNotSchedule"}]},
     "spec.topologySpreadConstraints[0].maxSkew", "Invalid value: 0: must be greater than zero"),
    # workloads
    ("Deployment", {"spec.selector": {"matchLabels": {"app": "other"}}}, "spec.template.metadata.labels",
     'Invalid value: map[string]string{"app":"web"}: `selector` does not match template `labels`'),
    ("Deployment", {"spec.selector": _DELETE}, "spec.selector", "Required value"),
    ("Deployment", {"spec.selector": {}}, "spec.selector", "Invalid value: v1.LabelSelector{MatchLabels:"
     "map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid "
     "for deployment"),
    ("Deployment", {"spec.selector": {"matchExpressions": [{"key": "app", "operator": "Like", "values": ["w"]}]}},
     "spec.selector.matchExpressions[0].operator", 'Invalid value: "Like": not a valid selector operator'),
    ("Deployment", {"spec.selector": {"matchExpressions": [{"key": "app", "operator": "Exists", "values": ["w"]}]}},
     "spec.selector.matchExpressions[0].values", "Forbidden: may not be specified when `operator` is 'Exists' "
     "or 'DoesNotExist'"),
    ("Deployment", {"spec.selector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]}},
     None, None),
    ("Deployment", {"spec.replicas": -1}, "spec.replicas", "Invalid value: -1: must be greater than or equal to 0"),
    ("Deployment", {"spec.template.spec.restartPolicy": "Never"}, "spec.template.spec.restartPolicy",
     'Unsupported value: "Never": supported values: "Always"'),
    ("Deployment", {"spec.template.spec.activeDeadlineSeconds": 10}, "spec.template.spec.activeDeadlineSeconds",
     "Forbidden: activeDeadlineSeconds in ReplicaSet is not Supported"),
    ("Deployment", {"spec.template.spec.containers[0].image": ""}, "spec.template.spec.containers[0].image",
     "Required value"),
    ("Deployment", {"spec.template.metadata.labels": {"app": "web", "bad key": "x"}},
     "spec.template.labels", 'Invalid value: "bad key"'),
    ("Deployment", {"spec.template.metadata.annotations": {"a b": "x"}}, "spec.template.annotations",
     'Invalid value: "a b"'),
    ("Pod", {"spec.containers[0].resources": {"limits": {"hugepages-2Mi": "2Mi"}, "requests": {"hugepages-2Mi": "2Mi"}}},
     "spec.containers[0].resources", "Forbidden: HugePages require cpu or memory"),
    ("Pod", {"spec.containers[0].resources": {"limits": {"hugepages-2Mi": "2Mi", "memory": "1Gi"},
                                              "requests": {"hugepages-2Mi": "2Mi"}}}, None, None),
    ("CronJob", {"spec.jobTemplate.spec.selector": {"matchLabels": {"a": "b"}}}, "spec.jobTemplate.spec.selector",
     "Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"a\":\"b\"}, "
     "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: `selector` will be auto-generated"),
    ("CronJob", {"spec.jobTemplate.spec.manualSelector": True}, "spec.jobTemplate.spec.manualSelector",
     'Unsupported value: true: supported values: "nil", "false"'),
    ("Deployment", {"spec.strategy": {"type": "Recreate", "rollingUpdate": {}}}, "spec.strategy.rollingUpdate",
     "Forbidden: may not be specified when strategy `type` is 'Recreate'"),
    ("Deployment", {"spec.strategy": {"type": "Blue"}}, "spec.strategy",
     'Unsupported value: apps.DeploymentStrategy{Type:"Blue", RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}: '
     'supported values: "Recreate", "RollingUpdate"'),
    ("Deployment", {"spec.strategy.rollingUpdate": {"maxUnavailable": 1, "maxSurge": "150%"}}, None, None),
    ("Deployment", {"spec.strategy.rollingUpdate": {"maxUnavailable": 0, "maxSurge": "0%"}},
     "spec.strategy.rollingUpdate.maxUnavailable", "Invalid value: 0: may not be 0 when `maxSurge` is 0"),
    ("Deployment", {"spec.strategy.rollingUpdate": {"maxUnavailable": "150%", "maxSurge": 1}},
     "spec.strategy.rollingUpdate.maxUnavailable", 'Invalid value: "150%": must not be greater than 100%'),
    ("Deployment", {"spec.strategy.rollingUpdate": {"maxUnavailable": "x", "maxSurge": 1}},
     "spec.strategy.rollingUpdate.maxUnavailable", 'Invalid value: "x": a valid percent string'),
    ("Deployment", {"spec.progressDeadlineSeconds": 10, "spec.minReadySeconds": 10},
     "spec.progressDeadlineSeconds", "Invalid value: 10: must be greater than minReadySeconds"),
    ("ReplicaSet", {"spec.selector": {"matchLabels": {"app": "x"}}}, "spec.template.metadata.labels",
     "Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`"),
    ("ReplicaSet", {"spec.template.spec.restartPolicy": "OnFailure"}, "spec.template.spec.restartPolicy",
     'Unsupported value: "OnFailure": supported values: "Always"'),
    ("DaemonSet", {"spec.selector": {"matchLabels": {"app": "x"}}}, "spec.template.metadata.labels",
     "Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`"),
    ("DaemonSet", {"spec.template.spec.restartPolicy": "Never"}, "spec.template.spec.restartPolicy",
     'Unsupported value: "Never": supported values: "Always"'),
    ("DaemonSet", {"spec.updateStrategy": {"type": "Sometimes"}}, "spec.updateStrategy",
     'Unsupported value: apps.DaemonSetUpdateStrategy{Type:"Sometimes", '
     'RollingUpdate:(*apps.RollingUpdateDaemonSet)(nil)}: supported values: "RollingUpdate", "OnDelete"'),
    ("DaemonSet", {"spec.updateStrategy.rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}},
     "spec.updateStrategy.rollingUpdate.maxUnavailable", "Required value: cannot be 0 when maxSurge is 0"),
    ("DaemonSet", {"spec.updateStrategy.rollingUpdate": {"maxUnavailable": 1, "maxSurge": "10%"}},
     "spec.updateStrategy.rollingUpdate.maxSurge", 'Invalid value: "10%": may not be set when maxUnavailable is '
     "non-zero"),
    ("DaemonSet", {"spec.updateStrategy.rollingUpdate": {"maxUnavailable": 0, "maxSurge": "200%"}},
     "spec.updateStrategy.rollingUpdate.maxSurge", 'Invalid value: "200%": must not be greater than 100%'),
    ("DaemonSet", {"spec.updateStrategy": {"type": "OnDelete", "rollingUpdate": {"maxUnavailable": 1}}}, None,
     None),
    ("StatefulSet", {"spec.selector": {"matchLabels": {"app": "x"}}}, "spec.template.metadata.labels",
     "Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`"),
    ("StatefulSet", {"spec.template.spec.restartPolicy": "Never"}, "spec.template.spec.restartPolicy",
     'Unsupported value: "Never": supported values: "Always"'),
    ("StatefulSet", {"metadata.name": "web.v1"}, "metadata.name", 'Invalid value: "web.v1": ' + LABEL_MSG),
    ("StatefulSet", {"spec.template.metadata.labels.bad key": "x"}, "spec.template.labels",
     'Invalid value: "bad key"'),
    # Kubernetes checks only a StatefulSet template's labels and annotations, not its pod spec.
    ("StatefulSet", {"spec.template.spec.containers[0].image": ""}, None, None),
    ("StatefulSet", {"spec.serviceName": "Web"}, "spec.serviceName", 'Invalid value: "Web": ' + LABEL_MSG),
    ("StatefulSet", {"spec.updateStrategy": {"type": "Blue"}}, "spec.updateStrategy",
     'Invalid value: apps.StatefulSetUpdateStrategy{Type:"Blue", '
     "RollingUpdate:(*apps.RollingUpdateStatefulSetStrategy)(nil)}: must be 'RollingUpdate' or 'OnDelete'"),
    ("StatefulSet", {"spec.podManagementPolicy": "Random"}, "spec.podManagementPolicy",
     "Invalid value: \"Random\": must be 'OrderedReady' or 'Parallel'"),
    ("StatefulSet", {"spec.replicas": -2}, "spec.replicas", "Invalid value: -2: must be greater than or equal to 0"),
    ("StatefulSet", {"spec.updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": -1}}},
     "spec.updateStrategy.rollingUpdate.partition", "Invalid value: -1: must be greater than or equal to 0"),
    ("Job", {"spec.template.spec.restartPolicy": "Always"}, "spec.template.spec.restartPolicy",
     'Unsupported value: "Always": supported values: "OnFailure", "Never"'),
    ("Job", {"spec.template.spec.restartPolicy": "OnFailure"}, None, None),
    ("Job", {"spec.selector": {"matchLabels": {"x": "y"}}}, "spec.template.metadata.labels",
     "Invalid value: map[string]string{"),
    ("Job", {"spec.selector": _DELETE}, "spec.selector", "Required value"),
    ("Job", {"spec.selector.matchLabels.app": "x", "spec.template.metadata.labels.app": "x"}, "spec.selector",
     "Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"x\", "
     "\"batch.kubernetes.io/controller-uid\":\"uid-1\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: "
     "`selector` not auto-generated"),
    ("Job", {"spec.manualSelector": True, "spec.selector": {"matchLabels": {"app": "x"}},
             "spec.template.metadata.labels": {"app": "x"}}, None, None),
    ("Job", {"spec.parallelism": -1}, "spec.parallelism", "Invalid value: -1: must be greater than or equal to 0"),
    ("Job", {"spec.backoffLimit": -1}, "spec.backoffLimit", "Invalid value: -1: must be greater than or equal to 0"),
    ("Job", {"spec.activeDeadlineSeconds": -1}, "spec.activeDeadlineSeconds", "Invalid value: -1: must be greater "
     "than or equal to 0"),
    ("Job", {"spec.selector.matchLabels.job-name": "pi"}, None, None),
    ("Job", {"spec.completionMode": "Indexed", "spec.completions": _DELETE}, "spec.completions",
     "Required value: when completion mode is Indexed"),
    ("Job", {"spec.completionMode": "Random"}, "spec.completionMode", 'Unsupported value: "Random"'),
    ("CronJob", {"spec.schedule": "not a schedule"}, "spec.schedule",
     'Invalid value: "not a schedule": expected exactly 5 fields, found 3: [not a schedule]'),
    ("CronJob", {"spec.schedule": "61 * * * *"}, "spec.schedule",
     'Invalid value: "61 * * * *": end of range (61) above maximum (59): 61'),
    ("CronJob", {"spec.schedule": _DELETE}, "spec.schedule", "Required value"),
    ("CronJob", {"spec.schedule": "TZ=UTC 0 * * * *"}, "spec.schedule",
     'Invalid value: "TZ=UTC 0 * * * *": cannot use TZ or CRON_TZ in schedule, use timeZone field instead'),
    ("CronJob", {"spec.schedule": "@hourly"}, None, None),
    ("CronJob", {"spec.concurrencyPolicy": "Never"}, "spec.concurrencyPolicy",
     'Unsupported value: "Never": supported values: "Allow", "Forbid", "Replace"'),
    ("CronJob", {"spec.jobTemplate.spec.template.spec.restartPolicy": "Always"},
     "spec.jobTemplate.spec.template.spec.restartPolicy",
     'Unsupported value: "Always": supported values: "OnFailure", "Never"'),
    ("CronJob", {"metadata.name": "c" * 53}, "metadata.name",
     'Invalid value: "' + "c" * 53 + '": must be no more than 52 characters'),
    ("CronJob", {"spec.successfulJobsHistoryLimit": -1}, "spec.successfulJobsHistoryLimit",
     "Invalid value: -1: must be greater than or equal to 0"),
    # services
    ("Service", {"spec.ports": []}, "spec.ports", "Required value"),
    ("Service", {"spec.ports": [], "spec.clusterIP": "None"}, None, None),
    ("Service", {"spec.ports[0].port": 0}, "spec.ports[0].port",
     "Invalid value: 0: must be between 1 and 65535, inclusive"),
    ("Service", {"spec.ports[0].port": 70000}, "spec.ports[0].port", "Invalid value: 70000: must be between"),
    ("Service", {"spec.ports[1]": {"port": 81, "protocol": "TCP", "targetPort": 81}}, "spec.ports[0].name",
     "Required value"),
    ("Service", {"spec.ports": [{"name": "a", "port": 80, "protocol": "TCP", "targetPort": 80},
                                {"name": "a", "port": 81, "protocol": "TCP", "targetPort": 81}]},
     "spec.ports[1].name", 'Duplicate value: "a"'),
    ("Service", {"spec.ports": [{"name": "a", "port": 80, "protocol": "TCP", "targetPort": 80},
                                {"name": "b", "port": 80, "protocol": "TCP", "targetPort": 81}]},
     "spec.ports[1]", 'Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", AppProtocol:(*string)(nil), '
     'Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}'),
    ("Service", {"spec.ports": [{"name": "a", "port": 80, "protocol": "TCP", "targetPort": 80},
                                {"name": "b", "port": 80, "protocol": "UDP", "targetPort": 80}]}, None, None),
    ("Service", {"spec.ports[0].protocol": "HTTP"}, "spec.ports[0].protocol", 'Unsupported value: "HTTP"'),
    ("Service", {"spec.ports[0].targetPort": "Http"}, "spec.ports[0].targetPort", 'Invalid value: "Http"'),
    ("Service", {"spec.type": "Internal"}, "spec.type",
     'Unsupported value: "Internal": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"'),
    ("Service", {"spec.ports[0].nodePort": 30080}, "spec.ports[0].nodePort",
     "Forbidden: may not be used when `type` is 'ClusterIP'"),
    ("Service", {"spec.type": "NodePort", "spec.ports[0].nodePort": 30080}, None, None),
    ("Service", {"spec": {"type": "ExternalName", "externalName": "db.example.com", "sessionAffinity": "None"}},
     None, None),
    ("Service", {"spec": {"type": "ExternalName", "sessionAffinity": "None"}}, "spec.externalName",
     "Required value"),
    ("Service", {"spec": {"type": "ExternalName", "sessionAffinity": "None", "externalName": "db.example.com.",
                          "clusterIP": "10.0.0.1"}}, "spec.clusterIPs",
     "Forbidden: may not be set for ExternalName services"),
    ("Service", {"spec.type": "LoadBalancer", "spec.ports[0].port": 10250}, "spec.ports[0]",
     "Invalid value: 10250: may not expose port 10250 externally since it is used by kubelet"),
    ("Service", {"spec.type": "NodePort", "spec.ports": [
        {"name": "a", "port": 80, "protocol": "TCP", "targetPort": 80, "nodePort": 30001},
        {"name": "b", "port": 81, "protocol": "TCP", "targetPort": 81, "nodePort": 30001}]},
     "spec.ports[1].nodePort", "Duplicate value: 30001"),
    ("Service", {"spec.externalTrafficPolicy": "Local"}, "spec.externalTrafficPolicy",
     'Invalid value: "Local": may only be set for externally-accessible services'),
    ("Service", {"spec.sessionAffinity": "ClientIP", "spec.sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 0}}},
     "spec.sessionAffinityConfig.clientIP.timeoutSeconds", "Invalid value: 0: must be greater than 0 and less "
     "than 86400"),
    ("Service", {"spec.externalIPs": ["not-ip"]}, "spec.externalIPs[0]", 'Invalid value: "not-ip"'),
    ("Service", {"spec.clusterIP": "10.0.0.300"}, "spec.clusterIPs[0]",
     'Invalid value: "10.0.0.300": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)'),
    ("Service", {"spec.sessionAffinity": "Sticky"}, "spec.sessionAffinity", 'Unsupported value: "Sticky"'),
    ("Service", {"spec.selector": {"app": "bad value!"}}, "spec.selector", 'Invalid value: "bad value!"'),
    # other core kinds
    ("ConfigMap", {"data": {"bad/key": "x"}}, "data[bad/key]", "Invalid value: \"bad/key\": a valid config key "
     "must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or "
     "'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"),
    ("ConfigMap", {"data": {"..x": "x"}}, "data[..x]", "Invalid value: \"..x\": must not start with '..'"),
    ("ConfigMap", {"data": {"a": "x"}, "binaryData": {"a": "eA=="}}, "data[a]",
     'Invalid value: "a": duplicate of key present in binaryData'),
    ("ConfigMap", {"data": {"big": "x" * (1024 * 1024 + 1)}}, "[]", "Too long: may not be more than 1048576 bytes"),
    ("Secret", {"stringData": {"big": "x" * (1024 * 1024 + 1)}}, "data", "Too long: may not be more than 1048576 "
     "bytes"),
    ("Secret", {"data": {"big": "eHh4" * (1024 * 1024 // 3)}}, None, None),
    ("Secret", {"data": {"big": "eHh4" * (1024 * 1024 // 3 + 1)}}, "data", "Too long"),
    ("Secret", {"data": {"k": "not base64!"}}, "data[k]", "Invalid value: \"<secret contents redacted>\""),
    ("Secret", {"type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}}, "data[tls.key]", "Required value"),
    ("Secret", {"type": "kubernetes.io/dockerconfigjson"}, "data[.dockerconfigjson]", "Required value"),
    ("Secret", {"type": "kubernetes.io/service-account-token"},
     "metadata.annotations[kubernetes.io/service-account.name]", "Required value"),
    ("Secret", {"stringData": {"k2": "plain"}}, None, None),
    ("Namespace", {"spec.finalizers": ["kubernetes", "example.com/x"]}, None, None),
    ("Namespace", {"spec.finalizers": ["custom"]}, "spec.finalizers[0]",
     'Invalid value: "custom": name is neither a standard finalizer name nor is it fully qualified'),
    ("Node", {"spec.taints": [{"key": "k", "effect": "Sometimes"}]}, "spec.taints[0].effect",
     'Unsupported value: "Sometimes"'),
    ("Node", {"spec.taints": [{"key": "k"}]}, "spec.taints[0].effect", "Required value"),
    ("Node", {"status": {"capacity": {"cpu": "four"}}}, "status.capacity[cpu]", 'Invalid value: "four"'),
    ("Event", {"involvedObject.namespace": "other"}, "involvedObject.namespace",
     'Invalid value: "other": does not match event.namespace'),
    ("Event", {"type": "Bad"}, "type", 'Unsupported value: "Bad": supported values: "Normal", "Warning"'),
    ("ServiceAccount", {"metadata.name": "Bad"}, "metadata.name", 'Invalid value: "Bad"'),
    ("Lease", {"spec.leaseDurationSeconds": 0}, "spec.leaseDurationSeconds",
     "Invalid value: 0: must be greater than 0"),
    ("Endpoints", {"subsets[0].addresses[0].ip": "nope"}, "subsets[0].addresses[0].ip", 'Invalid value: "nope"'),
    ("Endpoints", {"subsets[0].ports[0].port": 0}, "subsets[0].ports[0].port", "Invalid value: 0"),
    ("EndpointSlice", {"addressType": "IPv5"}, "addressType", 'Unsupported value: "IPv5"'),
    ("EndpointSlice", {"endpoints[0].addresses": ["fe80::1"]}, "endpoints[0].addresses[0]",
     'Invalid value: "fe80::1": must be a valid IPv4 address'),
    ("PriorityClass", {"value": 2000000000}, "value",
     "Forbidden: maximum allowed value of a user defined priority is 1000000000"),
    ("PriorityClass", {"metadata.name": "system-mine"}, "metadata.name",
     "Forbidden: priority class names with 'system-' prefix are reserved for system use only"),
    ("PriorityClass", {"preemptionPolicy": "Sometimes"}, "preemptionPolicy", 'Unsupported value: "Sometimes"'),
]


def _case_id(case):
    kind, changes, field = case[0], case[1], case[2]
    return f"{kind}:{','.join(changes)}:{field or 'ok'}"


@pytest.mark.parametrize("case", CREATE_CASES, ids=[_case_id(c) for c in CREATE_CASES])
def test_create_rules(case):
    kind, changes, field, message = case[:4]
    reason = case[4] if len(case) > 4 else None
    found = causes(kind, changes)
    if field is None:
        assert found == [], found
    else:
        assert has(found, field, message, reason), found


def test_pod_spec_defaults_are_required_when_missing():
    # Undefaulted objects miss what defaulting supplies; validation says so rather than crash.
    pod = {"kind": "Pod", "metadata": {"name": "p", "namespace": "d"}, "spec": {"containers": [container()]}}
    found = validate_create(resource("Pod"), pod)
    assert has(found, "spec.restartPolicy", "Required value")
    assert has(found, "spec.containers[0].imagePullPolicy", "Required value")


def test_malformed_shapes_do_not_crash():
    for kind in ALL_KINDS:
        for body in ({"metadata": {"name": "x", "namespace": "d"}, "spec": None},
                     {"metadata": {"name": "x", "namespace": "d"}, "spec": {"containers": [None, 5]}},
                     {"metadata": None}):
            validate_create(resource(kind), {"kind": kind, **body})


def _leaf_paths(o, prefix=()):
    if prefix:
        yield prefix
    if isinstance(o, dict):
        for k, v in o.items():
            yield from _leaf_paths(v, (*prefix, k))
    elif isinstance(o, list):
        for i, v in enumerate(o):
            yield from _leaf_paths(v, (*prefix, i))


WRONG_SHAPES = [None, 5, -1, "x", "", [], {}, [None], {"a": None}, True, 1.5]


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_wrong_shapes_never_raise(kind):
    # The server defaults and validates before the schema reports type errors: a value of the
    # wrong type anywhere must give causes (or none), never an exception.
    good = base(kind)
    for path in list(_leaf_paths(good)):
        for value in WRONG_SHAPES:
            bad = copy.deepcopy(good)
            target = bad
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = value
            validate_create(resource(kind), bad)
            validate_update(resource(kind), good, bad)
            validate_update(resource(kind), bad, good)
            apply_defaults(copy.deepcopy(bad))
            apply_defaults(copy.deepcopy(bad), create=False)
            if kind == "Job":
                job_selector_defaults(copy.deepcopy(bad))


def test_causes_render_as_kubernetes_messages():
    found = causes("Pod", {"metadata.name": "Web", "spec.containers[0].image": ""})
    err = errors.invalid("Pod", "Web", found)
    assert err.code == 422
    assert err.message.startswith('Pod "Web" is invalid: [metadata.name: Invalid value: "Web": a lowercase '
                                  "RFC 1123 subdomain")
    assert "spec.containers[0].image: Required value" in err.message
    status = err.to_status()
    assert {"reason": "FieldValueRequired", "message": "Required value",
            "field": "spec.containers[0].image"} in status["details"]["causes"]


# ---------------------------------------------------------------------------------------------
# Updates


def updated(kind, changes, old_changes=None):
    old = base(kind)
    old["metadata"].update(uid="uid-1", creationTimestamp="2024-01-01T00:00:00Z", resourceVersion="5")
    for path, value in (old_changes or {}).items():
        setp(old, path, value)
    new = copy.deepcopy(old)
    for path, value in changes.items():
        setp(new, path, value)
    return validate_update(resource(kind), old, new)


POD_UPDATE_MESSAGE = ("Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
                      "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only "
                      "additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be "
                      "set to 1 if it was previously negative)")

# (kind, new changes, field, message prefix, old changes)
UPDATE_CASES = [
    ("Pod", {"metadata.labels": {"a": "b"}, "metadata.annotations": {"x": "y"}}, None, None, None),
    ("Pod", {"metadata.name": "other"}, "metadata.name", 'Invalid value: "other": field is immutable', None),
    ("Pod", {"metadata.namespace": "other"}, "metadata.namespace", 'Invalid value: "other": field is immutable',
     None),
    ("Pod", {"metadata.uid": "uid-2"}, "metadata.uid", 'Invalid value: "uid-2": field is immutable', None),
    ("Pod", {"metadata.creationTimestamp": "2025-01-01T00:00:00Z"}, "metadata.creationTimestamp",
     "Invalid value: \"2025-01-01T00:00:00Z\": field is immutable", None),
    ("Pod", {"spec.containers[0].image": "nginx:1.26"}, None, None, None),
    ("Pod", {"spec.initContainers[0].image": "busybox:2"}, None, None,
     {"spec.initContainers": [dict(container("init"), imagePullPolicy="IfNotPresent",
                                   terminationMessagePolicy="File")]}),
    ("Pod", {"spec.containers[0].env": [{"name": "A", "value": "b"}]}, "spec", POD_UPDATE_MESSAGE, None),
    ("Pod", {"spec.restartPolicy": "Never"}, "spec", POD_UPDATE_MESSAGE, None),
    ("Pod", {"spec.terminationGracePeriodSeconds": 5}, "spec", POD_UPDATE_MESSAGE, None),
    ("Pod", {"spec.terminationGracePeriodSeconds": 1}, None, None, {"spec.terminationGracePeriodSeconds": -1}),
    ("Pod", {"spec.containers[1]": container("d")}, "spec.containers",
     "Forbidden: pod updates may not add or remove containers", None),
    ("Pod", {"spec.activeDeadlineSeconds": 30}, None, None, None),
    ("Pod", {"spec.activeDeadlineSeconds": 10}, None, None, {"spec.activeDeadlineSeconds": 30}),
    ("Pod", {"spec.activeDeadlineSeconds": 60}, "spec.activeDeadlineSeconds",
     "Invalid value: 60: must be less than or equal to previous value", {"spec.activeDeadlineSeconds": 30}),
    ("Pod", {"spec.activeDeadlineSeconds": _DELETE}, "spec.activeDeadlineSeconds",
     "Invalid value: null: must not update from a positive integer to nil value",
     {"spec.activeDeadlineSeconds": 30}),
    ("Pod", {"spec.tolerations[2]": {"key": "k", "operator": "Exists"}}, None, None, None),
    ("Pod", {"spec.tolerations[0].tolerationSeconds": 60}, None, None, None),
    ("Pod", {"spec.tolerations": []}, "spec.tolerations",
     "Forbidden: existing toleration can not be modified except its tolerationSeconds", None),
    ("Pod", {"spec.schedulingGates": []}, None, None, {"spec.schedulingGates": [{"name": "wait"}]}),
    ("Pod", {"spec.schedulingGates": [{"name": "new"}]}, "spec.schedulingGates",
     "Forbidden: only deletion is allowed, but found new scheduling gate 'new'", None),
    ("Pod", {"spec.nodeSelector": {"zone": "a"}}, None, None, {"spec.schedulingGates": [{"name": "wait"}]}),
    ("Pod", {"spec.nodeSelector": {"zone": "a"}}, "spec", POD_UPDATE_MESSAGE, None),
    ("Pod", {"status": {"phase": "Running"}}, None, None, None),
    ("Deployment", {"spec.replicas": 5, "spec.template.spec.containers[0].image": "nginx:2"}, None, None, None),
    ("Deployment", {"spec.selector": {"matchLabels": {"app": "web", "v": "2"}},
                    "spec.template.metadata.labels": {"app": "web", "v": "2"}}, "spec.selector",
     "Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web\", \"v\":\"2\"}, "
     "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable", None),
    ("ReplicaSet", {"spec.selector": {"matchLabels": {"app": "web", "v": "2"}}}, "spec.selector",
     "Invalid value: v1.LabelSelector{", None),
    ("DaemonSet", {"spec.selector": {"matchLabels": {"app": "web", "v": "2"}}}, "spec.selector",
     "Invalid value: v1.LabelSelector{", None),
    ("StatefulSet", {"spec.replicas": 3, "spec.template.spec.containers[0].image": "x:2",
                     "spec.updateStrategy": {"type": "OnDelete"}, "spec.minReadySeconds": 5}, None, None, None),
    ("StatefulSet", {"spec.serviceName": "other"}, "spec",
     "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
     "'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden", None),
    ("Job", {"spec.parallelism": 3, "spec.suspend": True, "spec.activeDeadlineSeconds": 100}, None, None, None),
    ("Job", {"spec.template.spec.containers[0].image": "x:2"}, "spec.template",
     "Invalid value: core.PodTemplateSpec{...}: field is immutable", None),
    ("Job", {"spec.selector.matchLabels.extra": "x"}, "spec.selector", "Invalid value: v1.LabelSelector{", None),
    ("Job", {"spec.template.spec.nodeSelector": {"zone": "a"}, "spec.template.metadata.labels.queue": "q"},
     None, None, {"spec.suspend": True}),
    ("Job", {"spec.template.spec.nodeSelector": {"zone": "a"}}, "spec.template",
     "Invalid value: core.PodTemplateSpec{...}: field is immutable", {"spec.suspend": True,
                                                                      "status.startTime": "2024-01-01T00:00:00Z"}),
    ("Job", {"spec.template.spec.containers[0].image": "x:2"}, "spec.template",
     "Invalid value: core.PodTemplateSpec{...}: field is immutable", {"spec.suspend": True}),
    ("Job", {"spec.completions": 5}, "spec.completions", "Invalid value: 5: field is immutable", None),
    ("Job", {"spec.completionMode": "Indexed"}, "spec.completionMode", 'Invalid value: "Indexed": field is '
     "immutable", None),
    ("Service", {"spec.clusterIP": "10.0.0.2", "spec.clusterIPs": ["10.0.0.2"]}, "spec.clusterIPs[0]",
     'Invalid value: []string{"10.0.0.2"}: may not change once set',
     {"spec.clusterIP": "10.0.0.1", "spec.clusterIPs": ["10.0.0.1"]}),
    ("Service", {"spec.ports[0].port": 8080}, None, None,
     {"spec.clusterIP": "10.0.0.1", "spec.clusterIPs": ["10.0.0.1"]}),
    ("Service", {"spec.clusterIP": "10.0.0.1", "spec.clusterIPs": ["10.0.0.1"]}, None, None, None),
    ("ConfigMap", {"data": {"a.txt": "y"}}, None, None, None),
    ("ConfigMap", {"data": {"a.txt": "y"}}, "data", "Forbidden: field is immutable when `immutable` is set",
     {"immutable": True}),
    ("ConfigMap", {"immutable": False}, "immutable", "Forbidden: field is immutable when `immutable` is set",
     {"immutable": True}),
    ("Secret", {"type": "kubernetes.io/basic-auth", "data": {"username": "eA=="}}, "type",
     'Invalid value: "kubernetes.io/basic-auth": field is immutable', None),
    ("Secret", {"data": {"k": "eQ=="}}, "data", "Forbidden: field is immutable when `immutable` is set",
     {"immutable": True}),
    ("PriorityClass", {"value": 5}, "value", "Invalid value: 5: field is immutable", None),
    ("Namespace", {"metadata.labels.team": "a"}, None, None, None),
    ("Node", {"spec.unschedulable": True}, None, None, None),
]


@pytest.mark.parametrize("case", UPDATE_CASES, ids=[_case_id(c) for c in UPDATE_CASES])
def test_update_rules(case):
    kind, changes, field, message, old_changes = case
    found = updated(kind, changes, old_changes)
    if field is None:
        assert found == [], found
    else:
        assert has(found, field, message), found


def test_pod_update_message_names_the_changed_field():
    found = updated("Pod", {"spec.restartPolicy": "Never"})
    (cause,) = [c for c in found if c.field == "spec"]
    assert "spec.restartPolicy" in cause.message
    assert '"Always"' in cause.message and '"Never"' in cause.message


def test_update_also_validates_the_new_object():
    found = updated("Deployment", {"spec.replicas": -1})
    assert has(found, "spec.replicas", "Invalid value: -1: must be greater than or equal to 0")


def test_update_does_not_mutate():
    old = base("Pod")
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "x:2"
    new["spec"]["tolerations"].append({"key": "k", "operator": "Exists"})
    old_before, new_before = copy.deepcopy(old), copy.deepcopy(new)
    validate_update(resource("Pod"), old, new)
    assert old == old_before and new == new_before


@pytest.mark.parametrize("schedule,error", [
    ("* * * * *", None),
    ("0 0 * * 0", None),
    ("*/15 1-5 1,15 JAN-MAR mon-fri", None),
    ("0 0 ? * SUN", None),
    ("@daily", None),
    ("@every 1h30m", None),
    ("@often", "unrecognized descriptor: @often"),
    ("", "empty spec string"),
    ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
    ("* 24 * * *", "end of range (24) above maximum (23): 24"),
    ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
    ("5-1 * * * *", "beginning of range (5) beyond end of range (1): 5-1"),
    ("*/0 * * * *", "step of range should be a positive number: */0"),
    ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
    ("x * * * *", "failed to parse int from x"),
])
def test_cron_schedules(schedule, error):
    got = cron_schedule_error(schedule)
    if error is None:
        assert got is None
    else:
        assert got is not None and got.startswith(error), got
