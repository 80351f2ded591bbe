//! The `metrics` feature: a reporter thread that takes a [`TelemetrySnapshot`] every
//! `Config::telemetry.report_interval` and hands its figures to the `metrics` facade
//! (whatever recorder the host installed): counters as absolute values, gauges set, and
//! each histogram as gauges of its percentiles (`quantile` label: 0.5, 0.9, 0.99,
//! 0.999, 1) plus `_count` and `_sum` counters, under the same names as
//! [`to_prometheus`](TelemetrySnapshot::to_prometheus). It never runs on a shard: the
//! shards only answer its snapshot's observe message, as for any snapshot.
//!
//! The thread (`mabeam-telemetry`) stops when the engine shuts down, before the shards,
//! after one last report (so a host sees the figures up to the shutdown).

use std::sync::Arc;
use std::thread::JoinHandle;

use metrics::{counter, gauge, Label};

use super::{HistogramSnapshot, TelemetrySnapshot};
use crate::engine::Inner;

/// The reporter thread; stopped by [`stop`](Self::stop).
pub(crate) struct Reporter {
    stop: flume::Sender<()>,
    handle: JoinHandle<()>,
}

impl Reporter {
    /// Starts the reporter for `inner`, if telemetry is on.
    pub(crate) fn start(inner: &Arc<Inner>) -> Option<Self> {
        let config = inner.config.telemetry;
        if !config.enabled {
            return None;
        }
        let (stop, stopped) = flume::bounded::<()>(1);
        let inner = inner.clone();
        let handle = std::thread::Builder::new()
            .name("mabeam-telemetry".into())
            .spawn(move || loop {
                match stopped.recv_timeout(config.report_interval) {
                    Err(flume::RecvTimeoutError::Timeout) => {}
                    // Stopping: one last report, so the figures up to shutdown arrive.
                    Ok(()) => {
                        if let Ok(t) = super::snapshot(&inner) {
                            report(&t);
                        }
                        break;
                    }
                    Err(flume::RecvTimeoutError::Disconnected) => break,
                }
                match super::snapshot(&inner) {
                    Ok(t) => report(&t),
                    Err(_) => break,
                }
            })
            .ok()?;
        Some(Self { stop, handle })
    }

    /// Stops the thread (after its last report) and waits for it.
    pub(crate) fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.handle.join();
    }
}

fn labels(pairs: &[(&'static str, String)]) -> Vec<Label> {
    pairs
        .iter()
        .map(|(k, v)| Label::new(*k, v.clone()))
        .collect()
}

fn histogram(name: &'static str, l: &[(&'static str, String)], h: &HistogramSnapshot, scale: f64) {
    for (q, v) in [
        ("0.5", h.p50),
        ("0.9", h.p90),
        ("0.99", h.p99),
        ("0.999", h.p999),
        ("1", h.max),
    ] {
        let mut with_q = labels(l);
        with_q.push(Label::new("quantile", q));
        gauge!(name, with_q).set(v as f64 / scale);
    }
    counter!(format!("{name}_count"), labels(l)).absolute(h.count);
    counter!(format!("{name}_sum"), labels(l)).absolute(h.sum);
}

/// Hands `t` to the `metrics` facade.
pub(crate) fn report(t: &TelemetrySnapshot) {
    for s in &t.shards {
        let l = [("shard", s.shard.to_string())];
        let c = |name: &'static str, v: u64| counter!(name, labels(&l)).absolute(v);
        c("mabeam_shard_commands_applied_total", s.report.applied);
        c("mabeam_shard_forwarded_total", s.report.forwarded);
        c("mabeam_shard_batches_total", s.report.batches);
        c("mabeam_shard_handler_panics_total", s.report.panics);
        c("mabeam_shard_busy_refusals_total", s.busy_refusals);
        c("mabeam_events_published_total", s.events_published);
        c("mabeam_events_delivered_total", s.events_delivered);
        c("mabeam_events_lagged_total", s.events_lagged);
        let g = |name: &'static str, v: f64| gauge!(name, labels(&l)).set(v);
        g("mabeam_shard_mailbox_depth", s.mailbox_depth as f64);
        g("mabeam_shard_control_depth", s.control_depth as f64);
        g("mabeam_shard_mailbox_capacity", s.mailbox_capacity as f64);
        g(
            "mabeam_shard_lane_depth",
            s.lane_depths.iter().sum::<usize>() as f64,
        );
        g("mabeam_shard_busy_seconds_total", s.busy_nanos as f64 / 1e9);
        g("mabeam_shard_idle_seconds_total", s.idle_nanos as f64 / 1e9);
        g("mabeam_shard_up", f64::from(u8::from(s.alive)));
        histogram("mabeam_shard_batch_size", &l, &s.batch_sizes, 1.0);
    }
    for o in &t.operations {
        let l = [("service", o.service.to_string()), ("op", o.op.to_string())];
        counter!("mabeam_operations_total", labels(&l)).absolute(o.count);
        counter!("mabeam_operation_panics_total", labels(&l)).absolute(o.panics);
        for (kind, n) in &o.errors {
            let mut lk = labels(&l);
            lk.push(Label::new("kind", kind.clone()));
            counter!("mabeam_operation_errors_total", lk).absolute(*n);
        }
        if o.apply.count > 0 {
            histogram("mabeam_operation_duration_seconds", &l, &o.apply, 1e9);
        }
        if o.round_trip.count > 0 {
            histogram(
                "mabeam_operation_round_trip_seconds",
                &l,
                &o.round_trip,
                1e9,
            );
        }
    }
    for r in &t.reads {
        let l = [("service", r.service.to_string()), ("op", r.op.to_string())];
        counter!("mabeam_snapshot_reads_total", labels(&l)).absolute(r.count);
    }
    gauge!("mabeam_event_subscriptions").set(t.events.subscriptions as f64);
    counter!("mabeam_tasks_spawned_total").absolute(t.tasks.spawned);
    counter!("mabeam_tasks_completed_total").absolute(t.tasks.completed);
    counter!("mabeam_tasks_panicked_total").absolute(t.tasks.panicked);
    gauge!("mabeam_tasks_queued").set(t.tasks.queued as f64);
    gauge!("mabeam_tasks_running").set(t.tasks.running as f64);
    gauge!("mabeam_tickets_pending").set(t.tickets_pending as f64);
    gauge!("mabeam_capabilities_used").set(t.capabilities_used as f64);
    gauge!("mabeam_capabilities_budget").set(t.capabilities_budget as f64);
    if t.tasks.duration.count > 0 {
        histogram("mabeam_task_duration_seconds", &[], &t.tasks.duration, 1e9);
    }
}
