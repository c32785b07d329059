"""``navctl describe``: kubectl-style reports for pods, deployments, replica sets, nodes, services
and namespaces (a generic report for other kinds), each followed by the object's events.

A report is a list of tab-separated lines aligned like Go's tabwriter (padding 2): consecutive
lines that share a column are aligned together, a line without a tab ends the block.
"""

from __future__ import annotations

import argparse
from typing import Any

from api import errors, quantity
from api.registry import ResourceInfo
from cli import manifests
from cli.context import CLIError, Ctx, Failed, info_for, split_targets
from cli.printing import age, parse_time
from client.rest import Client

B = argparse.BooleanOptionalAction


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("describe", parents=[common], help="Show details of a specific resource or group of resources")
    p.add_argument("targets", nargs="*")
    p.add_argument("-f", "--filename", action="append", default=[])
    p.add_argument("-l", "--selector")
    p.add_argument("-A", "--all-namespaces", action=B, default=False)
    p.add_argument("--show-events", action=B, default=True)
    p.set_defaults(func=run)


# -------------------------------------------------------------------------- layout

class Report:
    def __init__(self) -> None:
        self.lines: list[list[str]] = []

    def add(self, level: int, key: str, value: Any = None, *, raw: bool = False) -> None:
        """A ``key: value`` line (a title line when value is None); ``raw`` prints "" as is."""
        indent = "  " * level
        if value is None:
            self.lines.append([indent + key])
        else:
            self.lines.append([indent + key, str(value) if raw else _text(value)])

    def multi(self, level: int, key: str, values: list[str]) -> None:
        """``Labels:  a=b`` then one more line per extra value, aligned under the first."""
        if not values:
            self.add(level, key, "<none>")
            return
        self.add(level, key, values[0])
        for v in values[1:]:
            self.lines.append(["  " * level, v])

    def table(self, level: int, rows: list[list[str]]) -> None:
        """Rows of cells, aligned by ``render`` together with neighbouring tabbed lines, as
        kubectl's describers write tables into the same tabwriter."""
        indent = "  " * level
        for row in rows:
            self.lines.append([indent + row[0], *row[1:]] if row else [indent])

    def render(self, pad: int = 2) -> str:
        lines = self.lines
        n = len(lines)
        widths = [[0] * (len(line) - 1) for line in lines]
        maxcols = max((len(line) - 1 for line in lines), default=0)
        for j in range(maxcols):
            i = 0
            while i < n:
                if len(lines[i]) - 1 > j:
                    k = i
                    while k < n and len(lines[k]) - 1 > j:
                        k += 1
                    w = max(len(lines[m][j]) for m in range(i, k)) + pad
                    for m in range(i, k):
                        widths[m][j] = w
                    i = k
                else:
                    i += 1
        out = []
        for i, line in enumerate(lines):
            out.append("".join(c.ljust(widths[i][j]) for j, c in enumerate(line[:-1])) + line[-1])
        return "\n".join(out) + "\n"


def _text(value: Any) -> str:
    if value is None or value == "":
        return "<none>"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _kv(d: dict[str, str] | None) -> list[str]:
    return [f"{k}={v}" for k, v in sorted((d or {}).items())]


# kubectl leaves this one out of describe: it repeats the manifest.
HIDDEN_ANNOTATIONS = {"kubectl.kubernetes.io/last-applied-configuration"}


def _annotations(d: dict[str, str] | None) -> list[str]:
    return [f"{k}: {v}" for k, v in sorted((d or {}).items()) if k not in HIDDEN_ANNOTATIONS]


ZERO = "Mon, 01 Jan 0001 00:00:00 +0000"  # how Go prints an unset time


def _time(ts: str | None, unset: str = "<unset>") -> str:
    t = parse_time(ts)
    if t is None:
        return unset
    return t.strftime("%a, %d %b %Y %H:%M:%S %z")


def _selector(sel: dict[str, Any] | None) -> str:
    if not sel:
        return "<none>"
    parts = [f"{k}={v}" for k, v in sorted((sel.get("matchLabels") or {}).items())]
    for e in sel.get("matchExpressions") or []:
        op = e.get("operator")
        vals = ",".join(e.get("values") or [])
        parts.append({"In": f"{e['key']} in ({vals})", "NotIn": f"{e['key']} notin ({vals})",
                      "Exists": e["key"], "DoesNotExist": f"!{e['key']}"}.get(op, f"{e['key']} {op}"))
    return ",".join(parts) or "<none>"


