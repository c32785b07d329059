"""The scheduling framework: extension points as small protocols, and a profile's runner.

A plugin is an object with a ``name`` that implements any of the protocols below; a profile
lists, per extension point, which plugins run (and score weights). Plugins return a ``Status``
rather than raising for expected outcomes (unschedulable, wait). ``CycleState`` carries data
between extension points within one scheduling cycle of one pod.

Contract shared by the plugins and the scheduler loop:
- ``NodeInfo`` is the scheduler cache's view of one node: the Node object, the pods on it
  (bound and assumed), and their summed requests. Plugins never mutate it; the cache does.
- ``Snapshot`` is the list of NodeInfos taken at the start of a cycle (plus lookups by name), so
  one cycle sees a consistent world.
- ``Handle`` gives plugins what they need beyond the pod and node: the snapshot, the API client
  (for preemption), listers of other objects (PriorityClasses), and the clock. Optional extras a
  scheduler may offer: ``namespace_labels(name)`` (namespaceSelector in affinity terms),
  ``nominated_pods()`` (node name -> pods nominated there), ``recorder`` (events on victims),
  ``selectors_for(pod)`` (the owners' selector for default spreading).

``Framework`` runs one profile: PreFilter and Filter over a share of the nodes
(``find_feasible``), PostFilter, PreScore and weighted Score, Reserve, Permit and the binding
points. ``explain`` answers why-pending; ``failure_message`` writes the FailedScheduling text.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Protocol, runtime_checkable

MAX_NODE_SCORE = 100
MIN_NODE_SCORE = 0


class Code(IntEnum):
    SUCCESS = 0
    ERROR = 1
    UNSCHEDULABLE = 2                        # may fit after cluster changes or preemption
    UNSCHEDULABLE_AND_UNRESOLVABLE = 3       # preemption cannot help on this node
    WAIT = 4                                 # Permit: hold the pod
    SKIP = 5                                 # PreFilter/PreScore: plugin not relevant for this pod
    PENDING = 6


@dataclass
class Status:
    code: Code = Code.SUCCESS
    reasons: list[str] = field(default_factory=list)
    plugin: str = ""

    @classmethod
    def success(cls) -> Status:
        return cls()

    @classmethod
    def unschedulable(cls, *reasons: str, plugin: str = "", unresolvable: bool = False) -> Status:
        code = Code.UNSCHEDULABLE_AND_UNRESOLVABLE if unresolvable else Code.UNSCHEDULABLE
        return cls(code, list(reasons), plugin)

    @classmethod
    def error(cls, message: str, plugin: str = "") -> Status:
        return cls(Code.ERROR, [message], plugin)

    @property
    def ok(self) -> bool:
        return self.code in (Code.SUCCESS, Code.SKIP)

    @property
    def is_unschedulable(self) -> bool:
        return self.code in (Code.UNSCHEDULABLE, Code.UNSCHEDULABLE_AND_UNRESOLVABLE)

    @property
    def message(self) -> str:
        return ", ".join(self.reasons)

    @classmethod
    def skip(cls) -> Status:
        return cls(Code.SKIP)

    @classmethod
    def wait(cls, plugin: str = "") -> Status:
        return cls(Code.WAIT, [], plugin)


class CycleState(dict):
    """Per-cycle scratch space keyed by plugin-chosen strings; cloned for preemption dry runs."""

    def clone(self) -> CycleState:
        c = CycleState()
        for k, v in self.items():
            c[k] = v.clone() if hasattr(v, "clone") else v
        return c


@runtime_checkable
class Plugin(Protocol):
    name: str


class PreFilterPlugin(Plugin, Protocol):
    def pre_filter(self, state: CycleState, pod: dict, snapshot: Snapshot) -> tuple[set[str] | None, Status]:
        """Precompute for the cycle; may narrow the candidate node names (None: all nodes)."""


class FilterPlugin(Plugin, Protocol):
    """May also offer ``filter_batch(state, pod, nodes) -> list[Status | None]`` (None: passes),
    the same decisions for many nodes in one call; the runner prefers it when present."""

    def filter(self, state: CycleState, pod: dict, node: NodeInfo) -> Status: ...


class PostFilterPlugin(Plugin, Protocol):
    async def post_filter(self, state: CycleState, pod: dict, statuses: dict[str, Status],
                          handle: Handle) -> tuple[str | None, Status]:
        """Runs when no node fits (preemption). Returns a nominated node name, or None."""


class PreScorePlugin(Plugin, Protocol):
    def pre_score(self, state: CycleState, pod: dict, nodes: list[NodeInfo]) -> Status: ...


class ScorePlugin(Plugin, Protocol):
    """May also offer ``score_batch(state, pod, nodes) -> list[int]``, preferred when present."""

    def score(self, state: CycleState, pod: dict, node: NodeInfo) -> tuple[int, Status]: ...

    def normalize_scores(self, state: CycleState, pod: dict, scores: dict[str, int]) -> Status:
        """Optional: rescale ``scores`` in place to [MIN_NODE_SCORE, MAX_NODE_SCORE]."""


class ReservePlugin(Plugin, Protocol):
    def reserve(self, state: CycleState, pod: dict, node_name: str) -> Status: ...

    def unreserve(self, state: CycleState, pod: dict, node_name: str) -> None: ...


class PermitPlugin(Plugin, Protocol):
    def permit(self, state: CycleState, pod: dict, node_name: str) -> tuple[Status, float]:
        """SUCCESS, or WAIT with a timeout in seconds, or UNSCHEDULABLE to reject."""


class PreBindPlugin(Plugin, Protocol):
    async def pre_bind(self, state: CycleState, pod: dict, node_name: str, handle: Handle) -> Status: ...


class BindPlugin(Plugin, Protocol):
    async def bind(self, state: CycleState, pod: dict, node_name: str, handle: Handle) -> Status:
        """Bind (e.g. POST pods/binding); SKIP lets the next bind plugin do it."""


class PostBindPlugin(Plugin, Protocol):
    def post_bind(self, state: CycleState, pod: dict, node_name: str) -> None: ...


class NodeInfo(Protocol):
    """The cache's view of one node (implemented in ``scheduler.nodeinfo``)."""

    node: dict                               # the Node object (never mutate)
    pods: list[dict]                         # pods bound or assumed to this node
    requested: dict[str, int]                # summed requests: "cpu" in millicores, "memory" bytes, ...
    allocatable: dict[str, int]              # node allocatable in the same units; "pods" counts pods
    used_ports: set[tuple[str, str, int]]    # (hostIP, protocol, hostPort) in use

    @property
    def name(self) -> str: ...


