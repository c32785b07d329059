"""Real kubectl's imperative ``create`` commands against a real API server.

These commands send their objects as ``application/vnd.kubernetes.protobuf``; each test runs one
(``/usr/bin/kubectl --kubeconfig K --cache-dir TMP create ...``) and reads the stored object back
as JSON to check what the server made of it: the fields kubectl set, and the defaults Kubernetes
would have added.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import tempfile
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from proto.k8s import runtime_pb2
from tests.fixtures.apiserver import ApiServer

KUBECTL = "/usr/bin/kubectl"
TIMEOUT = 60


@pytest.fixture(scope="module")
def apiserver(tmp_path_factory):
    if not os.access(KUBECTL, os.X_OK):
        if os.environ.get("CI") == "true":
            pytest.fail(f"{KUBECTL} is not installed")
        pytest.skip(f"{KUBECTL} is not installed")
    server = ApiServer(tmp_path_factory.mktemp("apiserver")).start()
    yield server
    server.stop()


class Kubectl:
    def __init__(self, kubeconfig: Path):
        self.kubeconfig = kubeconfig

    async def run(self, *args: str) -> tuple[int, str, str]:
        with tempfile.TemporaryDirectory(prefix="kubectl-cache-") as cache:
            proc = await asyncio.create_subprocess_exec(
                KUBECTL, "--kubeconfig", str(self.kubeconfig), "--cache-dir", cache, *args,
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE)
            try:
                out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
            except TimeoutError:
                proc.kill()
                await proc.wait()
                raise
        return proc.returncode, out.decode(), err.decode()

    async def ok(self, *args: str) -> str:
        code, out, err = await self.run(*args)
        assert code == 0, f"kubectl {' '.join(args)} exited {code}:\n{out}\n{err}"
        return out

    async def get(self, *args: str) -> dict:
        return json.loads(await self.ok("get", *args, "-o", "json"))


@pytest.fixture
def kubectl(apiserver) -> Kubectl:
    return Kubectl(apiserver.kubeconfig)


def uniq(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


async def test_configmap_from_literals_and_file(kubectl, tmp_path):
    name = uniq("cm")
    (tmp_path / "app.conf").write_text("listen 80\n")
    out = await kubectl.ok("create", "configmap", name, "--from-literal=a=b", "--from-literal=empty=",
                           f"--from-file={tmp_path / 'app.conf'}")
    assert out.strip() == f"configmap/{name} created"
    cm = await kubectl.get("configmap", name)
    assert cm["data"] == {"a": "b", "empty": "", "app.conf": "listen 80\n"}
    assert cm["metadata"]["namespace"] == "default"
    assert cm["metadata"]["uid"] and cm["metadata"]["creationTimestamp"]


async def test_secret_generic_bytes_survive(kubectl, tmp_path):
    name = uniq("secret")
    payload = bytes(range(256))
    (tmp_path / "blob").write_bytes(payload)
    await kubectl.ok("create", "secret", "generic", name, "--from-literal=user=admin",
                     f"--from-file=blob={tmp_path / 'blob'}")
    secret = await kubectl.get("secret", name)
    assert secret["type"] == "Opaque"
    assert base64.b64decode(secret["data"]["user"]) == b"admin"
    assert base64.b64decode(secret["data"]["blob"]) == payload


async def test_secret_docker_registry(kubectl):
    name = uniq("reg")
    await kubectl.ok("create", "secret", "docker-registry", name, "--docker-server=registry.example",
                     "--docker-username=u", "--docker-password=p")
    secret = await kubectl.get("secret", name)
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    config = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
    assert config["auths"]["registry.example"]["username"] == "u"


async def test_namespace_and_service_account(kubectl):
    ns, sa = uniq("ns"), uniq("sa")
    await kubectl.ok("create", "namespace", ns)
    namespace = await kubectl.get("namespace", ns)
    assert namespace["status"]["phase"] == "Active"
    await kubectl.ok("create", "serviceaccount", sa, "-n", ns)
    account = await kubectl.get("serviceaccount", sa, "-n", ns)
    assert account["metadata"]["namespace"] == ns


async def test_service_clusterip_and_nodeport(kubectl):
    name = uniq("svc")
    await kubectl.ok("create", "service", "clusterip", name, "--tcp=80:8080", "--tcp=443:https")
    svc = await kubectl.get("service", name)
    assert svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["selector"] == {"app": name}
    assert svc["spec"]["ports"] == [
        {"name": "80-8080", "port": 80, "protocol": "TCP", "targetPort": 8080},
        {"name": "443-https", "port": 443, "protocol": "TCP", "targetPort": "https"},
    ]
    assert svc["spec"]["clusterIP"] not in ("", "None")

    headless = uniq("headless")
    await kubectl.ok("create", "service", "clusterip", headless, "--clusterip=None")
    assert (await kubectl.get("service", headless))["spec"]["clusterIP"] == "None"

    node_port = uniq("np")
    await kubectl.ok("create", "service", "nodeport", node_port, "--tcp=80:8080", "--node-port=30180")
    [port] = (await kubectl.get("service", node_port))["spec"]["ports"]
    assert port["nodePort"] == 30180 and port["targetPort"] == 8080


async def test_deployment_is_what_kubernetes_makes(kubectl):
    await kubectl.ok("create", "deployment", "web", "--image=nginx", "--replicas=2")
    d = await kubectl.get("deployment", "web")
    assert d["metadata"]["labels"] == {"app": "web"}
    assert d["metadata"]["generation"] == 1
    assert d["spec"] == {
        "progressDeadlineSeconds": 600,
        "replicas": 2,
        "revisionHistoryLimit": 10,
        "selector": {"matchLabels": {"app": "web"}},
        "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}, "type": "RollingUpdate"},
        "template": {
            "metadata": {"creationTimestamp": None, "labels": {"app": "web"}},
            "spec": {
                "containers": [{
                    "image": "nginx",
                    "imagePullPolicy": "Always",
                    "name": "nginx",
                    "resources": {},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                }],
                "dnsPolicy": "ClusterFirst",
                "restartPolicy": "Always",
                "schedulerName": "default-scheduler",
                "securityContext": {},
                "terminationGracePeriodSeconds": 30,
            },
        },
    }


async def test_deployment_zero_replicas_port_and_command(kubectl):
    zero = uniq("zero")
    await kubectl.ok("create", "deployment", zero, "--image=nginx:1.27", "--replicas=0", "--port=80")
    d = await kubectl.get("deployment", zero)
    assert d["spec"]["replicas"] == 0  # not defaulted to 1: zero was on the wire
    [c] = d["spec"]["template"]["spec"]["containers"]
    assert c["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert c["imagePullPolicy"] == "IfNotPresent"

    cmd = uniq("cmd")
    await kubectl.ok("create", "deployment", cmd, "--image=busybox", "--", "sleep", "3600")
    [c] = (await kubectl.get("deployment", cmd))["spec"]["template"]["spec"]["containers"]
    assert c["command"] == ["sleep", "3600"]


async def test_job_cronjob_and_job_from_cronjob(kubectl):
    job = uniq("job")
    await kubectl.ok("create", "job", job, "--image=busybox", "--", "echo", "hi")
    j = await kubectl.get("job", job)
    pod = j["spec"]["template"]["spec"]
    assert pod["containers"][0]["command"] == ["echo", "hi"]
    assert pod["restartPolicy"] == "Never"
    assert j["spec"]["backoffLimit"] == 6 and j["spec"]["completions"] == 1

    cron = uniq("cron")
    await kubectl.ok("create", "cronjob", cron, "--image=busybox", "--schedule=*/5 * * * *",
                     "--restart=OnFailure", "--", "date")
    cj = await kubectl.get("cronjob", cron)
    assert cj["spec"]["schedule"] == "*/5 * * * *"
    assert cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"
    assert cj["spec"]["concurrencyPolicy"] == "Allow"

    manual = uniq("manual")
    await kubectl.ok("create", "job", manual, f"--from=cronjob/{cron}")
    m = await kubectl.get("job", manual)
    assert m["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    [owner] = m["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "CronJob", cron, cj["metadata"]["uid"], True)
    assert m["spec"]["template"]["spec"]["containers"][0]["command"] == ["date"]


async def test_priority_classes(kubectl):
    low, high = uniq("low"), uniq("high")
    await kubectl.ok("create", "priorityclass", low, "--value=0")
    pc = await kubectl.get("priorityclass", low)
    assert pc["value"] == 0
    assert pc["preemptionPolicy"] == "PreemptLowerPriority"
    await kubectl.ok("create", "priorityclass", high, "--value=1000", "--description=important",
                     "--preemption-policy=Never")
    pc = await kubectl.get("priorityclass", high)
    assert (pc["value"], pc["description"], pc["preemptionPolicy"]) == (1000, "important", "Never")
    assert "globalDefault" not in pc or pc["globalDefault"] is False


async def test_errors_come_back_as_kubectl_prints_them(kubectl):
    name = uniq("dup")
    await kubectl.ok("create", "configmap", name)
    code, _, err = await kubectl.run("create", "configmap", name)
    assert code != 0 and f'configmaps "{name}" already exists' in err
    code, _, err = await kubectl.run("create", "configmap", "Bad_Name")
    assert code != 0 and 'ConfigMap "Bad_Name" is invalid' in err and "metadata.name" in err


async def test_server_dry_run_stores_nothing(kubectl):
    name = uniq("dry")
    out = await kubectl.ok("create", "deployment", name, "--image=nginx", "--dry-run=server", "-o", "json")
    shown = json.loads(out)
    assert shown["spec"]["revisionHistoryLimit"] == 10  # defaulted by the server
    code, _, err = await kubectl.run("get", "deployment", name)
    assert code != 0 and "NotFound" in err


def _post(url: str, body: bytes) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": "application/vnd.kubernetes.protobuf",
                                          "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    unknown = runtime_pb2.Unknown(raw=raw)
    unknown.typeMeta.apiVersion, unknown.typeMeta.kind = api_version, kind
    return b"k8s\x00" + unknown.SerializeToString()


async def test_undescribed_kinds_and_malformed_bodies_get_status_errors(apiserver):
    url = apiserver.url + "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"
    code, status = await asyncio.to_thread(_post, url, _envelope("discovery.k8s.io/v1", "EndpointSlice", b""))
    assert (code, status["reason"]) == (415, "UnsupportedMediaType")
    assert "EndpointSlice" in status["message"]

    url = apiserver.url + "/api/v1/namespaces/default/configmaps"
    code, status = await asyncio.to_thread(_post, url, _envelope("v1", "ConfigMap", b"\x0a\x05ab"))
    assert (code, status["reason"]) == (400, "BadRequest")
    code, status = await asyncio.to_thread(_post, url, b"not protobuf")
    assert (code, status["reason"]) == (400, "BadRequest")
