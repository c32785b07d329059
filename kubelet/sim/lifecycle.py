"""The simulated life of one pod: a small state machine driven by time, without I/O.

Stages: PENDING (bound, containers not started yet: ``--pod-startup-delay``), RUNNING, BACKOFF
(between a container's exit and its restart), EXITED (ended for good under its restart policy),
KILLED (ended by deletion). All containers of a pod share one fate: they start, exit and restart
together, since the exit annotations are per pod.

``advance(state, now)`` applies every transition due by ``now`` at the moment it was due (so a
late sync still records the exact exit and restart times), and ``next_due`` says when to look
again. Restarts follow the node agent's habit: the first restart after a run is immediate, each
further one waits ``restart_backoff`` doubled per crash up to ``restart_backoff_max`` (shown as
CrashLoopBackOff); a run that lasted twice the maximum resets the back-off.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from client.component import parse_duration
from kubelet.sim.config import ANNOTATION_EXIT_AFTER, ANNOTATION_EXIT_CODE

PENDING = "pending"
RUNNING = "running"
BACKOFF = "backoff"
EXITED = "exited"
KILLED = "killed"

# Exit code of a container stopped by deletion while running (it died of SIGTERM), and of one
# that never ran.
SIGTERM_EXIT = 143
UNKNOWN_EXIT = 137
# Transitions applied in one ``advance`` at most: a pod set to exit at once and restart without
# back-off would otherwise spin here.
MAX_STEPS = 64
MIN_EXIT_AFTER = 0.01


@dataclass
class Exit:
    code: int
    started: float
    finished: float
    run: int
    reason: str = ""

    def __post_init__(self) -> None:
        if not self.reason:
            self.reason = "Completed" if self.code == 0 else "Error"


@dataclass
class Behaviour:
    """What a pod's spec and annotations ask of the simulation."""

    restart_policy: str = "Always"
    exit_after: float | None = None
    exit_code: int = 0
    problems: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, pod: dict[str, Any]) -> Behaviour:
        annotations = (pod.get("metadata") or {}).get("annotations") or {}
        b = cls(restart_policy=(pod.get("spec") or {}).get("restartPolicy") or "Always")
        text = annotations.get(ANNOTATION_EXIT_AFTER)
        if text is not None:
            try:
                b.exit_after = max(MIN_EXIT_AFTER, parse_duration(str(text)))
            except ValueError as e:
                b.problems.append(f"{ANNOTATION_EXIT_AFTER}: {e}")
        code = annotations.get(ANNOTATION_EXIT_CODE)
        if code is not None:
            try:
                b.exit_code = int(str(code).strip())
                if not 0 <= b.exit_code <= 255:
                    raise ValueError
            except ValueError:
                b.problems.append(f"{ANNOTATION_EXIT_CODE}: {code!r} is not an exit code (0-255)")
                b.exit_code = 1
        return b

    def restarts_after(self, code: int) -> bool:
        return self.restart_policy == "Always" or (self.restart_policy == "OnFailure" and code != 0)


@dataclass
class Timing:
    startup_delay: float = 0.0
    termination_delay: float = 0.0
    backoff: float = 10.0
    backoff_max: float = 300.0


@dataclass
class PodState:
    uid: str
    node: str
    seen: float                       # when the pod was first seen on the node (its startTime)
    start_at: float                   # when the containers (first) start
    stage: str = PENDING
    run: int = 0                      # runs started so far, the current one included
    restarts: int = 0
    crashes: int = 0                  # exits since the back-off last reset
    started_at: float | None = None   # start of the current run
    exit_at: float | None = None
    restart_at: float | None = None
    last_exit: Exit | None = None
    kill_at: float | None = None
    ip: str | None = None
    # Condition type -> (status, lastTransitionTime as written), so times move only on change.
    conditions: dict[str, tuple[str, str]] = field(default_factory=dict)
    # What we last wrote, what the server stored for it, and at which resourceVersion.
    written: dict[str, Any] | None = None
    echo: dict[str, Any] | None = None
    written_rv: int = 0
    deleted: bool = False

    @property
    def terminal(self) -> bool:
        return self.stage in (EXITED, KILLED)

    def phase(self) -> str:
        if self.stage == PENDING:
            return "Pending"
        if self.stage in (RUNNING, BACKOFF):
            return "Running"
        assert self.last_exit is not None
        return "Succeeded" if self.last_exit.code == 0 else "Failed"


def backoff_delay(crashes: int, timing: Timing) -> float:
    """Wait before the restart that follows the ``crashes``-th exit since the last reset."""
    if crashes <= 1:
        return 0.0
    return min(timing.backoff * 2 ** min(crashes - 2, 32), timing.backoff_max)