class Snapshot(Protocol):
    nodes: list[NodeInfo]                    # in a stable order

    def get(self, name: str) -> NodeInfo | None: ...


class Handle(Protocol):
    """What plugins may use beyond pod and node."""

    client: Any                              # client.rest.Client
    snapshot: Snapshot
    clock: Any                               # client.clock.Clock

    def priority_class(self, name: str) -> dict | None: ...

    def run_filters(self, state: CycleState, pod: dict, node: NodeInfo) -> Status:
        """Run the profile's filters (used by preemption to test a node without victims)."""


class PreFilterExtensions(Plugin, Protocol):
    """Optional for PreFilter plugins whose cycle state counts pods (affinity, spread): keep that
    state right when preemption simulates removing (or re-adding) a pod on a node."""

    def pre_filter_add_pod(self, state: CycleState, pod: dict, pod_to_add: dict, node: NodeInfo) -> Status: ...

    def pre_filter_remove_pod(self, state: CycleState, pod: dict, pod_to_remove: dict,
                              node: NodeInfo) -> Status: ...


class QueueSortPlugin(Plugin, Protocol):
    def less(self, a: dict, b: dict) -> bool:
        """True when pod ``a`` should be tried before pod ``b``.

        A plugin may also offer ``sort_key(pod)``, a value such that ``less(a, b)`` exactly when
        ``sort_key(a) < sort_key(b)``: the queue then orders by keys worked out once per pod."""


# ---------------------------------------------------------------------------------------------
# The runner

# CycleState keys the runner owns.
SNAPSHOT_KEY = "framework/snapshot"            # the Snapshot of this cycle
PRE_FILTER_KEY = "framework/pre-filter"        # (allowed node names or None, Status)
SKIP_FILTER_KEY = "framework/skip-filter"      # plugins whose PreFilter returned SKIP
NARROWED_BY_KEY = "framework/narrowed-by"      # plugins whose PreFilter narrowed the node set
PRE_SCORE_KEY = "framework/pre-score"          # Status of the PreScore run
SKIP_SCORE_KEY = "framework/skip-score"        # plugins whose PreScore returned SKIP
SCORES_KEY = "framework/scores"                # (node names, plugin -> normalized scores in that order)

MIN_FEASIBLE_NODES_TO_FIND = 100
FILTER_BLOCK = 64                  # nodes per remembered block of filter verdicts
_BLOCK_MEMO_SIGNATURES = 16        # pod signatures remembered at once
_GENERATION = operator.attrgetter("generation")
_NAME = operator.attrgetter("name")
MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND = 5


class PluginError(Exception):
    """A plugin failed (Status code ERROR) where no status can be returned; carries the Status."""

    def __init__(self, status: Status):
        super().__init__(f"{status.plugin}: {status.message}")
        self.status = status


class NodeStatuses(dict):
    """Filter failures by node name. ``pre_filter`` is set when a PreFilter plugin rejected the
    pod for every node (its message is then reported once, not per node)."""

    pre_filter: Status | None = None


def num_feasible_nodes_to_find(percentage: int | None, num_all_nodes: int) -> int:
    """How many feasible nodes a cycle looks for before it stops filtering (kube-scheduler's
    rule): all of them below 100 nodes; else ``percentage`` of them (0/None: 50 - nodes/125,
    at least 5), and never fewer than 100."""
    if num_all_nodes < MIN_FEASIBLE_NODES_TO_FIND or (percentage is not None and percentage >= 100):
        return num_all_nodes
    pct = percentage or 0
    if pct <= 0:
        pct = 50 - num_all_nodes // 125
        if pct < MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND:
            pct = MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND
    n = num_all_nodes * pct // 100
    return max(n, MIN_FEASIBLE_NODES_TO_FIND)


class FrameworkHandle:
    """The Handle plugins get: the scheduler's handle, plus ``run_filters`` and the plugins of
    this profile. Attributes the scheduler's handle lacks read as None."""

    def __init__(self, framework: Framework, outer: Any = None):
        self._framework = framework
        self._outer = outer

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._outer, name, None)

    @property
    def framework(self) -> Framework:
        return self._framework

    def priority_class(self, name: str) -> dict | None:
        get = getattr(self._outer, "priority_class", None)
        return get(name) if get is not None else None

    def run_filters(self, state: CycleState, pod: dict, node: NodeInfo) -> Status:
        return self._framework.run_filter(state, pod, node)


