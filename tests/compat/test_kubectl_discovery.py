"""Real kubectl (/usr/bin/kubectl) against a real API server: version, discovery, OpenAPI, Tables.

Each kubectl run gets its own empty ``--cache-dir`` so discovery and OpenAPI are fetched from the
server every time rather than read from a cache of an earlier run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import tempfile
import textwrap
import uuid
from pathlib import Path

import pytest

from api.registry import RESOURCES
from tests.fixtures.apiserver import ApiServer
from tests.fixtures.require import require

KUBECTL = "/usr/bin/kubectl"
TIMEOUT = 60


def _require_kubectl() -> None:
    require(KUBECTL)


@pytest.fixture(scope="module")
def apiserver(tmp_path_factory):
    _require_kubectl()
    server = ApiServer(tmp_path_factory.mktemp("apiserver")).start()
    yield server
    server.stop()


class Kubectl:
    def __init__(self, kubeconfig: Path):
        self.kubeconfig = kubeconfig

    def argv(self, cache_dir: str, *args: str) -> list[str]:
        return [KUBECTL, "--kubeconfig", str(self.kubeconfig), "--cache-dir", cache_dir, *args]

    async def run(self, *args: str, stdin: str | None = None, check: bool = True) -> tuple[int, str, str]:
        with tempfile.TemporaryDirectory(prefix="kubectl-cache-") as cache:
            proc = await asyncio.create_subprocess_exec(
                *self.argv(cache, *args), stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            try:
                out, err = await asyncio.wait_for(
                    proc.communicate(stdin.encode() if stdin is not None else None), TIMEOUT)
            except TimeoutError:
                proc.kill()
                await proc.wait()
                raise
        code, out_s, err_s = proc.returncode, out.decode(), err.decode()
        if check and code != 0:
            raise AssertionError(f"kubectl {' '.join(args)} exited {code}:\n{out_s}\n{err_s}")
        return code, out_s, err_s

    async def out(self, *args: str, stdin: str | None = None) -> str:
        return (await self.run(*args, stdin=stdin))[1]


@pytest.fixture
def kubectl(apiserver) -> Kubectl:
    return Kubectl(apiserver.kubeconfig)


def table(text: str) -> list[dict[str, str]]:
    """kubectl's column output as dicts keyed by header (columns are split on 2+ spaces)."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    header = re.split(r"\s{2,}", lines[0].strip())
    rows = []
    for ln in lines[1:]:
        cells = re.split(r"\s{2,}", ln.strip())
        rows.append(dict(zip(header, cells, strict=False)))
    return rows


def headers(text: str) -> list[str]:
    return re.split(r"\s{2,}", text.splitlines()[0].strip())