def start(st: PodState, when: float, behaviour: Behaviour) -> None:
    st.stage = RUNNING
    st.run += 1
    st.started_at = when
    st.restart_at = None
    st.exit_at = when + behaviour.exit_after if behaviour.exit_after is not None else None


def exit_now(st: PodState, when: float, behaviour: Behaviour, timing: Timing) -> None:
    assert st.started_at is not None
    st.last_exit = Exit(behaviour.exit_code, st.started_at, when, st.run)
    st.exit_at = None
    if not behaviour.restarts_after(behaviour.exit_code):
        st.stage = EXITED
        return
    if when - st.started_at >= 2 * timing.backoff_max:
        st.crashes = 0
    st.crashes += 1
    st.stage = BACKOFF
    st.restart_at = when + backoff_delay(st.crashes, timing)


def advance(st: PodState, now: float, behaviour: Behaviour, timing: Timing) -> bool:
    """Apply the transitions due by ``now``; True if the stage or a run changed."""
    changed = False
    for _ in range(MAX_STEPS):
        if st.stage == PENDING and now >= st.start_at:
            start(st, st.start_at, behaviour)
        elif st.stage == RUNNING and st.exit_at is not None and now >= st.exit_at:
            exit_now(st, st.exit_at, behaviour, timing)
        elif st.stage == BACKOFF and st.restart_at is not None and now >= st.restart_at:
            st.restarts += 1
            start(st, st.restart_at, behaviour)
        else:
            return changed
        changed = True
    return changed


def kill(st: PodState, when: float) -> None:
    """End every container because the pod is being deleted."""
    if st.stage == RUNNING:
        assert st.started_at is not None
        st.last_exit = Exit(SIGTERM_EXIT, st.started_at, when, st.run)
    elif st.stage == PENDING or st.last_exit is None:
        st.last_exit = Exit(UNKNOWN_EXIT, when, when, st.run, "ContainerStatusUnknown")
    st.stage = KILLED
    st.exit_at = st.restart_at = None


def next_due(st: PodState) -> float | None:
    if st.deleted:
        return None
    due = [t for t in (st.kill_at, _stage_due(st)) if t is not None]
    return min(due) if due else None


def _stage_due(st: PodState) -> float | None:
    if st.stage == PENDING:
        return st.start_at
    if st.stage == RUNNING:
        return st.exit_at
    if st.stage == BACKOFF:
        return st.restart_at
    return None


# -- taking over a pod from an earlier run of the simulator ---------------------------------


def _ts(text: Any) -> float | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def adopt(pod: dict[str, Any], node: str, now: float, behaviour: Behaviour, timing: Timing) -> PodState:
    """State for a pod first seen now: new (PENDING), or resumed from the status an earlier run
    of the simulator wrote (running, backing off, or just exited)."""
    status = pod.get("status") or {}
    uid = (pod.get("metadata") or {}).get("uid", "")
    seen = _ts(status.get("startTime")) or now
    st = PodState(uid=uid, node=node, seen=seen, start_at=now + timing.startup_delay)
    for c in status.get("conditions") or []:
        if c.get("type") and c.get("status"):
            st.conditions[c["type"]] = (c["status"], c.get("lastTransitionTime") or "")
    statuses = status.get("containerStatuses") or []
    if status.get("phase") != "Running" or not statuses:
        return st
    first = statuses[0]
    st.ip = status.get("podIP") or None
    st.restarts = st.run = int(first.get("restartCount") or 0)
    st.crashes = 1 if st.restarts else 0
    last = (first.get("lastState") or {}).get("terminated")
    if last:
        st.last_exit = Exit(int(last.get("exitCode") or 0), _ts(last.get("startedAt")) or seen,
                            _ts(last.get("finishedAt")) or seen, st.run, last.get("reason") or "")
    state = first.get("state") or {}
    if "running" in state:
        st.run += 1
        st.stage = RUNNING
        st.started_at = _ts(state["running"].get("startedAt")) or now
        if behaviour.exit_after is not None:
            st.exit_at = st.started_at + behaviour.exit_after
    elif "terminated" in state:
        st.stage = RUNNING
        st.run += 1
        term = state["terminated"]
        st.started_at = _ts(term.get("startedAt")) or now
        exit_now(st, _ts(term.get("finishedAt")) or now, behaviour, timing)
    else:
        st.stage = BACKOFF
        st.restart_at = now + backoff_delay(max(st.crashes, 2), timing)
    return st