def _filter_batch(plugin: Any) -> Any:
    """``plugin.filter_batch(state, pod, nodes) -> [Status | None]`` (None: the node passes),
    or a loop over ``plugin.filter`` for plugins that only filter one node at a time."""
    batch = getattr(plugin, "filter_batch", None)
    if batch is not None:
        return batch
    f = plugin.filter

    def loop(state: CycleState, pod: dict, nodes: list[NodeInfo]) -> list[Status | None]:
        out: list[Status | None] = []
        for ni in nodes:
            st = f(state, pod, ni)
            out.append(None if st.code == Code.SUCCESS or st.code == Code.SKIP else st)
        return out
    return loop


def _score_batch(plugin: Any) -> Any:
    """``plugin.score_batch(state, pod, nodes) -> [int]``, or a loop over ``plugin.score``
    (raising ``PluginError`` on a failed score)."""
    batch = getattr(plugin, "score_batch", None)
    if batch is not None:
        return batch
    score = plugin.score

    def loop(state: CycleState, pod: dict, nodes: list[NodeInfo]) -> list[int]:
        out = []
        for ni in nodes:
            v, st = score(state, pod, ni)
            if not st.ok:
                st.plugin = st.plugin or plugin.name
                raise PluginError(st)
            out.append(v)
        return out
    return loop


