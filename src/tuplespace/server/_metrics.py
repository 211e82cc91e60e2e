"""Metrics for Prometheus, read at each scrape from the spaces' ``statistics()``."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ._service import Answer, ApiBase

__all__ = ["metrics_answer"]

_GAUGES = {
    "tuples": "Tuples in the space.",
    "waiters": "Calls waiting in the space.",
    "subscribers": "Subscriptions of the space.",
    "transactions": "Open transactions of the space (claims included).",
    "leased_tuples": "Tuples with a finite lease.",
    "last_event": "Sequence number of the space's latest event.",
    "logged_events": "Events kept in the space's event log.",
}
_COUNTERS = {
    "writes": "Tuples written since the space was opened.",
    "takes": "Tuples taken.",
    "reads": "Tuples read.",
    "expired": "Tuples whose lease ran out.",
    "cancelled": "Leases cancelled.",
    "commits": "Transactions committed.",
    "aborts": "Transactions aborted.",
}


class _SpacesCollector(Collector):
    def __init__(self, api: ApiBase) -> None:
        self.api = api

    def collect(self) -> Iterator[Metric]:
        api = self.api
        gauges = {
            k: GaugeMetricFamily(f"tuplespace_{k}", doc, labels=["space"]) for k, doc in _GAUGES.items()
        }
        counters = {
            k: CounterMetricFamily(f"tuplespace_{k}", doc, labels=["space"]) for k, doc in _COUNTERS.items()
        }
        for name, info in sorted(api.hub.spaces.items()):
            if info.space is None:  # kept elsewhere (Redis): its store has its own metrics
                continue
            stats = info.space.statistics()
            for key, family in gauges.items():
                family.add_metric([name], stats[key])
            for key, counter in counters.items():
                counter.add_metric([name], stats[key])
        yield from gauges.values()
        yield from counters.values()
        handles = list(api.hub.handles.values())
        claims = sum(1 for h in handles if h.kind == "claim" and h.state == "active")
        yield GaugeMetricFamily("tuplespace_spaces", "Spaces hosted.", value=len(api.hub.spaces))
        yield GaugeMetricFamily("tuplespace_claims", "Claimed takes awaiting confirmation.", value=claims)
        yield GaugeMetricFamily(
            "tuplespace_client_transactions",
            "Transactions opened through the API and still open.",
            value=sum(1 for h in handles if h.kind == "transaction" and h.state == "active"),
        )
        yield GaugeMetricFamily("tuplespace_event_streams", "Open event streams.", value=len(api.streams))
        yield GaugeMetricFamily(
            "tuplespace_waiting_requests",
            "Requests waiting in a long poll.",
            value=sum(c.waiting for c in api.hub.clients.values()),
        )
        yield CounterMetricFamily("tuplespace_http_requests", "Requests to the API.", value=api.requests)


def metrics_answer(api: ApiBase) -> Answer:
    """The metrics of ``api``'s server in Prometheus's text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_SpacesCollector(api))
    return Answer(200, generate_latest(registry), CONTENT_TYPE_LATEST)
