//! The results as tables (stdout) and as JSON (`--json`, written with serde_json).
//!
//! The JSON schema ([`Document`]) keeps every field of the schema before it
//! (`machine.cpus`, `runs[].preset/clients/shards/ops_per_sec/ops_per_sec_client_side/
//! success_rate/operations.NAME.count/avg_us/min_us/max_us/p50_us/p95_us/p99_us`,
//! `ratio_sharded_over_centralized`) and adds the run's parameters, each run's pace,
//! engine configuration, check, failures, throughput over time, peak resident memory and
//! mailbox depth, where the CPU went (`cpu`), and the sweep.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use mabeam::Config;
use serde::Serialize;

use super::args::{LoadArgs, Pace, RunLength};
use super::client::Failure;
use super::histogram::Histogram;
use super::mix::Op;
use super::progress::throughput;
use super::runner::{Check, RunResult};

/// Latency statistics of one operation, in microseconds (`None` when it never ran).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct OpStats {
    /// Operations run.
    pub count: u64,
    /// Mean.
    pub avg_us: Option<f64>,
    /// Smallest.
    pub min_us: Option<f64>,
    /// Largest.
    pub max_us: Option<f64>,
    /// Median.
    pub p50_us: Option<f64>,
    /// 95th percentile.
    pub p95_us: Option<f64>,
    /// 99th percentile.
    pub p99_us: Option<f64>,
    /// 99.9th percentile.
    pub p999_us: Option<f64>,
}

/// Microseconds of nanoseconds, rounded to the nanosecond (the clock's resolution).
fn us(ns: f64) -> f64 {
    (ns).round() / 1000.0
}

impl OpStats {
    /// The statistics of a histogram of nanoseconds.
    pub fn of(h: &Histogram) -> OpStats {
        let q = |q: f64| h.quantile(q).map(|ns| us(ns as f64));
        OpStats {
            count: h.count(),
            avg_us: h.mean().map(us),
            min_us: h.min().map(|ns| us(ns as f64)),
            max_us: h.max().map(|ns| us(ns as f64)),
            p50_us: q(0.50),
            p95_us: q(0.95),
            p99_us: q(0.99),
            p999_us: q(0.999),
        }
    }

    fn columns(&self) -> [Option<f64>; 6] {
        [
            self.avg_us,
            self.min_us,
            self.max_us,
            self.p50_us,
            self.p95_us,
            self.p99_us,
        ]
    }
}

/// Sharded end-to-end ops/s over centralized, if both ran (closed-loop runs only).
pub fn ratio(runs: &[RunResult]) -> Option<f64> {
    let rate = |name: &str| {
        runs.iter()
            .find(|r| r.preset.name() == name && r.offered_rate.is_none())
            .map(RunResult::ops_per_sec)
    };
    Some(rate("sharded")? / rate("centralized")?)
}

/// The header of the per-operation table.
pub const HEADER: &str = "operation              count     avg µs     min µs     max µs     p50 µs     p95 µs     p99 µs";