class Framework:
    """Runs one profile's plugins at each extension point.

    ``handle`` is the scheduler's (client, snapshot, clock, priority_class); plugins receive a
    ``FrameworkHandle`` wrapping it. Plugins are built once per profile from the registry with
    ``cls(args, handle)``.
    """

    def __init__(self, profile: Any, handle: Any = None, registry: dict[str, Any] | None = None):
        if registry is None:
            from scheduler.plugins.registry import REGISTRY
            registry = REGISTRY
        self.profile = profile
        self.scheduler_name: str = profile.scheduler_name
        self.handle = FrameworkHandle(self, handle)
        self.plugins: dict[str, Any] = {}
        for name in profile.all_plugins():
            self.plugins[name] = registry[name](profile.plugin_args.get(name, {}), self.handle)

        def at(point: str) -> list[Any]:
            return [self.plugins[n] for n in profile.enabled(point)]

        self.queue_sort_plugins = at("queueSort")
        self.pre_filter_plugins = at("preFilter")
        self.filter_plugins = at("filter")
        self.post_filter_plugins = at("postFilter")
        self.pre_score_plugins = at("preScore")
        self.score_plugins = at("score")
        self.reserve_plugins = at("reserve")
        self.permit_plugins = at("permit")
        self.pre_bind_plugins = at("preBind")
        self.bind_plugins = at("bind")
        self.post_bind_plugins = at("postBind")
        self.weights: dict[str, int] = {p.name: profile.weights.get(p.name, 1) for p in self.score_plugins}
        self._filter_batches = [(p, _filter_batch(p)) for p in self.filter_plugins]
        self._signatures = {p.name: p.filter_signature for p in self.filter_plugins
                            if callable(getattr(p, "filter_signature", None))}
        # signature -> block start -> (generations of the block's NodeInfos, verdicts)
        self._block_memo: dict[tuple, dict[int, tuple[list[int], list[Status | None]]]] = {}
        # A plugin may offer ``normalize_batch(state, pod, names, scores) -> scores`` (same
        # order), preferred over the dict-based ``normalize_scores``.
        self._score_batches = [(p, _score_batch(p), getattr(p, "normalize_batch", None))
                               for p in self.score_plugins]

    # -- queue -------------------------------------------------------------------------------

    def less(self, a: dict, b: dict) -> bool:
        """The profile's queue order (priority, then arrival, by default)."""
        if self.queue_sort_plugins:
            return self.queue_sort_plugins[0].less(a, b)
        return False

    @property
    def sort_key(self) -> Callable[[dict], Any] | None:
        """The queue-sort plugin's ``sort_key``, when it offers one."""
        if self.queue_sort_plugins:
            return getattr(self.queue_sort_plugins[0], "sort_key", None)
        return None

    # -- filtering ---------------------------------------------------------------------------

    def run_pre_filter(self, state: CycleState, pod: dict, snapshot: Snapshot) -> tuple[set[str] | None, Status]:
        """Run every PreFilter. Returns the node names still allowed (None: all) and the first
        failure. A plugin whose PreFilter returns SKIP has its Filter skipped this cycle."""
        state[SNAPSHOT_KEY] = snapshot
        skipped: set[str] = set()
        state[SKIP_FILTER_KEY] = skipped
        allowed: set[str] | None = None
        narrowed_by: list[str] = []
        result: tuple[set[str] | None, Status] = (None, Status())
        for p in self.pre_filter_plugins:
            names, st = p.pre_filter(state, pod, snapshot)
            if st.code == Code.SKIP:
                skipped.add(p.name)
                continue
            if not st.ok:
                if not st.plugin:
                    st.plugin = p.name
                result = (None, st)
                break
            if names is not None:
                narrowed_by.append(p.name)
                state[NARROWED_BY_KEY] = narrowed_by
                allowed = set(names) if allowed is None else allowed & set(names)
                if not allowed:
                    if len(narrowed_by) == 1:
                        msg = f"node(s) didn't satisfy plugin {narrowed_by[0]}"
                    else:
                        msg = f"node(s) didn't satisfy plugin(s) [{' '.join(narrowed_by)}] simultaneously"
                    st = Status.unschedulable(msg, plugin=p.name, unresolvable=True)
                    result = (None, st)
                    break
        else:
            result = (allowed, Status())
        state[PRE_FILTER_KEY] = result
        return result

    def run_filter(self, state: CycleState, pod: dict, node: NodeInfo) -> Status:
        """All Filter plugins on one node; the first failure, with its plugin name."""
        skipped = state.get(SKIP_FILTER_KEY) or ()
        for p in self.filter_plugins:
            if p.name in skipped:
                continue
            st = p.filter(state, pod, node)
            if not st.ok:
                if not st.plugin:
                    st.plugin = p.name
                return st
        return Status()

    def run_filter_each(self, state: CycleState, pod: dict, node: NodeInfo) -> list[Status]:
        """Every failing Filter on one node (not only the first), for explanations."""
        skipped = state.get(SKIP_FILTER_KEY) or ()
        out = []
        for p in self.filter_plugins:
            if p.name in skipped:
                continue
            st = p.filter(state, pod, node)
            if not st.ok:
                if not st.plugin:
                    st.plugin = p.name
                out.append(st)
        return out

    def run_pre_filter_add_pod(self, state: CycleState, pod: dict, pod_to_add: dict, node: NodeInfo) -> Status:
        skipped = state.get(SKIP_FILTER_KEY) or ()
        for p in self.pre_filter_plugins:
            ext = getattr(p, "pre_filter_add_pod", None)
            if ext is None or p.name in skipped:
                continue
            st = ext(state, pod, pod_to_add, node)
            if not st.ok:
                st.plugin = st.plugin or p.name
                return st
        return Status()

    def run_pre_filter_remove_pod(self, state: CycleState, pod: dict, pod_to_remove: dict,
                                  node: NodeInfo) -> Status:
        skipped = state.get(SKIP_FILTER_KEY) or ()
        for p in self.pre_filter_plugins:
            ext = getattr(p, "pre_filter_remove_pod", None)
            if ext is None or p.name in skipped:
                continue
            st = ext(state, pod, pod_to_remove, node)
            if not st.ok:
                st.plugin = st.plugin or p.name
                return st
        return Status()

    def find_feasible(self, state: CycleState, pod: dict, snapshot: Snapshot, start_index: int = 0,
                      percentage: int | None = None) -> tuple[list[NodeInfo], NodeStatuses, int]:
        """Filter nodes from ``start_index`` (wrapping) until enough feasible ones are found.

        Runs PreFilter first unless this cycle's state already holds its result. A pod with
        ``status.nominatedNodeName`` tries that node first and takes it alone when it fits.
        ``percentage`` None means the profile's percentageOfNodesToScore (else adaptive).
        Returns the feasible nodes, the failures by node name, and where the next cycle starts.
        Nodes are filtered in blocks of ``FILTER_BLOCK``, each plugin over a whole block (see
        ``filter_batch``); the verdicts of plugins that offer ``filter_signature`` are remembered
        per block (see ``_cached_block``), so pods of one shape (replicas) mostly reuse them.
        """
        if PRE_FILTER_KEY not in state:
            self.run_pre_filter(state, pod, snapshot)
        allowed, pre_status = state[PRE_FILTER_KEY]
        nodes = snapshot.nodes
        statuses = NodeStatuses()
        if not pre_status.ok:
            statuses.pre_filter = pre_status
            for ni in nodes:
                statuses[ni.name] = pre_status
            return [], statuses, start_index
        skipped = state.get(SKIP_FILTER_KEY) or ()
        filters = [(p.name, b) for p, b in self._filter_batches if p.name not in skipped]
        others = self.nominated_pods_for(pod)

        nominated = (pod.get("status") or {}).get("nominatedNodeName")
        if nominated and (allowed is None or nominated in allowed):
            ni = snapshot.get(nominated)
            if ni is not None and self._filter_chunk(state, pod, [ni], filters, others)[0] is None:
                return [ni], statuses, start_index
        if allowed is not None:
            candidates = [ni for ni in nodes if ni.name in allowed]
            if len(candidates) < len(nodes):
                narrowed = state.get(NARROWED_BY_KEY) or []
                st = Status.unschedulable(f"node(s) didn't satisfy plugin(s) [{' '.join(narrowed)}]",
                                          unresolvable=True)
                for ni in nodes:
                    if ni.name not in allowed:
                        statuses[ni.name] = st
        else:
            candidates = nodes
        m = len(candidates)
        if m == 0:
            return [], statuses, 0
        if percentage is None:
            percentage = getattr(self.profile, "percentage_of_nodes_to_score", None)
        to_find = num_feasible_nodes_to_find(percentage, m)
        start = start_index % m
        # Remembered verdicts need the same node list (the cache key is a block's position).
        n_cached, sig = self._filter_signature(state, pod, filters) if allowed is None else (0, None)
        feasible: list[NodeInfo] = []
        pos = 0                          # nodes examined, from ``start`` wrapping around
        i = start
        while pos < m and len(feasible) < to_find:
            end = min(i - i % FILTER_BLOCK + FILTER_BLOCK, m, i + m - pos)
            if sig is not None:
                block, results, lo, hi = self._cached_block(state, pod, candidates, i, end, filters,
                                                            n_cached, sig, others)
                if block is None:
                    sig = None
                    continue
            else:
                block = candidates[i:end]
                results = self._filter_chunk(state, pod, block, filters, others)
                lo, hi = 0, end - i
            need = to_find - len(feasible)
            span = results[lo:hi] if lo or hi < len(results) else results
            if span.count(None) == len(span):
                take = min(hi - lo, need)
                feasible.extend(block[lo:lo + take])
                pos += take
                i += take
            else:
                for j in range(lo, hi):
                    pos += 1
                    i += 1
                    st = results[j]
                    if st is None:
                        feasible.append(block[j])
                        if len(feasible) >= to_find:
                            break
                    else:
                        statuses[block[j].name] = st
            if i >= m:
                i = 0
        return feasible, statuses, (start + pos) % m

    def _filter_signature(self, state: CycleState, pod: dict,
                          filters: list[tuple[str, Any]]) -> tuple[int, tuple | None]:
        """How many of ``filters`` (from the first) decide from the pod and the node alone, and
        a key naming what they look at in the pod: such a plugin offers
        ``filter_signature(state, pod)``, a hashable value (None: not this cycle) such that two
        pods with equal values get the same verdict on any one NodeInfo."""
        parts: list[Any] = []
        for name, _ in filters:
            f = self._signatures.get(name)
            s = f(state, pod) if f is not None else None
            if s is None:
                break
            parts.append((name, s))
        if not parts:
            return 0, None
        return len(parts), tuple(parts)

    def _cached_block(self, state: CycleState, pod: dict, candidates: list[NodeInfo], i: int, end: int,
                      filters: list[tuple[str, Any]], n_cached: int, sig: tuple,
                      others: dict[str, list[dict]] | None) -> tuple[Any, list[Status | None], int, int]:
        """Filter verdicts for the aligned block of ``candidates`` that holds ``i``: those of the
        first ``n_cached`` filters are remembered per (signature, block) and reused while every
        NodeInfo of the block keeps its generation (a NodeInfo's generation changes with each
        change to it). Returns the block, its verdicts, and the span [lo, hi) of the block from
        ``i`` to ``end``; the block is None when the NodeInfos carry no generation."""
        b0 = i - i % FILTER_BLOCK
        block = candidates[b0:min(b0 + FILTER_BLOCK, len(candidates))]
        try:
            gens = list(map(_GENERATION, block))
        except AttributeError:
            return None, [], 0, 0
        memo = self._block_memo.get(sig)
        if memo is None:
            if len(self._block_memo) >= _BLOCK_MEMO_SIGNATURES:
                self._block_memo.clear()
            memo = self._block_memo[sig] = {}
        hit = memo.get(b0)
        if hit is not None and hit[0] == gens:
            base = hit[1]
        else:
            base = self._filter_chunk(state, pod, block, filters[:n_cached])
            memo[b0] = (gens, base)
        results = base
        if n_cached < len(filters) or others:
            results = self._filter_chunk(state, pod, block, filters[n_cached:], others,
                                         base=base, recheck=filters)
        return block, results, i - b0, end - b0

    def nominated_pods_for(self, pod: dict) -> dict[str, list[dict]] | None:
        """Pods nominated to nodes (by earlier preemptions) that ``pod`` must leave room for:
        those of equal or higher priority, from the handle's ``nominated_pods()`` (node name ->
        pods), when the scheduler offers it."""
        get = getattr(self.handle, "nominated_pods", None)
        if not callable(get):
            return None
        by_node = get()
        if not by_node:
            return None
        from scheduler.nodeinfo import pod_key, pod_priority
        me, prio = pod_key(pod), pod_priority(pod)
        out = {}
        for node, pods in by_node.items():
            keep = [p for p in pods if pod_key(p) != me and pod_priority(p) >= prio]
            if keep:
                out[node] = keep
        return out or None

    def _filter_chunk(self, state: CycleState, pod: dict, chunk: list[NodeInfo],
                      filters: list[tuple[str, Any]],
                      nominated: dict[str, list[dict]] | None = None, *,
                      base: list[Status | None] | None = None,
                      recheck: list[tuple[str, Any]] | None = None) -> list[Status | None]:
        """Each filter over the nodes still passing: the first failure per node, None if it fits.
        ``base``: verdicts of the filters that run before ``filters`` (only the nodes passing
        those are filtered further). A node with nominated pods must pass both with them counted
        and without them (``recheck``, default ``filters``: every filter of the cycle)."""
        if base is None:
            results: list[Status | None] = [None] * len(chunk)
            alive = list(range(len(chunk)))
        else:
            results = list(base)
            alive = [i for i, st in enumerate(base) if st is None]
        for name, batch in filters:
            if not alive:
                break
            out = batch(state, pod, chunk if len(alive) == len(chunk) else [chunk[i] for i in alive])
            if out.count(None) == len(out):
                continue                  # every node passed this plugin
            still = []
            for i, st in zip(alive, out, strict=True):
                if st is None:
                    still.append(i)
                else:
                    if not st.plugin:
                        st.plugin = name
                    results[i] = st
            alive = still
        if nominated:
            for i in alive:
                pods = nominated.get(chunk[i].name)
                if pods:
                    ni = chunk[i].clone()  # type: ignore[attr-defined]
                    st2 = state.clone()
                    for p in pods:
                        ni.add_pod(p)
                        self.run_pre_filter_add_pod(st2, pod, p, ni)
                    results[i] = self._filter_chunk(st2, pod, [ni], recheck or filters)[0]
        return results

    async def run_post_filter(self, state: CycleState, pod: dict,
                              statuses: dict[str, Status]) -> tuple[str | None, Status]:
        """PostFilter plugins in order until one succeeds. Returns (nominated node, status); on
        failure the status message is what ``failure_message`` takes as ``preemption_msg``."""
        reasons: list[str] = []
        last = Status.unschedulable()
        for p in self.post_filter_plugins:
            node, st = await p.post_filter(state, pod, statuses, self.handle)
            if not st.plugin:
                st.plugin = p.name
            if st.ok:
                return node, st
            if st.code == Code.ERROR:
                return None, st
            reasons.extend(st.reasons)
            last = st
        if not self.post_filter_plugins:
            return None, Status.unschedulable()
        return None, Status(last.code, reasons, last.plugin)

    # -- scoring -----------------------------------------------------------------------------

    def run_pre_score(self, state: CycleState, pod: dict, nodes: list[NodeInfo]) -> Status:
        skipped: set[str] = set()
        state[SKIP_SCORE_KEY] = skipped
        result = Status()
        for p in self.pre_score_plugins:
            st = p.pre_score(state, pod, nodes)
            if st.code == Code.SKIP:
                skipped.add(p.name)
            elif not st.ok:
                st.plugin = st.plugin or p.name
                result = st
                break
        state[PRE_SCORE_KEY] = result
        return result

    def run_score(self, state: CycleState, pod: dict, nodes: list[NodeInfo]) -> dict[str, int]:
        """Weighted sum of every Score plugin's normalized score, by node name. Runs PreScore
        first unless already run this cycle. Raises ``PluginError`` when a plugin errs."""
        names, totals = self.score_totals(state, pod, nodes)
        return dict(zip(names, totals, strict=True))

    def score_totals(self, state: CycleState, pod: dict, nodes: list[NodeInfo]) -> tuple[list[str], list[int]]:
        """``run_score`` as two lists in the order of ``nodes``: names and weighted totals."""
        if PRE_SCORE_KEY not in state:
            self.run_pre_score(state, pod, nodes)
        pre = state[PRE_SCORE_KEY]
        if not pre.ok:
            raise PluginError(pre)
        skipped = state.get(SKIP_SCORE_KEY) or ()
        names = list(map(_NAME, nodes))
        n = len(names)
        totals: list[int] | None = None
        constant = 0              # the part of every total that is the same on every node
        by_plugin: dict[str, list[int]] = {}
        for p, batch, normalize_batch in self._score_batches:
            if p.name in skipped:
                continue
            values = batch(state, pod, nodes)
            if normalize_batch is not None:
                values = normalize_batch(state, pod, names, values)
            else:
                normalize = getattr(p, "normalize_scores", None)
                if normalize is not None:
                    scores = dict(zip(names, values, strict=True))
                    st = normalize(state, pod, scores)
                    if not st.ok:
                        st.plugin = st.plugin or p.name
                        raise PluginError(st)
                    values = [scores[k] for k in names]
            if len(values) != n:
                raise ValueError(f"{p.name}: {len(values)} scores for {n} nodes")
            by_plugin[p.name] = values
            w = self.weights.get(p.name, 1)
            if n and values.count(values[0]) == n:
                constant += values[0] * w
                continue
            weighted = values if w == 1 else list(map(operator.mul, values, itertools.repeat(w)))
            totals = weighted if totals is None else list(map(operator.add, totals, weighted))
        state[SCORES_KEY] = (names, by_plugin)
        if totals is None:
            return names, [constant] * n
        if constant:
            totals = list(map(constant.__add__, totals))
        return names, totals

    @staticmethod
    def select_host(scores: dict[str, int], rng: Any = None) -> str | None:
        """The best-scored node; ties broken uniformly at random. None when ``scores`` is empty."""
        return Framework.pick_best(list(scores), list(scores.values()), rng)

    @staticmethod
    def pick_best(names: list[str], totals: list[int], rng: Any = None) -> str | None:
        """``select_host`` over parallel lists of names and totals."""
        if not names:
            return None
        best = max(totals)
        if totals.count(best) == 1:
            return names[totals.index(best)]
        top = list(itertools.compress(names, map(best.__eq__, totals)))
        import random
        return (rng or random).choice(top)

    # -- reserve, permit, binding ----------------------------------------------------------

    def run_reserve(self, state: CycleState, pod: dict, node_name: str) -> Status:
        """Reserve in order; on failure the caller runs ``run_unreserve``."""
        for p in self.reserve_plugins:
            st = p.reserve(state, pod, node_name)
            if not st.ok:
                st.plugin = st.plugin or p.name
                return st
        return Status()

    def run_unreserve(self, state: CycleState, pod: dict, node_name: str) -> None:
        for p in reversed(self.reserve_plugins):
            p.unreserve(state, pod, node_name)

    def run_permit(self, state: CycleState, pod: dict, node_name: str) -> tuple[Status, float]:
        """SUCCESS; UNSCHEDULABLE from the first rejecting plugin; or WAIT with the shortest of
        the waiting plugins' timeouts (the scheduler holds the pod that long at most)."""
        wait: float | None = None
        waiting: list[str] = []
        for p in self.permit_plugins:
            st, timeout = p.permit(state, pod, node_name)
            if st.code == Code.WAIT:
                waiting.append(p.name)
                wait = timeout if wait is None else min(wait, timeout)
            elif not st.ok:
                st.plugin = st.plugin or p.name
                return st, 0.0
        if wait is not None:
            return Status(Code.WAIT, [], ",".join(waiting)), wait
        return Status(), 0.0

    async def run_pre_bind(self, state: CycleState, pod: dict, node_name: str) -> Status:
        for p in self.pre_bind_plugins:
            st = await p.pre_bind(state, pod, node_name, self.handle)
            if not st.ok:
                st.plugin = st.plugin or p.name
                return st
        return Status()

    async def run_bind(self, state: CycleState, pod: dict, node_name: str) -> Status:
        """The first bind plugin that does not SKIP binds the pod."""
        for p in self.bind_plugins:
            st = await p.bind(state, pod, node_name, self.handle)
            if st.code == Code.SKIP:
                continue
            if not st.ok:
                st.plugin = st.plugin or p.name
            return st
        return Status.error("no bind plugin bound the pod")

    def run_post_bind(self, state: CycleState, pod: dict, node_name: str) -> None:
        for p in self.post_bind_plugins:
            p.post_bind(state, pod, node_name)

    # -- explanations ------------------------------------------------------------------------

    def explain(self, pod: dict, snapshot: Snapshot) -> dict:
        """Why the pod fits where it fits and not elsewhere, for ``navctl why-pending``.

        Every filter runs on every node (not only up to the first failure), so a node reports
        all its reasons. Nodes come sorted: those that fit, then those closest to fitting (fewest
        failing plugins, smallest resource shortfall). Each reports its free resources
        (``headroom``). ``suggestions`` name changes that would let the pod fit somewhere.
        """
        from scheduler import resources as res

        meta = pod.get("metadata") or {}
        state = CycleState()
        allowed, pre = self.run_pre_filter(state, pod, snapshot)
        requests = res.pod_requests(pod)
        shown = sorted({res.CPU, res.MEMORY, *requests} - {res.PODS},
                       key=lambda r: ({res.CPU: 0, res.MEMORY: 1}.get(r, 2), r))
        narrowed = state.get(NARROWED_BY_KEY) or []
        statuses = NodeStatuses()
        rows = []
        for ni in snapshot.nodes:
            if not pre.ok:
                failures = [pre]
            elif allowed is not None and ni.name not in allowed:
                failures = [Status.unschedulable(f"node(s) didn't satisfy plugin(s) [{' '.join(narrowed)}]",
                                                 plugin=narrowed[0] if narrowed else "", unresolvable=True)]
            else:
                failures = self.run_filter_each(state, pod, ni)
            headroom = {r: ni.allocatable.get(r, 0) - ni.requested.get(r, 0) for r in shown}
            free_pods = ni.allocatable.get(res.PODS, 0) - len(ni.pods)
            shortfall = 0.0
            for r, want in requests.items():
                if r in headroom and want > headroom[r]:
                    shortfall += (want - headroom[r]) / max(want, 1)
            row = {
                "node": ni.name,
                "fits": not failures,
                "plugin": failures[0].plugin if failures else None,
                "reasons": [r for f in failures for r in f.reasons],
                "failures": [{"plugin": f.plugin, "reasons": list(f.reasons)} for f in failures],
                "headroom": {r: res.format_amount(r, v) for r, v in headroom.items()} | {"pods": str(free_pods)},
                "_sort": (0 if not failures else 1, len(failures), shortfall, ni.name),
                "_headroom": headroom,
            }
            rows.append(row)
            if failures:
                statuses[ni.name] = failures[0]
        if not pre.ok:
            statuses.pre_filter = pre
        rows.sort(key=lambda r: r["_sort"])
        fitting = [r["node"] for r in rows if r["fits"]]
        if fitting:
            summary = (f"{len(fitting)}/{len(snapshot.nodes)} nodes can run the pod now: "
                       + ", ".join(fitting[:10]) + (" ..." if len(fitting) > 10 else ""))
        else:
            summary = failure_message(pod, statuses, len(snapshot.nodes))
        suggestions = _suggestions(pod, requests, rows, snapshot, fitting)
        for r in rows:
            del r["_sort"], r["_headroom"]
        return {
            "pod": f"{meta.get('namespace') or 'default'}/{meta.get('name', '')}",
            "schedulerName": self.scheduler_name,
            "requests": {r: res.format_amount(r, v) for r, v in requests.items()},
            "nodes": rows,
            "summary": summary,
            "suggestions": suggestions,
        }

    # -- messages ----------------------------------------------------------------------------

    @staticmethod
    def failure_message(pod: dict, statuses: dict[str, Status], num_nodes: int,
                        preemption_msg: str = "") -> str:
        """The FailedScheduling text: ``0/3 nodes are available: 1 Insufficient cpu, 2 node(s)
        had untolerated taint {k: v}. preemption: ...``. Each reason is counted over nodes; the
        "count reason" strings are sorted as text. A PreFilter rejection is stated once."""
        return failure_message(pod, statuses, num_nodes, preemption_msg)