def _match_labels(sel: dict[str, Any] | None) -> str:
    return _selector(sel) if sel else ""


def _common(r: Report, obj: dict[str, Any], *, namespaced: bool = True) -> None:
    meta = obj.get("metadata") or {}
    r.add(0, "Name:", meta.get("name"))
    if namespaced:
        r.add(0, "Namespace:", meta.get("namespace"))


# -------------------------------------------------------------------------- events

async def events_for(client: Client, info: ResourceInfo, obj: dict[str, Any]) -> list[dict[str, Any]]:
    meta = obj.get("metadata") or {}
    fields = [f"involvedObject.name={meta.get('name', '')}"]
    if info.namespaced:
        fields.append(f"involvedObject.namespace={meta.get('namespace', '')}")
    else:
        fields.append(f"involvedObject.kind={info.kind}")
    if meta.get("uid") and info.namespaced:
        fields.append(f"involvedObject.uid={meta['uid']}")
    try:
        lst = await client.list_all("events", meta.get("namespace") if info.namespaced else None,
                                    field_selector=",".join(fields))
    except errors.StatusError:
        return []
    items = lst.get("items") or []
    items.sort(key=lambda e: (_event_time(e) or "", _rv(e)))
    return items


def _rv(obj: dict[str, Any]) -> int:
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


def _event_time(e: dict[str, Any]) -> str | None:
    return (e.get("lastTimestamp") or e.get("eventTime") or (e.get("series") or {}).get("lastObservedTime")
            or (e.get("metadata") or {}).get("creationTimestamp"))


