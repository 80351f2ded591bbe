//! Telemetry: what the engine counts and times about itself, read as one plain
//! [`TelemetrySnapshot`] ([`Telemetry::snapshot`]) and written as Prometheus text
//! ([`TelemetrySnapshot::to_prometheus`]).
//!
//! # Who records what, and how it is read
//!
//! - **Shards** record their own figures in memory only their thread touches (plain
//!   integers and `hdrhistogram`s: no lock, no atomic, no allocation on the hot path):
//!   per operation the commands applied (every one), handler panics, refusals by the
//!   service's rule by kind, and the time applying — **one command in
//!   [`TelemetryConfig::sample_every`]** (16) is timed, the others cost a counter
//!   increment; per batch its size and wall time (busy vs idle). A snapshot **asks each
//!   shard** for a copy: a message answered at the end of the shard's batch, so the
//!   copy includes everything the calling thread sent before (as [`flush`] would), and
//!   a stalled shard delays the snapshot up to `Config::send_timeout`.
//! - **Host threads** record into a slot of their own per engine (its own allocation and
//!   cache lines, found through a thread-local cache): **snapshot reads, every one, as
//!   per-thread counters** (a load and a store of a line no other thread writes);
//!   refusals of calls by operation and engine error kind (`Busy`, `ShutDown`, …);
//!   and the **round trip of acknowledged calls**, from the send to the moment the
//!   caller takes the result (queueing, apply and wake-up), one call in `sample_every`
//!   per thread. A snapshot sums the slots.
//! - Mailbox and lane depths, `Busy` refusals per shard (a counter of their own per
//!   shard, written only on the refusal path), the task pool's counters and the event
//!   subscriptions are read where they live.
//!
//! Histograms have fixed memory and log-linear buckets (two significant figures on the
//! shards; 6.25 % buckets on host threads and task workers, whose histograms are atomic
//! counters because nobody can ask those threads for a copy); they are merged when read.
//! `Config::telemetry.enabled = false` turns every recording off (the snapshot then
//! holds only what is read where it lives: depths, task and event counters).
//!
//! Pending tickets are counted process-wide (each thread counts the tickets it creates
//! and drops): with several engines in one process the figure is theirs together.
//!
//! [`flush`]: crate::EngineHandle::flush

pub(crate) mod histogram;
pub(crate) mod host;
pub(crate) mod ops;
mod prometheus;
#[cfg(feature = "metrics")]
pub(crate) mod reporter;
pub(crate) mod shard;

use std::sync::Arc;
use std::time::Duration;

pub use histogram::HistogramSnapshot;

use crate::engine::Inner;
use crate::runtime::ShardReport;
use crate::Error;
use histogram::{hdr, Hdr, BATCH_BOUNDS, DURATION_BOUNDS, MAX_NANOS};
use ops::{ENGINE_KINDS, OPS, READS};

/// What telemetry records, and how often a reporter reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TelemetryConfig {
    /// Record at all (on by default). Off, the shards and callers skip every recording
    /// and a snapshot holds only what is read where it lives.
    pub enabled: bool,
    /// Time one command (on a shard) and one acknowledged call (per host thread) in this
    /// many (at least 1; 1 times every one). Counts are exact whatever it is.
    pub sample_every: u32,
    /// How often the `metrics` feature's reporter thread reports (at least 1 ms).
    pub report_interval: Duration,
}

setters!(TelemetryConfig {
    with_enabled => enabled: bool,
    with_sample_every => sample_every: u32,
    with_report_interval => report_interval: Duration,
});

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            sample_every: 16,
            report_interval: Duration::from_secs(10),
        }
    }
}

/// One shard's figures.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ShardTelemetry {
    /// Shard index.
    pub shard: usize,
    /// False if the shard's thread died (its recorded figures are then lost; the
    /// counters of `report` are the last it published).
    pub alive: bool,
    /// Commands applied, forwarded, panics, batches (as in the shutdown report).
    pub report: ShardReport,
    /// Writes and calls refused with `Busy` because its mailbox had no room.
    pub busy_refusals: u64,
    /// Host messages queued in its mailbox now (control messages apart).
    pub mailbox_depth: usize,
    /// Control messages queued now (lease releases, unsubscribes).
    pub control_depth: usize,
    /// The mailbox's capacity (commands).
    pub mailbox_capacity: u64,
    /// The fire-and-forget backlog in force (commands; see `Config::write_delay`).
    pub mailbox_backlog: u64,
    /// Messages queued in each lane into this shard, by sending shard.
    pub lane_depths: Vec<usize>,
    /// Most messages one lane holds.
    pub lane_capacity: usize,
    /// Commands per batch.
    pub batch_sizes: HistogramSnapshot,
    /// Nanoseconds spent running batches (applying, publishing, answering).
    pub busy_nanos: u64,
    /// Nanoseconds of its life not spent in batches (polling, sleeping).
    pub idle_nanos: u64,
    /// Events this shard produced (services' and hosts').
    pub events_published: u64,
    /// Event copies handed to subscribers.
    pub events_delivered: u64,
    /// Event copies dropped because a subscriber's queue was full.
    pub events_lagged: u64,
}

