"""The simulator's pure parts: flag forms, the address plan, pod IPs, the pod state machine and
the status built from it."""

from __future__ import annotations

import pytest

from kubelet.sim import lifecycle
from kubelet.sim.config import ConfigError, SimConfig, parse_labels, parse_taints
from kubelet.sim.ipam import PodIPs, RangeFull
from kubelet.sim.lifecycle import BACKOFF, EXITED, KILLED, PENDING, RUNNING, Behaviour, PodState, Timing
from kubelet.sim.nodes import build_lease, build_node, node_conditions
from kubelet.sim.podstatus import build_status, image_id, owned_part
from tests.sim.helpers import make_pod

T0 = 1_800_000_000.0


@pytest.mark.parametrize(("text", "want"), [
    (None, {}),
    ("", {}),
    ("a=1", {"a": "1"}),
    ("a=1, b=2", {"a": "1", "b": "2"}),
    ("example.com/tier=gold,empty=", {"example.com/tier": "gold", "empty": ""}),
])
def test_parse_labels(text, want):
    assert parse_labels(text) == want


@pytest.mark.parametrize(("text", "want"), [
    ("k=v:NoSchedule", [{"key": "k", "value": "v", "effect": "NoSchedule"}]),
    ("k:NoExecute", [{"key": "k", "effect": "NoExecute"}]),
    ("a=b:PreferNoSchedule,c:NoSchedule", [{"key": "a", "value": "b", "effect": "PreferNoSchedule"},
                                           {"key": "c", "effect": "NoSchedule"}]),
])
def test_parse_taints(text, want):
    assert parse_taints(text) == want


@pytest.mark.parametrize("text", ["k=v", "k=v:Sometimes", ":NoSchedule"])
def test_bad_taints(text):
    with pytest.raises(ConfigError, match="--taints"):
        parse_taints(text)


@pytest.mark.parametrize(("fields", "flag"), [
    ({"count": -1}, "--count"),
    ({"cpu": "x"}, "--cpu"),
    ({"lease_renew_interval": 50}, "--lease-duration"),
    ({"pod_cidr": "10.0.0.0/33"}, "--pod-cidr"),
    ({"count": 257}, "--pod-cidr"),
    ({"node_cidr_mask_size": 31}, "--node-cidr-mask-size"),
    ({"restart_backoff": 10, "restart_backoff_max": 5}, "--restart-backoff"),
])
def test_config_errors_name_the_flag(fields, flag):
    with pytest.raises(ConfigError, match=flag):
        SimConfig(**fields)


def test_address_plan():
    cfg = SimConfig(count=300, start_index=5, pod_cidr="100.64.0.0/10", node_ip_range="10.250.0.0/16")
    assert cfg.node_names()[0] == "sim-5" and len(cfg.node_names()) == 300
    assert cfg.node_index("sim-5") == 5 and cfg.node_index("sim-304") == 304
    for name in ("sim-4", "sim-305", "sim-05", "sim-", "other-7", "sim-x"):
        assert cfg.node_index(name) is None, name
    assert cfg.node_ip(0) == "10.250.0.1" and cfg.node_ip(300) == "10.250.1.45"
    assert cfg.node_pod_cidr(0) == "100.64.0.0/24" and cfg.node_pod_cidr(257) == "100.65.1.0/24"
    assert SimConfig(zones=["a", "b", "c"]).zone(4) == "b"


def test_pod_ips():
    ips = PodIPs("10.1.2.0/29")                       # 8 addresses: .2 to .6 usable
    got = [ips.allocate() for _ in range(5)]
    assert got == ["10.1.2.2", "10.1.2.3", "10.1.2.4", "10.1.2.5", "10.1.2.6"]
    with pytest.raises(RangeFull):
        ips.allocate()
    ips.release("10.1.2.4")
    assert ips.allocate() == "10.1.2.4"
    assert not ips.adopt("10.9.9.9") and ips.adopt("10.1.2.6")
    assert not ips.contains("10.1.2.1") and not ips.contains("10.1.2.7")


