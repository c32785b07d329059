"""Protobuf request bodies: our .proto files against kubectl's own, decoding, and real kubectl's bodies.

kubectl 1.32 carries the descriptors of every Kubernetes message it knows, gzipped inside its
binary; ``kubectl_descriptors`` reads them so each message we describe is checked field by field
(name, number, type, label) against the client that sends them. Real kubectl's bodies are recorded
by a small server in the test and decoded; the result must equal what the same kubectl prints for
``--dry-run=client -o json``, which is the JSON it would have sent.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import tempfile
import zlib
from pathlib import Path

import pytest
from aiohttp import web
from google.protobuf import descriptor_pb2

from api.errors import BadRequest, UnsupportedMediaType
from apiserver import codec, protobuf
from proto.k8s import (
    apps_pb2,
    batch_pb2,
    coordination_pb2,
    core_pb2,
    intstr_pb2,
    meta_pb2,
    policy_pb2,
    resource_pb2,
    runtime_pb2,
    scheduling_pb2,
)
from proto.k8s.generate import K8S_DIR, generate
from tests.fixtures.require import require

KUBECTL = "/usr/bin/kubectl"
OUR_FILES = (runtime_pb2, meta_pb2, resource_pb2, intstr_pb2, core_pb2, apps_pb2, batch_pb2,
             scheduling_pb2, coordination_pb2, policy_pb2)


def _require(path: str) -> None:
    require(path)


# --- the generated code and the wire format ------------------------------------------------------

def test_generated_code_is_current(tmp_path: Path) -> None:
    written = generate(tmp_path)
    assert len(written) == 11
    for fresh in written:
        checked_in = K8S_DIR / fresh.name
        assert checked_in.exists(), f"{fresh.name} missing: run python -m proto.k8s.generate"
        assert checked_in.read_text() == fresh.read_text(), (
            f"{fresh.name} is stale: run python -m proto.k8s.generate")


def kubectl_descriptors() -> dict[str, descriptor_pb2.DescriptorProto]:
    """Every Kubernetes message kubectl 1.32 was built with, by full name (``k8s.io.api.core.v1.Pod``)."""
    _require(KUBECTL)
    binary = Path(os.path.realpath(KUBECTL)).with_name("kubectl.1.32")
    if not binary.exists():
        binary = Path(os.path.realpath(KUBECTL))
    data = binary.read_bytes()
    messages: dict[str, descriptor_pb2.DescriptorProto] = {}
    for m in re.finditer(rb"\x1f\x8b\x08\x00\x00\x00\x00\x00", data):
        try:
            raw = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data[m.start():m.start() + 4_000_000])
            fd = descriptor_pb2.FileDescriptorProto.FromString(raw)
        except Exception:  # noqa: BLE001 - most gzip-looking bytes in a binary are not descriptors
            continue
        if fd.package.startswith("k8s.io.") and fd.name.endswith("generated.proto"):
            for msg in fd.message_type:
                messages[f"{fd.package}.{msg.name}"] = msg
    assert len(messages) > 1000, f"found only {len(messages)} Kubernetes messages in {binary}"
    return messages


def our_descriptors() -> dict[str, descriptor_pb2.DescriptorProto]:
    out = {}
    for module in OUR_FILES:
        fd = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(fd)
        for msg in fd.message_type:
            out[f"{fd.package}.{msg.name}"] = msg
    return out


def _fields(msg: descriptor_pb2.DescriptorProto) -> dict[str, tuple]:
    return {f.name: (f.number, f.type, f.label, f.type_name) for f in msg.field}


def test_every_message_matches_kubectl_field_for_field() -> None:
    theirs = kubectl_descriptors()
    ours = our_descriptors()
    assert len(ours) > 170
    mismatched = {}
    for name, msg in ours.items():
        assert name in theirs, f"{name} is not a Kubernetes message"
        if _fields(msg) != _fields(theirs[name]):
            mismatched[name] = (_fields(msg), _fields(theirs[name]))
        ours_maps = {n.name: _fields(n) for n in msg.nested_type}
        assert ours_maps == {n.name: _fields(n) for n in theirs[name].nested_type}, name
    assert not mismatched, mismatched


# --- decoding messages built with the generated classes -------------------------------------------

def envelope(msg, api_version: str, kind: str, **extra) -> bytes:
    unknown = runtime_pb2.Unknown(raw=msg.SerializeToString(), **extra)
    unknown.typeMeta.apiVersion = api_version
    unknown.typeMeta.kind = kind
    return protobuf.MAGIC + unknown.SerializeToString()


def meta(name: str, **kw) -> meta_pb2.ObjectMeta:
    # The fields kubectl's encoder always writes, empty, as real bodies carry them.
    fields = {"generateName": "", "namespace": "", "selfLink": "", "uid": "", "resourceVersion": "",
              "generation": 0, **kw}
    m = meta_pb2.ObjectMeta(name=name, **fields)
    m.creationTimestamp.SetInParent()
    return m


def q(s: str) -> resource_pb2.Quantity:
    return resource_pb2.Quantity(string=s)


def test_configmap_and_secret_bytes() -> None:
    cm = core_pb2.ConfigMap(metadata=meta("c", labels={"a": "b"}), data={"k": "v", "empty": ""},
                            binaryData={"bin": b"\x00\xff"}, immutable=False)
    assert protobuf.decode(envelope(cm, "v1", "ConfigMap")) == {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "creationTimestamp": None, "labels": {"a": "b"}},
        "immutable": False, "data": {"k": "v", "empty": ""}, "binaryData": {"bin": "AP8="}}
    secret = core_pb2.Secret(metadata=meta("s"), data={"password": b"hunter2\n"}, type="Opaque")
    decoded = protobuf.decode(envelope(secret, "v1", "Secret"))
    assert decoded["data"] == {"password": base64.b64encode(b"hunter2\n").decode()}
    assert decoded["type"] == "Opaque"
    assert "immutable" not in decoded  # absent pointer: not on the wire, not in JSON


def container(**kw) -> core_pb2.Container:
    return core_pb2.Container(name="web", image="nginx:1.27", **kw)


def deployment(replicas: int | None, **spec) -> apps_pb2.Deployment:
    d = apps_pb2.Deployment(metadata=meta("web"))
    if replicas is not None:
        d.spec.replicas = replicas
    d.spec.selector.matchLabels["app"] = "web"
    d.spec.template.metadata.CopyFrom(meta("", labels={"app": "web"}))
    d.spec.template.spec.containers.append(container(
        ports=[core_pb2.ContainerPort(containerPort=80, protocol="TCP", hostPort=0)],
        resources=core_pb2.ResourceRequirements(requests={"cpu": q("250m"), "memory": q("64Mi")},
                                                limits={"memory": q("1Gi")}),
        readinessProbe=core_pb2.Probe(
            handler=core_pb2.ProbeHandler(httpGet=core_pb2.HTTPGetAction(
                path="/", port=intstr_pb2.IntOrString(type=1, strVal="http"))),
            periodSeconds=5, initialDelaySeconds=0)))
    d.spec.paused = False
    for k, v in spec.items():
        setattr(d.spec, k, v)
    d.status.SetInParent()
    return d


def test_deployment_pod_template_quantities_and_zero_values() -> None:
    d = deployment(0)
    d.spec.strategy.type = "RollingUpdate"
    d.spec.strategy.rollingUpdate.maxUnavailable.CopyFrom(intstr_pb2.IntOrString(type=0, intVal=0))
    d.spec.strategy.rollingUpdate.maxSurge.CopyFrom(intstr_pb2.IntOrString(type=1, strVal="25%"))
    obj = protobuf.decode(envelope(d, "apps/v1", "Deployment"))
    assert obj["spec"]["replicas"] == 0  # a pointer: zero is a value, never the default
    assert "paused" not in obj["spec"]  # a plain bool: false is unset
    assert obj["spec"]["strategy"] == {"type": "RollingUpdate",
                                       "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}}
    assert obj["status"] == {}
    assert obj["spec"]["template"]["metadata"] == {"creationTimestamp": None, "labels": {"app": "web"}}
    [c] = obj["spec"]["template"]["spec"]["containers"]
    assert c == {
        "name": "web", "image": "nginx:1.27",
        "ports": [{"containerPort": 80, "protocol": "TCP"}],
        "resources": {"limits": {"memory": "1Gi"}, "requests": {"cpu": "250m", "memory": "64Mi"}},
        "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 5},
    }


def test_unset_replicas_stays_unset() -> None:
    obj = protobuf.decode(envelope(deployment(None), "apps/v1", "Deployment"))
    assert "replicas" not in obj["spec"]


def test_service_ports_and_int_or_string() -> None:
    svc = core_pb2.Service(metadata=meta("svc"))
    svc.spec.type = "ClusterIP"
    svc.spec.selector["app"] = "web"
    svc.spec.ports.add(name="http", protocol="TCP", port=80, targetPort=intstr_pb2.IntOrString(intVal=8080),
                       nodePort=0)
    svc.spec.ports.add(name="metrics", port=9090, targetPort=intstr_pb2.IntOrString())
    svc.spec.ports.add(name="named", port=443, targetPort=intstr_pb2.IntOrString(type=1, strVal="https"))
    obj = protobuf.decode(envelope(svc, "v1", "Service"))
    assert obj["spec"] == {"ports": [
        {"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080},
        {"name": "metrics", "port": 9090},  # a zero targetPort is unset: defaulting copies port
        {"name": "named", "port": 443, "targetPort": "https"},
    ], "selector": {"app": "web"}, "type": "ClusterIP"}


def test_job_and_cronjob_pointer_zeros() -> None:
    job = batch_pb2.Job(metadata=meta("j"))
    job.spec.backoffLimit = 0
    job.spec.suspend = False
    job.spec.parallelism = 2
    job.spec.template.spec.restartPolicy = "Never"
    job.spec.template.spec.containers.append(container(command=["sh", "-c", ""], args=[]))
    job.spec.template.spec.terminationGracePeriodSeconds = 0
    obj = protobuf.decode(envelope(job, "batch/v1", "Job"))
    assert {k: obj["spec"][k] for k in ("backoffLimit", "suspend", "parallelism")} == {
        "backoffLimit": 0, "suspend": False, "parallelism": 2}
    pod = obj["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 0
    assert pod["containers"][0]["command"] == ["sh", "-c", ""]  # list items keep empty strings
    assert "args" not in pod["containers"][0]

    cj = batch_pb2.CronJob(metadata=meta("cj"))
    cj.spec.schedule = "*/5 * * * *"
    cj.spec.suspend = True
    cj.spec.successfulJobsHistoryLimit = 0
    cj.spec.concurrencyPolicy = ""
    cj.spec.jobTemplate.spec.CopyFrom(job.spec)
    obj = protobuf.decode(envelope(cj, "batch/v1", "CronJob"))
    assert obj["spec"]["schedule"] == "*/5 * * * *"
    assert obj["spec"]["suspend"] is True
    assert obj["spec"]["successfulJobsHistoryLimit"] == 0
    assert "concurrencyPolicy" not in obj["spec"]
    assert obj["spec"]["jobTemplate"]["spec"]["backoffLimit"] == 0


def test_priority_class_value_zero_is_kept() -> None:
    pc = scheduling_pb2.PriorityClass(metadata=meta("low"), value=0, globalDefault=False, description="")
    assert protobuf.decode(envelope(pc, "scheduling.k8s.io/v1", "PriorityClass")) == {
        "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
        "metadata": {"name": "low", "creationTimestamp": None}, "value": 0}


def test_lease_times_and_managed_fields() -> None:
    lease = coordination_pb2.Lease(metadata=meta("node-1", namespace="kube-node-lease"))
    lease.metadata.creationTimestamp.CopyFrom(meta_pb2.Time(seconds=1704164645, nanos=0))
    lease.metadata.managedFields.add(
        manager="kubelet", operation="Update", apiVersion="coordination.k8s.io/v1", fieldsType="FieldsV1",
        time=meta_pb2.Time(seconds=1704164645), fieldsV1=meta_pb2.FieldsV1(Raw=b'{"f:spec":{}}'))
    lease.metadata.ownerReferences.add(apiVersion="v1", kind="Node", name="node-1", uid="u-1",
                                       controller=False)
    lease.spec.holderIdentity = "node-1"
    lease.spec.leaseDurationSeconds = 40
    lease.spec.renewTime.CopyFrom(meta_pb2.MicroTime(seconds=1704164645, nanos=123456789))
    lease.spec.leaseTransitions = 0
    obj = protobuf.decode(envelope(lease, "coordination.k8s.io/v1", "Lease"))
    assert obj["metadata"]["creationTimestamp"] == "2024-01-02T03:04:05Z"
    assert obj["metadata"]["namespace"] == "kube-node-lease"
    assert obj["metadata"]["managedFields"] == [{
        "manager": "kubelet", "operation": "Update", "apiVersion": "coordination.k8s.io/v1",
        "time": "2024-01-02T03:04:05Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}}]
    assert obj["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Node", "name": "node-1", "uid": "u-1", "controller": False}]
    assert obj["spec"] == {"holderIdentity": "node-1", "leaseDurationSeconds": 40,
                           "renewTime": "2024-01-02T03:04:05.123456Z", "leaseTransitions": 0}


def test_eviction_delete_options() -> None:
    ev = policy_pb2.Eviction(metadata=meta("web-0", namespace="default"))
    ev.deleteOptions.gracePeriodSeconds = 0
    ev.deleteOptions.propagationPolicy = "Foreground"
    obj = protobuf.decode(envelope(ev, "policy/v1", "Eviction"))
    assert obj["deleteOptions"] == {"gracePeriodSeconds": 0, "propagationPolicy": "Foreground"}


@pytest.mark.parametrize(("nanos", "text"), [
    (0, "0s"), (1, "1ns"), (1_500, "1.5µs"), (150_000_000, "150ms"), (1_000_000_000, "1s"),
    (90_000_000_000, "1m30s"), (3_600_000_000_000, "1h0m0s"), (3_723_500_000_000, "1h2m3.5s"),
    (-2_000_000_000, "-2s"),
])
def test_duration_text(nanos: int, text: str) -> None:
    assert protobuf._duration(nanos) == text


def test_codec_routes_protobuf_bodies() -> None:
    body = envelope(core_pb2.Namespace(metadata=meta("ns1")), "v1", "Namespace")
    decoded = codec.decode_body(body, "application/vnd.kubernetes.protobuf")
    assert decoded == {"apiVersion": "v1", "kind": "Namespace",
                       "metadata": {"name": "ns1", "creationTimestamp": None}}


# --- malformed and unsupported bodies -------------------------------------------------------------

def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _with_unknown_field(msg, number: int) -> bytes:
    return msg.SerializeToString() + _varint(number << 3) + _varint(1)  # varint field `number` = 1


GOOD = envelope(core_pb2.ConfigMap(metadata=meta("c")), "v1", "ConfigMap")


@pytest.mark.parametrize(("body", "error", "words"), [
    (b"", BadRequest, "magic"),
    (b'{"kind": "ConfigMap"}', BadRequest, "magic"),
    (GOOD[:-3], BadRequest, "malformed"),
    (protobuf.MAGIC + b"\x0a\xff\xff", BadRequest, "envelope"),
    (envelope(core_pb2.ConfigMap(), "", ""), BadRequest, "apiVersion and kind"),
    (envelope(core_pb2.ConfigMap(), "v1", "ConfigMap", contentEncoding="gzip"), BadRequest, "gzip"),
    (envelope(core_pb2.ConfigMap(), "v1", "ConfigMap", contentType="application/json"), BadRequest,
     "application/json"),
    (envelope(core_pb2.ConfigMap(), "v1", "ResourceQuota"), UnsupportedMediaType, "ResourceQuota"),
    (envelope(core_pb2.ConfigMap(), "apps/v1", "ConfigMap"), UnsupportedMediaType, "ConfigMap (apps/v1)"),
])
def test_bad_bodies(body: bytes, error: type, words: str) -> None:
    with pytest.raises(error) as info:
        protobuf.decode(body)
    assert words in info.value.message


def test_truncated_object_is_bad_request() -> None:
    unknown = runtime_pb2.Unknown(raw=core_pb2.ConfigMap(metadata=meta("c")).SerializeToString()[:-2])
    unknown.typeMeta.apiVersion, unknown.typeMeta.kind = "v1", "ConfigMap"
    with pytest.raises(BadRequest, match="ConfigMap"):
        protobuf.decode(protobuf.MAGIC + unknown.SerializeToString())


def test_unknown_fields_inside_an_inline_member_are_named_by_json_path() -> None:
    probe = core_pb2.Probe(periodSeconds=1)
    probe.handler.CopyFrom(core_pb2.ProbeHandler.FromString(
        _with_unknown_field(core_pb2.ProbeHandler(exec=core_pb2.ExecAction(command=["true"])), 77)))
    pod = core_pb2.Pod(metadata=meta("p"))
    pod.spec.containers.append(container(livenessProbe=probe))
    with pytest.raises(BadRequest) as info:
        protobuf.decode(envelope(pod, "v1", "Pod"))
    assert info.value.message.startswith("spec.containers[0].livenessProbe: protobuf field(s) 77 of ProbeHandler")


def test_fields_we_do_not_describe_are_refused_with_their_place() -> None:
    raw_container = _with_unknown_field(container(), 99)
    spec = core_pb2.PodSpec()
    # Rebuild PodSpec by hand so the container carries field 99.
    spec_bytes = _varint(2 << 3 | 2) + _varint(len(raw_container)) + raw_container
    spec.ParseFromString(spec_bytes)
    dep = apps_pb2.Deployment(metadata=meta("web"))
    dep.spec.template.spec.CopyFrom(spec)
    with pytest.raises(BadRequest) as info:
        protobuf.decode(envelope(dep, "apps/v1", "Deployment"))
    assert "spec.template.spec.containers[0]" in info.value.message
    assert "99" in info.value.message and "Container" in info.value.message


# --- bodies real kubectl sends --------------------------------------------------------------------

KUBECTL_CREATES = [
    ["create", "configmap", "cm1", "--from-literal=a=b", "--from-literal=empty="],
    ["create", "secret", "generic", "s1", "--from-literal=k=v", "--type=Opaque"],
    ["create", "secret", "docker-registry", "reg", "--docker-server=r.example", "--docker-username=u",
     "--docker-password=p"],
    ["create", "namespace", "ns1"],
    ["create", "serviceaccount", "sa1"],
    ["create", "service", "clusterip", "svc1", "--tcp=80:8080", "--tcp=443:https"],
    ["create", "service", "clusterip", "headless", "--clusterip=None"],
    ["create", "service", "nodeport", "np", "--tcp=80:8080", "--node-port=30080"],
    ["create", "service", "loadbalancer", "lb", "--tcp=80"],
    ["create", "service", "externalname", "ext", "--external-name=example.com"],
    ["create", "deployment", "web", "--image=nginx", "--replicas=2", "--port=80"],
    ["create", "deployment", "zero", "--image=nginx", "--replicas=0"],
    ["create", "deployment", "multi", "--image=nginx", "--image=busybox"],
    ["create", "deployment", "cmd", "--image=busybox", "--port=8080", "--", "sleep", "3600"],
    ["create", "job", "j1", "--image=busybox", "--", "echo", "hi"],
    ["create", "cronjob", "cj1", "--image=busybox", "--schedule=*/5 * * * *", "--restart=Never", "--",
     "date"],
    ["create", "job", "from-sink", "--from=cronjob/sink"],
    ["create", "priorityclass", "pc0", "--value=0"],
    ["create", "priorityclass", "pc1", "--value=1000", "--global-default", "--description=high",
     "--preemption-policy=Never"],
]


# A CronJob that sets most of the pod template, with zeros in the pointer fields (the ones whose
# zero is a value) and non-zero values elsewhere. ``kubectl create job --from=cronjob/sink`` reads it
# and posts its job template back as protobuf, so the whole tree goes over the wire.
SINK_CRONJOB = json.loads("""
{"apiVersion": "batch/v1", "kind": "CronJob",
 "metadata": {"name": "sink", "namespace": "default", "uid": "0b8e2a4c-1111-2222-3333-444455556666",
              "resourceVersion": "7", "creationTimestamp": "2024-01-02T03:04:05Z"},
 "spec": {
  "schedule": "*/5 * * * *", "timeZone": "Etc/UTC", "startingDeadlineSeconds": 0, "concurrencyPolicy": "Forbid",
  "suspend": false, "successfulJobsHistoryLimit": 0, "failedJobsHistoryLimit": 0,
  "jobTemplate": {
   "metadata": {"labels": {"team": "a"}, "annotations": {"note": "x"}},
   "spec": {
    "parallelism": 0, "completions": 0, "activeDeadlineSeconds": 0, "backoffLimit": 0, "backoffLimitPerIndex": 0,
    "maxFailedIndexes": 0, "ttlSecondsAfterFinished": 0, "completionMode": "Indexed", "suspend": false,
    "podReplacementPolicy": "Failed", "manualSelector": false,
    "podFailurePolicy": {"rules": [
      {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [0, 42]}},
      {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]},
    "successPolicy": {"rules": [{"succeededIndexes": "0-2", "succeededCount": 0}]},
    "template": {
     "metadata": {"labels": {"app": "sink"}},
     "spec": {
      "restartPolicy": "Never", "terminationGracePeriodSeconds": 0, "activeDeadlineSeconds": 0,
      "dnsPolicy": "None", "nodeSelector": {"disk": "ssd"}, "serviceAccountName": "runner",
      "automountServiceAccountToken": false, "hostNetwork": true, "shareProcessNamespace": false,
      "hostname": "h", "subdomain": "s", "schedulerName": "custom", "priorityClassName": "low", "priority": 0,
      "runtimeClassName": "", "enableServiceLinks": false, "preemptionPolicy": "Never", "setHostnameAsFQDN": false,
      "hostUsers": false, "overhead": {"cpu": "10m"},
      "securityContext": {"runAsUser": 0, "runAsGroup": 0, "runAsNonRoot": false, "fsGroup": 0,
        "fsGroupChangePolicy": "OnRootMismatch", "supplementalGroups": [0, 5], "supplementalGroupsPolicy": "Merge",
        "sysctls": [{"name": "net.core.somaxconn", "value": ""}], "seccompProfile": {"type": "RuntimeDefault"},
        "appArmorProfile": {"type": "Localhost", "localhostProfile": ""}, "seLinuxOptions": {"level": "s0:c1"},
        "windowsOptions": {"hostProcess": false, "runAsUserName": ""}},
      "imagePullSecrets": [{"name": "regcred"}],
      "affinity": {
        "nodeAffinity": {
          "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]},
          "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "preference": {
            "matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["n0"]}]}}]},
        "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 50, "podAffinityTerm": {
          "topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "sink"}},
          "namespaces": ["default"], "matchLabelKeys": ["pod-template-hash"]}}]}},
      "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 0},
                      {"operator": "Exists"}],
      "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["a", "b"]}],
      "dnsConfig": {"nameservers": ["1.1.1.1"], "searches": ["x"],
                    "options": [{"name": "ndots", "value": ""}, {"name": "edns0"}]},
      "readinessGates": [{"conditionType": "www.example.com/ready"}],
      "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway",
        "minDomains": 0, "nodeAffinityPolicy": "Honor", "nodeTaintsPolicy": "Ignore",
        "labelSelector": {"matchExpressions": [{"key": "app", "operator": "Exists"}]}}],
      "os": {"name": "linux"},
      "schedulingGates": [{"name": "wait"}],
      "resourceClaims": [{"name": "gpu", "resourceClaimTemplateName": ""}],
      "volumes": [
        {"name": "cm", "configMap": {"name": "settings", "defaultMode": 0, "optional": false,
                                     "items": [{"key": "a", "path": "a.txt", "mode": 0}]}},
        {"name": "sec", "secret": {"secretName": "s", "defaultMode": 256, "optional": false}},
        {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
        {"name": "scratch", "emptyDir": {}},
        {"name": "host", "hostPath": {"path": "/var/log", "type": ""}},
        {"name": "pvc", "persistentVolumeClaim": {"claimName": "data", "readOnly": true}},
        {"name": "down", "downwardAPI": {"defaultMode": 0, "items": [
          {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
          {"path": "cpu", "resourceFieldRef": {"containerName": "main", "resource": "limits.cpu", "divisor": "1m"}}]}},
        {"name": "proj", "projected": {"defaultMode": 0, "sources": [
          {"serviceAccountToken": {"audience": "vault", "expirationSeconds": 600, "path": "token"}},
          {"configMap": {"name": "ca", "optional": false, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
          {"secret": {"name": "s", "optional": true}},
          {"clusterTrustBundle": {"signerName": "example.com/signer", "path": "bundle.pem", "optional": false,
                                  "labelSelector": {"matchLabels": {"a": "b"}}}},
          {"downwardAPI": {"items": [{"path": "name", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}]}}]}},
        {"name": "eph", "ephemeral": {"volumeClaimTemplate": {"metadata": {"labels": {"v": "1"}}, "spec": {
          "accessModes": ["ReadWriteOnce"], "storageClassName": "", "volumeMode": "Filesystem",
          "resources": {"requests": {"storage": "1Gi"}},
          "dataSourceRef": {"apiGroup": "", "kind": "VolumeSnapshot", "name": "snap", "namespace": ""}}}}},
        {"name": "nfs", "nfs": {"server": "10.0.0.2", "path": "/export", "readOnly": true}},
        {"name": "csi", "csi": {"driver": "example.csi", "readOnly": false, "fsType": "",
                                "volumeAttributes": {"k": "v"}, "nodePublishSecretRef": {"name": "x"}}},
        {"name": "img", "image": {"reference": "busybox:1.36", "pullPolicy": "IfNotPresent"}},
        {"name": "iscsi", "iscsi": {"targetPortal": "1.2.3.4:3260", "iqn": "iqn.x", "lun": 0, "initiatorName": "",
                                    "portals": ["p"]}}],
      "initContainers": [{"name": "init", "image": "busybox", "restartPolicy": "Always", "command": ["sh", "-c", ""],
        "startupProbe": {"exec": {"command": ["true"]}, "failureThreshold": 30, "periodSeconds": 1}}],
      "containers": [{
        "name": "main", "image": "busybox:1.36", "command": ["sh"], "args": ["-c", "sleep 1"], "workingDir": "/w",
        "ports": [{"name": "http", "containerPort": 0, "protocol": "TCP"},
                  {"containerPort": 53, "hostPort": 5353, "protocol": "UDP", "hostIP": "0.0.0.0"}],
        "envFrom": [{"prefix": "CM_", "configMapRef": {"name": "settings", "optional": false}},
                    {"secretRef": {"name": "s", "optional": true}}],
        "env": [{"name": "EMPTY", "value": ""}, {"name": "PLAIN", "value": "v"},
          {"name": "FROM_CM", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "a", "optional": false}}},
          {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
          {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
          {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}}],
        "resources": {"limits": {"cpu": "500m", "memory": "128Mi", "example.com/gpu": "1"},
                      "requests": {"cpu": "0", "memory": "64Mi"}, "claims": [{"name": "gpu", "request": ""}]},
        "resizePolicy": [{"resourceName": "cpu", "restartPolicy": "NotRequired"}],
        "volumeMounts": [{"name": "cm", "mountPath": "/etc/cm", "readOnly": true, "subPath": "",
                          "mountPropagation": "None", "recursiveReadOnly": "Disabled"},
                         {"name": "tmp", "mountPath": "/tmp", "subPathExpr": "$(POD_IP)"}],
        "volumeDevices": [{"name": "raw", "devicePath": "/dev/xvda"}],
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 0, "host": "", "scheme": "HTTPS",
                                      "httpHeaders": [{"name": "X", "value": ""}]},
          "initialDelaySeconds": 3, "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1,
          "failureThreshold": 3, "terminationGracePeriodSeconds": 0},
        "readinessProbe": {"tcpSocket": {"port": "http"}},
        "startupProbe": {"grpc": {"port": 0, "service": ""}},
        "lifecycle": {"postStart": {"exec": {"command": ["echo"]}}, "preStop": {"sleep": {"seconds": 0}}},
        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "FallbackToLogsOnError",
        "imagePullPolicy": "Always",
        "securityContext": {"capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}, "privileged": false,
          "runAsUser": 0, "runAsGroup": 0, "runAsNonRoot": false, "readOnlyRootFilesystem": false,
          "allowPrivilegeEscalation": false, "procMount": "Default",
          "seLinuxOptions": {"user": "u", "role": "r", "type": "t", "level": "l"},
          "seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"}},
        "stdin": true, "stdinOnce": true, "tty": true}]}}}}}}