/// One operation's figures, summed over the shards and host threads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct OperationTelemetry {
    /// The service (`auctions`).
    pub service: &'static str,
    /// The operation (`create`).
    pub op: &'static str,
    /// Commands of this operation the shards applied.
    pub count: u64,
    /// Of those, the ones whose handler panicked.
    pub panics: u64,
    /// Refusals by kind: the service's (`BidTooLow`, counted by the shard), and the
    /// engine's (`Busy`, `ShutDown`, `ShardDown`, counted by the caller whose send was
    /// refused; such a command is not in `count`).
    pub errors: Vec<(String, u64)>,
    /// Nanoseconds applying one command on its shard (sampled).
    pub apply: HistogramSnapshot,
    /// Nanoseconds of an acknowledged call's round trip, send to result taken (sampled).
    pub round_trip: HistogramSnapshot,
}

/// Snapshot reads of one kind, summed over the host threads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ReadTelemetry {
    /// The service.
    pub service: &'static str,
    /// The read (`status`).
    pub op: &'static str,
    /// Reads made (every one counted).
    pub count: u64,
}

/// Events, over the shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct EventTelemetry {
    /// Events produced.
    pub published: u64,
    /// Copies handed to subscribers.
    pub delivered: u64,
    /// Copies dropped for full subscriber queues.
    pub lagged: u64,
    /// Subscriptions alive.
    pub subscriptions: u64,
}

/// The task pool.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct TaskTelemetry {
    /// Worker threads.
    pub workers: usize,
    /// Jobs accepted.
    pub spawned: u64,
    /// Jobs waiting in the queue.
    pub queued: u64,
    /// Jobs running now (accepted, not queued, not finished).
    pub running: u64,
    /// Jobs finished (those that panicked included).
    pub completed: u64,
    /// Jobs that panicked.
    pub panicked: u64,
    /// Nanoseconds a job ran on its worker (delivery of its result included).
    pub duration: HistogramSnapshot,
}

/// Everything telemetry knows, as plain data; see the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct TelemetrySnapshot {
    /// Whether recording was on.
    pub enabled: bool,
    /// One command and call in this many is timed.
    pub sample_every: u32,
    /// Per shard.
    pub shards: Vec<ShardTelemetry>,
    /// Per service and operation, in a fixed order.
    pub operations: Vec<OperationTelemetry>,
    /// Snapshot reads, per service and read.
    pub reads: Vec<ReadTelemetry>,
    /// Events.
    pub events: EventTelemetry,
    /// Tasks.
    pub tasks: TaskTelemetry,
    /// Tickets created and not yet dropped, process-wide.
    pub tickets_pending: u64,
    /// Capability names interned, of [`capabilities_budget`](Self::capabilities_budget).
    pub capabilities_used: usize,
    /// Most capability names an engine interns.
    pub capabilities_budget: usize,
}

impl TelemetrySnapshot {
    /// The figures of `(service, op)`, if it is an operation.
    pub fn operation(&self, service: &str, op: &str) -> Option<&OperationTelemetry> {
        self.operations
            .iter()
            .find(|o| o.service == service && o.op == op)
    }

    /// The count of snapshot read `(service, op)`, 0 if it is not one.
    pub fn reads_of(&self, service: &str, op: &str) -> u64 {
        self.reads
            .iter()
            .find(|r| r.service == service && r.op == op)
            .map_or(0, |r| r.count)
    }

    /// Commands applied by all shards together.
    pub fn applied(&self) -> u64 {
        self.shards.iter().map(|s| s.report.applied).sum()
    }

    /// The snapshot in the Prometheus text exposition format (version 0.0.4): counters
    /// named `mabeam_…_total`, gauges, and histograms in seconds
    /// (`mabeam_operation_duration_seconds{service="auctions",op="create"}`), each with
    /// its `# HELP` and `# TYPE` lines; per-shard figures carry a `shard` label.
    pub fn to_prometheus(&self) -> String {
        prometheus::write(self)
    }
}

/// The telemetry of an engine; get it with
/// [`EngineHandle::telemetry`](crate::EngineHandle::telemetry).
///
/// ```
/// use mabeam::auctions::{AuctionKind, AuctionSpec};
/// let config = mabeam::Config::default().with_shards(2).with_pin_threads(false);
/// let engine = mabeam::Engine::start(config)?;
/// let spec = AuctionSpec {
///     kind: AuctionKind::English { reserve: 1, min_increment: 1 },
///     seller: 1, category: 1, deadline: None, buy_now: None,
/// };
/// engine.auctions().create(spec).wait()??;
/// let t = engine.telemetry().snapshot()?;
/// assert_eq!(t.operation("auctions", "create").unwrap().count, 1);
/// assert!(t.to_prometheus().contains("mabeam_operations_total{service=\"auctions\",op=\"create\"} 1"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy)]
pub struct Telemetry<'e> {
    inner: &'e Arc<Inner>,
}

impl std::fmt::Debug for Telemetry<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("enabled", &self.inner.config.telemetry.enabled)
            .finish()
    }
}