def failure_message(pod: dict, statuses: dict[str, Status], num_nodes: int, preemption_msg: str = "") -> str:
    msg = f"0/{num_nodes} nodes are available:"
    pre = getattr(statuses, "pre_filter", None)
    if pre is not None:
        msg += f" {pre.message}."
    else:
        counts: dict[str, int] = {}
        for st in statuses.values():
            for r in st.reasons:
                counts[r] = counts.get(r, 0) + 1
        if counts:
            msg += " " + ", ".join(sorted(f"{n} {r}" for r, n in counts.items())) + "."
    if preemption_msg:
        msg += f" {preemption_msg}"
        if not preemption_msg.endswith("."):
            msg += "."
    return msg


def _suggestions(pod: dict, requests: dict[str, int], rows: list[dict], snapshot: Snapshot,
                 fitting: list[str]) -> list[str]:
    """Changes that would let the pod fit, from the nodes that fail on one plugin only."""
    from scheduler import resources as res

    out: list[str] = []
    if fitting:
        out.append(f"the pod fits on {len(fitting)} node(s) now; if it is still pending it is waiting "
                   "for its next attempt (backoff) or for the scheduler to run")
        return out
    if not rows:
        return ["there are no nodes: add nodes to the cluster"]
    only: dict[str, list[dict]] = {}
    for r in rows:
        plugins = {f["plugin"] for f in r["failures"]}
        if len(plugins) == 1:
            only.setdefault(next(iter(plugins)), []).append(r)

    # Resources: the largest request that fits somewhere, per resource short on those nodes.
    fit_rows = only.get("NodeResourcesFit", [])
    short: dict[str, tuple[int, str]] = {}
    full_nodes = []
    for r in fit_rows:
        reasons = set(r["reasons"])
        if "Too many pods" in reasons:
            full_nodes.append(r["node"])
            continue
        missing = [name for name in requests if f"Insufficient {name}" in reasons]
        if len(missing) == 1:
            name = missing[0]
            free = r["_headroom"].get(name, 0)
            if free > 0 and (name not in short or free > short[name][0]):
                short[name] = (free, r["node"])
        elif missing:
            parts = ", ".join(f"{m} to at most {res.format_amount(m, max(r['_headroom'].get(m, 0), 0))}"
                              for m in missing)
            out.append(f"lower {parts}: it would then fit on node {r['node']}")
    for name, (free, node) in sorted(short.items()):
        out.append(f"lower the {name} request from {res.format_amount(name, requests[name])} to at most "
                   f"{res.format_amount(name, free)}: it would then fit on node {node}")
    for name, want in sorted(requests.items()):
        if name == res.PODS or want <= 0:
            continue
        biggest = max((ni.allocatable.get(name, 0) for ni in snapshot.nodes), default=0)
        if want > biggest:
            out.append(f"no node has {res.format_amount(name, want)} {name} allocatable in total "
                       f"(the largest has {res.format_amount(name, biggest)}): lower the request or add "
                       "a bigger node")
    if full_nodes:
        out.append(f"{len(full_nodes)} node(s) are at their pod limit: {', '.join(full_nodes[:5])}")
    if fit_rows and not out:
        out.append(f"{len(fit_rows)} node(s) fail only for lack of resources: free capacity there "
                   "(or let a higher-priority pod preempt)")

    # Taints the pod would need to tolerate.
    if only.get("TaintToleration"):
        tolerations = (pod.get("spec") or {}).get("tolerations") or []
        from scheduler.plugins.tainttoleration import NO_EXECUTE, NO_SCHEDULE, first_untolerated
        seen: dict[str, int] = {}
        for r in only["TaintToleration"]:
            ni = snapshot.get(r["node"])
            t = first_untolerated(ni.taints, tolerations, (NO_SCHEDULE, NO_EXECUTE)) if ni else None  # type: ignore[attr-defined]
            if t is not None:
                text = f"{t.get('key', '')}={t.get('value') or ''}:{t.get('effect')}"
                seen[text] = seen.get(text, 0) + 1
        for text, n in sorted(seen.items(), key=lambda kv: (-kv[1], kv[0])):
            out.append(f"add a toleration for taint {text}: {n} node(s) reject the pod only for it")
    if only.get("NodeAffinity"):
        sel = (pod.get("spec") or {}).get("nodeSelector") or {}
        for k, v in sorted(sel.items()):
            if not any(ni.labels.get(k) == v for ni in snapshot.nodes):  # type: ignore[attr-defined]
                out.append(f"no node has the label {k}={v} that the nodeSelector asks for")
        out.append(f"{len(only['NodeAffinity'])} node(s) reject the pod only for its nodeSelector/node "
                   "affinity: relax it or label a node to match")
    if only.get("NodeUnschedulable"):
        names = [r["node"] for r in only["NodeUnschedulable"]]
        out.append(f"uncordon {', '.join(names[:5])}: cordoned, and the only reason the pod does not fit there")
    if only.get("NodePorts"):
        out.append(f"{len(only['NodePorts'])} node(s) reject the pod only because its host ports are taken "
                   "there: free the ports or drop hostPort")
    for plugin in ("InterPodAffinity", "PodTopologySpread", "NodeName"):
        if only.get(plugin):
            reasons = sorted({x for r in only[plugin] for x in r["reasons"]})
            out.append(f"{len(only[plugin])} node(s) reject the pod only for {plugin}: {'; '.join(reasons)}")
    if not out:
        out.append("every node fails on more than one rule; see each node's failures")
    return out
