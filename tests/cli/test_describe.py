"""navctl describe: kubectl's layout for pods, deployments, replica sets, nodes, services and
namespaces, with the object's events (or ``Events: <none>``)."""

from __future__ import annotations

import re

from tests.cli.builders import deployment, event, node, pod, service


def field(out: str, name: str) -> str:
    """The value of a top-level ``Name:   value`` line."""
    m = re.search(rf"^{re.escape(name)}:\s+(.*)$", out, re.M)
    assert m, f"no {name}: line in\n{out}"
    return m.group(1).strip()


async def test_pod_with_events(navctl, api, ns):
    p = await api.create("pods", pod("web", ns, labels={"app": "web", "tier": "front"}))
    await api.create("events", event(ns, p, "Scheduled", "Successfully assigned to n1"))
    await api.create("events", event(ns, p, "Failed", "Error: ImagePullBackOff", type_="Warning"))
    out = await navctl.ok("describe", "pod", "web", "-n", ns)
    assert field(out, "Name") == "web"
    assert field(out, "Namespace") == ns
    assert field(out, "Status") == "Pending"
    assert field(out, "Node") == "<none>"
    assert re.search(r"^Labels:\s+app=web\n\s+tier=front$", out, re.M)
    assert re.search(r"^Containers:\n  main:\n    Image:\s+busybox:1\.36\n    Port:\s+8080/TCP$", out, re.M)
    assert "Restart Count" not in out  # no container status reported yet
    # Top-level keys share one column.
    assert len({len(x) for x in re.findall(r"^(?:Name|Namespace|Status):\s+", out, re.M)}) == 1
    events = out[out.index("Events:"):].splitlines()
    assert re.split(r"\s{2,}", events[1].strip()) == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    rows = [re.split(r"\s{2,}", x.strip()) for x in events[2:]]
    assert [r[1:] for r in rows] == [["Normal", "Scheduled", "pod/web", "Successfully assigned to n1"],
                                     ["Warning", "Failed", "pod/web", "Error: ImagePullBackOff"]]

    live = await api.get("pods", "web", ns)
    live["status"] = {"phase": "Running", "podIP": "10.1.2.3", "podIPs": [{"ip": "10.1.2.3"}],
                      "conditions": [{"type": "Ready", "status": "True"}],
                      "containerStatuses": [{"name": "main", "ready": True, "restartCount": 2, "image": "busybox:1.36",
                                             "imageID": "sha256:abc", "containerID": "navarch://c1",
                                             "state": {"running": {"startedAt": "2026-01-02T03:04:05Z"}}}]}
    await api.update_status("pods", live, ns)
    out = await navctl.ok("describe", "pod", "web", "-n", ns)
    assert field(out, "Status") == "Running"
    assert field(out, "IP") == "10.1.2.3"
    assert re.search(r"^  main:\n    Container ID:\s+navarch://c1\n    Image:\s+busybox:1\.36\n"
                     r"    Image ID:\s+sha256:abc\n", out, re.M)
    assert re.search(r"^    State:\s+Running\n      Started:\s+Fri, 02 Jan 2026 03:04:05 \+0000$", out, re.M)
    assert re.search(r"^    Ready:\s+True$", out, re.M)
    assert re.search(r"^    Restart Count:\s+2$", out, re.M)
    assert re.search(r"^Conditions:\n  Type\s+Status\n  Ready\s+True", out, re.M)


async def test_deployment_with_replicasets(navctl, api, ns):
    d = await api.create("deployments.apps", deployment("web", ns, replicas=3))
    template = d["spec"]["template"]
    owner = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": d["metadata"]["uid"],
             "controller": True}
    for name, tmpl, replicas in (("web-old", {**template, "spec": {"containers": [
            {"name": "app", "image": "nginx:1.24"}]}}, 1), ("web-new", template, 3)):
        t = {**tmpl, "metadata": {"labels": {"app": "web", "pod-template-hash": name}}}
        await api.create("replicasets.apps", {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": ns, "labels": {"app": "web"}, "ownerReferences": [owner]},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web", "pod-template-hash": name}},
                     "template": t}})
    out = await navctl.ok("describe", "deployment/web", "-n", ns)
    assert field(out, "Selector") == "app=web"
    assert field(out, "Replicas") == "3 desired | 0 updated | 0 total | 0 available | 0 unavailable"
    assert field(out, "StrategyType") == "RollingUpdate"
    assert field(out, "RollingUpdateStrategy") == "25% max unavailable, 25% max surge"
    assert field(out, "NewReplicaSet") == "web-new (0/3 replicas created)"
    assert field(out, "OldReplicaSets") == "web-old (0/1 replicas created)"
    assert re.search(r"^Pod Template:\n  Labels:\s+app=web\n  Containers:\n   app:\n    Image:\s+nginx:1\.25",
                     out, re.M)
    assert field(out, "Events") == "<none>"

    rs = await navctl.ok("describe", "rs", "web-new", "-n", ns)
    assert field(rs, "Controlled By") == "Deployment/web"
    assert field(rs, "Replicas") == "0 current / 3 desired"
    assert field(rs, "Pods Status") == "0 Running / 0 Waiting / 0 Succeeded / 0 Failed"


async def test_node_service_namespace(navctl, api, ns):
    name = f"{ns}-node"
    await api.create("nodes", node(name, cpu="8"))
    await api.create("pods", pod("on-node", ns, node=name))
    out = await navctl.ok("describe", "node", name)
    assert field(out, "Name") == name
    assert field(out, "Roles") == "<none>"
    assert field(out, "Unschedulable") == "false"
    assert re.search(r"^Capacity:\n(  \S+:\s+\S+\n)*  cpu:\s+8$", out, re.M)
    assert re.search(r"^  Ready\s+True\s", out, re.M)
    assert re.search(r"^  InternalIP:\s+10\.0\.0\.9$", out, re.M)
    assert field(out, "Non-terminated Pods") == "(1 in total)"
    assert re.search(rf"^  {ns}\s+on-node\s", out, re.M)

    await api.create("services", service("web", ns, port=8080))
    svc = await navctl.ok("describe", "svc", "web", "-n", ns)
    assert field(svc, "Type") == "ClusterIP"
    assert field(svc, "Selector") == "app=web"
    assert field(svc, "Port") == "http  8080/TCP"
    assert field(svc, "TargetPort") == "8080/TCP"
    assert field(svc, "Session Affinity") == "None"

    nsout = await navctl.ok("describe", "namespace", ns)
    assert field(nsout, "Status") == "Active"
    assert f"kubernetes.io/metadata.name={ns}" in field(nsout, "Labels")


async def test_describe_many_and_missing(navctl, api, ns):
    await api.create("pods", pod("a-1", ns))
    await api.create("pods", pod("a-2", ns))
    out = await navctl.ok("describe", "pods", "-n", ns)
    assert len(re.findall(r"^Name:", out, re.M)) == 2
    prefix = await navctl.ok("describe", "pod", "a-", "-n", ns)
    assert len(re.findall(r"^Name:", prefix, re.M)) == 2
    r = await navctl.fails("describe", "pod", "zzz", "-n", ns)
    assert r.err == 'Error from server (NotFound): pods "zzz" not found\n'
    generic = await navctl.ok("describe", "cm", "-n", ns)
    assert generic == ""
