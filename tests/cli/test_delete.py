"""navctl delete: by name, TYPE/NAME, -f, -l, --all; NotFound errors; --wait watching a finalized
object until it is gone; --cascade mapped to the propagation policy."""

from __future__ import annotations

import asyncio

import pytest
import yaml

from api import errors
from tests.cli.builders import configmap
from tests.cli.conftest import eventually


async def names(api, ns: str) -> list[str]:
    return sorted(o["metadata"]["name"] for o in (await api.list("configmaps", ns))["items"])


async def test_by_name_selector_all_and_file(navctl, api, tmp_path, ns):
    for n, lbl in (("a", "x"), ("b", "x"), ("c", "y"), ("d", "y"), ("e", "z")):
        await api.create("configmaps", configmap(n, ns, labels={"grp": lbl}))
    assert await navctl.ok("delete", "configmap", "a", "-n", ns) == 'configmap "a" deleted\n'
    assert await navctl.ok("delete", "cm/b", "-n", ns) == 'configmap "b" deleted\n'
    assert await navctl.ok("delete", "cm", "-l", "grp=y", "-n", ns) == 'configmap "c" deleted\nconfigmap "d" deleted\n'
    f = tmp_path / "e.yaml"
    f.write_text(yaml.safe_dump(configmap("e", ns)))
    assert await navctl.ok("delete", "-f", str(f)) == 'configmap "e" deleted\n'
    assert await names(api, ns) == []
    for n in ("p", "q"):
        await api.create("configmaps", configmap(n, ns))
    assert await navctl.ok("delete", "cm", "--all", "-n", ns) == 'configmap "p" deleted\nconfigmap "q" deleted\n'
    assert await names(api, ns) == []
    assert (await navctl("delete", "cm", "--all", "-n", ns)).err == f"No resources found in {ns} namespace.\n"


async def test_not_found_and_usage_errors(navctl, ns):
    r = await navctl.fails("delete", "cm", "ghost", "-n", ns)
    assert (r.code, r.err) == (1, 'Error from server (NotFound): configmaps "ghost" not found\n')
    r = await navctl.fails("delete", "deploy", "ghost", "-n", ns)
    assert r.err == 'Error from server (NotFound): deployments.apps "ghost" not found\n'
    assert (await navctl("delete", "cm", "ghost", "-n", ns, "--ignore-not-found")).code == 0
    r = await navctl.fails("delete", "cm", "-n", ns)
    assert r.err == "error: resource(s) were provided, but no name was specified\n"
    r = await navctl.fails("delete", "cm", "x", "--cascade=sideways", "-n", ns)
    assert r.err.startswith("error: invalid cascade value (sideways)")


async def test_wait_until_the_finalizer_is_released(navctl, api, ns):
    await api.create("configmaps", configmap("held", ns, finalizers=["example.com/hold"]))
    deleting = asyncio.create_task(navctl("delete", "cm", "held", "-n", ns, "--timeout=60s"))

    async def marked():
        live = await api.get("configmaps", "held", ns)
        return live["metadata"].get("deletionTimestamp")

    await eventually(marked, 30, "deletionTimestamp")
    await asyncio.sleep(0.5)
    assert not deleting.done(), "delete returned while the object still existed"
    await api.patch("configmaps", "held", {"metadata": {"finalizers": None}}, ns)
    r = await asyncio.wait_for(deleting, 60)
    assert (r.code, r.out) == (0, 'configmap "held" deleted\n')
    with pytest.raises(errors.NotFound):
        await api.get("configmaps", "held", ns)


async def test_no_wait_returns_with_the_object_still_there(navctl, api, ns):
    await api.create("configmaps", configmap("held", ns, finalizers=["example.com/hold"]))
    r = await navctl("delete", "cm", "held", "-n", ns, "--wait=false")
    assert r.code == 0
    assert (await api.get("configmaps", "held", ns))["metadata"]["deletionTimestamp"]
    r = await navctl.fails("delete", "cm", "held", "-n", ns, "--timeout=1s")
    assert "timed out waiting for the condition" in r.err
    await api.patch("configmaps", "held", {"metadata": {"finalizers": None}}, ns)


async def test_cascade_orphan_is_the_orphan_policy(navctl, api, ns):
    await api.create("configmaps", configmap("kept", ns))
    r = await navctl("delete", "cm", "kept", "-n", ns, "--cascade=orphan", "--wait=false")
    assert r.code == 0
    # The Orphan policy leaves the orphan finalizer for the garbage collector to release.
    live = await api.get("configmaps", "kept", ns)
    assert "orphan" in live["metadata"]["finalizers"]
    await api.patch("configmaps", "kept", {"metadata": {"finalizers": None}}, ns)
    await api.create("configmaps", configmap("first", ns))
    r = await navctl("delete", "cm", "first", "-n", ns, "--cascade=foreground", "--wait=false")
    assert r.out == 'configmap "first" deleted\n'
    live = await api.get("configmaps", "first", ns)
    assert "foregroundDeletion" in live["metadata"]["finalizers"]
    await api.patch("configmaps", "first", {"metadata": {"finalizers": None}}, ns)