def uniq(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def deployment_manifest(name: str, image: str = "nginx:1.27", replicas: int = 2, extra: str = "") -> str:
    return textwrap.dedent(f"""\
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: {name}
          labels: {{app: {name}}}
        spec:
          replicas: {replicas}
          selector:
            matchLabels: {{app: {name}}}
          template:
            metadata:
              labels: {{app: {name}}}
            spec:
              containers:
              - name: web
                image: {image}
                ports:
                - containerPort: 80{extra}
        """)


def service_manifest(name: str) -> str:
    return textwrap.dedent(f"""\
        apiVersion: v1
        kind: Service
        metadata:
          name: {name}
        spec:
          type: NodePort
          selector: {{app: {name}}}
          ports:
          - port: 80
            targetPort: 80
        """)


def pod_manifest(name: str) -> str:
    return textwrap.dedent(f"""\
        apiVersion: v1
        kind: Pod
        metadata:
          name: {name}
          labels: {{app: {name}, tier: test}}
        spec:
          containers:
          - name: main
            image: busybox
            command: ["sleep", "3600"]
        """)


# --- version and discovery ------------------------------------------------------------------


async def test_version_reports_1_32(kubectl):
    doc = json.loads(await kubectl.out("version", "-o", "json"))
    server = doc["serverVersion"]
    assert (server["major"], server["minor"]) == ("1", "32")
    assert server["gitVersion"].startswith("v1.32.")


async def test_api_resources_lists_every_resource(kubectl):
    out = await kubectl.out("api-resources", "-o", "wide")
    listed = {(ln.split()[0], ln) for ln in out.splitlines()[1:] if ln.strip()}
    for res in RESOURCES:
        assert any(name == res.plural and res.api_version in ln for name, ln in listed), res.plural
    pods = next(ln for ln in out.splitlines() if ln.startswith("pods "))
    assert re.search(r"\bpo\b", pods) and "Pod" in pods and "true" in pods
    assert "watch" in pods and "all" in pods
    deploy = next(ln for ln in out.splitlines() if ln.startswith("deployments "))
    assert "deploy" in deploy and "apps/v1" in deploy
    nodes = next(ln for ln in out.splitlines() if ln.startswith("nodes "))
    assert "false" in nodes


async def test_short_names_and_categories_resolve(kubectl):
    name = uniq("cat")
    await kubectl.out("create", "-f", "-", stdin=deployment_manifest(name))
    out = await kubectl.out("get", "deploy", name)
    assert table(out)[0]["NAME"] == name
    out = await kubectl.out("get", "all")
    assert f"deployment.apps/{name}" in out


# --- OpenAPI: apply and create with validation on, explain ----------------------------------


async def test_apply_with_validation_creates_then_configures(kubectl):
    name = uniq("web")
    manifest = deployment_manifest(name) + "---\n" + service_manifest(name)
    out = await kubectl.out("apply", "-f", "-", stdin=manifest)
    assert f"deployment.apps/{name} created" in out
    assert f"service/{name} created" in out
    out = await kubectl.out("apply", "-f", "-", stdin=manifest)
    assert f"deployment.apps/{name} unchanged" in out
    changed = deployment_manifest(name, image="nginx:1.28", replicas=3)
    out = await kubectl.out("apply", "-f", "-", stdin=changed)
    assert f"deployment.apps/{name} configured" in out
    live = json.loads(await kubectl.out("get", "deploy", name, "-o", "json"))
    assert live["spec"]["replicas"] == 3
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.28"


async def test_server_side_apply_with_validation(kubectl):
    name = uniq("ssa")
    out = await kubectl.out("apply", "--server-side", "-f", "-", stdin=deployment_manifest(name))
    assert f"deployment.apps/{name} serverside-applied" in out


async def test_create_with_validation(kubectl):
    name = uniq("pod")
    out = await kubectl.out("create", "-f", "-", stdin=pod_manifest(name))
    assert f"pod/{name} created" in out
    code, _out, err = await kubectl.run("create", "-f", "-", stdin=pod_manifest(name), check=False)
    assert code != 0 and "AlreadyExists" in err


async def test_unknown_field_is_refused_with_validation_on(kubectl):
    name = uniq("bad")
    bad = deployment_manifest(name, extra="\n            bogusField: 1")
    code, _out, err = await kubectl.run("apply", "-f", "-", stdin=bad, check=False)
    assert code != 0
    assert "bogusField" in err
    code, _out, err = await kubectl.run("apply", "--validate=false", "-f", "-", stdin=bad, check=False)
    assert code == 0, err


async def test_explain_uses_the_published_schemas(kubectl):
    out = await kubectl.out("explain", "pod.spec.containers")
    assert re.search(r"FIELD:\s+containers <\[\]Container>", out), out
    assert re.search(r"^\s+image\s+<string>", out, re.M), out
    assert re.search(r"^\s+resources\s+<ResourceRequirements>", out, re.M), out
    out = await kubectl.out("explain", "deployment.spec.strategy.rollingUpdate.maxSurge")
    assert "<IntOrString>" in out
    out = await kubectl.out("explain", "pod.spec.containers.resources.limits")
    assert "<map[string]Quantity>" in out
    out = await kubectl.out("explain", "cronjobs.spec")
    assert "schedule" in out and "-required-" in out


# --- get: Tables -----------------------------------------------------------------------------


async def test_get_pods_prints_server_columns(kubectl):
    name = uniq("tbl")
    await kubectl.out("create", "-f", "-", stdin=pod_manifest(name))
    out = await kubectl.out("get", "pods", name)
    assert headers(out) == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    row = table(out)[0]
    assert row["NAME"] == name and row["READY"] == "0/1" and row["RESTARTS"] == "0"
    assert row["STATUS"] in ("Pending", "ContainerCreating", "Running"), row
    assert re.fullmatch(r"\d+[smhdy].*", row["AGE"]), row
    wide = await kubectl.out("get", "pods", name, "-o", "wide")
    assert headers(wide) == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE",
                             "NOMINATED NODE", "READINESS GATES"]
    # NAMESPACE and LABELS come from the row's PartialObjectMetadata.
    every = table(await kubectl.out("get", "pods", "-A", "--show-labels"))
    mine = next(r for r in every if r.get("NAME") == name)
    assert mine["NAMESPACE"] == "default"
    assert "tier=test" in mine["LABELS"]


