"""api.patch against the reference: ``kubectl patch --local`` applies patches with Kubernetes' own code.

Every strategic, merge and JSON patch case of test_patch is applied by kubectl (offline, its
kubeconfig pointing at a closed loopback port) and by us, and the results must be equal, except
for the few places where we differ on purpose (listed in ``DIVERGENT``). The patches our
three-way diff computes are applied by kubectl too, so the CLI's patches mean the same to a real
API server.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from api import patch as P
from tests.unit import test_patch as T

# Cases where we differ from Kubernetes on purpose (see the api.patch docstring).
DIVERGENT = {
    "same port, other protocol is another item": "ports keyed by containerPort+protocol",
    "delete a TCP port that does not exist leaves UDP": "ports keyed by containerPort+protocol",
    "$patch merge on a map is a merge": "Kubernetes refuses $patch: merge",
    "new subtree loses its directives": "Kubernetes drops a new subtree that carries a directive",
    "$setElementOrder alone leaves an atomic list alone": "kubectl 1.32 panics on it",
}

KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "http://127.0.0.1:1"}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
users: [{name: none, user: {}}]
"""


@pytest.fixture(scope="module")
def kubectl(tmp_path_factory):
    """Run ``kubectl patch --local`` jobs: ``run([(doc, patch_type, body), ...]) -> [result|error]``."""
    binary = shutil.which("kubectl")
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("kubectl is not installed")
        pytest.skip("kubectl is not installed")
    home = tmp_path_factory.mktemp("kubectl")
    (home / "config").write_text(KUBECONFIG)
    env = {**os.environ, "HOME": str(home), "KUBECONFIG": str(home / "config")}
    counter = iter(range(1_000_000))

    def one(job: tuple[dict[str, Any], str, Any]) -> Any:
        doc, kind, body = job
        path = home / f"doc-{next(counter)}.json"
        path.write_text(json.dumps(doc))
        proc = subprocess.run([binary, "patch", "--local", "-f", str(path), "--type", kind, "-p",
                               json.dumps(body), "-o", "json"], env=env, capture_output=True, text=True,
                              timeout=60)
        if proc.returncode != 0:
            return RuntimeError(proc.stderr.strip())
        return json.loads(proc.stdout)

    def run(jobs: list[tuple[dict[str, Any], str, Any]]) -> list[Any]:
        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(one, jobs))

    return run


def test_strategic_merge_patch_matches_kubectl(kubectl):
    cases = [c for c in T.SMP if c[0] not in DIVERGENT]
    doc = T.make_deployment()
    results = kubectl([(doc, "strategic", body) for _, body, _ in cases])
    mismatches = []
    for (name, body, _), theirs in zip(cases, results, strict=True):
        assert not isinstance(theirs, Exception), f"{name}: kubectl refused: {theirs}"
        ours = P.strategic_merge_patch(doc, body, T.DEPLOY)
        if ours != theirs:
            mismatches.append(f"{name}:\n  ours   {json.dumps(ours['spec'])}\n  theirs {json.dumps(theirs['spec'])}")
    assert not mismatches, "\n".join(mismatches)


def test_divergent_cases_really_differ(kubectl):
    """If Kubernetes ever agrees with us here, the list above (and the docstring) is stale."""
    cases = [c for c in T.SMP if c[0] in DIVERGENT]
    assert len(cases) == len(DIVERGENT)
    doc = T.make_deployment()
    results = kubectl([(doc, "strategic", body) for _, body, _ in cases])
    for (name, body, _), theirs in zip(cases, results, strict=True):
        assert isinstance(theirs, Exception) or theirs != P.strategic_merge_patch(doc, body, T.DEPLOY), name


def test_strategic_patch_errors_are_errors_for_kubectl_too(kubectl):
    shared = {"list item without merge key", "unknown $patch", "$retainKeys not a list",
              "$retainKeys contradicts the patch", "$setElementOrder not a list"}
    cases = [c for c in T.SMP_ERRORS if c[0] in shared]
    assert len(cases) == len(shared)
    results = kubectl([(T.make_deployment(), "strategic", body) for _, body, _, _ in cases])
    for (name, *_), theirs in zip(cases, results, strict=True):
        assert isinstance(theirs, Exception), f"{name}: kubectl accepted it: {theirs}"


def test_merge_and_json_patches_match_kubectl(kubectl):
    base = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    merge_cases = [({**base, "data": doc}, {"data": body}) for doc, body, _ in T.MERGE_PATCH
                   if all(isinstance(v, str) for v in doc.values())
                   and all(v is None or isinstance(v, str) for v in body.values())]
    json_cases = [(ops, expected) for _, ops, expected in T.JSON_PATCH_OK]
    doc = {**base, **T.DOC}
    results = kubectl([(d, "merge", b) for d, b in merge_cases] + [(doc, "json", ops) for ops, _ in json_cases])
    for (d, b), theirs in zip(merge_cases, results[:len(merge_cases)], strict=True):
        assert P.merge_patch(d, b) == theirs
    for (ops, _), theirs in zip(json_cases, results[len(merge_cases):], strict=True):
        if any(op["path"] == "" for op in ops):
            continue                         # kubectl needs the result to stay a ConfigMap
        assert P.json_patch(doc, ops) == theirs, ops


def test_three_way_patches_mean_the_same_to_kubernetes(kubectl):
    last = T.applied_manifest()
    current = T.live(last)
    jobs, ours = [], []
    # Kubernetes merges container ports by number alone, so a TCP twin of a UDP port is one item
    # to it and two to us: that case cannot mean the same.
    cases = [c for c in T.THREE_WAY if c[0] != "udp port renamed and tcp twin added"]
    assert len(cases) == len(T.THREE_WAY) - 1
    for _, change in cases:
        body = P.create_three_way_merge_patch(last, T.modify(change), current, T.DEPLOY)
        jobs.append((current, "strategic", body))
        ours.append(P.strategic_merge_patch(current, body, T.DEPLOY))
    for (name, _), mine, theirs in zip(cases, ours, kubectl(jobs), strict=True):
        assert not isinstance(theirs, Exception), f"{name}: kubectl refused our patch: {theirs}"
        assert mine == theirs, name
