"""Tables as kubectl shows them: columns per kind, pod STATUS, ages."""

from datetime import UTC, datetime, timedelta

import pytest

from api.registry import RESOURCES, ResourceInfo, lookup
from apiserver import tables

NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)


def ago(**kw) -> str:
    return (NOW - timedelta(**kw)).strftime("%Y-%m-%dT%H:%M:%SZ")


def res(kind: str) -> ResourceInfo:
    return next(r for r in RESOURCES if r.kind == kind)


def row(kind: str, obj: dict) -> dict:
    """The cells of one object, keyed by column name."""
    cols = [c["name"] for c in tables.columns_for(kind)]
    cells = tables.cells(kind, obj, NOW)
    assert len(cells) == len(cols)
    return dict(zip(cols, cells, strict=True))


def meta(name="x", age=None, **extra) -> dict:
    m = {"name": name, "namespace": "default", "uid": "u-" + name, "resourceVersion": "7",
         "creationTimestamp": ago(**(age or {"minutes": 5}))}
    m.update(extra)
    return m


# --- ages -------------------------------------------------------------------------------------

@pytest.mark.parametrize("seconds, text", [
    (-5, "<invalid>"), (-1, "0s"), (-0.5, "0s"), (0, "0s"), (5, "5s"), (119, "119s"), (120, "2m"),
    (182, "3m2s"), (599, "9m59s"), (600, "10m"), (630, "10m"), (179 * 60 + 59, "179m"), (3 * 3600, "3h"),
    (5 * 3600, "5h"), (5 * 3600 + 7 * 60, "5h7m"), (8 * 3600, "8h"), (47 * 3600 + 59 * 60, "47h"),
    (48 * 3600, "2d"), (51 * 3600, "2d3h"), (8 * 86400, "8d"), (400 * 86400, "400d"),
    (2 * 365 * 86400, "2y"), (4 * 365 * 86400 + 3 * 86400, "4y3d"), (4 * 365 * 86400, "4y"),
    (9 * 365 * 86400 + 5 * 86400, "9y"),
])
def test_human_duration(seconds, text):
    assert tables.human_duration(seconds) == text


def test_age_and_unknown_age():
    assert row("ConfigMap", {"metadata": meta(age={"hours": 5})})["Age"] == "5h"
    assert row("ConfigMap", {"metadata": {"name": "x"}})["Age"] == "<unknown>"
    micro = {"metadata": {"name": "x", "creationTimestamp": "2024-06-01T11:59:50.123456Z"}}
    assert row("ConfigMap", micro)["Age"] == "9s"


# --- pods -------------------------------------------------------------------------------------

def pod(phase="Running", containers=("a",), statuses=None, init=(), init_statuses=None,
        deleting=False, conditions=None, reason=None, **spec_extra) -> dict:
    spec = {"containers": [{"name": c, "image": "busybox"} for c in containers], **spec_extra}
    if init:
        spec["initContainers"] = [dict(c) if isinstance(c, dict) else {"name": c, "image": "busybox"}
                                  for c in init]
    status: dict = {"phase": phase}
    if statuses is not None:
        status["containerStatuses"] = statuses
    if init_statuses is not None:
        status["initContainerStatuses"] = init_statuses
    if conditions is not None:
        status["conditions"] = conditions
    if reason:
        status["reason"] = reason
    m = meta("p")
    if deleting:
        m["deletionTimestamp"] = ago(seconds=3)
    return {"metadata": m, "spec": spec, "status": status}


def cs(name="a", ready=False, restarts=0, last_finished=None, started=None, **state) -> dict:
    c = {"name": name, "ready": ready, "restartCount": restarts, "state": state or {}}
    if last_finished is not None:
        c["lastState"] = {"terminated": {"exitCode": 1, "finishedAt": last_finished}}
    if started is not None:
        c["started"] = started
    return c


RUNNING = {"running": {"startedAt": ago(minutes=1)}}
READY = [{"type": "Ready", "status": "True"}]


