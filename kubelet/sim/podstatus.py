"""A pod's status as a function of its simulated state: what a node agent would report.

``build_status(pod, state, host_ip)`` returns the fields the simulator owns (phase, conditions,
IPs, startTime, container statuses); the simulator writes them with a merge patch, so fields it
does not own (qosClass, nominatedNodeName, ...) are left alone, and conditions of types it does
not own (DisruptionTarget, ...) are carried over from the pod.

Readiness: the simulator runs no probes, so a pod whose containers run is Ready, readiness probes
and readiness gates notwithstanding.
"""

from __future__ import annotations

import functools
import hashlib
from datetime import UTC, datetime
from typing import Any

from kubelet.sim.lifecycle import BACKOFF, EXITED, KILLED, PENDING, RUNNING, Exit, PodState

OWN_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready", "PodScheduled")
STATUS_KEYS = ("phase", "conditions", "hostIP", "hostIPs", "podIP", "podIPs", "startTime",
               "containerStatuses", "initContainerStatuses")


_last_stamp: tuple[int, str] = (-1, "")


def rfc3339(ts: float) -> str:
    """``ts`` to the second, as status times are written (the last second's text is reused:
    a burst of pods reports the same few seconds)."""
    global _last_stamp
    sec = int(ts // 1)
    if _last_stamp[0] != sec:
        _last_stamp = (sec, datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    return _last_stamp[1]


def container_id(uid: str, name: str, run: int) -> str:
    return "sim://" + hashlib.sha256(f"{uid}/{name}/{run}".encode()).hexdigest()


@functools.lru_cache(maxsize=1024)
def image_id(image: str) -> str:
    """A digest reference for ``image`` (stable per image name) as runtimes report imageID."""
    repo = image.split("@", 1)[0]
    slash = repo.rfind("/")
    colon = repo.rfind(":")
    if colon > slash:
        repo = repo[:colon]
    return f"{repo}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


def _terminated(exit: Exit, cid: str) -> dict[str, Any]:
    return {"exitCode": exit.code, "reason": exit.reason, "startedAt": rfc3339(exit.started),
            "finishedAt": rfc3339(exit.finished), "containerID": cid}


def _container_status(pod: dict[str, Any], st: PodState, c: dict[str, Any]) -> dict[str, Any]:
    name = c.get("name", "")
    image = c.get("image", "")
    uid = st.uid
    out: dict[str, Any] = {"name": name, "image": image, "imageID": "", "ready": False,
                           "started": False, "restartCount": st.restarts, "state": {}, "lastState": {}}
    if st.stage == PENDING:
        out["state"] = {"waiting": {"reason": "ContainerCreating"}}
        return out
    out["imageID"] = image_id(image)
    if st.stage == RUNNING:
        assert st.started_at is not None
        out["containerID"] = container_id(uid, name, st.run)
        out["state"] = {"running": {"startedAt": rfc3339(st.started_at)}}
        out["ready"] = out["started"] = True
        if st.last_exit is not None:
            out["lastState"] = {"terminated": _terminated(st.last_exit, container_id(uid, name, st.last_exit.run))}
    elif st.stage == BACKOFF:
        assert st.last_exit is not None and st.restart_at is not None
        delay = max(0, round(st.restart_at - st.last_exit.finished))
        md = pod.get("metadata") or {}
        out["containerID"] = container_id(uid, name, st.last_exit.run)
        out["state"] = {"waiting": {"reason": "CrashLoopBackOff",
                                    "message": f"back-off {delay}s restarting failed container={name} "
                                               f"pod={md.get('name')}_{md.get('namespace')}({uid})"}}
        out["lastState"] = {"terminated": _terminated(st.last_exit, out["containerID"])}
    else:  # EXITED or KILLED
        assert st.last_exit is not None
        out["containerID"] = container_id(uid, name, st.last_exit.run)
        out["state"] = {"terminated": _terminated(st.last_exit, out["containerID"])}
    return out


def _init_status(st: PodState, c: dict[str, Any]) -> dict[str, Any]:
    """Init containers ran to completion just before the containers started; sidecars (init
    containers with restartPolicy Always) run alongside them."""
    name = c.get("name", "")
    image = c.get("image", "")
    out: dict[str, Any] = {"name": name, "image": image, "imageID": "", "ready": False,
                           "started": False, "restartCount": 0, "state": {}, "lastState": {}}
    if st.stage == PENDING:
        out["state"] = {"waiting": {"reason": "PodInitializing"}}
        return out
    out["imageID"] = image_id(image)
    out["containerID"] = container_id(st.uid, name, 0)
    begun = st.start_at
    if c.get("restartPolicy") == "Always" and st.stage in (RUNNING, BACKOFF):
        out["state"] = {"running": {"startedAt": rfc3339(begun)}}
        out["ready"] = out["started"] = True
    elif c.get("restartPolicy") == "Always":
        assert st.last_exit is not None
        out["state"] = {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": rfc3339(begun),
                                       "finishedAt": rfc3339(st.last_exit.finished),
                                       "containerID": out["containerID"]}}
    else:
        out["state"] = {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": rfc3339(begun),
                                       "finishedAt": rfc3339(begun), "containerID": out["containerID"]}}
        out["ready"] = True
    return out


