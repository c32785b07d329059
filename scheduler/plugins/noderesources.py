"""NodeResourcesFit and NodeResourcesBalancedAllocation.

Fit: the pod's requests (``scheduler.resources``) must fit in what the node has left, for every
resource it requests (cpu, memory, ephemeral-storage, extended resources), and the node must
have room for one more pod. A request larger than the node's whole allocatable is unresolvable
(preemption cannot help). Scoring strategies: LeastAllocated (default: prefer emptier nodes),
MostAllocated (pack), RequestedToCapacityRatio (a utilization-to-score curve); cpu and memory
use the "non-zero" requests so pods without requests still spread.

BalancedAllocation: prefer nodes whose resources end up used in similar fractions (1 minus the
standard deviation of the fractions).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping

from scheduler import resources
from scheduler.framework import MAX_NODE_SCORE, CycleState, NodeInfo, Snapshot, Status
from scheduler.resources import CPU, EPHEMERAL_STORAGE, MEMORY, PODS

LEAST_ALLOCATED = "LeastAllocated"
MOST_ALLOCATED = "MostAllocated"
REQUESTED_TO_CAPACITY_RATIO = "RequestedToCapacityRatio"
DEFAULT_RESOURCES = [{"name": CPU, "weight": 1}, {"name": MEMORY, "weight": 1}]
TOO_MANY_PODS = "Too many pods"
_FIT_STATE = "NodeResourcesFit/pre"
_BALANCED_STATE = "NodeResourcesBalancedAllocation/pre"
_NATIVE_ORDER = {CPU: 0, MEMORY: 1, EPHEMERAL_STORAGE: 2}
_GENERATION = operator.attrgetter("generation")


def _config_error(msg: str) -> Exception:
    from scheduler.profile import ConfigError
    return ConfigError(msg)


def _resource_weights(spec: object, path: str) -> list[tuple[str, int]]:
    if spec is None:
        spec = DEFAULT_RESOURCES
    if not isinstance(spec, list) or not spec:
        raise _config_error(f"{path}: must be a non-empty list of {{name, weight}}")
    out = []
    for i, r in enumerate(spec):
        if not isinstance(r, Mapping) or not isinstance(r.get("name"), str) or not r["name"]:
            raise _config_error(f"{path}[{i}].name: required")
        w = r.get("weight", 1)
        if not isinstance(w, int) or isinstance(w, bool) or not 1 <= w <= 100:
            raise _config_error(f"{path}[{i}].weight: must be an integer between 1 and 100")
        out.append((r["name"], w))
    return out


def insufficient(resource: str) -> str:
    return f"Insufficient {resource}"


class _FitRequest:
    """The pod's requests for one cycle, ordered as the checks run (cpu, memory, storage, then
    the rest by name), without ignored resources."""

    __slots__ = ("checks", "requests", "nonzero")

    def __init__(self, pod: dict, ignored: set[str], ignored_groups: set[str]):
        req, self.nonzero = resources.requests_of(pod)
        self.requests = req
        checks = []
        for name, v in req.items():
            if v <= 0 or name == PODS or name in ignored:
                continue
            if "/" in name and name.split("/", 1)[0] in ignored_groups:
                continue
            checks.append((name, v))
        checks.sort(key=lambda c: (_NATIVE_ORDER.get(c[0], 3), c[0]))
        self.checks = checks


class NodeResourcesFit:
    name = "NodeResourcesFit"

    def __init__(self, args: dict | None = None, handle: object = None):
        args = args or {}
        self.validate_args(args)
        self.ignored = set(args.get("ignoredResources") or ())
        self.ignored_groups = set(args.get("ignoredResourceGroups") or ())
        strategy = args.get("scoringStrategy") or {}
        self.strategy = strategy.get("type") or LEAST_ALLOCATED
        self.resources = _resource_weights(strategy.get("resources"), "scoringStrategy.resources")
        self.weight_sum = sum(w for _, w in self.resources)
        shape = ((strategy.get("requestedToCapacityRatio") or {}).get("shape")
                 or [{"utilization": 0, "score": 10}, {"utilization": 100, "score": 0}])
        self.shape = [(int(p["utilization"]), int(p["score"]) * MAX_NODE_SCORE // 10) for p in shape]
        self._memos: dict[tuple, dict[int, int]] = {}
        self._fit_memos: dict[tuple, dict[int, int]] = {}

    @staticmethod
    def validate_args(args: Mapping) -> None:
        strategy = args.get("scoringStrategy") or {}
        if not isinstance(strategy, Mapping):
            raise _config_error("scoringStrategy: must be an object")
        t = strategy.get("type") or LEAST_ALLOCATED
        if t not in (LEAST_ALLOCATED, MOST_ALLOCATED, REQUESTED_TO_CAPACITY_RATIO):
            raise _config_error(f"scoringStrategy.type: unsupported value {t!r}; expected one of "
                                f"{LEAST_ALLOCATED}, {MOST_ALLOCATED}, {REQUESTED_TO_CAPACITY_RATIO}")
        _resource_weights(strategy.get("resources"), "scoringStrategy.resources")
        if t == REQUESTED_TO_CAPACITY_RATIO:
            shape = (strategy.get("requestedToCapacityRatio") or {}).get("shape")
            if not isinstance(shape, list) or not shape:
                raise _config_error("scoringStrategy.requestedToCapacityRatio.shape: required")
            last = -1
            for i, p in enumerate(shape):
                u, s = p.get("utilization") if isinstance(p, Mapping) else None, \
                    p.get("score") if isinstance(p, Mapping) else None
                if not isinstance(u, int) or not 0 <= u <= 100 or u <= last:
                    raise _config_error(f"scoringStrategy.requestedToCapacityRatio.shape[{i}].utilization: "
                                        "must be an integer in 0..100, increasing")
                if not isinstance(s, int) or not 0 <= s <= 10:
                    raise _config_error(f"scoringStrategy.requestedToCapacityRatio.shape[{i}].score: "
                                        "must be an integer in 0..10")
                last = u

    def _request(self, state: CycleState, pod: dict) -> _FitRequest:
        r = state.get(_FIT_STATE)
        if r is None:
            r = _FitRequest(pod, self.ignored, self.ignored_groups)
            state[_FIT_STATE] = r
        return r

    def pre_filter(self, state: CycleState, pod: dict, snapshot: Snapshot) -> tuple[set[str] | None, Status]:
        state[_FIT_STATE] = _FitRequest(pod, self.ignored, self.ignored_groups)
        return None, Status()

    def filter(self, state: CycleState, pod: dict, node: NodeInfo) -> Status:
        r = state.get(_FIT_STATE) or self._request(state, pod)
        alloc = node.allocatable
        reasons: list[str] | None = None
        unresolvable = False
        if len(node.pods) + 1 > alloc.get(PODS, 0):
            reasons = [TOO_MANY_PODS]
        if r.checks:
            requested = node.requested
            for name, want in r.checks:
                have = alloc.get(name, 0)
                if want > have - requested.get(name, 0):
                    if reasons is None:
                        reasons = []
                    reasons.append(insufficient(name))
                    if want > have:
                        unresolvable = True
        if reasons is None:
            return Status()
        return Status.unschedulable(*reasons, plugin=self.name, unresolvable=unresolvable)

    def filter_signature(self, state: CycleState, pod: dict) -> object:
        r = state.get(_FIT_STATE) or self._request(state, pod)
        return tuple(r.checks)

    def filter_batch(self, state: CycleState, pod: dict, nodes: list[NodeInfo]) -> list[Status | None]:
        r = state.get(_FIT_STATE) or self._request(state, pod)
        checks = r.checks
        fits = _memo(self._fit_memos, tuple(checks))     # generation -> 1 when the pod fits
        out: list[Status | None] = []
        append = out.append
        for ni in nodes:
            gen = ni.generation  # type: ignore[attr-defined]
            if fits.get(gen):
                append(None)
                continue
            alloc = ni.allocatable
            if len(ni.pods) < alloc.get(PODS, 0):
                requested = ni.requested
                for name, want in checks:
                    if want > alloc.get(name, 0) - requested.get(name, 0):
                        break
                else:
                    fits[gen] = 1
                    append(None)
                    continue
            append(self.filter(state, pod, ni))    # the slow path words the reasons
        return out

    def fits(self, pod_requests: Mapping[str, int], node: NodeInfo) -> list[str]:
        """The reasons ``pod_requests`` would not fit ``node`` (for explanations)."""
        reasons = []
        if len(node.pods) + 1 > node.allocatable.get(PODS, 0):
            reasons.append(TOO_MANY_PODS)
        for name, want in pod_requests.items():
            if want > 0 and name != PODS and name not in self.ignored:
                if want > node.allocatable.get(name, 0) - node.requested.get(name, 0):
                    reasons.append(insufficient(name))
        return reasons

    def score(self, state: CycleState, pod: dict, node: NodeInfo) -> tuple[int, Status]:
        r = self._request(state, pod)
        alloc = node.allocatable
        total = 0
        weights = 0
        for name, w in self.resources:
            have = alloc.get(name, 0)
            if have <= 0:
                continue
            if name == CPU or name == MEMORY:
                used = node.non_zero_requested.get(name, 0) + r.nonzero.get(name, 0)  # type: ignore[attr-defined]
            else:
                used = node.requested.get(name, 0) + r.requests.get(name, 0)
            total += self._resource_score(used, have) * w
            weights += w
        return (total // weights if weights else 0), Status()

    def score_batch(self, state: CycleState, pod: dict, nodes: list[NodeInfo]) -> list[int]:
        r = self._request(state, pod)
        plan = [(name, w, name == CPU or name == MEMORY,
                 (r.nonzero if name == CPU or name == MEMORY else r.requests).get(name, 0))
                for name, w in self.resources]
        least = self.strategy == LEAST_ALLOCATED
        most = self.strategy == MOST_ALLOCATED
        if least and self.resources == [(CPU, 1), (MEMORY, 1)]:
            cpu, mem = plan[0][3], plan[1][3]
            return _least_allocated_cpu_memory(nodes, cpu, mem, _memo(self._memos, (cpu, mem)))
        out = []
        for ni in nodes:
            alloc = ni.allocatable
            nonzero = ni.non_zero_requested  # type: ignore[attr-defined]
            requested = ni.requested
            total = weights = 0
            for name, w, nz, want in plan:
                have = alloc.get(name, 0)
                if have <= 0:
                    continue
                used = (nonzero if nz else requested).get(name, 0) + want
                if least:
                    s = 0 if used > have else (have - used) * MAX_NODE_SCORE // have
                elif most:
                    s = MAX_NODE_SCORE if used > have else used * MAX_NODE_SCORE // have
                else:
                    s = _piecewise(self.shape, min(100, used * 100 // have))
                total += s * w
                weights += w
            out.append(total // weights if weights else 0)
        return out

    def _resource_score(self, used: int, have: int) -> int:
        if self.strategy == LEAST_ALLOCATED:
            return 0 if used > have else (have - used) * MAX_NODE_SCORE // have
        if self.strategy == MOST_ALLOCATED:
            return MAX_NODE_SCORE if used > have else used * MAX_NODE_SCORE // have
        util = min(100, used * 100 // have)
        return _piecewise(self.shape, util)


_MEMO_SHAPES = 16
_MEMO_ENTRIES = 20_000


def _memo(memos: dict[tuple, dict[int, int]], shape: tuple) -> dict[int, int]:
    """Scores by NodeInfo generation for one pod shape. A NodeInfo's generation changes with
    every change to it, so a remembered score is exact; pods of the same shape (replicas) then
    cost one lookup per unchanged node."""
    m = memos.get(shape)
    if m is None:
        if len(memos) >= _MEMO_SHAPES:
            memos.clear()
        m = memos[shape] = {}
    elif len(m) > _MEMO_ENTRIES:
        m.clear()
    return m


def _least_allocated_cpu_memory(nodes: list[NodeInfo], cpu: int, mem: int, memo: dict[int, int]) -> list[int]:
    """LeastAllocated over cpu and memory with equal weights (the default), unrolled."""
    out = list(map(memo.get, map(_GENERATION, nodes)))
    if None not in out:
        return out             # type: ignore[return-value]
    for i, ni in enumerate(nodes):
        if out[i] is not None:
            continue
        gen = ni.generation  # type: ignore[attr-defined]
        alloc = ni.allocatable
        nonzero = ni.non_zero_requested  # type: ignore[attr-defined]
        total = weights = 0
        have = alloc.get(CPU, 0)
        if have > 0:
            used = nonzero.get(CPU, 0) + cpu
            total += 0 if used > have else (have - used) * MAX_NODE_SCORE // have
            weights += 1
        have = alloc.get(MEMORY, 0)
        if have > 0:
            used = nonzero.get(MEMORY, 0) + mem
            total += 0 if used > have else (have - used) * MAX_NODE_SCORE // have
            weights += 1
        out[i] = memo[gen] = total // weights if weights else 0
    return out             # type: ignore[return-value]


def _piecewise(shape: list[tuple[int, int]], x: int) -> int:
    if x <= shape[0][0]:
        return shape[0][1]
    for (x0, y0), (x1, y1) in zip(shape, shape[1:], strict=False):
        if x <= x1:
            return y0 + (y1 - y0) * (x - x0) // (x1 - x0)
    return shape[-1][1]


class NodeResourcesBalancedAllocation:
    name = "NodeResourcesBalancedAllocation"

    def __init__(self, args: dict | None = None, handle: object = None):
        args = args or {}
        self.resources = [n for n, _ in _resource_weights(args.get("resources"), "resources")]
        self._memos: dict[tuple, dict[int, int]] = {}

    @staticmethod
    def validate_args(args: Mapping) -> None:
        _resource_weights(args.get("resources"), "resources")

    def pre_score(self, state: CycleState, pod: dict, nodes: list[NodeInfo]) -> Status:
        req = resources.requests_of(pod)[0]
        if not any(req.get(n, 0) > 0 for n in self.resources):
            return Status.skip()
        state[_BALANCED_STATE] = req
        return Status()

    def score_batch(self, state: CycleState, pod: dict, nodes: list[NodeInfo]) -> list[int]:
        req = state.get(_BALANCED_STATE)
        if req is None:
            req = resources.requests_of(pod)[0]
        plan = [(name, req.get(name, 0)) for name in self.resources]
        if self.resources == [CPU, MEMORY]:
            cpu, mem = plan[0][1], plan[1][1]
            return _balanced_cpu_memory(nodes, cpu, mem, _memo(self._memos, (cpu, mem)))
        out = []
        for ni in nodes:
            alloc = ni.allocatable
            requested = ni.requested
            fractions = []
            for name, want in plan:
                have = alloc.get(name, 0)
                if have > 0:
                    f = (requested.get(name, 0) + want) / have
                    fractions.append(f if f < 1.0 else 1.0)
            n = len(fractions)
            if n == 2:
                std = abs(fractions[0] - fractions[1]) / 2
            elif n == 0:
                out.append(0)
                continue
            else:
                mean = sum(fractions) / n
                std = math.sqrt(sum((f - mean) ** 2 for f in fractions) / n)
            out.append(int((1 - std) * MAX_NODE_SCORE))
        return out

    def score(self, state: CycleState, pod: dict, node: NodeInfo) -> tuple[int, Status]:
        req = state.get(_BALANCED_STATE)
        if req is None:
            req = resources.requests_of(pod)[0]
        fractions = []
        for name in self.resources:
            have = node.allocatable.get(name, 0)
            if have <= 0:
                continue
            f = (node.requested.get(name, 0) + req.get(name, 0)) / have
            fractions.append(min(f, 1.0))
        if not fractions:
            return 0, Status()
        if len(fractions) == 2:
            std = abs(fractions[0] - fractions[1]) / 2
        else:
            mean = sum(fractions) / len(fractions)
            std = math.sqrt(sum((f - mean) ** 2 for f in fractions) / len(fractions))
        return int((1 - std) * MAX_NODE_SCORE), Status()


def _balanced_cpu_memory(nodes: list[NodeInfo], cpu: int, mem: int, memo: dict[int, int]) -> list[int]:
    """Balanced allocation over cpu and memory (the default), unrolled."""
    out = list(map(memo.get, map(_GENERATION, nodes)))
    if None not in out:
        return out             # type: ignore[return-value]
    for i, ni in enumerate(nodes):
        if out[i] is not None:
            continue
        gen = ni.generation  # type: ignore[attr-defined]
        alloc = ni.allocatable
        requested = ni.requested
        ca = alloc.get(CPU, 0)
        ma = alloc.get(MEMORY, 0)
        if ca > 0 and ma > 0:
            fc = (requested.get(CPU, 0) + cpu) / ca
            fm = (requested.get(MEMORY, 0) + mem) / ma
            fc = fc if fc < 1.0 else 1.0
            fm = fm if fm < 1.0 else 1.0
            v = int((1 - abs(fc - fm) / 2) * MAX_NODE_SCORE)
        elif ca > 0 or ma > 0:
            v = MAX_NODE_SCORE      # one fraction: no spread
        else:
            v = 0
        out[i] = memo[gen] = v
    return out             # type: ignore[return-value]