/// The table of one preset's run.
pub fn table(run: &RunResult) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "{}: {} shard{}, {} clients",
        run.preset.name(),
        run.shards,
        if run.shards == 1 { "" } else { "s" },
        run.clients
    );
    if let Some(rate) = run.offered_rate {
        let _ = write!(out, ", open loop at {rate} ops/s");
        if let Some(p) = run.percent_of_max {
            let _ = write!(out, " ({p}% of the closed-loop maximum)");
        }
        let _ = write!(out, "; latency from the intended send time");
    }
    out.push('\n');
    let _ = writeln!(out, "{HEADER}");
    for op in Op::ALL {
        let stats = OpStats::of(&run.latency[op.index()]);
        let _ = write!(out, "{:<18} {:>9}", op.name(), stats.count);
        for value in stats.columns() {
            match value {
                Some(v) => {
                    let _ = write!(out, " {v:>10.3}");
                }
                None => {
                    let _ = write!(out, " {:>10}", "-");
                }
            }
        }
        out.push('\n');
    }
    let _ = writeln!(out, "{:<18} {:>9}", "all", run.ops);
    let _ = writeln!(
        out,
        "ops/s end to end: {:.0} (client side: {:.0}); {:.3} s end to end, {:.3} s client side",
        run.ops_per_sec(),
        run.ops_per_sec_client_side(),
        run.end_to_end.as_secs_f64(),
        run.client_side.as_secs_f64()
    );
    if let Some(cpu) = CpuJson::of(run) {
        let shards = match (cpu.shards_cores, cpu.shard_ns_per_command) {
            (Some(cores), Some(ns)) => format!(", shards {cores:.2} ({ns:.0} ns per command)"),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "cpu, cores' worth over the run: {:.2} in all; clients {:.2} ({:.0} ns per \
             operation){shards}, other threads {:.2}",
            cpu.cores_busy, cpu.clients_cores, cpu.client_ns_per_op, cpu.other_cores
        );
    }
    let _ = writeln!(
        out,
        "success rate: {:.2}% ({} of {})",
        run.success_rate() * 100.0,
        run.succeeded,
        run.ops
    );
    if run.failures.total() > 0 {
        let parts: Vec<String> = Failure::ALL
            .into_iter()
            .filter(|&k| run.failures.get(k) > 0)
            .map(|k| format!("{} {}", k.name(), run.failures.get(k)))
            .collect();
        let _ = writeln!(out, "failures: {}", parts.join(", "));
    }
    let c = &run.check;
    let _ = writeln!(
        out,
        "check: {} commands sent, {} applied{}; {} auctions created, {} found; \
         {} bids sent, {} to accept, {} accepted: {}",
        c.commands_sent,
        c.commands_applied,
        if c.handler_panics > 0 {
            format!(" ({} handler panics)", c.handler_panics)
        } else {
            String::new()
        },
        c.auctions_created,
        c.auctions_found,
        c.bids_sent,
        c.bids_to_accept,
        c.bids_accepted,
        if c.passed() { "passed" } else { "FAILED" }
    );
    out
}

/// The closing line: the ratio of the end-to-end rates, when both presets ran.
pub fn ratio_line(runs: &[RunResult]) -> Option<String> {
    ratio(runs).map(|r| format!("ratio sharded / centralized (ops/s end to end): {r:.2}x"))
}

/// A closed-loop run with more client and shard threads than cores: the note printed
/// after the ratio, since its latency tails then measure the OS scheduler as much as
/// the engine (BENCHMARKS.md, "create_auction latency"). `None` when every thread has
/// a core.
pub fn oversubscribed_note(clients: usize, shards: usize, cpus: usize) -> Option<String> {
    let threads = clients.saturating_add(shards);
    (threads > cpus).then(|| {
        let shards = match shards {
            1 => "1 shard".to_string(),
            n => format!("{n} shards"),
        };
        format!(
            "note: {clients} client threads and {shards} on {cpus} cores, closed loop: a \
             preempted client waits for a core\n(milliseconds here), and a latency that spans \
             the wait counts it. A create is answered while its client\ngoes on, so its p99 \
             shows these waits first. Compare latencies at one offered load with --rate\nor \
             --rate-sweep (BENCHMARKS.md, \"create_auction latency\")."
        )
    })
}