@pytest.mark.parametrize("obj, status, ready", [
    (pod("Pending"), "Pending", "0/1"),
    (pod("Pending", statuses=[cs(waiting={"reason": "ContainerCreating"})]), "ContainerCreating", "0/1"),
    (pod("Pending", statuses=[cs(waiting={"reason": "ErrImagePull"})]), "ErrImagePull", "0/1"),
    (pod(statuses=[cs(ready=True, **RUNNING)]), "Running", "1/1"),
    (pod(containers=("a", "b"), statuses=[cs("a", ready=True, **RUNNING), cs("b", **RUNNING)]),
     "Running", "1/2"),
    (pod(statuses=[cs(waiting={"reason": "CrashLoopBackOff"})]), "CrashLoopBackOff", "0/1"),
    (pod("Succeeded", statuses=[cs(terminated={"exitCode": 0, "reason": "Completed"})]), "Completed", "0/1"),
    (pod("Failed", statuses=[cs(terminated={"exitCode": 1, "reason": "Error"})]), "Error", "0/1"),
    (pod("Failed", statuses=[cs(terminated={"exitCode": 2})]), "ExitCode:2", "0/1"),
    (pod("Failed", statuses=[cs(terminated={"exitCode": 137, "signal": 9})]), "Signal:9", "0/1"),
    (pod(statuses=[cs(ready=True, **RUNNING)], deleting=True), "Terminating", "1/1"),
    (pod("Succeeded", statuses=[cs(terminated={"exitCode": 0, "reason": "Completed"})], deleting=True),
     "Completed", "0/1"),
    (pod(deleting=True, reason="NodeLost"), "Unknown", "0/1"),
    (pod("Failed", reason="Evicted"), "Evicted", "0/1"),
    (pod("Pending", conditions=[{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]),
     "SchedulingGated", "0/1"),
    # One container completed while another still runs: the pod is not Completed.
    (pod(containers=("a", "b"), conditions=READY,
         statuses=[cs("a", ready=True, **RUNNING), cs("b", terminated={"exitCode": 0, "reason": "Completed"})]),
     "Running", "1/2"),
    (pod(containers=("a", "b"),
         statuses=[cs("a", ready=True, **RUNNING), cs("b", terminated={"exitCode": 0, "reason": "Completed"})]),
     "NotReady", "1/2"),
    # Init containers.
    (pod("Pending", init=("i",), init_statuses=[cs("i", waiting={"reason": "PodInitializing"})],
         statuses=[cs(waiting={"reason": "PodInitializing"})]), "Init:0/1", "0/1"),
    (pod("Pending", init=("i", "j"), init_statuses=[
        cs("i", terminated={"exitCode": 0, "reason": "Completed"}), cs("j", **RUNNING)]), "Init:1/2", "0/1"),
    (pod("Pending", init=("i",), init_statuses=[cs("i", waiting={"reason": "CrashLoopBackOff"})]),
     "Init:CrashLoopBackOff", "0/1"),
    (pod("Failed", init=("i",), init_statuses=[cs("i", terminated={"exitCode": 1, "reason": "Error"})]),
     "Init:Error", "0/1"),
    (pod("Pending", init=("i",), init_statuses=[cs("i", terminated={"exitCode": 3})]),
     "Init:ExitCode:3", "0/1"),
    (pod("Pending", init=("i",), init_statuses=[cs("i", terminated={"exitCode": 1, "signal": 15})]),
     "Init:Signal:15", "0/1"),
    # A started sidecar (restartable init container) counts toward READY and does not block.
    (pod(init=({"name": "side", "image": "b", "restartPolicy": "Always"},),
         init_statuses=[cs("side", ready=True, started=True, **RUNNING)],
         statuses=[cs(ready=True, **RUNNING)]), "Running", "2/2"),
])
def test_pod_status_and_ready(obj, status, ready):
    r = row("Pod", obj)
    assert (r["Status"], r["Ready"]) == (status, ready)


def test_pod_restarts_show_when_the_last_one_was():
    obj = pod(containers=("a", "b"), statuses=[
        cs("a", ready=True, restarts=3, last_finished=ago(minutes=5), **RUNNING),
        cs("b", ready=True, restarts=2, last_finished=ago(minutes=9), **RUNNING)])
    assert row("Pod", obj)["Restarts"] == "5 (5m ago)"
    assert row("Pod", pod(statuses=[cs(ready=True, **RUNNING)]))["Restarts"] == "0"
    init = pod("Pending", init=("i",), init_statuses=[
        cs("i", restarts=4, last_finished=ago(seconds=30), waiting={"reason": "CrashLoopBackOff"})])
    assert row("Pod", init)["Restarts"] == "4 (30s ago)"


def test_pod_wide_columns():
    obj = pod(statuses=[cs(ready=True, **RUNNING)], nodeName="n1",
              readinessGates=[{"conditionType": "g1"}, {"conditionType": "g2"}],
              conditions=[{"type": "g1", "status": "True"}, {"type": "g2", "status": "False"}])
    obj["status"]["podIP"] = "10.1.0.5"
    r = row("Pod", obj)
    assert (r["IP"], r["Node"], r["Nominated Node"], r["Readiness Gates"]) == ("10.1.0.5", "n1", "<none>", "1/2")
    assert row("Pod", pod())["IP"] == "<none>"
    wide = [c["name"] for c in tables.columns_for("Pod") if c["priority"] == 1]
    assert wide == ["IP", "Node", "Nominated Node", "Readiness Gates"]
    narrow = [c["name"] for c in tables.columns_for("Pod") if c["priority"] == 0]
    assert narrow == ["Name", "Ready", "Status", "Restarts", "Age"]


# --- table shape ------------------------------------------------------------------------------

def test_to_table_shape_with_partial_object_metadata():
    pods = [pod(statuses=[cs(ready=True, **RUNNING)]), pod("Succeeded")]
    t = tables.to_table(lookup("", "v1", "pods"), pods, list_meta={"resourceVersion": "42"}, now=NOW)
    assert (t["kind"], t["apiVersion"]) == ("Table", "meta.k8s.io/v1")
    assert t["metadata"] == {"resourceVersion": "42"}
    assert t["columnDefinitions"] == list(tables.columns_for("Pod"))
    for c in t["columnDefinitions"]:
        assert set(c) == {"name", "type", "format", "description", "priority"}
    assert t["columnDefinitions"][0]["format"] == "name"
    assert len(t["rows"]) == 2
    obj = t["rows"][0]["object"]
    assert obj == {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": pods[0]["metadata"]}
    assert t["rows"][0]["cells"][:3] == ["p", "1/1", "Running"]
    assert t["rows"][1]["conditions"][0]["type"] == "Completed"
    assert "conditions" not in t["rows"][0]


def test_include_object_variants():
    r = lookup("", "v1", "configmaps")
    cm = {"metadata": meta("c"), "data": {"a": "1"}}
    full = tables.to_table(r, [cm], include_object="Object", now=NOW)["rows"][0]["object"]
    assert full == {**cm, "kind": "ConfigMap", "apiVersion": "v1"}
    assert "kind" not in cm  # the input is not mutated
    none = tables.to_table(r, [cm], include_object="None", now=NOW)["rows"][0]
    assert "object" not in none
    no_cols = tables.to_table(r, [cm], with_column_definitions=False, now=NOW)
    assert no_cols["columnDefinitions"] == []
    with pytest.raises(ValueError):
        tables.to_table(r, [cm], include_object="Everything")


def test_table_event_has_one_row():
    r = lookup("apps", "v1", "deployments")
    obj = {"metadata": meta("web"), "spec": {"replicas": 3}, "status": {"readyReplicas": 1}}
    t = tables.to_table_event(r, obj, now=NOW)
    assert t["kind"] == "Table" and len(t["rows"]) == 1
    assert t["columnDefinitions"] == []
    assert t["metadata"] == {"resourceVersion": "7"}
    assert t["rows"][0]["cells"][:2] == ["web", "1/3"]
    first = tables.to_table_event(r, obj, with_column_definitions=True, now=NOW)
    assert [c["name"] for c in first["columnDefinitions"]][:2] == ["Name", "Ready"]


@pytest.mark.parametrize("r", RESOURCES, ids=lambda r: r.kind)
def test_every_kind_prints_minimal_objects(r):
    """Objects missing spec and status (as a fresh create may be) never break printing."""
    t = tables.to_table(r, [{"metadata": {"name": "m"}}, {}], now=NOW)
    ncols = len(t["columnDefinitions"])
    assert ncols >= 2
    for rw in t["rows"]:
        assert len(rw["cells"]) == ncols
    assert "m" in t["rows"][0]["cells"]


def test_unlisted_kind_gets_name_and_age():
    other = ResourceInfo("example.com", "v1", "Widget", "widgets", True)
    t = tables.to_table(other, [{"metadata": meta("w", age={"days": 2, "hours": 3})}], now=NOW)
    assert [c["name"] for c in t["columnDefinitions"]] == ["Name", "Age"]
    assert t["rows"][0]["cells"] == ["w", "2d3h"]


# --- workloads --------------------------------------------------------------------------------

TEMPLATE = {"spec": {"containers": [{"name": "a", "image": "img:1"}, {"name": "b", "image": "img:2"}]}}
SELECTOR = {"matchLabels": {"app": "web", "tier": "fe"}}


def test_deployment_row():
    d = {"metadata": meta("web", age={"minutes": 3, "seconds": 2}),
         "spec": {"replicas": 3, "selector": SELECTOR, "template": TEMPLATE},
         "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}}
    assert row("Deployment", d) == {"Name": "web", "Ready": "2/3", "Up-to-date": 3, "Available": 2,
                                    "Age": "3m2s", "Containers": "a,b", "Images": "img:1,img:2",
                                    "Selector": "app=web,tier=fe"}
    assert row("Deployment", {"metadata": meta(), "spec": {}})["Ready"] == "0/1"


def test_replicaset_daemonset_statefulset_rows():
    rs = {"metadata": meta("rs"), "spec": {"replicas": 2, "selector": SELECTOR, "template": TEMPLATE},
          "status": {"replicas": 2, "readyReplicas": 1}}
    r = row("ReplicaSet", rs)
    assert (r["Desired"], r["Current"], r["Ready"]) == (2, 2, 1)
    ds = {"metadata": meta("ds"),
          "spec": {"selector": SELECTOR, "template": {"spec": {**TEMPLATE["spec"],
                                                              "nodeSelector": {"os": "linux"}}}},
          "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2,
                     "updatedNumberScheduled": 3, "numberAvailable": 2}}
    r = row("DaemonSet", ds)
    assert [r[k] for k in ("Desired", "Current", "Ready", "Up-to-date", "Available", "Node Selector")] == [
        3, 3, 2, 3, 2, "os=linux"]
    assert row("DaemonSet", {"metadata": meta()})["Node Selector"] == "<none>"
    sts = {"metadata": meta("db"), "spec": {"replicas": 3, "template": TEMPLATE}, "status": {"readyReplicas": 3}}
    assert row("StatefulSet", sts)["Ready"] == "3/3"


@pytest.mark.parametrize("spec, status, completions, duration, state", [
    ({"completions": 3}, {"succeeded": 1, "startTime": ago(minutes=2)}, "1/3", "2m", "Running"),
    ({"completions": 1}, {"succeeded": 1, "startTime": ago(minutes=10), "completionTime": ago(minutes=9),
                          "conditions": [{"type": "Complete", "status": "True"}]}, "1/1", "60s", "Complete"),
    ({"parallelism": 4}, {"succeeded": 0}, "0/1 of 4", "", "Running"),
    ({}, {"conditions": [{"type": "Failed", "status": "True"}]}, "0/1", "", "Failed"),
    ({"suspend": True}, {"conditions": [{"type": "Suspended", "status": "True"}]}, "0/1", "", "Suspended"),
])
def test_job_row(spec, status, completions, duration, state):
    r = row("Job", {"metadata": meta("j"), "spec": spec, "status": status})
    assert (r["Completions"], r["Duration"], r["Status"]) == (completions, duration, state)


def test_cronjob_row():
    cj = {"metadata": meta("cj"),
          "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": TEMPLATE}}},
          "status": {"active": [{"name": "j1"}], "lastScheduleTime": ago(minutes=4)}}
    r = row("CronJob", cj)
    assert [r[k] for k in ("Schedule", "Timezone", "Suspend", "Active", "Last Schedule")] == [
        "*/5 * * * *", "<none>", False, 1, "4m"]
    assert row("CronJob", {"metadata": meta(), "spec": {"schedule": "@daily"}})["Last Schedule"] == "<none>"