def test_node_and_lease_objects():
    cfg = SimConfig(count=2, labels={"pool": "x", "kubernetes.io/arch": "arm64"}, arch="amd64")
    node = build_node(cfg, 1, T0)
    assert node["metadata"]["labels"]["kubernetes.io/arch"] == "arm64", "user labels win"
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == "sim-1"
    assert "taints" not in node["spec"]
    lease = build_lease(cfg, "sim-1", "uid-1", T0)
    assert lease["spec"]["renewTime"].endswith("Z") and "." in lease["spec"]["renewTime"]
    assert lease["metadata"]["ownerReferences"][0]["kind"] == "Node"


def test_node_conditions_keep_transition_times():
    first = node_conditions(T0)
    later = node_conditions(T0 + 60, first)
    for a, b in zip(first, later, strict=True):
        assert a["lastTransitionTime"] == b["lastTransitionTime"]
        assert a["lastHeartbeatTime"] != b["lastHeartbeatTime"]
    flipped = [dict(c, status="Unknown") if c["type"] == "Ready" else c for c in first]
    ready = {c["type"]: c for c in node_conditions(T0 + 60, flipped)}["Ready"]
    assert ready["status"] == "True" and ready["lastTransitionTime"] != first[-1]["lastTransitionTime"]


def test_backoff_sequence():
    timing = Timing(backoff=10, backoff_max=300)
    assert [lifecycle.backoff_delay(n, timing) for n in range(1, 9)] == [0, 10, 20, 40, 80, 160, 300, 300]


def _pod(**kw) -> dict:
    pod = make_pod("p", "ns", **kw)
    pod["metadata"]["uid"] = "u-1"
    pod["spec"]["nodeName"] = "sim-0"
    return pod


def _state(now: float = T0, delay: float = 0.0) -> PodState:
    return PodState(uid="u-1", node="sim-0", seen=now, start_at=now + delay)


# (policy, code) -> stages seen at T0+0.5, +1.5 (after first exit at +1), +2.5 (second exit +2)
STAGE_CASES = [
    ("Never", "0", [RUNNING, EXITED, EXITED]),
    ("Never", "1", [RUNNING, EXITED, EXITED]),
    ("OnFailure", "0", [RUNNING, EXITED, EXITED]),
    ("OnFailure", "1", [RUNNING, RUNNING, BACKOFF]),
    ("Always", "0", [RUNNING, RUNNING, BACKOFF]),
]


@pytest.mark.parametrize(("policy", "code", "stages"), STAGE_CASES)
def test_exit_and_restart_by_policy(policy, code, stages):
    pod = _pod(restart_policy=policy, exit_after="1s", exit_code=code)
    behaviour, timing = Behaviour.of(pod), Timing(backoff=10, backoff_max=300)
    st = _state()
    seen = []
    for offset in (0.5, 1.5, 2.5):
        lifecycle.advance(st, T0 + offset, behaviour, timing)
        seen.append(st.stage)
    assert seen == stages
    if st.stage == BACKOFF:
        assert st.restarts == 1 and st.restart_at == T0 + 2 + 10
        assert st.last_exit is not None and st.last_exit.finished == T0 + 2
    if st.stage == EXITED:
        assert st.phase() == ("Succeeded" if code == "0" else "Failed")
        assert st.last_exit is not None and st.last_exit.finished == T0 + 1


def test_late_sync_records_exact_times():
    pod = _pod(restart_policy="Always", exit_after="1s")
    st = _state()
    lifecycle.advance(st, T0 + 100, Behaviour.of(pod), Timing(backoff=10, backoff_max=40))
    # Runs: 0-1, restart at 1 (immediate) - exit 2, back-off 10 -> 12-13, 20 -> 33-34, 40 -> 74-75, 40 -> 115
    assert st.stage == BACKOFF and st.restarts == 4 and st.restart_at == T0 + 115
    assert st.last_exit is not None and st.last_exit.finished == T0 + 75


