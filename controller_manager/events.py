"""The controller manager's event recorder: client-go's EventCorrelator in front of the writer.

Kubernetes' controllers do not write one Event per call. client-go's correlator first
aggregates: when one source reports, within ten minutes, ten or more events about one object
that share type and reason but differ in message (``Created pod: web-x``, ``Created pod:
web-y``, ...), the further ones become a single Event ``(combined from similar events): ...``
whose count grows. Then a spam filter lets each source write about each object at most a burst
of 25 events, refilled at one per five minutes; the rest are dropped. So a ReplicaSet scaled
to ten thousand replicas costs the API server about 25 event writes, not ten thousand.

``CorrelatingRecorder`` applies both rules before handing an event to ``EventRecorder``, which
writes it in the background and folds exact repeats into count patches. One difference from
client-go: an aggregated Event keeps the message of the event that started the aggregation
(client-go rewrites it to the latest one on every count patch), since ``EventRecorder`` folds
repeats by message.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from client.events import EventRecorder, object_reference

AGGREGATE_MAX_EVENTS = 10            # distinct messages per (object, type, reason) before combining
AGGREGATE_INTERVAL = 600.0           # seconds a run of similar events stays one aggregation
SPAM_BURST = 25                      # events per source and object, at once
SPAM_QPS = 1.0 / 300.0               # and then this many per second
CACHE_ENTRIES = 4096                 # objects remembered by each of the two caches (LRU)
COMBINED_PREFIX = "(combined from similar events): "


@dataclass
class _Aggregate:
    last: float
    messages: set[str] = field(default_factory=set)
    combined: str | None = None      # message of the combined Event, once there is one


@dataclass
class _Bucket:
    tokens: float
    at: float


def _lru_get(cache: OrderedDict, key: Any) -> Any:
    value = cache.get(key)
    if value is not None:
        cache.move_to_end(key)
    return value


def _lru_put(cache: OrderedDict, key: Any, value: Any) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > CACHE_ENTRIES:
        cache.popitem(last=False)


class CorrelatingRecorder(EventRecorder):
    """An ``EventRecorder`` that aggregates similar events and drops spam as client-go does."""

    def __init__(self, client: Any, component: str, host: str | None = None, *,
                 max_events: int = AGGREGATE_MAX_EVENTS, interval: float = AGGREGATE_INTERVAL,
                 burst: int = SPAM_BURST, qps: float = SPAM_QPS, **kw: Any):
        super().__init__(client, component, host, **kw)
        self.max_events = max_events
        self.interval = interval
        self.burst = burst
        self.qps = qps
        self.filtered = 0                # events the spam filter dropped
        self._aggregates: OrderedDict[tuple[Any, ...], _Aggregate] = OrderedDict()
        self._buckets: OrderedDict[tuple[Any, ...], _Bucket] = OrderedDict()

    def event(self, obj: dict[str, Any], type: str, reason: str, message: str) -> None:
        ref = object_reference(obj)
        target = (ref.get("kind"), ref.get("namespace"), ref.get("name"), ref.get("uid"), ref.get("apiVersion"))
        now = self.clock.monotonic()
        message = self._aggregate((*target, type, reason), message, now)
        if not self._allow(target, now):
            self.filtered += 1
            return
        super().event(ref, type, reason, message)

    def _aggregate(self, key: tuple[Any, ...], message: str, now: float) -> str:
        """The message to record: ``message`` itself, or that of the combined Event once
        ``max_events`` different messages were seen for ``key`` within ``interval``."""
        agg = _lru_get(self._aggregates, key)
        if agg is None or now - agg.last > self.interval:
            agg = _Aggregate(last=now)
        agg.last = now
        _lru_put(self._aggregates, key, agg)
        agg.messages.add(message)
        if len(agg.messages) < self.max_events:
            return message
        agg.messages.pop()               # the set stays just under the threshold, as client-go's
        if agg.combined is None:
            agg.combined = COMBINED_PREFIX + message
        return agg.combined

    def _allow(self, target: tuple[Any, ...], now: float) -> bool:
        """A token from the object's bucket (``burst`` at first, refilled at ``qps``), if any."""
        bucket = _lru_get(self._buckets, target)
        if bucket is None:
            bucket = _Bucket(tokens=float(self.burst), at=now)
            _lru_put(self._buckets, target, bucket)
        else:
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * self.qps)
            bucket.at = now
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True