# --- services and networking ------------------------------------------------------------------

@pytest.mark.parametrize("spec, status, cluster_ip, external, ports", [
    ({"type": "ClusterIP", "clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.1"],
      "ports": [{"port": 80, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]}, {},
     "10.0.0.1", "<none>", "80/TCP,53/UDP"),
    ({"type": "NodePort", "clusterIP": "10.0.0.2", "ports": [{"port": 80, "nodePort": 30080}],
      "externalIPs": ["1.2.3.4"]}, {}, "10.0.0.2", "1.2.3.4", "80:30080/TCP"),
    ({"type": "LoadBalancer", "clusterIP": "10.0.0.3", "ports": [{"port": 443, "nodePort": 31443}]}, {},
     "10.0.0.3", "<pending>", "443:31443/TCP"),
    ({"type": "LoadBalancer", "clusterIP": "10.0.0.3", "ports": [{"port": 443, "nodePort": 31443}]},
     {"loadBalancer": {"ingress": [{"ip": "5.6.7.8"}, {"hostname": "lb.example"}]}},
     "10.0.0.3", "5.6.7.8,lb.example", "443:31443/TCP"),
    ({"type": "ExternalName", "externalName": "db.example"}, {}, "<none>", "db.example", "<none>"),
    ({"clusterIP": "None", "ports": [{"port": 5432}]}, {}, "None", "<none>", "5432/TCP"),
])
def test_service_row(spec, status, cluster_ip, external, ports):
    r = row("Service", {"metadata": meta("s"), "spec": {"selector": {"app": "db"}, **spec}, "status": status})
    assert (r["Cluster-IP"], r["External-IP"], r["Port(s)"]) == (cluster_ip, external, ports)
    assert r["Type"] == spec.get("type", "ClusterIP")
    assert r["Selector"] == "app=db"