def add_events(r: Report, events: list[dict[str, Any]]) -> None:
    if not events:
        r.add(0, "Events:", "<none>")
        return
    r.add(0, "Events:")
    rows = [["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]]
    for e in events:
        inv = e.get("involvedObject") or {}
        seen = age(_event_time(e))
        count = e.get("count") or (e.get("series") or {}).get("count") or 1
        if count > 1:
            seen = f"{seen} (x{count} over {age(e.get('firstTimestamp') or _event_time(e))})"
        rows.append([seen, e.get("type") or "", e.get("reason") or "",
                     f"{str(inv.get('kind', '')).lower()}/{inv.get('name', '')}",
                     (e.get("message") or "").strip()])
    r.table(1, rows)


# -------------------------------------------------------------------------- pods

def _container_state(r: Report, level: int, title: str, state: dict[str, Any] | None) -> None:
    if not state:
        if title == "State:":
            r.add(level, title, "Waiting")
        return
    if "running" in state:
        r.add(level, title, "Running")
        r.add(level + 1, "Started:", _time((state["running"] or {}).get("startedAt")))
    elif "waiting" in state:
        r.add(level, title, "Waiting")
        if (state["waiting"] or {}).get("reason"):
            r.add(level + 1, "Reason:", state["waiting"]["reason"])
    elif "terminated" in state:
        t = state["terminated"] or {}
        r.add(level, title, "Terminated")
        r.add(level + 1, "Reason:", t.get("reason"))
        if t.get("message"):
            r.add(level + 1, "Message:", t["message"])
        r.add(level + 1, "Exit Code:", t.get("exitCode", 0))
        r.add(level + 1, "Started:", _time(t.get("startedAt")))
        r.add(level + 1, "Finished:", _time(t.get("finishedAt")))


def _ports(c: dict[str, Any]) -> tuple[str, str]:
    ports = c.get("ports") or []
    if not ports:
        return "<none>", "<none>"
    port = ", ".join(f"{p.get('containerPort')}/{p.get('protocol', 'TCP')}" for p in ports)
    host = ", ".join(f"{p.get('hostPort', 0)}/{p.get('protocol', 'TCP')}" for p in ports)
    return port, host


def _resources(r: Report, level: int, c: dict[str, Any]) -> None:
    res = c.get("resources") or {}
    for title, key in (("Limits:", "limits"), ("Requests:", "requests")):
        vals = res.get(key) or {}
        if vals:
            r.add(level, title)
            for k, v in sorted(vals.items()):
                r.add(level + 1, f"{k}:", v)


def _env(r: Report, level: int, c: dict[str, Any]) -> None:
    env = c.get("env") or []
    if not env and not c.get("envFrom"):
        r.add(level, "Environment:", "<none>")
        return
    r.add(level, "Environment:")
    for e in env:
        if "value" in e or "valueFrom" not in e:
            r.add(level + 1, f"{e.get('name')}:", e.get("value", ""))
        else:
            src = e["valueFrom"]
            if "configMapKeyRef" in src:
                ref = src["configMapKeyRef"]
                text = f"<set to the key '{ref.get('key')}' of config map '{ref.get('name')}'>"
            elif "secretKeyRef" in src:
                ref = src["secretKeyRef"]
                text = f"<set to the key '{ref.get('key')}' in secret '{ref.get('name')}'>"
            elif "fieldRef" in src:
                text = f"({src['fieldRef'].get('apiVersion', 'v1')}:{src['fieldRef'].get('fieldPath')})"
            else:
                text = "<set from a source>"
            r.add(level + 1, f"{e.get('name')}:", text)
    for ef in c.get("envFrom") or []:
        if "configMapRef" in ef:
            r.add(level + 1, f"{ef['configMapRef'].get('name')}", "ConfigMap  Optional: false")
        elif "secretRef" in ef:
            r.add(level + 1, f"{ef['secretRef'].get('name')}", "Secret  Optional: false")


def _containers(r: Report, level: int, title: str, containers: list[dict[str, Any]],
                statuses: dict[str, dict[str, Any]] | None, *, template: bool = False) -> None:
    if not containers:
        return
    r.add(level, title)
    for c in containers:
        st = (statuses or {}).get(c.get("name", ""))
        if template:
            # kubectl's pod-template layout: names one space in, their fields one level in.
            r.lines.append(["  " * level + f" {c.get('name')}:"])
            lv = level + 1
        else:
            r.add(level + 1, f"{c.get('name')}:")
            lv = level + 2
        if st is not None:
            r.add(lv, "Container ID:", st.get("containerID", ""), raw=True)
        r.add(lv, "Image:", c.get("image"))
        if st is not None:
            r.add(lv, "Image ID:", st.get("imageID", ""), raw=True)
        port, host = _ports(c)
        r.add(lv, "Ports:" if len(c.get("ports") or []) > 1 else "Port:", port)
        r.add(lv, "Host Ports:" if len(c.get("ports") or []) > 1 else "Host Port:", host)
        for key, t in (("command", "Command:"), ("args", "Args:")):
            if c.get(key):
                r.add(lv, t)
                for part in c[key]:
                    r.lines.append(["  " * (lv + 1) + str(part)])
        if st is not None:
            _container_state(r, lv, "State:", st.get("state"))
            if st.get("lastState"):
                _container_state(r, lv, "Last State:", st["lastState"])
            r.add(lv, "Ready:", "True" if st.get("ready") else "False")
            r.add(lv, "Restart Count:", st.get("restartCount", 0))
        _resources(r, lv, c)
        _env(r, lv, c)
        mounts = c.get("volumeMounts") or []
        if mounts:
            r.add(lv, "Mounts:")
            for m in mounts:
                mode = "ro" if m.get("readOnly") else "rw"
                r.lines.append(["  " * (lv + 1) + f"{m.get('mountPath')} from {m.get('name')} ({mode})"])
        else:
            r.add(lv, "Mounts:", "<none>")


# How kubectl titles the common volume sources, and the fields it lists for each.
VOLUME_TYPES: dict[str, tuple[str, list[tuple[str, str, Any]]]] = {
    "emptyDir": ("EmptyDir (a temporary directory that shares a pod's lifetime)",
                 [("Medium:", "medium", ""), ("SizeLimit:", "sizeLimit", "<unset>")]),
    "configMap": ("ConfigMap (a volume populated by a ConfigMap)",
                  [("Name:", "name", ""), ("Optional:", "optional", "false")]),
    "secret": ("Secret (a volume populated by a Secret)",
               [("SecretName:", "secretName", ""), ("Optional:", "optional", "false")]),
    "hostPath": ("HostPath (bare host directory volume)", [("Path:", "path", ""), ("HostPathType:", "type", "")]),
    "persistentVolumeClaim": ("PersistentVolumeClaim (a reference to a PersistentVolumeClaim in the same "
                              "namespace)", [("ClaimName:", "claimName", ""), ("ReadOnly:", "readOnly", "false")]),
}


def _volumes(r: Report, level: int, volumes: list[dict[str, Any]]) -> None:
    if not volumes:
        r.add(level, "Volumes:", "<none>")
        return
    r.add(level, "Volumes:")
    for v in volumes:
        r.add(level + 1, f"{v.get('name')}:")
        kinds = [k for k in v if k != "name"]
        if not kinds:
            continue
        kind = kinds[0]
        src = v.get(kind) or {}
        known = VOLUME_TYPES.get(kind)
        if known:
            r.add(level + 2, "Type:", known[0])
            for title, key, default in known[1]:
                r.add(level + 2, title, src.get(key, default), raw=True)
            continue
        r.add(level + 2, "Type:", f"{kind[0].upper()}{kind[1:]}")
        for k, val in src.items():
            if not isinstance(val, dict | list):
                r.add(level + 2, f"{k[0].upper()}{k[1:]}:", val)


def _pod_template(r: Report, level: int, template: dict[str, Any]) -> None:
    meta = template.get("metadata") or {}
    spec = template.get("spec") or {}
    r.multi(level + 1, "Labels:", _kv(meta.get("labels")))
    if meta.get("annotations"):
        r.multi(level + 1, "Annotations:", _annotations(meta.get("annotations")))
    if spec.get("serviceAccountName"):
        r.add(level + 1, "Service Account:", spec["serviceAccountName"])
    _containers(r, level + 1, "Init Containers:", spec.get("initContainers") or [], None, template=True)
    _containers(r, level + 1, "Containers:", spec.get("containers") or [], None, template=True)
    _volumes(r, level + 1, spec.get("volumes") or [])
    if spec.get("nodeSelector"):
        r.multi(level + 1, "Node-Selectors:", _kv(spec["nodeSelector"]))
    else:
        r.add(level + 1, "Node-Selectors:", "<none>")
    tols = [_toleration(t) for t in spec.get("tolerations") or []]
    r.multi(level + 1, "Tolerations:", tols)


def pod_template_report(template: dict[str, Any]) -> str:
    r = Report()
    r.add(0, "Pod Template:")
    _pod_template(r, 0, template)
    return r.render()


def _toleration(t: dict[str, Any]) -> str:
    text = t.get("key", "")
    if t.get("value"):
        text += f"={t['value']}"
    if t.get("effect"):
        text += f":{t['effect']}"
    if t.get("operator") == "Exists" and not t.get("key"):
        text = "op=Exists" + (f":{t['effect']}" if t.get("effect") else "")
    elif t.get("operator") == "Exists":
        text += " op=Exists"
    if t.get("tolerationSeconds") is not None:
        text += f" for {t['tolerationSeconds']}s"
    return text


def _controlled_by(r: Report, meta: dict[str, Any]) -> None:
    for ref in meta.get("ownerReferences") or []:
        if ref.get("controller"):
            r.add(0, "Controlled By:", f"{ref.get('kind')}/{ref.get('name')}")


async def describe_pod(client: Client, info: ResourceInfo, pod: dict[str, Any], r: Report) -> None:
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    _common(r, pod)
    r.add(0, "Priority:", spec.get("priority", 0))
    if spec.get("priorityClassName"):
        r.add(0, "Priority Class Name:", spec["priorityClassName"])
    r.add(0, "Service Account:", spec.get("serviceAccountName") or spec.get("serviceAccount") or "default")
    node = spec.get("nodeName")
    r.add(0, "Node:", f"{node}/{status.get('hostIP', '')}" if node else "<none>")
    if status.get("startTime"):
        r.add(0, "Start Time:", _time(status["startTime"]))
    r.multi(0, "Labels:", _kv(meta.get("labels")))
    r.multi(0, "Annotations:", _annotations(meta.get("annotations")))
    phase = status.get("phase") or "Pending"
    if meta.get("deletionTimestamp"):
        r.add(0, "Status:", f"Terminating (lasts {age(meta['deletionTimestamp'])})")
        r.add(0, "Termination Grace Period:", f"{meta.get('deletionGracePeriodSeconds', 30)}s")
    else:
        r.add(0, "Status:", phase)
    if status.get("reason"):
        r.add(0, "Reason:", status["reason"])
    if status.get("message"):
        r.add(0, "Message:", status["message"])
    r.add(0, "IP:", status.get("podIP") or "", raw=True)
    ips = [x.get("ip") for x in status.get("podIPs") or [] if x.get("ip")]
    if ips:
        r.add(0, "IPs:")
        for ip in ips:
            r.add(1, "IP:", ip)
    else:
        r.add(0, "IPs:", "<none>")
    _controlled_by(r, meta)
    init_st = {s.get("name", ""): s for s in status.get("initContainerStatuses") or []}
    cont_st = {s.get("name", ""): s for s in status.get("containerStatuses") or []}
    _containers(r, 0, "Init Containers:", spec.get("initContainers") or [], init_st)
    _containers(r, 0, "Containers:", spec.get("containers") or [], cont_st)
    conds = status.get("conditions") or []
    if conds:
        r.add(0, "Conditions:")
        r.table(1, [["Type", "Status"]] + [[f"{c.get('type', '')} ", f"{c.get('status', '')} "] for c in conds])
    _volumes(r, 0, spec.get("volumes") or [])
    if status.get("qosClass"):
        r.add(0, "QoS Class:", status["qosClass"])
    r.multi(0, "Node-Selectors:", _kv(spec.get("nodeSelector")))
    r.multi(0, "Tolerations:", [_toleration(t) for t in spec.get("tolerations") or []])


# -------------------------------------------------------------------------- workloads

def _owned_by(obj: dict[str, Any], uid: str) -> bool:
    return any(ref.get("uid") == uid and ref.get("controller") for ref in
               (obj.get("metadata") or {}).get("ownerReferences") or [])


def _revision(rs: dict[str, Any]) -> int:
    try:
        return int(((rs.get("metadata") or {}).get("annotations") or {}).get("deployment.kubernetes.io/revision", 0))
    except ValueError:
        return 0


def _strip_hash(template: dict[str, Any]) -> dict[str, Any]:
    import copy
    t = copy.deepcopy(template or {})
    labels = (t.get("metadata") or {}).get("labels")
    if labels:
        labels.pop("pod-template-hash", None)
    return t


async def owned_replicasets(client: Client, deploy: dict[str, Any]) -> list[dict[str, Any]]:
    meta = deploy.get("metadata") or {}
    sel = _match_labels((deploy.get("spec") or {}).get("selector"))
    lst = await client.list_all("replicasets", meta.get("namespace"), label_selector=sel or None)
    return [rs for rs in lst.get("items") or [] if _owned_by(rs, meta.get("uid", ""))]


def new_replicaset(deploy: dict[str, Any], sets: list[dict[str, Any]]) -> dict[str, Any] | None:
    want = _strip_hash((deploy.get("spec") or {}).get("template") or {})
    from api.patch import json_equal
    same = [rs for rs in sets if json_equal(_strip_hash((rs.get("spec") or {}).get("template") or {}), want)]
    if not same:
        return None
    return min(same, key=lambda rs: (rs.get("metadata") or {}).get("creationTimestamp") or "")


def _rs_brief(rs: dict[str, Any]) -> str:
    st = rs.get("status") or {}
    return (f"{rs['metadata']['name']} ({st.get('replicas', 0)}/{(rs.get('spec') or {}).get('replicas', 0)} "
            "replicas created)")


async def describe_deployment(client: Client, info: ResourceInfo, d: dict[str, Any], r: Report) -> None:
    meta = d.get("metadata") or {}
    spec = d.get("spec") or {}
    st = d.get("status") or {}
    _common(r, d)
    r.add(0, "CreationTimestamp:", _time(meta.get("creationTimestamp")))
    r.multi(0, "Labels:", _kv(meta.get("labels")))
    r.multi(0, "Annotations:", _annotations(meta.get("annotations")))
    r.add(0, "Selector:", _selector(spec.get("selector")))
    desired = spec.get("replicas", 1)
    r.add(0, "Replicas:", f"{desired} desired | {st.get('updatedReplicas', 0)} updated | "
          f"{st.get('replicas', 0)} total | {st.get('availableReplicas', 0)} available | "
          f"{st.get('unavailableReplicas', 0)} unavailable")
    strategy = spec.get("strategy") or {}
    r.add(0, "StrategyType:", strategy.get("type", "RollingUpdate"))
    r.add(0, "MinReadySeconds:", spec.get("minReadySeconds", 0))
    if strategy.get("type", "RollingUpdate") == "RollingUpdate":
        ru = strategy.get("rollingUpdate") or {}
        r.add(0, "RollingUpdateStrategy:", f"{ru.get('maxUnavailable', '25%')} max unavailable, "
              f"{ru.get('maxSurge', '25%')} max surge")
    if spec.get("paused"):
        r.add(0, "Paused:", "true")
    r.add(0, "Pod Template:")
    _pod_template(r, 0, spec.get("template") or {})
    conds = st.get("conditions") or []
    if conds:
        r.add(0, "Conditions:")
        r.table(1, [["Type", "Status", "Reason"], ["----", "------", "------"]]
                + [[f"{c.get('type', '')} ", c.get("status", ""), c.get("reason", "")] for c in conds])
    sets = await owned_replicasets(client, d)
    new = new_replicaset(d, sets)
    old = [rs for rs in sets if rs is not new and (rs.get("spec") or {}).get("replicas", 0) > 0]
    if old or new:
        r.add(0, "OldReplicaSets:", ", ".join(_rs_brief(rs) for rs in old) or "<none>")
        r.add(0, "NewReplicaSet:", _rs_brief(new) if new else "<none>")


async def describe_replicaset(client: Client, info: ResourceInfo, rs: dict[str, Any], r: Report) -> None:
    meta = rs.get("metadata") or {}
    spec = rs.get("spec") or {}
    st = rs.get("status") or {}
    _common(r, rs)
    r.add(0, "Selector:", _selector(spec.get("selector")))
    r.multi(0, "Labels:", _kv(meta.get("labels")))
    r.multi(0, "Annotations:", _annotations(meta.get("annotations")))
    _controlled_by(r, meta)
    r.add(0, "Replicas:", f"{st.get('replicas', 0)} current / {spec.get('replicas', 1)} desired")
    sel = _match_labels(spec.get("selector"))
    pods = await client.list_all("pods", meta.get("namespace"), label_selector=sel or None)
    phases = [((p.get("status") or {}).get("phase") or "Pending") for p in pods.get("items") or []
              if _owned_by(p, meta.get("uid", ""))]
    r.add(0, "Pods Status:", f"{phases.count('Running')} Running / {phases.count('Pending')} Waiting / "
          f"{phases.count('Succeeded')} Succeeded / {phases.count('Failed')} Failed")
    r.add(0, "Pod Template:")
    _pod_template(r, 0, spec.get("template") or {})
    conds = st.get("conditions") or []
    if conds:
        r.add(0, "Conditions:")
        r.table(1, [["Type", "Status", "Reason"]] + [[c.get("type", ""), c.get("status", ""),
                                                       c.get("reason", "")] for c in conds])


# -------------------------------------------------------------------------- nodes, services, namespaces

async def describe_node(client: Client, info: ResourceInfo, node: dict[str, Any], r: Report) -> None:
    meta = node.get("metadata") or {}
    spec = node.get("spec") or {}
    st = node.get("status") or {}
    labels = meta.get("labels") or {}
    roles = sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/"))
    r.add(0, "Name:", meta.get("name"))
    r.add(0, "Roles:", ",".join(roles) or "<none>")
    r.multi(0, "Labels:", _kv(labels))
    r.multi(0, "Annotations:", _annotations(meta.get("annotations")))
    r.add(0, "CreationTimestamp:", _time(meta.get("creationTimestamp")))
    taints = [f"{t.get('key')}{'=' + t['value'] if t.get('value') else ''}:{t.get('effect')}"
              for t in spec.get("taints") or []]
    r.multi(0, "Taints:", taints)
    r.add(0, "Unschedulable:", bool(spec.get("unschedulable")))
    conds = st.get("conditions") or []
    if conds:
        r.add(0, "Conditions:")
        rows = [["Type", "Status", "LastHeartbeatTime", "LastTransitionTime", "Reason", "Message"],
                ["----", "------", "-----------------", "------------------", "------", "-------"]]
        rows += [[f"{c.get('type', '')} ", f"{c.get('status', '')} ", f"{_time(c.get('lastHeartbeatTime'), ZERO)} ",
                  f"{_time(c.get('lastTransitionTime'), ZERO)} ", f"{c.get('reason', '')} ", c.get("message", "")]
                 for c in conds]
        r.table(1, rows)
    addrs = st.get("addresses") or []
    if addrs:
        r.add(0, "Addresses:")
        for ad in addrs:
            r.add(1, f"{ad.get('type')}:", ad.get("address"))
    for title, key in (("Capacity:", "capacity"), ("Allocatable:", "allocatable")):
        vals = st.get(key) or {}
        if vals:
            r.add(0, title)
            for k, v in sorted(vals.items()):
                r.add(1, f"{k}:", v)
    ni = st.get("nodeInfo") or {}
    # kubectl prints the section even when the kubelet has not filled it in.
    r.add(0, "System Info:")
    for title, key in (("Machine ID", "machineID"), ("System UUID", "systemUUID"), ("Boot ID", "bootID"),
                       ("Kernel Version", "kernelVersion"), ("OS Image", "osImage"),
                       ("Operating System", "operatingSystem"), ("Architecture", "architecture"),
                       ("Container Runtime Version", "containerRuntimeVersion"),
                       ("Kubelet Version", "kubeletVersion"), ("Kube-Proxy Version", "kubeProxyVersion")):
        r.add(1, f"{title}:", ni.get(key, ""), raw=True)
    if spec.get("podCIDR"):
        r.add(0, "PodCIDR:", spec["podCIDR"])
    try:
        pods = await client.list_all("pods", None, field_selector=f"spec.nodeName={meta.get('name')}")
        items = [p for p in pods.get("items") or []
                 if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
    except errors.StatusError:
        items = []
    allocatable = st.get("allocatable") or {}
    r.add(0, "Non-terminated Pods:", f"({len(items)} in total)")
    rows = [["Namespace", "Name", "", "CPU Requests", "CPU Limits", "Memory Requests", "Memory Limits", "Age"],
            ["---------", "----", "", "------------", "----------", "---------------", "-------------", "---"]]
    totals: dict[tuple[str, str], list[str]] = {}
    for p in items:
        pm = p.get("metadata") or {}
        sums = {(kind, res): _pod_total(p, kind, res) for kind in ("requests", "limits")
                for res in ("cpu", "memory")}
        for key, values in sums.items():
            totals.setdefault(key, []).extend(values)
        rows.append([pm.get("namespace", ""), pm.get("name", ""), ""]
                    + [_amount(sums[(k, res)], allocatable.get(res)) for res in ("cpu", "memory")
                       for k in ("requests", "limits")] + [age(pm.get("creationTimestamp"))])
    r.table(1, rows)
    r.add(0, "Allocated resources:")
    r.add(1, "(Total limits may be over 100 percent, i.e., overcommitted.)")
    res_rows = [["Resource", "Requests", "Limits"], ["--------", "--------", "------"]]
    for res in ("cpu", "memory", "ephemeral-storage"):
        res_rows.append([res] + [_amount(totals.get((k, res)) or [], allocatable.get(res))
                                 for k in ("requests", "limits")])
    r.table(1, res_rows)


def _pod_total(pod: dict[str, Any], kind: str, res: str) -> list[str]:
    return [str(v) for c in (pod.get("spec") or {}).get("containers") or []
            if (v := ((c.get("resources") or {}).get(kind) or {}).get(res)) is not None]


def _amount(values: list[str], allocatable: Any) -> str:
    """``350m (8%)``: the sum of quantities and its share of the node's allocatable."""
    try:
        total = sum((quantity.parse(v) for v in values), start=quantity.parse(0))
        text = quantity.format_value(total, quantity.format_of(values[0])) if values else "0"
        alloc = quantity.parse(allocatable) if allocatable is not None else 0
    except ValueError:
        return "+".join(values) or "0"
    share = int(total * 100 / alloc) if alloc else 0
    return f"{text} ({share}%)"


async def describe_service(client: Client, info: ResourceInfo, svc: dict[str, Any], r: Report) -> None:
    meta = svc.get("metadata") or {}
    spec = svc.get("spec") or {}
    _common(r, svc)
    r.multi(0, "Labels:", _kv(meta.get("labels")))
    r.multi(0, "Annotations:", _annotations(meta.get("annotations")))
    r.add(0, "Selector:", ",".join(_kv(spec.get("selector"))) or "<none>")
    r.add(0, "Type:", spec.get("type", "ClusterIP"))
    if spec.get("ipFamilyPolicy"):
        r.add(0, "IP Family Policy:", spec["ipFamilyPolicy"])
    if spec.get("ipFamilies"):
        r.add(0, "IP Families:", ",".join(spec["ipFamilies"]))
    r.add(0, "IP:", spec.get("clusterIP") or "None")
    r.add(0, "IPs:", ",".join(spec.get("clusterIPs") or []) or "<none>")
    if spec.get("externalName"):
        r.add(0, "External Name:", spec["externalName"])
    endpoints: list[str] = []
    try:
        ep = await client.get("endpoints", meta.get("name", ""), meta.get("namespace"))
        for subset in ep.get("subsets") or []:
            for ad in subset.get("addresses") or []:
                for port in subset.get("ports") or [{}]:
                    endpoints.append(f"{ad.get('ip')}:{port.get('port')}" if port else ad.get("ip", ""))
    except errors.StatusError:
        pass
    for p in spec.get("ports") or []:
        name = p.get("name") or "<unset>"
        proto = p.get("protocol", "TCP")
        r.add(0, "Port:", f"{name}  {p.get('port')}/{proto}")
        r.add(0, "TargetPort:", f"{p.get('targetPort', p.get('port'))}/{proto}")
        if p.get("nodePort"):
            r.add(0, "NodePort:", f"{name}  {p['nodePort']}/{proto}")
        r.add(0, "Endpoints:", ",".join(endpoints) or "")
    r.add(0, "Session Affinity:", spec.get("sessionAffinity", "None"))
    if spec.get("externalTrafficPolicy"):
        r.add(0, "External Traffic Policy:", spec["externalTrafficPolicy"])
    if spec.get("internalTrafficPolicy"):
        r.add(0, "Internal Traffic Policy:", spec["internalTrafficPolicy"])


async def describe_namespace(client: Client, info: ResourceInfo, ns: dict[str, Any], r: Report) -> None:
    meta = ns.get("metadata") or {}
    r.add(0, "Name:", meta.get("name"))
    r.multi(0, "Labels:", _kv(meta.get("labels")))
    r.multi(0, "Annotations:", _annotations(meta.get("annotations")))
    r.add(0, "Status:", (ns.get("status") or {}).get("phase", "Active"))


def _generic_value(r: Report, level: int, key: str, value: Any) -> None:
    title = f"{key[:1].upper()}{key[1:]}:"
    if isinstance(value, dict):
        if not value:
            r.add(level, title, "<none>")
            return
        r.add(level, title)
        for k, v in value.items():
            _generic_value(r, level + 1, k, v)
    elif isinstance(value, list):
        if not value:
            r.add(level, title, "<none>")
            return
        r.add(level, title)
        for item in value:
            if isinstance(item, dict):
                first = True
                for k, v in item.items():
                    _generic_value(r, level + 1, ("" if not first else "") + k, v)
                    first = False
            else:
                r.lines.append(["  " * (level + 1) + _text(item)])
    else:
        r.add(level, title, value)


async def describe_generic(client: Client, info: ResourceInfo, obj: dict[str, Any], r: Report) -> None:
    meta = obj.get("metadata") or {}
    _common(r, obj, namespaced=info.namespaced)
    r.multi(0, "Labels:", _kv(meta.get("labels")))
    r.multi(0, "Annotations:", _annotations(meta.get("annotations")))
    r.add(0, "API Version:", info.api_version)
    r.add(0, "Kind:", info.kind)
    for k, v in obj.items():
        if k not in ("apiVersion", "kind", "metadata"):
            _generic_value(r, 0, k, v)


DESCRIBERS = {
    "Pod": describe_pod, "Deployment": describe_deployment, "ReplicaSet": describe_replicaset,
    "Node": describe_node, "Service": describe_service, "Namespace": describe_namespace,
}


async def describe_object(client: Client, info: ResourceInfo, obj: dict[str, Any], events: bool = True) -> str:
    r = Report()
    await DESCRIBERS.get(info.kind, describe_generic)(client, info, obj, r)
    if events:
        add_events(r, await events_for(client, info, obj))
    return r.render()


# -------------------------------------------------------------------------- the command

async def run(ctx: Ctx) -> int:
    a = ctx.args
    client = await ctx.client()
    found: list[tuple[ResourceInfo, dict[str, Any]]] = []
    failed = False
    if a.filename:
        for m in await manifests.load(a.filename, False, ctx.stdin):
            info = info_for(m.obj, m.source)
            meta = m.obj.get("metadata") or {}
            ns = (meta.get("namespace") or await ctx.namespace()) if info.namespaced else None
            found.append((info, await client.get(info, meta.get("name", ""), ns)))
    else:
        if not a.targets:
            raise CLIError('You must specify the type of resource to describe. Use "navctl api-resources" for a '
                           'complete list of supported resources.')
        ns = None if a.all_namespaces else await ctx.namespace()
        for info, names in split_targets(a.targets):
            gns = ns if info.namespaced else None
            if not names:
                lst = await client.list_all(info, gns, label_selector=a.selector)
                found += [(info, o) for o in lst.get("items") or []]
                continue
            for name in names:
                try:
                    found.append((info, await client.get(info, name, gns)))
                except errors.NotFound as e:
                    # kubectl falls back to objects whose name starts with what was typed.
                    lst = await client.list_all(info, gns)
                    matches = [o for o in lst.get("items") or [] if o["metadata"]["name"].startswith(name)]
                    if not matches:
                        ctx.warn(f"Error from server (NotFound): {e.message}")
                        failed = True
                    found += [(info, o) for o in matches]
        if not found and not failed:
            ctx.warn(f"No resources found in {ns} namespace." if ns else "No resources found")
    texts = [await describe_object(client, info, obj, a.show_events) for info, obj in found]
    ctx.out.write("\n\n".join(t.rstrip("\n") for t in texts) + ("\n" if texts else ""))
    if failed:
        raise Failed(1)
    return 0

