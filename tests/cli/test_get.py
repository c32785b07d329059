"""navctl get: server Tables with kubectl's extra columns, object outputs, jsonpath, selectors,
errors and ``-w``."""

from __future__ import annotations

import asyncio
import json
import re

import yaml

from client.kubeconfig import write_kubeconfig
from tests.cli.builders import configmap, deployment, pod
from tests.cli.conftest import Navctl
from tests.fixtures.apiserver import free_port


def cells(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


async def test_table_wide_labels_and_all_namespaces(navctl, api, ns):
    await api.create("pods", pod("web-1", ns, labels={"app": "web", "tier": "front"}))
    await api.create("pods", pod("db-1", ns, labels={"app": "db"}))
    await api.create("deployments.apps", deployment("web", ns))

    out = await navctl.ok("get", "pods", "-n", ns)
    lines = out.splitlines()
    assert cells(lines[0]) == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert [cells(x)[0] for x in lines[1:]] == ["db-1", "web-1"]
    assert cells(lines[1])[1:3] == ["0/1", "Pending"]
    # Columns line up: every row's second cell starts where the header's does.
    col = lines[0].index("READY")
    assert all(line[col - 3:col] == "   " and line[col] != " " for line in lines[1:])

    wide = (await navctl.ok("get", "pods", "-n", ns, "-o", "wide")).splitlines()
    assert cells(wide[0])[:7] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]

    labels = (await navctl.ok("get", "pods", "-n", ns, "--show-labels")).splitlines()
    assert cells(labels[0])[-1] == "LABELS"
    assert cells(labels[2])[-1] == "app=web,tier=front"

    every = (await navctl.ok("get", "pods", "-A")).splitlines()
    assert cells(every[0])[:2] == ["NAMESPACE", "NAME"]
    assert [ns, "web-1"] in [cells(x)[:2] for x in every[1:]]

    selected = (await navctl.ok("get", "pods", "-n", ns, "-l", "app=web")).splitlines()
    assert [cells(x)[0] for x in selected[1:]] == ["web-1"]
    by_field = (await navctl.ok("get", "pods", "-n", ns, "--field-selector", "metadata.name=db-1")).splitlines()
    assert [cells(x)[0] for x in by_field[1:]] == ["db-1"]

    both = (await navctl.ok("get", "deploy,pods", "-n", ns)).split("\n\n")
    assert cells(both[0].splitlines()[1])[0] == "deployment.apps/web"
    assert cells(both[1].splitlines()[1])[0] == "pod/db-1"


async def test_object_outputs(navctl, api, ns):
    await api.create("configmaps", configmap("a", ns, {"x": "1"}, labels={"k": "v"}))
    await api.create("configmaps", configmap("b", ns, {"x": "2"}))
    await api.create("deployments.apps", deployment("web", ns))

    one = yaml.safe_load(await navctl.ok("get", "configmap", "a", "-n", ns, "-o", "yaml"))
    assert one["kind"] == "ConfigMap" and one["apiVersion"] == "v1" and one["data"] == {"x": "1"}
    lst = json.loads(await navctl.ok("get", "cm", "-n", ns, "-o", "json"))
    assert lst["kind"] == "List"
    assert [i["metadata"]["name"] for i in lst["items"]] == ["a", "b"]
    assert all(i["kind"] == "ConfigMap" for i in lst["items"])

    assert await navctl.ok("get", "cm,deploy", "-n", ns, "-o", "name") == \
        "configmap/a\nconfigmap/b\ndeployment.apps/web\n"
    assert await navctl.ok("get", "deploy/web", "-n", ns, "-o", "name") == "deployment.apps/web\n"

    assert await navctl.ok("get", "cm", "-n", ns, "-o", "jsonpath={.items[*].metadata.name}") == "a b"
    assert await navctl.ok("get", "cm", "-n", ns, "-o",
                           'jsonpath={range .items[*]}{.metadata.name}={.data.x}{"\\n"}{end}') == "a=1\nb=2\n"
    assert await navctl.ok("get", "cm", "a", "-n", ns, "-o", "jsonpath={.metadata.labels.k}") == "v"
    assert await navctl.ok("get", "cm", "-n", ns, "-o",
                           'jsonpath={.items[?(@.data.x=="2")].metadata.name}') == "b"
    cc = (await navctl.ok("get", "cm", "-n", ns, "-o", "custom-columns=NAME:.metadata.name,X:.data.x")).splitlines()
    assert [cells(x) for x in cc] == [["NAME", "X"], ["a", "1"], ["b", "2"]]


async def test_errors_and_empty(navctl, ns):
    r = await navctl.fails("get", "pods", "nope", "-n", ns)
    assert (r.code, r.out, r.err) == (1, "", 'Error from server (NotFound): pods "nope" not found\n')
    r = await navctl.fails("get", "deploy", "nope", "-n", ns, "-o", "yaml")
    assert r.err == 'Error from server (NotFound): deployments.apps "nope" not found\n'
    r = await navctl.fails("get", "widgets")
    assert r.err == 'error: the server doesn\'t have a resource type "widgets"\n'
    r = await navctl.fails("get", "pods", "-o", "bogus")
    assert r.err.startswith('error: unable to match a printer suitable for the output format "bogus"')
    r = await navctl.fails("get")
    assert "error: Required resource not specified." in r.err
    r = await navctl("get", "pods", "-n", ns)
    assert (r.code, r.out, r.err) == (0, "", f"No resources found in {ns} namespace.\n")
    assert (await navctl("get", "pods", "nope", "-n", ns, "--ignore-not-found")).code == 0


async def test_unreachable_server(tmp_path):
    port = free_port()
    kc = write_kubeconfig(tmp_path / "kc", f"http://127.0.0.1:{port}")
    r = await Navctl(kc).fails("get", "pods")
    assert r.err == f"The connection to the server 127.0.0.1:{port} was refused - did you specify the right " \
                    "host or port?\n"


async def _read_until(stream: asyncio.StreamReader, pattern: str, seen: list[str], timeout: float = 60) -> None:
    async def loop() -> None:
        while not any(re.search(pattern, line) for line in seen):
            line = await stream.readline()
            if not line:
                raise AssertionError(f"stream ended before {pattern!r}; saw {seen}")
            seen.append(line.decode().rstrip("\n"))

    await asyncio.wait_for(loop(), timeout)


async def test_watch_prints_a_row_per_change(navctl, api, ns):
    await api.create("configmaps", configmap("first", ns, {"a": "1"}))
    proc = await asyncio.create_subprocess_exec(
        *navctl.argv("get", "configmaps", "-n", ns, "-w", "--request-timeout=120s"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=navctl.env())
    seen: list[str] = []
    try:
        assert proc.stdout is not None
        await _read_until(proc.stdout, r"^first\s+1\s", seen)
        assert cells(seen[0]) == ["NAME", "DATA", "AGE"]
        await api.create("configmaps", configmap("second", ns, {"a": "1", "b": "2"}))
        await _read_until(proc.stdout, r"^second\s+2\s", seen)
        await api.patch("configmaps", "first", {"data": {"a": "1", "z": "9", "y": "8"}}, ns)
        await _read_until(proc.stdout, r"^first\s+3\s", seen)
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
    assert sum(1 for line in seen if line.startswith("NAME")) == 1


async def test_watch_ends_at_request_timeout(navctl, api, ns):
    await api.create("configmaps", configmap("solo", ns))
    r = await navctl("get", "cm", "solo", "-n", ns, "-w", "-o", "name", "--request-timeout=2s")
    assert (r.code, r.out) == (0, "configmap/solo\n")
