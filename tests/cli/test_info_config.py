"""navctl version, cluster-info, api-resources, explain, and the config verbs on a temp kubeconfig."""

from __future__ import annotations

import json
import re

import yaml

from api.registry import RESOURCES
from client.kubeconfig import Config, write_kubeconfig
from tests.cli.conftest import Navctl


def cells(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


async def test_version_and_cluster_info(navctl, apiserver):
    out = (await navctl.ok("version")).splitlines()
    assert out[0].startswith("Client Version: v1.32")
    assert out[1] == "Server Version: v1.32.0"
    doc = json.loads(await navctl.ok("version", "-o", "json"))
    assert doc["serverVersion"]["minor"] == "32"
    # --client needs no server at all.
    r = await Navctl(apiserver.kubeconfig.parent / "absent").__call__("version", "--client")
    assert r.code == 0 and r.out.startswith("Client Version:")

    info = await navctl.ok("cluster-info")
    assert info.splitlines()[0] == f"Kubernetes control plane is running at {apiserver.url}"


async def test_api_resources(navctl):
    out = (await navctl.ok("api-resources")).splitlines()
    assert cells(out[0]) == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    rows = {cells(x)[0]: cells(x) for x in out[1:]}
    assert rows["pods"] == ["pods", "po", "v1", "true", "Pod"]
    assert rows["deployments"] == ["deployments", "deploy", "apps/v1", "true", "Deployment"]
    assert {r.plural for r in RESOURCES} <= set(rows)
    wide = (await navctl.ok("api-resources", "-o", "wide")).splitlines()
    assert cells(wide[0])[-2:] == ["VERBS", "CATEGORIES"]
    names = (await navctl.ok("api-resources", "-o", "name", "--namespaced=false")).splitlines()
    assert "nodes" in names and "pods" not in names
    assert "priorityclasses.scheduling.k8s.io" in names


async def test_explain(navctl):
    out = await navctl.ok("explain", "pods")
    assert out.startswith("KIND:       Pod\nVERSION:    v1\n\nDESCRIPTION:\n")
    assert re.search(r"^  spec\t<PodSpec>$", out, re.M)
    field = await navctl.ok("explain", "deployment.spec.strategy")
    assert "GROUP:      apps" in field
    assert "FIELD: strategy <DeploymentStrategy>" in field
    assert re.search(r"^  rollingUpdate\t<RollingUpdateDeployment>$", field, re.M)
    containers = await navctl.ok("explain", "pod.spec.containers")
    assert "FIELD: containers <[]Container>" in containers
    assert re.search(r"^  name\t<string> -required-$", containers, re.M)
    rec = await navctl.ok("explain", "svc.spec", "--recursive")
    assert re.search(r"^    port\t<integer> -required-$", rec, re.M)
    r = await navctl.fails("explain", "pods.spec.nothing")
    assert r.err == 'error: field "nothing" does not exist\n'


async def test_config_commands(tmp_path, apiserver):
    kc = tmp_path / "config"
    write_kubeconfig(kc, apiserver.url, token="s3cret", context="one", namespace="ns1")
    cfg = Config.load(kc)
    cfg.set_cluster("other", server="http://127.0.0.1:1", ca_data=b"---CA---")
    cfg.set_context("two", cluster="other", user="navarch-admin")
    cfg.save()
    navctl = Navctl(kc)

    view = yaml.safe_load(await navctl.ok("config", "view"))
    assert view["current-context"] == "one"
    users = {u["name"]: u["user"] for u in view["users"]}
    assert users["navarch-admin"]["token"] == "REDACTED"
    clusters = {c["name"]: c["cluster"] for c in view["clusters"]}
    assert clusters["other"]["certificate-authority-data"] == "DATA+OMITTED"
    raw = yaml.safe_load(await navctl.ok("config", "view", "--raw"))
    assert {u["name"]: u["user"] for u in raw["users"]}["navarch-admin"]["token"] == "s3cret"
    mini = yaml.safe_load(await navctl.ok("config", "view", "--minify"))
    assert [c["name"] for c in mini["contexts"]] == ["one"] and [c["name"] for c in mini["clusters"]] == ["navarch"]

    rows = [cells(x) for x in (await navctl.ok("config", "get-contexts")).splitlines()]
    assert rows[0] == ["CURRENT", "NAME", "CLUSTER", "AUTHINFO", "NAMESPACE"]
    assert rows[1] == ["*", "one", "navarch", "navarch-admin", "ns1"]
    assert rows[2] == ["two", "other", "navarch-admin"]
    assert await navctl.ok("config", "current-context") == "one\n"

    assert await navctl.ok("config", "use-context", "two") == 'Switched to context "two".\n'
    assert Config.load(kc).current_context == "two"
    r = await navctl.fails("config", "use-context", "three")
    assert r.err == 'error: no context exists with the name: "three"\n'

    assert await navctl.ok("config", "set-context", "three", "--cluster=navarch", "--user=navarch-admin",
                           "--namespace=ns3") == 'Context "three" created.\n'
    assert await navctl.ok("config", "use-context", "three") == 'Switched to context "three".\n'
    assert await navctl.ok("config", "set-context", "--current", "--namespace=ns4") == 'Context "three" modified.\n'
    assert Config.load(kc).contexts()["three"] == {"cluster": "navarch", "user": "navarch-admin", "namespace": "ns4"}
    # The context's namespace is where navctl now looks.
    r = await navctl("get", "pods")
    assert r.err == "No resources found in ns4 namespace.\n"