async def test_get_deployments_services_namespaces(kubectl):
    name = uniq("dep")
    await kubectl.out("apply", "-f", "-", stdin=deployment_manifest(name) + "---\n" + service_manifest(name))
    out = await kubectl.out("get", "deploy", name, "-o", "wide")
    assert headers(out) == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES",
                            "SELECTOR"]
    row = table(out)[0]
    assert row["READY"].endswith("/2") and row["CONTAINERS"] == "web" and row["SELECTOR"] == f"app={name}"
    svc = table(await kubectl.out("get", "svc", name))[0]
    assert svc["TYPE"] == "NodePort"
    assert re.fullmatch(r"80:\d+/TCP", svc["PORT(S)"]), svc
    assert headers(await kubectl.out("get", "svc", name)) == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP",
                                                               "PORT(S)", "AGE"]
    ns = {r["NAME"]: r for r in table(await kubectl.out("get", "namespaces"))}
    assert ns["default"]["STATUS"] == "Active"


async def test_get_configmap_and_json_output(kubectl):
    name = uniq("cm")
    # From a manifest: ``kubectl create configmap NAME`` posts a protobuf body instead of JSON.
    manifest = f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata: {{a: '1', b: '2'}}\n"
    await kubectl.out("create", "-f", "-", stdin=manifest)
    row = table(await kubectl.out("get", "cm", name))[0]
    assert row["DATA"] == "2"
    doc = json.loads(await kubectl.out("get", "cm", name, "-o", "json"))
    assert doc["kind"] == "ConfigMap" and doc["data"] == {"a": "1", "b": "2"}
    assert (await kubectl.out("get", "cm", name, "-o", "name")).strip() == f"configmap/{name}"


async def test_get_watch_prints_rows_for_new_objects(kubectl, tmp_path):
    """``get -w`` lists as a Table, then each watch event must be a one-row Table."""
    prefix = uniq("w")
    cache = str(tmp_path / "cache")
    proc = await asyncio.create_subprocess_exec(
        *kubectl.argv(cache, "get", "configmaps", "-w"), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    try:
        header = await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)
        assert header.split()[:3] == [b"NAME", b"DATA", b"AGE"], header
        await kubectl.out("create", "-f", "-",
                          stdin=f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {prefix}}}\ndata: {{k: v}}\n")
        while True:
            line = (await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)).decode()
            assert line, "watch ended early: " + (await proc.stderr.read()).decode()
            assert not line.startswith("NAME"), "a watch event arrived as a plain object, not a Table"
            if line.startswith(prefix):
                assert line.split()[:2] == [prefix, "1"], line
                break
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        shutil.rmtree(cache, ignore_errors=True)


async def test_get_tables_for_nodes_jobs_and_events(kubectl):
    node, job, event = uniq("node"), uniq("job"), uniq("ev")
    manifests = textwrap.dedent(f"""\
        apiVersion: v1
        kind: Node
        metadata:
          name: {node}
          labels: {{node-role.kubernetes.io/worker: ""}}
        ---
        apiVersion: batch/v1
        kind: Job
        metadata:
          name: {job}
        spec:
          completions: 3
          template:
            spec:
              restartPolicy: Never
              containers: [{{name: main, image: busybox}}]
        ---
        apiVersion: v1
        kind: Event
        metadata:
          name: {event}
        type: Warning
        reason: BackOff
        message: Back-off restarting failed container
        count: 2
        involvedObject: {{kind: Pod, name: web-0, namespace: default}}
        """)
    await kubectl.out("create", "-f", "-", stdin=manifests)
    out = await kubectl.out("get", "nodes", node)
    assert headers(out) == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    row = table(out)[0]
    assert (row["STATUS"], row["ROLES"]) == ("Unknown", "worker")
    assert "INTERNAL-IP" in headers(await kubectl.out("get", "nodes", node, "-o", "wide"))
    out = await kubectl.out("get", "jobs", job)
    assert headers(out) == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    row = table(out)[0]
    assert row["COMPLETIONS"] == "0/3"
    out = await kubectl.out("get", "events", "--field-selector", f"metadata.name={event}")
    assert headers(out) == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    row = table(out)[0]
    assert (row["TYPE"], row["REASON"], row["OBJECT"]) == ("Warning", "BackOff", "pod/web-0")