def test_endpoints_and_endpointslice_rows():
    ep = {"metadata": meta("web"), "subsets": [
        {"addresses": [{"ip": "10.1.0.1"}, {"ip": "10.1.0.2"}], "ports": [{"port": 80}, {"port": 443}]}]}
    assert row("Endpoints", ep)["Endpoints"] == "10.1.0.1:80,10.1.0.1:443,10.1.0.2:80 + 1 more..."
    assert row("Endpoints", {"metadata": meta("none")})["Endpoints"] == "<none>"
    eps = {"metadata": meta("web-abc"), "addressType": "IPv4", "ports": [{"port": 80}, {"port": 443}],
           "endpoints": [{"addresses": ["10.1.0.1"]}, {"addresses": ["10.1.0.2"]}]}
    r = row("EndpointSlice", eps)
    assert (r["AddressType"], r["Ports"], r["Endpoints"]) == ("IPv4", "80,443", "10.1.0.1,10.1.0.2")
    empty = row("EndpointSlice", {"metadata": meta(), "addressType": "IPv4"})
    assert (empty["Ports"], empty["Endpoints"]) == ("<unset>", "<unset>")


# --- cluster objects --------------------------------------------------------------------------

@pytest.mark.parametrize("conditions, unschedulable, status", [
    ([{"type": "Ready", "status": "True"}], False, "Ready"),
    ([{"type": "Ready", "status": "False"}], False, "NotReady"),
    ([{"type": "Ready", "status": "Unknown"}], False, "NotReady"),
    ([], False, "Unknown"),
    ([{"type": "Ready", "status": "True"}], True, "Ready,SchedulingDisabled"),
])
def test_node_status(conditions, unschedulable, status):
    node = {"metadata": meta("n1"), "spec": {"unschedulable": unschedulable}, "status": {"conditions": conditions}}
    assert row("Node", node)["Status"] == status


