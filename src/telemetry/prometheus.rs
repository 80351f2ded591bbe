//! [`TelemetrySnapshot`] in the Prometheus text exposition format (version 0.0.4).
//!
//! Conventions: every name starts `mabeam_`; counters end `_total`; durations are
//! histograms in seconds (`_bucket{le=…}` cumulative, `_sum`, `_count`); each family has
//! one `# HELP` and one `# TYPE` line and all its samples together; label values are
//! escaped (`\\`, `"`, newline).

use std::fmt::Write as _;

use super::{HistogramSnapshot, TelemetrySnapshot};

/// One metric family being written.
struct Family<'a> {
    out: &'a mut String,
}

/// Label pairs of a sample.
type Labels<'a> = &'a [(&'a str, &'a str)];

fn escape(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn labels(labels: Labels<'_>, extra: Option<(&str, &str)>, out: &mut String) {
    if labels.is_empty() && extra.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    for (k, v) in labels.iter().copied().chain(extra) {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(k);
        out.push_str("=\"");
        escape(v, out);
        out.push('"');
    }
    out.push('}');
}

impl<'a> Family<'a> {
    fn new(out: &'a mut String, name: &str, kind: &str, help: &str) -> Self {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        Self { out }
    }

    fn sample(&mut self, name: &str, l: Labels<'_>, value: impl std::fmt::Display) {
        self.out.push_str(name);
        labels(l, None, self.out);
        let _ = writeln!(self.out, " {value}");
    }

    /// A histogram's samples; values are divided by `scale` (1e9 for nanoseconds to
    /// seconds, 1 for counts).
    fn histogram(&mut self, name: &str, l: Labels<'_>, h: &HistogramSnapshot, scale: f64) {
        let mut le = String::new();
        for &(bound, count) in &h.buckets {
            le.clear();
            let _ = write!(le, "{}", bound as f64 / scale);
            self.out.push_str(name);
            self.out.push_str("_bucket");
            labels(l, Some(("le", &le)), self.out);
            let _ = writeln!(self.out, " {count}");
        }
        self.out.push_str(name);
        self.out.push_str("_bucket");
        labels(l, Some(("le", "+Inf")), self.out);
        let _ = writeln!(self.out, " {}", h.count);
        self.out.push_str(name);
        self.out.push_str("_sum");
        labels(l, None, self.out);
        let _ = writeln!(self.out, " {}", h.sum as f64 / scale);
        self.out.push_str(name);
        self.out.push_str("_count");
        labels(l, None, self.out);
        let _ = writeln!(self.out, " {}", h.count);
    }
}

/// Writes `t` as Prometheus text.
pub(super) fn write(t: &TelemetrySnapshot) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let shard_names: Vec<String> = t.shards.iter().map(|s| s.shard.to_string()).collect();

    type ShardFigure = fn(&super::ShardTelemetry) -> f64;
    let per_shard: [(&str, &str, &str, ShardFigure); 17] = [
        (
            "mabeam_shard_commands_applied_total",
            "counter",
            "Commands a shard applied (flushes and shard-to-shard messages included).",
            |s| s.report.applied as f64,
        ),
        (
            "mabeam_shard_forwarded_total",
            "counter",
            "Of the commands applied, the messages shards sent each other.",
            |s| s.report.forwarded as f64,
        ),
        (
            "mabeam_shard_batches_total",
            "counter",
            "Batches a shard ran.",
            |s| s.report.batches as f64,
        ),
        (
            "mabeam_shard_handler_panics_total",
            "counter",
            "Commands whose handler panicked.",
            |s| s.report.panics as f64,
        ),
        (
            "mabeam_shard_busy_refusals_total",
            "counter",
            "Sends refused with Busy because the shard's mailbox had no room.",
            |s| s.busy_refusals as f64,
        ),
        (
            "mabeam_shard_mailbox_depth",
            "gauge",
            "Host messages queued in the shard's mailbox.",
            |s| s.mailbox_depth as f64,
        ),
        (
            "mabeam_shard_control_depth",
            "gauge",
            "Control messages queued for the shard.",
            |s| s.control_depth as f64,
        ),
        (
            "mabeam_shard_mailbox_capacity",
            "gauge",
            "Commands the shard's mailbox admits.",
            |s| s.mailbox_capacity as f64,
        ),
        (
            "mabeam_shard_mailbox_backlog",
            "gauge",
            "Fire-and-forget commands the shard's mailbox admits now.",
            |s| s.mailbox_backlog as f64,
        ),
        (
            "mabeam_shard_lane_depth",
            "gauge",
            "Messages queued in all lanes into the shard.",
            |s| s.lane_depths.iter().sum::<usize>() as f64,
        ),
        (
            "mabeam_shard_lane_capacity",
            "gauge",
            "Messages one lane into the shard holds.",
            |s| s.lane_capacity as f64,
        ),
        (
            "mabeam_shard_up",
            "gauge",
            "1 while the shard's thread runs, 0 once it died.",
            |s| f64::from(u8::from(s.alive)),
        ),
        (
            "mabeam_events_published_total",
            "counter",
            "Events the shard produced.",
            |s| s.events_published as f64,
        ),
        (
            "mabeam_events_delivered_total",
            "counter",
            "Event copies handed to subscribers.",
            |s| s.events_delivered as f64,
        ),
        (
            "mabeam_events_lagged_total",
            "counter",
            "Event copies dropped because a subscriber's queue was full.",
            |s| s.events_lagged as f64,
        ),
        (
            "mabeam_shard_busy_seconds_total",
            "counter",
            "Seconds the shard spent running batches.",
            |s| s.busy_nanos as f64 / 1e9,
        ),
        (
            "mabeam_shard_idle_seconds_total",
            "counter",
            "Seconds the shard spent outside batches.",
            |s| s.idle_nanos as f64 / 1e9,
        ),
    ];
    for (name, kind, help, figure) in per_shard {
        let mut f = Family::new(&mut out, name, kind, help);
        for (s, shard) in t.shards.iter().zip(&shard_names) {
            let l: Labels<'_> = &[("shard", shard)];
            f.sample(name, l, figure(s));
        }
    }
    {
        let name = "mabeam_shard_batch_size";
        let mut f = Family::new(&mut out, name, "histogram", "Commands per batch.");
        for (s, shard) in t.shards.iter().zip(&shard_names) {
            f.histogram(name, &[("shard", shard)], &s.batch_sizes, 1.0);
        }
    }
    {
        let name = "mabeam_operations_total";
        let mut f = Family::new(
            &mut out,
            name,
            "counter",
            "Commands of each operation the shards applied.",
        );
        for o in &t.operations {
            f.sample(name, &[("service", o.service), ("op", o.op)], o.count);
        }
    }
    {
        let name = "mabeam_operation_panics_total";
        let mut f = Family::new(
            &mut out,
            name,
            "counter",
            "Commands of each operation whose handler panicked.",
        );
        for o in &t.operations {
            f.sample(name, &[("service", o.service), ("op", o.op)], o.panics);
        }
    }
    {
        let name = "mabeam_operation_errors_total";
        let mut f = Family::new(
            &mut out,
            name,
            "counter",
            "Refusals of each operation, by the service's rule or by the engine, by kind.",
        );
        for o in &t.operations {
            for (kind, n) in &o.errors {
                f.sample(
                    name,
                    &[("service", o.service), ("op", o.op), ("kind", kind)],
                    n,
                );
            }
        }
    }
    {
        let name = "mabeam_operation_duration_seconds";
        let mut f = Family::new(
            &mut out,
            name,
            "histogram",
            "Seconds applying one command on its shard (sampled).",
        );
        for o in &t.operations {
            f.histogram(name, &[("service", o.service), ("op", o.op)], &o.apply, 1e9);
        }
    }
    {
        let name = "mabeam_operation_round_trip_seconds";
        let mut f = Family::new(
            &mut out,
            name,
            "histogram",
            "Seconds of an acknowledged call from send to result taken (sampled).",
        );
        for o in t.operations.iter().filter(|o| o.round_trip.count > 0) {
            f.histogram(
                name,
                &[("service", o.service), ("op", o.op)],
                &o.round_trip,
                1e9,
            );
        }
    }
    {
        let name = "mabeam_snapshot_reads_total";
        let mut f = Family::new(
            &mut out,
            name,
            "counter",
            "Snapshot reads (no message to a shard).",
        );
        for r in &t.reads {
            f.sample(name, &[("service", r.service), ("op", r.op)], r.count);
        }
    }
    let gauges: [(&str, &str, &str, u64); 11] = [
        (
            "mabeam_event_subscriptions",
            "gauge",
            "Event subscriptions alive.",
            t.events.subscriptions,
        ),
        (
            "mabeam_tasks_spawned_total",
            "counter",
            "Tasks the pool accepted.",
            t.tasks.spawned,
        ),
        (
            "mabeam_tasks_completed_total",
            "counter",
            "Tasks finished (panicked ones included).",
            t.tasks.completed,
        ),
        (
            "mabeam_tasks_panicked_total",
            "counter",
            "Tasks that panicked.",
            t.tasks.panicked,
        ),
        (
            "mabeam_tasks_queued",
            "gauge",
            "Tasks waiting in the pool's queue.",
            t.tasks.queued,
        ),
        (
            "mabeam_tasks_running",
            "gauge",
            "Tasks running on a worker.",
            t.tasks.running,
        ),
        (
            "mabeam_task_workers",
            "gauge",
            "Worker threads of the task pool.",
            t.tasks.workers as u64,
        ),
        (
            "mabeam_tickets_pending",
            "gauge",
            "Tickets created and not yet dropped (process-wide).",
            t.tickets_pending,
        ),
        (
            "mabeam_capabilities_used",
            "gauge",
            "Capability names interned.",
            t.capabilities_used as u64,
        ),
        (
            "mabeam_capabilities_budget",
            "gauge",
            "Most capability names the engine interns.",
            t.capabilities_budget as u64,
        ),
        (
            "mabeam_telemetry_sample_every",
            "gauge",
            "One command and call in this many is timed.",
            u64::from(t.sample_every),
        ),
    ];
    for (name, kind, help, value) in gauges {
        Family::new(&mut out, name, kind, help).sample(name, &[], value);
    }
    {
        let name = "mabeam_task_duration_seconds";
        Family::new(
            &mut out,
            name,
            "histogram",
            "Seconds a task ran on its worker.",
        )
        .histogram(name, &[], &t.tasks.duration, 1e9);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        labels(&[("kind", "a\"b\\c\nd")], Some(("le", "1")), &mut out);
        assert_eq!(out, "{kind=\"a\\\"b\\\\c\\nd\",le=\"1\"}");
    }
}
