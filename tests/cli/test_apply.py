"""navctl apply: client-side apply (create / unchanged / configured, three-way deletions), multi-
document files, ``-f -``, ``-R`` directories, List kinds, dry runs, server-side apply and errors."""

from __future__ import annotations

import json

import pytest
import yaml

from api import errors
from tests.cli.builders import configmap, deployment, service

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def docs(*objs) -> str:
    return yaml.safe_dump_all(list(objs), sort_keys=False)


async def test_multi_document_create_unchanged_configured(navctl, api, tmp_path, ns):
    app_ns = f"{ns}-app"
    manifest = tmp_path / "app.yaml"
    objs = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": app_ns}},
            configmap("cfg", app_ns, {"a": "1"}),
            deployment("web", app_ns, env={"A": "1", "B": "2"}),
            service("web", app_ns)]
    manifest.write_text(docs(*objs))

    out = await navctl.ok("apply", "-f", str(manifest))
    assert out.splitlines() == [f"namespace/{app_ns} created", "configmap/cfg created",
                                "deployment.apps/web created", "service/web created"]
    live = await api.get("deployments.apps", "web", app_ns)
    last = json.loads(live["metadata"]["annotations"][LAST_APPLIED])
    assert last["spec"]["replicas"] == 2 and LAST_APPLIED not in (last["metadata"].get("annotations") or {})

    before = live["metadata"]["resourceVersion"]
    out = await navctl.ok("apply", "-f", str(manifest))
    assert out.splitlines() == [f"namespace/{app_ns} unchanged", "configmap/cfg unchanged",
                                "deployment.apps/web unchanged", "service/web unchanged"]
    # Nothing was sent: the object was not written again.
    assert (await api.get("deployments.apps", "web", app_ns))["metadata"]["resourceVersion"] == before

    # Someone else labels the deployment; the next apply drops B, adds C, scales, and keeps the label.
    await api.patch("deployments.apps", "web", {"metadata": {"labels": {"owner": "ops"}}}, app_ns)
    objs[2] = deployment("web", app_ns, env={"A": "1", "C": "3"}, replicas=3)
    manifest.write_text(docs(*objs))
    out = await navctl.ok("apply", "-f", str(manifest))
    assert "deployment.apps/web configured" in out.splitlines()
    assert "configmap/cfg unchanged" in out.splitlines()
    live = await api.get("deployments.apps", "web", app_ns)
    env = live["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env == [{"name": "A", "value": "1"}, {"name": "C", "value": "3"}]
    assert live["spec"]["replicas"] == 3
    assert live["metadata"]["labels"] == {"app": "web", "owner": "ops"}
    # Defaults the server filled in are not fields the manifest removed.
    assert live["spec"]["strategy"]["type"] == "RollingUpdate"


async def test_stdin_through_python_m_cli(navctl, api, ns):
    text = docs(configmap("from-stdin", ns, {"x": "y"}))
    r = await navctl.subprocess("apply", "-f", "-", stdin=text)
    assert r.code == 0, r.err
    assert r.out == "configmap/from-stdin created\n"
    assert (await api.get("configmaps", "from-stdin", ns))["data"] == {"x": "y"}
    r = await navctl.subprocess("apply", "-f", "-", stdin=text)
    assert r.out == "configmap/from-stdin unchanged\n"


async def test_directory_and_recursive(navctl, api, tmp_path, ns):
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "a.yaml").write_text(docs(configmap("top", ns)))
    (tmp_path / "notes.txt").write_text("not a manifest")
    (tmp_path / "sub" / "b.yml").write_text(docs(configmap("mid", ns)))
    (tmp_path / "sub" / "deeper" / "c.json").write_text(json.dumps(configmap("low", ns)))

    out = await navctl.ok("apply", "-f", str(tmp_path))
    assert out == "configmap/top created\n"
    with pytest.raises(errors.NotFound):
        await api.get("configmaps", "mid", ns)
    out = await navctl.ok("apply", "-R", "-f", str(tmp_path))
    assert out.splitlines() == ["configmap/top unchanged", "configmap/mid created", "configmap/low created"]


async def test_list_kind_and_namespace_flag(navctl, api, tmp_path, ns):
    a = configmap("one", ns)
    b = configmap("two", ns)
    del a["metadata"]["namespace"], b["metadata"]["namespace"]
    f = tmp_path / "list.yaml"
    f.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [a, b]}))
    out = await navctl.ok("apply", "-n", ns, "-f", str(f))
    assert out.splitlines() == ["configmap/one created", "configmap/two created"]
    assert (await api.get("configmaps", "two", ns))["metadata"]["namespace"] == ns


async def test_dry_runs_change_nothing(navctl, api, tmp_path, ns):
    f = tmp_path / "cm.yaml"
    f.write_text(docs(configmap("dry", ns)))
    assert await navctl.ok("apply", "--dry-run=client", "-f", str(f)) == "configmap/dry created (dry run)\n"
    assert await navctl.ok("apply", "--dry-run=server", "-f", str(f)) == \
        "configmap/dry created (server dry run)\n"
    with pytest.raises(errors.NotFound):
        await api.get("configmaps", "dry", ns)


async def test_server_side_apply(navctl, api, tmp_path, ns):
    f = tmp_path / "cm.yaml"
    f.write_text(docs(configmap("ssa", ns, {"a": "1"})))
    assert await navctl.ok("apply", "--server-side", "-f", str(f)) == "configmap/ssa serverside-applied\n"
    live = await api.get("configmaps", "ssa", ns)
    assert live["data"] == {"a": "1"}
    assert any(m.get("manager") == "kubectl" and m.get("operation") == "Apply"
               for m in live["metadata"]["managedFields"])
    f.write_text(docs(configmap("ssa", ns, {"b": "2"})))
    await navctl.ok("apply", "--server-side", "-f", str(f))
    assert (await api.get("configmaps", "ssa", ns))["data"] == {"b": "2"}


async def test_errors_are_reported_and_others_still_applied(navctl, api, tmp_path, ns):
    f = tmp_path / "mixed.yaml"
    bad = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": ns}}
    invalid = deployment("broken", ns)
    invalid["spec"]["template"]["spec"]["containers"][0]["image"] = ""
    f.write_text(docs(bad, configmap("good", ns), invalid))
    r = await navctl.fails("apply", "-f", str(f))
    assert r.code == 1
    assert r.out == "configmap/good created\n"
    assert 'no matches for kind "Widget" in version "example.com/v1"' in r.err
    assert (f'Error from server (Invalid): error when creating "{f}": Deployment.apps "broken" is invalid: '
            "spec.template.spec.containers[0].image: Required value") in r.err.splitlines()
    assert (await api.get("configmaps", "good", ns))["data"] == {"k": "v"}

    other = configmap("elsewhere", "somewhere-else")
    f.write_text(docs(other))
    r = await navctl.fails("apply", "-n", ns, "-f", str(f))
    assert 'the namespace from the provided object "somewhere-else" does not match the namespace ' \
           f'"{ns}"' in r.err

    r = await navctl.fails("apply", "-f", str(tmp_path / "missing.yaml"))
    assert r.err == f'error: the path "{tmp_path / "missing.yaml"}" does not exist\n'

    f.write_text(docs(configmap("nowhere", f"{ns}-absent")))
    r = await navctl.fails("apply", "-f", str(f))
    assert r.err.startswith("Error from server (NotFound): error when creating")
    assert f'namespaces "{ns}-absent" not found' in r.err