/// The sweep's summary: per preset and step, offered and achieved rate and each
/// operation's p50 / p99 (µs, from the intended send time). Empty without steps.
pub fn sweep_table(closed: &[RunResult], steps: &[RunResult]) -> String {
    if steps.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "rate sweep: latency p50 / p99 in µs from the intended send time, per operation\n",
    );
    let _ = write!(
        out,
        "{:<12} {:>7} {:>12} {:>12}",
        "preset", "step", "offered/s", "achieved/s"
    );
    for op in Op::ALL {
        let _ = write!(out, " {:>24}", op.name());
    }
    out.push('\n');
    let cell = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.1}"));
    for run in closed.iter().chain(steps) {
        let step = match run.percent_of_max {
            Some(p) => format!("{p}%"),
            None => "max".to_string(),
        };
        let offered = run
            .offered_rate
            .map_or("closed".to_string(), |r| r.to_string());
        let _ = write!(
            out,
            "{:<12} {:>7} {:>12} {:>12.0}",
            run.preset.name(),
            step,
            offered,
            run.ops_per_sec()
        );
        for op in Op::ALL {
            let s = OpStats::of(&run.latency[op.index()]);
            let _ = write!(
                out,
                " {:>24}",
                format!("{} / {}", cell(s.p50_us), cell(s.p99_us))
            );
        }
        out.push('\n');
    }
    out
}

/// The `--json` document.
#[derive(Debug, Clone, Serialize)]
pub struct Document {
    /// The tool's version (`CARGO_PKG_VERSION`).
    pub version: &'static str,
    /// `closed`, `open` (`--rate`) or `sweep` (`--rate-sweep`).
    pub mode: &'static str,
    /// The machine.
    pub machine: Machine,
    /// `--seed`.
    pub seed: u64,
    /// `--mix`, in its own syntax.
    pub mix: String,
    /// `--clients`.
    pub clients: usize,
    /// `--ops` or `--duration`.
    pub length: Length,
    /// `--shards` as asked; `null` is the default count (see each run's `shards`).
    pub shards: Option<usize>,
    /// `--rate`, or `null`.
    pub rate: Option<u64>,
    /// `--rate-sweep`'s percentages, or `null`.
    pub rate_sweep: Option<Vec<f64>>,
    /// True if every run's check passed.
    pub check_passed: bool,
    /// The runs: closed loop, or open loop at `--rate`; with `--rate-sweep` the
    /// closed-loop runs that measured each preset's maximum.
    pub runs: Vec<RunJson>,
    /// The `--rate-sweep` steps (empty otherwise).
    pub sweep: Vec<RunJson>,
    /// Sharded end-to-end ops/s over centralized of the closed-loop runs, or `null`.
    pub ratio_sharded_over_centralized: Option<f64>,
}

/// `machine` of the JSON.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Available parallelism.
    pub cpus: usize,
}

/// `length` of the JSON: one of the two is set.
#[derive(Debug, Clone, Serialize)]
pub struct Length {
    /// `--ops`: operations per client.
    pub ops: Option<u64>,
    /// `--duration` in seconds.
    pub duration_s: Option<f64>,
}

/// One run in the JSON.
#[derive(Debug, Clone, Serialize)]
pub struct RunJson {
    /// `sharded` or `centralized`.
    pub preset: &'static str,
    /// Client threads.
    pub clients: usize,
    /// Shards of the engine.
    pub shards: usize,
    /// Operations per second, end to end (rounded).
    pub ops_per_sec: f64,
    /// Operations per second until the last client finished (rounded).
    pub ops_per_sec_client_side: f64,
    /// Succeeded / run.
    pub success_rate: f64,
    /// Peak resident memory of the process during the run, in bytes (`null`: unknown
    /// on this platform).
    pub resident_bytes_peak: Option<u64>,
    /// Peak number of messages in all mailboxes during the run (sampled every 10 ms).
    pub mailbox_depth_peak: u64,
    /// Latency statistics by operation name.
    pub operations: Operations,
    /// `closed` or `open`.
    #[serde(rename = "loop")]
    pub loop_kind: &'static str,
    /// Where a latency starts: `call` (closed loop) or `intended send time` (open).
    pub latency_from: &'static str,
    /// The offered rate of an open-loop run, or `null`.
    pub offered_ops_per_sec: Option<u64>,
    /// A sweep step's percentage of the closed-loop maximum, or `null`.
    pub percent_of_max: Option<f64>,
    /// Seconds from the start until every accepted write was applied.
    pub end_to_end_s: f64,
    /// Seconds from the start until the last client finished.
    pub client_side_s: f64,
    /// Where the CPU went, or `null` where the platform has no CPU clocks.
    pub cpu: Option<CpuJson>,
    /// The engine configuration.
    pub config: ConfigJson,
    /// What the check after the run found.
    pub check: CheckJson,
    /// Failures by kind.
    pub failures: BTreeMap<&'static str, u64>,
    /// Operations per second over time: `[seconds since start, ops/s]`, between the
    /// monitor's samples.
    pub throughput: Vec<(f64, f64)>,
}

