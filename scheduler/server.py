"""The scheduler's HTTP surface and metrics.

Routes next to ``/healthz`` and ``/metrics`` (served by ``client.component``):

- ``GET /debug/why-pending/<namespace>/<name>``: the framework's explanation of where the pod
  fits and why not elsewhere (``Framework.explain``), plus which sub-queue holds it. 404 for a
  pod the scheduler does not know, 503 while this replica is not the leader (its cache is empty).
- ``GET /debug/cache``: node, pod and assumed-pod counts.

Metrics carry kube-scheduler's names and labels, so dashboards built for it read these too.
"""

from __future__ import annotations

import functools
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import Counter, Gauge, Histogram

DEFAULT_PORT = 10259

_LATENCY = (0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096,
            8.192, 16.384)

SCHEDULE_ATTEMPTS = Counter(
    "scheduler_schedule_attempts_total",
    "Number of attempts to schedule pods, by the result. 'unschedulable' means a pod could not be "
    "scheduled, while 'error' means an internal scheduler problem.", ["result", "profile"])
E2E_DURATION = Histogram(
    "scheduler_e2e_scheduling_duration_seconds",
    "E2e scheduling latency in seconds (scheduling algorithm + binding)", ["result", "profile"],
    buckets=_LATENCY)
ATTEMPT_DURATION = Histogram(
    "scheduler_scheduling_attempt_duration_seconds",
    "Scheduling attempt latency in seconds (scheduling algorithm + binding)", ["result", "profile"],
    buckets=_LATENCY)
ALGORITHM_DURATION = Histogram(
    "scheduler_scheduling_algorithm_duration_seconds", "Scheduling algorithm latency in seconds",
    buckets=_LATENCY)
SLI_DURATION = Histogram(
    "scheduler_pod_scheduling_sli_duration_seconds",
    "E2e latency for a pod being scheduled, from the time the pod enters the scheduling queue",
    ["attempts"], buckets=_LATENCY)
POD_ATTEMPTS = Histogram(
    "scheduler_pod_scheduling_attempts", "Number of attempts to successfully schedule a pod.",
    buckets=(1, 2, 4, 8, 16))
PENDING_PODS = Gauge(
    "scheduler_pending_pods",
    "Number of pending pods, by the queue type. 'active' means number of pods in activeQ; 'backoff' "
    "means number of pods in backoffQ; 'unschedulable' means number of pods in unschedulablePods; "
    "'gated' is the number of pods with scheduling gates.", ["queue"])
PREEMPTION_ATTEMPTS = Counter("scheduler_preemption_attempts_total", "Total preemption attempts in the cluster")
PREEMPTION_VICTIMS = Histogram("scheduler_preemption_victims", "Number of selected preemption victims",
                               buckets=(1, 2, 4, 8, 16, 32, 64))
CACHE_SIZE = Gauge("scheduler_cache_size", "Number of nodes, pods, and assumed (bound) pods in the "
                   "scheduler cache.", ["type"])
QUEUE_INCOMING = Counter("scheduler_queue_incoming_pods_total",
                         "Number of pods added to scheduling queues by event and queue type.",
                         ["queue", "event"])


@functools.cache
def child(metric: Any, *values: str) -> Any:
    """``metric.labels(*values)``, looked up once: the scheduler updates several labelled
    metrics per pod, and each ``labels`` call validates and locks."""
    return metric.labels(*values)


def bind_gauges(scheduler: Any) -> None:
    """Point the gauges at ``scheduler``'s queue and cache (read at scrape time)."""
    for q in ("active", "backoff", "unschedulable", "gated"):
        PENDING_PODS.labels(queue=q).set_function(lambda q=q: scheduler.queue.counts()[q])
    CACHE_SIZE.labels(type="nodes").set_function(lambda: scheduler.cache.node_count())
    CACHE_SIZE.labels(type="pods").set_function(lambda: scheduler.cache.pod_count())
    CACHE_SIZE.labels(type="assumed_pods").set_function(lambda: scheduler.cache.assumed_count())


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def routes(get_scheduler: Any) -> list[web.RouteDef]:
    """The debug routes; ``get_scheduler()`` returns the running Scheduler, or None on a standby."""

    async def why_pending(request: web.Request) -> web.Response:
        sched = get_scheduler()
        if sched is None or not sched.ready:
            return _json({"error": "this scheduler is not leading (or not synced yet); ask the leader"}, 503)
        ns, name = request.match_info["namespace"], request.match_info["name"]
        result = sched.explain(ns, name)
        if result is None:
            return _json({"error": f"pod {ns}/{name} not found in the scheduler's cache"}, 404)
        return _json(result)

    async def cache(request: web.Request) -> web.Response:
        sched = get_scheduler()
        if sched is None:
            return _json({"error": "not leading"}, 503)
        return _json(sched.cache.dump() | {"queue": sched.queue.counts()})

    return [web.get("/debug/why-pending/{namespace}/{name}", why_pending),
            web.get("/debug/cache", cache)]
