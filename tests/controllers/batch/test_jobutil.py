"""Pure pieces of the Job controller: index intervals, pod failure policy rules, back-off."""

from __future__ import annotations

import pytest

from controller_manager.jobutil import (
    backoff_delay,
    format_intervals,
    match_failure_policy,
    parse_intervals,
    set_condition,
)


@pytest.mark.parametrize(("indexes", "text"), [
    (set(), ""),
    ({0}, "0"),
    ({0, 1, 2, 4}, "0-2,4"),
    ({1, 3, 5, 6, 7, 9}, "1,3,5-7,9"),
])
def test_intervals_round_trip(indexes, text):
    assert format_intervals(indexes) == text
    assert parse_intervals(text) == indexes


def test_backoff_doubles_up_to_six_minutes():
    assert [backoff_delay(n) for n in range(0, 8)] == [0, 10, 20, 40, 80, 160, 320, 360]
    assert backoff_delay(100) == 360


def failed_pod(*codes: int, conditions: list[dict] | None = None, names: list[str] | None = None) -> dict:
    names = names or [f"c{i}" for i in range(len(codes))]
    return {"metadata": {"name": "p", "namespace": "ns"},
            "status": {"phase": "Failed", "conditions": conditions or [],
                       "containerStatuses": [{"name": n, "state": {"terminated": {"exitCode": c}}}
                                             for n, c in zip(names, codes, strict=True)]}}


def with_policy(*rules: dict) -> dict:
    return {"spec": {"podFailurePolicy": {"rules": list(rules)}}}


POLICY = with_policy(
    {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
    {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}},
    {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [1, 2]}},
)


@pytest.mark.parametrize(("pod", "expected"), [
    (failed_pod(42, names=["main"]), ("FailJob", "Container main for pod ns/p failed with exit code 42 matching "
                                                 "FailJob rule at index 1")),
    (failed_pod(42, names=["sidecar"]), ("Count", "Container sidecar for pod ns/p failed with exit code 42 "
                                                   "matching Count rule at index 2")),
    (failed_pod(1), None),
    (failed_pod(0, 3), ("Count", "Container c1 for pod ns/p failed with exit code 3 matching Count rule at "
                                 "index 2")),
    (failed_pod(1, conditions=[{"type": "DisruptionTarget", "status": "True"}]),
     ("Ignore", "Pod ns/p has condition DisruptionTarget matching Ignore rule at index 0")),
    (failed_pod(1, conditions=[{"type": "DisruptionTarget", "status": "False"}]), None),
])
def test_failure_policy_first_matching_rule(pod, expected):
    assert match_failure_policy(POLICY, pod) == expected


def test_no_policy_matches_nothing():
    assert match_failure_policy({"spec": {}}, failed_pod(42)) is None


def test_set_condition_keeps_transition_time_when_status_holds():
    status: dict = {}
    assert set_condition(status, "Suspended", "True", "JobSuspended", "Job suspended", "t1")
    assert not set_condition(status, "Suspended", "True", "JobSuspended", "Job suspended", "t2")
    assert set_condition(status, "Suspended", "False", "JobResumed", "Job resumed", "t3")
    (c,) = status["conditions"]
    assert (c["status"], c["reason"], c["lastTransitionTime"]) == ("False", "JobResumed", "t3")