""")

# Legacy discovery, enough for kubectl to map "cronjob" (create job --from looks it up).
DISCOVERY = {
    "/api": {"kind": "APIVersions", "versions": ["v1"],
             "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]},
    "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
        {"name": "batch", "versions": [{"groupVersion": "batch/v1", "version": "v1"}],
         "preferredVersion": {"groupVersion": "batch/v1", "version": "v1"}}]},
    "/api/v1": {"kind": "APIResourceList", "groupVersion": "v1", "resources": []},
    "/apis/batch/v1": {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "batch/v1", "resources": [
        {"name": "cronjobs", "singularName": "cronjob", "namespaced": True, "kind": "CronJob",
         "verbs": ["create", "get", "list"], "shortNames": ["cj"]},
        {"name": "jobs", "singularName": "job", "namespaced": True, "kind": "Job", "verbs": ["create", "get", "list"]}]},
}


class Recorder:
    """A server that keeps every POST's Content-Type and body and answers 201; GETs see DISCOVERY and
    SINK_CRONJOB."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, str, bytes]] = []
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.method == "GET" and request.path in DISCOVERY:
            return web.json_response(DISCOVERY[request.path])
        if request.method == "GET" and request.path == "/apis/batch/v1/namespaces/default/cronjobs/sink":
            return web.json_response(SINK_CRONJOB)
        if request.method != "POST":
            return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                      "reason": "NotFound", "code": 404}, status=404)
        self.posts.append((request.path, request.headers.get("Content-Type", ""), body))
        return web.json_response({"metadata": {"name": "recorded"}}, status=201)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


