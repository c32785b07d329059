"""navctl create (generators and -f), label, annotate, scale, patch and edit."""

from __future__ import annotations

import base64
import os
import stat

import yaml

from tests.cli.builders import configmap, deployment


async def test_create_generators(navctl, api, tmp_path, ns):
    other = f"{ns}-made"
    assert await navctl.ok("create", "namespace", other) == f"namespace/{other} created\n"
    assert (await api.get("namespaces", other))["status"]["phase"] == "Active"
    r = await navctl.fails("create", "namespace", other)
    assert r.err == f'Error from server (AlreadyExists): namespaces "{other}" already exists\n'

    out = await navctl.ok("create", "deployment", "web", "--image=nginx:1.25", "--replicas=3", "--port=80", "-n", ns)
    assert out == "deployment.apps/web created\n"
    d = await api.get("deployments.apps", "web", ns)
    assert d["spec"]["replicas"] == 3
    assert d["spec"]["selector"]["matchLabels"] == {"app": "web"}
    c = d["spec"]["template"]["spec"]["containers"][0]
    assert (c["name"], c["image"], c["ports"][0]["containerPort"]) == ("nginx", "nginx:1.25", 80)

    f = tmp_path / "app.conf"
    f.write_text("listen 80;\n")
    out = await navctl.ok("create", "configmap", "cfg", "--from-literal=a=1", f"--from-file={f}", "-n", ns)
    assert out == "configmap/cfg created\n"
    assert (await api.get("configmaps", "cfg", ns))["data"] == {"a": "1", "app.conf": "listen 80;\n"}

    out = await navctl.ok("create", "secret", "generic", "creds", "--from-literal=password=hunter2", "-n", ns)
    assert out == "secret/creds created\n"
    s = await api.get("secrets", "creds", ns)
    assert base64.b64decode(s["data"]["password"]) == b"hunter2"
    assert s["type"] == "Opaque"

    printed = yaml.safe_load(await navctl.ok("create", "cm", "draft", "--from-literal=x=y", "--dry-run=client",
                                             "-o", "yaml", "-n", ns))
    assert printed["kind"] == "ConfigMap" and printed["data"] == {"x": "y"}
    assert [o["metadata"]["name"] for o in (await api.list("configmaps", ns))["items"]] == ["cfg"]

    m = tmp_path / "m.yaml"
    m.write_text(yaml.safe_dump(configmap("from-file", ns)))
    assert await navctl.ok("create", "-f", str(m)) == "configmap/from-file created\n"
    r = await navctl.fails("create", "-f", str(m))
    assert r.err == (f'Error from server (AlreadyExists): error when creating "{m}": configmaps "from-file" '
                     'already exists\n')


async def test_label_and_annotate(navctl, api, ns):
    await api.create("deployments.apps", deployment("web", ns))
    assert await navctl.ok("label", "deploy", "web", "tier=front", "-n", ns) == "deployment.apps/web labeled\n"
    r = await navctl.fails("label", "deploy", "web", "tier=back", "-n", ns)
    assert r.err == "error: 'tier' already has a value (front), and --overwrite is false\n"
    assert await navctl.ok("label", "deploy/web", "tier=back", "--overwrite", "-n", ns) == \
        "deployment.apps/web labeled\n"
    assert (await api.get("deployments.apps", "web", ns))["metadata"]["labels"] == {"app": "web", "tier": "back"}
    assert await navctl.ok("label", "deploy", "web", "tier-", "-n", ns) == "deployment.apps/web unlabeled\n"
    assert (await api.get("deployments.apps", "web", ns))["metadata"]["labels"] == {"app": "web"}
    assert await navctl.ok("label", "deploy", "web", "app=web", "-n", ns) == "deployment.apps/web not labeled\n"

    await api.create("configmaps", configmap("c1", ns, labels={"grp": "g"}))
    await api.create("configmaps", configmap("c2", ns, labels={"grp": "g"}))
    out = await navctl.ok("annotate", "cm", "-l", "grp=g", "owner=team-a", "-n", ns)
    assert out == "configmap/c1 annotated\nconfigmap/c2 annotated\n"
    assert (await api.get("configmaps", "c2", ns))["metadata"]["annotations"] == {"owner": "team-a"}
    r = await navctl.fails("annotate", "cm", "c1", "owner=team-b", "-n", ns)
    assert "--overwrite is false" in r.err
    await navctl.ok("annotate", "cm", "c1", "owner-", "-n", ns)
    assert not (await api.get("configmaps", "c1", ns))["metadata"].get("annotations")