def test_node_row_roles_and_wide():
    node = {"metadata": meta("n1", labels={"node-role.kubernetes.io/control-plane": "",
                                           "node-role.kubernetes.io/worker": "", "kubernetes.io/role": "edge"}),
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                       "addresses": [{"type": "InternalIP", "address": "192.168.1.10"},
                                     {"type": "Hostname", "address": "n1"}],
                       "nodeInfo": {"kubeletVersion": "v1.32.0", "osImage": "Debian", "kernelVersion": "6.1",
                                    "containerRuntimeVersion": "navarch://0.1"}}}
    r = row("Node", node)
    assert r["Roles"] == "control-plane,edge,worker"
    assert [r[k] for k in ("Version", "Internal-IP", "External-IP", "OS-Image", "Kernel-Version",
                           "Container-Runtime")] == ["v1.32.0", "192.168.1.10", "<none>", "Debian", "6.1",
                                                     "navarch://0.1"]
    assert row("Node", {"metadata": meta("n2")})["Roles"] == "<none>"


def test_small_kinds():
    assert row("Namespace", {"metadata": meta("ns"), "status": {"phase": "Terminating"}})["Status"] == "Terminating"
    assert row("ConfigMap", {"metadata": meta(), "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}})[
        "Data"] == 3
    s = row("Secret", {"metadata": meta(), "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}})
    assert (s["Type"], s["Data"]) == ("kubernetes.io/tls", 2)
    assert row("Secret", {"metadata": meta()})["Type"] == "Opaque"
    assert row("ServiceAccount", {"metadata": meta(), "secrets": [{"name": "t"}]})["Secrets"] == 1
    assert row("Lease", {"metadata": meta(), "spec": {"holderIdentity": "node-1"}})["Holder"] == "node-1"
    pc = row("PriorityClass", {"metadata": meta("high"), "value": 1000, "globalDefault": True})
    assert (pc["Value"], pc["Global-Default"]) == (1000, True)


def test_event_row():
    ev = {"metadata": meta("web-0.17a"), "type": "Warning", "reason": "BackOff",
          "message": "Back-off restarting failed container\n", "count": 4,
          "firstTimestamp": ago(minutes=10), "lastTimestamp": ago(seconds=30),
          "involvedObject": {"kind": "Pod", "name": "web-0", "fieldPath": "spec.containers{a}"},
          "source": {"component": "kubelet", "host": "n1"}}
    assert row("Event", ev) == {"Last Seen": "30s", "Type": "Warning", "Reason": "BackOff", "Object": "pod/web-0",
                                "Subobject": "spec.containers{a}", "Source": "kubelet, n1",
                                "Message": "Back-off restarting failed container", "First Seen": "10m",
                                "Count": 4, "Name": "web-0.17a"}
    new_style = {"metadata": meta("e2"), "type": "Normal", "reason": "Scheduled", "message": "ok",
                 "eventTime": "2024-06-01T11:59:00.000000Z", "reportingComponent": "scheduler",
                 "series": {"count": 7, "lastObservedTime": "2024-06-01T11:59:55.000000Z"},
                 "involvedObject": {"kind": "Pod", "name": "p"}}
    r = row("Event", new_style)
    assert (r["Last Seen"], r["First Seen"], r["Count"], r["Source"]) == ("5s", "60s", 7, "scheduler")
    narrow = [c["name"] for c in tables.columns_for("Event") if c["priority"] == 0]
    assert narrow == ["Last Seen", "Type", "Reason", "Object", "Message"]


@pytest.mark.parametrize("selector, text", [
    (None, ""),
    ({}, ""),
    ({"matchLabels": {"b": "2", "a": "1"}}, "a=1,b=2"),
    ({"matchLabels": {"app": "web"}, "matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["fe", "be"]},
        {"key": "canary", "operator": "DoesNotExist"},
        {"key": "env", "operator": "NotIn", "values": ["dev"]},
        {"key": "zone", "operator": "Exists"}]}, "app=web,!canary,env notin (dev),tier in (be,fe),zone"),
])
def test_format_selector(selector, text):
    assert tables.format_selector(selector) == text