def _condition(st: PodState, ctype: str, status: str, now: float, reason: str | None = None,
               message: str | None = None) -> dict[str, Any]:
    before = st.conditions.get(ctype)
    since = before[1] if before is not None and before[0] == status and before[1] else rfc3339(now)
    st.conditions[ctype] = (status, since)
    cond: dict[str, Any] = {"type": ctype, "status": status, "lastProbeTime": None, "lastTransitionTime": since}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def build_status(pod: dict[str, Any], st: PodState, host_ip: str, now: float) -> dict[str, Any]:
    spec = pod.get("spec") or {}
    containers = spec.get("containers") or []
    inits = spec.get("initContainers") or []
    names = [c.get("name", "") for c in containers]
    running = st.stage == RUNNING
    sandbox = st.stage in (RUNNING, BACKOFF)
    initialized = st.stage != PENDING or not inits
    conds = [_condition(st, "PodReadyToStartContainers", "True" if sandbox else "False", now)]
    conds.append(_condition(st, "Initialized", "True" if initialized else "False", now,
                            None if initialized else "ContainersNotInitialized",
                            None if initialized else
                            f"containers with incomplete status: [{' '.join(c.get('name', '') for c in inits)}]"))
    if running:
        conds.append(_condition(st, "ContainersReady", "True", now))
        conds.append(_condition(st, "Ready", "True", now))
    else:
        reason = "PodCompleted" if st.stage in (EXITED, KILLED) else "ContainersNotReady"
        message = None if reason == "PodCompleted" else f"containers with unready status: [{' '.join(names)}]"
        conds.append(_condition(st, "ContainersReady", "False", now, reason, message))
        conds.append(_condition(st, "Ready", "False", now, reason, message))
    others = []
    scheduled = None
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "PodScheduled":
            scheduled = c
        elif c.get("type") not in OWN_CONDITIONS:
            others.append(c)
    conds.append(scheduled if scheduled is not None and scheduled.get("status") == "True"
                 else _condition(st, "PodScheduled", "True", now))
    status: dict[str, Any] = {
        "phase": st.phase(),
        "conditions": conds + others,
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "startTime": rfc3339(st.seen),
        "containerStatuses": [_container_status(pod, st, c) for c in containers],
    }
    if st.ip:
        status["podIP"] = st.ip
        status["podIPs"] = [{"ip": st.ip}]
    if inits:
        status["initContainerStatuses"] = [_init_status(st, c) for c in inits]
    return status


def owned_part(status: dict[str, Any] | None) -> dict[str, Any]:
    """The fields of a stored status that ``build_status`` owns, to compare with what was written."""
    status = status or {}
    return {k: status[k] for k in STATUS_KEYS if k in status}