async def test_scale_and_patch(navctl, api, ns):
    await api.create("deployments.apps", deployment("web", ns, replicas=2))
    assert await navctl.ok("scale", "deploy", "web", "--replicas=5", "-n", ns) == "deployment.apps/web scaled\n"
    assert (await api.get("deployments.apps", "web", ns))["spec"]["replicas"] == 5
    r = await navctl.fails("scale", "deploy/web", "--replicas=1", "--current-replicas=2", "-n", ns)
    assert r.err == "error: Expected replicas to be 2, was 5\n"
    await navctl.ok("scale", "deploy/web", "--replicas=1", "--current-replicas=5", "-n", ns)
    assert (await api.get("deployments.apps", "web", ns))["spec"]["replicas"] == 1
    await api.create("configmaps", configmap("c", ns))
    r = await navctl.fails("scale", "cm", "c", "--replicas=1", "-n", ns)
    assert r.err.startswith("error: no scaler has been implemented")

    patch = '{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"nginx:1.26"}]}}}}'
    assert await navctl.ok("patch", "deploy", "web", "-p", patch, "-n", ns) == "deployment.apps/web patched\n"
    c = (await api.get("deployments.apps", "web", ns))["spec"]["template"]["spec"]["containers"]
    # Strategic merge: the container is merged by name, its ports kept.
    assert len(c) == 1 and c[0]["image"] == "nginx:1.26" and c[0]["ports"][0]["containerPort"] == 80
    assert await navctl.ok("patch", "deploy", "web", "-p", patch, "-n", ns) == \
        "deployment.apps/web patched (no change)\n"
    await navctl.ok("patch", "deploy", "web", "--type=merge", "-p", "spec: {replicas: 4}", "-n", ns)
    await navctl.ok("patch", "deploy", "web", "--type=json", "-p",
                    '[{"op":"replace","path":"/spec/replicas","value":6}]', "-n", ns)
    assert (await api.get("deployments.apps", "web", ns))["spec"]["replicas"] == 6
    r = await navctl.fails("patch", "deploy", "web", "-p", '{"spec":{"replicas":"many"}}', "-n", ns)
    assert r.err.startswith('The Deployment.apps "web" is invalid: spec.replicas')
    r = await navctl.fails("patch", "deploy", "web", "-p", "{oops", "-n", ns)
    assert r.err.startswith('error: unable to parse "{oops": yaml: line 1:')
    r = await navctl.fails("patch", "deploy", "nope", "-p", "{}", "-n", ns)
    assert r.err == 'Error from server (NotFound): deployments.apps "nope" not found\n'


async def test_edit_through_editor(navctl, api, tmp_path, ns):
    await api.create("deployments.apps", deployment("web", ns, replicas=2))
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/replicas: 2/replicas: 7/' \"$1\"\n")
    editor.chmod(editor.stat().st_mode | stat.S_IXUSR)
    r = await navctl.subprocess("edit", "deploy/web", "-n", ns, EDITOR=str(editor))
    assert (r.code, r.out) == (0, "deployment.apps/web edited\n"), r.err
    assert (await api.get("deployments.apps", "web", ns))["spec"]["replicas"] == 7

    r = await navctl.subprocess("edit", "deploy", "web", "-n", ns, EDITOR="true")
    assert (r.code, r.out, r.err) == (0, "", "Edit cancelled, no changes made.\n")
    # KUBE_EDITOR wins over EDITOR, as for kubectl.
    r = await navctl.subprocess("edit", "deploy", "web", "-n", ns, EDITOR=str(editor), KUBE_EDITOR="true")
    assert r.err == "Edit cancelled, no changes made.\n"
    r = await navctl.subprocess("edit", "deploy", "missing", "-n", ns, EDITOR="true")
    assert (r.code, r.err) == (1, 'Error from server (NotFound): deployments.apps "missing" not found\n')
    assert os.environ.get("KUBE_EDITOR") is None
