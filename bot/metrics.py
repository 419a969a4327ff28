"""Prometheus metrics on a per-app registry (no process-global collectors)."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.inbound = Counter("genjin_inbound_total", "Inbound messages stored", ["platform", "kind"], registry=r)
        self.duplicates = Counter("genjin_inbound_duplicates_total", "Redelivered messages dropped", ["platform"], registry=r)
        self.rejected = Counter("genjin_inbound_rejected_total", "Callbacks rejected before storage", ["platform", "reason"], registry=r)
        self.handled = Counter("genjin_handled_total", "Inbox rows processed", ["outcome"], registry=r)
        self.handling = Histogram(
            "genjin_handling_seconds", "Time from receipt to processed", buckets=LATENCY_BUCKETS, registry=r
        )
        self.outbound = Counter("genjin_outbound_total", "Outbound delivery attempts", ["platform", "outcome"], registry=r)
        self.outbox_lag = Histogram(
            "genjin_outbox_delivery_seconds", "Time from enqueue to delivery", buckets=LATENCY_BUCKETS, registry=r
        )
        self.reminders = Counter("genjin_reminders_total", "Reminders sent", registry=r)
        self.job_runs = Counter("genjin_job_runs_total", "Scheduled job runs", ["job", "outcome"], registry=r)
        self.job_seconds = Histogram("genjin_job_seconds", "Scheduled job run time", ["job"], buckets=LATENCY_BUCKETS, registry=r)
        self.outbox_pending = Gauge("genjin_outbox_pending", "Outbound messages not yet delivered", registry=r)
        self.outbox_oldest_pending = Gauge(
            "genjin_outbox_oldest_pending_seconds", "Age of the oldest undelivered outbound message", registry=r
        )
        self.channel_up = Gauge("genjin_channel_up", "Channel healthy (1) or not (0)", ["platform"], registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
