"""Pure pieces of the Job controller: interval strings of completed indexes, pod failure policy
rules, pod re-creation back-off and Job conditions.

- ``parse_intervals("0-2,4") -> {0, 1, 2, 4}`` and ``format_intervals`` back, as
  ``status.completedIndexes`` writes them.
- ``match_failure_policy(job, pod) -> (action, message) | None``: the first rule of
  ``spec.podFailurePolicy`` matching a failed pod (``onExitCodes`` over the terminated
  containers, ``onPodConditions``), with the message Kubernetes gives a FailJob match.
- ``backoff_delay(failures)``: 10 s doubling per consecutive failure, at most 6 minutes.
- ``condition``, ``finished_condition``, ``set_condition``: the Job's conditions.
"""

from __future__ import annotations

from typing import Any

TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
JOB_INDEX_ENV = "JOB_COMPLETION_INDEX"
BACKOFF_BASE = 10.0
BACKOFF_MAX = 360.0


def parse_intervals(text: str | None) -> set[int]:
    out: set[int] = set()
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            a = int(lo)
            b = int(hi) if sep else a
        except ValueError:
            continue
        out.update(range(a, b + 1))
    return out


def format_intervals(indexes: set[int] | list[int]) -> str:
    parts: list[str] = []
    run: list[int] = []
    for i in sorted(set(indexes)):
        if run and i == run[-1] + 1:
            run.append(i)
            continue
        if run:
            parts.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
        run = [i]
    if run:
        parts.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
    return ",".join(parts)


def pod_index(pod: dict) -> int | None:
    md = pod.get("metadata") or {}
    text = (md.get("annotations") or {}).get(COMPLETION_INDEX) or (md.get("labels") or {}).get(COMPLETION_INDEX)
    if text is None or not str(text).isdigit():
        return None
    return int(text)


def backoff_delay(failures: int) -> float:
    """Seconds to wait before re-creating pods after ``failures`` consecutive failures."""
    if failures <= 0:
        return 0.0
    if failures > 16:
        return BACKOFF_MAX
    return min(BACKOFF_BASE * 2 ** (failures - 1), BACKOFF_MAX)


def _terminated_containers(pod: dict):
    status = pod.get("status") or {}
    for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        term = (cs.get("state") or {}).get("terminated")
        if term is not None:
            yield cs.get("name", ""), int(term.get("exitCode") or 0)


def _exit_codes_match(rule: dict, pod: dict) -> tuple[str, int] | None:
    req = rule.get("onExitCodes") or {}
    container = req.get("containerName")
    values = set(req.get("values") or [])
    op = req.get("operator")
    for name, code in _terminated_containers(pod):
        if container and name != container:
            continue
        if op == "In" and code in values:
            return name, code
        if op == "NotIn" and code != 0 and code not in values:
            return name, code
    return None


def _conditions_match(rule: dict, pod: dict) -> str | None:
    conds = {c.get("type"): c.get("status") for c in (pod.get("status") or {}).get("conditions") or []}
    for pattern in rule.get("onPodConditions") or []:
        if conds.get(pattern.get("type")) == (pattern.get("status") or "True"):
            return pattern.get("type")
    return None


def match_failure_policy(job: dict, pod: dict) -> tuple[str, str] | None:
    """(action, message) of the first podFailurePolicy rule matching the failed ``pod``."""
    policy = (job.get("spec") or {}).get("podFailurePolicy") or {}
    md = pod.get("metadata") or {}
    who = f"{md.get('namespace', '')}/{md.get('name', '')}"
    for i, rule in enumerate(policy.get("rules") or []):
        action = rule.get("action")
        if rule.get("onExitCodes"):
            hit = _exit_codes_match(rule, pod)
            if hit is not None:
                return action, (f"Container {hit[0]} for pod {who} failed with exit code {hit[1]} matching "
                                f"{action} rule at index {i}")
        elif rule.get("onPodConditions"):
            ctype = _conditions_match(rule, pod)
            if ctype is not None:
                return action, f"Pod {who} has condition {ctype} matching {action} rule at index {i}"
    return None


def condition(job: dict, ctype: str) -> dict | None:
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype and c.get("status") == "True":
            return c
    return None


def finished_condition(job: dict) -> dict | None:
    """The Complete or Failed condition that is True, if the Job has finished."""
    return condition(job, "Complete") or condition(job, "Failed")


def set_condition(status: dict, ctype: str, cstatus: str, reason: str, message: str, now: str) -> bool:
    """Set a condition in ``status`` (a copy the caller owns); True if anything changed."""
    conds: list[dict[str, Any]] = status.setdefault("conditions", [])
    for c in conds:
        if c.get("type") == ctype:
            if c.get("status") == cstatus and c.get("reason") == reason and c.get("message") == message:
                return False
            if c.get("status") != cstatus:
                c["lastTransitionTime"] = now
            c.update(status=cstatus, reason=reason, message=message, lastProbeTime=now)
            return True
    conds.append({"type": ctype, "status": cstatus, "reason": reason, "message": message,
                  "lastProbeTime": now, "lastTransitionTime": now})
    return True