async def run_kubectl(kubeconfig: Path, *args: str) -> str:
    with tempfile.TemporaryDirectory(prefix="kubectl-cache-") as cache:
        proc = await asyncio.create_subprocess_exec(
            KUBECTL, "--kubeconfig", str(kubeconfig), "--cache-dir", cache, *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, f"kubectl {' '.join(args)}: {err.decode()}"
    return out.decode()


@pytest.fixture
async def recorder(tmp_path: Path):
    _require(KUBECTL)
    rec = Recorder()
    await rec.start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "rec",
        "clusters": [{"name": "rec", "cluster": {"server": f"http://127.0.0.1:{rec.port}"}}],
        "contexts": [{"name": "rec", "context": {"cluster": "rec", "user": "rec", "namespace": "default"}}],
        "users": [{"name": "rec", "user": {}}]}))
    rec.kubeconfig = kubeconfig
    yield rec
    await rec.stop()


@pytest.mark.parametrize("args", KUBECTL_CREATES, ids=lambda a: " ".join(a[1:3]))
async def test_kubectl_bodies_decode_to_what_kubectl_would_send_as_json(recorder, args) -> None:
    await run_kubectl(recorder.kubeconfig, *args)
    [(path, content_type, body)] = recorder.posts
    assert content_type == protobuf.MEDIA_TYPE, (path, content_type)
    assert body.startswith(protobuf.MAGIC)
    cut = args.index("--") if "--" in args else len(args)
    dry_run = [*args[:cut], "--dry-run=client", "-o", "json", *args[cut:]]
    as_json = json.loads(await run_kubectl(recorder.kubeconfig, *dry_run))
    assert protobuf.decode(body) == as_json