def test_bad_annotations_are_reported_not_fatal():
    pod = _pod(exit_after="soon", exit_code="many")
    b = Behaviour.of(pod)
    assert b.exit_after is None and len(b.problems) == 2


def test_kill_by_stage():
    behaviour, timing = Behaviour.of(_pod()), Timing()
    running = _state()
    lifecycle.advance(running, T0, behaviour, timing)
    lifecycle.kill(running, T0 + 5)
    assert running.stage == KILLED and running.last_exit.code == 143 and running.phase() == "Failed"
    pending = _state(delay=10)
    lifecycle.kill(pending, T0 + 1)
    assert pending.last_exit.reason == "ContainerStatusUnknown"


def test_status_of_a_running_pod():
    pod = _pod(containers=2, init_containers=1)
    pod["status"] = {"conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": "x"},
                                    {"type": "DisruptionTarget", "status": "True"}]}
    st = _state()
    lifecycle.advance(st, T0, Behaviour.of(pod), Timing())
    st.ip = "10.244.0.2"
    status = build_status(pod, st, "10.250.0.1", T0)
    assert status["phase"] == "Running" and status["podIP"] == "10.244.0.2"
    types = [c["type"] for c in status["conditions"]]
    assert types == ["PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready", "PodScheduled",
                     "DisruptionTarget"]
    assert status["conditions"][4]["lastTransitionTime"] == "x", "the binding's condition is kept"
    assert [c["name"] for c in status["containerStatuses"]] == ["c0", "c1"]
    assert status["initContainerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
    again = build_status(pod, st, "10.250.0.1", T0 + 30)
    assert again == status, "nothing changed, nothing to write"
    assert owned_part(dict(status, qosClass="BestEffort")) == status


def test_status_while_backing_off():
    pod = _pod(restart_policy="Always", exit_after="1s", exit_code="1")
    st = _state()
    lifecycle.advance(st, T0 + 2.5, Behaviour.of(pod), Timing(backoff=10, backoff_max=300))
    status = build_status(pod, st, "10.250.0.1", T0 + 2.5)
    cs = status["containerStatuses"][0]
    assert cs["state"]["waiting"]["reason"] == "CrashLoopBackOff" and "back-off 10s" in cs["state"]["waiting"]["message"]
    assert cs["lastState"]["terminated"]["exitCode"] == 1 and cs["restartCount"] == 1 and not cs["ready"]
    assert {c["type"]: c["status"] for c in status["conditions"]}["Ready"] == "False"


def test_adopt_resumes_a_running_pod():
    pod = _pod(restart_policy="Always", exit_after="10s")
    st = _state()
    lifecycle.advance(st, T0 + 11, Behaviour.of(pod), Timing())   # restarted once at T0+10
    st.ip = "10.244.0.9"
    pod["status"] = build_status(pod, st, "10.250.0.1", T0 + 11)
    resumed = lifecycle.adopt(pod, "sim-0", T0 + 12, Behaviour.of(pod), Timing())
    assert resumed.stage == RUNNING and resumed.restarts == 1 and resumed.ip == "10.244.0.9"
    assert resumed.exit_at == T0 + 20 and resumed.run == st.run
    assert build_status(pod, resumed, "10.250.0.1", T0 + 12) == pod["status"]
    fresh = lifecycle.adopt(_pod(), "sim-0", T0, Behaviour(), Timing(startup_delay=2))
    assert fresh.stage == PENDING and fresh.start_at == T0 + 2


def test_image_ids():
    assert image_id("busybox:1.36").startswith("busybox@sha256:")
    assert image_id("localhost:5000/app").startswith("localhost:5000/app@sha256:")
    assert image_id("r.io/a/b:v1") != image_id("r.io/a/b:v2")