/// Where a run's CPU went, from the start until every accepted write was applied: the
/// kernel's CPU time of the process and of the client threads.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CpuJson {
    /// CPU seconds of every thread of the process.
    pub process_s: f64,
    /// CPU seconds of the client threads.
    pub clients_s: f64,
    /// CPU seconds of the engine's shard threads (`null`: not reported by this OS).
    pub shards_s: Option<f64>,
    /// CPU seconds of the rest: the tool's monitor and gauges, the client threads'
    /// exits, and the shards too where they are not reported.
    pub other_s: f64,
    /// Cores' worth of CPU the process used: `process_s` over the wall time the reading
    /// spans (from just before the clients' start to the end of the final flush; at
    /// most the machine's cores).
    pub cores_busy: f64,
    /// Cores' worth the clients used.
    pub clients_cores: f64,
    /// Cores' worth the shards used.
    pub shards_cores: Option<f64>,
    /// Cores' worth the rest used.
    pub other_cores: f64,
    /// Client CPU per operation, in nanoseconds (the call, its timing and its record).
    pub client_ns_per_op: f64,
    /// Shard CPU per command the engine applied, in nanoseconds (idle polling
    /// included).
    pub shard_ns_per_command: Option<f64>,
}

impl CpuJson {
    /// The figures of `run`, or `None` if it has no CPU reading.
    pub fn of(run: &RunResult) -> Option<Self> {
        let cpu = run.cpu?;
        let wall = cpu.span.as_secs_f64().max(1e-9);
        let (process, clients) = (cpu.process.as_secs_f64(), cpu.clients.as_secs_f64());
        let shards = cpu.shards.map(|d| d.as_secs_f64());
        let other = cpu.other().as_secs_f64();
        let per = |secs: f64, n: u64| (secs * 1e9 / (n.max(1) as f64)).round();
        Some(Self {
            process_s: round6(process),
            clients_s: round6(clients),
            shards_s: shards.map(round6),
            other_s: round6(other),
            cores_busy: round3(process / wall),
            clients_cores: round3(clients / wall),
            shards_cores: shards.map(|s| round3(s / wall)),
            other_cores: round3(other / wall),
            client_ns_per_op: per(clients, run.ops),
            shard_ns_per_command: shards.map(|s| per(s, run.check.commands_applied)),
        })
    }
}

/// `operations` of a run in the JSON: the keys are the [`Op`] names, in table order.
#[derive(Debug, Clone, Serialize)]
pub struct Operations {
    /// [`Op::CreateAuction`].
    pub create_auction: OpStats,
    /// [`Op::PlaceBid`].
    pub place_bid: OpStats,
    /// [`Op::GetMarketState`].
    pub get_market_state: OpStats,
    /// [`Op::GetCachedPricing`].
    pub get_cached_pricing: OpStats,
}

