"""The official ``kubernetes`` Python client (37.x) against a real API server and controller manager.

The client is synchronous, so these are plain test functions; watches run in a thread. The
controller manager runs the deployment, replicaset, garbage collector and namespace controllers so
that scaling and foreground deletion complete as they would on Kubernetes. Each test works in a
fresh namespace.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from tests.fixtures.apiserver import REPO, ApiServer, free_port

CONTROLLERS = "deployment,replicaset,garbagecollector,namespace"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[ApiServer]:
    data = tmp_path_factory.mktemp("python-client")
    server = ApiServer(data).start()
    log = open(data / "controller-manager.log", "wb")  # closed once the process stops
    cm = subprocess.Popen(
        [sys.executable, "-m", "navarch", "controller-manager", "--kubeconfig", str(server.kubeconfig),
         f"--controllers={CONTROLLERS}", "--port", str(free_port())],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)))
    try:
        yield server
    finally:
        cm.terminate()
        try:
            cm.wait(15)
        except subprocess.TimeoutExpired:
            cm.kill()
            cm.wait()
        log.close()
        server.stop()


@pytest.fixture(scope="module")
def api(cluster) -> Iterator[client.ApiClient]:
    api_client = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    yield api_client
    api_client.close()


@pytest.fixture
def core(api) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture
def apps(api) -> client.AppsV1Api:
    return client.AppsV1Api(api)


@pytest.fixture
def ns(core) -> Iterator[str]:
    name = f"py-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    try:
        core.delete_namespace(name)
    except ApiException as e:
        if e.status != 404:
            raise


def eventually(check: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def status_of(e: ApiException) -> dict:
    return json.loads(e.body)


def make_pod(name: str, **labels: str) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels=labels or None),
        spec=client.V1PodSpec(containers=[client.V1Container(name="main", image="busybox:1.36",
                                                             command=["sleep", "3600"])]))


def test_version(api):
    info = client.VersionApi(api).get_code()
    assert (info.major, info.minor) == ("1", "32")
    assert info.git_version.startswith("v1.32.")


def test_pod_lifecycle_seen_by_a_watch(core, ns):
    listed = core.list_namespaced_pod(ns)
    assert listed.items == []
    events: list[tuple[str, client.V1Pod]] = []
    w = watch.Watch()

    def consume() -> None:
        for event in w.stream(core.list_namespaced_pod, ns, resource_version=listed.metadata.resource_version,
                              timeout_seconds=60):
            events.append((event["type"], event["object"]))
            if event["type"] == "DELETED":
                w.stop()

    watcher = threading.Thread(target=consume, name="pod-watch")
    watcher.start()

    created = core.create_namespaced_pod(ns, make_pod("web", app="web"))
    assert isinstance(created, client.V1Pod)
    assert created.metadata.uid and created.metadata.namespace == ns
    assert created.spec.restart_policy == "Always"  # defaulted by the server
    assert created.spec.containers[0].termination_message_policy == "File"

    assert [p.metadata.name for p in core.list_namespaced_pod(ns, label_selector="app=web").items] == ["web"]
    assert core.list_namespaced_pod(ns, label_selector="app=other").items == []
    assert [p.metadata.name for p in core.list_namespaced_pod(ns, field_selector="metadata.name=web").items] \
        == ["web"]

    read = core.read_namespaced_pod("web", ns)
    assert read.metadata.resource_version == created.metadata.resource_version

    patched = core.patch_namespaced_pod("web", ns, {"metadata": {"labels": {"tier": "front"}}})
    assert patched.metadata.labels == {"app": "web", "tier": "front"}

    patched.metadata.labels["release"] = "1"
    patched.metadata.annotations = {"note": "replaced"}
    replaced = core.replace_namespaced_pod("web", ns, patched)
    assert replaced.metadata.labels == {"app": "web", "tier": "front", "release": "1"}
    assert replaced.metadata.annotations == {"note": "replaced"}
    assert int(replaced.metadata.resource_version) > int(patched.metadata.resource_version)

    deleted = core.delete_namespaced_pod("web", ns)
    assert isinstance(deleted, client.V1Pod)  # pods answer a delete with the pod, not a Status
    assert deleted.metadata.name == "web"

    watcher.join(90)
    assert not watcher.is_alive(), "the watch did not end"
    assert [t for t, _ in events] == ["ADDED", "MODIFIED", "MODIFIED", "DELETED"]
    assert all(isinstance(obj, client.V1Pod) and obj.metadata.name == "web" for _, obj in events)
    assert events[1][1].metadata.labels == {"app": "web", "tier": "front"}
    assert events[2][1].metadata.annotations == {"note": "replaced"}
    with pytest.raises(ApiException) as info:
        core.read_namespaced_pod("web", ns)
    assert info.value.status == 404


def test_watch_ends_when_its_timeout_expires(core, ns):
    core.create_namespaced_pod(ns, make_pod("idle"))
    events: list[str] = []

    def consume() -> None:
        for event in watch.Watch().stream(core.list_namespaced_pod, ns, timeout_seconds=2):
            events.append(event["type"])

    watcher = threading.Thread(target=consume, name="idle-watch")
    watcher.start()
    watcher.join(60)
    assert not watcher.is_alive(), "the server did not close the watch after timeoutSeconds"
    assert events == ["ADDED"]  # a watch without a resourceVersion starts with the current state


def test_configmap_crud(core, ns):
    created = core.create_namespaced_config_map(
        ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="settings"), data={"a": "1"}))
    assert created.data == {"a": "1"} and created.kind == "ConfigMap"
    assert [c.metadata.name for c in core.list_namespaced_config_map(ns).items] == ["settings"]

    patched = core.patch_namespaced_config_map("settings", ns, {"data": {"b": "2"}})
    assert patched.data == {"a": "1", "b": "2"}

    current = core.read_namespaced_config_map("settings", ns)
    current.data = {"only": "this"}
    replaced = core.replace_namespaced_config_map("settings", ns, current)
    assert replaced.data == {"only": "this"}

    core.delete_namespaced_config_map("settings", ns)
    with pytest.raises(ApiException) as info:
        core.read_namespaced_config_map("settings", ns)
    assert info.value.status == 404


def test_configmap_delete_answers_with_a_success_status(core, ns):
    created = core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c")))
    answer = core.delete_namespaced_config_map("c", ns)
    # Client 37 types this response as a plain object (dict); older ones deserialize a V1Status.
    if not isinstance(answer, dict):
        answer = client.ApiClient().sanitize_for_serialization(answer)
    assert answer["kind"] == "Status" and answer["status"] == "Success"
    details = answer["details"]
    assert (details["name"], details["kind"], details["uid"]) == ("c", "configmaps", created.metadata.uid)


def test_paged_list_counts_what_remains(core, ns):
    for i in range(3):
        core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name=f"c{i}")))
    page = core.list_namespaced_config_map(ns, limit=2)
    assert [c.metadata.name for c in page.items] == ["c0", "c1"]
    assert page.metadata._continue
    assert page.metadata.remaining_item_count == 1


def test_log_of_a_missing_pod_is_not_found(core, ns):
    with pytest.raises(ApiException) as info:
        core.read_namespaced_pod_log("missing", ns)
    assert (info.value.status, status_of(info.value)["reason"]) == (404, "NotFound")


def test_errors_surface_as_api_exceptions(core, ns):
    core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="taken")))
    stale = core.read_namespaced_config_map("taken", ns)
    core.patch_namespaced_config_map("taken", ns, {"data": {"x": "1"}})

    cases: list[tuple[Callable[[], Any], int, str, str]] = [
        (lambda: core.create_namespaced_config_map(
            ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="taken"))),
         409, "AlreadyExists", 'configmaps "taken" already exists'),
        (lambda: core.replace_namespaced_config_map("taken", ns, stale),
         409, "Conflict", "the object has been modified"),
        (lambda: core.create_namespaced_pod(ns, {"metadata": {"name": "empty"}, "spec": {"containers": []}}),
         422, "Invalid", 'Pod "empty" is invalid'),
        (lambda: core.read_namespaced_pod("missing", ns), 404, "NotFound", 'pods "missing" not found'),
        (lambda: core.read_namespace(f"{ns}-missing"), 404, "NotFound", "not found"),
        (lambda: core.list_namespaced_pod(ns, label_selector="a in ("), 400, "BadRequest", ""),
        (lambda: core.list_namespaced_pod(ns, field_selector="spec.nothing=x"), 400, "BadRequest",
         "field label not supported"),
    ]
    for call, code, reason, words in cases:
        with pytest.raises(ApiException) as info:
            call()
        status = status_of(info.value)
        assert (info.value.status, status["kind"], status["status"], status["code"], status["reason"]) == (
            code, "Status", "Failure", code, reason), status
        assert words in status["message"], status

    with pytest.raises(ApiException) as info:
        core.create_namespaced_pod(ns, {"metadata": {"name": "empty"}, "spec": {"containers": []}})
    causes = status_of(info.value)["details"]["causes"]
    assert {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.containers"} in causes


def make_deployment(name: str, replicas: int) -> client.V1Deployment:
    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=replicas, selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(name="web", image="nginx:1.27")]))))


def test_deployment_scale_and_foreground_delete(apps, core, ns):
    created = apps.create_namespaced_deployment(ns, make_deployment("web", 1))
    assert isinstance(created, client.V1Deployment)
    assert created.spec.strategy.type == "RollingUpdate"
    assert created.spec.revision_history_limit == 10

    scale = apps.patch_namespaced_deployment_scale("web", ns, {"spec": {"replicas": 3}})
    assert isinstance(scale, client.V1Scale)
    assert (scale.kind, scale.api_version, scale.spec.replicas) == ("Scale", "autoscaling/v1", 3)

    read = apps.read_namespaced_deployment_scale("web", ns)
    assert read.spec.replicas == 3 and read.status.selector == "app=web"
    assert apps.read_namespaced_deployment("web", ns).spec.replicas == 3

    eventually(lambda: apps.read_namespaced_deployment_scale("web", ns).status.replicas == 3,
               "the controllers to make 3 replicas")
    [rs] = apps.list_namespaced_replica_set(ns, label_selector="app=web").items
    assert rs.spec.replicas == 3
    assert rs.metadata.owner_references[0].uid == created.metadata.uid

    apps.delete_namespaced_deployment("web", ns, body=client.V1DeleteOptions(propagation_policy="Foreground"))

    def deployment_gone() -> bool:
        try:
            d = apps.read_namespaced_deployment("web", ns)
        except ApiException as e:
            if e.status == 404:
                return True
            raise
        assert "foregroundDeletion" in (d.metadata.finalizers or [])
        assert d.metadata.deletion_timestamp is not None
        return False

    eventually(deployment_gone, "the foreground deletion to finish")
    assert apps.list_namespaced_replica_set(ns, label_selector="app=web").items == []
    assert core.list_namespaced_pod(ns, label_selector="app=web").items == []
