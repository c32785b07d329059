"""Prometheus metrics of the API server, named and labelled as Kubernetes' are."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

_LABELS = ("verb", "dry_run", "group", "version", "resource", "subresource", "scope", "component")

REQUESTS = Counter("apiserver_request_total", "Counter of apiserver requests broken out for each verb, "
                   "dry run value, group, version, resource, scope, component, and HTTP response code.",
                   _LABELS + ("code",), registry=REGISTRY)
DURATION = Histogram("apiserver_request_duration_seconds", "Response latency distribution in seconds for "
                     "each verb, dry run value, group, version, resource, subresource, scope and component.",
                     _LABELS,
                     buckets=(0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2, 3, 4, 5, 6, 8,
                              10, 15, 20, 30, 45, 60),
                     registry=REGISTRY)
WATCHERS = Gauge("apiserver_registered_watchers", "Number of currently registered watchers for a given "
                 "resource", ("group", "kind"), registry=REGISTRY)
INFLIGHT = Gauge("apiserver_current_inflight_requests", "Number of requests in flight", ("request_kind",),
                 registry=REGISTRY)


# Children per label values, looked up once: ``labels()`` validates and hashes its arguments on
# every call. The metrics keep each child forever anyway, so these maps grow no further than they do.
_request_children: dict[tuple[str, ...], object] = {}
_duration_children: dict[tuple[str, ...], object] = {}


def observe_request(labels: tuple[str, ...], code: str, seconds: float) -> None:
    """Count a finished request (``labels`` in ``_LABELS`` order) and, unless it is a watch,
    observe its duration."""
    key = labels + (code,)
    counter = _request_children.get(key)
    if counter is None:
        counter = _request_children[key] = REQUESTS.labels(*key)
    counter.inc()  # type: ignore[attr-defined]
    if labels[0] != "WATCH":
        hist = _duration_children.get(labels)
        if hist is None:
            hist = _duration_children[labels] = DURATION.labels(*labels)
        hist.observe(seconds)  # type: ignore[attr-defined]


def verb_of(method: str, is_list: bool, is_watch: bool) -> str:
    """Kubernetes' verb label: GET of a collection is LIST, a watch is WATCH."""
    if is_watch:
        return "WATCH"
    if method == "GET" and is_list:
        return "LIST"
    return "APPLY" if method == "APPLY" else method


def exposition() -> bytes:
    return generate_latest(REGISTRY)