/// The engine configuration in the JSON (the fields that shape a load run).
#[derive(Debug, Clone, Serialize)]
pub struct ConfigJson {
    /// `Sharded` or `Centralized`.
    pub mode: String,
    /// `Config::shards` (0: one per core, less `host_cores`).
    pub shards: usize,
    /// `Config::host_cores`.
    pub host_cores: usize,
    /// `Config::pin_threads`.
    pub pin_threads: bool,
    /// `Config::mailbox_capacity`.
    pub mailbox_capacity: usize,
    /// `Config::write_delay` in µs.
    pub write_delay_us: f64,
    /// `Config::lane_capacity`.
    pub lane_capacity: usize,
    /// `Config::send_timeout` in ms.
    pub send_timeout_ms: f64,
    /// `Config::batch_size`.
    pub batch_size: usize,
    /// `Config::idle_spin` in µs.
    pub idle_spin_us: f64,
    /// `Config::ticket_spin` in µs.
    pub ticket_spin_us: f64,
    /// `Config::task_workers`.
    pub task_workers: usize,
    /// `Config::economics.auctions.max_open`.
    pub max_open_auctions: usize,
    /// `Config::reserve.auctions`.
    pub reserve_auctions: usize,
}

impl ConfigJson {
    /// The JSON of `c`.
    pub fn of(c: &Config) -> ConfigJson {
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        ConfigJson {
            mode: format!("{:?}", c.mode),
            shards: c.shards,
            host_cores: c.host_cores,
            pin_threads: c.pin_threads,
            mailbox_capacity: c.mailbox_capacity,
            write_delay_us: us(c.write_delay),
            lane_capacity: c.lane_capacity,
            send_timeout_ms: c.send_timeout.as_secs_f64() * 1e3,
            batch_size: c.batch_size,
            idle_spin_us: us(c.idle_spin),
            ticket_spin_us: us(c.ticket_spin),
            task_workers: c.task_workers,
            max_open_auctions: c.economics.auctions.max_open,
            reserve_auctions: c.reserve.auctions,
        }
    }
}

/// The check in the JSON: its counts and whether it passed.
#[derive(Debug, Clone, Serialize)]
pub struct CheckJson {
    /// True if the engine did exactly what it was asked.
    pub passed: bool,
    /// The counts.
    #[serde(flatten)]
    pub counts: Check,
}

/// Rounded to three decimals (a readable JSON).
fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Rounded to six decimals (CPU seconds to the microsecond).
fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// One run as JSON.
pub fn run_json(run: &RunResult) -> RunJson {
    RunJson {
        preset: run.preset.name(),
        clients: run.clients,
        shards: run.shards,
        ops_per_sec: run.ops_per_sec().round(),
        ops_per_sec_client_side: run.ops_per_sec_client_side().round(),
        success_rate: run.success_rate(),
        resident_bytes_peak: run.resident_peak,
        mailbox_depth_peak: run.mailbox_peak,
        operations: Operations {
            create_auction: OpStats::of(&run.latency[Op::CreateAuction.index()]),
            place_bid: OpStats::of(&run.latency[Op::PlaceBid.index()]),
            get_market_state: OpStats::of(&run.latency[Op::GetMarketState.index()]),
            get_cached_pricing: OpStats::of(&run.latency[Op::GetCachedPricing.index()]),
        },
        loop_kind: if run.offered_rate.is_some() {
            "open"
        } else {
            "closed"
        },
        latency_from: if run.offered_rate.is_some() {
            "intended send time"
        } else {
            "call"
        },
        offered_ops_per_sec: run.offered_rate,
        percent_of_max: run.percent_of_max,
        end_to_end_s: run.end_to_end.as_secs_f64(),
        client_side_s: run.client_side.as_secs_f64(),
        cpu: CpuJson::of(run),
        config: ConfigJson::of(&run.config),
        check: CheckJson {
            passed: run.check.passed(),
            counts: run.check,
        },
        failures: Failure::ALL
            .into_iter()
            .map(|k| (k.key(), run.failures.get(k)))
            .collect(),
        throughput: throughput(&run.samples)
            .into_iter()
            .map(|(t, r)| (round3(t), r.round()))
            .collect(),
    }
}

