"""Pure functions of the DaemonSet and StatefulSet controllers and of the revision history."""

from __future__ import annotations

import pytest

from controller_manager import history
from controller_manager.controllers.daemonset import (
    daemon_tolerations,
    pin_to_node,
    should_run,
    surge_and_unavailable,
    target_node,
)
from controller_manager.controllers.statefulset import build_pod, ordinal_of
from tests.controllers.sets.helpers import daemonset, node, statefulset


def _ds(**pod_spec) -> dict:
    return daemonset("agent", pod_spec=pod_spec)


AFFINITY_ZONE_A = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}}


@pytest.mark.parametrize("pod_spec, node_obj, expected", [
    ({}, node("n"), (True, True)),
    ({"nodeSelector": {"role": "edge"}}, node("n"), (False, False)),
    ({"nodeSelector": {"role": "edge"}}, node("n", {"role": "edge"}), (True, True)),
    ({"affinity": AFFINITY_ZONE_A}, node("n", {"zone": "b"}), (False, False)),
    ({"affinity": AFFINITY_ZONE_A}, node("n", {"zone": "a"}), (True, True)),
    ({}, node("n", taints=[{"key": "k", "effect": "NoSchedule"}]), (False, True)),
    ({}, node("n", taints=[{"key": "k", "effect": "NoExecute"}]), (False, False)),
    ({}, node("n", taints=[{"key": "k", "effect": "PreferNoSchedule"}]), (True, True)),
    ({"tolerations": [{"key": "k", "operator": "Exists"}]},
     node("n", taints=[{"key": "k", "effect": "NoExecute"}]), (True, True)),
    # Taints every daemon pod tolerates.
    ({}, node("n", taints=[{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
                           {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"},
                           {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"},
                           {"key": "node.kubernetes.io/memory-pressure", "effect": "NoSchedule"}]), (True, True)),
    ({}, node("n", taints=[{"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}]),
     (False, True)),
    ({"hostNetwork": True},
     node("n", taints=[{"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}]), (True, True)),
    ({"nodeName": "other"}, node("n"), (False, False)),
])
def test_should_run(pod_spec, node_obj, expected):
    assert should_run(_ds(**pod_spec), node_obj) == expected


def test_daemon_tolerations_are_added_once_and_replace_timed_ones():
    spec = {"tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
                             "tolerationSeconds": 300},
                            {"key": "custom", "operator": "Exists"}]}
    got = daemon_tolerations(spec)
    assert len(got) == 7
    assert {"key": "custom", "operator": "Exists"} in got
    assert got[0] == {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"}
    assert daemon_tolerations({"tolerations": got}) == got
    with_net = daemon_tolerations({"hostNetwork": True})
    assert {"key": "node.kubernetes.io/network-unavailable", "operator": "Exists",
            "effect": "NoSchedule"} in with_net


def test_pin_to_node_replaces_match_fields_and_keeps_expressions():
    field = {"key": "metadata.name", "operator": "In", "values": ["n1"]}
    assert pin_to_node({}, "n1")["affinity"]["nodeAffinity"] == {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchFields": [field]}]}}
    spec = {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}],
         "matchFields": [{"key": "metadata.name", "operator": "In", "values": ["old"]}]},
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}]}}}}
    pinned = pin_to_node(spec, "n1")
    terms = pinned["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"]
    assert [t["matchFields"] for t in terms] == [[field], [field]]
    assert [t["matchExpressions"][0]["values"] for t in terms] == [["a"], ["b"]]
    assert spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"][0]["matchFields"][0]["values"] == ["old"]      # the input is left alone
    assert target_node({"spec": pinned}) == "n1"
    assert target_node({"spec": {**pinned, "nodeName": "n2"}}) == "n2"
    assert target_node({"spec": {}}) is None


@pytest.mark.parametrize("rolling, desired, expected", [
    ({}, 10, (0, 1)),
    ({"maxUnavailable": "25%"}, 10, (0, 3)),
    ({"maxUnavailable": 0, "maxSurge": "10%"}, 15, (2, 0)),
    ({"maxUnavailable": 0, "maxSurge": 0}, 5, (0, 1)),
])
def test_surge_and_unavailable(rolling, desired, expected):
    ds = daemonset("agent", strategy={"type": "RollingUpdate", "rollingUpdate": rolling})
    assert surge_and_unavailable(ds, desired) == expected


def test_revision_data_and_hash():
    sts = statefulset("web")
    data = history.template_patch(sts)
    assert data["spec"]["template"]["$patch"] == "replace"
    assert history.template_of({"data": data}) == sts["spec"]["template"]
    # Null metadata fields (as some clients send) make no new revision.
    sts2 = statefulset("web")
    sts2["spec"]["template"]["metadata"]["creationTimestamp"] = None
    assert history.template_patch(sts2) == data
    h = history.revision_hash(data)
    assert h == history.revision_hash(history.template_patch(statefulset("web")))
    assert h != history.revision_hash(data, 1)
    assert h != history.revision_hash(history.template_patch(statefulset("web", image="busybox:2")))
    assert set(h) <= set("bcdfghjklmnpqrstvwxz2456789")
    sts["metadata"].update(uid="u1", namespace="ns")
    rev = history.new_revision(sts, data, 4, None)
    assert rev["metadata"]["name"] == f"web-{h}" and rev["revision"] == 4
    assert rev["metadata"]["labels"] == {"app": "web", history.HASH_LABEL: h}
    assert rev["metadata"]["ownerReferences"][0]["uid"] == "u1"


def test_statefulset_pod_identity():
    sts = statefulset("web")
    sts["metadata"].update(uid="u1", namespace="ns")
    sts["spec"]["volumeClaimTemplates"] = [{"metadata": {"name": "data"}}]
    pod = build_pod(sts, sts["spec"]["template"], 2, "web-abc")
    assert pod["metadata"]["name"] == "web-2"
    assert pod["metadata"]["labels"] == {"app": "web", "statefulset.kubernetes.io/pod-name": "web-2",
                                         "apps.kubernetes.io/pod-index": "2", "controller-revision-hash": "web-abc"}
    assert pod["spec"]["hostname"] == "web-2" and pod["spec"]["subdomain"] == "web"
    assert pod["spec"]["volumes"] == [{"name": "data", "emptyDir": {}}]
    assert ordinal_of("web", pod) == 2
    assert ordinal_of("we", pod) is None
    assert ordinal_of("web", {"metadata": {"name": "web-x"}}) is None
    assert ordinal_of("web-1", {"metadata": {"name": "web-1-0"}}) == 0