impl<'e> Telemetry<'e> {
    pub(crate) fn new(inner: &'e Arc<Inner>) -> Self {
        Self { inner }
    }

    /// Every figure now. Asks each shard for its own (answered at the end of its batch,
    /// after everything this thread sent before); a dead shard's entry is marked
    /// `alive: false` with its last published counters. `Err(ShutDown)` once shutdown
    /// has begun.
    pub fn snapshot(&self) -> Result<TelemetrySnapshot, Error> {
        snapshot(self.inner)
    }
}

/// See [`Telemetry::snapshot`].
pub(crate) fn snapshot(inner: &Inner) -> Result<TelemetrySnapshot, Error> {
    inner.check_open()?;
    let rt = &inner.rt;
    let observed = rt.observe();
    let ports = rt.port_figures();
    let reports = rt.reports();
    let mut ops_apply: Vec<Option<Hdr>> = (0..OPS.len()).map(|_| None).collect();
    let mut operations: Vec<OperationTelemetry> = OPS
        .iter()
        .map(|&(service, op)| OperationTelemetry {
            service,
            op,
            ..OperationTelemetry::default()
        })
        .collect();
    let mut shards = Vec::with_capacity(observed.len());
    let mut events = EventTelemetry {
        subscriptions: inner.events.live(),
        ..EventTelemetry::default()
    };
    for (index, (obs, port)) in observed.into_iter().zip(ports).enumerate() {
        let mut shard = ShardTelemetry {
            shard: index,
            alive: obs.is_ok(),
            report: reports[index],
            busy_refusals: port.busy_refusals,
            mailbox_depth: port.mailbox_depth,
            control_depth: port.control_depth,
            mailbox_capacity: port.mailbox_capacity,
            mailbox_backlog: port.mailbox_backlog,
            lane_depths: port.lane_depths,
            lane_capacity: port.lane_capacity,
            batch_sizes: HistogramSnapshot::of(&hdr(2), &BATCH_BOUNDS),
            ..ShardTelemetry::default()
        };
        if let Ok(obs) = obs {
            shard.report = obs.report;
            shard.batch_sizes = HistogramSnapshot::of(&obs.batch_sizes, &BATCH_BOUNDS);
            shard.busy_nanos = obs.busy_nanos;
            shard.idle_nanos = obs.alive_nanos.saturating_sub(obs.busy_nanos);
            shard.events_published = obs.figures.events_published;
            shard.events_delivered = obs.figures.events_delivered;
            shard.events_lagged = obs.figures.events_lagged;
            events.published += obs.figures.events_published;
            events.delivered += obs.figures.events_delivered;
            events.lagged += obs.figures.events_lagged;
            for (i, op) in obs.ops.iter().enumerate().take(OPS.len()) {
                let out = &mut operations[i];
                out.count += op.count;
                out.panics += op.panics;
                for (kind, n) in op.errors() {
                    add_error(&mut out.errors, kind, n);
                }
                if let Some(h) = &op.apply {
                    let sum = ops_apply[i].get_or_insert_with(|| hdr(MAX_NANOS));
                    sum.add(&**h)
                        .expect("histograms of the same bounds always merge");
                }
            }
        }
        shards.push(shard);
    }
    let host = rt.host().read_all();
    let empty = hdr(MAX_NANOS);
    for (i, out) in operations.iter_mut().enumerate() {
        for (k, &n) in host.refusals[i].iter().enumerate() {
            if n > 0 {
                add_error(&mut out.errors, ENGINE_KINDS[k].to_string(), n);
            }
        }
        out.apply =
            HistogramSnapshot::of(ops_apply[i].as_ref().unwrap_or(&empty), &DURATION_BOUNDS);
        out.round_trip = HistogramSnapshot::of(
            host.round_trips[i].as_ref().unwrap_or(&empty),
            &DURATION_BOUNDS,
        );
    }
    let reads = READS
        .iter()
        .zip(host.reads.iter())
        .map(|(&(service, op), &count)| ReadTelemetry { service, op, count })
        .collect();
    let stats = inner.tasks.stats();
    let mut durations = hdr(MAX_NANOS);
    inner.tasks.durations_into(&mut durations);
    let tasks = TaskTelemetry {
        workers: stats.workers,
        spawned: stats.spawned,
        queued: stats.queued as u64,
        running: stats
            .spawned
            .saturating_sub(stats.completed)
            .saturating_sub(stats.queued as u64),
        completed: stats.completed,
        panicked: stats.panicked,
        duration: HistogramSnapshot::of(&durations, &DURATION_BOUNDS),
    };
    Ok(TelemetrySnapshot {
        enabled: inner.config.telemetry.enabled,
        sample_every: inner.config.telemetry.sample_every.max(1),
        shards,
        operations,
        reads,
        events,
        tasks,
        tickets_pending: host::tickets_pending(),
        capabilities_used: inner.capabilities.len(),
        capabilities_budget: inner.capabilities.capacity(),
    })
}

fn add_error(errors: &mut Vec<(String, u64)>, kind: String, n: u64) {
    match errors.iter_mut().find(|(k, _)| *k == kind) {
        Some((_, c)) => *c += n,
        None => errors.push((kind, n)),
    }
}