/// The `--json` document of the closed-loop (or `--rate`) runs `runs` and the sweep
/// steps `sweep` of a load run with `args` on `cpus` cpus.
pub fn document(args: &LoadArgs, runs: &[RunResult], sweep: &[RunResult], cpus: usize) -> Document {
    let (mode, rate, rate_sweep) = match &args.pace {
        Pace::Closed => ("closed", None, None),
        Pace::Rate(r) => ("open", Some(*r), None),
        Pace::Sweep(steps) => ("sweep", None, Some(steps.clone())),
    };
    Document {
        version: env!("CARGO_PKG_VERSION"),
        mode,
        machine: Machine { cpus },
        seed: args.seed,
        mix: args.mix.to_string(),
        clients: args.clients,
        length: match args.length {
            RunLength::Ops(n) => Length {
                ops: Some(n),
                duration_s: None,
            },
            RunLength::Duration(d) => Length {
                ops: None,
                duration_s: Some(d.as_secs_f64()),
            },
        },
        shards: args.shards,
        rate,
        rate_sweep,
        check_passed: runs.iter().chain(sweep).all(|r| r.check.passed()),
        runs: runs.iter().map(run_json).collect(),
        sweep: sweep.iter().map(run_json).collect(),
        ratio_sharded_over_centralized: ratio(runs),
    }
}

/// The document as pretty-printed JSON (two-space indent, trailing newline).
pub fn to_json_text(doc: &Document) -> String {
    let mut text =
        serde_json::to_string_pretty(doc).expect("the document has only string keys and numbers");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_stats_are_microseconds_and_null_when_empty() {
        let mut h = Histogram::default();
        for ns in [1_000, 2_000, 3_000, 4_000] {
            h.record(ns);
        }
        let s = OpStats::of(&h);
        assert_eq!(s.count, 4);
        assert_eq!(s.avg_us, Some(2.5));
        assert_eq!((s.min_us, s.max_us), (Some(1.0), Some(4.0)));
        let empty = OpStats::of(&Histogram::default());
        let json = serde_json::to_value(empty).unwrap();
        assert_eq!(json["count"], 0);
        assert!(json["p50_us"].is_null() && json["p999_us"].is_null());
    }

    #[test]
    fn the_oversubscription_note_appears_only_when_threads_outnumber_cores() {
        let note = oversubscribed_note(50, 1, 2).expect("51 threads on 2 cores");
        assert!(
            note.contains("50 client threads and 1 shard on 2 cores"),
            "{note}"
        );
        let note = oversubscribed_note(8, 3, 2).expect("11 threads on 2 cores");
        assert!(
            note.contains("8 client threads and 3 shards on 2 cores"),
            "{note}"
        );
        assert_eq!(oversubscribed_note(1, 1, 2), None);
        assert_eq!(oversubscribed_note(3, 1, 4), None);
        assert!(oversubscribed_note(usize::MAX, 1, 2).is_some());
    }

    #[test]
    fn operation_keys_are_the_op_names_in_order() {
        let h = Histogram::default();
        let ops = Operations {
            create_auction: OpStats::of(&h),
            place_bid: OpStats::of(&h),
            get_market_state: OpStats::of(&h),
            get_cached_pricing: OpStats::of(&h),
        };
        let text = serde_json::to_string(&ops).unwrap();
        let mut at = 0;
        for op in Op::ALL {
            let found = text[at..]
                .find(&format!("\"{}\":", op.name()))
                .unwrap_or_else(|| panic!("{} missing or out of order in {text}", op.name()));
            at += found + 1;
        }
    }

    #[test]
    fn non_finite_numbers_are_written_as_null() {
        #[derive(Serialize)]
        struct T {
            x: f64,
        }
        let text = serde_json::to_string(&T { x: f64::NAN }).unwrap();
        assert_eq!(text, r#"{"x":null}"#);
    }
}