async def test_job_from_a_cronjob_carries_the_whole_template(recorder) -> None:
    await run_kubectl(recorder.kubeconfig, "create", "job", "from-sink", "--from=cronjob/sink")
    [(_, _, body)] = recorder.posts
    job = protobuf.decode(body)
    want = SINK_CRONJOB["spec"]["jobTemplate"]["spec"]
    assert {k: job["spec"][k] for k in ("backoffLimit", "suspend", "completions", "podFailurePolicy")} == {
        k: want[k] for k in ("backoffLimit", "suspend", "completions", "podFailurePolicy")}
    pod, want_pod = job["spec"]["template"]["spec"], want["template"]["spec"]
    for key in ("securityContext", "tolerations", "affinity", "topologySpreadConstraints", "dnsConfig",
                "automountServiceAccountToken", "terminationGracePeriodSeconds", "runtimeClassName"):
        assert pod[key] == want_pod[key], key
    assert pod["volumes"][0] == want_pod["volumes"][0]  # configMap: inline name, defaultMode 0, optional false
    [c], [want_c] = pod["containers"], want_pod["containers"]
    for key in ("ports", "envFrom", "securityContext", "startupProbe", "lifecycle", "resizePolicy"):
        assert c[key] == want_c[key], key
    assert c["livenessProbe"]["httpGet"]["port"] == 0 and c["livenessProbe"]["terminationGracePeriodSeconds"] == 0
    # Plain strings that are empty are unset, as Kubernetes' own JSON leaves them out.
    assert c["env"][0] == {"name": "EMPTY"}
    assert "subPath" not in c["volumeMounts"][0]


async def test_one_captured_body_by_hand(recorder) -> None:
    await run_kubectl(recorder.kubeconfig, "create", "deployment", "web", "--image=nginx", "--replicas=2")
    [(path, _, body)] = recorder.posts
    assert path == "/apis/apps/v1/namespaces/default/deployments"
    assert protobuf.decode(body) == {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "creationTimestamp": None, "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"creationTimestamp": None, "labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx", "resources": {}}]},
            },
            "strategy": {},
        },
        "status": {},
    }
